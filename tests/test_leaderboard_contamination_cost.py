"""What a fine-tuned model saw and what a run cost, on the leaderboard (issue 24).

A fine-tuned adapter's run records its contamination report per set (`provenance.contamination_record`,
through the task's metadata); the leaderboard marks every cell whose units the mixture touched, in
every format; `--untouched-only` recomputes those cells from the samples without the touched units;
`--cost` shows what each run recorded of its cost, and "—" for a run written before it did.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import lm_eval
import numpy as np
import pytest
from lm_eval.loggers import EvaluationTracker
from lm_eval.tasks import TaskManager
from rich.console import Console
from test_leaderboard import write_run

from taiyi_bench.harness.apps.cli import main
from taiyi_bench.harness.apps.leaderboard.build import cost_table, leaderboard_table
from taiyi_bench.harness.apps.leaderboard.render import (
    render_cost_csv,
    render_cost_html,
    render_cost_latex,
    render_cost_markdown,
    render_cost_terminal,
    render_csv,
    render_html,
    render_latex,
    render_markdown,
    render_terminal,
)
from taiyi_bench.harness.integrity import STAGE_MARKER
from taiyi_bench.harness.lmeval.cost import COST_KEY, priced
from taiyi_bench.harness.lmeval.plugin import tasks_dir
from taiyi_bench.harness.lmeval.tasks import doc_example, doc_to_target
from taiyi_bench.harness.provenance import file_sha256
from taiyi_bench.harness.results_io import amend_results

from scripted_lm import ScriptedLM

SHA = "9f2c4e0b7a1d" + "0" * 52
TOUCHED = {"pubmedqa": ["test-0", "test-1", "test-2"], "hoc": ["test-5", "test-7"]}
MARK = {"pubmedqa": "contaminated: 3.1% of units", "hoc": "contaminated: 0.4% of units"}
INJECTED = "=cmd|' /C calc'!A0 [bold]x[/bold] <script>alert(1)</script>"


def _terminal(render, table, width: int = 80) -> str:
    console = Console(width=width, record=True)
    render(table, console)
    return console.export_text()


def _formats(table) -> dict[str, str]:
    return {"md": render_markdown(table), "csv": render_csv(table), "tex": render_latex(table),
            "html": render_html(table), "console": _terminal(render_terminal, table)}


def _contaminated(data: dict) -> None:
    """The metadata a fine-tuned adapter's run records: PubMedQA and HoC touched, nothing else checked."""
    for key, share in (("pubmedqa", 0.031), ("hoc", 0.004)):
        data["configs"][f"taiyi_{key}"]["metadata"]["contamination"] = {
            "report_sha256": SHA, "shortest_judged": 8, "checked": True, "n_tokens": 13, "split": "test",
            "data_source": "data", "units": 1000, "share": share, "touched_units": TOUCHED[key]}


@pytest.fixture
def fine_tuned(tmp_path: Path) -> Path:
    """A fine-tuned run whose mixture touched PubMedQA and HoC units, and a base run beside it."""
    write_run(tmp_path / "runs", "org/ft", n=40, tasks=["hoc", "pubmedqa"], seed=3, mutate=_contaminated)
    write_run(tmp_path / "runs", "org/base", n=40, tasks=["hoc", "pubmedqa"], seed=4)
    return tmp_path / "runs"


def _column(table, model: str):
    return next(c for c in table.columns if c.key.startswith(f"run:{model}:"))


