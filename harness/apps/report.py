"""`taiyi report RUN [RUN ...] --out DIR`: one self-contained HTML page about some runs.

The page (`DIR/report.html`) needs no network: styles, the small script and the plots (SVG data
URIs) are inside it, and its fonts are local families (CJK ones first, so Chinese reads where such
a font is installed; a line at the top says when the browser has none). It shows, for every run
column found under the RUN paths (results files or folders; partial runs included, marked):

- the headline table (micro-F1 or accuracy per set, 95% bootstrap intervals) and its bar plot; a
  cell of a fine-tuned run whose fine-tuning data holds units of the set's evaluation split (its
  contamination report, `taiyi contamination`) is marked with their share, and those units listed;
- each run's score against its cost (generated tokens, seconds and USD per unit) and the cost table;
- run B against run A (the first two runs, or `--pair`): B minus A per set with its paired
  bootstrap interval and p-value (plot and table), and the units where they differ, side by side;
- per set, P/R/F1 and support per entity type, relation or label, runs side by side;
- grounding: the share of predicted mentions/arguments found nowhere in the unit's text;
- the verdicts: a plot of the share of each kind per set and run, and their counts;
- parse failures: a plot of their rate per set and run, and their reasons;
- per set and run, the error units, worst first: text, prompt, output, parsed prediction, gold,
  and every item's verdict, filterable by kind of error.

Wherever an interval or p-value would stand on fewer than `MIN_UNITS_FOR_INFERENCE` units, the
page shows the count instead, greyed, with `too_few_units`'s reason as its title.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import html
import json
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from taiyi_bench.harness.apps.assets import asset
from taiyi_bench.harness.apps.cli import add_bootstrap_options, errors_in_one_line, whole_number_at_least
from taiyi_bench.harness.apps.leaderboard.bootstrap import too_few_units
from taiyi_bench.harness.apps.run_views import RunView, UnitView, item_text, verdict_text
from taiyi_bench.harness.registry import PAPER_ORDER, REGISTRY
from taiyi_bench.harness.verdicts import VERDICT_TEXT, error_verdicts, verdict_totals

DEFAULT_MAX_UNITS = 50
REPORT_NAME = "report.html"
esc = html.escape


def _grounded_text(item: Mapping[str, Any]) -> str:
    grounded = item.get("grounded")
    if grounded is None:
        return ""
    if isinstance(grounded, dict):
        missing = [role for role, found in grounded.items() if not found]
        return "in text" if not missing else "NOT in text: " + ", ".join(missing)
    return "in text" if grounded else "NOT in text"


def _kind_text(kind: str) -> str:
    return VERDICT_TEXT.get(kind, kind.replace("_", " "))


def _chip(kind: str, label: str | None = None) -> str:
    return f'<span class="chip v-{esc(kind)}">{esc(label or _kind_text(kind))}</span>'


def _img(svg: bytes, alt: str) -> str:
    """A plot inlined as an SVG data URI (the page loads nothing)."""
    return f'<img class="plot" alt="{esc(alt)}" src="data:image/svg+xml;base64,{base64.b64encode(svg).decode()}">'


def _bullets(items: Sequence[str], css: str = "muted") -> str:
    return f'<ul class="{css}">' + "".join(f"<li>{esc(item)}</li>" for item in items) + "</ul>"


def _pct(value: float | None) -> str:
    from taiyi_bench.harness.apps.leaderboard.table import fmt_pct

    return fmt_pct(None if value is None else value * 100)


def _headline(page: list[str], table, keys: Sequence[str], few: Mapping[tuple[str, str], str],
              touched: Mapping[tuple[str, str], str]) -> None:
    """The headline table and plot; `few`: (run, set) -> why that cell has no interval; `touched`:
    (run, set) -> how the run's fine-tuning data holds units of the set (`_touched_rule`)."""
    from taiyi_bench.harness.apps.leaderboard.plot import plot_bytes
    from taiyi_bench.harness.apps.leaderboard.rules import legend, short_name
    from taiyi_bench.harness.apps.leaderboard.table import (
        average_cell_text,
        iter_average_rows,
        row_cell_text,
        row_label,
    )

    # Runs, and any published column the table carries: each published cell stands only in the row
    # of the rule it was computed by, beside the runs' metric by that rule (the Rule column says which).
    columns = [c for c in table.columns if c.kind in ("run", "published")]
    rows = [row for row in table.rule_rows() if row.key in keys]
    page += ['<section id="headline"><h2>Headline</h2>',
             f'<p class="muted">{esc(table.caption)} Brackets: 95% bootstrap intervals over units; a grey value has '
             "none (too few units: hover for why).</p>",
             '<table id="headline-table"><thead><tr><th>Set</th><th>Rule</th>'
             + "".join(f'<th class="num">{esc(c.display_header)}</th>' for c in columns) + "</tr></thead><tbody>"]
    for row in rows:
        cells = "".join(f'<td{_number_cell(few.get((c.display_header, row.key)), touched.get((c.display_header, row.key)))} '
                        f'data-{"run" if c.kind == "run" else "published"}="{esc(c.display_header)}">'
                        f"{esc(row_cell_text(c, row))}</td>" for c in columns)
        label = row_label(REGISTRY[row.key]) if row.first else ""
        rule = f'<td class="muted" title="{esc(row.rule or "")}">{esc(short_name(row.rule))}</td>'
        page.append(f'<tr data-set="{esc(row.key)}" data-rule="{esc(row.rule or "")}"><td>{esc(label)}</td>{rule}{cells}</tr>')
    for _, label, group in iter_average_rows():
        if any(c.averages()[group] is not None for c in columns):
            cells = "".join(f'<td class="num">{esc(average_cell_text(table, c, group))}</td>' for c in columns)
            page.append(f'<tr class="avg" data-average="{esc(group)}"><td>{esc(label)}</td><td></td>{cells}</tr>')
    page.append("</tbody></table>")
    shown = list(dict.fromkeys(row.rule for row in rows if row.rule))
    page.append('<p class="muted">Rules:</p>' + _bullets(legend(shown)))
    page.append(_img(plot_bytes(dataclasses.replace(table, rows=tuple(keys)), "svg"), "Bar plot of the headline table"))
    if table.notes:
        page.append(_bullets(table.notes))
    page.append("</section>")


