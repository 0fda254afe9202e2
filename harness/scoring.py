"""The matching rules and metrics: one scorer for LLM text (via `taiyi_bench.harness.parsers`) and for
discriminative models (which build `Prediction`s directly).

Per unit (`score_unit`) the gold and the prediction become sets of normalised items
(`normalize_mention` on both sides) and are compared; over a split (`aggregate`, or lm-eval's
aggregation functions below) the counts are summed, never the per-unit scores averaged. The
registry names each set's rule (`DatasetSpec.matching_rule`); `SCORERS` has one function per
rule (the README states them in plain words):

NER   `mention_set`: items = {(type id, normalised mention)} per unit (duplicates collapse on
      both sides); micro P/R/F1 over all units. Lenient (`lenient_match`): after exact matches, a
      remaining prediction matches a remaining gold item of its type when one normalised mention
      contains the other at word boundaries for spaced scripts ("breast cancer" ⊇ "cancer",
      "calcium" ⊉ "ca"; each CJK character is a boundary) - LLM output has no offsets - and the
      longer is at most twice the shorter or two words longer (`mention_size`: a CJK character is
      half a word), so a copied clause that contains a gold mention is no match; one-to-one
      (maximum bipartite matching). `lenient_refused` counts the overlapping pairs the length
      bound kept apart. Per-type counts cover the set's types plus any type predicted (a
      wrong-type entity is a false positive of its type); macro-F1 over types averages the types
      with any gold or prediction in the split.
RE    `ordered_triples` (CMeIE): items = {(normalised subject, predicate id, normalised object)};
      exact and ordered (CBLUE's rule; symmetric predicates are not swapped).
      `concept_pairs` (BC5CDR CID): gold items are (chemical MeSH, disease MeSH) pairs. A
      predicted string pair (h, t) maps h to every chemical concept with a mention equal to h
      after normalisation in that abstract (concept_mentions plus the entities' own text and
      concept ids, so a composite mention maps to each of its concepts), and t likewise to
      disease concepts; MeSH "-1" (unnormalised) is never a concept. The pair is correct when
      some (chemical, disease) combination is a gold pair: every gold pair it covers is a TP,
      once however many string pairs (synonyms, abbreviations) cover it. A string pair that
      covers no gold pair is one FP, deduplicated by its concept pairs when both sides map (so
      "DOX"/"doxorubicin" variants of a wrong pair count once), else by its normalised strings.
      Order matters: a (disease, chemical) pair maps to nothing.
TC    `label_set`: items = {label id} per unit; micro-F1 over (unit, label) decisions (units with
      neither gold nor predicted labels add nothing: HoC's "none" is a legal answer). A label
      outside the set stays as its normalised text, a false positive. Every label given is a
      decision, on single-label sets too: a hedge "right; wrong" is one TP and one FP.
      Single-label sets (KUAKE-QIC) also get `acc`: the share of units whose predicted label set
      is exactly {gold label}; it equals micro-F1 only when every unit gets exactly one label.
QA    `choice`: accuracy of the chosen option; the choice and the gold are both mapped to the
      option letter (a letter, or text equal to an option's text after normalisation).
All   `parse_fail` = share of units whose output could not be parsed; such a unit is scored as an
      empty prediction (its gold items are false negatives, nothing is guessed).

Metric values are fractions in [0, 1]. An F1 with nothing to count (no gold and no prediction
anywhere) is 0.0, as in seqeval and scikit-learn.
"""

from __future__ import annotations

import itertools
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from taiyi_bench.harness.normalize import label_resolver, normalize_label, normalize_mention
from taiyi_bench.harness.occurrences import occurrence_counts
from taiyi_bench.harness.records import Example, Prediction
from taiyi_bench.harness.registry import DatasetSpec


@dataclass(frozen=True)
class RulesChange:
    """What one scoring-rules version changed: the sets whose scores it can move (`touches`), for
    which producers ("llm": text read by taiyi_bench.harness.parsers; "discriminative": predictions
    a model built directly), and the metrics it added. `taiyi rescore` reads it to bring a run
    without per-unit data up to date: only when no change since the run's version touches it."""

    what: str
    touches: Callable[[DatasetSpec], bool]
    producers: frozenset[str] = frozenset({"llm", "discriminative"})
    added_metrics: tuple[str, ...] = ()


