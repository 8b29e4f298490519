"""An emulated bench with one detector per arm behind motorised waveplates and a polariser.

Each arm's analyser is a QWP, then an HWP, then a polariser passing H (the conventions of
`harness.analysis.schemes`); the emulator turns each plate to the commanded angle plus the arm's true offset, so a
fit told the calibrated offsets recovers the state and one told nothing is biased by them. COUN:COIN? returns one
count: the coincidences behind both polarisers, Poisson at the total coincidence rate (true plus accidental) times
the observed state's probability of the two projections. COUN:SING? 1|2 returns each arm's singles behind its
polariser: its photons the polariser passes (the arm's marginal), whatever the other arm's polariser does.

Intensity drift between settings: `intensity_drift` is a relative SD; each integration's pair rate is scaled by
an independent factor 1 + intensity_drift * N(0, 1) (at least 0), which moves singles and coincidences together,
as a source's pump drift does. The profile's `drift.within_session` wander applies on top, as on the Pauli bench.

Link tomography: PREP <state> (0, 1, +, -, +i, -i, as the Pauli bench) or PREP:WP <hwp>,<qwp> prepares arm B's
input through a preparer HWP then QWP (plus `input_offset`); the count is then arm B's detector behind its
analyser, over the observed link. PREP NONE returns to entangled pairs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.analysis.schemes import PREPARER_ANGLES, Waveplates, analyser_vectors, prepared_vector
from harness.emulators.model import LinkModel
from harness.emulators.servers import ERR_HEADER, ERR_MISSING, ERR_RANGE, ScpiEmulator

WAVEPLATE_ANALYZER_COMMANDS = {
    "set_waveplates": "WP {arm},{hwp_deg},{qwp_deg}",
    "prepare_state": "PREP {state}",
    "prepare_waveplates": "PREP:WP {hwp_deg},{qwp_deg}",
}
# The link-tomography input names PREP accepts, as the preparer's labels.
PREP_LABELS = {"0": "H", "1": "V", "+": "D", "-": "A", "+i": "R", "-i": "L"}
ANGLE_LIMIT_DEG = 720.0


def _projector(v: np.ndarray) -> np.ndarray:
    return np.outer(v, v.conj())


def _plates(text: str, n: int) -> list[str] | None:
    parts = [p.strip() for p in text.split(",")]
    return parts if len(parts) == n and all(parts) else None


def _angles(parts: list[str]) -> Waveplates | None:
    try:
        hwp, qwp = float(parts[0]), float(parts[1])
    except ValueError:
        return None
    if not (abs(hwp) <= ANGLE_LIMIT_DEG and abs(qwp) <= ANGLE_LIMIT_DEG):
        return None
    return Waveplates(hwp, qwp)


class WaveplateEmulator(ScpiEmulator):
    """The counter and waveplate analysers of a one-detector-per-arm bench behind one SCPI socket."""

    analyzer_commands = WAVEPLATE_ANALYZER_COMMANDS

    def __init__(
        self,
        model: LinkModel,
        *,
        offsets: Any = ((0.0, 0.0), (0.0, 0.0)),
        input_offset: Any = (0.0, 0.0),
        intensity_drift: float = 0.0,
        **kw: Any,
    ) -> None:
        super().__init__(model, **kw)
        if not 0.0 <= intensity_drift < 1.0:
            raise ValueError(f"intensity_drift must be a relative SD in [0, 1), got {intensity_drift!r}")
        self.offsets = {arm: Waveplates(*map(float, off)) for arm, off in zip("AB", offsets, strict=True)}
        self.input_offset = Waveplates(*map(float, input_offset))
        self.intensity_drift = float(intensity_drift)
        self.plates = {"A": Waveplates(0.0, 0.0), "B": Waveplates(0.0, 0.0)}
        self.input: np.ndarray | None = None

    def projector(self, arm: str) -> np.ndarray:
        """The projector the arm's polariser passes at the commanded angles plus the true offsets."""
        nominal, off = self.plates[arm], self.offsets[arm]
        return _projector(analyser_vectors(nominal.hwp + off.hwp, nominal.qwp + off.qwp)[0])

    def prepare(self, plates: Waveplates) -> None:
        """Prepare arm B's input with the preparer's plates at `plates` plus the input offset."""
        off = self.input_offset
        self.input = prepared_vector(plates.hwp + off.hwp, plates.qwp + off.qwp)

    def _pair_means(self, model: LinkModel, scale: float, T: float) -> tuple[float, np.ndarray]:
        """Mean coincidences and the two arms' mean singles (beyond them) behind the polarisers in one integration."""
        r = model.link_rates(self.source.on)
        rho = model.observed_state(self.source.on)
        pa, pb = self.projector("A"), self.projector("B")
        p = float(np.real(np.trace(np.kron(pa, pb) @ rho)))
        r4 = rho.reshape(2, 2, 2, 2)
        marg = np.real([np.trace(pa @ np.einsum("iaja->ij", r4)), np.trace(pb @ np.einsum("iaib->ab", r4))])
        mean_c = r.coincidence_hz * scale * T * p
        # An arm's singles are every photon its polariser passes, whatever the other arm's does; the coincidences
        # are among them.
        singles = np.array([r.singles_a_hz, r.singles_b_hz]) * scale * T * marg
        return mean_c, np.maximum(singles - mean_c, 0.0)

    def _link_mean(self, model: LinkModel, scale: float, T: float) -> float:
        """Mean counts of arm B's detector for the prepared input sent through the observed link."""
        choi = model._physics(self.source.on)[3]
        rho_in = _projector(self.input)  # type: ignore[arg-type]
        out = np.einsum("ij,iajb->ab", rho_in, choi.reshape(2, 2, 2, 2))
        rate_hz = model.link_rates(self.source.on).coincidence_hz * scale
        return rate_hz * T * float(np.real(np.trace(self.projector("B") @ out)))

    def integrate(self) -> np.ndarray:
        """Draw one integration: the one count behind both polarisers; singles are kept for COUN:SING?."""
        T = self.integration_s
        model = self.model
        if self.drift is not None and self.drift.active:
            model = model.drifted(self.drift.offsets, self.drift.advance([T]))
        scale = max(0.0, 1.0 + self.intensity_drift * self.rng.normal()) if self.intensity_drift else 1.0
        if self.input is None:
            mean_c, mean_only = self._pair_means(model, scale, T)
        else:
            mean_c, mean_only = self._link_mean(model, scale, T), np.zeros(2)
        count = int(self.rng.poisson(mean_c))
        singles = count + self.rng.poisson(mean_only)
        self._singles = (int(singles[0]), int(singles[1]))
        self.integrations += 1
        return np.array([count])

    def handle(self, line: str) -> tuple[str | None, float]:
        """Apply one SCPI command: WP, PREP:WP and PREP here, the counter's commands as the Pauli bench does."""
        header, _, arg = line.partition(" ")
        header = header.upper()
        if header == "ANAL:BAS":
            return self._error(ERR_HEADER)  # this bench has no basis switch, only waveplates
        if header == "*RST":
            self.plates = {"A": Waveplates(0.0, 0.0), "B": Waveplates(0.0, 0.0)}
            self.input = None
        if header == "WP":
            parts = _plates(arg, 3)
            arm = parts[0].upper() if parts else ""
            plates = _angles(parts[1:]) if parts else None
            if parts is None or arm not in self.plates or plates is None:
                return self._error(ERR_MISSING if not arg.strip() else ERR_RANGE)
            self.plates[arm] = plates
            return None, 0.0
        if header == "WP?":
            return ";".join(f"{a},{p.hwp:g},{p.qwp:g}" for a, p in self.plates.items()), 0.0
        if header == "PREP:WP":
            parts = _plates(arg, 2)
            plates = _angles(parts) if parts else None
            if plates is None:
                return self._error(ERR_MISSING if not arg.strip() else ERR_RANGE)
            self.prepare(plates)
            return None, 0.0
        if header == "PREP":
            state = arg.strip().lower()
            if state == "none":
                self.input = None
            elif state in PREP_LABELS:
                self.prepare(Waveplates(*PREPARER_ANGLES[PREP_LABELS[state]]))
            else:
                return self._error(ERR_RANGE)
            return None, 0.0
        return super().handle(line)


def waveplate_emulator_options(profile: Any) -> dict | None:
    """Return the WaveplateEmulator options of an effective profile whose scheme is set by waveplates, else None.

    The emulated plates carry the profile's calibrated offsets as their true offsets (a calibrated bench).
    """
    block = getattr(profile, "tomography", None)
    if block is None or block.scheme == "pauli":
        return None
    return {"offsets": block.offsets(), "input_offset": block.link.input_offset.pair()}