def _number_cell(reason: str | None, touched: str | None = None) -> str:
    """A number cell's attributes: greyed, with the reason as its title, where its units are too few
    for an interval (`too_few_units`); tinted, with the rule as its title, where the run's fine-tuning
    data holds units of the set (`touched`, `_touched_rule`)."""
    classes = "num" + (" few" if reason else "") + (" contaminated" if touched else "")
    title = " ".join(text for text in (reason, touched) if text)
    return f' class="{classes}"' + (f' title="{esc(title)}"' if title else "")


def _touched_sets(views: Sequence[RunView], keys: Sequence[str]) -> list[tuple[RunView, str, dict[str, Any]]]:
    """(run, set, contamination record) wherever the run's fine-tuning data holds units of the set."""
    return [(view, key, record) for view in views for key in keys
            if key in view.results and (record := view.results[key].contamination) and record.get("share")]


def _touched_count(key: str, record: Mapping[str, Any]) -> str:
    """How many of the set's units the fine-tuning data holds, and by what n-gram."""
    from taiyi_bench.harness.apps.leaderboard.columns import share_text

    token = "character" if REGISTRY[key].language == "zh" else "word"
    return (f"{len(record['touched_units'])} of the {record.get('units')} units of its {record.get('split')} split "
            f"({share_text(record['share'])}), exactly or by a {record.get('n_tokens')}-{token} n-gram")


def _touched_rule(key: str, record: Mapping[str, Any]) -> str:
    """The title of a marked cell: what the mark counts, and by which rule."""
    return (f"The fine-tuning data of this run's adapter holds {_touched_count(key, record)} (exactly: all of a unit's "
            "text inside one conversation after the scorer's normalisation; n-gram: that many tokens in a row shared "
            "with one turn; taiyi contamination). Listed under Contamination.")