# Each version's change, by the version that made it (1 is the first rules). Add an entry whenever
# a rule above, or a parser (taiyi_bench.harness.parsers), changes what any unit scores: its key is
# the new `SCORING_RULES_VERSION`, recorded in every results file; the leaderboard keeps runs of
# different versions apart.
RULES_CHANGES: dict[int, RulesChange] = {
    2: RulesChange('an echoed instruction ("请判断…，可选类别：<query>", "Possible answers:") is not an answer',
                   lambda spec: True, producers=frozenset({"llm"})),
    # The added metrics are new keys, not new values of old ones: a run that has them is untouched.
    3: RulesChange("single-label TC's headline is accuracy (CBLUE's KUAKE-QIC metric); official-rule metrics added",
                   lambda spec: spec.task_type == "tc" and not spec.multi_label,
                   added_metrics=("strict_occurrence_micro_f1", "abstract_micro_f1", "macro_f1_over_classes")),
    4: RulesChange("a lenient NER match is refused when one mention is more than twice the other's size and two "
                   "words longer (a copied sentence that contains a gold mention); `lenient_refused` counts them",
                   lambda spec: spec.task_type == "ner"),
}
SCORING_RULES_VERSION = max(RULES_CHANGES)

Counts = tuple[int, int, int]  # (tp, fp, fn)
Mention = tuple[str, str]  # NER item: (type id, normalised mention)

_NO_CONCEPT = {"", "-1", "-"}


@dataclass
class UnitScore:
    """The score of one unit. Micro metrics use (tp, fp, fn); QA (and single-label TC) `correct`."""

    task_type: str
    tp: int = 0
    fp: int = 0
    fn: int = 0
    lenient: Counts | None = None  # NER only
    lenient_refused: int = 0  # NER: overlapping (prediction, gold) pairs the length bound kept apart
    occurrence: Counts | None = None  # NER: the occurrence-level strict rule (taiyi_bench.harness.occurrences)
    document: str | None = None  # TC with a registry `document_key`: the unit's abstract
    per_type: dict[str, list[int]] = field(default_factory=dict)  # type/predicate/label -> [tp, fp, fn]
    correct: int | None = None  # QA: the right option; single-label TC: exactly the gold label
    parse_failed: bool = False
    # For the samples log: what matched, what was missed, what was spurious (normalised).
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def counts(self) -> Counts:
        return (self.tp, self.fp, self.fn)


# --------------------------------------------------------------------------------------------
# arithmetic


def prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    """Precision, recall, F1 from counts (0.0 where a denominator is 0)."""
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    return precision, recall, f1


def _sum_counts(items: Iterable[Sequence[int]]) -> Counts:
    tp = fp = fn = 0
    for item in items:
        tp += int(item[0])
        fp += int(item[1])
        fn += int(item[2])
    return tp, fp, fn


def micro_prf(items: Iterable[Sequence[int]]) -> tuple[float, float, float]:
    """Corpus-level micro (precision, recall, F1) from per-unit [tp, fp, fn] values."""
    return prf(*_sum_counts(items))


def micro_f1(items: Iterable[Sequence[int]]) -> float:
    return micro_prf(items)[2]


def micro_precision(items: Iterable[Sequence[int]]) -> float:
    return micro_prf(items)[0]


def micro_recall(items: Iterable[Sequence[int]]) -> float:
    return micro_prf(items)[1]


def sum_per_type(items: Iterable[Mapping[str, Sequence[int]]]) -> dict[str, list[int]]:
    """{type/predicate/label: [tp, fp, fn]} summed over per-unit {key: [tp, fp, fn]} values."""
    totals: dict[str, list[int]] = {}
    for item in items:
        for key, counts in item.items():
            slot = totals.setdefault(key, [0, 0, 0])
            for index in range(3):
                slot[index] += int(counts[index])
    return totals


def macro_f1_over_types(items: Iterable[Mapping[str, Sequence[int]]]) -> float:
    """Mean per-type F1 from per-unit {type: [tp, fp, fn]} values, over the types that have any
    gold or predicted item in the split (as seqeval's and scikit-learn's macro average)."""
    totals = [c for c in sum_per_type(items).values() if any(c)]
    if not totals:
        return 0.0
    return sum(prf(*c)[2] for c in totals) / len(totals)


def mean(items: Iterable[float]) -> float:
    values = [float(x) for x in items]
    return sum(values) / len(values) if values else 0.0


