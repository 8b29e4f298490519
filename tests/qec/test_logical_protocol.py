"""The logical protocol samples every code of the profile in one collection, resumable from its context's directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.profiles import load_profile
from harness.protocols.base import MeasureContext
from harness.protocols.logical import DECODE_TIME_NOTE, LogicalProtocol


def _context(resume_dir: Path | None, workers: int | None = 1) -> MeasureContext:
    loaded = load_profile("aer-reference")
    profile = loaded.effective(loaded.default_build)
    # A twentieth of the standard budget: 10k shots per memory, milliseconds of sampling.
    return MeasureContext(
        profile, 0.05, seed=3, n_boot=10, build="2.4.0", call=1, qec_workers=workers, resume_dir=resume_dir
    )


def test_logical_protocol_keeps_one_resume_file_per_memory_and_reads_it_back(tmp_path: Path) -> None:
    proto = LogicalProtocol()
    first = proto.measure(None, _context(tmp_path))
    codes = _context(None).profile.qec.codes
    n_memories = sum(2 if c.startswith("surface") else 1 for c in codes)
    assert len(list(tmp_path.glob("*.csv"))) == n_memories
    # Measured again with the same profile, build, seed and call (a resumed run): read back, not re-sampled.
    again = proto.measure(None, _context(tmp_path, workers=None))
    assert again.to_dict() == first.to_dict()
    assert all(m.sampled_shots == 0 for rep in again.reports.values() for m in rep.memories)
    # Without a resume directory the same seed gives the same numbers.
    fresh = proto.measure(None, _context(None))
    assert [m["errors"] for m in fresh.to_dict()["memories"]] == [m["errors"] for m in first.to_dict()["memories"]]


def test_decode_time_is_marked_informational_with_its_unit() -> None:
    proto = LogicalProtocol()
    ctx = _context(None)
    analysis = proto.analyse(proto.measure(None, ctx), ctx, {})
    names = [n for n in analysis.estimates if n.startswith("decode_time_us_")]
    assert "decode_time_us_surface_d5" in names and "decode_time_us_surface_d5_z" in names
    for name in names:
        est = analysis.estimates[name]
        assert est.unit == "us" and analysis.artifacts[name] == DECODE_TIME_NOTE
        # A real interval around the mean (not a min-max range), resting on the decode chunks.
        assert est.ci_low < est.value < est.ci_high and est.n >= 8
    with pytest.raises(KeyError):
        analysis.artifacts["logical_success_surface_d5"]["informational"]
