"""Like for like: every published number carries the rule it was computed by, and the leaderboard
sets beside it only a run's metric by that same rule (never the headline by another rule).

Runs are lm-eval results files written in tmp_path by `test_leaderboard_identity.write_results`,
with the metrics each test needs set by hand (fractions, as lm-eval writes them).
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest
from test_leaderboard_identity import write_results

from taiyi_bench.harness.apps.leaderboard import (
    compare_table,
    leaderboard_table,
    load_published,
    paper_tables,
)
from taiyi_bench.harness.apps.leaderboard.published import load_anchors, published_dir
from taiyi_bench.harness.apps.leaderboard.render import (
    render_csv,
    render_html,
    render_latex,
    render_markdown,
    render_terminal,
)
from taiyi_bench.harness.apps.leaderboard.rules import (
    MIXED,
    NO_LIKE_METRIC,
    NOT_IN_FILE,
    RULE_SHORT,
    headline_rule,
    short_name,
)
from taiyi_bench.harness.apps.leaderboard.table import OTHER_RULE, Table, row_cell, row_cell_text
from taiyi_bench.harness.errors import DataFormatError
from taiyi_bench.harness.registry import PAPER_ORDER, PAPER_SETS, REGISTRY
from taiyi_bench.harness.scoring import RULES, metric_for_rule

NER = ("bc5cdr_chem", "bc5cdr_dise", "chemdner", "ncbi_disease", "cmeee")

# Metric values chosen so that no two rules of a set share a value: a cell shows which one it took.
METRICS = {
    "hoc": {"micro_f1": 0.411, "abstract_micro_f1": 0.633},
    "kuake_qic": {"acc": 0.502, "micro_f1": 0.524, "macro_f1_over_classes": 0.371},
    "bc5cdr_chem": {"micro_f1": 0.701, "strict_occurrence_micro_f1": 0.652},
    "pubmedqa": {"acc": 0.55, "macro_f1_over_classes": 0.43},
}


def _run(tmp_path: Path, metrics: dict[str, dict[str, float]] = METRICS, model: str = "org/m") -> Path:
    """One full zero-shot run of the published variant, with `metrics` set on their sets (every
    other metric of ours absent, as in a file scored before it existed)."""
    path = write_results(tmp_path / "runs", model)
    data = json.loads(path.read_text(encoding="utf-8"))
    for key, values in metrics.items():
        entry = data["results"][REGISTRY[key].task_name]
        for name, value in values.items():
            entry[f"{name},none"] = value
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _rows(table: Table, key: str) -> dict[str, dict[str, str]]:
    """{rule: {column header: cell text}} for one set's rows."""
    return {row.rule: {c.header: row_cell_text(c, row) for c in table.columns}
            for row in table.rule_rows() if row.key == key}


# --- the data ---------------------------------------------------------------------------------------


def test_every_published_cell_has_a_known_rule_and_a_source() -> None:
    tables = load_published()
    for table in tables.values():
        for column_id in table.column_ids:
            for key in PAPER_SETS:
                assert table.rule(column_id, key) in RULES, (table.id, column_id, key)
                assert table.cell_sources[column_id][key].strip(), (table.id, column_id, key)
        for column_id in ("taiyi1", *(("taiyi2", "deepseek14b") if table.letter == "B" else ())):
            # The authors' own scoring: each set's headline rule; their script is not released.
            assert all(table.rule(column_id, key) == headline_rule(key) for key in PAPER_SETS), column_id
            assert all("authors' script not released" in table.cell_sources[column_id][key] for key in PAPER_SETS)
        chatgpt = "chatgpt35" if table.letter == "A" else "gpt35"
        assert table.rule(chatgpt, "kuake_qic") == "macro_over_classes"
        assert "PromptCBLUE" in table.cell_sources[chatgpt]["kuake_qic"]
        assert {k for k in PAPER_SETS if table.rule(chatgpt, k) != headline_rule(k)} == {"kuake_qic"}
        sota = {key: table.rule("sota", key) for key in PAPER_SETS}
        assert {sota[k] for k in NER} == {"occurrence_strict"}
        assert (sota["bc5cdr_re"], sota["cmeie"], sota["litcovid"], sota["hoc"]) == (
            "concept_pairs", "ordered_triples", "label_set", "abstract_label_set")
        assert {sota[k] for k in ("kuake_qic", "pubmedqa", "medqa_usmle", "medqa_mcmle")} == {"accuracy"}
    # Other papers' numbers too; the macro-F1 ones left out still name their rule, which no metric implements.
    anchors = load_anchors()
    assert anchors and all(rule in RULES for a in anchors for rule in a.rules.values())
    assert all(set(a.rules) == set(a.values) for a in anchors)
    chen = next(a for a in anchors if a.source.startswith("Chen et al."))
    left_out = {s: item["rule"] for item in chen.left_out for s in item["sets"]}
    assert left_out["hoc"] == left_out["litcovid"] == "macro_over_labels"
    assert metric_for_rule(REGISTRY["hoc"], "macro_over_labels") is None
    assert set(RULE_SHORT) == set(RULES)  # every rule has a short name for the Rule column


