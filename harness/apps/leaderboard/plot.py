"""Grouped-bar plot of a leaderboard `Table` (PNG/SVG, matplotlib Agg backend).

One group of bars per set (paper order, gaps between task types) plus the overall average;
one bar per non-delta column. Partial runs are hatched, published columns drawn lighter, and
bootstrap intervals become error bars. The provenance of every column is printed under the axes.
"""

from __future__ import annotations

import os
import textwrap
import warnings
from pathlib import Path

from harness.apps.leaderboard.table import ALL, Table, average_label, provenance_lines
from harness.atomic_files import atomic_write_with
from harness.registry import REGISTRY, TASK_TYPE_NAMES


def _figure(table: Table):
    import matplotlib

    matplotlib.use("Agg", force=False)  # headless machines; no-op if Agg is already active
    from matplotlib.figure import Figure  # a bare Figure avoids pyplot's global state

    columns = [c for c in table.columns if c.kind != "delta"]
    keys = list(table.rows)
    groups: list[tuple[str, str]] = []  # (label, key or "avg:all")
    positions: list[float] = []
    x = 0.0
    previous_type = None
    for key in keys:
        spec = REGISTRY[key]
        if previous_type is not None and spec.task_type != previous_type:
            x += 0.6  # visual gap between task types
        previous_type = spec.task_type
        groups.append((spec.display_name, key))
        positions.append(x)
        x += 1.0
    x += 0.6
    groups.append((average_label(ALL), f"avg:{ALL}"))
    positions.append(x)

    wrap = 170
    footnote: list[str] = []
    for header, lines in provenance_lines(columns):
        # A figure has room for a summary; the tables carry the full provenance of each column.
        text = textwrap.shorten(f"{header}: " + " ".join(lines), width=3 * wrap, placeholder=" … (full provenance in the tables)")
        footnote += textwrap.wrap(text, wrap, subsequent_indent="    ")
    if any(c.partial for c in columns):
        footnote.append("Hatched bars: partial runs (bundled samples or a limit): not comparable with full runs.")
    note_height = 0.16 * len(footnote) + 0.3
    fig = Figure(figsize=(15, 5.6 + note_height), layout="constrained")
    grid = fig.add_gridspec(2, 1, height_ratios=[5.6, note_height])
    ax = fig.add_subplot(grid[0])
    ax_note = fig.add_subplot(grid[1])
    ax_note.axis("off")

    n = max(len(columns), 1)
    width = 0.84 / n
    palette = matplotlib.colormaps["tab10"].colors
    for index, column in enumerate(columns):
        offsets = [p - 0.42 + width * (index + 0.5) for p in positions]
        heights, lows, highs = [], [], []
        for _, key in groups:
            if key.startswith("avg:"):
                value = column.averages()[key[4:]]
                ci = column.average_cis.get(key[4:])
            else:
                cell = column.cells.get(key)
                value, ci = (cell.value, cell.ci) if cell else (None, None)
            heights.append(0.0 if value is None else value)
            lows.append(0.0 if value is None or ci is None else max(0.0, value - ci[0]))
            highs.append(0.0 if value is None or ci is None else max(0.0, ci[1] - value))
        ax.bar(
            offsets,
            heights,
            width=width * 0.95,
            label=column.display_header,
            color=palette[index % len(palette)],
            alpha=0.55 if column.kind == "published" else 0.95,
            hatch="///" if column.partial else None,
            edgecolor="black" if column.partial else "none",
            linewidth=0.4,
            yerr=[lows, highs] if (column.has_ci or column.average_cis) else None,
            error_kw={"elinewidth": 0.7, "capsize": 1.5},
        )
    ax.set_xticks(positions, [label for label, _ in groups], rotation=35, ha="right", fontsize=8)
    ax.set_ylim(0, 100)
    ax.set_ylabel("percent (micro-F1 / accuracy)")
    ax.set_title(table.title, fontsize=11)
    ax.grid(axis="y", linewidth=0.3, alpha=0.6)
    ax.set_axisbelow(True)
    # Task-type labels above their groups.
    for task_type, label in TASK_TYPE_NAMES.items():
        xs = [p for (_, key), p in zip(groups, positions, strict=True) if key in REGISTRY and REGISTRY[key].task_type == task_type]
        if xs:
            ax.text((xs[0] + xs[-1]) / 2, 97, label, ha="center", va="top", fontsize=9, color="#555")
    ax.legend(fontsize=8, ncols=min(n, 6), loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False)
    ax_note.text(0.0, 1.0, "\n".join(footnote), va="top", ha="left", fontsize=6.5, transform=ax_note.transAxes)
    return fig


def write_plot(table: Table, path: str | os.PathLike, fmt: str | None = None) -> Path:
    """Save the plot atomically as PNG or SVG (format from `fmt` or the file suffix)."""
    target = Path(path)
    fmt = (fmt or target.suffix.lstrip(".")).lower()
    if fmt not in ("png", "svg"):
        raise ValueError(f"plot format must be png or svg, not {fmt!r}")
    fig = _figure(table)
    # Fixed metadata keeps regenerated files byte-stable (no timestamps) for version control.
    metadata = {"Date": None} if fmt == "svg" else {"Software": None}
    with warnings.catch_warnings():
        # A CJK character in a model path has no glyph in the default font: draw a box, do not warn.
        warnings.filterwarnings("ignore", message="Glyph .* missing from")
        import matplotlib

        with matplotlib.rc_context({"svg.hashsalt": "taiyi-bench"}):
            atomic_write_with(target, lambda handle: fig.savefig(handle, format=fmt, dpi=150, metadata=metadata))
    return target
