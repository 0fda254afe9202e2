"""Render a `Table` as a rich terminal table, Markdown, CSV, LaTeX or HTML (plots: `plot.py`).

Every format has the same rows (13 sets in paper order, then per-type and overall averages),
the same one-decimal values, and a provenance section naming where each column comes from.
Markdown, LaTeX and HTML are built as plain strings with their own escaping.
"""

from __future__ import annotations

import html
import io
import os
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from taiyi_bench.harness.apps.assets import asset
from taiyi_bench.harness.apps.leaderboard.bootstrap import too_few_units
from taiyi_bench.harness.apps.leaderboard.rules import (
    BY_RULE_CAPTION,
    BY_RULE_CAPTION_NARROW,
    MIXED,
    legend,
    mixes_rules,
    rules_shown,
    run_metrics,
    short_name,
)
from taiyi_bench.harness.apps.leaderboard.table import (
    COST_HEADERS,
    FEW_UNITS_NOTE,
    Cell,
    Column,
    CostTable,
    RuleRow,
    Table,
    average_cell_text,
    average_text,
    few_units_flag,
    fmt_pct,
    iter_average_rows,
    iter_rule_rows,
    provenance_lines,
    row_cell,
    row_cell_text,
    sets_of,
)
from taiyi_bench.harness.atomic_files import atomic_write_text
from taiyi_bench.harness.csv_safety import csv_writer
from taiyi_bench.harness.registry import PAPER_ORDER, REGISTRY

TEXT_FORMATS = ("md", "csv", "tex", "html")
PLOT_FORMATS = ("png", "svg")
ALL_FORMATS = (*TEXT_FORMATS, *PLOT_FORMATS)


def render_terminal(table: Table, console=None, *, show_warnings: bool = True, provenance_in: Path | None = None) -> None:
    """Print the table with rich; `console` defaults to a new stdout console. With
    `provenance_in` (a file that holds the full provenance), each column's provenance is cut to
    its first sentence and the file is named: a person reads the table, a file keeps the rest.

    A table wider than the console is never cut short (rich would elide names with "…"): first the
    published columns, then the run columns are shown by a short id named above the table, with the
    Type and Rule columns folded into the Set column and notes and flags as numbered marks named
    below it; columns that still do not fit go on in a further table."""
    from rich.console import Console
    from rich.text import Text

    console = console or Console()
    for by_id in _LAYOUTS:
        marks: dict[str, str] = {}
        ids = _column_ids(table, by_id) if by_id else None
        tables = [_rich_table(table, table.columns, ids, marks)]
        if _natural_width(console, tables[0]) <= console.width:
            break
    else:  # not even the narrowest layout fits in one table: its columns go on in further tables
        marks = {}
        tables = _split_tables(table, ids, console, marks)
    for key, column_id in (ids or {}).items():
        console.print(Text(f"{column_id} = {table.column(key).display_header}"), soft_wrap=True)
    for rich_table in tables:
        console.print(rich_table)
    if marks:
        console.print(Text("Marks: " + "; ".join(f"{mark} {text}" for text, mark in marks.items())), soft_wrap=True)
    if table.by_rule:
        console.print(Text("Rules", style="bold"))
        for line in legend(rules_shown(table)):
            console.print(Text(f"- {line}"), soft_wrap=True)
    console.print(Text("Provenance" + (f" (in full: {provenance_in})" if provenance_in else ""), style="bold"))
    for header, lines in provenance_lines(table.columns):
        text = " ".join(lines)
        if provenance_in is not None:
            text = _first_sentence(text)
        # soft_wrap: long paths stay on one line, copyable.
        console.print(Text(f"- {header}: {text}"), soft_wrap=True)
    for note in table.notes:
        console.print(Text(f"Note: {note}", style="dim"), soft_wrap=True)
    if show_warnings:
        for warning in table.warnings:
            console.print(Text(f"warning: {warning}", style="yellow"), soft_wrap=True)


def _column_ids(table: Table, by_id: Sequence[str]) -> dict[str, str]:
    """Column key -> short id, for the kinds shown by id: P1, P2 (published), R1 (runs), D1 (deltas)."""
    ids: dict[str, str] = {}
    for kind in by_id:
        for index, column in enumerate((c for c in table.columns if c.kind == kind), start=1):
            ids[column.key] = f"{kind[0].upper()}{index}"
    return ids


_SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")
# The terminal layouts, tried in turn until the table fits: the column kinds shown by a short id
# (published columns before run names), the last split over several tables if it must.
_LAYOUTS: tuple[tuple[str, ...], ...] = ((), ("published",), ("published", "run", "delta"))


def _natural_width(console: Any, rich_table: Any) -> int:
    """The width a rich table takes unwrapped (rich's measure stops at the console's width)."""
    return console.measure(rich_table, options=console.options.update_width(10**6)).maximum


def _split_tables(table: Table, ids: dict[str, str], console: Any, marks: dict[str, str]) -> list[Any]:
    """The narrow layout over as many tables as it takes for each to fit the console (at least
    one value column each)."""
    tables, rest = [], list(table.columns)
    while rest:
        count = len(rest)
        while count > 1 and _natural_width(console, _rich_table(table, rest[:count], ids, {})) > console.width:
            count -= 1
        tables.append(_rich_table(table, rest[:count], ids, marks))
        rest = rest[count:]
    return tables


def _rich_table(table: Table, columns: Sequence[Column], ids: dict[str, str] | None, marks: dict[str, str]) -> Any:
    """One rich table of `columns`. `ids` None: the full layout (Type, Set and Rule columns, notes,
    flags and intervals in the cells). Otherwise the narrow one: a column in `ids` is headed by its id,
    types are section rows, a set's other rules are indented rows under it, and a cell's note or
    flag is a numbered mark added to `marks` (its interval on a line of its own)."""
    from rich.table import Table as RichTable
    from rich.text import Text

    narrow = ids is not None
    # Text objects throughout: headers like "model [samples]" must not be read as rich markup.
    caption = BY_RULE_CAPTION_NARROW if narrow and table.caption == BY_RULE_CAPTION else table.caption
    rich_table = RichTable(title=Text(table.title, style="bold"), caption=Text(caption), show_lines=False)
    if not narrow:
        rich_table.add_column("Type")
    rich_table.add_column("Set", no_wrap=narrow)
    if table.by_rule and not narrow:
        rich_table.add_column("Rule", style="dim", no_wrap=True)
    for column in columns:
        style = "yellow" if column.partial else ("cyan" if column.kind == "run" else None)
        header = ids.get(column.key, column.display_header) if narrow else column.display_header
        rich_table.add_column(Text(header, style=style or ""), justify="right")

    def shown(full: str, bare: str, annotation: str, interval: str) -> Text:
        """A cell's text; narrow: its note or flag (`annotation`) as a mark, its interval below."""
        if not narrow:
            return Text(full)
        if annotation.strip():
            bare += marks.setdefault(annotation.strip(), str(len(marks) + 1).translate(_SUPERSCRIPT))
        return Text(bare + (f"\n{interval.strip()}" if interval.strip() else ""))

    previous_type = None
    rows = list(iter_rule_rows(table))
    for index, (type_label, label, row) in enumerate(rows):
        shown_type = type_label if type_label != previous_type else ""
        previous_type = type_label
        last_of_type = index + 1 == len(rows) or rows[index + 1][0] != type_label
        cells = []
        for c in columns:
            full, annotated = row_cell_text(c, row), row_cell_text(c, row, with_ci=False)
            bare = row_cell_text(c, row, with_ci=False, with_note=False)
            cells.append(shown(full, bare, annotated[len(bare):], full[len(annotated):]))
        if not narrow:
            rich_table.add_row(Text(shown_type), Text(label if row.first else ""), *_rule_cell(table, row, Text), *cells,
                               end_section=last_of_type)
            continue
        if shown_type:
            rich_table.add_row(Text(shown_type, style="bold"), *("" for _ in columns))
        name = label if row.first else f"  {short_name(row.rule)}"
        rich_table.add_row(Text(name, style="" if row.first else "dim"), *cells, end_section=last_of_type)
    for group_label, label, group in iter_average_rows():
        style = "bold" if group == "all" else ""
        cells = []
        for c in columns:
            bare = average_text(c, group, with_ci=False)
            annotation = average_cell_text(table, c, group, with_ci=False)[len(bare):]
            cells.append(shown(average_cell_text(table, c, group), bare, annotation, average_text(c, group)[len(bare):]))
        for cell in cells:
            cell.stylize(style)
        heads = [Text(label, style=style)] if narrow else [Text(group_label, style=style), Text(label, style=style),
                                                           *_rule_cell(table, None, Text)]
        rich_table.add_row(*heads, *cells)
    return rich_table


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>|#])")


