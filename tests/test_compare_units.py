"""`taiyi compare` (issue 22): units ranked by their own score, per-type counts only where the
gold has the type, labels outside the label set as one group, Chinese kept readable in the JSON,
no p-value or interval on few units, and tables that fit 80 columns. Small runs are written by the
BERT writer over the bundled samples; the 80-column check reads the committed reference runs."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from taiyi_bench.baselines.results import write_run
from taiyi_bench.harness.apps.cli import main
from taiyi_bench.harness.apps.compare import TYPE_CAPTION, compare_runs, comparison_json, render_terminal
from taiyi_bench.harness.apps.leaderboard.bootstrap import too_few_units
from taiyi_bench.harness.apps.leaderboard.table import MISSING
from taiyi_bench.harness.loading import load_split
from taiyi_bench.harness.records import Example, Prediction
from taiyi_bench.harness.registry import get_spec

REFERENCE = Path(__file__).resolve().parents[1] / "results" / "reference"
UNITS = 5


def _examples(key: str) -> list[Example]:
    return load_split(key, get_spec(key).eval_split, None).examples[:UNITS]


def _gold(example: Example) -> Prediction:
    return Prediction(entities={(e.type, e.mention) for e in example.entities}, labels=set(example.labels))


def _run(root: Path, name: str, key: str, predictions: list[Prediction]) -> Path:
    examples = _examples(key)
    return write_run(get_spec(key), examples, predictions, model_name=name, model_args={}, data_source="samples",
                     results_dir=root / name, n_original=len(examples), split=get_spec(key).eval_split)


def _render(comparison, width: int = 80, top: int = 10) -> str:
    console = Console(width=width, record=True, file=io.StringIO())
    render_terminal(comparison, console, top=top)
    return console.export_text()


def _one_line(text: str) -> str:
    return " ".join(text.split())


def test_a_partial_find_is_listed_ranked_by_the_unit_score_gap(tmp_path):
    examples = _examples("cmeee")
    with_three = [i for i, e in enumerate(examples) if len(e.entities) >= 3][:3]
    assert len(with_three) == 3  # the bundled samples' units 1-3 have three gold mentions each
    partial, extra, same_score = (examples[i] for i in with_three)
    gold_mentions = sorted((e.type, e.mention) for e in partial.entities)
    a = [_gold(e) for e in examples]
    b = [_gold(e) for e in examples]
    a[with_three[0]] = Prediction(entities=set(gold_mentions[:2]))  # 2 of 3: F1 0.8
    b[with_three[0]] = Prediction()  # nothing found: F1 0, and neither run is exactly right
    b[with_three[1]] = Prediction(entities={*a[with_three[1]].entities, ("dru", "水")})  # one spurious: F1 6/7
    a[with_three[2]] = Prediction(entities={("dru", "水")})  # both F1 0, B with two more errors
    b[with_three[2]] = Prediction(entities={("dru", "水"), ("dru", "火"), ("dru", "土")})
    comparison = compare_runs(_run(tmp_path, "a", "cmeee", a), _run(tmp_path, "b", "cmeee", b))
    data = comparison_json(comparison, top=10)["tasks"]["taiyi_cmeee"]
    assert (data["a_higher"], data["b_higher"], data["both_right"], data["tied_below"]) == (2, 0, 2, 1)
    listed = data["differing_units"]
    assert [u["id"] for u in listed] == [partial.id, extra.id, same_score.id]
    assert [u["gap"] for u in listed] == pytest.approx([0.8, 1 - 6 / 7, 0.0])
    first = listed[0]
    assert {k: first["a"][k] for k in ("score", "tp", "fp", "fn")} == pytest.approx({"score": 0.8, "tp": 2, "fp": 0, "fn": 1})
    assert {k: first["b"][k] for k in ("score", "tp", "fp", "fn")} == {"score": 0.0, "tp": 0, "fp": 0, "fn": 3}
    assert [item["verdict"] for item in first["b"]["errors"]] == ["missed"] * 3 and len(first["gold"]) == 3
    printed = _render(comparison)
    assert f"taiyi_cmeee unit {partial.id}: A F1 0.80 (tp 2, fp 0, fn 1), B F1 0.00 (tp 0, fp 0, fn 3)" in printed
    assert f"unit {same_score.id}: A F1 0.00 (tp 0, fp 1, fn 3), B F1 0.00 (tp 0, fp 3, fn 3); the same score" in printed
    assert printed.index(f"unit {partial.id}:") < printed.index(f"unit {extra.id}:") < printed.index(f"unit {same_score.id}:")


def test_a_run_that_parsed_nothing_wins_no_type(tmp_path):
    examples = _examples("cmeee")
    failed = [Prediction(parse_failed=True, fail_reason="no line keyed by an entity type") for _ in examples]
    gold_types = {e.type for e in examples[0].entities}
    stray = next(t for t in get_spec("cmeee").labels if t not in gold_types)
    b = [_gold(e) for e in examples]
    b[0] = Prediction(entities={*b[0].entities, (stray, "水")})  # a type the unit's gold lacks: spurious
    comparison = compare_runs(_run(tmp_path, "failed", "cmeee", failed), _run(tmp_path, "b", "cmeee", b))
    data = comparison_json(comparison)["tasks"]["taiyi_cmeee"]
    assert data["a_higher"] == 0 and data["b_higher"] == UNITS
    per_type = data["per_type"]
    assert all(row["a_higher"] == 0 for row in per_type.values())  # predicting nothing won nothing
    assert per_type[stray]["b_spurious"] == 1 and per_type[stray]["a_spurious"] == 0
    assert per_type[stray]["units"] == sum(stray in {e.type for e in ex.entities} for ex in examples)
    assert _one_line(TYPE_CAPTION) in _one_line(_render(comparison))  # the table says what it counts


def test_labels_outside_the_label_set_are_one_group_and_chinese_stays_readable(tmp_path, capsys):
    examples = _examples("kuake_qic")
    echoed = f'{examples[0].text}"\x1b[31m'  # the query echoed as a label, with a quote and a control code
    a = [_gold(e) for e in examples]
    a[0] = Prediction(labels={echoed})
    out = tmp_path / "compare.json"
    code = main(["compare", str(_run(tmp_path, "a", "kuake_qic", a)),
                 str(_run(tmp_path, "b", "kuake_qic", [_gold(e) for e in examples])), "--json", str(out)])
    printed = capsys.readouterr().out
    assert code == 0
    text = out.read_text(encoding="utf-8")
    data = json.loads(text)["tasks"]["taiyi_kuake_qic"]
    assert echoed not in data["per_type"] and set(data["per_type"]) <= set(get_spec("kuake_qic").labels)
    assert data["outside_label_set"] == {"a_units": 1, "b_units": 0, "labels": [echoed]}
    assert examples[0].text in text and examples[0].labels[0] in text and "\\u" not in text.replace("\\u001b", "")
    assert f"outside the label set: {examples[0].text}" not in printed  # quoted, not shown as a bare type
    assert f"outside the label set: '{examples[0].text}\"\\x1b[31m'" in printed and "\x1b[31m" not in printed


def test_few_units_show_the_count_and_no_p_value_or_interval(tmp_path, capsys):
    examples = _examples("kuake_qic")
    wrong = [Prediction(labels={"其他"}) for _ in examples]
    out = tmp_path / "compare.json"
    code = main(["compare", str(_run(tmp_path, "a", "kuake_qic", wrong)),
                 str(_run(tmp_path, "b", "kuake_qic", [_gold(e) for e in examples])), "--json", str(out)])
    printed = capsys.readouterr().out
    reason = too_few_units(UNITS)
    assert code == 0 and reason is not None
    paired = json.loads(out.read_text(encoding="utf-8"))["tasks"]["taiyi_kuake_qic"]["paired_bootstrap"]
    assert (paired["units"], paired["p_value"], paired["ci"], paired["withheld"]) == (UNITS, None, None, reason)
    assert paired["b"] == 1.0 and paired["delta"] < 0  # the point estimates are still shown
    row = next(line for line in printed.splitlines() if line.startswith("KUAKE-QIC"))
    assert row.split()[1] == str(UNITS) and row.split()[-1] == MISSING and "100.0" in row
    assert f"p {MISSING} KUAKE-QIC: {reason}" in _one_line(printed)


def test_the_reference_comparison_fits_80_columns():
    comparison = compare_runs(REFERENCE / "smollm2-base", REFERENCE / "smollm2-ft", n_resamples=100)
    printed = _render(comparison, top=1)
    lines = printed.splitlines()
    assert f"A = {comparison.a.label}" in lines and f"B = {comparison.b.label}" in lines
    assert len(comparison.tasks) == 12
    for task in comparison.tasks.values():
        p_value = MISSING if too_few_units(task.paired.n_units) else f"{task.paired.p_value:.3f}"
        row = next(line for line in lines if line.startswith(task.spec.display_name + "  "))
        assert row.split()[-1] == p_value and "…" not in row, row
    table_lines = [line for line in lines if not line.startswith(("  ", "taiyi_", "warning:", "outside the label set:"))]
    assert max(len(line) for line in table_lines) <= 80
