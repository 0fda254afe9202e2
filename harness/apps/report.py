"""`taiyi report RUN [RUN ...] --out DIR`: one self-contained HTML page about some runs.

The page (`DIR/report.html`) needs no network: styles, the small filter script and the plot (an
SVG data URI) are inside it. It shows, for every run column found under the RUN paths (results
files or folders; partial runs included, marked):

- the headline table (micro-F1 or accuracy per set, 95% bootstrap intervals) and its bar plot;
- per set, P/R/F1 and support per entity type, relation or label, runs side by side;
- grounding: the share of predicted mentions/arguments found nowhere in the unit's text;
- the verdict counts (matched, missed, spurious, wrong type, boundary, reversed, extra label, ...);
- parse failures and their reasons;
- per set and run, the error units, worst first: text, prompt, output, parsed prediction, gold,
  and every item's verdict, filterable by kind of error.
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
from taiyi_bench.harness.registry import PAPER_ORDER, REGISTRY
from taiyi_bench.harness.verdicts import VERDICT_TEXT, error_verdicts, verdict_totals

DEFAULT_MAX_UNITS = 50
REPORT_NAME = "report.html"
esc = html.escape


def item_text(rule: str, item: Mapping[str, Any]) -> str:
    """One predicted or gold item as a reader writes it."""
    if rule == "mention_set":
        return f"{item['type']}: {item['mention']}"
    if rule == "ordered_triples":
        return f"[{item['head']}, {item['relation']}, {item['tail']}]"
    if rule == "concept_pairs":
        if "head_names" in item:  # a gold concept pair
            return f"[{item['head_names'][0]} ({item['head']}), {item['tail_names'][0]} ({item['tail']})]"
        return f"[{item['head']}, {item['tail']}]"
    if rule == "label_set":
        return str(item["label"])
    return f"{item.get('option')}. {item.get('text', '')}".strip()


def verdict_text(item: Mapping[str, Any]) -> str:
    """The item's verdict in words, with what it was mistaken for."""
    verdict = item["verdict"]
    text = VERDICT_TEXT.get(verdict, verdict)
    if verdict == "wrong_type":
        other = item.get("gold_type") or item.get("predicted_type")
        text += f" ({'gold' if 'gold_type' in item else 'predicted'}: {other})"
    elif verdict == "boundary":
        other = item.get("gold_mention") or item.get("predicted_mention")
        text += f" ({'gold' if 'gold_mention' in item else 'predicted'}: {other})"
    elif verdict in ("reversed", "wrong_relation", "wrong_relation_reversed") and isinstance(item.get("gold"), list):
        text += f" (gold: [{', '.join(item['gold'])}])"
    if item.get("counted") is False:
        text += "; counted once with an earlier pair"
    return text


def _grounded_text(item: Mapping[str, Any]) -> str:
    grounded = item.get("grounded")
    if grounded is None:
        return ""
    if isinstance(grounded, dict):
        missing = [role for role, found in grounded.items() if not found]
        return "in text" if not missing else "NOT in text: " + ", ".join(missing)
    return "in text" if grounded else "NOT in text"


def _chip(kind: str, label: str | None = None) -> str:
    return f'<span class="chip v-{esc(kind)}">{esc(label or VERDICT_TEXT.get(kind, kind.replace("_", " ")))}</span>'


def _pct(value: float | None) -> str:
    from taiyi_bench.harness.apps.leaderboard.table import fmt_pct

    return fmt_pct(None if value is None else value * 100)