def md_escape(text: str) -> str:
    """Escape Markdown inline syntax (and the table pipe); newlines become spaces."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def _md_row(cells: Iterable[str]) -> str:
    return "| " + " | ".join(md_escape(x) for x in cells) + " |"


def _rule_cell(table: Table, row: RuleRow | None, make: Callable[[str], Any] = str) -> list[Any]:
    """The Rule column's cell of a row (empty on average rows), or nothing when the table is not by rule."""
    if not table.by_rule:
        return []
    return [make(short_name(row.rule) if row is not None else "")]


def render_markdown(table: Table) -> str:
    out: list[str] = [f"# {md_escape(table.title)}", "", md_escape(table.caption), ""]
    rule_column = ["Rule"] if table.by_rule else []
    headers = ["Type", "Set", *rule_column, *(c.display_header for c in table.columns)]
    out += [_md_row(headers), "|" + "|".join([":--"] * (2 + len(rule_column)) + ["--:"] * len(table.columns)) + "|"]
    out += [_md_row([type_label, label, *_rule_cell(table, row), *(row_cell_text(c, row) for c in table.columns)])
            for type_label, label, row in iter_rule_rows(table)]
    out += [_md_row([group_label, label, *_rule_cell(table, None), *(average_cell_text(table, c, group) for c in table.columns)])
            for group_label, label, group in iter_average_rows()]
    if table.by_rule:
        out += ["", "## Rules", "", *(f"- {md_escape(line)}" for line in legend(rules_shown(table)))]
    out += ["", "## Provenance", ""]
    out += [f"- **{md_escape(header)}**: " + " ".join(md_escape(line) for line in lines)
            for header, lines in provenance_lines(table.columns)]
    for title, items in (("Notes", table.notes), ("Warnings", table.warnings)):
        if items:
            out += ["", f"## {title}", "", *(f"- {md_escape(item)}" for item in items)]
    return "\n".join(out) + "\n"


def render_csv(table: Table) -> str:
    """Wide CSV: one row per set/average; annotation and interval columns beside their column.
    After a blank row come the rules, provenance, notes and warnings: a reader wanting only
    numbers stops at the first blank row."""
    body = list(iter_rule_rows(table))
    flagged = {column.key: _csv_flagged(table, column, body) for column in table.columns}
    header = ["type", "set", "task", *(["rule"] if table.by_rule else [])]
    for column in table.columns:
        name = column.display_header
        header += [name, *([f"{name} model"] if column.has_notes else []), *([f"{name} flag"] if flagged[column.key] else [])]
        header += [f"{name} ci_low", f"{name} ci_high"] if column.has_ci or column.average_cis else []
    rows = [header]
    for type_label, label, body_row in body:
        # The rule id, not its short name: a file read by programs keeps the stable key.
        row = [type_label, label, REGISTRY[body_row.key].task_name, *([body_row.rule] if table.by_rule else [])]
        for column in table.columns:
            row += _csv_cell(column, flagged[column.key], row_cell(column, body_row))
        rows.append(row)
    for group_label, label, group in iter_average_rows():
        row = [group_label, label, "", *([""] if table.by_rule else [])]
        for column in table.columns:
            value = column.averages()[group]
            mixed = table.by_rule and value is not None and mixes_rules(column, sets_of(group))
            row += _csv_values(column, flagged[column.key], value, None, column.average_cis.get(group), MIXED if mixed else None)
        rows.append(row)
    return _csv_text(rows + _csv_sections(table))


def _csv_flagged(table: Table, column: Column, body: Sequence[tuple[str, str, RuleRow]]) -> bool:
    """Whether the column gets a flag column: a flagged cell, and in a by-rule table also the run's
    "no like metric" cells and the (mixed) mark of published averages, which a number cannot hold."""
    return (column.has_flags
            or any(isinstance(cell := row_cell(column, row), Cell) and cell.flag for _, _, row in body)
            or (table.by_rule and any(mixes_rules(column, sets_of(group)) for _, _, group in iter_average_rows())))


def _csv_cell(column: Column, flagged: bool, cell: Cell | None | str) -> list[str]:
    if isinstance(cell, str):  # a number by another rule stands in that rule's row: blank, not missing
        return _csv_values(column, flagged, None, other_rule=True)
    if cell is None:
        return _csv_values(column, flagged, None)
    return _csv_values(column, flagged, cell.value, cell.note, cell.ci, cell.flag)


