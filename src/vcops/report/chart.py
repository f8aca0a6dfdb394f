"""The compliance trend chart, drawn by matplotlib (the Agg canvas, no pyplot, no display): one PNG for the
drift mail, the dashboard and the evidence pack.

Dates on the x axis, the score in percent on the y axis, one labelled line for the
whole baseline and one per Code of Practice clause. The plotted series are written into
the PNG's ``Description`` text chunk as JSON, read back from the figure's own lines, so
what the picture shows can be checked against the store without reading pixels. Pure:
points in, PNG bytes out. Example::

    trend_png([ScorePoint(scan_id=1, at=..., score=80.0, clauses={"3.2.1": 75.0, "3.2.2": 90.0})])
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from vcops.findings_store import ScorePoint

if TYPE_CHECKING:
    from matplotlib.figure import Figure

CLAUSE_LABELS = {"3.2.1": "3.2.1 security measures", "3.2.2": "3.2.2 update and patch"}
OVERALL = "all controls"
COLOURS = {OVERALL: "#222222", "3.2.1": "#1f77b4", "3.2.2": "#d62728"}


def series(points: Sequence[ScorePoint]) -> dict[str, list[tuple[str, float]]]:
    """``{label: [(iso time, score), ...]}``: what the chart plots, one series per line."""
    out: dict[str, list[tuple[str, float]]] = {
        OVERALL: [(p.at.isoformat(), p.score) for p in points]
    }
    for clause in sorted({c for p in points for c in p.clauses}):
        out[CLAUSE_LABELS.get(clause, clause)] = [
            (p.at.isoformat(), p.clauses[clause]) for p in points if clause in p.clauses
        ]
    return out


def trend_figure(
    points: Sequence[ScorePoint], *, width: float = 6.4, height: float = 2.6
) -> Figure:
    """The figure: x = scan time, y = percent compliant (0-100), a line per series."""
    # matplotlib takes 0.3 s to import: only commands that draw pay for it
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    for label, values in series(points).items():
        if not values:
            continue
        clause = next((c for c, name in CLAUSE_LABELS.items() if name == label), label)
        xs = [p.at for p in points if label == OVERALL or clause in p.clauses]
        ax.plot(
            xs,  # type: ignore[arg-type]
            [v for _, v in values],
            marker="o",
            markersize=3,
            linewidth=1.5,
            label=label,
            color=COLOURS.get(clause),
        )
    ax.set_ylim(0, 100)
    ax.set_ylabel("compliant (%)")
    ax.set_xlabel("scan date (UTC)")
    ax.set_title("Compliance trend (Code of Practice 3.2)", fontsize=10)
    locator = AutoDateLocator()  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    ax.grid(True, alpha=0.3)
    if points:
        ax.legend(loc="lower left", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no scan recorded yet", ha="center", va="center", transform=ax.transAxes)
    return fig


def plotted(fig: Figure) -> dict[str, list[float]]:
    """What the figure's lines hold: ``{label: [y, ...]}`` (read from the lines themselves)."""
    ax = fig.axes[0]
    out: dict[str, list[float]] = {}
    for line in ax.get_lines():
        ys: Sequence[float] = line.get_ydata()  # type: ignore[assignment]
        out[str(line.get_label())] = [float(y) for y in ys]
    return out


def trend_png(points: Sequence[ScorePoint], *, width: float = 6.4, height: float = 2.6) -> bytes:
    """The chart as PNG, its plotted series in the ``Description`` text chunk."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = trend_figure(points, width=width, height=height)
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(
        buf,
        format="png",
        metadata={"Description": json.dumps(plotted(fig)), "Title": "vcops compliance trend"},
    )
    return buf.getvalue()
