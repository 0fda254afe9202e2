"""The lenient NER rule's length bound (scoring.lenient_match): a copied clause that contains a gold
mention is refused and counted, per unit, in the verdicts, in the aggregate and in the results files
of LLM and BERT runs; ordinary boundary errors still match, in English and Chinese."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from taiyi_bench.baselines.results import write_run
from taiyi_bench.harness.apps.rescore import rescore_results_file
from taiyi_bench.harness.apps.run_views import verdict_text
from taiyi_bench.harness.records import Entity, Example, Prediction
from taiyi_bench.harness.registry import get_spec
from taiyi_bench.harness.results_io import iter_sample_records, read_results, record_example, record_output
from taiyi_bench.harness.scoring import aggregate, lenient_match, mention_size, score_output, score_unit
from taiyi_bench.harness.verdicts import lenient_counts, unit_verdicts, verdict_totals

NCBI = get_spec("ncbi_disease")
CMEEE = get_spec("cmeee")
REFERENCE = Path(__file__).resolve().parents[1] / "results" / "reference"

# What SmolLM2 wrote on an NCBI-disease unit of the reference run (gold: "A-T").
AT_SENTENCE = "A-T is a recessive multi-system disorder caused by mutations in the ATM gene at 11q22-q23(ref.)"
ZH_CLAUSE = "查血气分析及电解质,有助于判断呼吸衰竭及电解质紊乱"  # SmolLM2-ft on CMeEE (gold: 呼吸衰竭)


def _unit(spec, gold: list[tuple[str, str]], predicted: set[tuple[str, str]], text: str | None = None):
    example = Example(id="u", dataset=spec.key, split="test", text=text or " ".join(m for _, m in gold),
                      entities=[Entity(t, m) for t, m in gold])
    prediction = Prediction(entities=predicted)
    unit = score_unit(spec, example, prediction)
    return unit, unit_verdicts(spec, example, prediction, unit)


def _kinds(verdicts) -> list[str]:
    return [item["verdict"] for item in verdicts["predicted"]]


def test_mention_size_counts_words_and_half_a_word_per_cjk_character():
    assert mention_size("a-t") == 2  # letters and digits between punctuation are words
    assert mention_size("familial breast cancer") == 3
    assert mention_size("2型糖尿病") == 3  # "2" and four characters
    assert mention_size("(-)") == 0


def test_a_copied_sentence_holding_the_gold_mention_is_refused_and_counted():
    unit, verdicts = _unit(NCBI, [("Disease", "A-T")], {("Disease", AT_SENTENCE)}, text=AT_SENTENCE + ".")
    assert unit.counts == (0, 1, 1) and unit.lenient == (0, 1, 1)  # no longer a lenient TP
    assert unit.lenient_refused == verdicts["lenient_refused"] == 1
    (item,) = verdicts["predicted"]
    assert item["verdict"] == "lenient_refused" and item["gold_mention"] == "a-t"
    assert verdict_text(item) == "overlap refused (length bound) (gold: a-t)"
    assert [g["verdict"] for g in verdicts["gold"]] == ["missed"]
    assert lenient_counts(verdicts) == unit.lenient


@pytest.mark.parametrize(("gold", "predicted"), [
    ("breast cancer", "familial breast cancer"),
    ("familial breast cancer", "breast cancer"),
    ("lung cancer", "small cell lung cancer"),  # two words more: still a boundary error
])
def test_boundary_errors_within_the_bound_still_match(gold, predicted):
    unit, verdicts = _unit(NCBI, [("Disease", gold)], {("Disease", predicted)})
    assert unit.lenient == (1, 0, 0) and unit.lenient_refused == 0
    assert _kinds(verdicts) == ["boundary"]


def test_the_bound_holds_both_ways_and_only_for_overlapping_pairs():
    # Far shorter than the gold: "complement" is no reading of the disease.
    unit, verdicts = _unit(NCBI, [("Disease", "hereditary deficiency of the fifth component of complement")],
                           {("Disease", "complement")})
    assert (unit.lenient, unit.lenient_refused, _kinds(verdicts)) == ((0, 1, 1), 1, ["lenient_refused"])
    assert not lenient_match("cancer", "small cell lung cancer")  # three words more than one
    # No overlap at word boundaries: spurious, not refused.
    unit, verdicts = _unit(NCBI, [("Disease", "a-t")], {("Disease", "cat is a recessive multi system disorder")})
    assert (unit.lenient_refused, _kinds(verdicts)) == (0, ["spurious"])


def test_chinese_pairs_are_bounded_alike():
    unit, verdicts = _unit(CMEEE, [("dis", "糖尿病")], {("dis", "2型糖尿病")})
    assert unit.lenient == (1, 0, 0) and _kinds(verdicts) == ["boundary"]
    assert lenient_match("肺癌", "小细胞肺癌")  # 1 and 2.5 words, as "lung cancer" and "small cell lung cancer"
    unit, verdicts = _unit(CMEEE, [("dis", "呼吸衰竭")], {("dis", ZH_CLAUSE)}, text=ZH_CLAUSE + "。")
    assert (unit.lenient, unit.lenient_refused, _kinds(verdicts)) == ((0, 1, 1), 1, ["lenient_refused"])


def test_a_prediction_matched_within_the_bound_is_not_also_refused():
    # One long prediction overlaps two gold mentions: it matches the one within the bound, and the
    # other, left without a partner, is missed and refused nothing (matching stays one-to-one).
    long = "breast cancer in women carrying brca1 mutations"
    unit, verdicts = _unit(NCBI, [("Disease", "breast cancer"), ("Disease", "breast cancer in women")],
                           {("Disease", long)}, text=long)
    assert unit.lenient == (1, 0, 1) and unit.lenient_refused == 0
    assert verdicts["predicted"][0]["gold_mention"] == "breast cancer in women"


def test_the_refused_count_sums_over_units_in_the_aggregate_and_the_verdict_totals():
    copied = Example(id="a", dataset="ncbi_disease", split="test", text=AT_SENTENCE, entities=[Entity("Disease", "A-T")])
    near = Example(id="b", dataset="ncbi_disease", split="test", text="familial breast cancer",
                   entities=[Entity("Disease", "breast cancer"), Entity("Disease", "ovarian cancer")])
    outputs = [(copied, f"Disease: {AT_SENTENCE}"), (near, "Disease: familial breast cancer; ovarian cancer in women of "
                                                          "families with a history of the disease")]
    scored = [(example, *score_output(NCBI, example, text)) for example, text in outputs]
    units = [unit for _, _, unit in scored]
    assert [u.lenient_refused for u in units] == [1, 1]
    agg = aggregate(NCBI, units)
    assert agg["lenient_refused"] == 2
    assert agg["lenient_micro_f1"] == pytest.approx(2 / (2 + 2 + 2))  # one boundary TP; two FP, two FN refused
    totals = verdict_totals(unit_verdicts(NCBI, ex, pred, unit) for ex, pred, unit in scored)
    assert totals["lenient_refused"] == 2 and totals["boundary"] == 1


def test_a_bert_run_writes_the_refused_count(tmp_path):
    example = Example(id="a", dataset="ncbi_disease", split="test", text=AT_SENTENCE, entities=[Entity("Disease", "A-T")])
    path = write_run(NCBI, [example], [Prediction(entities={("Disease", AT_SENTENCE)})], model_name="bert-x",
                     model_args={}, data_source="samples", results_dir=tmp_path, n_original=1, split="test")
    block = read_results(path)["results"][NCBI.task_name]
    assert block["verdicts,none"]["lenient_refused"] == 1 and block["lenient_micro_f1,none"] == 0.0


def _reference_run(tmp_path: Path) -> Path:
    (results,) = REFERENCE.glob("smollm2-base/ncbi_disease/*/*/results_*.json")
    copy = tmp_path / "run"
    shutil.copytree(results.parent, copy)
    return copy / results.name


def test_an_lm_eval_run_rescored_writes_the_refused_count(tmp_path):
    # The committed SmolLM2 run copied the A-T sentence; `taiyi rescore` aggregates its samples as
    # lm-eval does (the tasks' own aggregations), so its results file carries the count.
    results = _reference_run(tmp_path)
    rescore_results_file(results)
    block = read_results(results)["results"]["taiyi_ncbi_disease"]
    assert block["verdicts,none"]["lenient_refused"] >= 1


@pytest.mark.parametrize("run", ["smollm2-base", "smollm2-ft"])
@pytest.mark.parametrize("key", ["bc5cdr_chem", "bc5cdr_dise", "ncbi_disease", "cmeee"])
def test_scorer_and_verdicts_agree_on_the_reference_outputs(run, key):
    from taiyi_bench.harness.parsers import parse_output

    spec = get_spec(key)
    samples = list(REFERENCE.glob(f"{run}/{key}/*/*/samples_*.jsonl"))
    assert samples, f"no committed samples for {run}/{key}"
    for record in iter_sample_records(samples[0]):
        example = record_example(record)
        prediction = parse_output(spec, record_output(record))
        unit = score_unit(spec, example, prediction)
        verdicts = unit_verdicts(spec, example, prediction, unit)
        assert lenient_counts(verdicts) == unit.lenient, example.id
        assert _kinds(verdicts).count("lenient_refused") == unit.lenient_refused == verdicts["lenient_refused"], example.id
