"""The committed reference runs (results/reference/, `taiyi reference`) are complete and honest.

Every results file there must cover its whole official evaluation split (units = the registry's
count) or, for a slice, exactly the first SLICE units of it; carry the provenance keys; and,
where its samples file is committed, its headline score and parse-failure rate must recompute
from the per-unit values in the samples. A truncated, hand-edited or half-written run fails here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from provenance_keys import missing_keys

from taiyi_bench.harness.apps.reference import SAMPLES_LIMIT, SLICE, compare
from taiyi_bench.harness.provenance import expected_units
from taiyi_bench.harness.registry import REGISTRY, get_spec
from taiyi_bench.harness.scoring import SCORING_RULES_VERSION, headline_metric_name

REFERENCE = Path(__file__).resolve().parents[1] / "results" / "reference"
RESULTS = sorted(REFERENCE.glob("**/results_*.json"))


def _task_blocks(path: Path):
    data = json.loads(path.read_text(encoding="utf-8"))
    by_name = {spec.task_name: spec for spec in REGISTRY.values()}
    for task, block in data["results"].items():
        if task in by_name:
            yield data, by_name[task], block


def _samples(path: Path, task: str) -> Path | None:
    found = sorted(path.parent.glob(f"samples_{task}_*.jsonl"))
    return found[-1] if found else None


def _recomputed(samples: Path, metric: str) -> tuple[float, float | None, int]:
    rows = [json.loads(line) for line in samples.read_text(encoding="utf-8").splitlines() if line.strip()]
    values = [row[metric] for row in rows]
    if isinstance(values[0], list):  # [tp, fp, fn] per unit: micro-F1 of the sums
        tp, fp, fn = np.asarray(values, dtype=np.int64).sum(axis=0)
        score = 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else 0.0
    else:
        score = float(np.mean(values))
    fails = [row["parse_fail"] for row in rows if "parse_fail" in row]
    return float(score), (float(np.mean(fails)) if fails else None), len({row["doc"]["id"] for row in rows})


@pytest.mark.skipif(not RESULTS, reason="no reference runs committed yet")
@pytest.mark.parametrize("path", RESULTS, ids=lambda p: str(p.relative_to(REFERENCE).parent))
def test_reference_run_is_complete_and_recomputes_from_its_samples(path: Path):
    blocks = list(_task_blocks(path))
    assert blocks, f"{path}: no taiyi task in it"
    for data, spec, block in blocks:
        task = spec.task_name
        metadata = data["configs"][task]["metadata"]
        assert metadata["data_source"] == "data", f"{path}: {task} did not run on the real data"
        official = expected_units(spec, spec.eval_split)
        missing = missing_keys(metadata)
        assert metadata["provenance"]["git_commit"], f"{path}: {task} does not record the commit it ran at"
        if missing == ["completeness"]:
            # Written before results files recorded `completeness`: establish it here from what
            # they do record (the unit count read and the data files' checksums).
            assert metadata["eval_units"] == official, (path, metadata["eval_units"])
            for name, digest in metadata["provenance"]["data_files"].items():
                known = spec.sha256.get(name.split("/", 1)[-1])
                assert known in (None, digest), f"{path}: {name} is not the official file"
        else:
            assert not missing, f"{path}: {task} lacks provenance {missing}"
            assert metadata["completeness"] == ("limited" if data["config"].get("limit") is not None else "full")
        counts = data["n-samples"][task]
        assert counts["original"] == official, f"{path}: {task} read {counts['original']} units, the split has {official}"
        limited = data["config"].get("limit") is not None
        assert counts["effective"] == (min(SLICE, official) if limited else official), (path, counts)

        samples = _samples(path, task)
        if samples is None:
            continue
        metric = headline_metric_name(spec)
        score, parse_fail, units = _recomputed(samples, metric)
        assert units == counts["effective"], f"{samples}: {units} distinct units, results say {counts['effective']}"
        assert score == pytest.approx(block[f"{metric},none"], abs=1e-9), f"{samples}: {metric} does not recompute"
        if parse_fail is not None and "parse_fail,none" in block:
            assert parse_fail == pytest.approx(block["parse_fail,none"], abs=1e-9)


SAMPLES = sorted(REFERENCE.glob("smollm2-*/**/samples_*.jsonl"))


@pytest.mark.skipif(not SAMPLES, reason="no reference LLM slices committed yet")
@pytest.mark.parametrize("samples", SAMPLES, ids=lambda p: str(p.relative_to(REFERENCE).parent.parent.parent))
def test_reference_outputs_score_the_same_under_the_current_parser(samples: Path):
    """Real model output, re-parsed and re-scored now, gives every unit the values recorded when it
    ran. A parser or scorer change that moves a real unit fails here: rerun that slice (its numbers
    changed) rather than leave a committed score the code no longer produces."""
    from taiyi_bench.harness.lmeval.tasks import process_results

    task = samples.name.removeprefix("samples_").rsplit("_", 1)[0]
    spec = next(s for s in REGISTRY.values() if s.task_name == task)
    moved = []
    for line in samples.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        now = process_results(row["doc"], row["filtered_resps"], spec)
        if any(now[name] != row[name] for name in row["metrics"] if name in now):
            moved.append((row["doc"]["id"], row["filtered_resps"][0][:80]))
    assert not moved, f"{samples}: {len(moved)} units score differently now, e.g. {moved[:3]}; run `taiyi rescore`"
    results = next(samples.parent.glob("results_*.json"))
    recorded = json.loads(results.read_text(encoding="utf-8"))["configs"][task]["metadata"]["provenance"]
    assert recorded["scoring_rules_version"] == SCORING_RULES_VERSION, f"{results}: run `taiyi rescore`"


@pytest.mark.skipif(not RESULTS, reason="no reference runs committed yet")
def test_samples_files_are_small_enough_to_commit():
    for samples in REFERENCE.glob("**/samples_*.jsonl"):
        assert samples.stat().st_size <= SAMPLES_LIMIT, f"{samples} is {samples.stat().st_size} bytes"


def test_comparison_pairs_units_by_id(tmp_path: Path):
    """compare() pairs the base and fine-tuned slices unit by unit (a paired test, not two
    independent means): identical runs give delta 0 and p = 1."""
    spec = get_spec("medqa_usmle")
    for part, answers in (("smollm2-base", [1, 0, 1, 1, 0, 0]), ("smollm2-ft", [1, 0, 1, 1, 0, 0])):
        folder = tmp_path / part / spec.key / "model" / "x"
        folder.mkdir(parents=True)
        lines = [json.dumps({"doc": {"id": f"u{i}"}, "acc": a, "parse_fail": 0, "filter": "none"}) for i, a in enumerate(answers)]
        (folder / f"samples_{spec.task_name}_2026.jsonl").write_text("\n".join(lines) + "\n")
        results = {"results": {spec.task_name: {"acc,none": float(np.mean(answers)), "parse_fail,none": 0.0}}}
        (folder / "results_2026.json").write_text(json.dumps(results))
    report = compare(tmp_path, n_resamples=200)
    row = report["per_set"][spec.key]
    assert row["units"] == 6 and row["delta"] == 0.0 and row["p_value"] == 1.0
    assert report["overall_macro"]["sets"] == 1


@pytest.mark.skipif(not any(REFERENCE.glob("smollm2-base/**/results_*.json")), reason="no reference slices committed yet")
def test_default_leaderboard_shows_the_reference_slices_marked():
    from taiyi_bench.harness.apps.leaderboard.build import leaderboard_table

    shown = leaderboard_table([REFERENCE], partial_shown_under=[REFERENCE], published="A")
    headers = [column.display_header for column in shown.columns]
    assert any("SmolLM2-135M-Instruct" in h and "[slice of 50]" in h for h in headers), headers
    assert "SOTA" in headers  # beside the published columns
    hidden = leaderboard_table([REFERENCE], published="A")  # any other folder: partial runs stay out
    assert not any("[slice of 50]" in column.display_header for column in hidden.columns)


def test_the_tuned_reference_command_takes_the_format_from_the_recipe(tmp_path):
    """A recipe that trains in `eod` is evaluated in `eod` (no chat template), never in a
    format assumed by the reference plan: the adapter's run recorded it."""
    from taiyi_bench.finetune.adapter_eval import eval_record
    from taiyi_bench.finetune.config import load_recipe
    from taiyi_bench.harness.apps.reference import RECIPE, adapter_dir, tuned_command
    from taiyi_bench.harness.integrity import STAGE_MARKER

    def tuned(recipe: str) -> list[str]:
        work = tmp_path / recipe
        adapter_dir(work).mkdir(parents=True)
        record = {"eval": eval_record(load_recipe(recipe), "base")}
        (adapter_dir(work) / STAGE_MARKER).write_text(json.dumps(record), encoding="utf-8")
        return tuned_command(work, "hoc", tmp_path / "r", tmp_path / "d", 8)

    eod = tuned("taiyi1_qwen7b_qlora")
    args = eod[eod.index("--model_args") + 1]
    assert "prompt_format=eod" in args and "eod_token=<|endoftext|>" in args
    assert "--apply_chat_template" not in eod
    chat = tuned(RECIPE)
    assert "prompt_format=chat_template" in chat[chat.index("--model_args") + 1] and "--apply_chat_template" in chat
