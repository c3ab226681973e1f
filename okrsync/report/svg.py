"""A KR's trend as a small inline SVG chart, drawn from its (downsampled) history.

x is the whole period, y the progress (0 = start, 1 = target). The dotted diagonal is the
expected progress, the solid line the KR's values, the dashed line the forecast to the
period's end; a thin vertical line marks the as-of moment.
"""

from __future__ import annotations

from html import escape

from okrsync.numfmt import number
from okrsync.progress.maths import kr_progress
from okrsync.report.forecast import Forecast
from okrsync.report.model import KRReport

W, H, PAD = 240, 64, 4
LOW, HIGH = -0.5, 1.5  # progress drawn at most this far below the start / past the target
COLOUR = {
    "done": "#1a7f37",
    "on_track": "#2da44e",
    "at_risk": "#bf8700",
    "off_track": "#cf222e",
    "stale": "#8250df",
    "no_data": "#8c959f",
}


def chart(k: KRReport, starts: float, ends: float, as_of: float) -> str:
    """The chart of `k` over the period [starts, ends] (Unix seconds) as of `as_of`."""
    kr = k.view.kr
    start = kr.start
    label = escape(f"{kr.id}: trend, expected progress and forecast", quote=True)
    if start is None:
        return f'<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{label}"></svg>'
    points = [(p.at, kr_progress(p.value, start, kr.target)) for p in k.points]
    ahead: list[tuple[float, float]] = []
    if isinstance(k.forecast, Forecast):
        f = k.forecast
        ahead = [
            (f.starts.timestamp(), kr_progress(f.start_value, start, kr.target)),
            (ends, kr_progress(f.value, start, kr.target)),
        ]
    ys = [y for _, y in points + ahead]
    lo = max(LOW, min([0.0, *ys]))
    hi = min(HIGH, max([1.0, *ys]))
    span = max(ends - starts, 1.0)

    def xy(t: float, p: float) -> str:
        x = PAD + (W - 2 * PAD) * (t - starts) / span
        y = H - PAD - (H - 2 * PAD) * (min(max(p, lo), hi) - lo) / (hi - lo)
        return f"{x:.1f},{y:.1f}"

    colour = COLOUR[k.view.status]
    parts = [
        f'<svg class="chart" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" '
        f'aria-label="{label}">',
        f"<title>{escape(_title(k))}</title>",
        f'<rect x="0" y="0" width="{W}" height="{H}" fill="#f6f8fa"/>',
        f'<polyline class="target" points="{xy(starts, 1)} {xy(ends, 1)}" stroke="#d0d7de" '
        'fill="none"/>',
        f'<polyline class="expected" points="{xy(starts, 0)} {xy(ends, 1)}" stroke="#8c959f" '
        'stroke-dasharray="1,3" fill="none"/>',
        f'<line class="now" x1="{xy(as_of, lo).split(",")[0]}" y1="0" '
        f'x2="{xy(as_of, lo).split(",")[0]}" y2="{H}" stroke="#d0d7de"/>',
    ]
    if ahead:
        parts.append(
            f'<polyline class="forecast" points="{" ".join(xy(t, p) for t, p in ahead)}" '
            f'stroke="{colour}" stroke-dasharray="4,3" fill="none"/>'
        )
    if points:
        path = " ".join(xy(t, p) for t, p in points)
        parts.append(
            f'<polyline class="series" points="{path}" stroke="{colour}" stroke-width="1.5" '
            'fill="none"/>'
        )
        x, y = xy(*points[-1]).split(",")
        parts.append(f'<circle cx="{x}" cy="{y}" r="2.5" fill="{colour}"/>')
    parts.append("</svg>")
    return "".join(parts)


def _title(k: KRReport) -> str:
    kr = k.view.kr
    return f"{kr.id}: {len(k.points)} points drawn, latest {number(k.view.obs.value, kr.unit)}"
