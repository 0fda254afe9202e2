"""Reliability of what is read back from results and samples files: each silent wrong result once
seen is now a refusal naming the file, a visible mark, or the right value.

Every test builds its bad input on the fly from a copy of a committed real run
(`results/reference/`, SmolLM2 slices written by lm-eval itself) or from the bundled samples:

1. runs on different data (same unit ids, other documents) are refused by `taiyi compare` and
   `taiyi leaderboard --paired`, never paired;
2. `taiyi rescore` refuses a samples file that is not its results file's own;
3. `taiyi reference` reruns a set whose results file has no agreeing samples file, and its
   comparison names every set it could not compare;
4. impossible unit counts in a results file are refused or marked, never a full official run;
5. `ungrounded_rate` of a run that predicted nothing is n/a, and the grounding table shows the
   main table's columns;
6. a malformed `verdicts` entry is one line naming the file and line;
7. `$` in a model name does not go through mathtext;
8. no CSV cell a model or user chose is a live spreadsheet formula.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from taiyi_bench.harness.csv_safety import FORMULA_STARTS, safe_cell
from taiyi_bench.harness.results_io import samples_beside

from cli_runs import one_error, run_taiyi

REFERENCE = Path(__file__).resolve().parents[1] / "results" / "reference"
BASE, TUNED = "smollm2-base", "smollm2-ft"

pytestmark = pytest.mark.skipif(not any(REFERENCE.glob(f"{BASE}/*/*/*/samples_*.jsonl")),
                                reason="no reference slices committed")


# ------------------------------------------------------------------------------ helpers


def _cli(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    return run_taiyi(capsys, *argv)


_one_error = one_error


def _copy_run(part: str, key: str, to: Path) -> Path:
    """A copy of the committed reference run of `key` (one results file, one samples file)
    under `to`; returns the results file."""
    (original,) = sorted((REFERENCE / part / key).glob("*/*/results_*.json"))
    folder = to / part / key / original.parent.relative_to(REFERENCE / part / key)
    shutil.copytree(original.parent, folder)
    return folder / original.name


def _task(results: Path) -> str:
    return next(iter(json.loads(results.read_text(encoding="utf-8"))["results"]))


def _samples(results: Path) -> Path:
    path = samples_beside(results, _task(results))
    assert path is not None
    return path


def _edit_results(results: Path, change: Callable[[dict[str, Any]], None]) -> None:
    data = json.loads(results.read_text(encoding="utf-8"))
    change(data)
    results.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def _name_model(name: str) -> Callable[[dict[str, Any]], None]:
    """An edit naming the run's model `name` wherever a reader takes the name from: lm-eval's
    `model_name` and the model identity each task records."""
    def change(data: dict[str, Any]) -> None:
        data["model_name"] = name
        for config in data["configs"].values():
            config["metadata"]["model_identity"]["name"] = name
    return change


def _rows(samples: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in samples.read_text(encoding="utf-8").splitlines() if line.strip()]


def _write_rows(samples: Path, rows: list[dict[str, Any]]) -> None:
    samples.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ============================================================================== 1. different data


def _as_samples_run(results: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Turn a copied MedQA-USMLE run into what a run on the bundled samples writes: the bundled
    units (ids test-0, test-1, ... like the real split's, other questions), hashed as lm-eval hashes."""
    from taiyi_bench.harness.lmeval.tasks import _to_docs
    from taiyi_bench.harness.loading import load_split

    monkeypatch.delenv("TAIYI_DATA_DIR", raising=False)
    bundled = load_split("medqa_usmle", "test")
    assert bundled.source == "samples"
    samples = _samples(results)
    rows = _rows(samples)[: len(bundled.examples)]
    for row, doc in zip(rows, _to_docs(bundled.examples, "samples"), strict=True):
        row["doc"] = doc
        row["doc_hash"] = _sha(json.dumps(doc, indent=2, ensure_ascii=False))
    _write_rows(samples, rows)

    def change(data: dict[str, Any]) -> None:
        task = "taiyi_medqa_usmle"
        data["n-samples"][task] = {"original": len(rows), "effective": len(rows)}
        data["configs"][task]["metadata"].update(data_source="samples", completeness="samples")
        data["task_hashes"][task] = _sha("".join(r["doc_hash"] + r["prompt_hash"] + r["target_hash"] for r in rows))
    _edit_results(results, change)