def _csv_values(column: Column, flagged: bool, value: float | None, note: str | None = None,
                ci: tuple[float, float] | None = None, flag: str | None = None, other_rule: bool = False) -> list[str]:
    """A value and, where its column has them, its note, flag and interval cells."""
    row = ["" if other_rule else fmt_pct(value, signed=column.kind == "delta")]
    if column.has_notes:
        row.append(note or "")
    if flagged:
        row.append(flag or "")
    if column.has_ci or column.average_cis:
        row += ["", ""] if ci is None else [fmt_pct(ci[0]), fmt_pct(ci[1])]
    return row


def _csv_sections(table: Table) -> list[list[str]]:
    from taiyi_bench.harness.scoring import RULES

    rows: list[list[str]] = []
    if table.by_rule:
        rows += [[], ["# rules"], ["rule", "short name", "description", "run metric"]]
        rows += [[rule, short_name(rule), RULES.get(rule, ""), "/".join(run_metrics(rule)) or "none"] for rule in rules_shown(table)]
    rows += [[], ["# provenance"], ["column", "provenance"]]
    rows += [[header, " ".join(lines)] for header, lines in provenance_lines(table.columns)]
    for title, items in (("# notes", table.notes), ("# warnings", table.warnings)):
        if items:
            rows += [[], [title], *([item] for item in items)]
    return rows


def _csv_text(rows: Iterable[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    # Cells carry model names and model-made labels: no cell may run as a spreadsheet formula.
    csv_writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


_TEX_MAP = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}",
    "Δ": r"$\Delta$", "—": "---", "–": "--", "±": r"$\pm$", "≠": r"$\neq$", "…": r"\ldots{}",
}
_TEX_RE = re.compile("|".join(re.escape(k) for k in _TEX_MAP))


def tex_escape(text: str) -> str:
    return _TEX_RE.sub(lambda m: _TEX_MAP[m.group(0)], " ".join(str(text).split()))


def render_latex(table: Table) -> str:
    out = [
        "% Generated by `taiyi leaderboard` (taiyi-bench). Needs \\usepackage{booktabs}.",
        "\\begin{table}[t]", "\\centering", "\\small",
        f"\\caption{{{tex_escape(table.title)}. {tex_escape(table.caption)}}}",
        f"\\label{{tab:{re.sub(r'[^A-Za-z0-9:_-]', '-', table.slug)}}}",
        f"\\begin{{tabular}}{{ll{'l' if table.by_rule else ''}{'r' * len(table.columns)}}}",
        "\\toprule",
        " & ".join(["Type", "Set", *(["Rule"] if table.by_rule else []), *(tex_escape(c.display_header) for c in table.columns)])
        + " \\\\",
        "\\midrule",
    ]
    previous = None
    for type_label, label, row in iter_rule_rows(table):
        if previous is not None and type_label != previous:
            out.append("\\midrule")
        shown = type_label if type_label != previous else ""
        previous = type_label
        cells = [shown, label if row.first else "", *_rule_cell(table, row), *(row_cell_text(c, row) for c in table.columns)]
        out.append(" & ".join(tex_escape(x) for x in cells) + " \\\\")
    out.append("\\midrule")
    for group_label, label, group in iter_average_rows():
        cells = [tex_escape(group_label), tex_escape(label), *_rule_cell(table, None),
                 *(tex_escape(average_cell_text(table, c, group)) for c in table.columns)]
        if group == "all":
            out.append("\\midrule")
            cells = [f"\\textbf{{{x}}}" for x in cells]
        out.append(" & ".join(cells) + " \\\\")
    out += ["\\bottomrule", "\\end{tabular}", "", "\\par\\smallskip", "\\begin{minipage}{\\linewidth}\\footnotesize"]
    if table.by_rule:
        out += ["\\textbf{Rules.}", *(tex_escape(line) + "\\par" for line in legend(rules_shown(table)))]
    out.append("\\textbf{Provenance.}")
    out += [f"\\textit{{{tex_escape(header)}}}: " + tex_escape(" ".join(lines)) + "\\par"
            for header, lines in provenance_lines(table.columns)]
    if table.notes:
        out += ["\\textbf{Notes.}", *(tex_escape(note) + "\\par" for note in table.notes)]
    out += ["\\end{minipage}", "\\end{table}"]
    return "\n".join(out) + "\n"


