"""`taiyi rescore` (taiyi_bench.harness.apps.rescore): logged outputs scored again under the current rules.

Checked on copies of the committed reference slices (real SmolLM2 output, aggregates written by
lm-eval itself): re-aggregating unchanged units reproduces every value lm-eval wrote, a unit
whose stored values are stale is restored and the aggregates follow, and a second pass changes
nothing. Discriminative runs, on copies of the committed MiniLM runs and on fresh BERT-writer
runs: one rescored from its kept predictions (predicted spans, or samples) is what `write_run`
writes for the same predictions now; one with no per-unit file is brought up only where no rules
change since its version touches it, else it is listed with the reason.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from taiyi_bench.baselines.results import keep_predicted_spans, write_run
from taiyi_bench.harness.apps.cli import main
from taiyi_bench.harness.apps.rescore import rescore
from taiyi_bench.harness.loading import load_split
from taiyi_bench.harness.paths import SAMPLES_DIR
from taiyi_bench.harness.records import Prediction
from taiyi_bench.harness.registry import get_spec
from taiyi_bench.harness.results_io import PER_TYPE_KEY, samples_beside
from taiyi_bench.harness.scoring import SCORING_RULES_VERSION

REFERENCE = Path(__file__).resolve().parents[1] / "results" / "reference"
SLICES = sorted(REFERENCE.glob("smollm2-base/*/*/*/results_*.json"))


def _copy_run(results: Path, to: Path) -> Path:
    folder = to / results.parent.relative_to(REFERENCE)
    shutil.copytree(results.parent, folder)
    return folder / results.name


def _as_version_1(results: Path) -> dict:
    data = json.loads(results.read_text(encoding="utf-8"))
    for config in data["configs"].values():
        config["metadata"]["provenance"]["scoring_rules_version"] = 1
        config["metadata"].pop("rescored", None)
    results.write_text(json.dumps(data), encoding="utf-8")
    return data


def _task(data: dict) -> str:
    return next(iter(data["results"]))


@pytest.mark.skipif(not SLICES, reason="no reference slices committed")
@pytest.mark.parametrize("original", SLICES, ids=lambda p: p.parents[2].name)
def test_reaggregating_unchanged_units_reproduces_what_lm_eval_wrote(original: Path, tmp_path: Path):
    results = _copy_run(original, tmp_path)
    before = _as_version_1(results)
    task = _task(before)
    samples = samples_beside(results, task)
    rows_before = samples.read_text(encoding="utf-8")

    outcomes, _ = rescore([results])

    after = json.loads(results.read_text(encoding="utf-8"))
    (outcome,) = outcomes
    assert outcome.status == "rescored" and outcome.units == 50
    block_before, block_after = before["results"][task], after["results"][task]
    assert block_after.keys() == block_before.keys()
    if outcome.units_changed == 0:  # every value, stderr included, as lm-eval aggregated it
        for key, value in block_before.items():
            if isinstance(value, float):
                assert block_after[key] == pytest.approx(value, abs=1e-12), key
            else:
                assert block_after[key] == value, key
    else:  # units moved (a parser fix): the aggregates are those of the rewritten units
        rows = [json.loads(x) for x in samples.read_text(encoding="utf-8").splitlines()]
        metric = "micro_f1" if "micro_f1,none" in block_after else "acc"
        if metric == "acc":
            expected = sum(r["acc"] for r in rows) / len(rows)
        else:
            tp, fp, fn = (sum(r[metric][i] for r in rows) for i in range(3))
            expected = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
        assert block_after[f"{metric},none"] == pytest.approx(expected, abs=1e-12)
        assert block_after["parse_fail,none"] == pytest.approx(sum(r["parse_fail"] for r in rows) / len(rows))
    metadata = after["configs"][task]["metadata"]
    assert metadata["provenance"]["scoring_rules_version"] == SCORING_RULES_VERSION
    assert metadata["rescored"]["from_scoring_rules_version"] == 1
    assert metadata["rescored"]["units_changed"] == outcome.units_changed
    if outcome.units_changed == 0:
        assert [json.loads(x) for x in samples.read_text(encoding="utf-8").splitlines()] == [
            json.loads(x) for x in rows_before.splitlines()]


@pytest.mark.skipif(not SLICES, reason="no reference slices committed")
def test_a_stale_unit_is_restored_and_the_aggregates_follow(tmp_path: Path, capsys):
    original = next(p for p in SLICES if "medqa_usmle" in str(p))
    results = _copy_run(original, tmp_path)
    data = _as_version_1(results)
    task = _task(data)
    samples = samples_beside(results, task)
    rows = [json.loads(x) for x in samples.read_text(encoding="utf-8").splitlines()]
    # Pretend the old rules scored the first wrong unit right: stored acc 1, aggregate one unit up.
    stale = next(i for i, row in enumerate(rows) if row["acc"] == 0)
    rows[stale]["acc"] = rows[stale]["score"] = 1
    samples.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    true_acc = data["results"][task]["acc,none"]
    data["results"][task]["acc,none"] = true_acc + 1 / 50
    results.write_text(json.dumps(data), encoding="utf-8")

    assert main(["rescore", str(tmp_path), "--check"]) == 1
    assert json.loads(results.read_text(encoding="utf-8"))["results"][task]["acc,none"] == pytest.approx(true_acc + 1 / 50)

    assert main(["rescore", str(tmp_path)]) == 0
    shown = capsys.readouterr().out
    assert "1/50 units moved" in shown
    after = json.loads(results.read_text(encoding="utf-8"))
    assert after["results"][task]["acc,none"] == pytest.approx(true_acc)
    assert json.loads(samples.read_text(encoding="utf-8").splitlines()[stale])["acc"] == 0

    # Idempotent: a second pass finds everything current and writes nothing.
    stamp = results.stat().st_mtime_ns
    outcomes, _ = rescore([tmp_path])
    assert [o.status for o in outcomes] == ["current"]
    assert results.stat().st_mtime_ns == stamp
    assert main(["rescore", str(tmp_path), "--check"]) == 0


def test_a_malformed_samples_line_is_named(tmp_path: Path, capsys):
    if not SLICES:
        pytest.skip("no reference slices committed")
    results = _copy_run(SLICES[0], tmp_path)
    data = _as_version_1(results)
    samples = samples_beside(results, _task(data))
    lines = samples.read_text(encoding="utf-8").splitlines()
    lines[3] = lines[3][:40]
    samples.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert main(["rescore", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"{samples}, line 4: not valid JSON" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("damage", ["results not a mapping", "doc not a unit"])
def test_a_damaged_run_is_one_message_naming_the_file(tmp_path: Path, capsys, damage: str):
    if not SLICES:
        pytest.skip("no reference slices committed")
    results = _copy_run(SLICES[0], tmp_path)
    data = _as_version_1(results)
    samples = samples_beside(results, _task(data))
    if damage == "results not a mapping":
        data["results"] = 5
        results.write_text(json.dumps(data), encoding="utf-8")
        named = str(results)
    else:
        rows = [json.loads(x) for x in samples.read_text(encoding="utf-8").splitlines()]
        rows[2]["doc"] = {"id": "x"}
        samples.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
        named = f"{samples}, sample 3"
    before = samples.read_bytes()
    assert main(["rescore", str(tmp_path)]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert named in err.replace(" ", "") or named in err
    assert "Traceback" not in err
    assert samples.read_bytes() == before  # nothing rewritten


# ------------------------------------------------------------------------------ discriminative runs

MINILM = {path.parents[2].name: path for path in REFERENCE.glob("minilm/*/*/*/results_*.json")}
# What a rescore rewrites in a BERT run's results file, each keyed by task: all a fresh run would
# write differently under other rules.
SCORED_PARTS = (("results",), (PER_TYPE_KEY,), ("higher_is_better",), ("task_hashes",))


def _as_version(results: Path, version: int, drop: str | None = None) -> dict:
    """The run as if scored under rules `version` (and without the metric `drop`)."""
    data = json.loads(results.read_text(encoding="utf-8"))
    task = _task(data)
    data["configs"][task]["metadata"]["provenance"]["scoring_rules_version"] = version
    data["configs"][task]["metadata"].pop("rescored", None)
    block = data["results"][task]
    for key in [k for k in block if drop and k.split(",")[0] in (drop, f"{drop}_stderr")]:
        del block[key]
    results.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    return data


def _span_predictions(examples, rows: list[dict]) -> list[Prediction]:
    """A span model's predictions as NerBaseline builds them: each mention is the text at its span."""
    return [Prediction(entities={(t, ex.text[s:e]) for t, s, e in row["spans"]},
                       spans=frozenset((t, s, e) for t, s, e in row["spans"])) for ex, row in zip(examples, rows, strict=True)]


