"""Per-unit verdicts: what the scorer did with every predicted and gold item of a unit, in words.

`unit_verdicts` starts from the scorer's own result for the unit (`UnitScore.detail`: matched,
missed, spurious, after its normalisation) and names each non-matching item more precisely with
the scorer's public functions only, so `verdict_counts(unit_verdicts(...)) == score_unit(...).counts`
on every unit (a test checks it on the real splits with perturbed gold). The result is plain JSON:
lm-eval logs it in each samples line, as does the BERT writer. The kind follows the matching rule:

mention_set (NER)   predicted: matched | boundary (lenient-only match: same type, one mention
                    contains the other, `scoring.lenient_match`) | lenient_refused (contains or is
                    contained in a missed gold mention of its type, but the length bound refused
                    the match: a copied clause) | wrong_type (a gold mention of another type) |
                    spurious. gold: matched | boundary | wrong_type | missed.
ordered_triples     predicted: matched | reversed | wrong_relation (a gold pair under another
(RE over strings)   predicate) | wrong_relation_reversed | spurious. gold: matched | missed, or
                    the verdict of the predicted triple that stands for it.
concept_pairs       predicted string pairs: matched | reversed | spurious; a wrong pair mapping to
(RE over concepts)  the same concepts as an earlier one is `"counted": false` (scored once).
                    gold concept pairs (with their names): matched | reversed | missed.
label_set (TC)      predicted: matched | wrong_label (took a missed gold label's place) |
                    extra_label | unknown_label (not a label of the set). gold: matched | missed.
choice (QA)         the chosen and the gold option: correct | wrong_option | no_choice.

Grounding (NER and RE): a predicted mention or argument found nowhere in the unit's text (both
normalised as the scorer does) is `"grounded": false`; `ungrounded_rate` is their share.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from taiyi_bench.harness.normalize import normalize_mention
from taiyi_bench.harness.records import Example, Prediction
from taiyi_bench.harness.registry import DatasetSpec
from taiyi_bench.harness.scoring import UnitScore, lenient_pairs, prf, score_unit, sum_per_type

VERDICTS_VERSION = 1

# Matching rules whose predictions are strings taken from the text (grounding applies).
GROUNDED_RULES = frozenset({"mention_set", "ordered_triples", "concept_pairs"})

# Predicted-item verdicts that are errors, and how the report names them.
VERDICT_TEXT = {
    "matched": "matched", "missed": "missed", "spurious": "spurious", "wrong_type": "wrong type",
    "boundary": "boundary only (lenient match)", "lenient_refused": "overlap refused (length bound)",
    "reversed": "reversed direction", "wrong_relation": "wrong relation",
    "wrong_relation_reversed": "wrong relation, reversed", "wrong_label": "wrong label", "extra_label": "extra label",
    "unknown_label": "label outside the set", "correct": "correct", "wrong_option": "wrong option",
    "no_choice": "no option chosen",
}


# --------------------------------------------------------------------------------------------
# grounding


def _grounding(example: Example) -> Callable[[str], bool]:
    """`found(mention)`: whether a normalised mention occurs in the unit's normalised text."""
    haystack = normalize_mention(example.text or "")

    def found(mention: str) -> bool:
        norm = normalize_mention(mention)
        return bool(norm) and norm in haystack

    return found


# --------------------------------------------------------------------------------------------
# the verdicts of one unit