# --------------------------------------------------------------------------------------------
# matching helpers


def _spaced_word_char(ch: str) -> bool:
    return ch.isalnum() and unicodedata.east_asian_width(ch) not in ("W", "F")


def overlaps(a: str, b: str) -> bool:
    """Lenient overlap of two normalised mentions: one contains the other at word boundaries."""
    if not a or not b:
        return False
    short, long = (a, b) if len(a) <= len(b) else (b, a)
    start = long.find(short)
    while start != -1:
        end = start + len(short)
        left_ok = start == 0 or not (_spaced_word_char(long[start - 1]) and _spaced_word_char(short[0]))
        right_ok = end == len(long) or not (_spaced_word_char(long[end]) and _spaced_word_char(short[-1]))
        if left_ok and right_ok:
            return True
        start = long.find(short, start + 1)
    return False


# How many words the longer of two lenient partners may add to a short one (see `lenient_match`).
LENIENT_EXTRA_WORDS = 2


def mention_size(mention: str) -> float:
    """A mention's size in words: each run of letters and digits of a spaced script is one word
    ("a-t" is two), each CJK character half of one (a Chinese word is about two characters:
    CMeEE's gold mentions average 4.8 characters where the English sets' average 1.2-2 words)."""
    size, in_word = 0.0, False
    for ch in mention:
        spaced = _spaced_word_char(ch)
        if spaced and not in_word:
            size += 1
        elif not spaced and ch.isalnum():
            size += 0.5
        in_word = spaced
    return size


def lenient_match(a: str, b: str) -> bool:
    """The lenient NER rule for two normalised mentions of one type: one contains the other at
    word boundaries (`overlaps`) and the longer is at most twice the shorter or at most
    `LENIENT_EXTRA_WORDS` longer (`mention_size`). "breast cancer" matches "familial breast
    cancer" and 糖尿病 matches 2型糖尿病, but a copied sentence holding "a-t" does not match "a-t":
    without the bound, copying the text would win the lenient score."""
    short, long = sorted((mention_size(a), mention_size(b)))
    return long - short <= max(LENIENT_EXTRA_WORDS, short) and overlaps(a, b)


def max_matching(left: list[Any], right: list[Any], edge) -> list[tuple[int, int]]:
    """A maximum bipartite matching as (left index, right index) pairs (Kuhn's augmenting paths,
    in the given order; the sets are a few items)."""
    adjacency = [[j for j, r in enumerate(right) if edge(item, r)] for item in left]
    owner: list[int | None] = [None] * len(right)

    def augment(i: int, seen: set[int]) -> bool:
        for j in adjacency[i]:
            if j in seen:
                continue
            seen.add(j)
            if owner[j] is None or augment(owner[j], seen):
                owner[j] = i
                return True
        return False

    for i in range(len(left)):
        if adjacency[i]:
            augment(i, set())
    return [(i, j) for j, i in enumerate(owner) if i is not None]


def lenient_pairs(
    spurious: Iterable[Mention], missed: Iterable[Mention]
) -> tuple[list[tuple[Mention, Mention]], list[tuple[Mention, Mention]]]:
    """NER's lenient rule over one unit's spurious and missed items, as (prediction, gold) pairs:
    those it matches (a maximum one-to-one matching under `lenient_match`, same type) and those
    the length bound refused (among the items left over, a maximum one-to-one matching of
    same-type items that merely `overlaps`). The scorer counts both lists, the verdicts show them."""
    def pairs(left: list[Mention], right: list[Mention], match: Callable[[str, str], bool]) -> list[tuple[Mention, Mention]]:
        found = max_matching(left, right, lambda p, g: p[0] == g[0] and match(p[1], g[1]))
        return [(left[i], right[j]) for i, j in found]

    predicted, gold = sorted(spurious), sorted(missed)
    matched = pairs(predicted, gold, lenient_match)
    paired_predicted, paired_gold = {p for p, _ in matched}, {g for _, g in matched}
    return matched, pairs([p for p in predicted if p not in paired_predicted], [g for g in gold if g not in paired_gold], overlaps)


