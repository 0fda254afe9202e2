"""Verdicts agree with the scorer on every unit of the real splits, with perturbed gold; the
matching rule (not the set) picks the verdict kind; parse failures carry a reason."""

from __future__ import annotations

import dataclasses
import random
from collections import Counter

import pytest

from taiyi_bench.harness.errors import DataNotFoundError
from taiyi_bench.harness.loading import load_split
from taiyi_bench.harness.parsers import parse_fail_reason, parse_output
from taiyi_bench.harness.prompts import render_answer
from taiyi_bench.harness.records import Example, Prediction
from taiyi_bench.harness.registry import get_spec, iter_specs
from taiyi_bench.harness.scoring import score_unit
from taiyi_bench.harness.verdicts import (
    lenient_counts,
    unit_verdicts,
    verdict_counts,
)

UNITS_PER_SET = 600  # the first units of each split: every rule and kind of error, in a few seconds


def _perturbed(spec, example: Example, rng: random.Random) -> Prediction:
    """The gold with errors of every kind: items dropped, retyped, cut short, copied with the text
    after them, reversed, relabelled, and spurious items from the text and from nowhere."""
    rule = spec.matching_rule
    if rule == "mention_set":
        entities = set()
        for index, entity in enumerate(example.entities):
            kind = index % 5
            if kind == 0:
                if index % 10 == 5:  # a copied clause holding the mention: refused by the lenient bound
                    entities.add((entity.type, f"{entity.mention} {example.text}"))
                continue
            if kind == 1 and len(spec.labels) > 1:
                entities.add((spec.labels[(spec.labels.index(entity.type) + 1) % len(spec.labels)], entity.mention))
            elif kind == 2 and len(entity.mention) > 2:
                words = entity.mention.split()
                entities.add((entity.type, words[0] if len(words) > 1 else entity.mention[:-1]))
            else:
                entities.add((entity.type, entity.mention))
        words = example.text.split() if spec.language == "en" else [example.text[i : i + 2] for i in range(0, len(example.text), 7)]
        if words:
            entities.add((spec.labels[0], rng.choice(words)))
        entities.add((spec.labels[-1], "zzqx made up"))
        return Prediction(entities=entities)
    if rule in ("ordered_triples", "concept_pairs"):
        gold = parse_output(spec, render_answer(spec, example))
        relations = set()
        for index, (head, relation, tail) in enumerate(sorted(gold.relations)):
            kind = index % 4
            if kind == 1:
                relations.add((tail, relation, head))
            elif kind == 2 and len(spec.labels) > 1:
                relations.add((head, spec.labels[(index * 7) % len(spec.labels)], tail))
            elif kind == 3:
                relations.add((head, relation, tail))
        relations.add(("zzqx", spec.labels[0], "yyqx"))
        return Prediction(relations=relations)
    if rule == "label_set":
        labels = set(example.labels)
        if labels and rng.random() < 0.5:
            labels.pop()
        labels.add(rng.choice(spec.labels))
        if rng.random() < 0.2:
            labels.add("not a label of the set")
        return Prediction(labels=labels)
    return Prediction(choice=rng.choice(sorted(example.options)) if example.options else None)