def unit_verdicts(spec: DatasetSpec, example: Example, prediction: Prediction, unit: UnitScore | None = None) -> dict[str, Any]:
    """The verdicts of one unit (plain JSON). `unit` is the scorer's result for this prediction
    (computed when not given)."""
    unit = unit if unit is not None else score_unit(spec, example, prediction)
    rule = spec.matching_rule
    if rule == "concept_pairs" and "covered_concept_pairs" not in unit.detail:
        rule = "ordered_triples"  # a unit without concept annotations is scored over strings
    predicted, gold, extra = _BUILDERS[rule](spec, example, prediction, unit)
    out: dict[str, Any] = {
        "version": VERDICTS_VERSION,
        "rule": rule,
        "counts": {"tp": unit.tp, "fp": unit.fp, "fn": unit.fn},
        "prediction": _prediction_json(spec, prediction),
        "predicted": predicted,
        "gold": gold,
        # Types with nothing to count are left out (the NER scorer lists every type of the set).
        "per_type": {key: list(map(int, counts)) for key, counts in sorted(unit.per_type.items()) if any(counts)},
        "parse_fail": (prediction.fail_reason or "no output recorded") if unit.parse_failed else None,
        **extra,
    }
    if unit.lenient is not None:
        out["lenient"] = dict(zip(("tp", "fp", "fn"), map(int, unit.lenient), strict=True))
        out["lenient_refused"] = unit.lenient_refused
    if unit.correct is not None:
        out["correct"] = bool(unit.correct)
    if rule in GROUNDED_RULES:
        flags = [flag for item in predicted for flag in grounded_flags(item)]
        out["grounding"] = {"checked": len(flags), "ungrounded": flags.count(False)}
    return out


def _prediction_json(spec: DatasetSpec, prediction: Prediction) -> dict[str, Any]:
    """The parsed prediction as written (before normalisation), only the task type's field."""
    field = {"ner": "entities", "re": "relations", "tc": "labels", "qa": "choice"}[spec.task_type]
    value = getattr(prediction, field)
    shown = value if field == "choice" else [list(x) if isinstance(x, tuple) else x for x in sorted(value)]
    return {field: shown, "parse_failed": bool(prediction.parse_failed)}


def grounded_flags(item: Mapping[str, Any]) -> list[bool]:
    """Whether each mention/argument of a predicted item was found in the text (empty: not checked)."""
    grounded = item.get("grounded")
    if isinstance(grounded, dict):
        return [bool(v) for v in grounded.values()]
    return [] if grounded is None else [bool(grounded)]


def _detail_sets(unit: UnitScore) -> tuple[set, set, set]:
    """The scorer's matched, missed and spurious items of a unit, as sets of tuples."""
    matched, missed, spurious = ({tuple(x) for x in unit.detail[key]} for key in ("matched", "missed", "spurious"))
    return matched, missed, spurious


def _mention_set(spec: DatasetSpec, example: Example, prediction: Prediction, unit: UnitScore):
    matched, missed, spurious = _detail_sets(unit)
    found = _grounding(example)
    written: dict[tuple[str, str], list[str]] = {}
    for entity_type, raw in sorted(prediction.entities):
        if norm := normalize_mention(raw):
            written.setdefault((entity_type, norm), []).append(raw)
    gold_written: dict[tuple[str, str], list[str]] = {}
    for entity in example.entities:
        if norm := normalize_mention(entity.mention):
            gold_written.setdefault((entity.type, norm), [])
            if entity.mention not in gold_written[(entity.type, norm)]:
                gold_written[(entity.type, norm)].append(entity.mention)
    # The scorer's own lenient pairs (`lenient_pairs`): what its lenient counts add and refuse,
    # each (prediction, gold) pair shown to a reader.
    boundary, refused = lenient_pairs(spurious, missed)
    predicted_pair = {p: ("boundary", g) for p, g in boundary} | {p: ("lenient_refused", g) for p, g in refused}
    gold_types: dict[str, set[str]] = {}
    for entity_type, mention in matched | missed:
        gold_types.setdefault(mention, set()).add(entity_type)
    pred_types: dict[str, set[str]] = {}
    for entity_type, mention in matched | spurious:
        pred_types.setdefault(mention, set()).add(entity_type)

    def side(items: set, written_of: dict, paired: dict, other_types: dict, other: str, unmatched: str) -> list:
        """One side's entries; `paired` maps an item to its lenient verdict and partner, `other`
        names the other side in a paired or wrong-type entry."""
        entries = []
        for item in sorted(items):
            entity_type, mention = item
            entry: dict[str, Any] = {"type": entity_type, "mention": mention, "written": written_of.get(item, [mention])}
            if other == "gold":  # predicted mentions are looked for in the text
                entry["grounded"] = found(mention)
            if item in matched:
                entry["verdict"] = "matched"
            elif item in paired:
                verdict, partner = paired[item]
                entry.update({"verdict": verdict, f"{other}_mention": partner[1]})
            elif wrong := other_types.get(mention, set()) - {entity_type}:
                entry.update({"verdict": "wrong_type", f"{other}_type": sorted(wrong)[0]})
            else:
                entry["verdict"] = unmatched
            entries.append(entry)
        return entries

    predicted = side(matched | spurious, written, predicted_pair, gold_types, "gold", "spurious")
    gold_pair = {g: ("boundary", p) for p, g in boundary}  # a refused gold item stays missed, as scored
    return predicted, side(matched | missed, gold_written, gold_pair, pred_types, "predicted", "missed"), {}


