"""Scorers (taiyi_bench.harness.scoring): hand-computed P/R/F1 for adversarial outputs, the CID concept rule,
oracle round trips on every set, and a cross-check against seqeval."""

from __future__ import annotations

import dataclasses
import json
import random
import warnings
from fractions import Fraction

import pytest

from taiyi_bench.harness.records import Entity, Example, Prediction, Relation
from taiyi_bench.harness.registry import get_spec, iter_specs
from taiyi_bench.harness.scoring import (
    aggregate,
    aggregation_of,
    headline_metric_name,
    macro_f1_over_types,
    metric_names,
    micro_prf,
    overlaps,
    per_type_scores,
    prf,
    score_output,
    score_unit,
    unit_metric_values,
)

from task_files import metric_list_names, read_task_yaml

CHEM = get_spec("bc5cdr_chem")
CMEEE = get_spec("cmeee")
CDR = get_spec("bc5cdr_re")
CMEIE = get_spec("cmeie")
HOC = get_spec("hoc")
QIC = get_spec("kuake_qic")
PUBMEDQA = get_spec("pubmedqa")
USMLE = get_spec("medqa_usmle")


def approx(x):
    return pytest.approx(float(x), abs=1e-12)


def ner_example(spec, mentions, uid="u"):
    return Example(id=uid, dataset=spec.key, split="test", text=" ".join(m for _, m in mentions),
                   entities=[Entity(t, m) for t, m in mentions])


def run(spec, pairs):
    """[(example, output text)] → (unit scores, aggregate)."""
    units = [score_output(spec, ex, text)[1] for ex, text in pairs]
    return units, aggregate(spec, units)


# --------------------------------------------------------------------------------------------
# NER


def test_ner_adversarial_outputs_hand_computed():
    pairs = [
        # gold famotidine, cimetidine; predicted: famotidine (twice, case and full-width noise),
        # ranitidine (hallucinated), delirium as Disease (wrong type); chatter and explanation.
        (ner_example(CHEM, [("Chemical", "famotidine"), ("Chemical", "cimetidine")], "u1"),
         "Sure! Here you go:\n- **Chemical**：Famotidine；famotidine\nChemical: ranitidine\nDisease: delirium\n"
         "Explanation: famotidine is an H2 blocker."),
        # tokenised gold, detokenised prediction with different case.
        (ner_example(CHEM, [("Chemical", "2 , 4 - dinitrophenol")], "u2"), "Chemical: 2,4-Dinitrophenol"),
        # no gold, valid empty answer.
        (ner_example(CHEM, [], "u3"), "Chemical: none"),
        # empty output: parse failure, scored as empty.
        (ner_example(CHEM, [("Chemical", "aspirin")], "u4"), "   "),
        # whitespace-only gold-free unit with garbage output.
        (ner_example(CHEM, [], "u5"), "I cannot answer that."),
    ]
    units, agg = run(CHEM, pairs)
    assert [u.counts for u in units] == [(1, 2, 1), (1, 0, 0), (0, 0, 0), (0, 0, 1), (0, 0, 0)]
    assert [u.parse_failed for u in units] == [False, False, False, True, True]
    # tp 2, fp 2, fn 2
    assert agg["micro_precision"] == approx(Fraction(1, 2))
    assert agg["micro_recall"] == approx(Fraction(1, 2))
    assert agg["micro_f1"] == approx(Fraction(1, 2))
    assert agg["score"] == agg["micro_f1"]
    assert agg["parse_fail"] == approx(Fraction(2, 5))
    # per type: Chemical tp 2 fp 1 fn 2; Disease tp 0 fp 1 fn 0
    types = per_type_scores(units)
    assert types["Chemical"]["precision"] == approx(Fraction(2, 3))
    assert types["Chemical"]["recall"] == approx(Fraction(1, 2))
    assert types["Chemical"]["f1"] == approx(Fraction(4, 7))
    assert types["Disease"]["f1"] == 0.0
    assert agg["f1.Chemical"] == approx(Fraction(4, 7))
    assert agg["macro_f1_over_types"] == approx(Fraction(2, 7))