def _fresh_write_run(spec, loaded, examples, predictions, block: dict, tmp_path: Path, unit_values=None) -> tuple[Path, dict]:
    extra = {k.split(",")[0]: v for k, v in block.items() if k.startswith("seqeval_") and "_stderr" not in k}
    path = write_run(spec, examples, predictions, model_name="fresh", model_args={}, data_source=loaded.source,
                     results_dir=tmp_path / "fresh", n_original=len(loaded.examples), split=loaded.split,
                     extra_metrics=extra, extra_unit_values=unit_values, data_files=loaded.paths, data_root=loaded.root)
    return path, json.loads(path.read_text(encoding="utf-8"))


def _scored_parts(data: dict, task: str) -> dict:
    return {"metric_list": data["configs"][task]["metric_list"], **{part[0]: data[part[0]][task] for part in SCORED_PARTS}}


@pytest.mark.skipif("ncbi_disease" not in MINILM, reason="no committed MiniLM NCBI-disease run")
def test_a_span_model_run_rescored_from_its_kept_spans_is_what_a_fresh_run_writes(tmp_path: Path, shared_data_dir: Path):
    results = _copy_run(MINILM["ncbi_disease"], tmp_path)
    stale = _as_version(results, 3)
    task = _task(stale)
    # Stale aggregates, as the old lenient rule left them: the rescore must recompute, not keep.
    stale["results"][task]["lenient_micro_f1,none"] = 0.5
    stale["results"][task]["verdicts,none"] = {"matched": 1}
    results.write_text(json.dumps(stale), encoding="utf-8")
    [spans] = results.parent.glob("predicted_spans_*.jsonl")

    assert main(["rescore", str(tmp_path), "--data-dir", str(shared_data_dir)]) == 0

    spec = get_spec(task)
    loaded = load_split(spec, data_dir=shared_data_dir)
    rows = [json.loads(line) for line in spans.read_text(encoding="utf-8").splitlines()]
    _, fresh = _fresh_write_run(spec, loaded, loaded.examples, _span_predictions(loaded.examples, rows), stale["results"][task], tmp_path)
    after = json.loads(results.read_text(encoding="utf-8"))
    assert _scored_parts(after, task) == _scored_parts(fresh, task)  # every value, exactly
    assert after["task_hashes"] == stale["task_hashes"]  # the data is the run's own
    assert after["results"][task]["verdicts,none"].get("lenient_refused", 0) > 0  # the v4 bound met real predictions
    metadata = after["configs"][task]["metadata"]
    assert metadata["provenance"]["scoring_rules_version"] == SCORING_RULES_VERSION
    assert metadata["rescored"]["from_scoring_rules_version"] == 3 and metadata["rescored"]["units_changed"] is None


