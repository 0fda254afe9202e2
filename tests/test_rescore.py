"""`taiyi rescore` (taiyi_bench.harness.apps.rescore): logged outputs scored again under the current rules.

Checked on copies of the committed reference slices (real SmolLM2 output, aggregates written by
lm-eval itself): re-aggregating unchanged units reproduces every value lm-eval wrote, a unit
whose stored values are stale is restored and the aggregates follow, and a second pass changes
nothing.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from taiyi_bench.harness.apps.cli import main
from taiyi_bench.harness.apps.rescore import rescore
from taiyi_bench.harness.results_io import samples_beside
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
