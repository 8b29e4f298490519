"""The logical protocol: QEC memory experiments (stim + matching, sampled with sinter) over the link's modelled channel.

All codes of the profile are sampled in one sinter collection on `ctx.qec_workers` processes (None: every core
when the budget pays for starting them); with `ctx.resume_dir` each memory's sinter CSV is kept there, so a run
interrupted while sampling continues where it stopped when measured again with the same profile, build and seed
(harness/qec/sampling.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.errors import NotSupportedError
from harness.protocols.base import Analysis, MeasureContext, Protocol, matrix_payload

CONFIDENCE = 0.95
# decode_time_us_* measures the machine running the harness, not the device: say so wherever it is stored.
DECODE_TIME_NOTE = {
    "informational": True,
    "unit_note": "host wall-clock time of the matching decoder per shot, in microseconds",
    "interval": "Student-t interval of the mean per-shot time over decode chunks (n = chunks)",
}


@dataclass(frozen=True)
class LogicalRecord:
    """Shots and logical errors of each memory experiment behind the logical metrics."""

    link_choi: np.ndarray
    reports: dict  # code name -> harness.qec.memory.CodeReport

    def to_dict(self) -> dict:
        """JSON-ready form for the store."""
        return {
            "link_choi": matrix_payload(self.link_choi),
            "memories": [
                {
                    **_memory_fields(name, m),
                    "physical_qubits": m.physical_qubits,
                    "decode_time_us_per_shot": m.decode_time_us_per_shot,
                    "decode_chunks": m.timing.chunks,
                }
                for name, rep in self.reports.items()
                for m in rep.memories
            ],
        }

    def memories(self, code: str) -> list[dict]:
        """The memory runs behind one code with p_fail and its Wilson interval (95 %), JSON-ready."""
        from harness.qec.memory import wilson_interval

        out = []
        for m in self.reports[code].memories:
            low, high = wilson_interval(m.errors, m.shots, CONFIDENCE)
            out.append({**_memory_fields(code, m), "p_fail": m.p_fail, "ci_low": low, "ci_high": high})
        return out


def _memory_fields(code: str, m: Any) -> dict:
    """The identifying fields and counts of one memory run (a harness.qec.memory.MemoryResult) of `code`."""
    return {
        "code": code,
        "basis": m.basis,
        "distance": m.distance,
        "rounds": m.rounds,
        "shots": m.shots,
        "errors": m.errors,
    }


def _link_choi(ctx: MeasureContext) -> np.ndarray:
    """The link's own channel (without analyser readout errors) for a simulated link."""
    if ctx.profile.kind != "aer":
        # Link tomography of a bench sees the link through its analysers' readout errors and carries an estimation
        # error that a memory experiment's binomial interval would not include: gating on it would cry wolf.
        raise NotSupportedError(
            "logical memories run over a modelled link (kind: aer); for a bench, run them on the Aer profile "
            "calibrated from this bench"
        )
    from harness.physics import link_block_choi

    return link_block_choi(ctx.profile.link)


class LogicalProtocol(Protocol):
    """Memory experiments of the profile's qec.codes: logical success, error per round and decode time per code."""

    name = "logical"
    # Memory runs stop on max_errors, so adding their shots would bias p_L: the larger re-measurement replaces
    # the first instead.
    supersedes = True

    def _measure(self, device: Any, ctx: MeasureContext) -> LogicalRecord:
        from harness.qec.memory import run_codes
        from harness.qec.noise import QecNoise

        choi = _link_choi(ctx)
        noise = QecNoise.from_profile(ctx.profile, choi)
        m = ctx.profile.measurement
        shots, errors = int(m.qec_max_shots * ctx.scale), int(m.qec_max_errors * ctx.scale)
        seeds = {code: ctx.int_seed(f"logical-{code}") for code in ctx.profile.qec.codes}
        reports = run_codes(
            seeds,
            noise,
            max_shots=shots,
            max_errors=errors,
            num_workers=ctx.qec_workers,
            resume_dir=ctx.resume_dir,
        )
        return LogicalRecord(choi, reports)

    def _estimate(self, raw: LogicalRecord, ctx: MeasureContext, deps: dict) -> Analysis:
        estimates = {name: est for rep in raw.reports.values() for name, est in rep.items()}
        # The report plots p_fail per memory from these instead of re-deriving them from the raw records.
        artifacts = {f"logical_success_{code}": {"memories": raw.memories(code)} for code in raw.reports}
        artifacts.update({name: dict(DECODE_TIME_NOTE) for name in estimates if name.startswith("decode_time_us_")})
        return Analysis(estimates, artifacts)