def _contamination(page: list[str], views: Sequence[RunView], keys: Sequence[str], max_units: int) -> None:
    """Per run and set whose evaluation units the run's fine-tuning data holds: those units, the ones
    the run evaluated first, with their text. A run whose data held none is said so once, by the
    headline table's note."""
    from taiyi_bench.harness.apps.contamination import one_line

    page += ['<section id="contamination"><h2>Contamination</h2>',
             '<p class="muted">Units of a set\'s evaluation split that the fine-tuning data of the run\'s adapter holds, '
             "per run and set, as its contamination report (taiyi contamination) found them: exactly (all of a unit's "
             "text inside one conversation, after the scorer's normalisation) or by an n-gram (a run of n words, or n "
             "Chinese characters, shared with one turn). The units this run evaluated come first, with their text from "
             "its samples (shortened). The run's cells of these sets are marked and count these units; taiyi "
             "leaderboard --untouched-only leaves them out.</p>"]
    shown_run = None
    for view, key, record in _touched_sets(views, keys):
        if view is not shown_run:
            page.append(f"<h3>{esc(view.label)}</h3>")
            shown_run = view
        task = view.tasks.get(key)
        units = task.units if task else {}
        touched = sorted(record["touched_units"], key=lambda unit: unit not in units)  # the ones in the score first
        evaluated = f"{sum(unit in units for unit in touched)} of them evaluated by this run" if task else "no samples: ids only"
        page += [f"<h4>{esc(REGISTRY[key].display_name)}: {esc(_touched_count(key, record))}; {esc(evaluated)}</h4>",
                 '<ol class="touched">' + "".join(
                     f"<li><code>{esc(unit)}</code> "
                     + (esc(one_line(units[unit].text, 240)) if unit in units else '<span class="muted">not evaluated</span>')
                     + "</li>" for unit in touched[:max_units]) + "</ol>"]
        if len(touched) > max_units:
            page.append(f'<p class="muted">{len(touched) - max_units} more not listed (taiyi report --max-units).</p>')
    page.append("</section>")


def _cost(page: list[str], views: Sequence[RunView], keys: Sequence[str], cost) -> None:
    """Each run's score against what its units cost (the plot), and `cost`, the leaderboard's cost
    table of the same runs (`leaderboard.build.cost_table`)."""
    from taiyi_bench.harness.apps.leaderboard.render import render_cost_html_table
    from taiyi_bench.harness.apps.report_plots import cost_points, cost_score_svg

    points, shared, unrecorded = cost_points(views, keys)
    names = ", ".join(REGISTRY[key].display_name for key in shared)
    page.append('<section id="cost"><h2>Cost</h2>')
    if points:
        page += [f'<p class="muted">Per run, its mean headline score over the sets every plotted run has ({esc(names)}) '
                 "against what a unit cost on them: generated tokens, seconds and, for an API config with a price "
                 "table, the estimated USD per 1,000 units (each the mean of the sets' cost per unit). The table lists "
                 "every set as the run recorded it.</p>",
                 _img(cost_score_svg(points, len(shared)), "Each run's mean score against its cost per unit")]
    elif len(unrecorded) < len(views):
        page.append('<p class="warn">The runs with a cost record share no set they each scored: no plot.</p>')
    if unrecorded:
        page.append(f'<p class="muted">No cost record in its results, so not plotted: '
                    f"{esc('; '.join(unrecorded))}.</p>")
    if len(unrecorded) < len(views):
        page += [_bullets(cost.legend), render_cost_html_table(cost, "cost-table") + _bullets(cost.notes)]
    page.append("</section>")


def _per_type(page: list[str], views, keys: Sequence[str], n_resamples: int, seed: int) -> None:
    from taiyi_bench.harness.apps.leaderboard.build import by_type_table
    from taiyi_bench.harness.apps.leaderboard.render import render_by_type_html_table

    page += ['<section id="per-type"><h2>Per type</h2>',
             '<p class="muted">Micro P/R/F1 (percent) per entity type, relation or label over each run\'s units; '
             "support = gold items; 95% bootstrap interval of each F1.</p>"]
    for key in keys:
        spec = REGISTRY[key]
        if spec.task_type == "qa":
            continue
        runs = [(v.label, [u.verdicts.get("per_type", {}) for u in v.tasks[key].units.values()]) for v in views if key in v.tasks]
        table = by_type_table(spec, runs, n_resamples=n_resamples, seed=seed)
        page += [f'<h3 id="per-type-{esc(key)}">{esc(spec.display_name)}</h3>', render_by_type_html_table(table)]
        page.extend(f'<p class="muted">{esc(note)}</p>' for note in table.notes[1:] if note.startswith(("No gold", "No interval")))
    page.append("</section>")


