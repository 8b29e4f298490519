"""Plots of a release report: trends across builds, the Bell state, logical error vs distance, rate vs PLOB.

Trend plots are drawn as hand-written SVG: a report holds one per metric and profile (about a hundred),
and drawing each through matplotlib costs ~30 ms of CPU, which alone would exceed the report's time budget.
The Allure PNG variant of a trend and the physics plots use matplotlib (Agg canvas, no pyplot state).
"""

from __future__ import annotations

import io
import math
import re
from html import escape
from typing import TYPE_CHECKING

import numpy as np

from harness.report.data import LogicalPoint, PlobPoint, Trend

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# Verdict colours (GitHub Primer palette, readable on white) and marker shapes: a verdict is never colour alone.
VERDICT_COLOURS = {
    "PASS": "#1a7f37",
    "REGRESSION": "#cf222e",
    "IMPROVED": "#0969da",
    "INCONCLUSIVE": "#9a6700",
    "ERROR": "#8250df",
    "NO_BASELINE": "#57606a",
}
VERDICT_MARKERS = {
    "PASS": "o",
    "REGRESSION": "v",
    "IMPROVED": "^",
    "INCONCLUSIVE": "s",
    "ERROR": "X",
    "NO_BASELINE": "o",
}
BAND_COLOUR = "#8c959f"

_W, _H = 380, 200
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 12, 30, 46


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


def _tick_labels(ticks: np.ndarray) -> list[str]:
    """Return the shortest significant-digit labels that tell all ticks apart."""
    for digits in range(2, 12):
        labels = [fmt_number(float(t), digits) for t in ticks]
        if len(set(labels)) == len(labels):
            return labels
    return [repr(float(t)) for t in ticks]


def _y_range(trend: Trend) -> tuple[float, float, bool]:
    """Return the padded y range of the intervals and baseline band, and whether the tolerance limit lies in it.

    A limit far from the data (more than the data's own span away) would squash the data into a line,
    so it is then left out of the range and named in a note instead.
    """
    ys = [v for p in trend.points for v in (p.ci_low, p.ci_high, p.value)]
    if trend.band is not None:
        ys += [trend.band.ci_low, trend.band.ci_high]
    ys = [y for y in ys if math.isfinite(y)]
    if not ys:
        return 0.0, 1.0, False
    lo, hi = min(ys), max(ys)
    span = hi - lo
    if span <= 0:
        span = abs(hi) * 0.01 or 1.0
    limit = trend.band.limit if trend.band is not None else None
    show = limit is not None and math.isfinite(limit) and lo - span <= limit <= hi + span
    if show:
        lo, hi = min(lo, limit), max(hi, limit)
        span = hi - lo
    return lo - 0.08 * span, hi + 0.08 * span, show


def _marker(shape: str, x: float, y: float, r: float, colour: str, extra: str = "") -> str:
    """Return one SVG marker of a verdict shape centred at (x, y)."""
    fill = "none" if shape == "hollow" else colour
    common = f'fill="{fill}" stroke="{colour}" stroke-width="1.5"{extra}'
    if shape in ("o", "hollow"):
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}" {common}/>'
    if shape == "s":
        return f'<rect x="{x - r:.1f}" y="{y - r:.1f}" width="{2 * r:.1f}" height="{2 * r:.1f}" {common}/>'
    if shape in ("v", "^"):
        s = 1 if shape == "v" else -1
        pts = f"{x - r * 1.2:.1f},{y - s * r:.1f} {x + r * 1.2:.1f},{y - s * r:.1f} {x:.1f},{y + s * r * 1.3:.1f}"
        return f'<polygon points="{pts}" {common}/>'
    # ERROR: a cross
    return (
        f'<path d="M{x - r:.1f},{y - r:.1f}L{x + r:.1f},{y + r:.1f}M{x - r:.1f},{y + r:.1f}L{x + r:.1f},{y - r:.1f}" '
        f'fill="none" stroke="{colour}" stroke-width="2.5"{extra}/>'
    )


def verdict_shape(verdict: str | None) -> str:
    """Return the marker shape name of a verdict ('hollow' when there is none or no baseline)."""
    if verdict in (None, "NO_BASELINE"):
        return "hollow"
    return VERDICT_MARKERS.get(verdict, "hollow")