def _count_per_key(gold: set, pred: set, key_of, keys: Iterable[str]) -> dict[str, list[int]]:
    per: dict[str, list[int]] = {k: [0, 0, 0] for k in keys}
    for item in gold & pred:
        per.setdefault(key_of(item), [0, 0, 0])[0] += 1
    for item in pred - gold:
        per.setdefault(key_of(item), [0, 0, 0])[1] += 1
    for item in gold - pred:
        per.setdefault(key_of(item), [0, 0, 0])[2] += 1
    return per


def _sorted(items: Iterable[tuple]) -> list[list[str]]:
    return [list(x) for x in sorted(items)]


# --------------------------------------------------------------------------------------------
# per task type


def _score_ner(spec: DatasetSpec, example: Example, prediction: Prediction) -> UnitScore:
    gold = {(e.type, m) for e in example.entities if (m := normalize_mention(e.mention))}
    pred = {(t, m) for t, raw in prediction.entities if (m := normalize_mention(raw))}
    hit, spurious, missed = gold & pred, pred - gold, gold - pred
    tp, fp, fn = len(hit), len(spurious), len(missed)
    matched, refused = lenient_pairs(spurious, missed)
    extra = len(matched)
    return UnitScore(
        task_type="ner", tp=tp, fp=fp, fn=fn, lenient=(tp + extra, fp - extra, fn - extra), lenient_refused=len(refused),
        occurrence=occurrence_counts(example, prediction.entities, spec.mention_grounding, prediction.spans),
        per_type=_count_per_key(gold, pred, lambda x: x[0], spec.labels),
        parse_failed=prediction.parse_failed,
        detail={"matched": _sorted(hit), "missed": _sorted(missed), "spurious": _sorted(spurious)},
    )


def _canonical_relation(spec: DatasetSpec, relation: str) -> str:
    return label_resolver(spec).resolve(relation) or normalize_label(relation)


def _score_re_concepts(spec: DatasetSpec, example: Example, prediction: Prediction) -> UnitScore:
    # normalised mention -> concept ids, and concept id -> entity types, for this abstract.
    concepts_of: dict[str, set[str]] = {}
    types_of: dict[str, set[str]] = {}
    for concept, mentions in example.concept_mentions.items():
        if concept in _NO_CONCEPT:
            continue
        for mention in mentions:
            if norm := normalize_mention(mention):
                concepts_of.setdefault(norm, set()).add(concept)
    for entity in example.entities:
        ids = [c for c in entity.concept_ids if c not in _NO_CONCEPT]
        for concept in ids:
            types_of.setdefault(concept, set()).add(entity.type)
        if ids and (norm := normalize_mention(entity.mention)):
            concepts_of.setdefault(norm, set()).update(ids)
    gold = {(r.head, r.tail) for r in example.relations}
    head_types = {r.head_type for r in example.relations if r.head_type}
    tail_types = {r.tail_type for r in example.relations if r.tail_type}
    for r in example.relations:  # relation arguments are concepts of their role even without entities
        types_of.setdefault(r.head, set()).update({r.head_type} if r.head_type else set())
        types_of.setdefault(r.tail, set()).update({r.tail_type} if r.tail_type else set())

    def role_concepts(text: str, allowed: set[str]) -> set[str]:
        found = concepts_of.get(normalize_mention(text), set())
        if not allowed:
            return set(found)
        return {c for c in found if not types_of.get(c) or types_of[c] & allowed}

    def best_reading(head: str, tail: str) -> tuple[tuple[str, str], set[tuple[str, str]]]:
        # The written split first, then every other comma of "head, tail": a pair like
        # "[lead, impairments in learning, attention, and arousal regulation]" is ambiguous text.
        head, tail = normalize_mention(head), normalize_mention(tail)
        joined = f"{head},{tail}"
        others = ((normalize_mention(joined[:k]), normalize_mention(joined[k + 1 :]))
                  for k, ch in enumerate(joined) if ch == "," and k != len(head))
        fallback = None
        for strings in itertools.chain([(head, tail)], others):
            heads, tails = role_concepts(strings[0], head_types), role_concepts(strings[1], tail_types)
            combos = {(h, t) for h in heads for t in tails}
            if combos & gold:
                return strings, combos
            if fallback is None or (combos and not fallback[1]):
                fallback = (strings, combos)
        return fallback

    covered: set[tuple[str, str]] = set()
    wrong: set[tuple] = set()
    matched_strings, spurious_strings = [], []
    for head, _relation, tail in sorted(prediction.relations):
        strings, combos = best_reading(head, tail)
        hits = combos & gold
        if hits:
            covered |= hits
            matched_strings.append(list(strings))
        else:
            wrong.add(("concepts", frozenset(combos)) if combos else ("strings", *strings))
            spurious_strings.append(list(strings))
    tp, fp, fn = len(covered), len(wrong), len(gold - covered)
    return UnitScore(
        task_type="re", tp=tp, fp=fp, fn=fn, per_type={spec.labels[0]: [tp, fp, fn]}, parse_failed=prediction.parse_failed,
        detail={
            "matched": matched_strings,
            "covered_concept_pairs": _sorted(covered),
            "missed_concept_pairs": _sorted(gold - covered),
            "spurious": spurious_strings,
        },
    )