def _headline(page: list[str], table, keys: Sequence[str]) -> None:
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
             f'<p class="muted">{esc(table.caption)} Brackets: 95% bootstrap intervals over units.</p>',
             '<table id="headline-table"><thead><tr><th>Set</th><th>Rule</th>'
             + "".join(f'<th class="num">{esc(c.display_header)}</th>' for c in columns) + "</tr></thead><tbody>"]
    for row in rows:
        cells = "".join(f'<td class="num" data-{"run" if c.kind == "run" else "published"}="{esc(c.display_header)}">'
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
    page.append('<p class="muted">Rules:</p><ul class="muted">' + "".join(f"<li>{esc(line)}</li>" for line in legend(shown))
                + "</ul>")
    svg = plot_bytes(dataclasses.replace(table, rows=tuple(keys)), "svg")  # the sets the runs have
    page.append(f'<img class="plot" alt="Bar plot of the headline table" src="data:image/svg+xml;base64,{base64.b64encode(svg).decode()}">')
    if table.notes:
        page.append("<ul class=\"muted\">" + "".join(f"<li>{esc(n)}</li>" for n in table.notes) + "</ul>")
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
        page.extend(f'<p class="muted">{esc(note)}</p>' for note in table.notes[1:] if note.startswith("No gold"))
    page.append("</section>")


def _task_matrix(page: list[str], section: str, title: str, intro: str, views, keys, cell) -> None:
    """A table of sets (rows) by runs (columns) whose cells `cell(TaskSamples)` renders."""
    page += [f'<section id="{section}"><h2>{esc(title)}</h2><p class="muted">{esc(intro)}</p>',
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
    return "<td>" + "".join(_chip(kind, f"{VERDICT_TEXT.get(kind, kind.replace('_', ' '))} {n}") for kind, n in totals.items()) + "</td>"


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


def _unit_html(unit, rule: str) -> str:
    kinds = error_verdicts(unit.verdicts)
    chips = "".join(_chip(kind, f"{VERDICT_TEXT.get(kind, kind.replace('_', ' '))} ×{n}") for kind, n in sorted(kinds.items()))
    score = "correct" if unit.verdicts.get("correct") else ("wrong" if "correct" in unit.verdicts else f"F1 {_pct(unit.score)}")
    out = [f'<details class="unit" data-unit="{esc(unit.id)}" data-kinds="{esc(" ".join(sorted(kinds)))}">',
           f"<summary><code>{esc(unit.id)}</code> · {esc(score)} {chips}</summary>",
           "<h4>Text</h4>", f"<pre>{esc(unit.text)}</pre>"]
    if unit.prompt is not None:
        out.append(f"<details><summary>Prompt</summary><pre>{esc(unit.prompt)}</pre></details>")
    out += ["<h4>Output</h4>", f"<pre>{esc(unit.output) if unit.output is not None else '(not recorded)'}</pre>"]
    if unit.verdicts.get("parse_fail"):
        out.append(f'<p>{_chip("parse_fail", "parse failure")} {esc(unit.verdicts["parse_fail"])}</p>')
    out += ["<h4>Parsed prediction</h4>",
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
            options = "".join(f'<option value="{esc(k)}">{esc(VERDICT_TEXT.get(k, k.replace("_", " ")))}</option>' for k in kinds)
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


def render_report(views, table, *, title: str, warnings: Sequence[str], n_resamples: int, seed: int, max_units: int) -> str:
    keys = [key for key in PAPER_ORDER if any(key in v.tasks for v in views)]
    page: list[str] = []
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    page += ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{esc(title)}</title>", f"<style>{asset('report.css')}</style>", "</head>", "<body>", "<header>",
             f"<h1>{esc(title)}</h1>", f'<p class="muted">Generated {generated} by taiyi report; '
             f"{len(views)} run(s), {len(keys)} set(s).</p>",
             '<nav><a href="#headline">Headline</a><a href="#per-type">Per type</a><a href="#grounding">Grounding</a>'
             '<a href="#verdicts">Verdicts</a><a href="#parse-failures">Parse failures</a><a href="#errors">Error units</a>'
             '<a href="#runs">Runs</a></nav>', "</header>", "<main>"]
    if not views:
        page.append('<p class="warn">No run with samples files was found.</p>')
    else:
        _headline(page, table, keys)
        _per_type(page, views, keys, n_resamples, seed)
        grounded = [k for k in keys if any(k in v.tasks and any("grounding" in u.verdicts for u in v.tasks[k].units.values())
                                            for v in views)]
        _task_matrix(page, "grounding", "Grounding",
                     "Ungrounded predictions: percent of predicted mentions (NER) and relation arguments (RE) found "
                     "nowhere in the unit's text after the scorer's normalisation (lower is better).", views, grounded, _grounding_cell)
        _task_matrix(page, "verdicts", "Verdicts", "How many gold items each run matched and missed, and each kind of "
                     "error among its predictions.", views, keys, _verdicts_cell)
        _task_matrix(page, "parse-failures", "Parse failures", "Units whose output could not be read, and why; they are "
                     "scored as empty predictions.", views, keys, _parse_fail_cell)
        _errors(page, views, keys, max_units)
    page.append('<section id="runs"><h2>Runs</h2>')
    for view in views:
        page.append(f"<details><summary>{esc(view.label)}</summary><ul>"
                    + "".join(f"<li>{esc(line)}</li>" for line in view.column.provenance) + "</ul></details>")
    page.append("</section>")
    if warnings:
        page.append('<section id="warnings"><h2>Warnings</h2><ul class="warn">' + "".join(f"<li>{esc(w)}</li>" for w in warnings)
                    + "</ul></section>")
    page += ["</main>", f"<script>{asset('report.js')}</script>", "</body>", "</html>"]
    return "\n".join(page) + "\n"


def build_report(
    paths: Sequence[str | os.PathLike], out_dir: str | os.PathLike, *, n_resamples: int = 1000, seed: int = 0,
    max_units: int = DEFAULT_MAX_UNITS, title: str = "taiyi-bench report",
) -> Path:
    """Write `out_dir/report.html` for the runs under `paths`; returns its path."""
    from taiyi_bench.harness.apps.leaderboard.build import leaderboard_table
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
    warnings = list(dict.fromkeys(warnings + table.warnings))
    page = render_report(views, table, title=title, warnings=warnings, n_resamples=n_resamples, seed=seed, max_units=max_units)
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
    parser.set_defaults(func=run)
    return parser


@errors_in_one_line("taiyi report: ")
def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.text import Text

    path = build_report(args.runs, args.out, n_resamples=args.resamples, seed=args.seed, max_units=args.max_units,
                        title=args.title)
    Console().print(Text(f"wrote {path}", style="green"), soft_wrap=True)
    return 0
