"""The picture of a timeline (`fluxbus timeline -o FILE.png|FILE.svg`): one lane per
object with its sync states as coloured bands and its marks labelled, and below
them the table of the same events.

Adapter: the only module that imports matplotlib (the optional `fluxbus[plot]`
extra). It draws on a bare `Figure` with the Agg canvas (no pyplot, no display,
no global state) and writes the file; callers run it in a worker thread.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.dates as mdates
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from fluxbus_cli.logic.timeline import MarkKind, SyncState, Timeline

STATE_COLOURS = {
    SyncState.SYNCED: "#2e9d4a",
    SyncState.OUT_OF_SYNC: "#f0a202",
    SyncState.RECONCILING: "#3b7dd8",
    SyncState.FAILED: "#d7263d",
}
MARK_STYLES: dict[MarkKind, tuple[str, str]] = {
    MarkKind.DRIFT: ("X", "#8a1c7c"),
    MarkKind.NEW_REVISION: ("^", "#1b1b1b"),
    MarkKind.PRUNED: ("v", "#6b4226"),
    MarkKind.IMAGE_BUMPED: ("D", "#0a7e8c"),
    MarkKind.NOTIFIED: ("s", "#5c5c5c"),
    MarkKind.WEBHOOK: ("P", "#444488"),
    MarkKind.FAILED: ("o", "#d7263d"),
    MarkKind.EVENT: (".", "#999999"),
}
"""Marker and colour of each kind of mark (unlabelled: plain events)."""
LABELLED = frozenset(MarkKind) - {MarkKind.EVENT}
TABLE_ROWS = 40
"""Most recent events listed under the lanes; the text output lists them all."""
LANE_HEIGHT = 0.7
BAND_HEIGHT = 0.5


def write_timeline(tl: Timeline, path: Path) -> None:
    """Draw `tl` and write it to `path` (PNG or SVG, from the suffix). Raises OSError."""
    rows = [[m.at.strftime("%H:%M:%S"), str(m.obj), str(m.kind), m.label] for m in tl.marks][
        -TABLE_ROWS:
    ]
    lanes = max(1, len(tl.objects))
    lanes_h = 1.6 + LANE_HEIGHT * lanes
    table_h = 0.6 + 0.22 * len(rows) if rows else 0.0
    fig = Figure(figsize=(14, lanes_h + table_h), layout="constrained")
    FigureCanvasAgg(fig)
    if rows:
        axes, table_ax = fig.subplots(
            2, 1, height_ratios=[lanes_h, table_h], gridspec_kw={"hspace": 0.02}
        )
    else:
        axes, table_ax = fig.subplots(1, 1), None
    _draw_lanes(axes, tl)
    if table_ax is not None:
        _draw_table(table_ax, rows, len(tl.marks))
    fig.savefig(path, format=path.suffix.lower().lstrip("."), dpi=110)


def _draw_lanes(ax: Axes, tl: Timeline) -> None:
    start, end = mdates.date2num(tl.start), mdates.date2num(tl.end)
    index = {obj: i for i, obj in enumerate(tl.objects)}
    for band in tl.bands:
        lo, hi = mdates.date2num(band.start), mdates.date2num(band.end)
        ax.broken_barh(
            [(lo, hi - lo)],
            (index[band.obj] - BAND_HEIGHT / 2, BAND_HEIGHT),
            facecolors=STATE_COLOURS[band.state],
            edgecolor="none",
        )
    labelled: dict[object, int] = {}
    for mark in tl.marks:
        marker, colour = MARK_STYLES[mark.kind]
        x, y = mdates.date2num(mark.at), index[mark.obj]
        ax.plot([x], [y], marker=marker, color=colour, markersize=8, linestyle="none")
        if mark.kind in LABELLED:
            # Alternate above and below the lane so neighbouring labels do not overlap.
            n = labelled[mark.obj] = labelled.get(mark.obj, -1) + 1
            dy = -0.33 if n % 2 == 0 else 0.38
            ax.annotate(
                mark.label,
                (x, y),
                xytext=(x, y + dy),
                fontsize=7,
                color=colour,
                rotation=12,
                ha="left",
                va="center",
                bbox={"boxstyle": "round,pad=0.1", "fc": "white", "alpha": 0.75, "ec": "none"},
            )
    ax.set_xlim(start, end if end > start else start + 1 / 86400)
    ax.set_ylim(len(tl.objects) - 0.4, -0.6)
    ax.set_yticks(range(len(tl.objects)), [str(o) for o in tl.objects], fontsize=8)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(
        f"fluxbus timeline {tl.start:%Y-%m-%d %H:%M:%S} → {tl.end:%H:%M:%S} UTC", fontsize=10
    )
    handles = [Patch(color=c, label=str(s)) for s, c in STATE_COLOURS.items()] + [
        Line2D([], [], marker=m, color=c, linestyle="none", label=str(k))
        for k, (m, c) in MARK_STYLES.items()
    ]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7)


def _draw_table(ax: Axes, rows: list[list[str]], total: int) -> None:
    ax.axis("off")
    title = "events" if total <= len(rows) else f"last {len(rows)} of {total} events"
    ax.set_title(title, fontsize=9, loc="left")
    table = ax.table(
        cellText=rows,
        colLabels=["time", "object", "what", "detail"],
        colWidths=[0.08, 0.3, 0.14, 0.48],
        loc="upper left",
        cellLoc="left",
    )
    table.auto_set_font_size(False)
    table.set_fontsize(7)