@pytest.mark.parametrize("kept", ["samples", "predicted spans"])
def test_a_bert_run_rescored_from_what_it_kept_is_what_a_fresh_run_writes(tmp_path: Path, kept: str):
    spec = get_spec("ncbi_disease")
    loaded = load_split(spec, data_dir=SAMPLES_DIR)
    examples = loaded.examples
    # Spans a tagger could give: the gold mentions, the first one stretched to the end of the text
    # where that is long (a copy the v4 bound refuses).
    rows = [{"spans": [[e.type, e.start, len(ex.text) if i == 0 and len(ex.text) - e.start > 60 else e.end]
                       for i, e in enumerate(ex.entities)]} for ex in examples]
    predictions = _span_predictions(examples, rows)
    block = {"seqeval_f1,none": 0.25}
    seqeval = [{"seqeval_f1": [index, 1, 0]} for index in range(len(examples))]
    results, first = _fresh_write_run(spec, loaded, examples, predictions, block, tmp_path, seqeval)
    task = _task(first)
    assert first["results"][task]["verdicts,none"].get("lenient_refused", 0) > 0
    stale = _as_version(results, 3)
    stale["results"][task]["lenient_micro_f1,none"] = 0.5
    results.write_text(json.dumps(stale), encoding="utf-8")
    samples = samples_beside(results, task)
    rows_before = [json.loads(line) for line in samples.read_text(encoding="utf-8").splitlines()]
    for row in rows_before[:2]:  # stale per-unit values too
        row["lenient_micro_f1"] = [0, 0, 0]
    samples.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows_before) + "\n", encoding="utf-8")
    if kept == "predicted spans":  # as `taiyi reference` keeps a large samples file's spans
        keep_predicted_spans(samples)
        samples.unlink()

    outcomes, _ = rescore([results], data_dir=SAMPLES_DIR)

    assert [(o.status, o.units_changed) for o in outcomes] == [("rescored", 2 if kept == "samples" else None)]
    after = json.loads(results.read_text(encoding="utf-8"))
    assert _scored_parts(after, task) == _scored_parts(first, task)
    if kept == "predicted spans":
        return
    rows_after = [json.loads(line) for line in samples.read_text(encoding="utf-8").splitlines()]
    assert [{"seqeval_f1": r["seqeval_f1"]} for r in rows_after] == seqeval  # the family's values kept
    assert rows_after[0]["lenient_micro_f1"] != [0, 0, 0] and rows_after[0]["prediction"]["spans"] == sorted(map(list, predictions[0].spans))