def test_ner_corpus_micro_is_not_the_mean_of_unit_f1():
    big = ner_example(CHEM, [("Chemical", f"c{i}") for i in range(9)], "big")
    small = ner_example(CHEM, [("Chemical", "x")], "small")
    units, agg = run(CHEM, [(big, "Chemical: " + "; ".join(f"c{i}" for i in range(9))), (small, "Chemical: y")])
    assert agg["micro_f1"] == approx(Fraction(2 * 9, 2 * 9 + 1 + 1))  # tp 9 fp 1 fn 1
    assert agg["micro_f1"] != approx((1.0 + 0.0) / 2)


def test_ner_lenient_overlap_one_to_one_and_boundaries():
    example = ner_example(CHEM, [("Chemical", "breast cancer drug"), ("Chemical", "ovarian cancer drug"),
                                 ("Chemical", "calcium")])
    unit = score_unit(CHEM, example, Prediction(entities={("Chemical", "cancer drug"), ("Chemical", "ca")}))
    assert unit.counts == (0, 2, 3)
    # "cancer drug" overlaps both gold mentions but matches one; "ca" is no word of "calcium".
    assert unit.lenient == (1, 1, 2)
    # Different type never matches leniently.
    unit = score_unit(CHEM, example, Prediction(entities={("Disease", "calcium channel")}))
    assert unit.lenient == (0, 1, 3)
    # Chinese: every character is a boundary.
    zh = ner_example(CMEEE, [("dis", "小细胞肺癌")])
    assert score_unit(CMEEE, zh, Prediction(entities={("dis", "肺癌")})).lenient == (1, 0, 0)


def test_overlaps():
    assert overlaps("heart failure", "congestive heart failure")
    assert overlaps("congestive heart failure", "heart failure")
    assert not overlaps("ca", "calcium")
    assert overlaps("ca", "ca channel")
    assert overlaps("肺癌", "小细胞肺癌")
    assert not overlaps("", "x")


def test_ner_duplicates_collapse_on_both_sides():
    example = ner_example(CHEM, [("Chemical", "DOX"), ("Chemical", "dox")])
    unit = score_unit(CHEM, example, Prediction(entities={("Chemical", "Dox"), ("Chemical", " DOX ")}))
    assert unit.counts == (1, 0, 0)


def test_ner_cmeee_wrong_type_and_nested():
    example = ner_example(CMEEE, [("dis", "肺炎"), ("bod", "肺"), ("sym", "发热")])
    _, unit = score_output(CMEEE, example, "疾病：肺炎\n身体：肺；肝\n药物：发热\n说明：以上为识别结果")
    assert unit.counts == (2, 2, 1)  # 肝 hallucinated, 发热 typed as dru, sym 发热 missed
    assert unit.per_type["dru"] == [0, 1, 0]
    assert unit.per_type["sym"] == [0, 0, 1]


# --------------------------------------------------------------------------------------------
# RE: BC5CDR CID concept matching


def cid_example():
    entities = [
        Entity("Chemical", "doxorubicin", concept_ids=("D1",)),
        Entity("Chemical", "DOX", concept_ids=("D1",)),
        Entity("Chemical", "cisplatin", concept_ids=("D2",)),
        Entity("Chemical", "bevacizumab", concept_ids=("-1",)),
        Entity("Disease", "cardiotoxicity", concept_ids=("D10",)),
        Entity("Disease", "hemorrhagic cystitis", concept_ids=("D11", "D12")),  # composite
        Entity("Disease", "nephrotoxicity", concept_ids=("D13",)),
    ]
    return Example(
        id="1", dataset="bc5cdr_re", split="test", text="...", entities=entities,
        relations=[Relation("D1", "CID", "D10", "Chemical", "Disease"),
                   Relation("D2", "CID", "D13", "Chemical", "Disease"),
                   Relation("D2", "CID", "D12", "Chemical", "Disease")],
        concept_mentions={"D1": ["doxorubicin", "DOX"], "D2": ["cisplatin"], "D10": ["cardiotoxicity"],
                          "D11": ["hemorrhagic cystitis"], "D12": ["hemorrhagic cystitis"], "D13": ["nephrotoxicity"],
                          "-1": ["bevacizumab"]},
    )