def _triple_verdict(triple: tuple[str, str, str], gold: set[tuple[str, str, str]]) -> tuple[str, tuple | None]:
    head, relation, tail = triple
    if (tail, relation, head) in gold:
        return "reversed", (tail, relation, head)
    same_pair = sorted(g for g in gold if g[0] == head and g[2] == tail)
    if same_pair:
        return "wrong_relation", same_pair[0]
    swapped_pair = sorted(g for g in gold if g[0] == tail and g[2] == head)
    if swapped_pair:
        return "wrong_relation_reversed", swapped_pair[0]
    return "spurious", None


def _ordered_triples(spec: DatasetSpec, example: Example, prediction: Prediction, unit: UnitScore):
    matched, missed, spurious = _detail_sets(unit)
    gold_all = matched | missed
    found = _grounding(example)
    predicted = []
    accounted: dict[tuple, str] = {}
    for item in sorted(matched | spurious):
        head, relation, tail = item
        entry: dict[str, Any] = {
            "head": head, "relation": relation, "tail": tail, "grounded": {"head": found(head), "tail": found(tail)},
        }
        if item in matched:
            entry["verdict"] = "matched"
        else:
            verdict, counterpart = _triple_verdict(item, gold_all)
            entry["verdict"] = verdict
            if counterpart is not None:
                entry["gold"] = list(counterpart)
                accounted.setdefault(counterpart, verdict)
        predicted.append(entry)
    gold = []
    for item in sorted(gold_all):
        head, relation, tail = item
        verdict = "matched" if item in matched else accounted.get(item, "missed")
        gold.append({"head": head, "relation": relation, "tail": tail, "verdict": verdict})
    return predicted, gold, {}


def _concept_names(example: Example, concept: str) -> list[str]:
    names = list(dict.fromkeys(example.concept_mentions.get(concept, [])))
    for entity in example.entities:
        if concept in entity.concept_ids and entity.mention not in names:
            names.append(entity.mention)
    return names[:3] or [concept]