@pytest.mark.parametrize("command", ["compare", "leaderboard --paired"])
def test_runs_on_different_data_are_refused_not_paired(tmp_path, capsys, monkeypatch, command):
    real = _copy_run(BASE, "medqa_usmle", tmp_path / "real")
    on_samples = _copy_run(TUNED, "medqa_usmle", tmp_path / "on-samples")
    _as_samples_run(on_samples, monkeypatch)
    argv = ["compare", real, on_samples] if command == "compare" else \
        ["leaderboard", "--paired", real, on_samples, "--formats", "md,csv", "--out", tmp_path / "board"]
    code, out, err = _cli(capsys, *argv)
    line = _one_error(err, "taiyi compare: error:" if command == "compare" else "error:")
    assert code == 2 and "evaluated different data" in line and "test-0" in line
    assert str(_samples(real)) in line and str(_samples(on_samples)) in line  # both files named
    assert not out.strip() and not (tmp_path / "board").exists()  # no table, no p-value, nothing written


def test_runs_on_the_same_data_still_pair(tmp_path, capsys):
    base = _copy_run(BASE, "medqa_usmle", tmp_path)
    tuned = _copy_run(TUNED, "medqa_usmle", tmp_path)
    code, out, err = _cli(capsys, "compare", base, tuned, "--resamples", "50")
    assert code == 0 and "different data" not in err and "MedQA-USMLE" in out


# ============================================================================== 2. rescore