@pytest.mark.skipif("ncbi_disease" not in MINILM, reason="no committed MiniLM NCBI-disease run")
def test_a_truncated_or_foreign_predicted_spans_file_is_refused_naming_it(tmp_path: Path, shared_data_dir: Path, capsys, monkeypatch):
    results = _copy_run(MINILM["ncbi_disease"], tmp_path)
    _as_version(results, 3)
    [spans] = results.parent.glob("predicted_spans_*.jsonl")
    before = results.read_bytes()
    lines = spans.read_text(encoding="utf-8").splitlines()

    monkeypatch.delenv("TAIYI_DATA_DIR", raising=False)
    outcomes, _ = rescore([results])  # no data to read the units from: listed, not guessed
    assert [(o.status, spans.name in (o.reason or "")) for o in outcomes] == [("needs the data", True)]

    spans.write_text("\n".join(lines[:-3]) + "\n", encoding="utf-8")
    assert main(["rescore", str(tmp_path), "--data-dir", str(shared_data_dir)]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert f"{spans}: {len(lines) - 3} unit(s), but the run scored {len(lines)}" in err and "Traceback" not in err

    spans.write_text("\n".join([lines[0], lines[0], *lines[2:]]) + "\n", encoding="utf-8")  # a unit twice
    assert main(["rescore", str(tmp_path), "--data-dir", str(shared_data_dir)]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert f"{spans}, line 2: expected" in err and "Traceback" not in err
    assert results.read_bytes() == before


@pytest.mark.parametrize(("run", "version"), [("hoc", 3), ("pubmedqa", 3), ("kuake_qic", 3), ("bc5cdr_re", 1)])
def test_a_results_only_run_no_change_touches_is_brought_up_with_the_reason(tmp_path: Path, run: str, version: int):
    if run not in MINILM:
        pytest.skip(f"no committed MiniLM {run} run")
    results = _copy_run(MINILM[run], tmp_path)
    before = _as_version(results, version)
    task = _task(before)

    assert main(["rescore", str(tmp_path), "--check"]) == 1
    (outcome,) = rescore([results])[0]

    assert (outcome.status, outcome.units_changed) == ("rescored", 0)
    after = json.loads(results.read_text(encoding="utf-8"))
    assert after["results"] == before["results"]  # the aggregates stay as the run wrote them
    metadata = after["configs"][task]["metadata"]
    assert metadata["provenance"]["scoring_rules_version"] == SCORING_RULES_VERSION
    assert metadata["rescored"]["units_changed"] == 0
    assert metadata["rescored"]["reason"] == outcome.reason == f"no rule change since v{version} affects this set"
    assert main(["rescore", str(tmp_path), "--check"]) == 0


@pytest.mark.parametrize(("run", "version", "drop", "said"), [
    ("pubmedqa", 1, "macro_f1_over_classes", "v3 added macro_f1_over_classes"),
    ("hoc", 2, "abstract_micro_f1", "v3 added abstract_micro_f1"),
    ("kuake_qic", 2, None, "v3 changed its scores (single-label TC's headline is accuracy"),
    ("ncbi_disease", 3, None, "v4 changed its scores (a lenient NER match is refused"),  # its spans removed
    ("medqa_usmle", 1, None, "v2 changed its scores (an echoed instruction"),  # an LLM run, its samples removed
])
def test_a_results_only_run_a_change_touches_or_that_lacks_a_new_metric_needs_a_re_run(
    tmp_path: Path, capsys, run: str, version: int, drop: str | None, said: str,
):
    original = MINILM.get(run) or next((p for p in SLICES if run in str(p)), None)
    if original is None:
        pytest.skip(f"no committed {run} run")
    results = _copy_run(original, tmp_path)
    for per_unit in [*results.parent.glob("samples_*.jsonl"), *results.parent.glob("predicted_spans_*.jsonl")]:
        per_unit.unlink()
    _as_version(results, version, drop)
    before = results.read_bytes()

    (outcome,) = rescore([results])[0]

    assert outcome.status == "needs a re-run" and outcome.reason.startswith(said)
    assert results.read_bytes() == before
    assert main(["rescore", str(tmp_path), "--check"]) == 1
    assert said in " ".join(capsys.readouterr().out.split())
