"""The plots of `taiyi report` (SVG): the verdict kinds per set and run, run B minus run A per set
with its paired bootstrap interval, the parse-failure rate per set and run, and each run's score
against its cost.

Sets are rows (paper order, top down) so that their display names read horizontally; every figure
is drawn by `leaderboard.plot.figure_bytes`, with the leaderboard plot's CJK-capable fonts.
"""

from __future__ import annotations

import math
import textwrap
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from statistics import fmean
from typing import TYPE_CHECKING, Any

from taiyi_bench.harness.apps.leaderboard.bootstrap import too_few_units
from taiyi_bench.harness.apps.leaderboard.plot import figure_bytes
from taiyi_bench.harness.apps.leaderboard.table import fmt_pct
from taiyi_bench.harness.registry import REGISTRY
from taiyi_bench.harness.verdicts import VERDICT_TEXT, error_verdicts, grounded_flags

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from taiyi_bench.harness.apps.leaderboard.build import PairedReport
    from taiyi_bench.harness.apps.run_views import RunView, UnitView

UNGROUNDED = "spurious_not_in_text"
UNREADABLE = "missed_unreadable"
# Stacking order and colour of each kind: matched first, near misses in yellows and oranges, then
# predictions with no gold counterpart in reds, then gold items missed (greys; dark where the output
# could not be read at all).
KIND_COLORS = {
    "matched": "#2e7d32", "boundary": "#aed581", "lenient_refused": "#8d6e63", "wrong_type": "#fdd835",
    "wrong_label": "#ffe082", "reversed": "#ffb300", "wrong_relation": "#fb8c00", "wrong_relation_reversed": "#f4511e",
    "extra_label": "#f8bbd0", "unknown_label": "#ab47bc", "wrong_option": "#e53935", "spurious": "#ef9a9a",
    UNGROUNDED: "#b71c1c", "no_choice": "#b0bec5", "missed": "#78909c", UNREADABLE: "#263238",
}
KIND_TEXT = {**VERDICT_TEXT, "spurious": "spurious (in the text)", UNGROUNDED: "spurious, not in the text",
             UNREADABLE: "missed: output unreadable"}
RUN_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def verdict_kinds(units: Iterable[UnitView]) -> Counter:
    """Judged items per kind: gold items matched, then each error (`error_verdicts`), with spurious
    predictions split by whether they occur in the unit's text and the gold an unreadable output
    missed told apart from gold a readable one missed."""
    kinds: Counter = Counter()
    for unit in units:
        verdicts = unit.verdicts
        errors = error_verdicts(verdicts)
        if errors.pop("parse_fail", 0):  # nothing was predicted: every error is a gold item missed
            errors = Counter({UNREADABLE: sum(errors.values())})
        ungrounded = sum(1 for item in verdicts["predicted"] if item["verdict"] == "spurious"
                         and item.get("counted", True) and not all(grounded_flags(item)))
        errors.update({"spurious": -ungrounded, UNGROUNDED: ungrounded})
        kinds.update(errors)
        kinds["matched"] += sum(1 for item in verdicts["gold"] if item["verdict"] == "matched")
    return +kinds  # drops the kinds that never occur


def _set_axis(ax: Axes, keys: Sequence[str]) -> None:
    ax.set_yticks(range(len(keys)), [REGISTRY[key].display_name for key in keys], fontsize=8)
    ax.set_ylim(len(keys) - 0.5, -0.5)  # the first set on top
    ax.grid(axis="x", linewidth=0.3, alpha=0.6)
    ax.set_axisbelow(True)


def _wrapped(text: str, width: int) -> str:
    """`text` on lines of at most `width` characters (a run's name in a title, legend or label)."""
    return "\n".join(textwrap.wrap(text, width)) or text


def _new_figure(width: float, n_rows: int, n_cols: int = 1):
    from matplotlib.figure import Figure  # a bare Figure avoids pyplot's global state

    fig = Figure(figsize=(width, 1.8 + 0.32 * n_rows), layout="constrained")
    return fig, fig.subplots(1, n_cols, sharey=True, squeeze=False)[0]


def verdict_kinds_svg(views: Sequence[RunView], keys: Sequence[str]) -> bytes:
    """One panel per run: per set, the share of each verdict kind among its judged items."""

    def build():
        fig, axes = _new_figure(max(8.0, 5.0 * len(views)), len(keys), len(views))
        counts = {(index, key): verdict_kinds(view.tasks[key].units.values())
                  for index, view in enumerate(views) for key in keys if key in view.tasks}
        shown = [kind for kind in KIND_COLORS if any(kind in c for c in counts.values())]
        for index, (ax, view) in enumerate(zip(axes, views, strict=True)):
            _set_axis(ax, keys)
            for row, key in enumerate(keys):
                kinds = counts.get((index, key))
                if not kinds:
                    ax.text(1, row, "no samples" if kinds is None else "nothing to judge", va="center", fontsize=7, color="#888")
                    continue
                total, left = sum(kinds.values()), 0.0
                for kind in shown:
                    share = 100 * kinds[kind] / total
                    ax.barh(row, share, left=left, color=KIND_COLORS[kind], height=0.7)
                    left += share
                ax.text(101, row, f"{total}", va="center", fontsize=7, color="#444")
            ax.set_xlim(0, 108)
            ax.set_xlabel("share of judged items (%); the number: items judged")
            ax.set_title(_wrapped(view.label, 50), fontsize=9, parse_math=False)
        _kind_legend(fig, shown)
        fig.suptitle("Verdicts: what became of every gold and predicted item", fontsize=11)
        return fig

    return figure_bytes(build)