def trend_svg(trend: Trend) -> str:
    """Return an inline SVG (no XML prolog) of a metric across builds: intervals, baseline band, tolerance limit."""
    w, h = _W, _H
    x0, x1, y0, y1 = _LEFT, w - _RIGHT, _TOP, h - _BOTTOM
    unit = f" [{trend.unit}]" if trend.unit else ""
    title = f"{trend.metric}{unit}"
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="trend" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
        f'role="img" font-family="sans-serif" font-size="10">',
        f"<title>Trend of {escape(trend.metric)} across builds of {escape(trend.profile)}</title>",
        f'<rect x="0" y="0" width="{w}" height="{h}" fill="#ffffff"/>',
        f'<text x="{x0}" y="14" font-size="11" font-weight="bold">{escape(title)}</text>',
    ]
    if not trend.points:
        out.append(f'<text x="{(x0 + x1) / 2}" y="{(y0 + y1) / 2}" text-anchor="middle">no data</text></svg>')
        return "".join(out)
    lo, hi, show_limit = _y_range(trend)

    def ymap(v: float) -> float:
        return y1 - (v - lo) / (hi - lo) * (y1 - y0)

    n = max(len(trend.builds), 1)
    step = (x1 - x0) / n
    xpos = {b: x0 + step * (i + 0.5) for i, b in enumerate(trend.builds)}

    from matplotlib.ticker import MaxNLocator

    ticks = np.asarray(MaxNLocator(5).tick_values(lo, hi))
    ticks = ticks[(ticks >= lo) & (ticks <= hi)]
    for t, label in zip(ticks, _tick_labels(ticks), strict=True):
        y = ymap(float(t))
        out.append(f'<line x1="{x0}" x2="{x1}" y1="{y:.1f}" y2="{y:.1f}" stroke="#d0d7de" stroke-width="0.6"/>')
        out.append(f'<text x="{x0 - 4}" y="{y + 3:.1f}" text-anchor="end">{escape(label)}</text>')
    band = trend.band
    if band is not None:
        ya, yb = ymap(band.ci_high), ymap(band.ci_low)
        out.append(
            f'<rect class="band" x="{x0}" y="{ya:.1f}" width="{x1 - x0}" height="{max(yb - ya, 0.8):.1f}" '
            f'fill="{BAND_COLOUR}" fill-opacity="0.3"><title>baseline {escape(band.build or "")}: '
            f"{fmt_number(band.value)} [{fmt_number(band.ci_low)}, {fmt_number(band.ci_high)}]</title></rect>"
        )
        yv = ymap(band.value)
        out.append(
            f'<line x1="{x0}" x2="{x1}" y1="{yv:.1f}" y2="{yv:.1f}" stroke="{BAND_COLOUR}" stroke-dasharray="5,3"/>'
        )
        if band.limit is not None and show_limit:
            yl = ymap(band.limit)
            out.append(
                f'<line class="limit" x1="{x0}" x2="{x1}" y1="{yl:.1f}" y2="{yl:.1f}" stroke="#cf222e" '
                f'stroke-width="0.9" stroke-dasharray="2,2"><title>tolerance limit {fmt_number(band.limit)}</title>'
                "</line>"
            )
        elif band.limit is not None:
            arrow = "↓" if band.limit < lo else "↑"
            out.append(
                f'<text class="limit-note" x="{x1}" y="{y0 - 4}" text-anchor="end" font-size="9" fill="#cf222e">'
                f"limit {fmt_number(band.limit)} {arrow}</text>"
            )
    out.append(f'<rect x="{x0}" y="{y0}" width="{x1 - x0}" height="{y1 - y0}" fill="none" stroke="#57606a"/>')
    rotate = n > 4 or max(len(b) for b in trend.builds) > 8
    for b, x in xpos.items():
        label = b if len(b) <= 14 else b[:13] + "…"
        weight = ' font-weight="bold"' if b == trend.release_build else ""
        if rotate:
            out.append(
                f'<text x="{x:.1f}" y="{y1 + 10}" text-anchor="end" transform="rotate(-30 {x:.1f} {y1 + 10})"'
                f"{weight}>{escape(label)}<title>{escape(b)}</title></text>"
            )
        else:
            out.append(
                f'<text x="{x:.1f}" y="{y1 + 13}" text-anchor="middle"{weight}>{escape(label)}'
                f"<title>{escape(b)}</title></text>"
            )
    for p in trend.points:
        x = xpos[p.build]
        ya, yb, yv = ymap(p.ci_high), ymap(p.ci_low), ymap(p.value)
        out.append(
            f'<path d="M{x:.1f},{ya:.1f}V{yb:.1f}M{x - 4:.1f},{ya:.1f}H{x + 4:.1f}M{x - 4:.1f},{yb:.1f}H{x + 4:.1f}" '
            'stroke="#24292f" stroke-width="1" fill="none"/>'
        )
        verdict = p.verdict or "NO_BASELINE"
        colour = VERDICT_COLOURS.get(verdict, VERDICT_COLOURS["NO_BASELINE"])
        r = 5.0 if p.build == trend.release_build else 3.8
        tip = (
            f"<title>{escape(p.build)}: {fmt_number(p.value)} [{fmt_number(p.ci_low)}, {fmt_number(p.ci_high)}]"
            f"{escape(unit)} {escape(verdict)}</title>"
        )
        out.append(f"<g>{_marker(verdict_shape(p.verdict), x, yv, r, colour)}{tip}</g>")
    out.append("</svg>")
    return "".join(out)


