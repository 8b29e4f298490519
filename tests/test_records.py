"""Count records add: pooling is `a + b`, an empty record is the identity, mismatched settings are refused."""

import numpy as np
import pytest

from harness.records import BELL_SETTINGS, INPUTS_6, CoincidenceCounts, ProcessCounts, TomographyCounts


def _tomo(seed: int, duration: float = 0.05) -> TomographyCounts:
    counts = np.random.default_rng(seed).integers(0, 500, size=(len(BELL_SETTINGS), 4))
    return TomographyCounts(BELL_SETTINGS, counts, duration)


def test_tomography_counts_add_and_empty_is_identity():
    a, b = _tomo(1), _tomo(2, 0.1)
    pooled = a + b
    assert np.array_equal(pooled.counts, a.counts + b.counts)
    assert pooled.duration_s == pytest.approx(0.15)
    empty = TomographyCounts(BELL_SETTINGS, np.zeros((9, 4), dtype=np.int64), 0.0)
    assert np.array_equal((a + empty).counts, a.counts) and (a + empty).duration_s == a.duration_s
    assert np.array_equal((a + b).counts, (b + a).counts)


def test_process_counts_add_and_refuse_other_inputs():
    counts = np.ones((len(INPUTS_6), 3, 2), dtype=np.int64)
    a = ProcessCounts(INPUTS_6, ("X", "Y", "Z"), counts, 0.05)
    assert np.array_equal((a + a).counts, 2 * counts)
    other = ProcessCounts(INPUTS_6[:4], ("X", "Y", "Z"), counts[:4], 0.05)
    with pytest.raises(ValueError, match="different inputs"):
        a + other


def test_tomography_refuses_other_settings_and_coincidences_other_windows():
    a = _tomo(3)
    with pytest.raises(ValueError, match="different settings"):
        a + TomographyCounts(BELL_SETTINGS[::-1], a.counts, 0.05)
    c = CoincidenceCounts(100, 90, 40, 1e-9, 0.2)
    assert (c + c).coincidences == 80 and (c + c).duration_s == pytest.approx(0.4)
    with pytest.raises(ValueError, match="different windows"):
        c + CoincidenceCounts(100, 90, 40, 2e-9, 0.2)
    with pytest.raises(ValueError, match="must be >= 0"):
        CoincidenceCounts(-1, 90, 40, 1e-9, 0.2)
