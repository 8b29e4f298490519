"""How numbers and intervals read in a report and on the terminal: significant digits, "value [low, high]"."""

from __future__ import annotations

import math

from harness.metrics import format_interval


def fmt_number(x: float | None, digits: int = 5) -> str:
    """Return a number with `digits` significant digits, fixed-point unless tiny or huge ('n/a' for None/NaN)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    x = float(x)
    if x == 0 or not math.isfinite(x) or not 1e-4 <= abs(x) < 1e6:
        return f"{x:.{digits}g}"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(x))))
    text = f"{x:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def bracket_text(ci_low: float | None, ci_high: float | None) -> str:
    """Return '[ci_low, ci_high]' with fmt_number's digits."""
    return f"[{fmt_number(ci_low)}, {fmt_number(ci_high)}]"


def interval_text(value: float | None, ci_low: float | None, ci_high: float | None) -> str:
    """Return 'value [ci_low, ci_high]' with fmt_number's digits ('n/a' when there is no value)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return format_interval(value, ci_low, ci_high, fmt_number)