def test_cid_concept_matching_hand_computed():
    text = (
        "chemical-induced disease: [DOX, cardiotoxicity]; [doxorubicin, Cardiotoxicity]; "  # synonyms: one TP
        "[cisplatin, hemorrhagic cystitis]; "  # composite mention: covers (D2, D12), no FP for (D2, D11)
        "[doxorubicin, nephrotoxicity]; [DOX, nephrotoxicity]; "  # one wrong concept pair: one FP
        "[aspirin, cardiotoxicity]; "  # not a chemical of this abstract: FP
        "[bevacizumab, cardiotoxicity]; "  # MeSH -1 is no concept: FP
        "[cardiotoxicity, doxorubicin]"  # reversed order: FP
    )
    prediction, unit = score_output(CDR, cid_example(), text)
    assert len(prediction.relations) == 8
    assert unit.counts == (2, 4, 1)  # (D2, D13) missed
    p, r, f = prf(*unit.counts)
    assert (p, r, f) == (approx(Fraction(1, 3)), approx(Fraction(2, 3)), approx(Fraction(4, 9)))
    assert unit.detail["missed_concept_pairs"] == [["D2", "D13"]]


def test_cid_oracle_with_any_mention_of_each_concept():
    example = cid_example()
    text = "CID: [doxorubicin, cardiotoxicity]; [cisplatin, nephrotoxicity]; [cisplatin, hemorrhagic cystitis]"
    assert score_output(CDR, example, text)[1].counts == (3, 0, 0)


def test_cid_ambiguous_comma_in_disease_is_resolved_against_mentions():
    example = Example(
        id="2", dataset="bc5cdr_re", split="test",
        entities=[Entity("Chemical", "lead", concept_ids=("C1",)),
                  Entity("Disease", "impairments in learning, attention, and arousal", concept_ids=("X1", "X2"))],
        relations=[Relation("C1", "CID", "X1", "Chemical", "Disease")],
        concept_mentions={"C1": ["lead"], "X1": ["impairments in learning, attention, and arousal"],
                          "X2": ["impairments in learning, attention, and arousal"]},
    )
    assert score_output(CDR, example, "[lead, impairments in learning, attention, and arousal]")[1].counts == (1, 0, 0)


def test_cid_empty_answer_and_no_gold():
    example = cid_example()
    assert score_output(CDR, example, "chemical-induced disease: none")[1].counts == (0, 0, 3)
    no_gold = Example(id="3", dataset="bc5cdr_re", split="test", entities=cid_example().entities,
                      concept_mentions=cid_example().concept_mentions)
    assert score_output(CDR, no_gold, "[DOX, cardiotoxicity]")[1].counts == (0, 1, 0)


# --------------------------------------------------------------------------------------------
# RE: CMeIE strings


def cmeie_example():
    return Example(
        id="dev-0", dataset="cmeie", split="dev", text="小细胞肺癌@可有咳嗽、咯血。",
        relations=[Relation("小细胞肺癌", "临床表现", "咳嗽"), Relation("小细胞肺癌", "临床表现", "咯血"),
                   Relation("肺炎", "相关（导致）", "呼吸衰竭"), Relation("甲", "同义词", "乙")],
    )


def test_cmeie_triples_hand_computed():
    text = (
        "临床表现：[小细胞肺癌，咳嗽]；[小细胞肺癌，咳嗽]；[小细胞肺癌，发热]\n"  # TP, duplicate, hallucinated
        "相关(导致)：[ 肺炎 ，“呼吸衰竭”]\n"  # half-width predicate, spaces and quotes: TP
        "同义词：[乙，甲]\n"  # symmetric predicate, swapped: not matched (CBLUE rule)
        "治疗：[肺炎，抗生素]"  # unknown predicate: chatter
    )
    _, unit = score_output(CMEIE, cmeie_example(), text)
    assert unit.counts == (2, 2, 2)
    assert unit.per_type["临床表现"] == [1, 1, 1]


def test_cmeie_comma_inside_argument_matches_by_text():
    example = Example(id="d", dataset="cmeie", split="dev",
                      relations=[Relation("A病，B型", "临床表现", "发热")])
    assert score_unit(CMEIE, example, Prediction(relations={("A病", "临床表现", "B型，发热")})).counts == (1, 0, 0)


# --------------------------------------------------------------------------------------------
# TC


def tc_example(spec, labels, uid):
    return Example(id=uid, dataset=spec.key, split="test", text="t", labels=list(labels))


