"""Generation budgets reach the model per task, and every results file says how it was made.

Runs the taiyi_* tasks through lm-eval's own evaluator with a scripted model that records the
`max_gen_toks` each request carries, writes lm-eval's results file as its CLI does, and checks
the BERT writer's file for the same provenance keys.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import subprocess
from pathlib import Path
from typing import Any

import lm_eval
import pytest
from lm_eval.loggers import EvaluationTracker
from lm_eval.tasks import TaskManager
from provenance_keys import missing_keys

from taiyi_bench.baselines import llm_run
from taiyi_bench.baselines.llm_registry import list_configs, load_config, scaffold
from taiyi_bench.baselines.results import write_run
from taiyi_bench.harness import provenance
from taiyi_bench.harness.apps.cli import main
from taiyi_bench.harness.lmeval.plugin import tasks_dir
from taiyi_bench.harness.lmeval.tasks import doc_to_target, task_budgets
from taiyi_bench.harness.loading import load_split
from taiyi_bench.harness.paths import SAMPLES_DIR
from taiyi_bench.harness.prompts import PROMPT_VERSION
from taiyi_bench.harness.records import Prediction
from taiyi_bench.harness.registry import get_spec
from taiyi_bench.harness.scoring import SCORING_RULES_VERSION

from scripted_lm import ScriptedLM

TASKS = ["taiyi_cmeie", "taiyi_kuake_qic", "taiyi_medqa_mcmle"]  # budgets 1280, 48, 64


class BudgetRecordingLM(ScriptedLM):
    """Answers with the gold and remembers the max_gen_toks of every request, per task."""

    def __init__(self) -> None:
        super().__init__(lambda doc, _prompt: doc_to_target(doc), name="budget-recorder")
        self.budgets: dict[str, set[int]] = {}

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        for request in requests:
            self.budgets.setdefault(request.task_name, set()).add(request.arguments[1].get("max_gen_toks"))
        return super().generate_until(requests, disable_tqdm)


def _evaluate(tmp_path: Path, metadata: dict[str, Any] | None = None, tasks: list[str] = TASKS, **kwargs: Any):
    """lm-eval as its CLI runs it, on our task folder only (indexing lm-eval's own ~10k task
    files costs ~14 s), saving the results file; returns (model, results dict, results file)."""
    model = BudgetRecordingLM()
    tracker = EvaluationTracker(output_path=str(tmp_path))
    manager = TaskManager(include_path=str(tasks_dir()), include_defaults=False, metadata=metadata)
    out = lm_eval.simple_evaluate(
        model=model, tasks=tasks, task_manager=manager, limit=2, log_samples=True, evaluation_tracker=tracker, **kwargs
    )
    samples = out.pop("samples")
    tracker.save_results_aggregated(results=out, samples=samples)
    (results_file,) = tmp_path.glob("**/results_*.json")
    return model, json.loads(results_file.read_text(encoding="utf-8")), results_file


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _git_head() -> str | None:
    repo = Path(provenance.__file__).resolve().parents[1]
    if not (repo / ".git").exists():
        return None
    return subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()


def assert_contract(metadata: dict[str, Any]) -> None:
    """Every shared-contract key, with the types the leaderboard relies on."""
    assert missing_keys(metadata) == []
    assert metadata["data_source"] in ("data", "samples")
    assert isinstance(metadata["eval_units"], int) and metadata["eval_units"] > 0
    assert metadata["expected_units"] is None or isinstance(metadata["expected_units"], int)
    assert metadata["fewshot_source"] in ("data", "samples", None)
    assert isinstance(metadata["variant"], dict)
    assert metadata["prompt_version"] == PROMPT_VERSION
    assert set(metadata["budget"]) == {"task", "effective", "cut", "source"}
    assert isinstance(metadata["thinking_allowance"], int)
    prov = metadata["provenance"]
    assert prov["taiyi_bench_version"] == provenance.taiyi_bench_version() != "unknown"
    assert prov["git_commit"] == _git_head()
    assert prov["scoring_rules_version"] == SCORING_RULES_VERSION
    assert prov["data_files"] and all(len(digest) == 64 for digest in prov["data_files"].values())


# ------------------------------------------------------------------------------ configs and commands


def test_no_shipped_config_or_scaffold_passes_a_global_budget(tmp_path):
    configs = list_configs()
    assert len(configs) >= 11
    for config in configs:
        shell = llm_run.build_invocation(config, data_dir=tmp_path, limit=2).shell()
        assert "max_gen_toks" not in shell, config.name
    for backend in ("hf", "openai-chat-completions"):
        path = scaffold(f"new-{backend}", tmp_path, backend=backend)
        assert "max_gen_toks:" not in path.read_text(encoding="utf-8")
        assert "max_gen_toks" not in llm_run.build_invocation(load_config(path)).shell()


def test_metadata_is_one_json_with_data_dir_thinking_allowance_and_mcmle_options(tmp_path):
    from lm_eval._cli import HarnessCLI
    from lm_eval.config.evaluate_config import EvaluatorConfig

    (deepseek,) = [c for c in list_configs() if c.name == "deepseek-r1-distill-qwen-14b"]
    assert deepseek.thinking_allowance > 0
    argv = llm_run.build_invocation(deepseek, data_dir=tmp_path, set_options={"mcmle_options": 5}).argv
    assert argv.count("--metadata") == 1
    wanted = {"data_dir": str(tmp_path.resolve()), "thinking_allowance": deepseek.thinking_allowance, "mcmle_options": 5}
    assert json.loads(argv[argv.index("--metadata") + 1]) == wanted
    # lm-eval accepts it (and merges the model_args into the same metadata, which the tasks ignore)
    parsed = EvaluatorConfig.from_cli(HarnessCLI()._parser.parse_args(argv[1:]))
    assert parsed.metadata.items() >= wanted.items()


def test_cli_max_gen_toks_warns_naming_each_cut_task(capsys):
    status = main(["baseline", "run", "taiyi-llm", "--dry-run", "--max-gen-toks", "64",
                   "--tasks", "cmeie", "kuake_qic", "medqa_mcmle"])
    captured = capsys.readouterr()
    assert status == 0
    assert "max_gen_toks=64" in captured.out
    warned = {task for task in task_budgets() if f"cuts {task}'s generation budget" in captured.err}
    assert warned == {"taiyi_cmeie"}  # 1280 > 64; KUAKE-QIC's 48 and MCMLE's 64 are not cut
    main(["baseline", "run", "taiyi-llm", "--dry-run", "--tasks", "cmeie"])
    assert "budget" not in capsys.readouterr().err


# ------------------------------------------------------------------------------ through lm-eval


def test_default_run_gives_each_task_its_own_budget(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="taiyi-bench"):
        model, results, _ = _evaluate(tmp_path)
    budgets = task_budgets()
    assert model.budgets == {task: {budgets[task]} for task in TASKS}
    assert "generation budget" not in caplog.text
    for task in TASKS:
        metadata = results["configs"][task]["metadata"]
        assert_contract(metadata)
        assert metadata["budget"] == {"task": budgets[task], "effective": budgets[task], "cut": False, "source": "task"}
        assert metadata["fewshot_source"] is None  # zero-shot: no demonstrations shown
        assert metadata["variant"] == ({"mcmle_options": 4} if task == "taiyi_medqa_mcmle" else {})
        spec = get_spec(task)
        # the samples' evaluation file, by its checksum
        (eval_file,) = load_split(spec.key).paths
        key = "samples/" + eval_file.relative_to(SAMPLES_DIR).as_posix()
        assert metadata["provenance"]["data_files"] == {key: _sha256(eval_file)}
        assert metadata["expected_units"] == spec.expected[spec.eval_split].units


def test_global_max_gen_toks_warns_names_the_cut_tasks_and_is_recorded(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="taiyi-bench"):
        model, results, results_file = _evaluate(tmp_path, gen_kwargs="max_gen_toks=64")
    assert model.budgets == {task: {64} for task in TASKS}  # what lm-eval really asked the model for
    budgets = task_budgets()
    cut_messages = [r.getMessage() for r in caplog.records if "generation budget" in r.getMessage()]
    assert len(cut_messages) == 1 and "taiyi_cmeie" in cut_messages[0] and "1280 to 64" in cut_messages[0]
    stored = json.loads(results_file.read_text(encoding="utf-8"))  # the file itself, not the dict
    for task in TASKS:
        metadata = stored["configs"][task]["metadata"]
        assert_contract(metadata)
        assert metadata["budget"] == {
            "task": budgets[task], "effective": 64, "cut": budgets[task] > 64, "source": "gen_kwargs",
        }
    assert [t for t in TASKS if results["configs"][t]["metadata"]["budget"]["cut"]] == ["taiyi_cmeie"]


def test_thinking_allowance_adds_to_every_tasks_own_budget(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="taiyi-bench"):
        model, results, _ = _evaluate(tmp_path, metadata={"thinking_allowance": 100, "mcmle_options": 5})
    budgets = task_budgets()
    assert model.budgets == {task: {budgets[task] + 100} for task in TASKS}
    for task in TASKS:
        metadata = results["configs"][task]["metadata"]
        assert_contract(metadata)
        assert metadata["thinking_allowance"] == 100
        assert metadata["budget"] == {
            "task": budgets[task], "effective": budgets[task] + 100, "cut": False, "source": "thinking_allowance",
        }
    assert results["configs"]["taiyi_medqa_mcmle"]["metadata"]["variant"] == {"mcmle_options": 5}
    assert "generation budget" not in caplog.text


def test_global_budget_below_budget_plus_allowance_is_a_cut(tmp_path, caplog):
    # KUAKE-QIC asks 48 + 100 thinking tokens; a global 64 leaves the reasoning no room.
    with caplog.at_level(logging.WARNING, logger="taiyi-bench"):
        model, results, _ = _evaluate(
            tmp_path, metadata={"thinking_allowance": 100}, tasks=["taiyi_kuake_qic"], gen_kwargs={"max_gen_toks": 64}
        )
    assert model.budgets == {"taiyi_kuake_qic": {64}}
    budget = results["configs"]["taiyi_kuake_qic"]["metadata"]["budget"]
    assert budget == {"task": 48, "effective": 64, "cut": True, "source": "gen_kwargs"}
    assert "cuts taiyi_kuake_qic's generation budget from 148 to 64" in caplog.text


def test_fewshot_pool_from_the_samples_is_recorded_as_samples(tmp_path):
    # A data directory holding KUAKE-QIC's evaluation split but no train split.
    data_dir = tmp_path / "data"
    spec = get_spec("kuake_qic")
    eval_name, train_name = spec.files[spec.eval_split], spec.files["train"]
    (data_dir / spec.data_subdir).mkdir(parents=True)
    shutil.copy(SAMPLES_DIR / spec.data_subdir / eval_name, data_dir / spec.data_subdir / eval_name)

    _, one_shot, _ = _evaluate(tmp_path / "1shot", metadata={"data_dir": str(data_dir)}, tasks=["taiyi_kuake_qic"], num_fewshot=1)
    metadata = one_shot["configs"]["taiyi_kuake_qic"]["metadata"]
    assert_contract(metadata)
    assert one_shot["n-shot"]["taiyi_kuake_qic"] == 1
    assert metadata["data_source"] == "data" and metadata["fewshot_source"] == "samples"
    assert metadata["provenance"]["data_files"] == {
        f"{spec.data_subdir}/{eval_name}": _sha256(data_dir / spec.data_subdir / eval_name),
        f"samples/{spec.data_subdir}/{train_name}": _sha256(SAMPLES_DIR / spec.data_subdir / train_name),
    }

    _, zero_shot, _ = _evaluate(tmp_path / "0shot", metadata={"data_dir": str(data_dir)}, tasks=["taiyi_kuake_qic"])
    metadata = zero_shot["configs"]["taiyi_kuake_qic"]["metadata"]
    assert metadata["fewshot_source"] is None  # nothing was shown, so nothing came from the samples
    assert list(metadata["provenance"]["data_files"]) == [f"{spec.data_subdir}/{eval_name}"]


def test_real_data_run_records_its_files_and_matches_the_registry_count(tmp_path, shared_data_dir):
    _, results, _ = _evaluate(tmp_path, metadata={"data_dir": str(shared_data_dir)}, tasks=["taiyi_kuake_qic"], num_fewshot=1)
    metadata = results["configs"]["taiyi_kuake_qic"]["metadata"]
    assert_contract(metadata)
    assert metadata["data_source"] == "data" and metadata["fewshot_source"] == "data"
    spec = get_spec("kuake_qic")
    assert metadata["eval_units"] == metadata["expected_units"] == spec.expected[spec.eval_split].units
    assert metadata["provenance"]["data_files"] == {
        f"{spec.data_subdir}/{name}": _sha256(shared_data_dir / spec.data_subdir / name)
        for name in (spec.files["dev"], spec.files["train"])
    }


def test_an_older_results_file_lacks_every_key():
    missing = missing_keys({"data_source": "data", "eval_units": 3, "provenance": {"git_commit": None}})
    assert "budget" in missing and "provenance.data_files" in missing and "data_source" not in missing


# ------------------------------------------------------------------------------ BERT results files


@pytest.mark.parametrize("options", [4, 5])
def test_bert_results_file_carries_the_same_provenance(tmp_path, options):
    loaded = load_split("medqa_mcmle", mcmle_options=options)
    examples = loaded.examples[:3]
    predictions = [Prediction(choice=ex.answer) for ex in examples]
    path = write_run(
        loaded.spec, examples, predictions, model_name="tiny-bert", model_args={}, data_source=loaded.source,
        results_dir=tmp_path, n_original=len(loaded.examples), split=loaded.split, limit=3,
        data_files=loaded.paths, data_root=loaded.root,
    )
    data = json.loads(path.read_text(encoding="utf-8"))
    metadata = data["configs"]["taiyi_medqa_mcmle"]["metadata"]
    assert_contract(metadata)
    assert metadata["variant"] == {"mcmle_options": options}
    assert metadata["fewshot_source"] is None and metadata["budget"]["cut"] is False
    (eval_file,) = loaded.paths
    assert metadata["provenance"]["data_files"] == {
        "samples/" + eval_file.relative_to(SAMPLES_DIR).as_posix(): _sha256(eval_file)
    }
    assert data["git_hash"] == _git_head()


def test_bert_writer_finds_the_data_files_itself(tmp_path):
    loaded = load_split("kuake_qic")
    path = write_run(
        loaded.spec, loaded.examples[:2], [Prediction(labels=set(ex.labels)) for ex in loaded.examples[:2]],
        model_name="tiny-bert", model_args={}, data_source="samples", results_dir=tmp_path,
        n_original=len(loaded.examples), split=loaded.split,
    )
    metadata = json.loads(path.read_text(encoding="utf-8"))["configs"]["taiyi_kuake_qic"]["metadata"]
    assert_contract(metadata)
    assert metadata["variant"] == {}


# ------------------------------------------------------------------------------ provenance helpers


def test_git_commit_is_none_outside_a_checkout_and_never_crashes(tmp_path, monkeypatch):
    monkeypatch.setattr(provenance, "_SOURCE_ROOT", tmp_path)
    provenance._checkout.cache_clear()
    try:
        assert provenance.git_commit() is None and provenance.git_dirty() is None
        provenance._checkout.cache_clear()
        monkeypatch.setenv("PATH", str(tmp_path))  # no git at all
        assert provenance.git_commit() is None
    finally:
        provenance._checkout.cache_clear()


def test_data_file_checksums_follow_the_file(tmp_path):
    path = tmp_path / "set" / "test.json"
    path.parent.mkdir()
    path.write_text("one", encoding="utf-8")
    first = provenance.data_files([(path, tmp_path)])
    path.write_text("two!", encoding="utf-8")  # another size: the cache must not answer
    second = provenance.data_files([(path, tmp_path)])
    assert first == {"set/test.json": hashlib.sha256(b"one").hexdigest()}
    assert second == {"set/test.json": hashlib.sha256(b"two!").hexdigest()}