def _task_matrix(page: list[str], section: str, title: str, intro: str, views, keys, cell, plot: str = "") -> None:
    """A table of sets (rows) by runs (columns) whose cells `cell(TaskSamples)` renders, under `plot`."""
    page += [f'<section id="{section}"><h2>{esc(title)}</h2><p class="muted">{esc(intro)}</p>{plot}',
             "<table><thead><tr><th>Set</th>" + "".join(f"<th>{esc(v.label)}</th>" for v in views) + "</tr></thead><tbody>"]
    for key in keys:
        row = "".join(cell(v.tasks[key]) if key in v.tasks else "<td>—</td>" for v in views)
        page.append(f'<tr data-set="{esc(key)}"><td>{esc(REGISTRY[key].display_name)}</td>{row}</tr>')
    page.append("</tbody></table></section>")


def _grounding_cell(task) -> str:
    checked = sum(u.verdicts.get("grounding", {}).get("checked", 0) for u in task.units.values())
    ungrounded = sum(u.verdicts.get("grounding", {}).get("ungrounded", 0) for u in task.units.values())
    if not checked:
        return '<td class="num">— (nothing predicted)</td>'
    css = "num ungrounded" if ungrounded else "num"
    return f'<td class="{css}">{_pct(ungrounded / checked)} ({ungrounded} of {checked})</td>'


def _verdicts_cell(task) -> str:
    totals = verdict_totals(u.verdicts for u in task.units.values())
    return "<td>" + "".join(_chip(kind, f"{_kind_text(kind)} {n}") for kind, n in totals.items()) + "</td>"


def _parse_fail_cell(task) -> str:
    reasons = Counter(u.verdicts["parse_fail"] for u in task.units.values() if u.verdicts.get("parse_fail"))
    failed = sum(reasons.values())
    if not failed:
        return f'<td class="num">0 of {len(task.units)}</td>'
    listed = "".join(f"<li>{esc(reason)}: {n}</li>" for reason, n in reasons.most_common())
    return f'<td><span class="num">{failed} of {len(task.units)} ({_pct(failed / len(task.units))})</span><ul>{listed}</ul></td>'


def _prediction_text(prediction: Mapping[str, Any]) -> str:
    """The structured prediction as JSON, one item per line."""
    lines = []
    for field, value in prediction.items():
        if isinstance(value, list) and value:
            items = ",\n    ".join(json.dumps(x, ensure_ascii=False) for x in value)
            lines.append(f'  "{field}": [\n    {items}\n  ]')
        else:
            lines.append(f'  "{field}": {json.dumps(value, ensure_ascii=False)}')
    return "{\n" + ",\n".join(lines) + "\n}"


def _score_text(unit: UnitView) -> str:
    return "correct" if unit.verdicts.get("correct") else ("wrong" if "correct" in unit.verdicts else f"F1 {_pct(unit.score)}")


def _error_chips(unit: UnitView) -> str:
    kinds = error_verdicts(unit.verdicts)
    return "".join(_chip(kind, f"{_kind_text(kind)} ×{n}") for kind, n in sorted(kinds.items()))


def _output_html(unit: UnitView) -> str:
    """What the model wrote, and why it could not be read where it could not."""
    out = f"<pre>{esc(unit.output) if unit.output is not None else '(not recorded)'}</pre>"
    if unit.verdicts.get("parse_fail"):
        out += f'<p>{_chip("parse_fail", "parse failure")} {esc(unit.verdicts["parse_fail"])}</p>'
    return out


