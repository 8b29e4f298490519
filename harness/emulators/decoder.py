"""The QEC decoder of the emulated source firmware, answering `DEC? <code>,<syndrome>` with the logical flip bit.

The firmware decodes the d = 3 bit-flip repetition code and the d = 3 rotated surface code (Z basis) with a
lookup table over syndromes. The table is filled from minimum-weight matching (pymatching) on the detector
error model of the code under the emulated link's QEC noise, lazily, one entry per distinct syndrome, so a
syndrome is matched once and then looked up. A firmware build may carry faulty table entries
(`DECODER_BUGS`): those syndromes are answered with the flipped bit.

Build 2.5.0-rc1 carries one faulty entry: the surface-code syndrome with only detector 6 set, i.e. the first
receiver round of one X-type check differs from the sender's round. A phase flip on the link of a data qubit
at the code's boundary causes it; under the bench-emulated noise (link dephasing 0.01) it is the most frequent
non-trivial surface-code syndrome, about 1.8 % of the shots. Matching leaves it alone (a Z error cannot flip the
Z observable); the faulty entry reports a logical flip.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.protocols.decoder import (
    DECODER_CODES,
    DecoderRequestError,
    decoder_memory,
    decoder_noise,
    parse_syndrome,
)

if TYPE_CHECKING:
    from harness.qec.noise import QecNoise

# Syndrome with only detector 6 of the 32 surface_d3_z detectors set (see the module docstring).
SURFACE_D3_SINGLE_X_CHECK = "0" * 6 + "1" + "0" * 25
# Firmware build -> faulty table entries (decoder code id, syndrome) answered with the flipped bit.
DECODER_BUGS: dict[str, tuple[tuple[str, str], ...]] = {
    "2.5.0-rc1": (("surface_d3_z", SURFACE_D3_SINGLE_X_CHECK),),
}


class EmulatedDecoder:
    """Lookup-table decoder of the decoder codes, filled by matching, with optional faulty entries."""

    def __init__(self, noise: QecNoise, faulty: Iterable[tuple[str, str]] = ()) -> None:
        self.noise = noise
        self.memories = {code: decoder_memory(code, noise) for code in DECODER_CODES}
        self.table: dict[str, dict[str, int]] = {code: {} for code in DECODER_CODES}
        self.faulty: set[tuple[str, str]] = set()
        for code, syndrome in faulty:
            if code not in self.memories:
                raise DecoderRequestError(f"faulty decoder entry names unknown code {code!r}")
            parse_syndrome(syndrome, self.memories[code].num_detectors)
            self.faulty.add((code, syndrome))

    @classmethod
    def from_params(cls, params: Any, build: str, faulty: Iterable[tuple[str, str]] | None = None) -> EmulatedDecoder:
        """Return the decoder of firmware `build` under the QEC noise of LinkParameters `params`.

        `faulty` overrides the build's faulty entries (default: DECODER_BUGS[build], none for other builds).
        """
        entries = DECODER_BUGS.get(str(build), ()) if faulty is None else tuple(faulty)
        return cls(decoder_noise(params, params), entries)

    def num_detectors(self, code: str) -> int:
        """Return the number of detectors (syndrome length) of decoder code `code`."""
        if code not in self.memories:
            raise DecoderRequestError(f"unknown decoder code {code!r}; known: {', '.join(self.memories)}")
        return int(self.memories[code].num_detectors)

    def decode(self, code: str, syndrome: str) -> int:
        """Return the predicted observable flip (0/1) for one '0'/'1' syndrome string of `code`."""
        n = self.num_detectors(code)
        entries = self.table[code]
        bit = entries.get(syndrome)
        if bit is None:
            dets = parse_syndrome(syndrome, n)
            bit = int(self.memories[code].matching.decode(dets)[0])
            entries[syndrome] = bit
        return bit ^ ((code, syndrome) in self.faulty)

    def decode_many(self, code: str, dets: np.ndarray) -> np.ndarray:
        """Return the predicted flips (uint8) of a boolean (shots, detectors) array, the faulty entries applied."""
        n = self.num_detectors(code)
        dets = np.asarray(dets, dtype=bool).reshape(-1, n)
        pred = self.memories[code].matching.decode_batch(dets)[:, 0].astype(np.uint8)
        for fcode, syndrome in self.faulty:
            if fcode == code:
                hit = (dets == parse_syndrome(syndrome, n)).all(axis=1)
                pred[hit] ^= 1
        return pred

    def handle(self, arg: str) -> str:
        """Answer the argument of a DEC? command ('<code>,<syndrome>'): '0', '1' or 'ERR <reason>'."""
        code, sep, syndrome = arg.partition(",")
        if not sep:
            return "ERR expected DEC? <code>,<syndrome>"
        try:
            return str(self.decode(code.strip(), syndrome.strip()))
        except DecoderRequestError as exc:
            return f"ERR {exc}"