def _concept_pairs(spec: DatasetSpec, example: Example, prediction: Prediction, unit: UnitScore):
    found = _grounding(example)
    covered = {tuple(x) for x in unit.detail["covered_concept_pairs"]}
    missed = {tuple(x) for x in unit.detail["missed_concept_pairs"]}
    predicted = []
    reversed_cover: set[tuple[str, str]] = set()
    wrong_so_far: list[tuple[str, str, str]] = []
    fp_so_far = 0
    # Each pair on its own: the scorer judges a string pair independently of the others (only the
    # deduplication of wrong pairs looks across them, replayed below in the scorer's order).
    for raw in sorted(prediction.relations):
        alone = score_unit(spec, example, Prediction(relations={raw}))
        head, relation, tail = raw
        strings = alone.detail["matched" if alone.tp else "spurious"][0]
        entry: dict[str, Any] = {"head": strings[0], "tail": strings[1], "written": [head, tail]}
        if alone.tp:
            entry.update(verdict="matched", covers=[list(p) for p in alone.detail["covered_concept_pairs"]])
        else:
            backwards = score_unit(spec, example, Prediction(relations={(tail, relation, head)}))
            if backwards.tp:
                entry.update(verdict="reversed", covers=[list(p) for p in backwards.detail["covered_concept_pairs"]])
                reversed_cover |= {tuple(p) for p in backwards.detail["covered_concept_pairs"]}
            else:
                entry["verdict"] = "spurious"
            wrong_so_far.append(raw)
            fp = score_unit(spec, example, Prediction(relations=set(wrong_so_far))).fp
            entry["counted"] = fp > fp_so_far  # false: the same wrong concept pair as an earlier one
            fp_so_far = fp
        entry["grounded"] = {"head": found(entry["head"]), "tail": found(entry["tail"])}
        predicted.append(entry)
    gold = []
    for pair in sorted(covered | missed):
        verdict = "matched" if pair in covered else ("reversed" if pair in reversed_cover else "missed")
        gold.append({
            "head": pair[0], "tail": pair[1], "head_names": _concept_names(example, pair[0]),
            "tail_names": _concept_names(example, pair[1]), "verdict": verdict,
        })
    return predicted, gold, {}


def _label_set(spec: DatasetSpec, example: Example, prediction: Prediction, unit: UnitScore):
    gold_labels = set(unit.detail["gold"])
    predicted_labels = set(unit.detail["predicted"])
    any_missed = bool(gold_labels - predicted_labels)
    known = set(spec.labels)
    predicted = []
    for label in sorted(predicted_labels):
        if label in gold_labels:
            verdict = "matched"
        elif label not in known:
            verdict = "unknown_label"
        elif any_missed:
            verdict = "wrong_label"
        else:
            verdict = "extra_label"
        predicted.append({"label": label, "verdict": verdict})
    gold = [{"label": label, "verdict": "matched" if label in predicted_labels else "missed"} for label in sorted(gold_labels)]
    return predicted, gold, {}


def _choice(spec: DatasetSpec, example: Example, prediction: Prediction, unit: UnitScore):
    gold_option, chosen = unit.detail["gold"], unit.detail["predicted"]
    correct = bool(unit.correct)
    verdict = "correct" if correct else ("no_choice" if chosen is None else "wrong_option")
    predicted = [] if chosen is None else [
        {"option": chosen, "text": example.options.get(chosen, ""), "verdict": "matched" if correct else "wrong_option"}
    ]
    gold = [{"option": gold_option, "text": example.options.get(gold_option, ""), "verdict": "matched" if correct else "missed"}]
    return predicted, gold, {"verdict": verdict, "chosen": chosen, "gold_option": gold_option}


_BUILDERS = {
    "mention_set": _mention_set, "ordered_triples": _ordered_triples, "concept_pairs": _concept_pairs,
    "label_set": _label_set, "choice": _choice,
}


# --------------------------------------------------------------------------------------------
# reading verdicts back


def verdict_counts(verdicts: Mapping[str, Any]) -> tuple[int, int, int]:
    """(tp, fp, fn) from the items' verdicts alone (equal to the scorer's counts by construction)."""
    tp = sum(1 for item in verdicts["gold"] if item["verdict"] == "matched")
    fn = sum(1 for item in verdicts["gold"] if item["verdict"] != "matched")
    fp = sum(1 for item in verdicts["predicted"] if item["verdict"] != "matched" and item.get("counted", True))
    return tp, fp, fn


def lenient_counts(verdicts: Mapping[str, Any]) -> tuple[int, int, int]:
    """NER's lenient (tp, fp, fn): each boundary pair counts as a match."""
    tp, fp, fn = verdict_counts(verdicts)
    extra = sum(1 for item in verdicts["predicted"] if item["verdict"] == "boundary")
    return tp + extra, fp - extra, fn - extra