@pytest.mark.parametrize(("file", "old", "bad"), [
    ("taiyi1_paper.yaml", "sota_rule: abstract_label_set", "abstract_labels"),  # a row's override
    ("taiyi2_readme.yaml", "rule: {NER: occurrence_strict,", "seqeval"),  # a column's default
    ("other_anchors.yaml", "rule: accuracy", "accuracy_at_1"),  # an anchor's
])
def test_an_unknown_rule_is_one_error_naming_the_file(tmp_path: Path, file: str, old: str, bad: str) -> None:
    folder = tmp_path / "published"
    shutil.copytree(published_dir(), folder)
    text = (folder / file).read_text(encoding="utf-8")
    assert old in text
    good = old.rstrip(",").rsplit(" ", 1)[1]
    (folder / file).write_text(text.replace(old, old.replace(good, bad), 1), encoding="utf-8")
    with pytest.raises(DataFormatError) as caught:
        load_published(folder)
    message = str(caught.value)
    assert file in message and repr(bad) in message
    assert "taiyi_bench.harness.scoring.RULES" in message and "\n" not in message


def test_a_cell_without_a_rule_is_an_error(tmp_path: Path) -> None:
    folder = tmp_path / "published"
    shutil.copytree(published_dir(), folder)
    path = folder / "taiyi1_paper.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("    rule: {NER: mention_set, RE: ordered_triples, TC: label_set, QA: accuracy}\n",
                                                             "    rule: {NER: mention_set}\n", 1), encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"taiyi1_paper\.yaml, row 7 \(cmeie\), column taiyi1: expected the rule"):
        load_published(folder)


# --- like beside like ---------------------------------------------------------------------------------


def test_hoc_sota_stands_beside_the_abstract_metric_never_the_sentence_micro_f1(tmp_path: Path) -> None:
    _run(tmp_path)
    table = leaderboard_table([tmp_path / "runs"], published="A")
    hoc = _rows(table, "hoc")
    assert list(hoc) == ["label_set", "abstract_label_set"]  # the headline first, then SOTA's rule
    assert hoc["abstract_label_set"]["SOTA"] == "82.3 (PubMedBERT)" and hoc["abstract_label_set"]["org/m"] == "63.3"
    assert hoc["label_set"]["SOTA"] == OTHER_RULE and hoc["label_set"]["org/m"] == "41.1"
    assert hoc["label_set"]["Taiyi"] == "80.0" and hoc["abstract_label_set"]["Taiyi"] == OTHER_RULE
    # In every format the row that holds 82.3 holds the abstract-level number and not the sentence-level one.
    markdown_row = next(line for line in render_markdown(table).splitlines() if "82.3" in line)
    assert "63.3" in markdown_row and "41.1" not in markdown_row and "abstract labels" in markdown_row
    csv_row = next(r for r in csv.reader(io.StringIO(render_csv(table))) if "82.3" in r)
    assert "63.3" in csv_row and "41.1" not in csv_row and "abstract_label_set" in csv_row
    html_row = next(line for line in render_html(table).splitlines() if "82.3" in line)
    assert 'data-rule="abstract_label_set"' in html_row and "63.3" in html_row and "41.1" not in html_row
    tex_row = next(line for line in render_latex(table).splitlines() if "82.3" in line)
    assert "63.3" in tex_row and "41.1" not in tex_row and "abstract labels" in tex_row


def test_kuake_chatgpt_stands_beside_macro_f1_over_classes(tmp_path: Path) -> None:
    _run(tmp_path)
    kuake = _rows(leaderboard_table([tmp_path / "runs"], published="A"), "kuake_qic")
    assert list(kuake) == ["accuracy", "macro_over_classes"]
    assert kuake["macro_over_classes"] == {"Taiyi": "", "ChatGPT-3.5": "48.5", "SOTA": "", "org/m": "37.1"}
    assert kuake["accuracy"] == {"Taiyi": "77.4", "ChatGPT-3.5": "", "SOTA": "85.9 (CBLUE)", "org/m": "50.2"}
    # KUAKE-QIC's micro-F1 (52.4) stands nowhere: no published number is by that rule.
    assert "52.4" not in render_markdown(leaderboard_table([tmp_path / "runs"], published="A"))