def test_tc_hoc_hand_computed():
    a, b, c = "inducing angiogenesis", "resisting cell death", "cellular energetics"
    pairs = [
        (tc_example(HOC, [], "1"), "Result: none"),  # nothing to count
        (tc_example(HOC, [a], "2"), f"Result: {a}; {b}"),  # tp 1, fp 1
        (tc_example(HOC, [a, c], "3"), "Result: cancer stuff"),  # label outside the set: fp 1, fn 2
        (tc_example(HOC, [], "4"), ""),  # parse failure, no gold: nothing to count
    ]
    units, agg = run(HOC, pairs)
    assert [u.counts for u in units] == [(0, 0, 0), (1, 1, 0), (0, 1, 2), (0, 0, 0)]
    assert agg["micro_precision"] == approx(Fraction(1, 3))
    assert agg["micro_recall"] == approx(Fraction(1, 3))
    assert agg["micro_f1"] == approx(Fraction(1, 3))
    assert agg["parse_fail"] == approx(Fraction(1, 4))
    assert "acc" not in agg  # multi-label


def test_kuake_qic_every_label_is_a_decision_hand_computed():
    pairs = [
        (tc_example(QIC, ["治疗方案"], "1"), "上述文本被分类为：治疗方案；注意事项"),  # hedge: tp 1, fp 1, not accurate
        (tc_example(QIC, ["治疗方案"], "2"), "上述文本被分类为：注意事项；治疗方案"),  # reversed hedge: the same
        (tc_example(QIC, ["治疗方案"], "3"), "上述文本被分类为：治疗方案；饮食禁忌"),  # invented 2nd label: fp
        (tc_example(QIC, ["病情诊断"], "4"), "上述文本被分类为：病情诊断"),  # tp 1, accurate
        (tc_example(QIC, ["病情诊断"], "5"), "- 无"),  # a valid empty answer: fn 1, not a parse failure
        (tc_example(QIC, ["其他"], "6"), "上述文本被分类为：就医建议"),  # wrong: fp 1, fn 1
    ]
    units, agg = run(QIC, pairs)
    assert [u.counts for u in units] == [(1, 1, 0), (1, 1, 0), (1, 1, 0), (1, 0, 0), (0, 0, 1), (0, 1, 1)]
    assert [u.correct for u in units] == [0, 0, 0, 1, 0, 0]
    assert [u.parse_failed for u in units] == [False] * 6
    # tp 4, fp 4, fn 2
    assert agg["micro_precision"] == approx(Fraction(4, 8))
    assert agg["micro_recall"] == approx(Fraction(4, 6))
    assert agg["micro_f1"] == approx(Fraction(8, 14))
    assert agg["acc"] == approx(Fraction(1, 6))
    assert agg["score"] == agg["acc"]  # the headline is accuracy (CBLUE's metric), scoring rules v3
    per_unit = [unit_metric_values(QIC, u) for u in units]
    assert [v["acc"] for v in per_unit] == [0, 0, 0, 1, 0, 0]
    for name in ("micro_f1", "micro_precision", "micro_recall", "acc", "parse_fail"):
        assert aggregation_of(QIC, name)([v[name] for v in per_unit]) == approx(agg[name]), name


def test_tc_single_label_micro_f1_equals_accuracy():
    rng = random.Random(3)
    pairs = []
    for i in range(300):
        gold = rng.choice(QIC.labels)
        guess = gold if rng.random() < 0.6 else rng.choice(QIC.labels)
        pairs.append((tc_example(QIC, [gold], str(i)), f"上述文本被分类为：{guess}"))
    _, agg = run(QIC, pairs)
    assert agg["micro_f1"] == approx(agg["acc"])  # every unit has exactly one label
    assert agg["micro_precision"] == approx(agg["micro_recall"])
    hedged = pairs + [(tc_example(QIC, ["治疗方案"], "h"), "上述文本被分类为：治疗方案；注意事项")]
    _, agg = run(QIC, hedged)
    assert agg["micro_f1"] > agg["acc"]  # a hedge earns a TP but is not accurate


# --------------------------------------------------------------------------------------------
# QA