def _score_re_triples(spec: DatasetSpec, example: Example, prediction: Prediction) -> UnitScore:
    gold = {
        (h, _canonical_relation(spec, r.relation), t)
        for r in example.relations
        if (h := normalize_mention(r.head)) and (t := normalize_mention(r.tail))
    }
    pred = {
        (h, _canonical_relation(spec, rel), t)
        for head, rel, tail in prediction.relations
        if (h := normalize_mention(head)) and (t := normalize_mention(tail))
    }
    hit, spurious, missed = gold & pred, pred - gold, gold - pred
    if spurious and missed:
        # Where the comma between head and tail sits is ambiguous when an argument contains a
        # comma ("[A，B，C]"); a prediction whose "head,tail" text equals a missed gold triple's
        # (same predicate) is that triple.
        by_text: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
        for g in sorted(missed):
            by_text.setdefault((f"{g[0]},{g[2]}", g[1]), []).append(g)
        for p in sorted(spurious):
            candidates = by_text.get((f"{p[0]},{p[2]}", p[1]))
            if candidates:
                g = candidates.pop()
                hit, spurious, missed = hit | {g}, spurious - {p}, missed - {g}
    return UnitScore(
        task_type="re", tp=len(hit), fp=len(spurious), fn=len(missed),
        per_type=_count_per_key(gold, pred, lambda x: x[1], ()),
        parse_failed=prediction.parse_failed,
        detail={"matched": _sorted(hit), "missed": _sorted(missed), "spurious": _sorted(spurious)},
    )


def _canonical_label(spec: DatasetSpec, label: str) -> str:
    return label_resolver(spec).resolve(label) or normalize_mention(label)


def _score_tc(spec: DatasetSpec, example: Example, prediction: Prediction) -> UnitScore:
    gold = {_canonical_label(spec, x) for x in example.labels}
    pred = {c for x in prediction.labels if (c := _canonical_label(spec, x))}
    hit, spurious, missed = gold & pred, pred - gold, gold - pred
    return UnitScore(
        task_type="tc", tp=len(hit), fp=len(spurious), fn=len(missed),
        per_type=_count_per_key(gold, pred, lambda x: x, spec.labels),
        correct=None if spec.multi_label else int(pred == gold),
        document=str(example.meta.get(spec.document_key, example.id)) if spec.document_key else None,
        parse_failed=prediction.parse_failed,
        detail={"gold": sorted(gold), "predicted": sorted(pred)},
    )


def canonical_choice(example: Example, choice: str | None) -> str | None:
    """Map a choice (letter, option text or label word) to the example's option letter."""
    if choice is None:
        return None
    choice = str(choice).strip()
    if choice in example.options:
        return choice
    norm = normalize_mention(choice)
    for letter, text in example.options.items():
        if normalize_mention(text) == norm:
            return letter
    for letter in example.options:
        if normalize_mention(letter) == norm:  # "b" for "B"
            return letter
    return norm


def _score_qa(spec: DatasetSpec, example: Example, prediction: Prediction) -> UnitScore:
    gold = canonical_choice(example, example.answer)
    pred = canonical_choice(example, prediction.choice)
    return UnitScore(task_type="qa", correct=int(pred is not None and pred == gold), parse_failed=prediction.parse_failed,
                     detail={"gold": gold, "predicted": pred})


# The scorer of each matching rule the registry can name.
SCORERS = {
    "mention_set": _score_ner, "concept_pairs": _score_re_concepts, "ordered_triples": _score_re_triples,
    "label_set": _score_tc, "choice": _score_qa,
}


