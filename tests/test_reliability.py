"""The reliability suite: what a careful user can get wrong, and what taiyi-bench does about it.

Every case here was once a traceback or a silently wrong result. Each test makes its bad input on
the fly (a corrupted copy of a real or sample file, a bad config, an interrupted or concurrent
fine-tuning run, a malformed results file) and asserts three things: the message names the file
or setting, the exit status (or exception) says it failed, and nothing already written was lost.

Sections: A completeness of the evaluated data; B `taiyi data check`; C model references and
configs; D API preflight; E fine-tuning outputs; F malformed results files; G the `taiyi` guard.
"""

from __future__ import annotations

import builtins
import copy
import http.server
import io
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from taiyi_bench.harness import integrity, provenance
from taiyi_bench.harness.errors import ConfigError, DataFormatError
from taiyi_bench.harness.registry import REGISTRY, get_spec

from cli_runs import one_error, run_taiyi

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLES = REPO_ROOT / "harness" / "samples"
CONVERSATIONS = REPO_ROOT / "finetune" / "samples" / "conversations.jsonl"
MEDQA_TEST = "MedQA-USMLE/phrases_no_exclude_test.jsonl"


# ------------------------------------------------------------------------------ helpers


def _cli(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    return run_taiyi(capsys, *argv)


def _one_error(err: str, command: str) -> str:
    return one_error(err, f"taiyi {command}: error:")


def _tree(folder: Path) -> dict[str, bytes]:
    """Every file below `folder` with its bytes: what must survive a failed command."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _copy_data(shared: Path, target: Path, *relative: str) -> Path:
    for name in relative:
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shared / name, target / name)
    return target


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory) -> Path:
    from taiyi_bench.harness.random_models import build_tiny_causal_lm

    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny-lm") / "lm", seed=0)


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> Path:
    from taiyi_bench.harness.random_models import build_tiny_bert

    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert") / "model")


# ============================================================================== A. completeness


def _oracle_run(data_dir: Path, out: Path, tasks: list[str], **kwargs: Any) -> Path:
    """lm-eval's own evaluator with a model that answers every unit with its gold; returns the
    results file it saved."""
    import lm_eval
    from lm_eval.loggers import EvaluationTracker
    from lm_eval.tasks import TaskManager

    from taiyi_bench.harness.lmeval.plugin import tasks_dir

    from scripted_lm import oracle_lm

    manager = TaskManager(include_path=str(tasks_dir()), include_defaults=False, metadata={"data_dir": str(data_dir)})
    tracker = EvaluationTracker(output_path=str(out))
    result = lm_eval.simple_evaluate(model=oracle_lm(), tasks=tasks, task_manager=manager, evaluation_tracker=tracker,
                                     log_samples=True, **kwargs)
    samples = result.pop("samples")
    tracker.save_results_aggregated(results=result, samples=samples)
    (path,) = out.glob("**/results_*.json")
    return path


def _short_file(lines: list[str]) -> list[str]:
    return lines[:-100]  # cut on a line boundary: every remaining record is valid


def _duplicated_record(lines: list[str]) -> list[str]:
    return [lines[0], *lines]  # MedQA ids come from position: the copy gets an id of its own


def _full_run_results(model: str, completeness: dict[str, str] | None = None) -> dict[str, Any]:
    """A results file of every registered set as lm-eval writes it, every set at 50%, all complete unless said."""
    results, configs, n_samples = {}, {}, {}
    for key, spec in REGISTRY.items():
        counts = spec.expected.get(spec.eval_split)
        units = counts.units if counts else 100
        results[spec.task_name] = {f"{spec.headline_metric},none": 0.5}
        configs[spec.task_name] = {"task": spec.task_name, "num_fewshot": 0, "metadata": {
            "data_source": "data", "eval_units": units, "expected_units": counts.units if counts else None,
            "completeness": (completeness or {}).get(key, "full"), "fewshot_source": None, "variant": {},
            "prompt_version": 1, "budget": {"task": 64, "effective": 64, "cut": False, "source": "task"},
            "thinking_allowance": 0,
        }}
        n_samples[spec.task_name] = {"original": units, "effective": units}
    return {
        "results": results, "configs": configs, "n-samples": n_samples,
        "n-shot": {task: 0 for task in results}, "versions": {task: 1 for task in results},
        "config": {"model": "hf", "model_args": f"pretrained={model}", "limit": None},
        "model_name": model, "date": 1.7e9, "chat_template": None,
    }


def _write_results(folder: Path, data: dict[str, Any], date_id: str = "2026-01-01T00-00-00.000000") -> Path:
    path = folder / f"results_{date_id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.mark.parametrize(("corrupt", "units"), [(_short_file, 1173), (_duplicated_record, 1274)], ids=["short", "duplicated"])
def test_short_or_duplicated_medqa_is_marked_incomplete_everywhere(shared_data_dir, tmp_path, caplog, corrupt, units):
    from taiyi_bench.harness.apps.leaderboard.build import leaderboard_table
    from taiyi_bench.harness.apps.leaderboard.columns import build_run_columns
    from taiyi_bench.harness.apps.leaderboard.parse import collect_runs
    from taiyi_bench.harness.apps.leaderboard.render import render_markdown

    data = tmp_path / "data"
    lines = (shared_data_dir / MEDQA_TEST).read_text(encoding="utf-8").splitlines(keepends=True)
    (data / MEDQA_TEST).parent.mkdir(parents=True)
    (data / MEDQA_TEST).write_text("".join(corrupt(lines)), encoding="utf-8")

    with caplog.at_level(logging.WARNING, logger="taiyi-bench"):
        results_path = _oracle_run(data, tmp_path / "runs", ["taiyi_medqa_usmle"])
    # said at load time, naming the file and both counts
    warned = [r.getMessage() for r in caplog.records if "not the official split" in r.getMessage()]
    assert len(warned) == 1 and str(data / MEDQA_TEST) in warned[0] and f"{units} units" in warned[0] and "1273" in warned[0]

    produced = json.loads(results_path.read_text(encoding="utf-8"))
    metadata = produced["configs"]["taiyi_medqa_usmle"]["metadata"]
    assert metadata["completeness"] == "incomplete" and metadata["eval_units"] == units
    assert produced["results"]["taiyi_medqa_usmle"]["acc,none"] == 1.0  # a perfect score that must not pass for one

    # on the leaderboard: the run's MedQA cell beside 12 complete sets, marked and out of the averages
    merged = _full_run_results("org/oracle")
    for section in ("results", "configs", "n-samples"):
        merged[section]["taiyi_medqa_usmle"] = produced[section]["taiyi_medqa_usmle"]
    _write_results(tmp_path / "board" / "oracle", merged)
    collection = collect_runs([tmp_path / "board"])
    (column,) = [rc.column for rc in build_run_columns(collection)]
    cell = column.cells["medqa_usmle"]
    assert cell.flag == "incomplete" and not cell.in_averages and cell.value == pytest.approx(100.0)
    averages = column.averages()
    assert averages["qa"] is None and averages["all"] is None and averages["ner"] == pytest.approx(50.0)
    assert any("1273" in w and "incomplete" in w for w in collection.warnings)
    assert not any("official data; " in line for line in column.provenance)
    (counted,) = [rc.column for rc in build_run_columns(collect_runs([tmp_path / "board"]), include_incomplete=True)]
    assert counted.averages()["qa"] is not None  # counted only when asked
    text = render_markdown(leaderboard_table([tmp_path / "board"], published="none"))
    assert "(incomplete)" in text and "--include-incomplete" in text


def test_duplicated_cmeee_record_and_modified_file_are_caught_at_load_time(shared_data_dir, tmp_path, caplog):
    from taiyi_bench.harness.lmeval.tasks import load_task_dataset

    # CMeEE-V2 ids come from position too: one record twice is one unit too many
    data = tmp_path / "data"
    records = json.loads((shared_data_dir / "CMeEE-V2/CMeEE-V2_dev.json").read_text(encoding="utf-8"))
    (data / "CMeEE-V2").mkdir(parents=True)
    (data / "CMeEE-V2/CMeEE-V2_dev.json").write_text(json.dumps([records[0], *records], ensure_ascii=False), encoding="utf-8")
    # NCBI-disease with one token changed: the right count, another file
    _copy_data(shared_data_dir, data, "NCBI-disease/test.tsv")
    text = (data / "NCBI-disease/test.tsv").read_text(encoding="utf-8")
    (data / "NCBI-disease/test.tsv").write_text(text.replace("\t", "x\t", 1), encoding="utf-8")

    with caplog.at_level(logging.WARNING, logger="taiyi-bench"):
        cmeee = load_task_dataset("cmeee", data_dir=str(data))
        ncbi = load_task_dataset("ncbi_disease", data_dir=str(data))
    messages = [r.getMessage() for r in caplog.records if "not the official split" in r.getMessage()]
    assert any("CMeEE-V2_dev.json: 5001 units" in m and "5000" in m for m in messages)
    assert any("NCBI-disease/test.tsv: sha256" in m and "'modified data'" in m for m in messages)

    def completeness(dataset: Any) -> str:
        split = dataset.evaluation
        return provenance.task_metadata(
            split.spec, split.split, data_source=split.source, eval_units=len(split.examples), fewshot_source=None,
            files=[(p, split.root) for p in split.paths], budget=dict(provenance.NO_BUDGET),
        )["completeness"]

    assert completeness(cmeee) == "incomplete" and completeness(ncbi) == "modified data"


def test_official_files_are_full_and_a_limit_or_the_samples_say_so(shared_data_dir, tmp_path):
    spec = get_spec("ncbi_disease")
    real = [(shared_data_dir / "NCBI-disease/test.tsv", shared_data_dir)]
    assert spec.sha256, "the registry knows the official files' checksums"
    assert provenance.check_completeness(spec, "test", data_source="data", eval_units=940, files=real).status == "full"
    limited = provenance.check_completeness(spec, "test", data_source="data", eval_units=940, files=real, evaluated_units=3)
    assert limited.status == "limited"
    assert provenance.check_completeness(spec, "test", data_source="samples", eval_units=12).status == "samples"
    # the whole lm-eval path: --limit on the official file is recorded as limited
    path = _oracle_run(_copy_data(shared_data_dir, tmp_path / "data", "NCBI-disease/test.tsv"), tmp_path / "runs",
                       ["taiyi_ncbi_disease"], limit=3)
    metadata = json.loads(path.read_text(encoding="utf-8"))["configs"]["taiyi_ncbi_disease"]["metadata"]
    assert metadata["completeness"] == "limited" and metadata["eval_units"] == 940


def test_bert_results_of_a_short_file_are_marked_incomplete(shared_data_dir, tmp_path):
    from taiyi_bench.baselines.results import write_run
    from taiyi_bench.harness.loading import load_split
    from taiyi_bench.harness.records import Prediction

    data = tmp_path / "data"
    lines = (shared_data_dir / MEDQA_TEST).read_text(encoding="utf-8").splitlines(keepends=True)
    (data / MEDQA_TEST).parent.mkdir(parents=True)
    (data / MEDQA_TEST).write_text("".join(lines[:50]), encoding="utf-8")
    loaded = load_split("medqa_usmle", "test", data)
    path = write_run(
        loaded.spec, loaded.examples, [Prediction(choice=ex.answer) for ex in loaded.examples], model_name="bert",
        model_args={}, data_source=loaded.source, results_dir=tmp_path / "runs", n_original=len(loaded.examples),
        split="test", data_files=loaded.paths, data_root=loaded.root,
    )
    metadata = json.loads(path.read_text(encoding="utf-8"))["configs"]["taiyi_medqa_usmle"]["metadata"]
    assert metadata["completeness"] == "incomplete" and metadata["eval_units"] == 50 and metadata["expected_units"] == 1273


EMPTY_FILES = {
    "ncbi_disease": ("NCBI-disease/test.tsv", ""),  # IOB
    "medqa_usmle": (MEDQA_TEST, "\n"),  # JSONL
    "bc5cdr_re": ("BC5CDR-CDR-RE/CDR_TestSet.PubTator.txt", "\n\n"),  # PubTator
    "cmeee": ("CMeEE-V2/CMeEE-V2_dev.json", "[]"),  # JSON array
    "hoc": ("HoC/test.tsv", ""),  # TSV
}


@pytest.mark.parametrize("key", sorted(EMPTY_FILES))
def test_an_empty_eval_file_is_an_error_naming_it(tmp_path, key):
    from taiyi_bench.harness.lmeval.tasks import load_task_dataset

    name, content = EMPTY_FILES[key]
    (tmp_path / name).parent.mkdir(parents=True)
    (tmp_path / name).write_text(content, encoding="utf-8")
    with pytest.raises((DataFormatError, ConfigError)) as caught:
        load_task_dataset(key, data_dir=str(tmp_path))
    assert str(tmp_path / name) in str(caught.value)


def test_an_empty_eval_file_through_the_lm_eval_command_is_one_line(tmp_path, single_thread_env):
    (tmp_path / "NCBI-disease").mkdir()
    (tmp_path / "NCBI-disease" / "test.tsv").write_text("", encoding="utf-8")
    done = subprocess.run(
        ["lm_eval", "--model", "dummy", "--tasks", "taiyi_ncbi_disease", "--metadata", json.dumps({"data_dir": str(tmp_path)})],
        capture_output=True, text=True, env={**single_thread_env, "HF_DATASETS_OFFLINE": "1"}, timeout=300,
    )
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr[-2000:]
    (line,) = [x for x in done.stderr.splitlines() if x.startswith("lm_eval: error:")]
    assert str(tmp_path / "NCBI-disease" / "test.tsv") in line and "IndexError" not in done.stderr


# ============================================================================== B. taiyi data check


def _deny(monkeypatch: pytest.MonkeyPatch, denied: Callable[[str], bool]) -> None:
    """Make `open` fail as it does for a file the user may not read (tests run as root, for whom
    chmod 000 changes nothing)."""
    real_open = builtins.open

    def guarded(file: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(file, (str, os.PathLike)) and denied(os.fspath(file)):
            raise PermissionError(13, "Permission denied", os.fspath(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded)
    monkeypatch.setattr(io, "open", guarded)


def test_data_check_reports_an_unreadable_file_in_its_row(shared_data_dir, tmp_path, capsys, monkeypatch):
    data = _copy_data(shared_data_dir, tmp_path / "data", "NCBI-disease/test.tsv", "NCBI-disease/devel.tsv",
                      "KUAKE-QIC/KUAKE-QIC_dev.json")
    unreadable = data / "NCBI-disease" / "test.tsv"
    _deny(monkeypatch, lambda path: path == str(unreadable))
    code, out, err = _cli(capsys, "data", "check", data, "--json", tmp_path / "report.json")
    assert code == 1 and "Traceback" not in err
    assert "Permission denied" in out and "Summary" in out and "KUAKE-QIC" in out  # the rest of the report printed
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    rows = {(s["key"], r["split"]): r for s in report["sets"] for r in s["splits"]}
    assert rows[("ncbi_disease", "test")]["status"] == "error" and str(unreadable) in rows[("ncbi_disease", "test")]["message"]
    assert rows[("ncbi_disease", "dev")]["status"] == "ok" and rows[("kuake_qic", "dev")]["status"] == "ok"


def test_data_check_reports_an_unsearchable_folder_in_its_row(shared_data_dir, tmp_path, capsys, monkeypatch):
    data = _copy_data(shared_data_dir, tmp_path / "data", "KUAKE-QIC/KUAKE-QIC_dev.json")
    (data / "HoC").mkdir()
    real_is_file = Path.is_file

    def is_file(self: Path) -> bool:
        if self.parent == data / "HoC":
            raise PermissionError(13, "Permission denied", str(self))
        return real_is_file(self)

    monkeypatch.setattr(Path, "is_file", is_file)
    code, out, err = _cli(capsys, "data", "check", data)
    assert "Traceback" not in err and "Permission denied" in out and "Summary" in out
    assert code == 1  # a set that cannot be read fails the check, like a format error


# ============================================================================== C. model references and configs


def _config(**changes: Any) -> dict[str, Any]:
    base = {"name": "probe", "display_name": "Probe", "backend": "hf", "model": "org/model", "prompt_format": "plain",
            "batch_size": 1, "gen_kwargs": {"do_sample": False}}
    base.update(changes)
    return base


INJECTIONS = {
    "model": ({"model": "some/dir,trust_remote_code=True"}, "model: 'some/dir,trust_remote_code=True' contains ','"),
    "revision": ({"revision": "main,trust_remote_code=True"}, "revision: 'main,trust_remote_code=True' contains ','"),
    "model_args value": ({"model_args": {"dtype": "bfloat16,trust_remote_code=True"}}, "model_args.dtype"),
    "model_args newline": ({"model_args": {"dtype": "bfloat16\ntrust_remote_code"}}, "contains a newline"),
    "model_args control": ({"model_args": {"tokenizer": "org/tok\x1b"}}, "control character"),
    "model_args key": ({"model_args": {"x=1,trust_remote_code": True}}, "is not a plain name"),
    "remote code in model_args": ({"model_args": {"trust_remote_code": True}}, "model_args.trust_remote_code: set through"),
    "another model in model_args": ({"model_args": {"pretrained": "other/model"}}, "model_args.pretrained: set through"),
    "adapter path": ({"model_args": {"peft": "runs/x,trust_remote_code=True"}}, "model_args.peft"),
    "gen_kwargs": ({"gen_kwargs": {"until": "a,b"}}, "gen_kwargs.until"),
    "endpoint url": ({"backend": "local-chat-completions", "prompt_format": "chat_template", "endpoint": {
        "base_url": "http://h/v1/chat/completions,trust_remote_code=True", "api_key_env": "K"}}, "endpoint.base_url"),
}


@pytest.mark.parametrize("case", sorted(INJECTIONS))
def test_injection_attempts_fail_validation_and_run_before_any_work(tmp_path, capsys, monkeypatch, case):
    from taiyi_bench.baselines import llm_run

    changes, message = INJECTIONS[case]
    path = tmp_path / "probe.yaml"
    path.write_text(yaml.safe_dump(_config(**changes), allow_unicode=True), encoding="utf-8")
    code, out, err = _cli(capsys, "baseline", "validate", path)
    assert code == 1 and message in err and "Traceback" not in err and "ok " not in out
    monkeypatch.setattr(llm_run, "run_preflight", lambda *a, **k: pytest.fail("a refused config must not reach preflight"))
    monkeypatch.setattr(llm_run, "execute", lambda *a, **k: pytest.fail("a refused config must not reach lm-eval"))
    for extra in ((), ("--dry-run",)):
        code, out, err = _cli(capsys, "baseline", "run", path, *extra)
        _one_error(err, "baseline")  # the config's problems follow, one per line
        assert code == 2 and message in err and "lm_eval" not in out


def test_the_old_bypass_folder_is_refused_by_preflight_too(tmp_path):
    from taiyi_bench.baselines import preflight

    sneaky = tmp_path / "dir,trust_remote_code=True"
    sneaky.mkdir()
    (sneaky / "config.json").write_text("{}", encoding="utf-8")
    with pytest.raises(preflight.PreflightError, match="contains ','"):
        preflight.resolve_model(str(sneaky))


def test_validate_refuses_duplicate_keys_naming_both_lines(tmp_path, capsys):
    path = tmp_path / "probe.yaml"
    text = yaml.safe_dump(_config(), sort_keys=False) + "backend: vllm\n"
    path.write_text(text, encoding="utf-8")
    code, _out, err = _cli(capsys, "baseline", "validate", path)
    assert code == 1 and "duplicate key 'backend' (first given on line 3)" in err and str(path) in err
    path.write_text(yaml.safe_dump(_config(), sort_keys=False).replace("model: org/model", "model: org/model\nmodel_args:\n  dtype: a\n  dtype: b"))
    code, _out, err = _cli(capsys, "baseline", "validate", path)
    assert code == 1 and "duplicate key 'dtype'" in err


@pytest.mark.parametrize(
    ("name", "model", "message"),
    [
        ("probe", "x\nbackend: vllm", "--model: 'x\\nbackend: vllm' contains a newline"),
        ("probe\n", None, "name: 'probe\\n' is not a valid baseline name"),
        ("../escape", None, "name: '../escape' is not a valid baseline name"),
        ("probe", "dir,trust_remote_code=True", "contains ','"),
    ],
    ids=["newline-in-model", "newline-in-name", "climbing-name", "comma-in-model"],
)
def test_baseline_new_refuses_before_writing(tmp_path, capsys, name, model, message):
    argv = ["baseline", "new", name, "--dir", tmp_path / "configs"] + (["--model", model] if model else [])
    code, _out, err = _cli(capsys, *argv)
    assert code == 2 and message in _one_error(err, "baseline")
    assert not (tmp_path / "configs").exists() and list(tmp_path.iterdir()) == []


def test_baseline_new_writes_awkward_values_through_the_yaml_library(tmp_path, capsys):
    from taiyi_bench.baselines.llm_registry import load_config

    model = "My Org: model #1 'quoted' [x] {y} * & ! % @ `z`"
    code, _out, err = _cli(capsys, "baseline", "new", "awkward", "--dir", tmp_path, "--model", model)
    assert code == 0, err
    config = load_config(tmp_path / "awkward.yaml")
    assert config.model == model and config.backend == "hf" and config.name == "awkward"
    code, _out, err = _cli(capsys, "baseline", "new", "awkward", "--dir", tmp_path)  # never overwritten
    assert code == 2 and "already exists" in err and load_config(tmp_path / "awkward.yaml").model == model


@pytest.fixture(scope="module")
def trained_baseline(tiny_bert, tmp_path_factory) -> Path:
    """A tiny BERT baseline trained for one step on the KUAKE-QIC samples (no evaluation)."""
    from taiyi_bench.baselines import runner

    out = tmp_path_factory.mktemp("baseline") / "kuake"
    runner.train("kuake_qic", encoder=str(tiny_bert), output_dir=out, evaluate=False,
                 hyperparameters={"max_steps": 1, "batch_size": 4, "device": "cpu"})
    return out


def test_model_name_dot_dot_is_refused_and_results_stay_inside(trained_baseline, tiny_bert, tmp_path, capsys):
    results = tmp_path / "results"
    for argv in (
        ["baseline", "train", "--task", "kuake_qic", "--encoder", tiny_bert, "--output-dir", tmp_path / "never"],
        ["baseline", "predict", "--output-dir", trained_baseline],
    ):
        code, _out, err = _cli(capsys, *argv, "--results-dir", results, "--model-name", "..")
        assert code == 2 and "--model-name '..' is not a usable model name" in _one_error(err, "baseline")
        assert not results.exists() and not (tmp_path / "never").exists()  # refused before any work
    before = set(tmp_path.parent.iterdir())
    code, out, err = _cli(capsys, "baseline", "predict", "--output-dir", trained_baseline, "--results-dir", results,
                          "--model-name", "../../escape", "--limit", "3")
    assert code == 0, err
    (written,) = results.glob("*/*/results_*.json")
    assert written.resolve().is_relative_to(results.resolve()) and set(tmp_path.parent.iterdir()) == before


def test_predict_on_a_truncated_or_damaged_baseline_is_a_message(trained_baseline, tmp_path, capsys):
    damaged = tmp_path / "damaged"
    shutil.copytree(trained_baseline, damaged)
    (weights,) = damaged.glob("*/model.safetensors")
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    kept = _tree(damaged)
    code, _out, err = _cli(capsys, "baseline", "predict", "--output-dir", damaged, "--results-dir", tmp_path / "r")
    line = _one_error(err, "baseline")
    assert code == 2 and str(weights) in line and "truncated" in line and "Train it again" in line
    assert _tree(damaged) == kept and not (tmp_path / "r").exists()
    (damaged / "baseline.json").write_text('{"task": "kuake_qic", ', encoding="utf-8")
    code, _out, err = _cli(capsys, "baseline", "predict", "--output-dir", damaged, "--results-dir", tmp_path / "r")
    assert code == 2 and "baseline.json" in _one_error(err, "baseline")


# ============================================================================== D. API preflight


class _Endpoint:
    """A local HTTP server answering every POST with a fixed status, content type and body."""

    def __init__(self, status: int, content_type: str, body: bytes) -> None:
        answer = (status, content_type, body)
        self.requests: list[dict[str, Any]] = []
        requests = self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                requests.append({"path": self.path, "auth": self.headers.get("Authorization"),
                                 "body": self.rfile.read(length) if length else b""})
                self.send_response(answer[0])
                self.send_header("Content-Type", answer[1])
                self.send_header("Content-Length", str(len(answer[2])))
                self.end_headers()
                self.wfile.write(answer[2])

            do_POST = _answer  # noqa: N815 - http.server's naming
            do_GET = _answer  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1/chat/completions"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint() -> Iterator[Callable[[int, str, bytes], _Endpoint]]:
    started: list[_Endpoint] = []

    def start(status: int, content_type: str, body: bytes) -> _Endpoint:
        started.append(_Endpoint(status, content_type, body))
        return started[-1]

    yield start
    for server in started:
        server.close()


OK_ANSWER = json.dumps({"choices": [{"message": {"content": "OK"}}]}).encode()
ENDPOINT_CASES = {
    "key refused": (401, "application/json", b'{"error": {"message": "Incorrect API key provided"}}', "refused the API key in $PROBE_KEY (HTTP 401: Incorrect API key provided)"),
    "forbidden": (403, "application/json", b"{}", "refused the API key in $PROBE_KEY (HTTP 403"),
    "html page": (200, "text/html", b"<html><body>Sign in</body></html>", "with text/html, not a chat completion"),
    "json without choices": (200, "application/json", b'{"status": "ok"}', "JSON without choices"),
    "wrong url or model": (404, "application/json", b'{"error": {"message": "model not found"}}', "HTTP 404 for model 'probe-model': model not found"),
    "server error": (502, "text/html", b"<html>Bad gateway</html>", "HTTP 502"),
    "a chat completion": (200, "application/json", OK_ANSWER, None),
    "rate limited": (429, "application/json", b'{"error": {"message": "slow down"}}', None),
    "request shape refused": (400, "application/json", b'{"error": {"message": "max_tokens unsupported"}}', None),
}


@pytest.mark.parametrize("case", sorted(ENDPOINT_CASES))
def test_chat_endpoint_answers(endpoint, monkeypatch, case):
    from taiyi_bench.baselines import preflight

    status, content_type, body, message = ENDPOINT_CASES[case]
    server = endpoint(status, content_type, body)
    monkeypatch.setenv("PROBE_KEY", "sk-secret-value")
    if message is None:
        preflight.check_chat_endpoint(server.url, "probe-model", "PROBE_KEY", timeout=2.0)
    else:
        with pytest.raises(preflight.PreflightError) as caught:
            preflight.check_chat_endpoint(server.url, "probe-model", "PROBE_KEY", timeout=2.0)
        assert message in str(caught.value) and "sk-secret-value" not in str(caught.value)
    sent = server.requests[-1]
    assert sent["auth"] == "Bearer sk-secret-value" and json.loads(sent["body"])["max_tokens"] == 1


def test_baseline_run_against_a_401_endpoint_stops_before_lm_eval(endpoint, tmp_path, capsys, monkeypatch):
    from taiyi_bench.baselines import llm_run

    server = endpoint(401, "application/json", b'{"error": {"message": "invalid key"}}')
    path = tmp_path / "probe.yaml"
    path.write_text(yaml.safe_dump(_config(backend="local-chat-completions", prompt_format="chat_template", model="probe-model",
                                           endpoint={"base_url": server.url, "api_key_env": "PROBE_KEY"})), encoding="utf-8")
    monkeypatch.setenv("PROBE_KEY", "sk-secret-value")
    monkeypatch.setattr(llm_run, "execute", lambda *a, **k: pytest.fail("lm-eval must not start"))
    code, out, err = _cli(capsys, "baseline", "run", path, "--tasks", "hoc", "--output-root", tmp_path / "runs")
    line = _one_error(err, "baseline")
    assert code == 2 and "HTTP 401" in line and "$PROBE_KEY" in line and "sk-secret-value" not in out + err
    assert not (tmp_path / "runs").exists()


# ============================================================================== E. fine-tuning


def _finetune_overrides(tiny_lm: Path, *extra: str) -> list[str]:
    return [
        f"model.base={tiny_lm}", "data.tasks.names=[bc5cdr_chem, cmeee, pubmedqa]", f"data.files=[{CONVERSATIONS}]",
        "data.cap=6", "format.max_length=192", "training.per_device_batch_size=2",
        "training.gradient_accumulation_steps=1", "training.max_steps=2", "training.save_steps=0",
        "training.progress=false", "training.num_threads=1", *extra,
    ]


def _finetune_config(tiny_lm: Path, *extra: str) -> dict[str, Any]:
    from taiyi_bench.finetune.config import load_recipe

    return load_recipe("cpu_smollm2_tiny", _finetune_overrides(tiny_lm, *extra))


def _logged_steps(out: Path) -> list[tuple[int, int]]:
    lines = (out / "train_log.jsonl").read_text(encoding="utf-8").splitlines()
    return [(r["stage"], r["step"]) for r in map(json.loads, lines) if r["event"] == "step"]


@pytest.fixture(scope="module")
def stage1_run(tiny_lm, tmp_path_factory) -> Path:
    """A finished stage 1 (2 steps) of the tiny model: the adapter stage 2 would start from."""
    from taiyi_bench.finetune.train import train

    out = tmp_path_factory.mktemp("stage1") / "run"
    train(_finetune_config(tiny_lm), stages=(1,), output_dir=out)
    return out


def _damaged_copy(run: Path, target: Path, damage: Callable[[Path], None]) -> Path:
    shutil.copytree(run, target)
    damage(target / "stage1" / "adapter")
    return target


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda adapter: (adapter / integrity.STAGE_MARKER).unlink(), "unfinished (no valid taiyi_stage.json"),
        (lambda adapter: _truncate(adapter / "adapter_model.safetensors"), "adapter_model.safetensors: "),
        (lambda adapter: (adapter / "adapter_model.safetensors").unlink(), "adapter_model.safetensors"),
    ],
    ids=["no-marker", "truncated-weights", "missing-weights"],
)
def test_stage2_merge_and_evaluation_refuse_an_incomplete_stage1_adapter(stage1_run, tiny_lm, tmp_path, damage, message):
    from taiyi_bench.finetune.train import merge_adapter, train
    from taiyi_bench.harness.lmeval.models import TaiyiHFLM

    run = _damaged_copy(stage1_run, tmp_path / "run", damage)
    kept = _tree(run)
    adapter = run / "stage1" / "adapter"
    with pytest.raises(integrity.IncompleteFilesError) as caught:
        train(_finetune_config(tiny_lm), stages=(2,), output_dir=run)
    assert "stage 2's starting adapter" in str(caught.value) and message in str(caught.value)
    assert not (run / "stage2" / "adapter").exists()
    with pytest.raises(integrity.IncompleteFilesError, match="merge"):
        merge_adapter(str(tiny_lm), adapter, tmp_path / "merged")
    with pytest.raises(integrity.IncompleteFilesError, match="peft="):
        TaiyiHFLM(pretrained=str(tiny_lm), peft=str(adapter), prompt_format="plain")
    from taiyi_bench.baselines import preflight

    with pytest.raises(preflight.PreflightError, match="model_args.peft"):
        preflight.check_adapter_reference("model_args.peft", str(adapter))
    assert not (tmp_path / "merged").exists()
    after = _tree(run)
    assert {k: v for k, v in after.items() if k in kept} == kept  # nothing that was there was changed or lost


def test_a_finished_adapter_passes_every_check(stage1_run):
    adapter = stage1_run / "stage1" / "adapter"
    marker = json.loads((adapter / integrity.STAGE_MARKER).read_text(encoding="utf-8"))
    assert marker["files"]["adapter_model.safetensors"] == (adapter / "adapter_model.safetensors").stat().st_size
    assert integrity.adapter_problems(adapter) == []


def test_resume_from_a_truncated_checkpoint_stops_and_keeps_everything(tiny_lm, tmp_path, capsys):
    from taiyi_bench.finetune.train import find_checkpoints, train

    out = tmp_path / "run"
    overrides = ("training.max_steps=6", "training.save_steps=2")
    train(_finetune_config(tiny_lm, *overrides), stages=(1,), output_dir=out, stop_after_steps=5)
    first, latest = find_checkpoints(out / "stage1")[-2:]
    _truncate(latest / "state" / "model.safetensors")
    kept = _tree(out)
    argv = ["finetune", "cpu_smollm2_tiny", "--stage", "1", "--output-dir", out, "--resume"]
    for item in _finetune_overrides(tiny_lm, *overrides):
        argv += ["-o", item]
    code, _out, err = _cli(capsys, *argv)
    line = _one_error(err, "finetune")
    assert code == 2 and str(latest / "state" / "model.safetensors") in line and "Remove this checkpoint folder" in line
    assert _tree(out) == kept  # the log, the config and both checkpoints as they were
    shutil.rmtree(latest)  # what the message says to do: resume from the checkpoint before it
    train(_finetune_config(tiny_lm, *overrides), stages=(1,), output_dir=out, resume=True)
    assert first.name == "step-000004" and _logged_steps(out) == [(1, s) for s in range(1, 7)]


def test_sigkill_concurrent_run_and_resume(tiny_lm, tmp_path, capsys, caplog, single_thread_env):
    """A run is stopped hard mid-stage; meanwhile a second run into the same folder is refused
    naming the first; after SIGKILL, --resume takes over the lock and every step is logged once."""
    out = tmp_path / "run"
    overrides = _finetune_overrides(tiny_lm, "training.max_steps=150", "training.save_steps=20", "training.logging_steps=1")
    args = ["cpu_smollm2_tiny", "--stage", "1", "--output-dir", str(out)] + [x for item in overrides for x in ("-o", item)]
    first = subprocess.Popen([sys.executable, "-m", "taiyi_bench.finetune", *args], env=single_thread_env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    log = out / "train_log.jsonl"
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline:  # wait for a checkpoint and a step after it
            events = [json.loads(x) for x in log.read_text(encoding="utf-8").splitlines()[:-1]] if log.is_file() else []
            saved = [e["step"] for e in events if e["event"] == "checkpoint"]
            if saved and any(e["event"] == "step" and e["step"] > saved[0] + 2 for e in events):
                break
            assert first.poll() is None, first.stderr.read() if first.stderr else ""
            time.sleep(0.002)
        os.kill(first.pid, signal.SIGSTOP)  # frozen mid-stage, still holding the lock
        code, _out, err = _cli(capsys, "finetune", *args)
        line = _one_error(err, "finetune")
        assert code == 2 and f"pid {first.pid}" in line and "in use by another taiyi finetune run" in line
        before_kill = log.read_bytes()
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=60)
    assert first.returncode == -signal.SIGKILL and log.read_bytes() == before_kill  # the refused run wrote nothing
    interrupted = _logged_steps(out)
    with caplog.at_level(logging.WARNING, logger="taiyi-bench.finetune"):
        code, _out, err = _cli(capsys, "finetune", *args, "--resume")
    assert code == 0, err
    assert any(f"pid {first.pid}" in r.getMessage() and "taking it over" in r.getMessage() for r in caplog.records)
    steps = _logged_steps(out)
    assert steps == [(1, s) for s in range(1, 151)], steps  # every step once, in order
    assert len(interrupted) > max(s for _, s in steps if s <= 20)  # steps after the checkpoint were logged twice before
    assert not (out / ".taiyi_run.lock").exists()
    assert (out / "stage1" / "adapter" / integrity.STAGE_MARKER).is_file()


def test_rewind_drops_replayed_steps_and_a_torn_line(tmp_path):
    from taiyi_bench.finetune.train import rewind_log

    log = tmp_path / "train_log.jsonl"
    records = [{"event": "start"}] + [{"event": "step", "stage": 1, "step": s} for s in range(1, 6)]
    records += [{"event": "checkpoint", "stage": 1, "step": 4}, {"event": "step", "stage": 2, "step": 9}]
    log.write_text("".join(json.dumps(r) + "\n" for r in records) + '{"event": "step", "sta', encoding="utf-8")
    rewind_log(log, {1: 2, 2: None})
    kept = [json.loads(x) for x in log.read_text(encoding="utf-8").splitlines()]
    assert kept == [{"event": "start"}, {"event": "step", "stage": 1, "step": 1}, {"event": "step", "stage": 1, "step": 2},
                    {"event": "step", "stage": 2, "step": 9}]


def test_lock_names_its_holder_and_is_released(tmp_path):
    from taiyi_bench.finetune.lock import RunDirectoryBusy, acquire

    holder = acquire(tmp_path)
    try:
        with pytest.raises(RunDirectoryBusy, match=rf"pid {os.getpid()} on host"):
            acquire(tmp_path)
    finally:
        holder.release()
    acquire(tmp_path).release()  # free again
    (tmp_path / ".taiyi_run.lock").write_text(json.dumps({"pid": 1, "host": "elsewhere.example"}), encoding="utf-8")
    with pytest.raises(RunDirectoryBusy, match="another host"):
        acquire(tmp_path)  # a lock from another host is never taken over
    assert json.loads((tmp_path / ".taiyi_run.lock").read_text(encoding="utf-8"))["host"] == "elsewhere.example"


# ============================================================================== F. malformed results files


def _mutations() -> dict[str, Callable[[dict[str, Any]], Any]]:
    task = "taiyi_hoc"

    def setter(*keys: str, value: Any) -> Callable[[dict[str, Any]], Any]:
        def apply(data: dict[str, Any]) -> dict[str, Any]:
            node = data
            for key in keys[:-1]:
                node = node[key]
            node[keys[-1]] = value
            return data
        return apply

    meta = ("configs", task, "metadata")
    return {
        "date 1e20": setter("date", value=1e20),
        "date -1e20": setter("date", value=-1e20),
        "date text": setter("date", value="yesterday"),
        "date list": setter("date", value=[1]),
        "results list": setter("results", value=[1, 2]),
        "task entry null": setter("results", task, value=None),
        "metric text": setter("results", task, value={"micro_f1,none": "high"}),
        "metric huge": setter("results", task, value={"micro_f1,none": 1e300}),
        "metric nan": setter("results", task, value={"micro_f1,none": float("nan")}),
        "configs list": setter("configs", value=[]),
        "task config list": setter("configs", task, value=[1]),
        "metadata list": setter(*meta, value=[]),
        "budget text": setter(*meta, "budget", value="lots"),
        "eval_units text": setter(*meta, "eval_units", value="many"),
        "completeness unknown": setter(*meta, "completeness", value="bogus"),
        "completeness incomplete": setter(*meta, "completeness", value="incomplete"),
        "provenance text": setter(*meta, "provenance", value="x"),
        "data_files list": setter(*meta, "provenance", value={"data_files": [1, 2]}),
        "variant list": setter(*meta, "variant", value=[4]),
        "prompt_version dict": setter(*meta, "prompt_version", value={"v": 1}),
        "n-samples list": setter("n-samples", value=[]),
        "n-samples text": setter("n-samples", task, value="all"),
        "n-shot text": setter("n-shot", value="zero"),
        "limit text": setter("config", "limit", value="ten"),
        "limit true": setter("config", "limit", value=True),
        "config text": setter("config", value="hf"),
        "model_args list": setter("config", "model_args", value=["a"]),
        "gen_kwargs number": setter("config", "gen_kwargs", value=5),
        "skipped text": setter("taiyi_skipped_sets", value="chemdner"),
        "skipped numbers": setter("taiyi_skipped_sets", value=[1, 2]),
        "model_name number": setter("model_name", value=12),
        "top-level list": lambda data: [data],
        "empty file": lambda data: b"",
        "not utf-8": lambda data: b"\xff\xfe{}",
        "truncated json": lambda data: json.dumps(data)[:200].encode(),
    }


MUTATIONS = _mutations()


@pytest.mark.parametrize("case", sorted(MUTATIONS))
def test_a_malformed_results_file_is_a_warning_never_a_crash(tmp_path, capsys, case):
    from taiyi_bench.harness.apps.leaderboard.build import leaderboard_table
    from taiyi_bench.harness.apps.leaderboard.render import render_csv, render_markdown

    runs = tmp_path / "runs"
    _write_results(runs / "good", _full_run_results("org/good"), "2026-01-01T00-00-00.000000")
    mutated = MUTATIONS[case](copy.deepcopy(_full_run_results("org/bad")))
    bad = runs / "bad" / "results_2026-01-02T00-00-00.000000.json"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(mutated if isinstance(mutated, bytes) else json.dumps(mutated).encode())
    original = bad.read_bytes()
    table = leaderboard_table([runs], published="none")
    assert render_markdown(table) and render_csv(table)
    good = [c for c in table.columns if c.header == "org/good"]
    assert len(good) == 1 and good[0].averages()["all"] == pytest.approx(50.0)  # the good run is untouched by the bad one
    code, _out, err = _cli(capsys, "leaderboard", runs, "--formats", "md", "--out", tmp_path / "board", "--published", "none")
    assert code == 0 and "Traceback" not in err and (tmp_path / "board").is_dir()
    assert bad.read_bytes() == original  # reading never rewrites a results file


def test_an_impossible_date_is_named_and_the_run_still_counts(tmp_path):
    from taiyi_bench.harness.apps.leaderboard.parse import collect_runs

    data = _full_run_results("org/model")
    data["date"] = 1e20
    _write_results(tmp_path, data)
    collection = collect_runs([tmp_path])
    (run,) = collection.runs
    assert run.date is None and run.sort_time > 0 and len(run.tasks) == len(REGISTRY)
    assert any("'date' 1e+20 is not a time stamp" in w for w in collection.warnings)


# ============================================================================== G. the `taiyi` guard


UNWRITABLE = {
    "leaderboard --out": ["leaderboard", "{runs}", "--out", "{bad}"],
    "data check --json": ["data", "check", "--json", "{bad}/report.json"],
    "baseline new --dir": ["baseline", "new", "probe", "--dir", "{bad}"],
    "baseline train --results-dir": ["baseline", "train", "--task", "hoc", "--results-dir", "{bad}"],
    "baseline train --output-dir": ["baseline", "train", "--task", "hoc", "--output-dir", "{bad}"],
    "baseline predict --results-dir": ["baseline", "predict", "--output-dir", "{runs}", "--results-dir", "{bad}"],
    "baseline run --output-root": ["baseline", "run", "smollm2-135m-instruct", "--output-root", "{bad}"],
    "finetune --output-dir": ["finetune", "cpu_smollm2_tiny", "--output-dir", "{bad}"],
    "demo --out": ["demo", "--out", "{bad}"],
}


@pytest.mark.parametrize("case", sorted(UNWRITABLE))
def test_an_unwritable_output_is_refused_before_any_work(tmp_path, capsys, monkeypatch, case):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    (tmp_path / "runs").mkdir()
    monkeypatch.chdir(tmp_path)
    argv = [part.format(bad=blocker / "out", runs=tmp_path / "runs") for part in UNWRITABLE[case]]
    kept = _tree(tmp_path)
    code, _out, err = _cli(capsys, *argv)
    line = _one_error(err, argv[0])
    option = case.split(" ")[-1]
    assert code != 0 and f"{option} " in line and "cannot write there" in line and "a-file is a file" in line
    assert _tree(tmp_path) == kept  # nothing written, nothing changed


def test_user_errors_from_inside_a_command_are_one_line(tmp_path, capsys):
    (tmp_path / "recipe.yaml").mkdir()  # a folder where a recipe file is expected
    code, _out, err = _cli(capsys, "finetune", tmp_path / "recipe.yaml", "--dry-run")
    assert code != 0 and str(tmp_path / "recipe.yaml") in _one_error(err, "finetune")
    (tmp_path / "binary.yaml").write_bytes(b"\xff\xfe\x00name: x")
    code, _out, err = _cli(capsys, "baseline", "validate", tmp_path / "binary.yaml")
    assert code == 1 and "Traceback" not in err and str(tmp_path / "binary.yaml") in err
    (tmp_path / "data-as-file").write_text("x", encoding="utf-8")
    code, _out, err = _cli(capsys, "data", "check", tmp_path / "data-as-file")
    assert code != 0 and "Traceback" not in err