def _unit_html(unit: UnitView, rule: str) -> str:
    kinds = error_verdicts(unit.verdicts)
    out = [f'<details class="unit" data-unit="{esc(unit.id)}" data-kinds="{esc(" ".join(sorted(kinds)))}">',
           f"<summary><code>{esc(unit.id)}</code> · {esc(_score_text(unit))} {_error_chips(unit)}</summary>",
           "<h4>Text</h4>", f"<pre>{esc(unit.text)}</pre>"]
    if unit.prompt is not None:
        out.append(f"<details><summary>Prompt</summary><pre>{esc(unit.prompt)}</pre></details>")
    out += ["<h4>Output</h4>", _output_html(unit), "<h4>Parsed prediction</h4>",
            f"<pre>{esc(_prediction_text(unit.verdicts['prediction']))}</pre>",
            "<h4>Verdicts</h4>", "<table><thead><tr><th>side</th><th>item</th><th>verdict</th><th>grounding</th></tr></thead><tbody>"]
    for side in ("predicted", "gold"):
        for item in unit.verdicts[side]:
            out.append(f"<tr><td>{side}</td><td>{esc(item_text(rule, item))}</td>"
                       f"<td>{_chip(item['verdict'], verdict_text(item))}</td><td>{esc(_grounded_text(item))}</td></tr>")
    out += ["</tbody></table>", "</details>"]
    return "\n".join(out)


def _errors(page: list[str], views, keys: Sequence[str], max_units: int) -> None:
    page += ['<section id="errors"><h2>Error units</h2>',
             '<p class="muted">Units not answered exactly (a missed or spurious item, a wrong option, a parse failure), '
             "worst first. Open a unit for its text, prompt, output, parsed prediction, gold and verdicts.</p>"]
    for key in keys:
        spec = REGISTRY[key]
        page.append(f'<section class="task-errors" id="errors-{esc(key)}" data-set="{esc(key)}"><h3>{esc(spec.display_name)}</h3>')
        for index, view in enumerate(views):
            task = view.tasks.get(key)
            if task is None:
                continue
            wrong = sorted((u for u in task.units.values() if not u.right), key=lambda u: (u.score, u.id))
            list_id = f"units-{key}-{index}"
            kinds = sorted({kind for u in wrong for kind in error_verdicts(u.verdicts)})
            page.append(f"<h4>{esc(view.label)}: {len(wrong)} of {len(task.units)} units with errors</h4>")
            if not wrong:
                continue
            options = "".join(f'<option value="{esc(k)}">{esc(_kind_text(k))}</option>' for k in kinds)
            page += [f'<label class="muted">show <select class="kind-filter" data-list="{list_id}">'
                     f'<option value="">every error</option>{options}</select></label>',
                     f'<div class="unit-list" id="{list_id}">']
            rule = wrong[0].verdicts["rule"]
            page.extend(_unit_html(unit, rule) for unit in wrong[:max_units])
            if len(wrong) > max_units:
                page.append(f'<p class="muted">{len(wrong) - max_units} more error units not shown (taiyi report --max-units).</p>')
            page.append("</div>")
        page.append("</section>")
    page.append("</section>")


def _pair_html(unit_a: UnitView, unit_b: UnitView) -> str:
    """One unit the two runs answered differently: its text once, each run's output, parsed
    prediction and errors side by side (as `taiyi compare` words them), then the gold."""
    from taiyi_bench.harness.apps.compare import describe_errors, describe_gold, describe_prediction

    rows = [("Output", _output_html), ("Parsed", lambda u: esc(describe_prediction(u.verdicts))),
            ("Errors", lambda u: esc(describe_errors(u.verdicts)))]
    body = "".join(f"<tr><th>{name}</th><td>{show(unit_a)}</td><td>{show(unit_b)}</td></tr>" for name, show in rows)
    return "\n".join([
        f'<details class="unit" data-unit="{esc(unit_a.id)}">',
        f"<summary><code>{esc(unit_a.id)}</code> · A: {esc(_score_text(unit_a))} · B: {esc(_score_text(unit_b))}</summary>",
        "<h4>Text</h4>", f"<pre>{esc(unit_a.text)}</pre>",
        f'<table class="pair"><thead><tr><th></th><th>A</th><th>B</th></tr></thead><tbody>{body}</tbody></table>',
        "<h4>Gold</h4>", f"<p>{esc(describe_gold(unit_a.verdicts))}</p>", "</details>"])