def score_unit(spec: DatasetSpec, example: Example, prediction: Prediction) -> UnitScore:
    """Score one unit's prediction against its gold, by the set's matching rule."""
    return SCORERS[spec.matching_rule](spec, example, prediction)


def score_output(
    spec: DatasetSpec, example: Example, text: str | None
) -> tuple[Prediction, UnitScore]:
    """Parse an LLM output and score it (what lm-eval's process_results does)."""
    from taiyi_bench.harness.parsers import parse_output

    prediction = parse_output(spec, text, options=example.options or None)
    return prediction, score_unit(spec, example, prediction)


# --------------------------------------------------------------------------------------------
# aggregations over per-unit values (lm-eval calls them with the list of one metric's values)


def abstract_micro_f1(items: Iterable[Mapping[str, Any]]) -> float:
    """BLURB's HoC rule: a label holds for an abstract when any of its sentences has it, in gold
    and prediction alike; micro-F1 over (abstract, label) decisions. Per-unit values are
    {"document", "gold", "predicted"}; abstracts without any label take part as all-negative."""
    gold: dict[str, set[str]] = {}
    predicted: dict[str, set[str]] = {}
    for item in items:
        document = str(item["document"])
        gold.setdefault(document, set()).update(item["gold"])
        predicted.setdefault(document, set()).update(item["predicted"])
    tp = fp = fn = 0
    for document, labels in gold.items():
        guessed = predicted[document]
        tp += len(labels & guessed)
        fp += len(guessed - labels)
        fn += len(labels - guessed)
    return prf(tp, fp, fn)[2]


def macro_f1_over_classes(items: Iterable[Mapping[str, Any]]) -> float:
    """Macro-F1 over answer classes (PubMedQA's official script; PromptCBLUE's KUAKE-QIC).

    Per-unit values are {"gold": class, "predicted": [classes], "classes": [the set's classes]}.
    A unit is right when it predicts exactly its gold class (a TP of that class). Otherwise its
    gold class gets a FN, and every predicted class other than the gold a FP: an empty or
    unparseable answer is a FN of its gold class and a FP of none; a label outside the classes is
    no class. The mean runs over the classes that occur in gold or prediction (scikit-learn's
    default label set)."""
    counts: dict[str, list[int]] = {}
    for item in items:
        gold, predicted = str(item["gold"]), [str(c) for c in item["predicted"]]
        if predicted == [gold]:
            counts.setdefault(gold, [0, 0, 0])[0] += 1
            continue
        counts.setdefault(gold, [0, 0, 0])[2] += 1
        classes = set(item["classes"])
        for label in predicted:
            if label != gold and label in classes:
                counts.setdefault(label, [0, 0, 0])[1] += 1
    return sum(prf(*c)[2] for c in counts.values()) / len(counts) if counts else 0.0


# --------------------------------------------------------------------------------------------
# the metric table: every metric a task reports, in one place


def _is_single_label(spec: DatasetSpec) -> bool:
    return spec.task_type == "tc" and not spec.multi_label


def _has_classes(spec: DatasetSpec) -> bool:
    return _is_single_label(spec) or (spec.task_type == "qa" and spec.fixed_answer_classes)


def _class_value(spec: DatasetSpec, unit: UnitScore) -> dict[str, Any]:
    if spec.task_type == "qa":
        gold, predicted = unit.detail.get("gold"), unit.detail.get("predicted")
        return {"gold": gold, "predicted": [] if predicted is None else [predicted], "classes": sorted(spec_classes(spec))}
    return {"gold": (unit.detail.get("gold") or [""])[0], "predicted": list(unit.detail.get("predicted") or []),
            "classes": sorted(spec_classes(spec))}


def spec_classes(spec: DatasetSpec) -> tuple[str, ...]:
    """The answer classes of a set with fixed classes: label ids (TC) or option letters (QA)."""
    if spec.task_type == "qa":
        return tuple(chr(ord("A") + i) for i in range(len(spec.labels)))
    return tuple(spec.labels)


@dataclass(frozen=True)
class Metric:
    """One metric: what it is per unit, how units add up, which sets report it, and the rule it
    implements (a key of `RULES`; for the text-level micro-F1, the set's own matching rule).

    `aggregation` is what lm-eval calls with the per-unit values; `yaml_aggregation` is how the
    task templates name it ("mean", or a function of tasks/utils.py)."""

    name: str
    applies: Callable[[DatasetSpec], bool]
    unit_value: Callable[[DatasetSpec, UnitScore], Any]
    aggregation: Callable[[Any], float]
    rule: Callable[[DatasetSpec], str]
    higher_is_better: bool = True

    @property
    def yaml_aggregation(self) -> str:
        return "mean" if self.aggregation is mean else f"!function utils.{self.aggregation.__name__}"


