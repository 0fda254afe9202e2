"""Grouped-bar plot of a leaderboard `Table` (PNG/SVG, matplotlib Agg backend).

One group of bars per set (paper order, gaps between task types) plus the overall average;
one bar per non-delta column. Partial runs are hatched, published columns drawn lighter, and
bootstrap intervals become error bars. A score of 0 is drawn as a flat bar with a "0" over it; a
missing cell (no result, skipped, or an average with a missing set) as a grey "n/a": the two can
never look alike. The figure carries no provenance: that goes to a caption file beside it
(`<name>.caption.txt`, `caption_text`) and to the tables. `figure_bytes` and `save_figure` draw
any figure in the same fonts (CJK-capable first) and settings: `taiyi report`'s plots use them.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from taiyi_bench.harness.apps.leaderboard.rules import headline_rule
from taiyi_bench.harness.apps.leaderboard.table import ALL, Column, Table, average_label, provenance_lines
from taiyi_bench.harness.atomic_files import atomic_write_text, atomic_write_with
from taiyi_bench.harness.registry import REGISTRY, TASK_TYPE_NAMES

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# Every plot's fonts: CJK-capable families first, so that Chinese in a label is drawn where one is
# installed (Debian/Ubuntu: fonts-noto-cjk; macOS: PingFang; Windows: Microsoft YaHei), then
# matplotlib's own DejaVu Sans, which has no Chinese, for everything else.
FONT_FAMILIES = ["Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Micro Hei", "PingFang SC", "Microsoft YaHei",
                 "DejaVu Sans"]
OTHER_RULE = object()  # marker: a published cell by another rule than its bar group's


def _figure(table: Table) -> Figure:
    import matplotlib
    from matplotlib.figure import Figure  # a bare Figure avoids pyplot's global state

    columns = [c for c in table.columns if c.kind != "delta"]
    groups, positions = _bar_groups(table)
    fig = Figure(figsize=(15, 6.2), layout="constrained")
    ax = fig.add_subplot()
    width = 0.84 / max(len(columns), 1)
    palette = matplotlib.colormaps["tab10"].colors
    for index, column in enumerate(columns):
        offsets = [p - 0.42 + width * (index + 0.5) for p in positions]
        _draw_column(ax, column, [key for _, key in groups], offsets, width, palette[index % len(palette)])
    ax.set_xticks(positions, [label for label, _ in groups], rotation=35, ha="right", fontsize=8)
    ax.set_ylim(0, 100)
    ax.set_ylabel("percent (micro-F1 / accuracy)")
    ax.set_title(table.title, fontsize=11, parse_math=False)
    ax.grid(axis="y", linewidth=0.3, alpha=0.6)
    ax.set_axisbelow(True)
    # Task-type labels above their groups.
    for task_type, label in TASK_TYPE_NAMES.items():
        xs = [p for (_, key), p in zip(groups, positions, strict=True) if key in REGISTRY and REGISTRY[key].task_type == task_type]
        if xs:
            ax.text((xs[0] + xs[-1]) / 2, 97, label, ha="center", va="top", fontsize=9, color="#555")
    _legend(ax, columns)
    return fig


def _bar_groups(table: Table) -> tuple[list[tuple[str, str]], list[float]]:
    """(label, set key or "avg:all") per group of bars and its x position: sets in table order,
    a gap between task types, then the overall average."""
    groups: list[tuple[str, str]] = []
    positions: list[float] = []
    x = 0.0
    previous_type = None
    for key in table.rows:
        spec = REGISTRY[key]
        if previous_type is not None and spec.task_type != previous_type:
            x += 0.6
        previous_type = spec.task_type
        groups.append((spec.display_name, key))
        positions.append(x)
        x += 1.0
    groups.append((average_label(ALL), f"avg:{ALL}"))
    positions.append(x + 0.6)
    return groups, positions


def _bar(column: Column, key: str) -> tuple[float | None | object, tuple[float, float] | None]:
    """(value, interval) of one column's bar in a group; OTHER_RULE for a number by another rule."""
    if key.startswith("avg:"):
        return column.averages()[key[4:]], column.average_cis.get(key[4:])
    cell = column.cells.get(key)
    if cell is None:
        return None, None
    # The bars of a group share one rule, the set's headline: a published number by another rule
    # (a seqeval-scored SOTA beside text-level runs) is not drawn there.
    if cell.rule is not None and cell.rule != headline_rule(key):
        return OTHER_RULE, None
    return cell.value, cell.ci


def _draw_column(ax, column: Column, keys: list[str], offsets: list[float], width: float, color) -> None:
    heights, lows, highs = [], [], []
    for bar_x, key in zip(offsets, keys, strict=True):
        value, ci = _bar(column, key)
        number = value if isinstance(value, (int, float)) else None
        heights.append(number or 0.0)
        lows.append(0.0 if number is None or ci is None else max(0.0, number - ci[0]))
        highs.append(0.0 if number is None or ci is None else max(0.0, ci[1] - number))
        if value is OTHER_RULE or value is None:  # no bar: a grey mark says there is no number here, or none by this rule
            absent = "other rule" if value is OTHER_RULE else "n/a"
            ax.text(bar_x, 1.0, absent, rotation=90, ha="center", va="bottom", fontsize=6, color="#888")
        elif round(number, 1) == 0:  # a real zero: a flat bar in the column's colour, labelled
            ax.plot([bar_x - width * 0.45, bar_x + width * 0.45], [0.35, 0.35], color=color, linewidth=3,
                    solid_capstyle="butt")
            ax.text(bar_x, 1.2, "0", ha="center", va="bottom", fontsize=6.5, color="black")
    ax.bar(offsets, heights, width=width * 0.95, label=column.display_header, color=color,
           alpha=0.55 if column.kind == "published" else 0.95, hatch="///" if column.partial else None,
           edgecolor="black" if column.partial else "none", linewidth=0.4,
           yerr=[lows, highs] if (column.has_ci or column.average_cis) else None, error_kw={"elinewidth": 0.7, "capsize": 1.5})


