"""The registry is the one place per dataset.

- A 14th set in an existing format (IOB NER) is one registry entry, one task YAML and its sample
  files: it runs through lm-eval (the scripted oracle), `taiyi data check`, the BERT baseline and
  the leaderboard with nothing else changed.
- The group YAMLs list exactly the members the registry gives them (`GROUP_FILTERS`).
- No module outside the registry mentions a set's key; the task YAMLs carry no metric list,
  budget or prompt version of their own; the variant the loader resolves is the one the parser
  and the scorer get.
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
import shutil
import sys
from contextlib import redirect_stdout
from pathlib import Path
from types import MappingProxyType, ModuleType

import lm_eval
import pytest
import yaml
from lm_eval.loggers import EvaluationTracker
from lm_eval.tasks import TaskManager

from taiyi_bench.harness import registry
from taiyi_bench.harness.apps.cli import main as taiyi_main
from taiyi_bench.harness.apps.data_check import check_data_dir
from taiyi_bench.harness.errors import ConfigError
from taiyi_bench.harness.lmeval.plugin import tasks_dir
from taiyi_bench.harness.lmeval.templates import template_name
from taiyi_bench.harness.loading import load_split
from taiyi_bench.harness.paths import SAMPLES_DIR
from taiyi_bench.harness.prompts import PROMPT_VERSION
from taiyi_bench.harness.registry import REGISTRY, DatasetSpec, SplitCounts, get_spec, iter_specs, registered
from taiyi_bench.harness.scoring import metric_names

from scripted_lm import oracle_lm
from task_files import metric_list_names, read_task_yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
TASK_TEMPLATES = {
    "ner": "_taiyi_ner_yaml", "re": "_taiyi_re_yaml", "tc": "_taiyi_tc_yaml", "qa": "_taiyi_qa_yaml",
}


# ------------------------------------------------------------------------------ the entries


def test_every_entry_is_complete_and_consistent():
    for spec in iter_specs():
        registry.validate(spec)
        assert spec.matching_rule in registry.MATCHING_RULES[spec.task_type], spec.key
        assert spec.headline_metric in metric_names(spec), spec.key
    assert list(registry.PAPER_ORDER) == list(REGISTRY)
    # The paper's sets (what published tables cover) are registered, in the registry's order.
    assert [key for key in REGISTRY if key in registry.PAPER_SETS] == list(registry.PAPER_SETS)


def test_register_refuses_a_taken_key_and_an_incomplete_entry():
    with pytest.raises(ConfigError, match="already registered"):
        registry.register(get_spec("cmeee"))
    broken = dataclasses.replace(get_spec("cmeie"), key="broken_re", relation_signatures=(), max_gen_toks=0)
    with pytest.raises(ConfigError, match="max_gen_toks.*relation_signatures") as raised:
        registry.register(broken)
    assert "broken_re" in str(raised.value)
    with pytest.raises(ConfigError, match="reader"):
        registry.register(dataclasses.replace(get_spec("hoc"), key="no_reader", reader="read_nothing"))
    assert "broken_re" not in REGISTRY and "no_reader" not in REGISTRY


def test_the_entries_are_data_and_a_bad_entry_names_the_file_the_set_and_the_field(tmp_path):
    """The registry's entries are `harness/datasets.yaml`; a malformed entry fails at load with one
    message naming the file, the set and the field."""
    specs = registry.load_specs()
    assert [spec.key for spec in specs] == list(registry.PAPER_SETS)
    assert specs == [REGISTRY[spec.key] for spec in specs]
    entry = yaml.safe_load(registry.DATA_FILE.read_text(encoding="utf-8"))["datasets"]["hoc"]
    cases = {
        "empty": ({**entry, "labels": []}, "labels is empty"),
        "shape": ({**entry, "labels": "Chemical"}, "labels must be a list"),
        "unknown": ({**entry, "lables": ["x"]}, "lables"),
        "missing": ({name: value for name, value in entry.items() if name != "reader"}, "'reader'"),
        "counts": ({**entry, "expected": {"test": {"unit": 5}}}, r"expected\['test'\]: .*'unit'"),
        "source": ({**entry, "sources": [{**entry["sources"][0], "url": "ftp://x/"}]}, "url must be http"),
    }
    for name, (bad, message) in cases.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump({"datasets": {"bad_set": bad}}, allow_unicode=True), encoding="utf-8")
        with pytest.raises(ConfigError, match=message) as raised:
            registry.load_specs(path)
        assert f"dataset 'bad_set' ({path})" in str(raised.value), name
    assert "bad_set" not in REGISTRY


def test_a_set_key_written_twice_in_the_data_file_is_an_error_not_an_overwrite(tmp_path):
    """PyYAML keeps the last of two equal keys; a copied entry left unrenamed would replace a paper
    set without a word. The loader refuses it, naming the file and the line."""
    text = registry.DATA_FILE.read_text(encoding="utf-8")
    copied = text.replace("\ndatasets:\n", "\ndatasets:\n  hoc: {}\n", 1)
    assert copied != text
    path = tmp_path / "datasets.yaml"
    path.write_text(copied, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"'hoc' is written twice") as raised:
        registry.load_specs(path)
    assert str(path) in str(raised.value) and "line" in str(raised.value)
    path.write_text("datasets: [unclosed", encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(str(path))):
        registry.load_specs(path)


def _quoted_or_identifier(keys: list[str]) -> re.Pattern[str]:
    # `\b` counts "_" as a word character: `read_hoc` and `mcmle_options` do not match `hoc` or
    # `medqa_mcmle`, while "hoc", `taiyi_hoc` and `spec.key == "hoc"` do.
    alternatives = "|".join(map(re.escape, sorted(keys, key=len, reverse=True)))
    return re.compile(r"\b(?:taiyi_)?(?:" + alternatives + r")\b")


def _modules_outside_the_registry() -> list[Path]:
    folders = [REPO_ROOT / name for name in ("harness", "baselines", "finetune")]
    modules = [path for folder in folders for path in folder.rglob("*.py")]
    modules += sorted((REPO_ROOT / "tasks").glob("*.py"))
    return [path for path in modules if path != REPO_ROOT / "harness" / "registry.py"]


def test_no_module_outside_the_registry_mentions_a_dataset_key_or_variant_option():
    options = sorted({spec.variant_option for spec in iter_specs() if spec.variant_option})
    assert options  # MCMLE's at least
    pattern = _quoted_or_identifier([*REGISTRY, *options])
    modules = _modules_outside_the_registry()
    assert len(modules) > 40
    found = [
        f"{path.relative_to(REPO_ROOT)}:{number}: {line.strip()}"
        for path in modules
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if pattern.search(line)
    ]
    assert found == []
    # The check itself finds what it must.
    assert pattern.search('if spec.key == "medqa_mcmle":') and pattern.search("SCHEMAS = {'cmeie': X}")
    assert pattern.search('metadata["mcmle_options"]') and pattern.search("_mcmle_options(metadata)") is None
    assert not pattern.search("read_hoc(path)")


def test_task_files_are_small_and_take_the_rest_from_the_registry_and_templates():
    """A task YAML names its set and its task-type template, nothing else: the metric list lives
    in the template, the budget in the registry, the prompt version in taiyi_bench.harness.prompts."""
    for spec in iter_specs():
        path = tasks_dir() / f"{spec.task_name}.yaml"
        text = path.read_text(encoding="utf-8")
        assert set(re.findall(r"^(\w+):", text, re.M)) == {"include", "task", "dataset_kwargs"}, spec.key
        template = template_name(spec)  # the task type's, qualified by what changes the metric list
        assert template.startswith(TASK_TEMPLATES[spec.task_type].removesuffix("_yaml")), spec.key
        assert re.search(rf"^include: {template}$", text, re.M), spec.key
        resolved = read_task_yaml(path)
        assert metric_list_names(resolved) == list(metric_names(spec)), spec.key
        assert "max_gen_toks" not in resolved.get("generation_kwargs", {}), spec.key
        assert "version" not in (resolved.get("metadata") or {}), spec.key


def test_a_task_file_with_the_wrong_template_names_the_right_one(tmp_path):
    (tmp_path / "taiyi_ncbi_as_re.yaml").write_text(
        f"include: {tasks_dir() / '_taiyi_re_yaml'}\ntask: taiyi_ncbi_as_re\ndataset_kwargs:\n  taiyi_set: ncbi_disease\n",
        encoding="utf-8",
    )
    manager = TaskManager(include_path=str(tmp_path), include_defaults=False)
    hint = r"taiyi_ncbi_as_re.*metric_list.*Include the template of its task type \(_taiyi_ner_yaml\)"
    with pytest.raises(ConfigError, match=hint):
        lm_eval.simple_evaluate(model=oracle_lm(), tasks=["taiyi_ncbi_as_re"], task_manager=manager, limit=1)


def test_budget_and_prompt_version_reach_the_results_from_one_place():
    out = lm_eval.simple_evaluate(
        model=oracle_lm(), tasks=["taiyi_hoc", "taiyi_pubmedqa"],
        task_manager=TaskManager(include_path=str(tasks_dir()), include_defaults=False), limit=2,
    )
    for task in ("taiyi_hoc", "taiyi_pubmedqa"):
        assert out["versions"][task] == PROMPT_VERSION
        assert out["configs"][task]["generation_kwargs"]["max_gen_toks"] == get_spec(task).max_gen_toks


def test_the_variant_the_loader_resolves_reaches_the_parser_and_the_scorer(monkeypatch):
    from taiyi_bench.harness.lmeval import tasks as lm_eval_tasks

    seen: list[tuple[str, ...]] = []
    score_unit = lm_eval_tasks.score_unit

    def spy(spec, example, prediction):
        seen.append(spec.labels)
        return score_unit(spec, example, prediction)

    monkeypatch.setattr(lm_eval_tasks, "score_unit", spy)
    out = lm_eval.simple_evaluate(
        model=oracle_lm(), tasks=["taiyi_medqa_mcmle"],
        task_manager=TaskManager(include_path=str(tasks_dir()), include_defaults=False, metadata={"mcmle_options": 5}),
    )
    assert out["results"]["taiyi_medqa_mcmle"]["acc,none"] == 1.0
    assert seen and set(seen) == {("A", "B", "C", "D", "E")}
    assert out["configs"]["taiyi_medqa_mcmle"]["metadata"]["variant"] == {"mcmle_options": 5}
    assert load_split("medqa_mcmle", mcmle_options=5).spec.labels == ("A", "B", "C", "D", "E")


def _group_yaml_problems(folder: Path) -> list[str]:
    """How the group YAMLs in `folder` differ from the registry: a group file `GROUP_FILTERS` does
    not define (or one it defines that has no file), an unknown task, a set missing or out of order."""
    groups = {}
    for path in sorted(folder.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and "group" in data:
            groups[data["group"]] = data["task"]
    undefined = set(groups) ^ set(registry.GROUP_FILTERS)
    problems = [f"group {name}: no file, or a file GROUP_FILTERS does not define" for name in sorted(undefined)]
    for name, listed in groups.items():
        expected = [spec.task_name for spec in iter_specs(**registry.GROUP_FILTERS.get(name, {}))]
        if listed != expected:
            problems.append(f"{name}: lists {listed}, the registry gives {expected}")
    return problems


def test_group_yamls_list_what_the_registry_gives_them(tmp_path):
    assert _group_yaml_problems(tasks_dir()) == []
    # The check finds a task the registry does not know, and a registered set a group misses.
    for path in tasks_dir().glob("taiyibench*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    edited = tmp_path / "taiyibench_qa.yaml"
    edited.write_text(edited.read_text(encoding="utf-8").replace("taiyi_pubmedqa", "taiyi_nope"), encoding="utf-8")
    (problem,) = _group_yaml_problems(tmp_path)
    assert "taiyi_nope" in problem
    with registered(dataclasses.replace(get_spec("hoc"), key="hoc_copy")):
        assert {problem.split(":")[0] for problem in _group_yaml_problems(tasks_dir())} == {"taiyibench", "taiyibench_en", "taiyibench_tc"}


# ------------------------------------------------------------------------------ a 14th set


def _iob_counts(path: Path) -> SplitCounts:
    """Sentences and mentions of an IOB file, counted here without the reader."""
    blocks = [block for block in path.read_text(encoding="utf-8").split("\n\n") if block.strip()]
    mentions = sum(line.endswith("\tB-Disease") for block in blocks for line in block.splitlines())
    return SplitCounts(len(blocks), mentions)


@pytest.fixture
def toy_set(tmp_path: Path):
    """A new IOB NER set: the bundled NCBI-disease samples under the name TOY-NER in a data
    directory, a registry entry written as a user would, and its one task YAML."""
    data = tmp_path / "data"
    shutil.copytree(SAMPLES_DIR / "NCBI-disease", data / "TOY-NER")
    files = {"train": "train.tsv", "dev": "devel.tsv", "test": "test.tsv"}
    spec = DatasetSpec(
        key="toy_ner", display_name="TOY-NER", language="en", task_type="ner", eval_split="test",
        unit="sentence", data_subdir="TOY-NER", files=MappingProxyType(files), reader="read_iob",
        labels=("Disease",), metric="f1", max_gen_toks=128,
        expected=MappingProxyType({split: _iob_counts(data / "TOY-NER" / name) for split, name in files.items()}),
        source="the bundled NCBI-disease samples, renamed", how_to_get="copy harness/samples/NCBI-disease to TOY-NER/",
    )
    task_folder = tmp_path / "tasks"
    task_folder.mkdir()
    (task_folder / "taiyi_toy_ner.yaml").write_text(
        f"include: {tasks_dir() / '_taiyi_ner_yaml'}\ntask: taiyi_toy_ner\ndataset_kwargs:\n  taiyi_set: toy_ner\n",
        encoding="utf-8",
    )
    with registered(spec):
        yield spec, data, task_folder


def _lm_eval_run(task_folder: Path, data: Path, output: Path) -> tuple[dict, Path]:
    tracker = EvaluationTracker(output_path=str(output))
    manager = TaskManager(include_path=[str(tasks_dir()), str(task_folder)], include_defaults=False,
                          metadata={"data_dir": str(data)})
    out = lm_eval.simple_evaluate(
        model=oracle_lm(), tasks=["taiyi_toy_ner"], task_manager=manager, log_samples=True, evaluation_tracker=tracker,
    )
    samples = out.pop("samples")
    tracker.save_results_aggregated(results=out, samples=samples)
    for task, task_samples in samples.items():
        tracker.save_results_samples(task_name=task, samples=task_samples)
    (results_file,) = output.glob("**/results_*.json")
    return out, results_file


def test_a_new_set_runs_through_lm_eval(toy_set, tmp_path):
    spec, data, task_folder = toy_set
    out, _ = _lm_eval_run(task_folder, data, tmp_path / "runs" / "oracle")
    metrics = {k.split(",")[0]: v for k, v in out["results"]["taiyi_toy_ner"].items() if k.endswith(",none")}
    assert set(metrics) >= set(metric_names(spec))
    assert metrics["micro_f1"] == 1.0 and metrics["parse_fail"] == 0.0
    config = out["configs"]["taiyi_toy_ner"]
    assert config["metadata"]["data_source"] == "data"
    assert config["metadata"]["eval_units"] == spec.expected["test"].units > 0
    assert config["generation_kwargs"]["max_gen_toks"] == 128
    assert out["versions"]["taiyi_toy_ner"] == PROMPT_VERSION


def test_a_new_set_passes_the_data_check(toy_set):
    spec, data, _ = toy_set
    report = check_data_dir(data)
    toy = next(s for s in report.sets if s.spec.key == spec.key)
    assert toy.found and [r.status for r in toy.splits] == ["ok", "ok", "ok"]
    assert [s.spec.key for s in report.sets if s.found] == [spec.key]
    output = io.StringIO()
    with redirect_stdout(output):
        assert taiyi_main(["data", "check", str(data)]) == 0
    assert "TOY-NER" in output.getvalue() and f"1/{len(REGISTRY)} sets found" in output.getvalue()


def test_a_new_set_s_samples_are_its_files_only(toy_set, tmp_path, monkeypatch):
    """Its sample text is its files in the bundled samples folder, under the folder and file names
    of its registry entry: without a data directory they are found, checked and evaluated."""
    spec, data, task_folder = toy_set
    samples = tmp_path / "samples"
    samples.mkdir()
    for folder in SAMPLES_DIR.iterdir():
        (samples / folder.name).symlink_to(folder)
    shutil.copytree(data / spec.data_subdir, samples / spec.data_subdir)
    for module in list(sys.modules.values()):  # every module that reads the samples folder
        if isinstance(module, ModuleType) and module.__name__.startswith("taiyi_bench.") and vars(module).get("SAMPLES_DIR") == SAMPLES_DIR:
            monkeypatch.setattr(module, "SAMPLES_DIR", samples)
    report = check_data_dir(None)
    assert report.source == "samples" and all(s.found for s in report.sets) and report.exit_code(strict=True) == 0
    assert len(report.sets) == len(REGISTRY) and report.sets[-1].spec.key == spec.key
    manager = TaskManager(include_path=[str(tasks_dir()), str(task_folder)], include_defaults=False)
    out = lm_eval.simple_evaluate(model=oracle_lm(), tasks=["taiyi_toy_ner"], task_manager=manager)
    assert out["results"]["taiyi_toy_ner"]["micro_f1,none"] == 1.0
    assert out["configs"]["taiyi_toy_ner"]["metadata"]["data_source"] == "samples"


@pytest.mark.slow
def test_a_new_set_trains_a_bert_baseline_and_reaches_the_leaderboard(toy_set, tmp_path):
    from taiyi_bench.baselines import runner
    from taiyi_bench.harness.random_models import build_tiny_bert

    spec, data, task_folder = toy_set
    runs = tmp_path / "runs"
    bert = runner.train(
        spec.key, encoder=str(build_tiny_bert(tmp_path / "tiny-bert")), data_dir=data, output_dir=tmp_path / "ckpt",
        hyperparameters={"max_steps": 2, "batch_size": 8, "learning_rate": 1e-3}, results_dir=runs / "bert",
    )
    assert bert.results_path is not None and 0.0 <= bert.metrics["micro_f1"] <= 1.0
    assert json.loads(bert.results_path.read_text(encoding="utf-8"))["results"]["taiyi_toy_ner"]
    _lm_eval_run(task_folder, data, runs / "oracle")

    out_dir = tmp_path / "leaderboard"
    output = io.StringIO()
    with redirect_stdout(output):
        assert taiyi_main(["leaderboard", str(runs), "--out", str(out_dir), "--formats", "md"]) == 0
    table = (out_dir / "leaderboard.md").read_text(encoding="utf-8")
    row = next(line for line in table.splitlines() if "TOY-NER" in line)
    assert "100.0" in row  # the oracle's cell; the BERT column has its own
    assert f"{bert.metrics['micro_f1'] * 100:.1f}" in row
    # The published columns keep their averages: those span the paper's 13 sets, not the new one.
    average = next(line for line in table.splitlines() if "Average (13 sets)" in line)
    assert "65.1" in average  # Taiyi's Table 2 mean, recomputed from its 13 cells
    assert "TOY-NER: registered since the paper, shown but in no average" in " ".join(table.split())