def _f1_set(spec: DatasetSpec) -> bool:
    return spec.task_type != "qa"


def _counts(spec: DatasetSpec, unit: UnitScore) -> list[int]:
    return list(unit.counts)


def _matching_rule(spec: DatasetSpec) -> str:
    return str(spec.matching_rule)


def _rule(name: str) -> Callable[[DatasetSpec], str]:
    return lambda spec: name


# The rules a metric (or a published number) can be computed by. A published cell names one
# (results/published/*.yaml); the leaderboard sets beside it only the run's metric of that rule.
RULES: dict[str, str] = {
    "mention_set": "text-level NER: per unit the set of normalised (type, mention) strings (repeats count once; case and edge punctuation forgiven)",
    "mention_overlap": "lenient NER: a prediction overlapping a gold mention of its type counts, one-to-one, unless one is over twice the other's size and two words longer (a CJK character is half a word)",
    "occurrence_strict": "occurrence-level strict NER: every occurrence as (type, start, end), no forgiveness (seqeval entity-level F1 on BIO; CBLUE CMeEE span match)",
    "concept_pairs": "BC5CDR CID: (chemical, disease) MeSH concept pairs per abstract (the BioCreative V CDR evaluation kit's relation score)",
    "ordered_triples": "CMeIE: exact ordered (subject, predicate, object) triples (CBLUE's CMeIE rule)",
    "label_set": "micro-F1 over (unit, label) decisions (LitCovid's official label-based micro-F1)",
    "abstract_label_set": "micro-F1 over (abstract, label) decisions, a label holding for an abstract when any sentence has it (BLURB's HoC rule)",
    "accuracy": "share of units answered exactly right (CBLUE KUAKE-QIC; PubMedQA's and MedQA's official scripts)",
    "macro_over_classes": "macro-F1 over the answer classes (PubMedQA's official script; PromptCBLUE's KUAKE-QIC)",
    "macro_over_types": "macro-F1 over entity types/predicates/labels of the text-level counts",
    # No metric of ours implements it: published macro-F1 over labels (Chen et al. 2025 on HoC and
    # LitCovid) has a rule to name, and a run shows "no like metric" beside it, never a micro-F1.
    "macro_over_labels": "macro-F1 over the labels of a multi-label set (Chen et al. 2025's HoC and LitCovid); not computed here",
    "parse_failures": "share of outputs that could not be parsed at all",
}


METRICS: tuple[Metric, ...] = (
    Metric("micro_f1", _f1_set, _counts, micro_f1, _matching_rule),
    Metric("micro_precision", _f1_set, _counts, micro_precision, _matching_rule),
    Metric("micro_recall", _f1_set, _counts, micro_recall, _matching_rule),
    Metric("lenient_micro_f1", lambda s: s.task_type == "ner",
           lambda s, u: list(u.lenient or u.counts), micro_f1, _rule("mention_overlap")),
    Metric("strict_occurrence_micro_f1", lambda s: s.task_type == "ner",
           lambda s, u: list(u.occurrence or (0, 0, 0)), micro_f1, _rule("occurrence_strict")),
    Metric("macro_f1_over_types", lambda s: s.task_type == "ner",
           lambda s, u: {k: list(v) for k, v in u.per_type.items()}, macro_f1_over_types, _rule("macro_over_types")),
    Metric("abstract_micro_f1", lambda s: s.task_type == "tc" and s.document_key is not None,
           lambda s, u: {"document": u.document, "gold": list(u.detail.get("gold", [])),
                         "predicted": list(u.detail.get("predicted", []))},
           abstract_micro_f1, _rule("abstract_label_set")),
    Metric("acc", lambda s: s.task_type == "qa" or _is_single_label(s), lambda s, u: int(u.correct or 0), mean,
           _rule("accuracy")),
    Metric("macro_f1_over_classes", _has_classes, _class_value, macro_f1_over_classes, _rule("macro_over_classes")),
    Metric("parse_fail", lambda s: True, lambda s, u: int(u.parse_failed), mean, _rule("parse_failures"), higher_is_better=False),
)
METRIC_BY_NAME: dict[str, Metric] = {m.name: m for m in METRICS}