@pytest.mark.parametrize("spec", list(iter_specs()), ids=lambda s: s.key)
def test_verdicts_agree_with_the_scorer_on_the_real_split(spec, shared_data_dir):
    try:
        examples = load_split(spec.key, spec.eval_split, shared_data_dir).examples[:UNITS_PER_SET]
    except DataNotFoundError:
        pytest.skip(f"{spec.display_name} is not in {shared_data_dir}")
    rng = random.Random(0)
    kinds: Counter = Counter()
    oracle_ungrounded = 0
    for example in examples:
        prediction = _perturbed(spec, example, rng)
        unit = score_unit(spec, example, prediction)
        verdicts = unit_verdicts(spec, example, prediction, unit)
        kinds.update(item["verdict"] for item in verdicts["predicted"])
        if spec.matching_rule == "choice":
            assert verdicts["correct"] == bool(unit.correct), example.id
            continue
        assert verdict_counts(verdicts) == unit.counts, example.id
        if unit.lenient is not None:
            assert lenient_counts(verdicts) == tuple(unit.lenient), example.id
            refused = [item for item in verdicts["predicted"] if item["verdict"] == "lenient_refused"]
            assert len(refused) == unit.lenient_refused == verdicts["lenient_refused"], example.id
        assert {k: tuple(v) for k, v in verdicts["per_type"].items()} == {
            k: tuple(v) for k, v in unit.per_type.items() if any(v)
        }, example.id
        if "grounding" in verdicts:
            gold = parse_output(spec, render_answer(spec, example), options=example.options or None)
            oracle_ungrounded += unit_verdicts(spec, example, gold)["grounding"]["ungrounded"]
    assert oracle_ungrounded == 0  # every gold mention/argument is in its unit's text
    rule = spec.matching_rule
    expected_kinds = {
        "mention_set": {"matched", "spurious", "boundary", "lenient_refused"} | ({"wrong_type"} if len(spec.labels) > 1 else set()),
        "ordered_triples": {"matched", "reversed", "wrong_relation", "spurious"},
        "concept_pairs": {"matched", "reversed", "spurious"},
        "label_set": {"matched", "extra_label", "wrong_label", "unknown_label"},
        "choice": {"matched", "wrong_option"},
    }[rule]
    assert expected_kinds <= set(kinds), kinds  # the perturbations reached every kind of verdict


def test_a_wrong_concept_pair_written_two_ways_counts_once():
    spec = get_spec("bc5cdr_re")
    example = load_split("bc5cdr_re", "test", None).examples[0]
    chemical = next(c for c, names in example.concept_mentions.items() if len({n.lower() for n in names}) == 1 and len(names) > 1)
    names = example.concept_mentions[chemical]  # one concept, two spellings ("phenytoin", "Phenytoin")
    disease = "status epilepticus"  # a disease of the abstract that no gold pair links to the chemical
    prediction = Prediction(relations={(names[0], "CID", disease), (names[1], "CID", disease)})
    unit = score_unit(spec, example, prediction)
    verdicts = unit_verdicts(spec, example, prediction, unit)
    assert unit.fp == 1 and [item.get("counted") for item in verdicts["predicted"]] == [True, False]
    assert verdict_counts(verdicts) == unit.counts


def test_the_rule_not_the_set_picks_the_verdict_kind():
    # A set registered with another key but the CMeIE rule gets triple verdicts.
    spec = dataclasses.replace(get_spec("cmeie"), key="my_triples", display_name="My triples")
    example = Example(id="u1", dataset="my_triples", split="dev", text="甲病可见乙症。",
                      relations=[dataclasses.replace(load_split("cmeie", "dev", None).examples[0].relations[0],
                                                     head="甲病", tail="乙症")])
    relation = example.relations[0].relation
    verdicts = unit_verdicts(spec, example, Prediction(relations={("乙症", relation, "甲病")}))
    assert verdicts["rule"] == "ordered_triples"
    assert [i["verdict"] for i in verdicts["predicted"]] == ["reversed"]


@pytest.mark.parametrize(
    ("output", "reason"),
    [
        (None, "no output recorded"),
        ("   \n", "empty output"),
        ("<think>the patient has", "reasoning never finished (<think> without </think>): no answer after it"),
        ("<think>done</think>\n```\n```", "nothing but <think> blocks or code fences"),
        ("I cannot tell.", "no option letter or option text recognised"),
    ],
)
def test_parse_failures_say_why(output, reason):
    assert parse_fail_reason("choice", output) == reason
    spec = get_spec("medqa_usmle")
    example = load_split("medqa_usmle", "test", None).examples[0]
    if output is not None:
        prediction = parse_output(spec, output, options=example.options)
        assert prediction.parse_failed
        assert unit_verdicts(spec, example, prediction)["parse_fail"] == reason