def unit_is_right(verdicts: Mapping[str, Any]) -> bool:
    """The unit is answered exactly: the right option, or no spurious and no missed item."""
    if "correct" in verdicts:
        return bool(verdicts["correct"])
    tp, fp, fn = verdict_counts(verdicts)
    return fp == 0 and fn == 0 and verdicts.get("parse_fail") is None


def error_verdicts(verdicts: Mapping[str, Any]) -> Counter:
    """How many items of each error kind the unit has (predicted errors, then missed gold)."""
    kinds: Counter = Counter()
    if verdicts["rule"] == "choice":  # one decision: the wrong option (or none), not also a "missed" gold
        if not verdicts.get("correct"):
            kinds[verdicts.get("verdict", "wrong_option")] += 1
    else:
        kinds.update(item["verdict"] for item in verdicts["predicted"] if item["verdict"] != "matched" and item.get("counted", True))
        kinds.update(item["verdict"] for item in verdicts["gold"] if item["verdict"] == "missed")
    if verdicts.get("parse_fail"):
        kinds["parse_fail"] += 1
    return kinds


def unit_analysis_values(spec: DatasetSpec, example: Example, prediction: Prediction, unit: UnitScore) -> dict[str, Any]:
    """The per-unit values the samples files carry beside the scorer's metrics: `verdicts`, and for
    NER and RE `ungrounded_rate` as [ungrounded, checked] (summed over units by `ungrounded_rate`)."""
    verdicts = unit_verdicts(spec, example, prediction, unit)
    values: dict[str, Any] = {"verdicts": verdicts}
    if "grounding" in verdicts:
        values["ungrounded_rate"] = [verdicts["grounding"]["ungrounded"], verdicts["grounding"]["checked"]]
    return values


def analysis_metric_names(spec: DatasetSpec) -> tuple[str, ...]:
    """The names `unit_analysis_values` returns for `spec`."""
    return ("verdicts", "ungrounded_rate") if spec.matching_rule in GROUNDED_RULES else ("verdicts",)


# Aggregations (lm-eval's `aggregation` of these metric names, and the BERT writer's).


def ungrounded_rate(items: Iterable[Sequence[int]]) -> float:
    """Share of predicted mentions/arguments found nowhere in their unit's text. NaN when nothing
    was predicted: 0 of 0 is no rate, and 0.0 would say "made nothing up" of a run that said
    nothing (the leaderboard shows it as n/a, as `taiyi report` does)."""
    ungrounded = checked = 0
    for item in items:
        ungrounded += int(item[0])
        checked += int(item[1])
    return ungrounded / checked if checked else float("nan")