def _truncated(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return rows[:1]  # cut at a line: 1 unit of 50 (KUAKE-QIC once went 20.0 -> 100.0 this way)


def _duplicated(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [*rows[:-1], rows[2]]  # as many lines as n-samples says, but unit 3 twice


def _from_another_run(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows[4]["prompt_hash"] = _sha("another prompt")  # right count, no duplicate: only the hashes tell
    return rows


@pytest.mark.parametrize(("damage", "said"), [
    (_truncated, "1 unit(s) (filter none), but results_"),
    (_duplicated, "line 50: doc_id 2 again (first on line 3)"),
    (_from_another_run, "do not hash to the task_hashes"),
], ids=["truncated", "duplicated", "other-run"])
def test_rescore_refuses_samples_that_do_not_match_their_results(tmp_path, capsys, damage, said):
    results = _copy_run(BASE, "kuake_qic", tmp_path)
    samples = _samples(results)
    _write_rows(samples, damage(_rows(samples)))
    _edit_results(results, lambda data: [config["metadata"]["provenance"].update(scoring_rules_version=1)
                                         for config in data["configs"].values()])
    kept = _tree(tmp_path)
    code, _out, err = _cli(capsys, "rescore", tmp_path)
    line = _one_error(err, "taiyi rescore: error:")
    assert code == 1 and str(samples) in line and said in line and "nothing rescored" in line
    assert _tree(tmp_path) == kept  # neither file rewritten


# ============================================================================== 3. reference resume


def _reference_out(tmp_path: Path, keys: list[str]) -> Path:
    out = tmp_path / "out"
    for part in (BASE, TUNED):
        for key in keys:
            _copy_run(part, key, out)
    return out


@pytest.mark.parametrize("damage", ["samples missing", "samples truncated"])
def test_reference_reruns_a_set_whose_samples_are_missing_or_do_not_agree(tmp_path, capsys, monkeypatch, damage):
    from taiyi_bench.harness.apps import reference

    out = _reference_out(tmp_path, ["kuake_qic"])
    (results,) = sorted((out / BASE / "kuake_qic").glob("**/results_*.json"))
    samples = _samples(results)
    if damage == "samples missing":  # lm-eval killed between its two writes
        samples.unlink()
    else:
        samples.write_text(samples.read_text(encoding="utf-8").splitlines(keepends=True)[0], encoding="utf-8")
    state = reference.set_state(out / BASE / "kuake_qic", out)
    assert not state.done and state.results == results

    monkeypatch.setattr(reference, "_llm_sets", lambda data_dir, wanted: ["kuake_qic"])
    steps = reference.Steps(out, dry_run=False)
    ran: list[str] = []
    monkeypatch.setattr(steps, "run", lambda name, command, env=None: ran.append(name))
    reference.run_base(steps, out, tmp_path, ["kuake_qic"], batch_size=8)
    printed = capsys.readouterr().out
    assert ran == ["base kuake_qic"]  # run again, not "done before"
    assert "base kuake_qic: NOT FINISHED, running it again" in printed
    assert (str(results) if damage == "samples missing" else str(samples)) in printed  # the file, named
    assert not results.exists() and results.with_name(results.name + ".incomplete").exists()  # set aside, kept

    # The fine-tuned copy of the same set is finished: skipped as before.
    monkeypatch.setattr(reference, "adapter_dir", lambda work: tmp_path)
    reference.run_tuned(steps, out, tmp_path, tmp_path, ["kuake_qic"], batch_size=8)
    assert ran == ["base kuake_qic"] and "tuned kuake_qic: done before, skipped" in capsys.readouterr().out


def test_reference_comparison_names_every_set_it_could_not_compare(tmp_path, capsys, monkeypatch):
    from taiyi_bench.harness.apps import reference

    keys = ["kuake_qic", "medqa_usmle", "pubmedqa"]
    out = _reference_out(tmp_path, keys)
    (lonely,) = sorted((out / TUNED / "kuake_qic").glob("**/results_*.json"))
    _samples(lonely).unlink()

    report = reference.compare(out, n_resamples=50)
    assert sorted(report["per_set"]) == ["medqa_usmle", "pubmedqa"] and report["overall_macro"]["sets"] == 2
    assert "no samples file for taiyi_kuake_qic" in report["missing_sets"]["kuake_qic"]
    assert report["missing_sets"]["kuake_qic"].startswith("fine-tuned: ")
    assert set(report["missing_sets"]) == {key for key in reference.LLM_ORDER if key not in ("medqa_usmle", "pubmedqa")}

    original = reference.compare
    monkeypatch.setattr(reference, "compare", lambda folder: original(folder, n_resamples=50))
    reference.run_compare(reference.Steps(out, dry_run=False), out)
    printed = capsys.readouterr().out
    assert "sets NOT COMPARED" in printed and "KUAKE-QIC: fine-tuned: " in printed
    assert "kuake_qic" in json.loads((out / "comparison.json").read_text(encoding="utf-8"))["missing_sets"]


# ============================================================================== 4. claimed counts


def _minus_five(data: dict[str, Any]) -> None:
    data["n-samples"]["taiyi_hoc"]["effective"] = -5


def _nine_thousand_full(data: dict[str, Any]) -> None:
    metadata = data["configs"]["taiyi_hoc"]["metadata"]
    metadata.update(eval_units=9999, expected_units=9999, completeness="full")
    data["n-samples"]["taiyi_hoc"] = {"original": 9999, "effective": 9999}
    data["config"]["limit"] = None


@pytest.mark.parametrize(("claim", "flag", "said"), [
    (_minus_five, None, "taiyi_hoc n-samples effective is -5, not a count of units; the file's number cannot be trusted, set skipped"),
    (_nine_thousand_full, "incomplete", "taiyi_hoc claims 'full' on 'data' data, but counts n-samples original 9,999"),
], ids=["-5 units", "9999 units full"])
def test_impossible_unit_counts_are_refused_or_marked(tmp_path, claim, flag, said):
    from taiyi_bench.harness.apps.leaderboard.build import leaderboard_table
    from taiyi_bench.harness.apps.run_views import run_views

    results = _copy_run(BASE, "hoc", tmp_path)
    _edit_results(results, claim)
    table = leaderboard_table([tmp_path], include_partial=True, published="none")
    warned = [w for w in table.warnings if said in w]
    assert len(warned) == 1 and results.name in warned[0], table.warnings
    if flag is None:  # refused: no number anywhere
        assert all(column.value("hoc") is None for column in table.columns)
        warnings: list[str] = []
        assert all("hoc" not in view.tasks for view in run_views([tmp_path], warnings))  # compare and report
    else:  # marked, out of the averages, never a full official result
        (column,) = table.columns
        assert column.cells["hoc"].flag == flag and not column.cells["hoc"].in_averages
        assert "3,547 units" in warned[0]


# ============================================================================== 5. grounding


def test_ungrounded_rate_of_nothing_predicted_is_undefined():
    from taiyi_bench.harness.verdicts import ungrounded_rate

    assert math.isnan(ungrounded_rate([])) and math.isnan(ungrounded_rate([[0, 0], [0, 0]]))
    assert ungrounded_rate([[1, 4], [0, 0]]) == 0.25


@pytest.mark.parametrize("recorded", ["NaN (now)", "0.0 (older files)"])
def test_grounding_table_shows_nothing_predicted_as_n_a(tmp_path, recorded):
    from taiyi_bench.harness.apps.leaderboard.build import NOTHING_PREDICTED, leaderboard_grounding
    from taiyi_bench.harness.apps.leaderboard.render import render_csv, render_markdown

    results = _copy_run(BASE, "ncbi_disease", tmp_path)
    samples = _samples(results)
    rows = _rows(samples)
    for row in rows:  # a model that predicted nothing on any unit
        row["ungrounded_rate"] = [0, 0]
        row["verdicts"]["grounding"] = {"checked": 0, "ungrounded": 0}
    _write_rows(samples, rows)
    value = float("nan") if recorded.startswith("NaN") else 0.0
    _edit_results(results, lambda data: data["results"]["taiyi_ncbi_disease"].update({"ungrounded_rate,none": value}))

    table = leaderboard_grounding([tmp_path], include_partial=True)
    assert table is not None
    (column,) = table.columns
    cell = column.cells["ncbi_disease"]
    assert cell.value is None and cell.flag == NOTHING_PREDICTED
    assert f"— ({NOTHING_PREDICTED})" in render_markdown(table)
    header = column.display_header
    (row,) = [row for row in csv.DictReader(io.StringIO(render_csv(table))) if row["set"] == "NCBI-disease"]
    assert (row[header], row[f"{header} flag"]) == ("—", NOTHING_PREDICTED)  # value missing, flagged: never 0.0


def test_grounding_table_has_the_main_tables_columns(monkeypatch, capsys):
    """The default leaderboard shows the reference slices; so does its grounding table."""
    from taiyi_bench.harness.apps.leaderboard.build import leaderboard_grounding, leaderboard_table

    dirs = [REFERENCE]
    main_table = leaderboard_table(dirs, partial_shown_under=[REFERENCE], published="none")
    grounding = leaderboard_grounding(dirs, partial_shown_under=[REFERENCE])
    assert grounding is not None
    headers = [c.display_header for c in main_table.columns]
    assert [c.display_header for c in grounding.columns] == headers
    assert any("[slice of 50]" in h for h in headers)


# ============================================================================== 6. malformed verdicts


MALFORMED: dict[str, Callable[[dict[str, Any]], Any]] = {
    "a string": lambda verdicts: "matched",
    "gold item without verdict": lambda verdicts: {**verdicts, "gold": [{"label": "治疗方案"}]},
    "no counts": lambda verdicts: {k: v for k, v in verdicts.items() if k != "counts"},
    "predicted not a list": lambda verdicts: {**verdicts, "predicted": 3},
    "per_type of text": lambda verdicts: {**verdicts, "per_type": {"治疗方案": "x"}},
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
@pytest.mark.parametrize("command", ["report", "compare"])
def test_a_malformed_verdicts_entry_is_one_line_naming_file_and_line(tmp_path, capsys, case, command):
    bad = _copy_run(BASE, "kuake_qic", tmp_path / "bad")
    samples = _samples(bad)
    rows = _rows(samples)
    rows[6]["verdicts"] = MALFORMED[case](rows[6]["verdicts"])
    _write_rows(samples, rows)
    if command == "report":
        argv: list[Any] = ["report", tmp_path / "bad", "--out", tmp_path / "page", "--resamples", "50"]
    else:
        argv = ["compare", _copy_run(TUNED, "kuake_qic", tmp_path / "good"), bad, "--resamples", "50"]
    code, _out, err = _cli(capsys, *argv)
    line = _one_error(err, f"taiyi {command}: error:")
    assert code == 2 and f"{samples}, line 7: malformed 'verdicts'" in line
    assert not (tmp_path / "page").exists()


# ============================================================================== 7. mathtext


@pytest.mark.parametrize("name", ["$\\frac{x$ model", "cost $5 model", "a $x^2$ b"])
def test_a_dollar_in_a_model_name_is_drawn_as_written(tmp_path, capsys, name):
    results = _copy_run(BASE, "kuake_qic", tmp_path / "runs")
    _edit_results(results, _name_model(name))
    code, _out, err = _cli(capsys, "report", tmp_path / "runs", "--out", tmp_path / "page", "--resamples", "50")
    assert code == 0 and "Traceback" not in err
    assert (tmp_path / "page" / "report.html").is_file()
    code, _out, err = _cli(capsys, "leaderboard", tmp_path / "runs", "--include-partial", "--published", "none",
                           "--formats", "svg,png", "--out", tmp_path / "board")
    assert code == 0 and "Traceback" not in err
    svg = (tmp_path / "board" / "leaderboard.svg").read_text(encoding="utf-8")
    # Drawn as one text, as written (mathtext would draw "x", "2" apart; the name stays only in a comment).
    assert re.search(r"<text[^>]*>" + re.escape(name) + r" \[slice of 50\]</text>", svg)


# ============================================================================== 8. CSV formula injection

INJECTED = '=HYPERLINK("http://example.invalid/x","click")'


def _live_formulas(text: str) -> list[str]:
    """Cells a spreadsheet would run: text starting like a formula that is not a plain number."""
    return [cell for row in csv.reader(io.StringIO(text)) for cell in row if safe_cell(cell) != cell]


def test_safe_cell_neutralises_text_and_keeps_numbers():
    for text in ("=1+2", "+cmd", "-1+2", "@SUM(A1)", "\tx", "\rx", INJECTED):
        assert safe_cell(text) == "'" + text and text.startswith(FORMULA_STARTS)
    for kept in ("-3.5", "+1.2", "-0.5e3", "65.1", "—", "model", "", -3.5, 7, None):
        assert safe_cell(kept) == kept


def _leaderboard_csv(tmp_path: Path) -> str:
    from taiyi_bench.harness.apps.leaderboard.build import leaderboard_table
    from taiyi_bench.harness.apps.leaderboard.render import render_csv

    results = _copy_run(BASE, "hoc", tmp_path)
    _edit_results(results, _name_model(INJECTED))
    return render_csv(leaderboard_table([tmp_path], include_partial=True, published="none"))


def _paired_csv(tmp_path: Path) -> str:
    from taiyi_bench.harness.apps.leaderboard.build import paired_report
    from taiyi_bench.harness.apps.leaderboard.render import render_paired_csv

    a, b = _copy_run(BASE, "hoc", tmp_path), _copy_run(TUNED, "hoc", tmp_path)
    _edit_results(a, _name_model(INJECTED))
    _edit_results(b, _name_model("@SUM(1+1)"))
    return render_paired_csv(paired_report(a, b, n_resamples=50))


def _by_type_csv(tmp_path: Path) -> str:
    from taiyi_bench.harness.apps.leaderboard.build import leaderboard_by_type
    from taiyi_bench.harness.apps.leaderboard.render import render_by_type_csv

    results = _copy_run(BASE, "hoc", tmp_path)
    samples = _samples(results)
    rows = _rows(samples)
    # A model's output: a HoC "label" outside the set, as the verdicts record it.
    rows[0]["verdicts"]["predicted"].append({"label": INJECTED, "verdict": "unknown_label"})
    rows[0]["verdicts"]["per_type"][INJECTED] = [0, 1, 0]
    _write_rows(samples, rows)
    return render_by_type_csv(leaderboard_by_type([tmp_path], "hoc", n_resamples=50))


@pytest.mark.parametrize("writer", [_leaderboard_csv, _paired_csv, _by_type_csv], ids=["leaderboard", "paired", "by-type"])
def test_no_csv_cell_is_a_live_formula(tmp_path, writer):
    text = writer(tmp_path)
    cells = [cell for row in csv.reader(io.StringIO(text)) for cell in row]
    assert any(INJECTED in cell for cell in cells)  # the model's text is there...
    assert _live_formulas(text) == []  # ...but no cell runs
    if writer is not _paired_csv:  # where the name starts a cell (the paired headers say "A: " first)
        assert "'" + INJECTED in cells or any(cell.startswith("'" + INJECTED) for cell in cells)
    assert any(re.fullmatch(r"[+-]?\d+(\.\d+)?", cell) for cell in cells)  # values stay numbers, unquoted