def test_qa_accuracy():
    options = {"A": "Aspirin", "B": "Heparin", "C": "Warfarin", "D": "None of the above"}
    pairs = [
        (Example(id="1", dataset="medqa_usmle", split="test", options=options, answer="B"), "B. Heparin"),
        (Example(id="2", dataset="medqa_usmle", split="test", options=options, answer="C"), "Warfarin"),
        (Example(id="3", dataset="medqa_usmle", split="test", options=options, answer="A"), "The answer is (D)."),
        (Example(id="4", dataset="medqa_usmle", split="test", options=options, answer="A"), ""),
    ]
    units, agg = run(USMLE, pairs)
    assert [u.correct for u in units] == [1, 1, 0, 0]
    assert agg["acc"] == approx(Fraction(1, 2))
    assert agg["score"] == agg["acc"]
    assert agg["parse_fail"] == approx(Fraction(1, 4))


def test_pubmedqa_word_and_letter_against_letter_or_word_gold():
    options = {"A": "yes", "B": "no", "C": "maybe"}
    with_letter = Example(id="1", dataset="pubmedqa", split="test", options=options, answer="B")
    with_word = Example(id="2", dataset="pubmedqa", split="test", options=options, answer="no")
    for example in (with_letter, with_word):
        for text in ("no", "No.", "B", "The answer is no"):
            assert score_output(PUBMEDQA, example, text)[1].correct == 1, (example.answer, text)
        assert score_output(PUBMEDQA, example, "maybe")[1].correct == 0


# --------------------------------------------------------------------------------------------
# lm-eval glue: per-unit values and aggregations


def test_headline_metric_names():
    for spec in iter_specs():
        assert headline_metric_name(spec) == ("micro_f1" if spec.metric == "f1" else "acc")


@pytest.mark.parametrize("spec", list(iter_specs()), ids=lambda s: s.key)
def test_unit_values_are_json_and_match_the_task_yaml(spec, repo_root):
    example = Example(id="x", dataset=spec.key, split="test", text="t", options={"A": "a", "B": "b"}, answer="A")
    _, unit = score_output(spec, example, "garbage")
    values = unit_metric_values(spec, unit)
    assert set(values) == set(metric_names(spec))
    json.dumps(values)
    json.dumps(dataclasses.asdict(unit))
    yaml_path = repo_root / "tasks" / f"{spec.task_name}.yaml"
    if yaml_path.exists():
        listed = metric_list_names(read_task_yaml(yaml_path))  # the metric_list of its task-type template
        assert set(listed) == set(values), f"{yaml_path.name} lists {listed}"


def test_lm_eval_aggregations_reproduce_aggregate():
    pairs = [
        (ner_example(CHEM, [("Chemical", "a"), ("Chemical", "b c")], "1"), "Chemical: a; c\nDisease: x"),
        (ner_example(CHEM, [("Chemical", "d")], "2"), "Chemical: d; e"),
        (ner_example(CHEM, [], "3"), ""),
    ]
    units, agg = run(CHEM, pairs)
    per_unit = [unit_metric_values(CHEM, u) for u in units]
    for name in metric_names(CHEM):
        if name == "score":
            continue
        value = aggregation_of(CHEM, name)([v[name] for v in per_unit])
        assert value == approx(agg[name]), name
    assert micro_prf([v["micro_f1"] for v in per_unit])[2] == approx(agg["micro_f1"])
    assert macro_f1_over_types([v["macro_f1_over_types"] for v in per_unit]) == approx(agg["macro_f1_over_types"])


def test_prf_edge_cases():
    assert prf(0, 0, 0) == (0.0, 0.0, 0.0)
    assert prf(0, 3, 0) == (0.0, 0.0, 0.0)
    assert prf(1, 0, 1) == (1.0, 0.5, approx(Fraction(2, 3)))


def test_bert_style_predictions_use_the_same_scorer():
    # A discriminative model builds the Prediction directly, with registry ids.
    example = ner_example(CMEEE, [("dis", "肺炎")])
    assert score_unit(CMEEE, example, Prediction(entities={("dis", "肺炎")})).counts == (1, 0, 0)
    assert score_unit(HOC, tc_example(HOC, ["inducing angiogenesis"], "1"),
                      Prediction(labels={"inducing angiogenesis"})).counts == (1, 0, 0)


# --------------------------------------------------------------------------------------------
# Oracle: the gold rendered in the Taiyi format and parsed back scores 1.0


def _render_answer():
    try:
        from taiyi_bench.harness.prompts import render_answer
    except ImportError:
        return None
    return render_answer