def test_a_run_without_the_strict_metric_shows_no_like_metric_beside_ner_sota(tmp_path: Path) -> None:
    _run(tmp_path)  # only BC5CDR-Chem has strict_occurrence_micro_f1
    table = leaderboard_table([tmp_path / "runs"], published="A")
    chem = _rows(table, "bc5cdr_chem")
    assert chem["occurrence_strict"]["SOTA"] == "93.3 (PubMedBERT)" and chem["occurrence_strict"]["org/m"] == "65.2"
    assert chem["mention_set"]["org/m"] == "70.1"
    for key in NER[1:]:
        strict = _rows(table, key)["occurrence_strict"]
        assert NO_LIKE_METRIC in strict["org/m"] and strict["org/m"].startswith("—"), key
        assert strict["org/m"] == f"— ({NOT_IN_FILE})"
    assert any(NOT_IN_FILE in note and "taiyi rescore" in note for note in table.notes)
    # A rule the set has no metric for at all says so too.
    (run,) = [c for c in table.columns if c.kind == "run"]
    assert run.cell_by_rule("litcovid", "macro_over_labels").flag == NO_LIKE_METRIC


def test_every_row_of_every_table_holds_one_rule(tmp_path: Path) -> None:
    _run(tmp_path)
    tables = [leaderboard_table([tmp_path / "runs"], published="all"), *paper_tables(),
              compare_table(tmp_path / "runs", against="A:taiyi1,A:chatgpt35,A:sota,B:sota")]
    for table in tables:
        assert table.by_rule
        for row in table.rule_rows():
            for column in table.columns:
                cell = row_cell(column, row)
                if cell is None or isinstance(cell, str):
                    continue
                assert cell.rule in (row.rule, None), (table.slug, column.header, row)


# --- deltas and averages --------------------------------------------------------------------------------


def test_compare_takes_deltas_only_between_like_rules(tmp_path: Path) -> None:
    run = _run(tmp_path)
    table = compare_table(run, against="A:taiyi1,A:chatgpt35,A:sota")
    assert [c.header for c in table.columns] == ["org/m", "Δ vs Taiyi", "Δ vs ChatGPT-3.5", "Δ vs SOTA", "Taiyi",
                                                 "ChatGPT-3.5", "SOTA"]
    by_header = {c.header: c for c in table.columns}
    sota_delta, chatgpt_delta = by_header["Δ vs SOTA"], by_header["Δ vs ChatGPT-3.5"]
    assert sota_delta.value("hoc") == pytest.approx(63.3 - 82.3)  # abstract-level minus BLURB's 82.3
    assert sota_delta.cells["hoc"].rule == "abstract_label_set"
    assert sota_delta.value("bc5cdr_chem") == pytest.approx(65.2 - 93.3)
    assert chatgpt_delta.value("kuake_qic") == pytest.approx(37.1 - 48.5)
    assert by_header["Δ vs Taiyi"].value("kuake_qic") == pytest.approx(50.2 - 77.4)
    # No like metric in the file: no delta, and no average over it.
    assert sota_delta.value("ncbi_disease") is None and sota_delta.cells["ncbi_disease"].flag == NOT_IN_FILE
    assert sota_delta.averages()["ner"] is None and sota_delta.averages()["all"] is None
    assert sota_delta.averages()["qa"] is not None
    # The rows say it: the headline row has no SOTA delta, the SOTA rule's row has it.
    hoc = _rows(table, "hoc")
    assert hoc["label_set"]["Δ vs SOTA"] == OTHER_RULE and hoc["abstract_label_set"]["Δ vs SOTA"] == "-19.0"
    assert hoc["label_set"]["Δ vs Taiyi"] == "-38.9"
    assert _rows(table, "ncbi_disease")["occurrence_strict"]["Δ vs SOTA"] == f"— ({NOT_IN_FILE})"
    # Never a difference across rules: sentence-level HoC minus the abstract-level SOTA appears nowhere.
    assert "-41.2" not in render_markdown(table)
    notes = " ".join(table.notes)
    assert "Δ is taken only between numbers by the same rule" in notes and "none is printed" in notes