def render_html(table: Table) -> str:
    esc = html.escape
    out = [
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">', f"<title>{esc(table.title)}</title>",
        f"<style>{asset('leaderboard.css')}</style>", "</head>", "<body>", f"<h1>{esc(table.title)}</h1>",
        f'<table id="{esc(table.slug)}">', f"<caption>{esc(table.caption)}</caption>",
        "<thead><tr><th>Type</th><th>Set</th>" + ("<th>Rule</th>" if table.by_rule else "")
        + "".join(
            f'<th class="num{" partial" if c.partial else ""}" title="{esc(" ".join(c.provenance))}">{esc(c.display_header)}</th>'
            for c in table.columns
        )
        + "</tr></thead>",
        "<tbody>",
    ]
    for type_label, label, row in iter_rule_rows(table):
        cells = "".join(f'<td class="num">{esc(row_cell_text(c, row))}</td>' for c in table.columns)
        rule = "".join(f'<td class="rule" title="{esc(row.rule or "")}">{esc(x)}</td>' for x in _rule_cell(table, row))
        data_rule = f' data-rule="{esc(row.rule)}"' if table.by_rule and row.rule else ""
        out.append(f'<tr data-set="{esc(row.key)}"{data_rule}><td>{esc(type_label)}</td><td>{esc(label)}</td>{rule}{cells}</tr>')
    for group_label, label, group in iter_average_rows():
        cells = "".join(f'<td class="num">{esc(average_cell_text(table, c, group))}</td>' for c in table.columns)
        css = "avg all" if group == "all" else "avg"
        rule = "<td></td>" if table.by_rule else ""
        out.append(f'<tr class="{css}" data-average="{esc(group)}"><td>{esc(group_label)}</td><td>{esc(label)}</td>{rule}{cells}</tr>')
    out += ["</tbody>", "</table>"]
    if table.by_rule:
        out += _html_list("rules", "Rules", legend(rules_shown(table)))
    out += ['<section id="provenance">', "<h2>Provenance</h2>", "<dl>"]
    out += [f"<dt>{esc(header)}</dt>" + "".join(f"<dd>{esc(line)}</dd>" for line in lines)
            for header, lines in provenance_lines(table.columns)]
    out += ["</dl>", "</section>"]
    out += _html_list("notes", "Notes", table.notes)
    out += _html_list("warnings", "Warnings", table.warnings)
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"


def _html_list(section_id: str, title: str, items: Sequence[str]) -> list[str]:
    if not items:
        return []
    return [f'<section id="{section_id}">', f"<h2>{title}</h2>", "<ul>", *(f"<li>{html.escape(x)}</li>" for x in items), "</ul>", "</section>"]


RENDERERS = {"md": render_markdown, "csv": render_csv, "tex": render_latex, "html": render_html}


def parse_formats(text: str | Iterable[str]) -> list[str]:
    """`md,csv,png` -> ["md", "csv", "png"]; unknown names raise ValueError listing the known ones."""
    items = text.split(",") if isinstance(text, str) else list(text)
    formats = [item.strip().lower().lstrip(".") for item in items if item.strip()]
    aliases = {"markdown": "md", "latex": "tex", "htm": "html"}
    formats = [aliases.get(f, f) for f in formats]
    unknown = [f for f in formats if f not in ALL_FORMATS]
    if unknown:
        raise ValueError(f"unknown format(s) {', '.join(unknown)}; choose from {', '.join(ALL_FORMATS)}")
    return list(dict.fromkeys(formats))


def _first_sentence(text: str, limit: int = 160) -> str:
    end = text.find(". ")
    short = text if end == -1 else text[: end + 1]
    return short if len(short) <= limit else short[: limit - 1] + "…"


def write_table(table: Table, out_dir: str | os.PathLike, formats: Iterable[str] = ALL_FORMATS) -> list[Path]:
    """Write `<out_dir>/<table.slug>.<fmt>` for each format, each atomically. Returns the paths."""
    out = Path(out_dir)
    written: list[Path] = []
    for fmt in formats:
        path = out / f"{table.slug}.{fmt}"
        if fmt in RENDERERS:
            written.append(atomic_write_text(path, RENDERERS[fmt](table)))
        elif fmt in PLOT_FORMATS:
            from taiyi_bench.harness.apps.leaderboard.plot import caption_path, write_plot

            written.append(write_plot(table, path, fmt))
            if caption_path(path) not in written:  # the plot's provenance, beside it
                written.append(caption_path(path))
        else:
            raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(ALL_FORMATS)}")
    return written


