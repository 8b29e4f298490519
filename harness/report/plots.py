"""Plots of a release report: trends across builds, the Bell state, logical error vs distance, rate vs PLOB.

Trend plots are drawn as hand-written SVG: a report holds one per metric and profile (about a hundred),
and drawing each through matplotlib costs ~30 ms of CPU, which alone would exceed the report's time budget.
The Allure PNG variant of a trend and the physics plots use matplotlib (Agg canvas, no pyplot state).
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING

import numpy as np

from harness.report.data import Band, LogicalPoint, PlobPoint, Trend, TrendPoint
from harness.report.text import fmt_number, interval_text

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
CHANGE_COLOUR = "#bc4c00"  # change points across builds: dashed, between the two builds

_W, _H = 380, 200
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 12, 30, 46


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


@dataclass(frozen=True)
class _Frame:
    """The plot box of a trend in px (x0..x1 left to right, y0..y1 top to bottom) and the value range it spans."""

    x0: float
    x1: float
    y0: float
    y1: float
    lo: float
    hi: float

    def y(self, v: float) -> float:
        """Return the pixel row of value v."""
        return self.y1 - (v - self.lo) / (self.hi - self.lo) * (self.y1 - self.y0)


def _y_axis(frame: _Frame) -> list[str]:
    """Return the horizontal grid lines and value labels of a trend."""
    from matplotlib.ticker import MaxNLocator

    ticks = np.asarray(MaxNLocator(5).tick_values(frame.lo, frame.hi))
    ticks = ticks[(ticks >= frame.lo) & (ticks <= frame.hi)]
    out = []
    for t, label in zip(ticks, _tick_labels(ticks), strict=True):
        y = frame.y(float(t))
        out.append(
            f'<line x1="{frame.x0}" x2="{frame.x1}" y1="{y:.1f}" y2="{y:.1f}" stroke="#d0d7de" stroke-width="0.6"/>'
        )
        out.append(f'<text x="{frame.x0 - 4}" y="{y + 3:.1f}" text-anchor="end">{escape(label)}</text>')
    return out


def _band_svg(band: Band, frame: _Frame, show_limit: bool) -> list[str]:
    """Return the baseline band, its value line and the tolerance limit (a line in range, else a note)."""
    x0, x1 = frame.x0, frame.x1
    ya, yb, yv = frame.y(band.ci_high), frame.y(band.ci_low), frame.y(band.value)
    out = [
        f'<rect class="band" x="{x0}" y="{ya:.1f}" width="{x1 - x0}" height="{max(yb - ya, 0.8):.1f}" '
        f'fill="{BAND_COLOUR}" fill-opacity="0.3"><title>baseline {escape(band.build or "")}: '
        f"{interval_text(band.value, band.ci_low, band.ci_high)}</title></rect>",
        f'<line x1="{x0}" x2="{x1}" y1="{yv:.1f}" y2="{yv:.1f}" stroke="{BAND_COLOUR}" stroke-dasharray="5,3"/>',
    ]
    if band.limit is not None and show_limit:
        yl = frame.y(band.limit)
        out.append(
            f'<line class="limit" x1="{x0}" x2="{x1}" y1="{yl:.1f}" y2="{yl:.1f}" stroke="#cf222e" '
            f'stroke-width="0.9" stroke-dasharray="2,2"><title>tolerance limit {fmt_number(band.limit)}</title>'
            "</line>"
        )
    elif band.limit is not None:
        arrow = "↓" if band.limit < frame.lo else "↑"
        out.append(
            f'<text class="limit-note" x="{x1}" y="{frame.y0 - 4}" text-anchor="end" font-size="9" fill="#cf222e">'
            f"limit {fmt_number(band.limit)} {arrow}</text>"
        )
    return out


def _build_labels(trend: Trend, xpos: dict[str, float], y1: float) -> list[str]:
    """Return the build names under a trend's x axis (slanted when many or long; the release build in bold)."""
    rotate = len(xpos) > 4 or max(len(b) for b in xpos) > 8
    out = []
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
    return out