def _pair_deltas(page: list[str], a: RunView, b: RunView, keys: Sequence[str], *, n_resamples: int, seed: int,
                 warnings: list[str]) -> None:
    """Run B against run A: per set, B minus A with its paired bootstrap interval (plot and table)."""
    from taiyi_bench.harness.apps.leaderboard.bootstrap import MIN_UNITS_FOR_INFERENCE, DifferentDataError
    from taiyi_bench.harness.apps.leaderboard.build import paired_columns
    from taiyi_bench.harness.apps.leaderboard.columns import RunColumn
    from taiyi_bench.harness.apps.leaderboard.table import fmt_pct
    from taiyi_bench.harness.apps.report_plots import paired_deltas_svg

    shared = [key for key in keys if key in a.tasks and key in b.tasks]
    page += ['<section id="pair"><h2>Run B against run A</h2>',
             f"<p>A = {esc(a.label)}<br>B = {esc(b.label)}</p>",
             '<p class="muted">On the units both runs scored (taiyi report --pair names two other runs): B minus A per '
             "set in percentage points, with its 95% paired bootstrap interval and two-sided p-value; a set of fewer than "
             f"{MIN_UNITS_FOR_INFERENCE} units shows its count and no interval (grey; hover for why).</p>"]
    if not shared:
        page.append('<p class="warn">The two runs have no set in common (with samples).</p></section>')
        return
    try:  # B first: the report's delta is its first run minus its second
        b_minus_a = paired_columns(RunColumn(b.column, b.results), RunColumn(a.column, a.results),
                                   n_resamples=n_resamples, seed=seed, tasks=shared)
    except DifferentDataError as exc:
        page.append(f'<p class="warn">Not paired: {esc(str(exc))}.</p></section>')
        return
    warnings += b_minus_a.warnings
    page += [_img(paired_deltas_svg(b_minus_a, shared), "B minus A per set with paired bootstrap intervals"),
             '<table id="pair-table"><thead><tr><th>Set</th><th class="num">units</th><th class="num">A</th>'
             '<th class="num">B</th><th class="num">B − A</th><th class="num">95% CI</th><th class="num">p</th></tr></thead><tbody>']
    for key in shared:
        if (result := b_minus_a.rows.get(key)) is None:
            continue
        few = too_few_units(result.n_units)
        signed = [fmt_pct(x * 100, signed=True) for x in (result.delta, result.low, result.high)]
        inference = ["—", "—"] if few else [f"[{signed[1]}, {signed[2]}]", f"{result.p_value:.3f}"]
        cells = [str(result.n_units), fmt_pct(result.point_b * 100), fmt_pct(result.point_a * 100), signed[0], *inference]
        page.append(f'<tr data-set="{esc(key)}"><td>{esc(REGISTRY[key].display_name)}</td>'
                    + "".join(f"<td{_number_cell(few)}>{esc(cell)}</td>" for cell in cells) + "</tr>")
    page.append("</tbody></table></section>")


def _pair_units(page: list[str], a: RunView, b: RunView, keys: Sequence[str], max_units: int) -> None:
    """The units where runs A and B differ, side by side, per set, largest score gap first."""
    from taiyi_bench.harness.apps.compare import compare_tasks
    from taiyi_bench.harness.apps.leaderboard.bootstrap import DifferentDataError

    page += ['<section id="pair-units"><h2>Units where A and B differ</h2>',
             f'<p class="muted">A = {esc(a.label)}; B = {esc(b.label)}. Per set, the units whose score or parsed '
             "prediction differs, largest score gap first; open one for its text, both outputs, parsed predictions "
             "and errors, and the gold.</p>"]
    for key in (key for key in keys if key in a.tasks and key in b.tasks):
        try:
            comparison = compare_tasks(a.tasks[key], b.tasks[key])
        except DifferentDataError as exc:
            page.append(f'<p class="warn">{esc(REGISTRY[key].display_name)}: not paired: {esc(str(exc))}.</p>')
            continue
        differing = comparison.differing
        page.append(f'<h3 id="pair-{esc(key)}">{esc(REGISTRY[key].display_name)}: {len(differing)} of '
                    f"{comparison.tally.units} units differ</h3>")
        page.extend(_pair_html(diff.a, diff.b) for diff in differing[:max_units])
        if len(differing) > max_units:
            page.append(f'<p class="muted">{len(differing) - max_units} more not shown (taiyi report --max-units).</p>')
    page.append("</section>")