def verdict_totals(items: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Split-level count of each verdict: matched gold items, missed gold items, each kind of
    predicted error, and parse failures (kinds that never occur are left out)."""
    totals: Counter = Counter()
    for verdicts in items:
        totals["matched"] += sum(1 for item in verdicts["gold"] if item["verdict"] == "matched")
        totals.update(error_verdicts(verdicts))
    return {key: int(value) for key, value in sorted(totals.items()) if value}


ANALYSIS_AGGREGATIONS: dict[str, Callable] = {"verdicts": verdict_totals, "ungrounded_rate": ungrounded_rate}
# lm-eval's higher_is_better: verdict totals are a breakdown, not a score.
ANALYSIS_HIGHER_IS_BETTER: dict[str, bool | None] = {"verdicts": None, "ungrounded_rate": False}


# --------------------------------------------------------------------------------------------
# per-type scores


def per_type_counts(verdicts_list: Iterable[Mapping[str, Any]]) -> dict[str, list[int]]:
    """{type/predicate/label: [tp, fp, fn]} summed over units (the scorer's per-type counts)."""
    return sum_per_type(verdicts.get("per_type", {}) for verdicts in verdicts_list)


def per_type_table(totals: Mapping[str, Sequence[int]], spec: DatasetSpec | None = None) -> dict[str, dict[str, float]]:
    """{key: precision, recall, f1, support (gold count), tp, fp, fn} from summed counts; with
    `spec`, every label of the set has a row (zeros where the run met none of it)."""
    table = {}
    seeded = {label: (0, 0, 0) for label in (spec.labels if spec is not None and spec.task_type != "qa" else ())}
    for key, (tp, fp, fn) in sorted({**seeded, **totals}.items()):
        precision, recall, f1 = prf(tp, fp, fn)
        table[key] = {"precision": precision, "recall": recall, "f1": f1, "support": tp + fn, "tp": tp, "fp": fp, "fn": fn}
    return table


# --------------------------------------------------------------------------------------------
# checking logged verdicts


# The fields each matching rule's items need to be shown (`taiyi_bench.harness.apps.report.item_text`).
_ITEM_FIELDS = {
    "mention_set": ("type", "mention"), "ordered_triples": ("head", "relation", "tail"),
    "concept_pairs": ("head", "tail"), "label_set": ("label",), "choice": (),
}


def _count_problem(value: Any) -> bool:
    return isinstance(value, bool) or not isinstance(value, int) or value < 0


def verdicts_problem(verdicts: Any) -> str | None:
    """What is wrong with a logged `verdicts` entry (None when it has every field, of the right
    kind, that the report and `taiyi compare` read). A samples file is data from disk: one hand
    edit or a writer's bug must become a message naming the line, not a KeyError deep inside."""
    if not isinstance(verdicts, dict):
        return f"a JSON {type(verdicts).__name__}, not an object"
    rule = verdicts.get("rule")
    if rule not in _BUILDERS:
        return f"rule {rule!r} is not one of {', '.join(_BUILDERS)}"
    counts = verdicts.get("counts")
    if not isinstance(counts, dict) or any(_count_problem(counts.get(k)) for k in ("tp", "fp", "fn")):
        return "'counts' must hold tp, fp and fn as counts"
    prediction = verdicts.get("prediction")
    if not isinstance(prediction, dict) or not any(k != "parse_failed" for k in prediction):
        return "'prediction' must be an object with the parsed prediction"
    for side in ("predicted", "gold"):
        items = verdicts.get(side)
        if not isinstance(items, list):
            return f"{side!r} must be a list of items"
        for index, item in enumerate(items):
            if not isinstance(item, dict) or not isinstance(item.get("verdict"), str):
                return f"{side}[{index}] has no verdict"
            missing = [name for name in _ITEM_FIELDS[rule] if name not in item]
            if rule == "concept_pairs" and side == "gold" and not (
                    isinstance(item.get("head_names"), list) and item["head_names"]
                    and isinstance(item.get("tail_names"), list) and item["tail_names"]):
                missing.append("head_names/tail_names")
            if missing:
                return f"{side}[{index}] lacks {', '.join(missing)}"
            grounded = item.get("grounded")
            if grounded is not None and not isinstance(grounded, (bool, dict)):
                return f"{side}[{index}] 'grounded' is {grounded!r}"
    per_type = verdicts.get("per_type", {})
    if not isinstance(per_type, dict) or any(
            not isinstance(v, list) or len(v) != 3 or any(_count_problem(x) for x in v) for v in per_type.values()):
        return "'per_type' must map each type to [tp, fp, fn]"
    if verdicts.get("parse_fail") is not None and not isinstance(verdicts["parse_fail"], str):
        return "'parse_fail' must be a reason or null"
    grounding = verdicts.get("grounding")
    if grounding is not None and (not isinstance(grounding, dict)
                                  or any(_count_problem(grounding.get(k)) for k in ("checked", "ungrounded"))):
        return "'grounding' must hold checked and ungrounded as counts"
    if "correct" in verdicts and not isinstance(verdicts["correct"], bool):
        return "'correct' must be true or false"
    return None