def _samples(runs: Path, model: str, key: str) -> list[dict]:
    (path,) = runs.glob(f"{model}/*/samples_taiyi_{key}_*.jsonl")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_a_touched_cell_is_marked_with_its_share_in_every_format(fine_tuned: Path) -> None:
    table = leaderboard_table([fine_tuned], published="none")
    ft, base = _column(table, "org/ft"), _column(table, "org/base")
    assert ft.cells["pubmedqa"].flag == MARK["pubmedqa"] and ft.cells["hoc"].flag == MARK["hoc"]
    assert not base.has_flags
    for name, text in _formats(table).items():
        shown = text.replace("\\%", "%")  # LaTeX escapes the percent sign
        assert MARK["pubmedqa"] in shown and MARK["hoc"] in shown, name
    # The console's narrow layout names the mark below the table, once per text.
    assert re.search(r"Marks: .*¹ \(contaminated: 0\.4% of units\)", _terminal(render_terminal, table))
    csv_rows = list(csv.reader(io.StringIO(render_csv(table))))
    flag_column = csv_rows[0].index("org/ft flag")
    assert [row[flag_column] for row in csv_rows if row[2:3] == ["taiyi_pubmedqa"]] == [MARK["pubmedqa"]]
    assert any("sha256 9f2c4e0b7a1d): it holds units of HoC 0.4%, PubMedQA 3.1%." in line for line in ft.provenance)


def test_a_clean_mixture_is_said_once_and_marks_nothing(tmp_path: Path) -> None:
    def clean(data: dict) -> None:
        _contaminated(data)
        for config in data["configs"].values():
            config["metadata"]["contamination"].update(share=0.0, touched_units=[])

    write_run(tmp_path, "org/clean-ft", n=40, tasks=["hoc", "pubmedqa"], mutate=clean)
    table = leaderboard_table([tmp_path], published="none")
    assert not table.columns[0].has_flags
    assert table.notes.count("org/clean-ft: mixture checked: no evaluation unit found.") == 1


def test_untouched_only_recomputes_the_cells_without_the_touched_units(fine_tuned: Path) -> None:
    table = leaderboard_table([fine_tuned], published="none", untouched_only=True, ci=True, n_resamples=200)
    ft = _column(table, "org/ft")
    assert ft.header == "org/ft [untouched units only]"
    assert _column(table, "org/base").header == "org/base"  # nothing touched
    kept = [r for r in _samples(fine_tuned, "org__ft", "pubmedqa") if r["doc"]["id"] not in TOUCHED["pubmedqa"]]
    assert len(kept) == 40 - 3
    assert ft.cells["pubmedqa"].value == pytest.approx(100 * np.mean([r["acc"] for r in kept]))
    tp, fp, fn = np.sum([r["micro_f1"] for r in _samples(fine_tuned, "org__ft", "hoc")
                         if r["doc"]["id"] not in TOUCHED["hoc"]], axis=0)
    assert ft.cells["hoc"].value == pytest.approx(100 * 2 * tp / (2 * tp + fp + fn))
    as_written = _column(leaderboard_table([fine_tuned], published="none"), "org/ft")
    assert ft.cells["hoc"].value != as_written.cells["hoc"].value  # the touched units moved it
    assert ft.cells["pubmedqa"].flag == f"{MARK['pubmedqa']}; 3 of 40 evaluated units left out"
    assert ft.cells["pubmedqa"].ci is not None and ft.cells["pubmedqa"].in_averages
    for name, text in _formats(table).items():
        assert re.search(r"org/ft \\?\[untouched units only\\?\]", text), name


def test_untouched_only_without_samples_leaves_the_cell_and_says_so(fine_tuned: Path) -> None:
    before = _column(leaderboard_table([fine_tuned], published="none"), "org/ft").cells["pubmedqa"].value
    for path in fine_tuned.glob("org__ft/*/samples_taiyi_pubmedqa_*.jsonl"):
        path.unlink()
    table = leaderboard_table([fine_tuned], published="none", untouched_only=True)
    cell = _column(table, "org/ft").cells["pubmedqa"]
    assert cell.value == before and cell.flag == f"{MARK['pubmedqa']}; not filtered: no samples"
    assert not cell.in_averages  # a column of untouched units must not average a touched number