def pick_pair(views: Sequence[RunView], names: Sequence[str] | None) -> tuple[RunView, RunView] | None:
    """The two runs `--pair` names (each by its number in the headline table, its name, or a part of
    its name no other run's has), by default the first two; None when there are fewer than two."""
    if not names:
        return (views[0], views[1]) if len(views) >= 2 else None
    listed = "; ".join(f"{number} = {view.label}" for number, view in enumerate(views, 1))
    picked = []
    for name in names:
        if name.isdigit() and 1 <= int(name) <= len(views):
            picked.append(views[int(name) - 1])
            continue
        wanted = name.casefold()
        found = [v for v in views if v.label.casefold() == wanted] or [v for v in views if wanted in v.label.casefold()]
        if len(found) != 1:
            raise ValueError(f"--pair {name!r} names {len(found)} runs, not one (runs: {listed})")
        picked.append(found[0])
    if picked[0] is picked[1]:
        raise ValueError(f"--pair names the same run twice (runs: {listed})")
    return picked[0], picked[1]


def render_report(views: Sequence[RunView], table, cost, *, title: str, warnings: list[str], n_resamples: int, seed: int,
                  max_units: int, pair: tuple[RunView, RunView] | None = None) -> str:
    """The page (`table`: the headline table, `cost`: the cost table of the same runs); `warnings`
    gains those met while pairing `pair`'s runs."""
    from taiyi_bench.harness.apps.report_plots import parse_failures_svg, verdict_kinds_svg

    keys = [key for key in PAPER_ORDER if any(key in v.tasks for v in views)]
    few = {(v.label, key): reason for v in views for key, task in v.tasks.items() if (reason := too_few_units(len(task.units)))}
    touched = {(view.label, key): _touched_rule(key, record) for view, key, record in _touched_sets(views, keys)}
    page: list[str] = []
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    page += ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{esc(title)}</title>", f"<style>{asset('report.css')}</style>", "</head>", "<body>", "<header>",
             f"<h1>{esc(title)}</h1>", f'<p class="muted">Generated {generated} by taiyi report; '
             f"{len(views)} run(s), {len(keys)} set(s).</p>",
             '<nav><a href="#headline">Headline</a>' + ('<a href="#contamination">Contamination</a>' if touched else "")
             + ('<a href="#pair">B against A</a>' if pair else "") + '<a href="#cost">Cost</a>'
             + '<a href="#per-type">Per type</a><a href="#grounding">Grounding</a>'
             '<a href="#verdicts">Verdicts</a><a href="#parse-failures">Parse failures</a>'
             + ('<a href="#pair-units">A and B unit by unit</a>' if pair else "") + '<a href="#errors">Error units</a>'
             '<a href="#runs">Runs</a></nav>',
             '<p id="cjk-warning" class="warn" hidden>Chinese text on this page is drawn as empty boxes: this browser '
             "finds no CJK font. Install Noto Sans CJK (Debian/Ubuntu: apt-get install fonts-noto-cjk) and reload.</p>",
             "</header>", "<main>"]
    if not views:
        page.append('<p class="warn">No run with samples files was found.</p>')
    else:
        _headline(page, table, keys, few, touched)
        if touched:
            _contamination(page, views, keys, max_units)
        if pair:
            _pair_deltas(page, *pair, keys, n_resamples=n_resamples, seed=seed, warnings=warnings)
        _cost(page, views, keys, cost)
        _per_type(page, views, keys, n_resamples, seed)
        grounded = [k for k in keys if any(k in v.tasks and any("grounding" in u.verdicts for u in v.tasks[k].units.values())
                                            for v in views)]
        _task_matrix(page, "grounding", "Grounding",
                     "Ungrounded predictions: percent of predicted mentions (NER) and relation arguments (RE) found "
                     "nowhere in the unit's text after the scorer's normalisation (lower is better).", views, grounded, _grounding_cell)
        _task_matrix(page, "verdicts", "Verdicts", "How many gold items each run matched and missed, and each kind of "
                     "error among its predictions.", views, keys, _verdicts_cell,
                     _img(verdict_kinds_svg(views, keys), "Stacked bars of the verdict kinds per set and run"))
        _task_matrix(page, "parse-failures", "Parse failures", "Units whose output could not be read, and why; they are "
                     "scored as empty predictions.", views, keys, _parse_fail_cell,
                     _img(parse_failures_svg(views, keys), "Bars of the parse-failure rate per set and run"))
        if pair:
            _pair_units(page, *pair, keys, max_units)
        _errors(page, views, keys, max_units)
    page.append('<section id="runs"><h2>Runs</h2>')
    for view in views:
        page.append(f"<details><summary>{esc(view.label)}</summary><ul>"
                    + "".join(f"<li>{esc(line)}</li>" for line in view.column.provenance) + "</ul></details>")
    page.append("</section>")
    if warnings := list(dict.fromkeys(warnings)):
        page.append('<section id="warnings"><h2>Warnings</h2>' + _bullets(warnings, "warn") + "</section>")
    page += ["</main>", f"<script>{asset('report.js')}</script>", "</body>", "</html>"]
    return "\n".join(page) + "\n"