def _point_svg(trend: Trend, p: TrendPoint, x: float, frame: _Frame, unit: str) -> str:
    """Return one build's interval bar and verdict marker, with a tooltip of its estimate."""
    ya, yb, yv = frame.y(p.ci_high), frame.y(p.ci_low), frame.y(p.value)
    bar = (
        f'<path d="M{x:.1f},{ya:.1f}V{yb:.1f}M{x - 4:.1f},{ya:.1f}H{x + 4:.1f}M{x - 4:.1f},{yb:.1f}H{x + 4:.1f}" '
        'stroke="#24292f" stroke-width="1" fill="none"/>'
    )
    verdict = p.verdict or "NO_BASELINE"
    colour = VERDICT_COLOURS.get(verdict, VERDICT_COLOURS["NO_BASELINE"])
    r = 5.0 if p.build == trend.release_build else 3.8
    tip = (
        f"<title>{escape(p.build)}: {interval_text(p.value, p.ci_low, p.ci_high)}"
        f"{escape(unit)} {escape(verdict)}</title>"
    )
    return f"{bar}<g>{_marker(verdict_shape(p.verdict), x, yv, r, colour)}{tip}</g>"


def change_builds(trend: Trend) -> tuple[str, ...]:
    """The builds of a trend where its history changes level (PELT on the stored values, 5% false rate)."""
    from harness.baselines import build_history

    value = {p.build: p.value for p in trend.points}  # a build's last point stands for it
    builds = [b for b in trend.builds if b in value]
    return build_history(builds, [value[b] for b in builds], trend.metric).change_builds()


def _changes_svg(trend: Trend, xpos: dict[str, float], step: float, frame: _Frame) -> list[str]:
    """Return a dashed line before each build that starts a new level, with a tooltip."""
    return [
        f'<g class="change-point"><line x1="{xpos[b] - step / 2:.1f}" x2="{xpos[b] - step / 2:.1f}" '
        f'y1="{frame.y0}" y2="{frame.y1}" stroke="{CHANGE_COLOUR}" stroke-width="1.5" stroke-dasharray="5 3"/>'
        f"<title>change point: {escape(trend.metric)} changes level at {escape(b)}</title></g>"
        for b in change_builds(trend)
    ]


def trend_svg(trend: Trend) -> str:
    """Return an inline SVG (no XML prolog) of a metric across builds: intervals, baseline band, tolerance limit."""
    w, h = _W, _H
    x0, x1, y0, y1 = _LEFT, w - _RIGHT, _TOP, h - _BOTTOM
    unit = f" [{trend.unit}]" if trend.unit else ""
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="trend" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
        f'role="img" font-family="sans-serif" font-size="10">',
        f"<title>Trend of {escape(trend.metric)} across builds of {escape(trend.profile)}</title>",
        f'<rect x="0" y="0" width="{w}" height="{h}" fill="#ffffff"/>',
        f'<text x="{x0}" y="14" font-size="11" font-weight="bold">{escape(trend.metric + unit)}</text>',
    ]
    if not trend.points:
        out.append(f'<text x="{(x0 + x1) / 2}" y="{(y0 + y1) / 2}" text-anchor="middle">no data</text></svg>')
        return "".join(out)
    lo, hi, show_limit = _y_range(trend)
    frame = _Frame(x0, x1, y0, y1, lo, hi)
    step = (x1 - x0) / max(len(trend.builds), 1)
    xpos = {b: x0 + step * (i + 0.5) for i, b in enumerate(trend.builds)}
    out += _y_axis(frame)
    if trend.band is not None:
        out += _band_svg(trend.band, frame, show_limit)
    out.append(f'<rect x="{x0}" y="{y0}" width="{x1 - x0}" height="{y1 - y0}" fill="none" stroke="#57606a"/>')
    out += _build_labels(trend, xpos, y1)
    out += _changes_svg(trend, xpos, step, frame)
    out += [_point_svg(trend, p, xpos[p.build], frame, unit) for p in trend.points]
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
    for i, b in enumerate(change_builds(trend)):
        ax.axvline(idx[b] - 0.5, color=CHANGE_COLOUR, ls="--", lw=1.2, label=None if i else "change point")
    ax.set_xticks(range(len(trend.builds)), trend.builds, rotation=30 if len(trend.builds) > 4 else 0, fontsize=7)
    ax.set_xlim(-0.5, max(len(trend.builds) - 0.5, 0.5))
    ax.tick_params(axis="y", labelsize=7)
    if ax.get_legend_handles_labels()[0]:
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
