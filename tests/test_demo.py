"""`taiyi demo` in a reduced mode, end to end: three models' results, leaderboard files, plot, report,
what the console shows, reuse."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from taiyi_bench.harness.apps.demo import BASE_BASELINE, BERT_NAME, FINETUNED_NAME, Demo, DemoSettings
from taiyi_bench.harness.apps.leaderboard.bootstrap import MIN_UNITS_FOR_INFERENCE

pytestmark = pytest.mark.slow

# One set per task type, both languages: the reduced mode keeps CI time small.
TASKS = ["taiyi_ncbi_disease", "taiyi_cmeie", "taiyi_kuake_qic", "taiyi_pubmedqa"]


def _results(runs: Path, model: str) -> dict:
    files = sorted((runs / model).glob("**/results_*.json"))
    assert files, f"no results for {model}"
    merged: dict = {}
    for path in files:
        merged.update(json.loads(path.read_text(encoding="utf-8"))["results"])
    return merged


def test_reduced_demo_produces_every_artefact_and_reuses_finished_steps(tmp_path, capfd):
    settings = DemoSettings.reduced(tmp_path / "demo", tasks=TASKS)
    log: list[str] = []
    records = Demo(settings, log=log.append).run()
    assert list(records) == ["eval-base", "finetune", "eval-finetuned", "bert", "leaderboard", "report"]

    # The console: one line per step and a short summary; lm-eval, transformers and training talk
    # only to the log file.
    captured = capfd.readouterr()
    console = (captured.out + captured.err).splitlines()
    assert len(console) <= 40, "\n".join(console)
    assert sum(line.startswith("✓ ") for line in console) == len(records)
    report = Path(records["report"]["outputs"]["report"])
    assert report.is_file() and any(str(report) in line for line in console)  # the report's path, printed
    assert not any("Running generate_until" in line or "Loading" in line for line in console)
    demo_log = (tmp_path / "demo" / "demo.log").read_text(encoding="utf-8")
    assert "Running generate_until requests" in demo_log and "$ lm_eval run" in demo_log
    # the samples banner: once per lm-eval run (base and fine-tuned), not per task
    assert demo_log.count("runs on the BUNDLED SAMPLES written by the team") == 2
    page = report.read_text(encoding="utf-8")
    for model in (BASE_BASELINE, FINETUNED_NAME, BERT_NAME):
        results = sorted((tmp_path / "demo" / "runs" / model).glob("**/results_*.json"))
        assert "taiyi_per_type" in json.loads(results[-1].read_text(encoding="utf-8")), model  # stored with each run
    for task in TASKS:
        assert f'id="errors-{task.removeprefix("taiyi_")}"' in page
    assert re.search(r"A = SmolLM2-135M-Instruct[^<]*<br>B = taiyi-style-smollm2-135m", page)  # base against tuned
    assert not re.search(r"\[[-+]?\d+\.\d, [-+]?\d+\.\d\]", page)  # a few units a set: counts, no intervals

    runs = tmp_path / "demo" / "runs"
    for model in (BASE_BASELINE, FINETUNED_NAME, BERT_NAME):
        results = _results(runs, model)
        assert set(TASKS) <= set(results), model
        for task in TASKS:
            assert "parse_fail,none" in results[task]
    assert (Path(records["finetune"]["outputs"]["adapter"]) / "adapter_config.json").is_file()

    board = tmp_path / "demo" / "leaderboard"
    for suffix in ("md", "csv", "tex", "html", "svg"):
        assert (board / f"leaderboard.{suffix}").stat().st_size > 0
    png = (board / "leaderboard.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    markdown = (board / "leaderboard.md").read_text(encoding="utf-8")
    for column in ("Taiyi", "ChatGPT", "SOTA"):  # published paper rows alongside
        assert column in markdown
    assert "samples" in markdown.lower()  # runs on the bundled samples are marked
    assert any("Where everything went" in line for line in log)
    # the demo's own cap, said on screen before the columns it cuts appear
    assert any(f"stop after {settings.max_gen_toks} new tokens" in line and "(budget cut)" in line for line in log)
    # and that its few units per set carry no interval or p-value
    assert any(f"units: {settings.units} per set" in line and f"fewer than the {MIN_UNITS_FOR_INFERENCE}" in line
               for line in log)

    # a second run reuses every finished step; a lost marker reruns only that step
    again: list[str] = []
    Demo(settings, log=again.append).run()
    (tmp_path / "demo" / "steps" / "leaderboard.json").unlink()
    third = Demo(settings, log=again.append)
    third.run()
    assert third.timings["eval-base"] == 0.0 and third.timings["bert"] == 0.0
    assert third.timings["leaderboard"] > 0.0 and third.timings["report"] == 0.0