def _with_cost(data: dict) -> None:
    """The cost record a run writes (`harness/lmeval/cost.py`), priced as an API config's is."""
    tasks = {"taiyi_hoc": {"units": 40, "requests": 40, "prompt_tokens": 8000, "generated_tokens": 1200,
                           "seconds": 10.0, "seconds_per_unit": 0.25, "generated_tokens_per_second": 120.0,
                           "tokenizer": "the API's usage report (tokens billed)"},
             "taiyi_pubmedqa": {"units": 40, "requests": 40, "prompt_tokens": 20000, "generated_tokens": 80,
                                "seconds": 4.0, "seconds_per_unit": 0.1, "generated_tokens_per_second": 20.0,
                                "tokenizer": "the API's usage report (tokens billed)"}}
    data[COST_KEY] = priced({"tasks": tasks, "total": {}, "note": "time note"},
                            {"input_usd_per_million": 2.5, "output_usd_per_million": 10.0, "date": "2024-08-06",
                             "source": "https://openai.com/api/pricing"})


def test_the_cost_table_shows_what_runs_recorded_and_a_dash_for_older_runs(tmp_path: Path, capsys) -> None:
    write_run(tmp_path / "runs", "org/api", n=40, tasks=["hoc", "pubmedqa"], mutate=_with_cost)
    write_run(tmp_path / "runs", "org/old", n=40, tasks=["hoc", "pubmedqa"])
    out = tmp_path / "out"
    assert main(["leaderboard", str(tmp_path / "runs"), "--cost", "--published", "none", "--out", str(out),
                 "--formats", "md,csv,tex,html"]) == 0
    printed = capsys.readouterr().out
    assert "R1 = org/api" in printed and "R2 = org/old" in printed
    # HoC: 1200 tokens over 40 units; 0.25 s a unit; 120 tokens/s; 8000 * 2.5 + 1200 * 10 per million USD.
    assert re.search(r"│ R1 +│ HoC +│ +40 │ +30\.0 │ +0\.250 │ +120 │ +0\.0320 │", printed)
    assert re.search(r"│ R1 +│ PubMedQA +│ +40 │ +2\.00 │ +0\.100 │ +20\.0 │ +0\.0508 │", printed)
    assert re.search(r"│ R2 +│ all sets +│ +— │ +— │ +— │ +— │ +— │", printed)
    assert printed.count("the run was written before runs recorded their cost") == 1
    assert "price table of 2024-08-06" in printed
    cost_lines = printed[printed.index("R1 = org/api\nR2 = org/old\n"):]
    assert max(len(line) for line in cost_lines.splitlines() if line[:1] in "┏┃┡│└") <= 80
    csv_rows = list(csv.reader(io.StringIO((out / "leaderboard_cost.csv").read_text(encoding="utf-8"))))
    assert ["R1", "HoC", "40", "30.0", "0.250", "120", "0.0320"] in csv_rows
    assert ["R2", "all sets", "—", "—", "—", "—", "—"] in csv_rows
    for fmt in ("md", "tex", "html"):
        assert "0.0320" in (out / f"leaderboard_cost.{fmt}").read_text(encoding="utf-8")


def test_an_injected_model_name_is_escaped_in_every_format(tmp_path: Path) -> None:
    write_run(tmp_path, INJECTED, n=40, tasks=["hoc", "pubmedqa"], mutate=lambda d: (_contaminated(d), _with_cost(d)))
    table = leaderboard_table([tmp_path], published="none")
    cost = cost_table([tmp_path])
    for text in (render_html(table), render_cost_html(cost)):
        assert "<script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    for text in (render_markdown(table), render_cost_markdown(cost)):
        assert "<script>" not in text and "\\<script\\>" in text and "cmd\\|" in text
    for text in (render_latex(table), render_cost_latex(cost)):
        assert "\\textless{}script\\textgreater{}" in text and "cmd\\textbar{}" in text and "<" not in text
    header = next(cell for cell in next(csv.reader(io.StringIO(render_csv(table)))) if "cmd" in cell)
    assert header.startswith("'=cmd")  # shown as text, never run as a formula
    assert f"R1 = {INJECTED}" in render_cost_csv(cost)  # a legend line starts with its id, never "="
    for render, shown in ((render_terminal, table), (render_cost_terminal, cost)):
        assert "[bold]x[/bold]" in _terminal(render, shown, width=200)  # rich markup shown, not applied