def _kind_legend(fig, kinds: Sequence[str]) -> None:
    from matplotlib.patches import Patch

    handles = [Patch(color=KIND_COLORS[kind], label=KIND_TEXT.get(kind, kind)) for kind in kinds]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 5), fontsize=8, frameon=False)


def paired_deltas_svg(report: PairedReport, keys: Sequence[str]) -> bytes:
    """Per set, `report`'s delta (its run A minus its run B) with its 95% paired bootstrap interval;
    a set of too few units (`too_few_units`) is a grey bar without one."""
    from matplotlib.patches import Patch

    colors = {"up": "#2e7d32", "down": "#c62828", "either": "#78909c", "few": "#cfd8dc"}

    def build():
        fig, (ax,) = _new_figure(11.0, len(keys))
        _set_axis(ax, keys)
        for row, key in enumerate(keys):
            result = report.rows.get(key)
            if result is None:
                ax.text(0, row, " not in both runs (with samples)", va="center", fontsize=7, color="#888")
                continue
            delta, few = result.delta * 100, too_few_units(result.n_units)
            side = "few" if few else "up" if result.low > 0 else "down" if result.high < 0 else "either"
            # max(0, ..): a percentile interval need not contain its point estimate
            error = None if few else [[max(0.0, delta - result.low * 100)], [max(0.0, result.high * 100 - delta)]]
            ax.barh(row, delta, color=colors[side], height=0.6, xerr=error, error_kw={"elinewidth": 0.8, "capsize": 2})
            label = f" {fmt_pct(delta, signed=True)}" + (f" ({result.n_units} units: no interval)" if few else "")
            ax.text(0, row - 0.36, label, fontsize=7, color="#333", va="bottom")
        ax.axvline(0, color="black", linewidth=0.8)
        low, high = ax.get_xlim()
        ax.set_xlim(min(low, -5), max(high, 5))  # all-zero differences: points, not hundredths of one
        ax.set_xlabel("difference in percentage points (micro-F1 / accuracy), 95% paired bootstrap interval")
        ax.set_title(_wrapped(f"{report.a.display_header} minus {report.b.display_header}", 100), fontsize=10, parse_math=False)
        fig.legend(handles=[Patch(color=colors[k], label=text) for k, text in (
            ("up", "interval above 0"), ("down", "interval below 0"), ("either", "interval includes 0"),
            ("few", "too few units for an interval"))], loc="outside lower center", ncols=4, fontsize=8, frameon=False)
        return fig

    return figure_bytes(build)


def parse_failures_svg(views: Sequence[RunView], keys: Sequence[str]) -> bytes:
    """Per set, one bar per run: the percent of units whose output could not be read."""

    def build():
        fig, (ax,) = _new_figure(11.0, len(keys) * max(1, len(views)) / 2)
        _set_axis(ax, keys)
        height = 0.8 / max(len(views), 1)
        for index, view in enumerate(views):
            tasks = [(row, view.tasks[key]) for row, key in enumerate(keys) if key in view.tasks and view.tasks[key].units]
            ys = [row - 0.4 + height * (index + 0.5) for row, _ in tasks]
            failed = [sum(1 for unit in task.units.values() if unit.verdicts.get("parse_fail")) for _, task in tasks]
            rates = [100 * n / len(task.units) for n, (_, task) in zip(failed, tasks, strict=True)]
            ax.barh(ys, rates, height=height * 0.9, color=RUN_COLORS[index % len(RUN_COLORS)], label=_wrapped(view.label, 80))
            for y, rate, n, (_, task) in zip(ys, rates, failed, tasks, strict=True):
                ax.text(rate + 0.5, y, f"{n}/{len(task.units)}", va="center", fontsize=6.5)
        ax.set_xlim(0, 108)
        ax.set_xlabel("units whose output could not be read (%); the numbers: failed / units")
        ax.set_title("Parse failures (scored as empty predictions)", fontsize=10)
        legend = fig.legend(loc="outside lower center", ncols=min(len(views), 3), fontsize=8, frameon=False)
        for text in legend.get_texts():
            text.set_parse_math(False)  # a run's name is user text: "$" is a dollar, not math
        return fig

    return figure_bytes(build)


