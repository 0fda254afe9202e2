"""The official-rule metrics beside the text-level ones, checked by hand-computed cases, against the
official files (seqeval on the IOB tags), and on the committed reference runs.

KUAKE-QIC's headline is accuracy; HoC also reports BLURB's abstract-level micro-F1; every NER set
an occurrence-level strict F1; PubMedQA and KUAKE-QIC a macro-F1 over answer classes.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from taiyi_bench.harness import scoring
from taiyi_bench.harness.errors import ConfigError
from taiyi_bench.harness.lmeval.plugin import tasks_dir
from taiyi_bench.harness.lmeval.templates import build_templates
from taiyi_bench.harness.occurrences import occurrence_counts, place_mentions
from taiyi_bench.harness.records import Entity, Example, Prediction
from taiyi_bench.harness.registry import get_spec, validate

REPO_ROOT = Path(__file__).resolve().parents[1]
REFERENCE = REPO_ROOT / "results" / "reference"


def _aggregate(key: str, pairs: list[tuple[Example, Prediction]]) -> dict[str, float]:
    spec = get_spec(key)
    return scoring.aggregate(spec, [scoring.score_unit(spec, ex, pred) for ex, pred in pairs])


# ------------------------------------------------------------------------------ KUAKE-QIC: accuracy


def _query(i: int, label: str) -> Example:
    return Example(id=f"dev-{i}", dataset="kuake_qic", split="dev", text=f"query {i}", labels=[label])


def test_kuake_headline_is_accuracy_with_empty_and_hedged_answers() -> None:
    # 2 right, 1 wrong, 1 empty (parse failure), 1 hedge (gold + a wrong label): accuracy 2/5.
    # Micro-F1 over (unit, label) decisions: TP 3 (the hedge's gold is one), FP 2, FN 2 -> 6/10:
    # the empty and hedged answers lift it above accuracy.
    pairs = [
        (_query(0, "病情诊断"), Prediction(labels={"病情诊断"})),
        (_query(1, "治疗方案"), Prediction(labels={"治疗方案"})),
        (_query(2, "医疗费用"), Prediction(labels={"治疗方案"})),
        (_query(3, "其他"), Prediction(parse_failed=True)),
        (_query(4, "就医建议"), Prediction(labels={"就医建议", "注意事项"})),
    ]
    agg = _aggregate("kuake_qic", pairs)
    assert scoring.headline_metric_name(get_spec("kuake_qic")) == "acc"
    assert agg["score"] == agg["acc"] == pytest.approx(2 / 5)
    assert agg["micro_f1"] == pytest.approx(6 / 10)
    # Macro over the classes present: 病情诊断 1, 治疗方案 (1 TP, 1 FP) 2/3, 医疗费用 0, 其他 0,
    # 就医建议 0 (the hedge is a FN), 注意事项 0 (the hedge's extra label is a FP).
    assert agg["macro_f1_over_classes"] == pytest.approx((1 + 2 / 3) / 6)


def test_a_single_label_set_registered_with_an_f1_headline_is_refused() -> None:
    with pytest.raises(ConfigError, match='single-label tc set has metric="acc"'):
        validate(replace(get_spec("kuake_qic"), key="toy_single", metric="f1"))


# ------------------------------------------------------------------------------ HoC: abstract level


def _sentence(pmid: str, i: int, labels: list[str]) -> Example:
    return Example(id=f"{pmid}_s{i}", dataset="hoc", split="test", text=f"s{i}", labels=labels, meta={"pmid": pmid})


def test_hoc_abstract_micro_f1_merges_sentences_and_keeps_label_free_abstracts() -> None:
    a, b = "activating invasion and metastasis", "sustaining proliferative signaling"
    pairs = [
        # abstract 1: gold {a, b} over two sentences; predicted a on the "wrong" sentence, b nowhere.
        (_sentence("1", 0, [a]), Prediction(labels=set())),
        (_sentence("1", 1, [b]), Prediction(labels={a})),
        # abstract 2: no hallmark at all; a prediction there is a false positive of the abstract.
        (_sentence("2", 0, []), Prediction(labels={b})),
        (_sentence("2", 1, []), Prediction(labels={b})),
        # abstract 3: no hallmark, nothing predicted: takes part, adds nothing.
        (_sentence("3", 0, []), Prediction(labels=set())),
    ]
    agg = _aggregate("hoc", pairs)
    # Abstract level: TP 1 (1, a), FP 1 (2, b counted once), FN 1 (1, b) -> F1 2/4.
    assert agg["abstract_micro_f1"] == pytest.approx(0.5)
    # Sentence level: TP 0, FP 3, FN 2 -> 0: the two rules differ, as on the real split.
    assert agg["micro_f1"] == 0.0
    assert agg["score"] == agg["micro_f1"]  # the headline stays sentence-level


def test_hoc_abstract_micro_f1_of_gold_is_one_on_the_real_split(shared_data_dir: Path) -> None:
    from taiyi_bench.harness.loading import load_split

    examples = load_split("hoc", data_dir=shared_data_dir).examples
    assert len({ex.meta["pmid"] for ex in examples}) < len(examples)  # sentences do group
    agg = _aggregate("hoc", [(ex, Prediction(labels=set(ex.labels))) for ex in examples])
    assert agg["abstract_micro_f1"] == 1.0
    # Copying each abstract's labels onto all its sentences is perfect at the abstract level only.
    by_abstract: dict[str, set[str]] = {}
    for ex in examples:
        by_abstract.setdefault(ex.meta["pmid"], set()).update(ex.labels)
    copied = _aggregate("hoc", [(ex, Prediction(labels=by_abstract[ex.meta["pmid"]])) for ex in examples])
    assert copied["abstract_micro_f1"] == 1.0 and copied["micro_f1"] < 0.6


# ------------------------------------------------------------------------------ NER: occurrences


def _iob_unit(text: str, entities: list[tuple[str, int, int]]) -> Example:
    return Example(
        id="test-0", dataset="ncbi_disease", split="test", text=text,
        entities=[Entity(t, text[s:e], s, e) for t, s, e in entities],
    )


def test_a_mention_that_occurs_twice_counts_at_both_places() -> None:
    text = "BRCA1 cancer and cancer risk"
    both = _iob_unit(text, [("Disease", 6, 12), ("Disease", 17, 23)])
    # Text-level: one string, one TP. Occurrence-level: two occurrences, two TPs.
    assert occurrence_counts(both, {("Disease", "cancer")}, "tokens") == (2, 0, 0)
    one = _iob_unit(text, [("Disease", 6, 12)])
    # Gold tags only the first: the second occurrence is a false positive.
    assert occurrence_counts(one, {("Disease", "cancer")}, "tokens") == (1, 1, 0)
    spec = get_spec("ncbi_disease")
    unit = scoring.score_unit(spec, both, Prediction(entities={("Disease", "cancer")}))
    assert unit.counts == (1, 0, 0) and unit.occurrence == (2, 0, 0)


def test_an_ungrounded_or_case_changed_mention_is_a_false_positive() -> None:
    unit = _iob_unit("Familial breast cancer .", [("Disease", 9, 22)])
    assert occurrence_counts(unit, {("Disease", "lung cancer")}, "tokens") == (0, 1, 1)
    assert occurrence_counts(unit, {("Disease", "Breast cancer")}, "tokens") == (0, 1, 1)  # no case forgiveness
    assert occurrence_counts(unit, {("Disease", "breast cancer.")}, "tokens") == (0, 1, 1)  # nor punctuation
    # The text-level rule forgives both.
    spec = get_spec("ncbi_disease")
    assert scoring.score_unit(spec, unit, Prediction(entities={("Disease", "Breast cancer")})).counts == (1, 0, 0)


def test_token_grounding_respects_token_edges_and_ignores_spacing() -> None:
    unit = _iob_unit("Exposure to 2 , 4 - dinitrophenol and cancers .", [("Chemical", 12, 33)])
    assert occurrence_counts(unit, {("Chemical", "2,4-dinitrophenol")}, "tokens") == (1, 0, 0)
    placed, ungrounded = place_mentions(unit, {("Disease", "cancer")}, "tokens")  # inside "cancers"
    assert placed == set() and ungrounded == [("Disease", "cancer")]


def test_cmeee_nested_and_overlapping_spans_are_exact_substrings() -> None:
    text = "肺癌患者出现肺癌骨转移"
    gold = [("dis", 0, 2), ("bod", 0, 1), ("dis", 6, 11), ("dis", 6, 8)]
    unit = Example(id="dev-0", dataset="cmeee", split="dev", text=text,
                   entities=[Entity(t, text[s:e], s, e) for t, s, e in gold])
    predicted = {("dis", "肺癌"), ("bod", "肺"), ("dis", "癌骨转移")}
    # 肺癌 at 0 and 6 (both gold), 肺 at 0 (gold) and 6 (not gold), 癌骨转移 at 7 (overlaps, not gold).
    assert occurrence_counts(unit, predicted, "characters") == (3, 2, 1)
    spec = get_spec("cmeee")
    assert scoring.score_unit(spec, unit, Prediction(entities=predicted)).occurrence == (3, 2, 1)


def test_a_repeated_mention_loop_is_searched_once() -> None:
    unit = _iob_unit("Familial breast cancer .", [("Disease", 9, 22)])
    spec = get_spec("ncbi_disease")
    from taiyi_bench.harness.parsers import parse_output

    prediction = parse_output(spec, "Disease: " + "; ".join(["breast cancer"] * 5000))
    assert scoring.score_unit(spec, unit, prediction).occurrence == (1, 0, 0)


def _iob_tags(path: Path) -> list[list[str]]:
    sentences, current = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            if current:
                sentences.append(current)
            current = []
            continue
        current.append(line.split("\t")[-1])
    if current:
        sentences.append(current)
    return sentences


def test_span_model_occurrence_f1_equals_seqeval_on_real_minilm_predictions(shared_data_dir: Path) -> None:
    """The committed MiniLM NCBI-disease predictions (their spans, kept beside the results) scored by
    the occurrence-level rule equal seqeval's entity-level F1 on the official file's BIO tags."""
    from seqeval.metrics import f1_score

    from taiyi_bench.baselines.words import example_words, seqeval_tags, spans_to_tags
    from taiyi_bench.harness.loading import load_split

    [spans_file] = sorted(REFERENCE.glob("minilm/ncbi_disease/*/*/predicted_spans_taiyi_ncbi_disease_*.jsonl"))
    predicted = [json.loads(line) for line in spans_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    spec = get_spec("ncbi_disease")
    examples = load_split(spec, data_dir=shared_data_dir).examples
    assert [p["doc_id"] for p in predicted] == list(range(len(examples)))
    units, y_pred = [], []
    for example, row in zip(examples, predicted, strict=True):
        spans = frozenset((t, s, e) for t, s, e in row["spans"])
        units.append(scoring.score_unit(spec, example, Prediction(
            entities={(t, example.text[s:e]) for t, s, e in spans}, spans=spans)))
        words = example_words(example)
        y_pred.append(seqeval_tags(spans_to_tags(words, [(s, e) for _, s, e in spans]), "Disease"))
    y_true = _iob_tags(shared_data_dir / "NCBI-disease" / "test.tsv")
    assert [len(t) for t in y_true] == [len(p) for p in y_pred]
    ours = scoring.aggregate(spec, units)["strict_occurrence_micro_f1"]
    assert ours == pytest.approx(f1_score(y_true, y_pred), abs=1e-12)
    assert 0.5 < ours < 0.95  # a real model's number, not a degenerate one


# ------------------------------------------------------------------------------ PubMedQA: macro-F1


def test_pubmedqa_macro_f1_counts_an_unparseable_answer_as_a_miss_of_its_class() -> None:
    options = {"A": "yes", "B": "no", "C": "maybe"}

    def q(i: int, answer: str) -> Example:
        return Example(id=f"q{i}", dataset="pubmedqa", split="test", question="?", options=options, answer=answer)

    pairs = [
        (q(0, "A"), Prediction(choice="A")),
        (q(1, "A"), Prediction(choice="B")),
        (q(2, "B"), Prediction(choice="no")),  # option text
        (q(3, "C"), Prediction(parse_failed=True)),
    ]
    agg = _aggregate("pubmedqa", pairs)
    # yes: TP 1, FN 1 -> 2/3; no: TP 1, FP 1 -> 2/3; maybe: FN 1 -> 0. Mean over 3 classes.
    assert agg["macro_f1_over_classes"] == pytest.approx((2 / 3 + 2 / 3 + 0) / 3)
    assert agg["acc"] == agg["score"] == pytest.approx(0.5)


# ------------------------------------------------------------------------------ one metric table


def test_shipped_templates_equal_a_fresh_build() -> None:
    built = build_templates()
    assert set(built) == {p.name for p in tasks_dir().glob("_taiyi_*_yaml")} - {"_taiyi_template_yaml"}
    for name, text in built.items():
        assert (tasks_dir() / name).read_text(encoding="utf-8") == text, f"{name}: run python -m taiyi_bench.harness.lmeval.templates"


def test_every_metric_names_a_known_rule_and_the_headline_is_in_the_table() -> None:
    from taiyi_bench.harness.registry import iter_specs

    for spec in iter_specs():
        names = scoring.metric_names(spec)
        assert scoring.headline_metric_name(spec) in names
        for name in names:
            assert scoring.rule_of(spec, name) in scoring.RULES or scoring.rule_of(spec, name) == spec.matching_rule
    assert scoring.metric_for_rule(get_spec("hoc"), "abstract_label_set") == "abstract_micro_f1"
    assert scoring.metric_for_rule(get_spec("litcovid"), "abstract_label_set") is None
    assert scoring.metric_for_rule(get_spec("bc5cdr_chem"), "occurrence_strict") == "strict_occurrence_micro_f1"


def _reference_results(task: str) -> list[dict]:
    files = sorted(REFERENCE.glob("*/*/*/*/results_*.json"))
    blocks = [json.loads(f.read_text(encoding="utf-8"))["results"] for f in files]
    return [b[task] for b in blocks if task in b]


def test_kuake_headline_equals_accuracy_on_every_committed_run() -> None:
    runs = _reference_results("taiyi_kuake_qic")
    assert len(runs) >= 3  # MiniLM, SmolLM2 base and fine-tuned
    for block in runs:
        assert block["score,none"] == block["acc,none"]


def test_committed_ner_runs_report_the_occurrence_level_f1() -> None:
    for task in ("taiyi_bc5cdr_chem", "taiyi_bc5cdr_dise", "taiyi_ncbi_disease"):
        runs = _reference_results(task)
        assert len(runs) == 3, task
        for block in runs:
            assert 0.0 <= block["strict_occurrence_micro_f1,none"] <= 1.0
            if "seqeval_f1,none" in block:  # a span model: the two are one rule
                assert block["strict_occurrence_micro_f1,none"] == pytest.approx(block["seqeval_f1,none"], abs=1e-12)
