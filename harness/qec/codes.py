"""Memory-experiment circuits of the repetition and rotated surface codes, following the logical qubit's life.

A memory experiment is built once as a noise-free list of operations (`MemoryCircuit`) and then rendered
with noise into stim (`MemoryCircuit.to_stim`) or into qiskit (harness/qec/aer_memory.py), so both
simulators run the same experiment. The life of the logical qubit:

1. Sender: prepare and encode.
   - Repetition codes: the logical basis state is a product state, so it is encoded transversally: reset
     every data qubit to |0> (bit-flip, |0_L> = |0..0>), plus a noisy H on every data qubit for the
     phase-flip code (|0_L> = |+..+>). A CX-chain encoder of an arbitrary state a|0> + b|1> is not fault
     tolerant (one two-qubit fault after its first CX spreads to a logical error), which would cap every
     distance at 1; the transversal preparation keeps the code distance. The encoded state is a stabiliser
     eigenstate, so the receiver's first round is deterministic.
   - Rotated surface code: reset data to |0> (Z memory) or |+> (R then H, X memory), then one
     stabiliser round run by the sender. It projects into the code space; its memory-basis stabilisers
     are deterministic (detectors) and its other-type outcomes are the frame the receiver's first round
     is compared with (they would travel classically with the qubits).
2. Link: PAULI_CHANNEL_1 on every data qubit, once.
3. Receiver: `rounds` syndrome rounds, each: reset ancillas, H on X-type ancillas, CX layers, H on X-type
   ancillas, idle noise on data, measure ancillas.
4. Final readout of every data qubit in the memory basis (H first for X), giving final detectors and the
   logical observable.

Operations are ("R", qubits), ("H", qubits), ("CX", ((c, t), ...)), ("LINK", qubits), ("IDLE", qubits),
("M", qubits) and ("TICK", ()). Detectors and the observable are lists of indices into the measurement
record (0 = first measurement).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from numbers import Integral

import stim

from harness.qec.noise import QecError, QecNoise

CODES = ("repetition_bitflip", "repetition_phaseflip", "surface")
PROTECTED_BASIS = {"repetition_bitflip": "Z", "repetition_phaseflip": "X"}

Op = tuple[str, tuple]


@dataclass(frozen=True)
class Stabilizer:
    """One stabiliser: its ancilla, its Pauli type ("X" or "Z") and its data qubit per CX layer (None = idle)."""

    ancilla: int
    kind: str
    layers: tuple[int | None, ...]

    @property
    def support(self) -> tuple[int, ...]:
        """Data qubits the stabiliser acts on."""
        return tuple(q for q in self.layers if q is not None)


@dataclass
class MemoryCircuit:
    """A noise-free memory experiment: operations, detectors (measurement indices) and the observable."""

    code: str
    distance: int
    basis: str
    rounds: int
    data: tuple[int, ...]
    ancillas: tuple[int, ...]
    ops: list[Op] = field(default_factory=list)
    detectors: list[tuple[int, ...]] = field(default_factory=list)
    observable: tuple[int, ...] = ()
    num_measurements: int = 0

    @property
    def num_qubits(self) -> int:
        """Number of physical qubits (data + ancilla)."""
        return len(self.data) + len(self.ancillas)

    def measure(self, qubits: tuple[int, ...]) -> dict[int, int]:
        """Append a measurement of `qubits`; return qubit -> index in the measurement record."""
        self.ops.append(("M", qubits))
        idx = {q: self.num_measurements + k for k, q in enumerate(qubits)}
        self.num_measurements += len(qubits)
        return idx

    def to_stim(self, noise: QecNoise) -> stim.Circuit:
        """Return the stim circuit of this experiment with `noise` inserted (see harness.qec.noise)."""
        c = stim.Circuit()
        for name, args in self.ops:
            if name == "TICK":
                c.append("TICK")
            elif name == "R":
                c.append("R", args)
            elif name == "H":
                c.append("H", args)
                if noise.gate_error_1q > 0:
                    c.append("DEPOLARIZE1", args, noise.gate_error_1q)
            elif name == "CX":
                flat = [q for pair in args for q in pair]
                c.append("CX", flat)
                if noise.gate_error_2q > 0:
                    c.append("DEPOLARIZE2", flat, noise.gate_error_2q)
            elif name == "LINK":
                if noise.px + noise.py + noise.pz > 0:
                    c.append("PAULI_CHANNEL_1", args, [noise.px, noise.py, noise.pz])
            elif name == "IDLE":
                if noise.idle_error > 0:
                    c.append("DEPOLARIZE1", args, noise.idle_error)
            elif name == "M":
                if noise.measurement_error > 0:
                    c.append("X_ERROR", args, noise.measurement_error)
                c.append("M", args)
            else:  # pragma: no cover - ops are only produced by the builders below
                raise AssertionError(f"unknown op {name}")
        n = self.num_measurements
        for det in self.detectors:
            c.append("DETECTOR", [stim.target_rec(i - n) for i in det])
        c.append("OBSERVABLE_INCLUDE", [stim.target_rec(i - n) for i in self.observable], 0)
        return c


def _syndrome_round(mc: MemoryCircuit, stabs: list[Stabilizer], with_idle: bool = True) -> dict[int, int]:
    """Append one syndrome round; return ancilla -> measurement index."""
    anc = tuple(s.ancilla for s in stabs)
    x_anc = tuple(s.ancilla for s in stabs if s.kind == "X")
    mc.ops.append(("R", anc))
    if x_anc:
        mc.ops.append(("H", x_anc))
    mc.ops.append(("TICK", ()))
    n_layers = max(len(s.layers) for s in stabs)
    for k in range(n_layers):
        pairs = []
        for s in stabs:
            q = s.layers[k] if k < len(s.layers) else None
            if q is None:
                continue
            pairs.append((s.ancilla, q) if s.kind == "X" else (q, s.ancilla))
        if pairs:
            mc.ops.append(("CX", tuple(pairs)))
            mc.ops.append(("TICK", ()))
    if x_anc:
        mc.ops.append(("H", x_anc))
    if with_idle:
        mc.ops.append(("IDLE", mc.data))
    idx = mc.measure(anc)
    mc.ops.append(("TICK", ()))
    return idx


def _memory(mc: MemoryCircuit, stabs: list[Stabilizer], logical: tuple[int, ...], sender_round: bool) -> MemoryCircuit:
    """Append link, receiver rounds, final readout, detectors and observable to an encoded `mc`."""
    basis = mc.basis
    prev: dict[int, int] | None = None
    if sender_round:
        prev = _syndrome_round(mc, stabs)
        mc.detectors.extend((prev[s.ancilla],) for s in stabs if s.kind == basis)
    mc.ops.append(("LINK", mc.data))
    mc.ops.append(("TICK", ()))
    for _ in range(mc.rounds):
        cur = _syndrome_round(mc, stabs)
        for s in stabs:
            if prev is None:
                if s.kind == basis:
                    mc.detectors.append((cur[s.ancilla],))
            else:
                mc.detectors.append((prev[s.ancilla], cur[s.ancilla]))
        prev = cur
    if basis == "X":
        mc.ops.append(("H", mc.data))
    final = mc.measure(mc.data)
    assert prev is not None
    for s in stabs:
        if s.kind == basis:
            mc.detectors.append((prev[s.ancilla], *(final[q] for q in s.support)))
    mc.observable = tuple(final[q] for q in logical)
    return mc


def repetition_memory(distance: int, rounds: int, phase_flip: bool = False) -> MemoryCircuit:
    """Return the repetition-code memory (bit-flip: Z basis, ZZ checks; phase-flip: X basis, XX checks)."""
    d = distance
    data = tuple(range(d))
    ancillas = tuple(range(d, 2 * d - 1))
    kind = "X" if phase_flip else "Z"
    code = "repetition_phaseflip" if phase_flip else "repetition_bitflip"
    mc = MemoryCircuit(code, d, kind, rounds, data, ancillas)
    mc.ops.append(("R", data + ancillas))
    if phase_flip:
        mc.ops.append(("H", data))
    mc.ops.append(("TICK", ()))
    stabs = [Stabilizer(d + i, kind, (i, i + 1)) for i in range(d - 1)]
    return _memory(mc, stabs, (0,), sender_round=False)


# CX order of the rotated surface code, offsets (dx, dy) from the ancilla. The last two data qubits of an
# X check share a row and those of a Z check share a column, so a mid-round ancilla fault (hook) spreads
# along the direction that does not shorten the logical operator it could complete.
_X_ORDER = ((-1, -1), (1, -1), (-1, 1), (1, 1))
_Z_ORDER = ((-1, -1), (-1, 1), (1, -1), (1, 1))


def surface_layout(distance: int) -> tuple[dict[tuple[int, int], int], list[Stabilizer], tuple[int, ...], tuple]:
    """Return (data coord -> qubit, stabilisers, Z_L support, X_L support) of the rotated surface code.

    Data sit at odd (x, y) in [1, 2d-1]; ancillas at even (x, y) in [0, 2d]. X-type checks close the top and
    bottom edges, Z-type checks the left and right edges; Z_L is the top row, X_L the left column.
    """
    d = distance
    coords = [(x, y) for y in range(1, 2 * d, 2) for x in range(1, 2 * d, 2)]
    data = {c: i for i, c in enumerate(coords)}
    stabs = []
    nxt = len(data)
    for y in range(0, 2 * d + 1, 2):
        for x in range(0, 2 * d + 1, 2):
            kind = "X" if ((x + y) // 2) % 2 == 0 else "Z"
            on_tb = y in (0, 2 * d)
            on_lr = x in (0, 2 * d)
            if on_tb and on_lr:
                continue
            if (on_tb and kind != "X") or (on_lr and kind != "Z"):
                continue
            order = _X_ORDER if kind == "X" else _Z_ORDER
            layers = tuple(data.get((x + dx, y + dy)) for dx, dy in order)
            stabs.append(Stabilizer(nxt, kind, layers))
            nxt += 1
    z_logical = tuple(data[(x, 1)] for x in range(1, 2 * d, 2))
    x_logical = tuple(data[(1, y)] for y in range(1, 2 * d, 2))
    return data, stabs, z_logical, x_logical


def surface_memory(distance: int, rounds: int, basis: str) -> MemoryCircuit:
    """Return the rotated-surface-code memory in `basis` ("Z" or "X") with a sender encoding round."""
    data_map, stabs, z_log, x_log = surface_layout(distance)
    data = tuple(sorted(data_map.values()))
    ancillas = tuple(s.ancilla for s in stabs)
    mc = MemoryCircuit("surface", distance, basis, rounds, data, ancillas)
    mc.ops.append(("R", data + ancillas))
    if basis == "X":
        mc.ops.append(("H", data))
    mc.ops.append(("TICK", ()))
    return _memory(mc, stabs, z_log if basis == "Z" else x_log, sender_round=True)


def check_request(code: str, distance: int, basis: str, rounds: int | None) -> tuple[str, int, str, int]:
    """Validate a memory request; return (code, distance, basis, rounds) normalised, or raise QecError."""
    if code not in CODES:
        raise QecError(f"unknown code {code!r}; use one of {', '.join(CODES)}")
    if isinstance(distance, bool) or not isinstance(distance, Integral) or distance < 3 or distance % 2 == 0:
        raise QecError(f"distance must be an odd integer >= 3 (e.g. 3, 5, 7), got {distance!r}")
    b = str(basis).upper()
    if b not in ("X", "Z"):
        raise QecError(f"basis must be 'Z' or 'X', got {basis!r}")
    if code in PROTECTED_BASIS and b != PROTECTED_BASIS[code]:
        raise QecError(
            f"{code} protects only the {PROTECTED_BASIS[code]} basis, got basis {basis!r}; "
            f"use basis={PROTECTED_BASIS[code]!r}"
        )
    r = distance if rounds is None else rounds
    if isinstance(r, bool) or not isinstance(r, Integral) or r < 1:
        raise QecError(f"rounds must be an integer >= 1 (default: the distance), got {rounds!r}")
    return code, int(distance), b, int(r)


def memory_circuit(code: str, distance: int, basis: str, rounds: int | None = None) -> MemoryCircuit:
    """Return the noise-free memory experiment of `code` at `distance` in `basis` with `rounds` receiver rounds."""
    code, distance, basis, rounds = check_request(code, distance, basis, rounds)
    if code == "surface":
        return surface_memory(distance, rounds, basis)
    return repetition_memory(distance, rounds, phase_flip=code == "repetition_phaseflip")