def test_compare_averages_use_the_reference_rules_and_the_paper_averages_say_they_mix(tmp_path: Path) -> None:
    run = _run(tmp_path, {**METRICS, **{k: {"strict_occurrence_micro_f1": 0.5} for k in NER}})
    table = compare_table(run, against="A:sota")
    run_column, delta = table.columns[0], table.columns[1]
    # The run's own average is over its headline metrics; the delta's over its values by SOTA's rules.
    by_sota_rules = [50.0] * 5
    assert delta.averages()["ner"] == pytest.approx(sum(by_sota_rules) / 5 - (93.3 + 85.6 + 92.4 + 87.8 + 74.0) / 5)
    assert run_column.averages()["ner"] != pytest.approx(50.0)
    paper_a = next(t for t in paper_tables() if t.slug == "paper_table_a")
    _, body = _markdown(render_markdown(paper_a))
    average = next(r for r in body if r[1].startswith("Average ("))
    assert average[3] == "65.1"  # Taiyi: every cell by its set's headline rule
    assert average[4] == f"49.3 ({MIXED})" and average[5] == f"73.5 ({MIXED})"
    assert any("not comparable with a run's average" in n and "SOTA" in n for n in paper_a.notes)


def _markdown(text: str) -> tuple[list[str], list[list[str]]]:
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    split = [[c.strip() for c in line.strip().strip("|").split(" | ")] for line in lines]
    return split[0], split[1:]


# --- every format names the rules -------------------------------------------------------------------------


def test_every_format_carries_the_rule_marks(tmp_path: Path) -> None:
    _run(tmp_path, model="org/we|ird_<m>&$")
    table = leaderboard_table([tmp_path / "runs"], published="A")
    markdown = render_markdown(table)
    header, body = _markdown(markdown)
    assert header[:3] == ["Type", "Set", "Rule"]
    assert {row[2] for row in body if row[2]} >= {short_name(r) for r in ("mention_set", "occurrence_strict",
                                                                          "abstract_label_set", "macro_over_classes")}
    legend = markdown.split("## Rules", 1)[1].split("## Provenance", 1)[0]
    assert "strict spans (occurrence\\_strict)" in legend and "seqeval" in legend and "BLURB" in legend
    assert "org/we\\|ird\\_\\<m\\>&$" in markdown  # the run's name still escaped

    page = render_html(table)
    assert "<th>Rule</th>" in page and 'id="rules"' in page and 'data-rule="occurrence_strict"' in page
    assert "<m>" not in page

    tex = render_latex(table)
    assert "Type & Set & Rule &" in tex and "\\textbf{Rules.}" in tex and "occurrence\\_strict" in tex
    assert "we\\textbar{}ird\\_\\textless{}m\\textgreater{}" in tex

    rows = list(csv.reader(io.StringIO(render_csv(table))))
    assert rows[0][:4] == ["type", "set", "task", "rule"]
    assert {r[3] for r in rows[1:] if len(r) > 3 and r[2].startswith("taiyi_")} >= {"occurrence_strict", "abstract_label_set"}
    assert ["# rules"] in rows and any(r[:2] == ["macro_over_classes", "macro-F1 classes"] for r in rows)
    sota_flag = rows[0].index("SOTA flag")  # the (mixed) mark of an average, beside its number
    overall = next(r for r in rows if r[1].startswith("Average ("))
    assert overall[sota_flag] == MIXED and overall[sota_flag - 2] == "73.5"

    from rich.console import Console

    console = Console(record=True, width=200)
    render_terminal(table, console, show_warnings=False)
    screen = console.export_text()
    assert "Rule" in screen and "strict spans" in screen and "abstract labels" in screen
    assert "macro-F1 classes (macro_over_classes)" in screen


def test_report_headline_names_the_rule_of_each_row(tmp_path: Path) -> None:
    from taiyi_bench.harness.apps.report import _headline

    _run(tmp_path)
    table = leaderboard_table([tmp_path / "runs"], published="A:sota")
    page: list[str] = []
    _headline(page, table, list(PAPER_ORDER), few={}, touched={})
    text = "\n".join(page)
    assert "<th>Rule</th>" in text
    row = next(line for line in text.splitlines() if 'data-set="hoc" data-rule="abstract_label_set"' in line)
    assert 'data-published="SOTA">82.3 (PubMedBERT)' in row and 'data-run="org/m">63.3' in row
    headline = next(line for line in text.splitlines() if 'data-set="hoc" data-rule="label_set"' in line)
    assert "82.3" not in headline and "41.1" in headline
    assert "abstract labels (abstract_label_set)" in text