def _paired_rows(report) -> list[list[str]]:
    """Set, A, B, delta, CI of delta, p, units: one row per set both runs have samples for; on too
    few units the interval and p cells give the count instead (`FEW_UNITS_NOTE`)."""
    rows = []
    for key in PAPER_ORDER:
        result = report.rows.get(key)
        if result is None:
            continue
        inference = [f"[{fmt_pct(result.low * 100, signed=True)}, {fmt_pct(result.high * 100, signed=True)}]",
                     f"{result.p_value:.3f}"]
        if too_few_units(result.n_units):
            inference = [f"({few_units_flag(result.n_units)})"] * 2
        rows.append([
            REGISTRY[key].display_name, fmt_pct(result.point_a * 100), fmt_pct(result.point_b * 100),
            fmt_pct(result.delta * 100, signed=True), *inference, str(result.n_units),
        ])
    return rows


def _paired_headers(report, *, short: bool = False) -> list[str]:
    """Column headers; `short`: runs as A and B (named above the table), so the table fits 80 columns."""
    runs = ["A", "B"] if short else [f"A: {report.a.display_header}", f"B: {report.b.display_header}"]
    return ["Set", *runs, "Δ (A−B)", "95% CI of Δ", "p", "units"]


def _paired_footer(report) -> list[str]:
    few = [FEW_UNITS_NOTE] if any(too_few_units(r.n_units) for r in report.rows.values()) else []
    return [
        f"Paired bootstrap over the units both runs scored (matched by unit id and document), {report.n_resamples} resamples, "
        f"seed {report.seed}; two-sided p-value against no difference.", *few,
        f"A = {report.a.display_header}: " + " ".join(report.a.provenance),
        f"B = {report.b.display_header}: " + " ".join(report.b.provenance),
    ]


def render_paired_terminal(report, console=None) -> None:
    from rich.console import Console
    from rich.table import Table as RichTable
    from rich.text import Text

    console = console or Console()
    for letter, column in (("A", report.a), ("B", report.b)):
        console.print(Text(f"{letter} = {column.display_header}"), soft_wrap=True)
    rich_table = RichTable(title=Text("Paired bootstrap test", style="bold"))
    for index, header in enumerate(_paired_headers(report, short=True)):
        rich_table.add_column(Text(header), justify="left" if index == 0 else "right")
    for row in _paired_rows(report):
        rich_table.add_row(*(Text(x) for x in row))
    console.print(rich_table)
    for line in _paired_footer(report):
        console.print(Text(line, style="dim"), soft_wrap=True)
    for warning in report.warnings:
        console.print(Text(f"warning: {warning}", style="yellow"), soft_wrap=True)


def render_paired_markdown(report) -> str:
    out = ["# Paired bootstrap test", ""]
    headers = _paired_headers(report)
    out += [_md_row(headers), "|" + "|".join([":--", *("--:" for _ in headers[1:])]) + "|"]
    out += [_md_row(row) for row in _paired_rows(report)]
    out += ["", "## Provenance", "", *(f"- {md_escape(line)}" for line in _paired_footer(report))]
    if report.warnings:
        out += ["", "## Warnings", "", *(f"- {md_escape(w)}" for w in report.warnings)]
    return "\n".join(out) + "\n"


def render_paired_csv(report) -> str:
    return _csv_text([_paired_headers(report), *_paired_rows(report), [], ["# provenance"],
                      *([line] for line in _paired_footer(report))])


def _write_each(item: Any, writers: dict[str, Callable[[Any], str]], out_dir: str | os.PathLike,
                formats: Iterable[str]) -> list[Path]:
    """`<out_dir>/<item.slug>.<fmt>` for each of `formats` that `writers` renders (the others do not
    apply to `item`), each atomically."""
    return [atomic_write_text(Path(out_dir) / f"{item.slug}.{fmt}", writers[fmt](item)) for fmt in formats if fmt in writers]


def write_paired(report, out_dir: str | os.PathLike, formats: Iterable[str]) -> list[Path]:
    """Markdown and CSV of a paired report (the other formats do not apply to it)."""
    return _write_each(report, {"md": render_paired_markdown, "csv": render_paired_csv}, out_dir, formats)


def _type_row(table, key: str) -> list[str]:
    """Per run: F1 with its interval, P / R, support (percent, one decimal; — where absent)."""
    cells = []
    for index in range(len(table.runs)):
        cell = table.cells.get((key, index))
        if cell is None:
            cells += ["—", "—", "—"]
            continue
        f1 = fmt_pct(cell.f1 * 100) + (f" [{fmt_pct(cell.ci[0] * 100)}, {fmt_pct(cell.ci[1] * 100)}]" if cell.ci else "")
        cells += [f1, f"{fmt_pct(cell.precision * 100)} / {fmt_pct(cell.recall * 100)}", str(cell.support)]
    return cells