# --- the record itself: a scripted lm-eval run of a fine-tuned adapter -------------------------------


def _adapter_with_report(root: Path, touched: list[str]) -> Path:
    """A fine-tuning run folder as `taiyi finetune` leaves it: the adapter's marker points to the report."""
    adapter = root / "my-run" / "stage2" / "adapter"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text("{}", encoding="utf-8")
    (adapter / STAGE_MARKER).write_text(json.dumps({"contamination": "../../contamination.json"}), encoding="utf-8")
    report = {"version": 1, "settings": {"n_tokens": {"en": 13, "zh": 20}, "shortest_judged": 8},
              "mixture": {"conversations": 3, "tokens": 900}, "missing": {},
              "sets": {"pubmedqa": {"split": "test", "data_source": "samples", "n_tokens": 13, "units": 16,
                                    "too_short": 0, "exact": 1, "ngram": 1, "share": len(touched) / 16,
                                    "touched_units": touched, "worst": []}}}
    (root / "my-run" / "contamination.json").write_text(json.dumps(report), encoding="utf-8")
    return adapter


def test_a_fine_tuned_adapters_run_records_its_report_and_the_leaderboard_reads_it(tmp_path: Path) -> None:
    touched = ["99200301", "99200302"]
    adapter = _adapter_with_report(tmp_path / "models", touched)
    # Answers the touched units wrong and the others right: leaving them out must give 100.
    model = ScriptedLM(lambda doc, _prompt: "" if doc_example(doc).id in touched else doc_to_target(doc))
    # As `lm_eval --model_args pretrained=...,peft=<adapter>` runs it: lm-eval copies the model args
    # into every task's metadata, and the CLI's results file is then amended (`taiyi baseline run`).
    model_args = {"pretrained": "local:smollm2", "peft": str(adapter)}
    manager = TaskManager(include_path=str(tasks_dir()), include_defaults=False, metadata=model_args)
    tracker = EvaluationTracker(output_path=str(tmp_path / "runs"))
    out = lm_eval.simple_evaluate(model=model, model_args=model_args, tasks=["taiyi_pubmedqa", "taiyi_hoc"],
                                  task_manager=manager, limit=8, log_samples=True, evaluation_tracker=tracker)
    samples = out.pop("samples")
    tracker.save_results_aggregated(results=out, samples=samples)
    for task in out["configs"]:
        tracker.save_results_samples(task_name=task, samples=samples[task])
    (results,) = (tmp_path / "runs").glob("**/results_*.json")
    amend_results(results)
    text = results.read_text(encoding="utf-8")
    assert str(tmp_path) not in text  # portable: a digest and unit ids, no path
    configs = json.loads(text)["configs"]
    assert configs["taiyi_pubmedqa"]["metadata"]["contamination"] == {
        "report_sha256": file_sha256(tmp_path / "models" / "my-run" / "contamination.json"), "shortest_judged": 8,
        "checked": True, "n_tokens": 13, "split": "test", "data_source": "samples", "units": 16, "share": 0.125,
        "touched_units": touched}
    assert configs["taiyi_hoc"]["metadata"]["contamination"]["checked"] is False  # not in the report: said, not guessed
    shown = leaderboard_table([tmp_path / "runs"], published="none", partial_shown_under=[tmp_path / "runs"])
    assert shown.columns[0].cells["pubmedqa"].flag == "contaminated: 12.5% of units"
    assert shown.columns[0].cells["pubmedqa"].value == pytest.approx(75.0)
    assert any("not checked: HoC" in line for line in shown.columns[0].provenance)
    untouched = leaderboard_table([tmp_path / "runs"], published="none", partial_shown_under=[tmp_path / "runs"],
                                  untouched_only=True)
    assert untouched.columns[0].cells["pubmedqa"].value == pytest.approx(100.0)