# -- matplotlib ---------------------------------------------------------------------------------------


def _figure(width_in: float, height_in: float) -> Figure:
    """Return a matplotlib Figure on an Agg canvas (no pyplot, so no global figure state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _quiet_minor(ax: Axes) -> None:
    """Drop log-axis minor ticks: each is a drawn artist, and together they are most of a plot's drawing time."""
    from matplotlib.ticker import NullLocator

    ax.xaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_minor_locator(NullLocator())


def _to_svg(fig: Figure, salt: str) -> str:
    """Return the figure as inline SVG text (prolog dropped); `salt` keeps element ids unique within a page."""
    import matplotlib as mpl

    buf = io.StringIO()
    with mpl.rc_context({"svg.fonttype": "none", "svg.hashsalt": salt}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    text = text[text.index("<svg") :]
    # The RDF metadata block only names matplotlib's namespaces; inline it is dead weight.
    return re.sub(r"\s*<metadata>.*?</metadata>", "", text, count=1, flags=re.S)


def _to_png(fig: Figure, dpi: int = 100) -> bytes:
    """Return the figure as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()


def trend_figure(trend: Trend) -> Figure:
    """Return a matplotlib Figure of a trend (the same content as trend_svg), for PNG attachments."""
    fig = _figure(5.0, 2.8)
    ax = fig.add_subplot()
    unit = f" [{trend.unit}]" if trend.unit else ""
    ax.set_title(f"{trend.metric}{unit} — {trend.profile}", fontsize=9)
    idx = {b: i for i, b in enumerate(trend.builds)}
    band = trend.band
    if band is not None:
        ax.axhspan(band.ci_low, band.ci_high, color=BAND_COLOUR, alpha=0.3, lw=0, label=f"baseline {band.build or ''}")
        ax.axhline(band.value, color=BAND_COLOUR, ls="--", lw=1)
        if band.limit is not None:
            ax.axhline(band.limit, color=VERDICT_COLOURS["REGRESSION"], ls=":", lw=1, label="tolerance limit")
    for p in trend.points:
        verdict = p.verdict or "NO_BASELINE"
        colour = VERDICT_COLOURS.get(verdict, VERDICT_COLOURS["NO_BASELINE"])
        shape = verdict_shape(p.verdict)
        ax.errorbar(
            [idx[p.build]],
            [p.value],
            yerr=[[p.value - p.ci_low], [p.ci_high - p.value]],
            fmt="o" if shape == "hollow" else shape,
            color=colour,
            mfc="none" if shape == "hollow" else colour,
            ms=7 if p.build == trend.release_build else 5,
            ecolor="#24292f",
            elinewidth=1,
            capsize=3,
        )
    ax.set_xticks(range(len(trend.builds)), trend.builds, rotation=30 if len(trend.builds) > 4 else 0, fontsize=7)
    ax.set_xlim(-0.5, max(len(trend.builds) - 0.5, 0.5))
    ax.tick_params(axis="y", labelsize=7)
    if band is not None:
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def trend_png(trend: Trend, dpi: int = 100) -> bytes:
    """Return the PNG bytes of a trend plot."""
    return _to_png(trend_figure(trend), dpi)


_BASIS_LABELS = ["|00⟩", "|01⟩", "|10⟩", "|11⟩"]


def density_svg(rho: np.ndarray, salt: str) -> str:
    """Return inline SVG of the real and imaginary parts of a two-qubit density matrix as annotated heatmaps."""
    fig = _figure(6.4, 2.9)
    axes = fig.subplots(1, 2)
    vmax = max(0.5, float(np.max(np.abs(rho))))
    mesh = None
    for ax, part, label in zip(axes, (rho.real, rho.imag), ("Re ρ", "Im ρ"), strict=True):
        mesh = ax.pcolormesh(part, cmap="RdBu_r", vmin=-vmax, vmax=vmax, edgecolors="#ffffff", linewidth=0.5)
        ax.set_xlim(0, 4)
        ax.set_ylim(4, 0)
        ax.set_aspect("equal")
        ax.set_title(label, fontsize=10)
        ax.set_xticks(np.arange(4) + 0.5, _BASIS_LABELS, fontsize=8)
        ax.set_yticks(np.arange(4) + 0.5, _BASIS_LABELS, fontsize=8)
        for (i, j), v in np.ndenumerate(part):
            ax.text(
                j + 0.5,
                i + 0.5,
                f"{v:+.3f}",
                ha="center",
                va="center",
                fontsize=7,
                color="#ffffff" if abs(v) > 0.6 * vmax else "#24292f",
            )
    fig.subplots_adjust(left=0.08, right=0.86, bottom=0.1, top=0.9, wspace=0.35)
    fig.colorbar(mesh, cax=fig.add_axes((0.89, 0.14, 0.02, 0.72)))
    return _to_svg(fig, salt)


def logical_svg(points: list[LogicalPoint], salt: str) -> str:
    """Return inline SVG of logical error rate vs code distance (log scale), one series per code family and basis."""
    fig = _figure(5.0, 3.2)
    ax = fig.add_subplot()
    series: dict[str, list[LogicalPoint]] = {}
    for p in points:
        series.setdefault(f"{p.family} ({p.basis})" if p.basis else p.family, []).append(p)
    markers = "osD^vP"
    floor = min((p.ci_low for p in points if p.ci_low > 0), default=1e-6)
    for k, (label, pts) in enumerate(sorted(series.items())):
        pts = sorted(pts, key=lambda p: p.distance)
        d = np.array([p.distance for p in pts], dtype=float)
        rate = np.array([p.rate for p in pts])
        lo, hi = np.array([p.ci_low for p in pts]), np.array([p.ci_high for p in pts])
        seen = rate > 0
        line = ax.errorbar(
            d[seen],
            rate[seen],
            yerr=[rate[seen] - np.maximum(lo[seen], floor / 10), hi[seen] - rate[seen]],
            fmt=markers[k % len(markers)] + "-",
            capsize=3,
            ms=5,
            label=label,
        )
        if np.any(~seen):
            # No logical error seen: the Wilson upper bound is all that is known.
            colour = line[0].get_color()
            ax.plot(d[~seen], hi[~seen], "v", color=colour, mfc="none", ms=7, label=f"{label}: upper bound, 0 errors")
    ax.set_yscale("log")
    ax.set_xlabel("code distance d", fontsize=9)
    ax.set_ylabel("logical error rate p_L", fontsize=9)
    ax.set_xticks(sorted({p.distance for p in points}))
    ax.tick_params(labelsize=8)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7)
    _quiet_minor(ax)
    fig.subplots_adjust(left=0.15, right=0.97, bottom=0.15, top=0.95)
    return _to_svg(fig, salt)


def plob_svg(point: PlobPoint, salt: str) -> str:
    """Return inline SVG of the measured ebits per channel use against the PLOB bound -log2(1 - eta)."""
    from harness.analysis.capacities import plob_bound

    fig = _figure(5.0, 3.2)
    ax = fig.add_subplot()
    lo = min(1e-4, point.eta / 10)
    eta = np.geomspace(lo, 0.999, 60)
    ax.plot(eta, plob_bound(eta), color="#24292f", lw=1.5, label="PLOB bound −log₂(1−η)")
    bound = float(plob_bound(point.eta))
    ax.errorbar(
        [point.eta],
        [point.ebits_per_use],
        yerr=[[point.ebits_per_use - point.ebits_low], [point.ebits_high - point.ebits_per_use]],
        fmt="o",
        color=VERDICT_COLOURS["IMPROVED"],
        capsize=3,
        label=f"measured: {point.ebits_per_use:.3g} ebit/use ({point.ebits_per_use / bound:.1%} of bound)",
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("transmissivity η (heralding efficiency of B)", fontsize=9)
    ax.set_ylabel("ebits per channel use", fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    _quiet_minor(ax)
    fig.subplots_adjust(left=0.14, right=0.97, bottom=0.15, top=0.95)
    return _to_svg(fig, salt)