def _type_headers(table) -> list[str]:
    return ["Type", *(f"{run}: {part}" for run in table.runs for part in ("F1", "P / R", "support"))]


def render_by_type_terminal(table, console=None) -> None:
    from rich.console import Console
    from rich.table import Table as RichTable
    from rich.text import Text

    console = console or Console()
    # One column per run (F1 and its interval over P / R and support), so that runs fit side by side.
    rich_table = RichTable(title=Text(table.title, style="bold"), show_lines=True)
    rich_table.add_column("Type", no_wrap=True)
    for run in table.runs:
        rich_table.add_column(Text(run), justify="right")
    for key in table.rows:
        row = _type_row(table, key)
        cells = [row[i : i + 3] for i in range(0, len(row), 3)]
        rich_table.add_row(Text(table.label(key)), *(Text(f"{f1}\nP/R {pr}, n={n}" if n != "—" else "—") for f1, pr, n in cells))
    console.print(rich_table)
    for note in table.notes:
        console.print(Text(f"Note: {note}", style="dim"), soft_wrap=True)
    for warning in table.warnings:
        console.print(Text(f"warning: {warning}", style="yellow"), soft_wrap=True)


def render_by_type_markdown(table) -> str:
    headers = _type_headers(table)
    out = [f"# {md_escape(table.title)}", "", _md_row(headers),
           "|" + "|".join([":--", *("--:" for _ in headers[1:])]) + "|"]
    out += [_md_row([table.label(k), *_type_row(table, k)]) for k in table.rows]
    out += ["", *(f"- {md_escape(note)}" for note in table.notes)]
    if table.warnings:
        out += ["", "## Warnings", "", *(f"- {md_escape(w)}" for w in table.warnings)]
    return "\n".join(out) + "\n"


def render_by_type_csv(table) -> str:
    names = ("f1", "ci_low", "ci_high", "precision", "recall", "support", "tp", "fp", "fn")
    rows = [["type", "name", *(f"{run} {name}" for run in table.runs for name in names)]]
    for key in table.rows:
        row = [key, table.spec.label_name(key)]
        for index in range(len(table.runs)):
            cell = table.cells.get((key, index))
            if cell is None:
                row += [""] * 9
                continue
            ci = ["", ""] if cell.ci is None else [fmt_pct(cell.ci[0] * 100), fmt_pct(cell.ci[1] * 100)]
            row += [fmt_pct(cell.f1 * 100), *ci, fmt_pct(cell.precision * 100), fmt_pct(cell.recall * 100),
                    cell.support, cell.tp, cell.fp, cell.fn]
        rows.append(row)
    return _csv_text([*rows, [], *([note] for note in table.notes)])