# What a unit cost, by each measure a run's cost record (`taiyi_bench.harness.lmeval.cost`) can
# give: the field summed over a set's units, and the units it is stated per.
COST_MEASURES: Mapping[str, tuple[str, int]] = {
    "generated tokens per unit": ("generated_tokens", 1),
    "seconds per unit": ("seconds", 1),
    "USD per 1,000 units": ("estimated_usd", 1000),
}


@dataclass
class CostPoint:
    """One run in the cost-vs-score plot, over the sets every plotted run has: its mean headline
    score (percent) and, per measure recorded for all those sets, its mean cost (`COST_MEASURES`)."""

    label: str
    color: str
    score: float
    costs: dict[str, float]


def _per_unit(summary: Mapping[str, Any], field: str, units_per: int) -> float | None:
    value, units = summary.get(field), summary.get("units")
    numbers = all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in (value, units))
    return value * units_per / units if numbers and units > 0 else None


def cost_points(views: Sequence[RunView], keys: Sequence[str]) -> tuple[list[CostPoint], list[str], list[str]]:
    """The runs that recorded their cost, each scored and costed over the sets (of `keys`) that
    every one of them has with both a score and a cost (so the points compare like with like);
    those sets; and the labels of the runs that recorded no cost."""
    recorded: dict[int, dict[str, tuple[float, Mapping[str, Any]]]] = {}
    for index, view in enumerate(views):
        results = [(key, view.results[key]) for key in keys if key in view.results]
        scored = {key: (result.value, cost) for key, result in results
                  if result.value is not None and (cost := (result.run.cost or {}).get(result.task))}
        if scored:
            recorded[index] = scored
    shared = [key for key in keys if recorded and all(key in scored for scored in recorded.values())]
    points = []
    for index, scored in (recorded.items() if shared else ()):
        costs = {measure: [_per_unit(scored[key][1], field, units_per) for key in shared]
                 for measure, (field, units_per) in COST_MEASURES.items()}
        points.append(CostPoint(views[index].label, RUN_COLORS[index % len(RUN_COLORS)],
                                fmean(scored[key][0] for key in shared),
                                {measure: fmean(values) for measure, values in costs.items() if None not in values}))
    return points, shared, [view.label for index, view in enumerate(views) if index not in recorded]


def cost_score_svg(points: Sequence[CostPoint], n_sets: int) -> bytes:
    """One panel per measure some run recorded: each run's mean score against its mean cost per
    unit, the point labelled with the run's name; a log cost axis where the costs span a factor of
    10 or more (a local model and an API one differ by orders of magnitude)."""
    measures = [measure for measure in COST_MEASURES if any(measure in point.costs for point in points)]

    def build():
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

        fig, axes = _new_figure(max(8.0, 5.2 * len(measures)), 10, len(measures))  # 10 rows' height: 5 inches
        for ax, measure in zip(axes, measures, strict=True):
            drawn = [point for point in points if measure in point.costs]
            costs = [point.costs[measure] for point in drawn]
            ax.scatter(costs, [point.score for point in drawn], s=50, color=[point.color for point in drawn], zorder=3)
            logarithmic = min(costs) > 0 and max(costs) >= 10 * min(costs)
            if logarithmic:
                ax.set_xscale("log")
                ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
                ax.xaxis.set_minor_formatter(NullFormatter())
                ax.margins(x=0.15)
            else:  # from zero: a cost axis cut short would make a small difference look large
                ax.set_xlim(0, 1.25 * max(costs) or 1)
            ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))  # plain numbers, no offset
            ax.set_ylim(0, 105)  # room above a perfect score for its point and name
            ax.set_yticks(range(0, 101, 20))
            scaled = math.log if logarithmic else float
            low, high = map(scaled, ax.get_xlim())
            for point in drawn:
                # A name to the left of a point in the right half: the axes' edge cuts no name.
                left = scaled(point.costs[measure]) - low > (high - low) / 2
                ax.annotate(_wrapped(point.label, 30), (point.costs[measure], point.score), xytext=(-6 if left else 6, 4),
                            textcoords="offset points", ha="right" if left else "left", fontsize=7.5, parse_math=False)
            ax.grid(linewidth=0.3, alpha=0.6)
            ax.set_axisbelow(True)
            ax.set_xlabel(f"{measure}, mean over the sets" + (" (log scale)" if logarithmic else ""), fontsize=8)
            ax.set_title(measure + (f" ({len(drawn)} of {len(points)} runs recorded it)" if len(drawn) < len(points) else ""),
                         fontsize=9)
        axes[0].set_ylabel("mean headline score (percent: micro-F1 / accuracy)", fontsize=8)
        fig.suptitle(f"Score against cost over {n_sets} set{'s' if n_sets != 1 else ''} every plotted run has: "
                     "higher and further left is better", fontsize=11)
        return fig

    return figure_bytes(build)