HAND_WRITTEN_ORACLES = [
    (CHEM, ner_example(CHEM, [("Chemical", "famotidine"), ("Chemical", "2,4-dinitrophenol")]),
     "Chemical: famotidine; 2,4-dinitrophenol"),
    (CMEEE, ner_example(CMEEE, [("dis", "肺炎"), ("ite", "支原体抗体、衣原体抗体检测")]),
     "疾病：肺炎\n医学检验项目：支原体抗体、衣原体抗体检测\n临床表现：无"),
    (CDR, cid_example(), "chemical-induced disease: [doxorubicin, cardiotoxicity]; [cisplatin, nephrotoxicity]; "
                         "[cisplatin, hemorrhagic cystitis]"),
    (CMEIE, cmeie_example(), "临床表现：[小细胞肺癌，咳嗽]；[小细胞肺癌，咯血]\n相关（导致）：[肺炎，呼吸衰竭]\n同义词：[甲，乙]"),
    (HOC, tc_example(HOC, ["inducing angiogenesis"], "h"), "Result: inducing angiogenesis"),
    (QIC, tc_example(QIC, ["治疗方案"], "q"), "上述文本被分类为：治疗方案"),
]


@pytest.mark.parametrize(("spec", "example", "text"), HAND_WRITTEN_ORACLES, ids=lambda x: getattr(x, "key", ""))
def test_hand_written_oracles(spec, example, text):
    _, unit = score_output(spec, example, text)
    assert (unit.fp, unit.fn, unit.parse_failed) == (0, 0, False)
    render = _render_answer()
    if render is not None:  # the lead's renderer agrees with the hand-written format
        _, unit = score_output(spec, example, render(spec, example))
        assert (unit.fp, unit.fn, unit.parse_failed) == (0, 0, False)


def _assert_oracle(spec, examples, render):
    units = [score_output(spec, ex, render(spec, ex))[1] for ex in examples]
    agg = aggregate(spec, units)
    bad = [(ex.id, u.detail) for ex, u in zip(examples, units, strict=True) if u.fp or u.fn or u.parse_failed
           or u.correct == 0]
    assert not bad, bad[:3]
    assert agg["parse_fail"] == 0.0
    if any(u.tp for u in units) or spec.task_type == "qa":
        assert agg["score"] == 1.0


@pytest.mark.parametrize("spec", list(iter_specs()), ids=lambda s: s.key)
def test_oracle_on_real_data(spec, shared_data_dir):
    render = _render_answer()
    if render is None:
        pytest.skip("taiyi_bench.harness.prompts.render_answer not available")
    from taiyi_bench.harness.errors import DataNotFoundError
    from taiyi_bench.harness.loading import load_split

    try:
        loaded = load_split(spec.key, data_dir=shared_data_dir)
    except DataNotFoundError as err:
        pytest.skip(f"{spec.key} not in the shared data: {err}")
    _assert_oracle(loaded.spec, loaded.examples, render)


def test_cid_oracle_with_random_synonym_mentions(shared_data_dir):
    """Naming each gold concept by a random one of its mentions (not the first) still scores 1.0."""
    from taiyi_bench.harness.loading import load_split

    loaded = load_split("bc5cdr_re", data_dir=shared_data_dir)
    rng = random.Random(11)
    units = []
    for ex in loaded.examples:
        pairs = [f"[{rng.choice(ex.concept_mentions[r.head])}, {rng.choice(ex.concept_mentions[r.tail])}]"
                 for r in ex.relations]
        units.append(score_output(CDR, ex, "CID: " + "; ".join(pairs) if pairs else "CID: none")[1])
    agg = aggregate(CDR, units)
    assert (agg["fp"], agg["fn"]) == (0.0, 0.0)
    assert agg["tp"] == 1066.0  # the official test pair count


# --------------------------------------------------------------------------------------------
# Cross-check against seqeval on BIO sequences


def _spans_to_entities(tokens, spans):
    return {(label, " ".join(tokens[start : end + 1])) for label, start, end in spans}