def render_by_type_html_table(table) -> str:
    """The per-type table as one HTML <table> (for the leaderboard page and `taiyi report`)."""
    esc = html.escape
    head = "".join(f'<th class="num" colspan="3">{esc(run)}</th>' for run in table.runs)
    sub = "".join('<th class="num">F1 [95% CI]</th><th class="num">P / R</th><th class="num">support</th>' for _ in table.runs)
    rows = []
    for key in table.rows:
        cells = "".join(f'<td class="num">{esc(x)}</td>' for x in _type_row(table, key))
        rows.append(f'<tr data-type="{esc(key)}"><td>{esc(table.label(key))}</td>{cells}</tr>')
    return (f'<table class="by-type" id="{esc(table.slug)}"><thead><tr><th rowspan="2">Type</th>{head}</tr>'
            f"<tr>{sub}</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _html_page_top(title: str) -> list[str]:
    """A standalone page's lines up to its heading (the per-type and cost pages)."""
    esc = html.escape
    return ["<!DOCTYPE html>", '<html lang="en">', '<head><meta charset="utf-8">', f"<title>{esc(title)}</title>",
            f"<style>{asset('leaderboard.css')}</style></head><body>", f"<h1>{esc(title)}</h1>"]


def render_by_type_html(table) -> str:
    out = [*_html_page_top(table.title), render_by_type_html_table(table)]
    out += _html_list("notes", "Notes", table.notes) + _html_list("warnings", "Warnings", table.warnings)
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"


def write_by_type(table, out_dir: str | os.PathLike, formats: Iterable[str]) -> list[Path]:
    """Markdown, CSV and HTML of a per-type table (plots and LaTeX do not apply to it)."""
    writers = {"md": render_by_type_markdown, "csv": render_by_type_csv, "html": render_by_type_html}
    return _write_each(table, writers, out_dir, formats)


# --- the cost table (`taiyi leaderboard --cost`) --------------------------------------------------


def render_cost_terminal(table: CostTable, console=None) -> None:
    """The runs by short id above the table (as the narrow leaderboard names them): seven narrow
    columns, so the table fits 80 columns whatever the models are called."""
    from rich.console import Console
    from rich.table import Table as RichTable
    from rich.text import Text

    console = console or Console()
    for line in table.legend:
        console.print(Text(line), soft_wrap=True)
    rich_table = RichTable(title=Text(table.title, style="bold"))
    for index, header in enumerate(COST_HEADERS):
        rich_table.add_column(Text(header), justify="left" if index < 2 else "right", no_wrap=True)
    for row in table.rows:
        rich_table.add_row(*(Text(cell) for cell in row))
    console.print(rich_table)
    for note in table.notes:
        console.print(Text(f"Note: {note}", style="dim"), soft_wrap=True)


def render_cost_markdown(table: CostTable) -> str:
    out = [f"# {md_escape(table.title)}", "", *(f"- {md_escape(line)}" for line in table.legend), "",
           _md_row(COST_HEADERS), "|" + "|".join([":--", ":--", *("--:" for _ in COST_HEADERS[2:])]) + "|",
           *(_md_row(row) for row in table.rows)]
    out += ["", "## Notes", "", *(f"- {md_escape(note)}" for note in table.notes)]
    return "\n".join(out) + "\n"


def render_cost_csv(table: CostTable) -> str:
    return _csv_text([COST_HEADERS, *table.rows, [], ["# runs"], *([line] for line in table.legend),
                      [], ["# notes"], *([note] for note in table.notes)])


def render_cost_latex(table: CostTable) -> str:
    out = ["% Generated by `taiyi leaderboard --cost` (taiyi-bench). Needs \\usepackage{booktabs}.",
           "\\begin{table}[t]", "\\centering", "\\small", f"\\caption{{{tex_escape(table.title)}}}",
           f"\\label{{tab:{table.slug}}}", f"\\begin{{tabular}}{{ll{'r' * (len(COST_HEADERS) - 2)}}}", "\\toprule",
           " & ".join(map(tex_escape, COST_HEADERS)) + " \\\\", "\\midrule",
           *(" & ".join(map(tex_escape, row)) + " \\\\" for row in table.rows),
           "\\bottomrule", "\\end{tabular}", "", "\\par\\smallskip", "\\begin{minipage}{\\linewidth}\\footnotesize",
           *(tex_escape(line) + "\\par" for line in [*table.legend, *table.notes]), "\\end{minipage}", "\\end{table}"]
    return "\n".join(out) + "\n"


def render_cost_html_table(table: CostTable, table_id: str) -> str:
    """The cost table as one HTML <table> (for the leaderboard's cost page and `taiyi report`)."""
    esc = html.escape
    align = ["" if index < 2 else ' class="num"' for index in range(len(COST_HEADERS))]  # Run, Set, then figures
    head = "".join(f"<th{a}>{esc(header)}</th>" for a, header in zip(align, COST_HEADERS, strict=True))
    body = ["<tr>" + "".join(f"<td{a}>{esc(cell)}</td>" for a, cell in zip(align, row, strict=True)) + "</tr>"
            for row in table.rows]
    return "\n".join([f'<table id="{esc(table_id)}"><thead><tr>{head}</tr></thead><tbody>', *body, "</tbody></table>"])


def render_cost_html(table: CostTable) -> str:
    out = [*_html_page_top(table.title), "<ul>", *(f"<li>{html.escape(line)}</li>" for line in table.legend), "</ul>",
           render_cost_html_table(table, table.slug), *_html_list("notes", "Notes", table.notes), "</body>", "</html>"]
    return "\n".join(out) + "\n"


def write_cost(table: CostTable, out_dir: str | os.PathLike, formats: Iterable[str]) -> list[Path]:
    """`<out_dir>/<table.slug>.<fmt>` of the cost table for each text format (plots do not apply)."""
    writers = {"md": render_cost_markdown, "csv": render_cost_csv, "tex": render_cost_latex, "html": render_cost_html}
    return _write_each(table, writers, out_dir, formats)