def headline_metric_name(spec: DatasetSpec) -> str:
    """The results key of the set's headline metric (the registry's `headline_metric`): "acc"
    for QA and single-label TC, "micro_f1" otherwise. `score` repeats it."""
    return spec.headline_metric


def _metrics(spec: DatasetSpec) -> list[Metric]:
    return [m for m in METRICS if m.applies(spec)]


def metric_names(spec: DatasetSpec) -> tuple[str, ...]:
    """The per-unit metrics of the set, in table order, with `score` before `parse_fail` (the task
    templates' metric_list, generated from this table)."""
    names = [m.name for m in _metrics(spec) if m.name != "parse_fail"]
    return (*names, "score", "parse_fail")


def metric_of(spec: DatasetSpec, name: str) -> Metric:
    """The table entry behind a metric name of this set (`score` is the headline's)."""
    return METRIC_BY_NAME[headline_metric_name(spec) if name == "score" else name]


def rule_of(spec: DatasetSpec, name: str) -> str:
    """The rule (a key of `RULES`) a metric of this set is computed by."""
    return metric_of(spec, name).rule(spec)


def metric_for_rule(spec: DatasetSpec, rule: str) -> str | None:
    """The set's metric computed by `rule` (F1 before precision/recall), or None: no like number."""
    for metric in _metrics(spec):
        if metric.rule(spec) == rule and metric.name not in ("micro_precision", "micro_recall"):
            return metric.name
    return None


def unit_metric_values(spec: DatasetSpec, unit: UnitScore) -> dict[str, Any]:
    """Per-unit values for lm-eval's samples file and aggregation (all JSON-serialisable):
    micro metrics as [tp, fp, fn], `macro_f1_over_types` as {type: [tp, fp, fn]}, `acc` and
    `parse_fail` as 0/1, the abstract- and class-level metrics as small records. `score` repeats
    the headline metric's value."""
    values = {m.name: m.unit_value(spec, unit) for m in _metrics(spec)}
    values["score"] = values[headline_metric_name(spec)]
    return {name: values[name] for name in metric_names(spec)}


def aggregation_of(spec: DatasetSpec, name: str) -> Callable[[Any], float]:
    """lm-eval's aggregation of one per-unit metric of this set (`score`: the headline's)."""
    return metric_of(spec, name).aggregation


def aggregate(spec: DatasetSpec, unit_scores: Sequence[UnitScore]) -> dict[str, float]:
    """Split-level metrics from per-unit scores: every metric of the table (`metric_names`), the
    summed `tp`/`fp`/`fn` and `n_units`; NER also `lenient_micro_precision`/`_recall` and
    `lenient_refused` (the pairs the length bound kept apart, summed); and per
    type/predicate/label `precision.<key>`, `recall.<key>`, `f1.<key>`, `support.<key>`."""
    out: dict[str, float] = {"n_units": float(len(unit_scores))}
    for metric in _metrics(spec):
        out[metric.name] = metric.aggregation([metric.unit_value(spec, u) for u in unit_scores])
    if spec.task_type != "qa":
        tp, fp, fn = _sum_counts(u.counts for u in unit_scores)
        out.update({"tp": float(tp), "fp": float(fp), "fn": float(fn)})
        if spec.task_type == "ner":
            lp, lr, _ = prf(*_sum_counts(u.lenient or u.counts for u in unit_scores))
            refused = sum(u.lenient_refused for u in unit_scores)
            out.update({"lenient_micro_precision": lp, "lenient_micro_recall": lr, "lenient_refused": float(refused)})
        for key, counts in per_type_scores(unit_scores).items():
            for name, value in counts.items():
                out[f"{name}.{key}"] = value
    out["score"] = out[headline_metric_name(spec)]
    return out


def per_type_scores(unit_scores: Iterable[UnitScore]) -> dict[str, dict[str, float]]:
    """{type/predicate/label: {"precision", "recall", "f1", "support"}} summed over units."""
    result = {}
    for key, (tp, fp, fn) in sorted(sum_per_type(u.per_type for u in unit_scores).items()):
        p, r, f = prf(tp, fp, fn)
        result[key] = {"precision": p, "recall": r, "f1": f, "support": float(tp + fn)}
    return result