def _positions_unique(tokens, *span_lists):
    """True when no normalised (type, mention) occurs at two different places and no span is
    punctuation only (it normalises to nothing, which the scorer drops)."""
    from taiyi_bench.harness.normalize import normalize_mention

    seen = {}
    for spans in span_lists:
        for label, start, end in spans:
            key = (label, normalize_mention(" ".join(tokens[start : end + 1])))
            if not key[1] or seen.setdefault(key, (start, end)) != (start, end):
                return False
    return True


def _random_tags(rng, n, types):
    tags, i = ["O"] * n, 0
    while i < n:
        if rng.random() < 0.25:
            label = rng.choice(types)
            length = rng.randint(1, 3)
            tags[i] = f"B-{label}"
            for j in range(i + 1, min(n, i + length)):
                tags[j] = f"I-{label}"
            i += length
        else:
            i += 1
    return tags


def _perturb(rng, tags, types, tokens=None, rate=1.0):
    out = list(tags)
    for i in range(len(out)):
        if tokens is not None and not any(ch.isalnum() for ch in tokens[i]):
            continue  # a punctuation-only chunk normalises to nothing
        r = rng.random() / rate
        if r < 0.06:
            out[i] = "O"
        elif r < 0.10:
            out[i] = f"B-{rng.choice(types)}"
        elif r < 0.13:
            out[i] = f"I-{rng.choice(types)}"  # seqeval's default mode starts a chunk here
    return out


def test_ner_micro_f1_equals_seqeval_on_random_bio():
    from seqeval.metrics import f1_score, precision_score, recall_score
    from seqeval.metrics.sequence_labeling import get_entities

    rng = random.Random(2024)
    types = ["Chemical", "Disease"]
    spec = get_spec("bc5cdr_chem")
    y_true, y_pred, units = [], [], []
    for s in range(400):
        n = rng.randint(1, 30)
        tokens = [f"tok{s}x{i}" for i in range(n)]  # unique tokens: no repeated mention
        gold = _random_tags(rng, n, types)
        pred = _perturb(rng, gold, types)
        example = Example(id=str(s), dataset=spec.key, split="test", text=" ".join(tokens),
                          entities=[Entity(t, m) for t, m in _spans_to_entities(tokens, get_entities(gold))])
        prediction = Prediction(entities=_spans_to_entities(tokens, get_entities(pred)))
        units.append(score_unit(spec, example, prediction))
        y_true.append(gold)
        y_pred.append(pred)
    agg = aggregate(spec, units)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert agg["micro_f1"] == pytest.approx(f1_score(y_true, y_pred), abs=1e-12)
        assert agg["micro_precision"] == pytest.approx(precision_score(y_true, y_pred), abs=1e-12)
        assert agg["micro_recall"] == pytest.approx(recall_score(y_true, y_pred), abs=1e-12)
        assert agg["macro_f1_over_types"] == pytest.approx(f1_score(y_true, y_pred, average="macro"), abs=1e-12)
    assert 0.3 < agg["micro_f1"] < 0.95  # the perturbation is neither trivial nor total


@pytest.mark.parametrize("key", ["bc5cdr_dise", "ncbi_disease"])
def test_ner_micro_f1_equals_seqeval_on_real_iob(key, shared_data_dir):
    """Gold from the reader's entities, predictions from perturbed real tags; sentences where a
    normalised mention occurs at two places are left out (set scoring merges them, seqeval not)."""
    from seqeval.metrics import f1_score
    from seqeval.metrics.sequence_labeling import get_entities

    from taiyi_bench.harness.loading import load_split

    loaded = load_split(key, data_dir=shared_data_dir)
    rng = random.Random(5)
    types = list(loaded.spec.labels)
    y_true, y_pred, units = [], [], []
    for ex in loaded.examples:
        tokens, gold = ex.meta["tokens"], ex.meta["tags"]
        pred = _perturb(rng, gold, types, tokens, rate=0.5)
        if not _positions_unique(tokens, get_entities(gold), get_entities(pred)):
            continue
        prediction = Prediction(entities=_spans_to_entities(tokens, get_entities(pred)))
        units.append(score_unit(loaded.spec, ex, prediction))
        y_true.append(gold)
        y_pred.append(pred)
    assert len(units) > 0.85 * len(loaded.examples)
    agg = aggregate(loaded.spec, units)
    assert agg["micro_f1"] == pytest.approx(f1_score(y_true, y_pred), abs=1e-12)
    assert 0.3 < agg["micro_f1"] < 0.95