def build_report(
    paths: Sequence[str | os.PathLike], out_dir: str | os.PathLike, *, n_resamples: int = 1000, seed: int = 0,
    max_units: int = DEFAULT_MAX_UNITS, title: str = "taiyi-bench report", pair: Sequence[str] | None = None,
) -> Path:
    """Write `out_dir/report.html` for the runs under `paths` (`pair`: two runs to set side by side,
    `pick_pair`); returns its path."""
    from taiyi_bench.harness.apps.leaderboard.build import cost_table, leaderboard_table
    from taiyi_bench.harness.apps.run_views import run_views
    from taiyi_bench.harness.atomic_files import atomic_write_text

    warnings: list[str] = []
    views = run_views(paths, warnings)
    if not any(view.tasks for view in views):
        found = "; ".join(warnings) or "no results_*.json files"
        raise ValueError(f"no run with samples files under {', '.join(map(str, paths))} ({found}); "
                         "run lm_eval with --log_samples, or name the folder its results are in")
    table = leaderboard_table(paths, include_partial=True, include_budget_cut=True, include_incomplete=True,
                              published="none", ci=True, n_resamples=n_resamples, seed=seed)
    page = render_report(views, table, cost_table(paths, include_partial=True), title=title,
                         warnings=warnings + table.warnings, n_resamples=n_resamples, seed=seed, max_units=max_units,
                         pair=pick_pair(views, pair))
    return atomic_write_text(Path(out_dir) / REPORT_NAME, page)


def register(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "report",
        help="one self-contained HTML page: headline with intervals, per type, grounding, parse failures, error units",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("runs", nargs="+", metavar="RUN", help="results files or folders (searched recursively)")
    parser.add_argument("--out", type=Path, required=True, help=f"folder to write {REPORT_NAME} into")
    parser.add_argument("--max-units", type=whole_number_at_least(0), default=DEFAULT_MAX_UNITS,
                        help="error units listed per set and run (default %(default)s)")
    add_bootstrap_options(parser)
    parser.add_argument("--title", default="taiyi-bench report", help="the page's title")
    parser.add_argument("--pair", nargs=2, metavar=("A", "B"),
                        help="the two runs to compare (B minus A, and their differing units side by side): each a "
                             "run's number in the headline table or (part of) its name; default the first two")
    parser.set_defaults(func=run)
    return parser


@errors_in_one_line("taiyi report: ")
def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.text import Text

    path = build_report(args.runs, args.out, n_resamples=args.resamples, seed=args.seed, max_units=args.max_units,
                        title=args.title, pair=args.pair)
    Console().print(Text(f"wrote {path}", style="green"), soft_wrap=True)
    return 0
