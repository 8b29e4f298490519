"""What the plugin tests share: where the suites live, and what the 2.5.0-rc1 regression degrades."""

from pathlib import Path

SUITES = str(Path(__file__).resolve().parents[2] / "harness" / "test_suites")
# The metrics the 2.5.0-rc1 visibility drop (0.97 -> 0.955) degrades; everything else is unchanged physics.
DEGRADED = {
    "bell_fidelity",
    "concurrence",
    "chsh_s",
    "qber_z",
    "qber_x",
    "ebit_rate_hz",
    "secret_key_rate_bps",
    "plob_fraction",
}