def _legend(ax, columns: list[Column]) -> None:
    key = ("n/a: no result (missing, not zero); a flat bar marked 0 scored 0; other rule: a published number "
           "computed by another rule than the set's headline (see the tables)")
    if any(c.partial for c in columns):
        key += "; hatched: partial run (bundled samples or a limit), not comparable with full runs"
    legend = ax.legend(fontsize=8, ncols=min(max(len(columns), 1), 6), loc="upper center", bbox_to_anchor=(0.5, -0.2),
                       frameon=False, title=key + ". Provenance: the caption file and the tables.", title_fontsize=7)
    # Column headers are model names and user text: "$x$" or a lone "$" must be drawn as written,
    # not parsed as mathtext (a parse error would stop the plot, and `taiyi report` with it).
    for text in (*legend.get_texts(), legend.get_title()):
        text.set_parse_math(False)


def caption_text(table: Table) -> str:
    """What the figure shows and where every column comes from: the plot's caption file."""
    lines = [table.title, "", table.caption, "",
             "Bars: one per column and set; error bars are 95% bootstrap intervals where computed. "
             "A grey n/a marks a missing cell (no result, skipped, or an average over a missing set); "
             "a flat bar marked 0 is a score of 0. Hatched bars are partial runs (bundled samples or a limit).",
             "", "Provenance:"]
    lines += [f"- {header}: " + " ".join(column_lines)
              for header, column_lines in provenance_lines([c for c in table.columns if c.kind != "delta"])]
    if table.notes:
        lines += ["", "Notes:", *(f"- {note}" for note in table.notes)]
    return "\n".join(lines) + "\n"


def caption_path(plot_path: str | os.PathLike) -> Path:
    path = Path(plot_path)
    return path.with_name(f"{path.stem}.caption.txt")


def plot_bytes(table: Table, fmt: str = "svg") -> bytes:
    """The plot as PNG or SVG bytes (for pages that embed it)."""
    return figure_bytes(lambda: _figure(table), fmt)


def figure_bytes(build: Callable[[], Figure], fmt: str = "svg") -> bytes:
    """The figure `build()` makes, drawn in the house style, as PNG or SVG bytes."""
    buffer = io.BytesIO()
    save_figure(build, buffer, fmt)
    return buffer.getvalue()


@functools.cache
def _learn_new_system_fonts() -> None:
    """Matplotlib caches the system's font list once per matplotlib version, so a CJK font installed
    after its first use stays unknown to it (boxes for Chinese) until that cache is deleted. When
    none of `FONT_FAMILIES`' CJK fonts is known, add the font files it has not seen (once a process)."""
    from matplotlib import font_manager

    manager = font_manager.fontManager
    if {font.name for font in manager.ttflist} & set(FONT_FAMILIES[:-1]):
        return
    known = {font.fname for font in manager.ttflist}
    for path in font_manager.findSystemFonts():
        if path not in known:
            with contextlib.suppress(Exception):  # a file FreeType cannot read is one font less, not a failed plot
                manager.addfont(path)


def save_figure(build: Callable[[], Figure], handle, fmt: str) -> None:
    """Build the figure and save it, with the fonts and settings every plot of ours uses (a text's
    font is fixed when it is made, so the figure is built inside them too)."""
    import matplotlib

    matplotlib.use("Agg", force=False)  # headless machines; no-op if Agg is already active
    _learn_new_system_fonts()
    # Fixed metadata keeps regenerated files byte-stable (no timestamps) for version control.
    metadata = {"Date": None} if fmt == "svg" else {"Software": None}
    font_log = logging.getLogger("matplotlib.font_manager")
    quiet, font_log.disabled = font_log.disabled, True  # one "not found" line per missing family and text
    try:
        with warnings.catch_warnings():
            # A character no font of the list has (Chinese without a CJK font) is drawn as a box: no warning.
            warnings.filterwarnings("ignore", message="Glyph .* missing from")
            # SVG text stays text (searchable, selectable, and a fraction of the size of glyph paths) and
            # names the whole font list, which the browser resolves. usetex off: a TeX install would
            # read `$`, `_` and `%` in model names as TeX.
            with matplotlib.rc_context({"svg.hashsalt": "taiyi-bench", "svg.fonttype": "none", "text.usetex": False,
                                        "font.family": FONT_FAMILIES}):
                build().savefig(handle, format=fmt, dpi=150, metadata=metadata)
    finally:
        font_log.disabled = quiet


def write_plot(table: Table, path: str | os.PathLike, fmt: str | None = None) -> Path:
    """Save the plot atomically as PNG or SVG (format from `fmt` or the file suffix), and its
    caption file (`caption_path`) beside it."""
    target = Path(path)
    fmt = (fmt or target.suffix.lstrip(".")).lower()
    if fmt not in ("png", "svg"):
        raise ValueError(f"plot format must be png or svg, not {fmt!r}")
    atomic_write_with(target, lambda handle: save_figure(lambda: _figure(table), handle, fmt))
    atomic_write_text(caption_path(target), caption_text(table))
    return target
