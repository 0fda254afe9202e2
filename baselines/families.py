"""One discriminative baseline per task family, each turning its model outputs into the same
`taiyi_bench.harness.records.Prediction` the LLM parsers produce (scored afterwards by taiyi_bench.harness.scoring).

  NER    NerBaseline        Tagger, one BIO head per type (CMeEE's nested types included)
  RE     RelationBaseline   Tagger for the arguments, then entity-marker pair classification
  TC     TextClassifier     Classifier (softmax for single-label sets, sigmoids for multi-label)
  QA     AnswerClassifier   Classifier over the set's answer words on (question, contexts) (PubMedQA)
         MultipleChoice     Chooser over (question, option) pairs (MedQA)

A set's family is its registry entry's `baseline_family`; an RE set's schema (argument types,
allowed type pairs) is built from its `relation_signatures` and `matching_rule`.

Each baseline is created from an encoder, fitted on Examples, saved to / loaded from a folder
(one sub-folder per head, each a plain transformers checkpoint) and predicts Examples.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch

from taiyi_bench.baselines import training
from taiyi_bench.baselines.heads import Chooser, Classifier, Head, Tagger, TagUnit
from taiyi_bench.baselines.settings import HeadConfig
from taiyi_bench.baselines.words import (
    Span,
    example_words,
    seqeval_tags,
    spans_to_tags,
    tags_to_word_ranges,
    word_ranges_to_spans,
)
from taiyi_bench.harness.normalize import normalize_mention
from taiyi_bench.harness.records import Example, Prediction
from taiyi_bench.harness.registry import DatasetSpec

NO_RELATION = "NA"
logger = logging.getLogger("taiyi-bench.baselines")


@dataclass
class BaselineOutput:
    """Predictions for a list of examples, plus what only this model family can report."""

    predictions: list[Prediction]
    inputs: list[str]  # what the model read per unit (logged as the "prompt" in the samples file)
    extra_metrics: dict[str, float] = field(default_factory=dict)  # e.g. seqeval_f1
    extra_unit_values: list[dict[str, Any]] = field(default_factory=list)  # per unit, same order


class Baseline:
    """Base class: a dict of named heads and the spec they serve."""

    family: ClassVar[str] = ""
    head_types: ClassVar[dict[str, type[Head]]] = {}

    def __init__(self, spec: DatasetSpec, heads: dict[str, Head]):
        self.spec = spec
        self.heads = heads

    @classmethod
    def create(cls, spec: DatasetSpec, encoder: str, configs: dict[str, HeadConfig], train: Sequence[Example]) -> Baseline:
        raise NotImplementedError

    @classmethod
    def head_names(cls) -> dict[str, str]:
        """head folder -> settings head name (hyperparameter block in encoders.yaml)."""
        raise NotImplementedError

    def fit(self, examples: Sequence[Example]) -> dict[str, dict[str, Any]]:
        raise NotImplementedError

    def predict(self, examples: Sequence[Example]) -> BaselineOutput:
        raise NotImplementedError

    def save(self, directory: str | Path) -> None:
        for name, head in self.heads.items():
            head.save(Path(directory) / name)

    @classmethod
    def load(cls, spec: DatasetSpec, directory: str | Path, overrides: dict[str, Any] | None = None) -> Baseline:
        heads = {name: head_type.load(Path(directory) / name, overrides) for name, head_type in cls.head_types.items()}
        return cls(spec, heads)

    def parameter_count(self) -> int:
        return sum(head.parameter_count() for head in self.heads.values())


def _entity_spans(example: Example, types: Sequence[str]) -> dict[str, list[Span]]:
    spans: dict[str, list[Span]] = {t: [] for t in types}
    for entity in example.entities:
        if entity.type not in spans:
            continue
        if entity.start is not None and entity.end is not None:
            spans[entity.type].append((entity.start, entity.end))
        elif (found := example.text.find(entity.mention)) >= 0:  # offsets missing: first occurrence
            spans[entity.type].append((found, found + len(entity.mention)))
    return spans


def _span_counts(gold: set, predicted: set) -> list[int]:
    return [len(gold & predicted), len(predicted - gold), len(gold - predicted)]


def _micro_f1(counts: Sequence[Sequence[int]]) -> float:
    tp = sum(c[0] for c in counts)
    denominator = 2 * tp + sum(c[1] for c in counts) + sum(c[2] for c in counts)
    return 2 * tp / denominator if denominator else 0.0


# --------------------------------------------------------------------------------------------
# NER


class NerBaseline(Baseline):
    """Token classification; nested NER (CMeEE) by one BIO head per type.

    Its predictions carry their character spans, so the scorer's occurrence-level strict F1
    (`strict_occurrence_micro_f1`) is computed from them directly. It also reports seqeval's
    entity-level F1 on the word tags - the number BLURB and the PubMedBERT paper report - as
    `seqeval_f1`; on the BIO sets the two are equal (a test checks it on real predictions). For a multi-type set the (unit, type) tag sequences are scored
    together, which is exact-span micro-F1 over all types.
    """

    family = "ner"
    head_types = {"tagger": Tagger}

    @classmethod
    def head_names(cls) -> dict[str, str]:
        return {"tagger": "tagger"}

    @classmethod
    def create(cls, spec: DatasetSpec, encoder: str, configs: dict[str, HeadConfig], train: Sequence[Example]) -> NerBaseline:
        return cls(spec, {"tagger": Tagger.create(encoder, spec.labels, configs["tagger"])})

    @property
    def tagger(self) -> Tagger:
        return self.heads["tagger"]  # type: ignore[return-value]

    def _units(self, examples: Sequence[Example], with_gold: bool) -> list[TagUnit]:
        return [
            TagUnit(ex.text, example_words(ex), _entity_spans(ex, self.spec.labels) if with_gold else None)
            for ex in examples
        ]

    def fit(self, examples: Sequence[Example]) -> dict[str, dict[str, Any]]:
        return {"tagger": self.tagger.fit(self._units(examples, True)).to_dict()}

    def predict(self, examples: Sequence[Example]) -> BaselineOutput:
        from seqeval.metrics import f1_score, precision_score, recall_score
        from seqeval.metrics.sequence_labeling import get_entities

        units = self._units(examples, True)
        tags = self.tagger.predict_tags(units)
        predictions, unit_values, y_true, y_pred = [], [], [], []
        for example, unit, unit_tags in zip(examples, units, tags, strict=True):
            entities, spans, counts = set(), set(), [0, 0, 0]
            for entity_type in self.tagger.types:
                for start, end in word_ranges_to_spans(unit.words, tags_to_word_ranges(unit_tags[entity_type])):
                    entities.add((entity_type, example.text[start:end]))
                    spans.add((entity_type, start, end))
                gold_tags = seqeval_tags(spans_to_tags(unit.words, (unit.gold or {}).get(entity_type, [])), entity_type)
                pred_tags = seqeval_tags(unit_tags[entity_type], entity_type)
                y_true.append(gold_tags)
                y_pred.append(pred_tags)
                for i, value in enumerate(_span_counts(set(get_entities(gold_tags)), set(get_entities(pred_tags)))):
                    counts[i] += value
            predictions.append(Prediction(entities=entities, spans=frozenset(spans)))
            unit_values.append({"seqeval_f1": counts})
        extra = {}
        if y_true:
            extra = {
                "seqeval_f1": float(f1_score(y_true, y_pred)),
                "seqeval_precision": float(precision_score(y_true, y_pred)),
                "seqeval_recall": float(recall_score(y_true, y_pred)),
            }
        return BaselineOutput(predictions, [ex.text for ex in examples], extra, unit_values)


# --------------------------------------------------------------------------------------------
# RE


@dataclass
class Mention:
    type: str
    span: Span
    key: str  # the argument it belongs to: a concept id (BC5CDR gold) or a string


@dataclass
class Argument:
    key: str
    types: set[str]
    spans: list[Span]
    text: str  # how the argument is named in the output: its first mention in the unit


class RelationSchema:
    """What the RE pipeline needs to know about a set, all from its registry entry: the argument
    types, the relations, the type pairs each relation allows (`relation_signatures`), and how
    gold arguments are found (one subclass per matching rule)."""

    def __init__(self, spec: DatasetSpec) -> None:
        self.entity_types: tuple[str, ...] = spec.argument_types()
        self.relations: tuple[str, ...] = tuple(spec.labels)
        allowed: dict[tuple[str, str], list[str]] = {}
        for head_type, relation, tail_type in spec.relation_signatures:
            allowed.setdefault((head_type, tail_type), []).append(relation)
        self.allowed: dict[tuple[str, str], tuple[str, ...]] = {k: tuple(v) for k, v in allowed.items()}

    def gold_mentions(self, example: Example) -> list[Mention]:
        raise NotImplementedError

    def gold_pairs(self, example: Example) -> dict[tuple[str, str], str]:
        raise NotImplementedError

    def labels_for(self, head: Argument, tail: Argument) -> tuple[str, ...]:
        found: list[str] = []
        for head_type in sorted(head.types):
            for tail_type in sorted(tail.types):
                found.extend(r for r in self.allowed.get((head_type, tail_type), ()) if r not in found)
        return tuple(found)


class ConceptPairSchema(RelationSchema):
    """`concept_pairs` (BC5CDR CID): document-level pairs of concepts. Gold arguments are
    concepts (all their mentions); predicted ones are normalised mention strings, since no entity
    linker is part of this baseline - the scorer maps strings back to concepts."""

    def gold_mentions(self, example: Example) -> list[Mention]:
        mentions = []
        for entity in example.entities:
            if entity.start is None or entity.end is None or entity.type not in self.entity_types:
                continue
            concepts = [c for c in entity.concept_ids if c not in ("", "-1")]
            for key in concepts or [f"text:{normalize_mention(entity.mention)}"]:
                mentions.append(Mention(entity.type, (entity.start, entity.end), key))
        return mentions

    def gold_pairs(self, example: Example) -> dict[tuple[str, str], str]:
        return {(r.head, r.tail): r.relation for r in example.relations}


class TripleSchema(RelationSchema):
    """`ordered_triples` (CMeIE): (subject, predicate, object) strings; the relation signatures
    give the type pairs each predicate allows. Gold triples carry no offsets, so every occurrence
    of an argument string in the unit is a mention of it."""

    def gold_mentions(self, example: Example) -> list[Mention]:
        mentions = []
        for relation in example.relations:
            for text, kind in ((relation.head, relation.head_type), (relation.tail, relation.tail_type)):
                for match in re.finditer(re.escape(text), example.text):
                    mentions.append(Mention(kind, match.span(), text))
        return mentions

    def gold_pairs(self, example: Example) -> dict[tuple[str, str], str]:
        pairs: dict[tuple[str, str], str] = {}
        for relation in example.relations:
            pairs.setdefault((relation.head, relation.tail), relation.relation)  # rare 2nd predicate dropped
        return pairs


# The schema of each RE matching rule the registry can name.
SCHEMAS: dict[str, type[RelationSchema]] = {"concept_pairs": ConceptPairSchema, "ordered_triples": TripleSchema}


def schema_for(spec: DatasetSpec) -> RelationSchema:
    """The RE schema of a set, from its registry entry."""
    if spec.matching_rule not in SCHEMAS:
        raise ValueError(f"no relation schema for matching rule {spec.matching_rule!r} ({spec.display_name})")
    return SCHEMAS[spec.matching_rule](spec)

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[。！？；])")
HEAD_MARK = ("$ ", " $")
TAIL_MARK = ("# ", " #")


def sentence_spans(text: str) -> list[Span]:
    spans, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        if match.end() > start:
            spans.append((start, match.start()))
            start = match.end()
    if start < len(text):
        spans.append((start, len(text)))
    return [s for s in spans if s[1] > s[0]] or [(0, len(text))]


def marked_text(text: str, head: Sequence[Span], tail: Sequence[Span]) -> str:
    """The unit's text reduced to its first sentence (the title, for an abstract) and the
    sentences that mention the pair, with every head mention wrapped in `$ … $` and every tail
    mention in `# … #` (punctuation markers: no new vocabulary, any tokenizer reads them).

    This is the windowing of long documents: an abstract rarely fits 512 sub-words, but the
    sentences naming the pair usually do; what still does not fit is cut at max_length.
    """
    keep = []
    for index, (start, end) in enumerate(sentence_spans(text)):
        if index == 0 or any(s < end and e > start for s, e in (*head, *tail)):
            keep.append((start, end))
    pieces = []
    for start, end in keep:
        events = []  # (position, order, marker): closers before openers at the same position
        for spans, (opener, closer) in ((head, HEAD_MARK), (tail, TAIL_MARK)):
            for s, e in spans:
                if start <= s < end:
                    events.append((s, 1, opener))
                    events.append((min(e, end), 0, closer))
        events.sort(key=lambda item: (item[0], item[1]))
        out, cursor = [], start
        for position, _order, marker in events:
            out.append(text[cursor:position])
            out.append(marker)
            cursor = position
        out.append(text[cursor:end])
        pieces.append("".join(out))
    return " ".join(pieces)


def _arguments(mentions: Sequence[Mention], text: str) -> dict[str, Argument]:
    arguments: dict[str, Argument] = {}
    for mention in sorted(mentions, key=lambda m: m.span):
        argument = arguments.setdefault(mention.key, Argument(mention.key, set(), [], text[mention.span[0] : mention.span[1]]))
        argument.types.add(mention.type)
        if mention.span not in argument.spans:
            argument.spans.append(mention.span)
    return arguments


class RelationBaseline(Baseline):
    """End-to-end RE as a pipeline: (1) a Tagger finds the argument mentions (one BIO head per
    argument type), (2) a Classifier decides, for every ordered pair of arguments whose types a
    relation allows, which relation holds (or none), reading the marked text (`marked_text`).

    Predicted mentions are grouped into arguments by their normalised string (the scorer's
    normalisation), so "Cocaine" and "cocaine" are one candidate. The classifier is trained on
    gold arguments (teacher forcing); at prediction it sees the tagger's, so tagger errors
    propagate, as in any pipeline.
    """

    family = "re"
    head_types = {"tagger": Tagger, "pairs": Classifier}

    def __init__(self, spec: DatasetSpec, heads: dict[str, Head]):
        super().__init__(spec, heads)
        self.schema = schema_for(spec)

    @classmethod
    def head_names(cls) -> dict[str, str]:
        return {"tagger": "tagger", "pairs": "pairs"}

    @classmethod
    def create(cls, spec: DatasetSpec, encoder: str, configs: dict[str, HeadConfig], train: Sequence[Example]) -> RelationBaseline:
        schema = schema_for(spec)
        heads = {
            "tagger": Tagger.create(encoder, schema.entity_types, configs["tagger"]),
            "pairs": Classifier.create(encoder, (NO_RELATION, *schema.relations), configs["pairs"]),
        }
        return cls(spec, heads)

    @property
    def tagger(self) -> Tagger:
        return self.heads["tagger"]  # type: ignore[return-value]

    @property
    def pairs(self) -> Classifier:
        return self.heads["pairs"]  # type: ignore[return-value]

    def _candidates(self, text: str, arguments: dict[str, Argument]) -> list[tuple[Argument, Argument, str]]:
        limit = self.pairs.config.max_arguments
        if limit and len(arguments) > limit:
            # Real units have far fewer (BC5CDR test: at most 23 gold concepts per abstract); this
            # many means a degenerate tagger, whose n^2 pairs would take hours to classify.
            logger.warning("%d arguments in one unit; keeping the first %d (pairs.max_arguments)", len(arguments), limit)
            arguments = dict(sorted(arguments.items(), key=lambda item: item[1].spans[0])[:limit])
        out = []
        for head in arguments.values():
            for tail in arguments.values():
                if head.key != tail.key and self.schema.labels_for(head, tail):
                    out.append((head, tail, marked_text(text, head.spans, tail.spans)))
        return out

    def fit(self, examples: Sequence[Example]) -> dict[str, dict[str, Any]]:
        units = []
        texts: list[tuple[str, str | None]] = []
        targets: list[int] = []
        negatives: list[tuple[str, int]] = []
        label_index = {label: i for i, label in enumerate(self.pairs.labels)}
        positives = 0
        for example in examples:
            mentions = self.schema.gold_mentions(example)
            gold = {t: [m.span for m in mentions if m.type == t] for t in self.schema.entity_types}
            units.append(TagUnit(example.text, example_words(example), gold))
            relations = self.schema.gold_pairs(example)
            for head, tail, marked in self._candidates(example.text, _arguments(mentions, example.text)):
                label = relations.get((head.key, tail.key), NO_RELATION)
                if label == NO_RELATION:
                    negatives.append((marked, label_index[NO_RELATION]))
                else:
                    texts.append((marked, None))
                    targets.append(label_index[label])
                    positives += 1
        ratio = self.pairs.config.negative_ratio
        if ratio and len(negatives) > ratio * max(positives, 1):
            negatives = random.Random(self.pairs.config.seed).sample(negatives, ratio * max(positives, 1))
        texts += [(marked, None) for marked, _ in negatives]
        targets += [label for _, label in negatives]
        stats = {"tagger": self.tagger.fit(units).to_dict()}
        # Balanced class weights: with ~4 negative candidate pairs per positive (BC5CDR train:
        # 4,522 vs 1,038) an unweighted short run learns the prior and calls every pair NA.
        weights = training.balanced_class_weights(targets, len(self.pairs.labels))
        stats["pairs"] = self.pairs.fit(texts, targets, name="pairs", class_weights=weights).to_dict()
        stats["pairs"].update(
            positive_pairs=positives, negative_pairs=len(negatives), class_weights=[round(w, 4) for w in weights]
        )
        return stats

    def predicted_mentions(self, examples: Sequence[Example]) -> list[list[Mention]]:
        """Step 1: the tagger's mentions, keyed by their normalised string."""
        units = [TagUnit(ex.text, example_words(ex)) for ex in examples]
        out = []
        for example, unit, unit_tags in zip(examples, units, self.tagger.predict_tags(units), strict=True):
            mentions = []
            for entity_type in self.tagger.types:
                for span in word_ranges_to_spans(unit.words, tags_to_word_ranges(unit_tags[entity_type])):
                    key = normalize_mention(example.text[span[0] : span[1]])
                    if key:
                        mentions.append(Mention(entity_type, span, key))
            out.append(mentions)
        return out

    needs_calibration = True  # the pair threshold is chosen on the dev split

    @property
    def decision_threshold(self) -> float | None:
        """Chosen on the dev split by `calibrate`; None (an uncalibrated head) = argmax."""
        value = self.pairs.meta.get("decision_threshold")
        return None if value is None else float(value)

    def _scored_candidates(
        self, examples: Sequence[Example], gold_entities: bool
    ) -> tuple[list[list[tuple[Argument, Argument, str]]], torch.Tensor, list[list[int]]]:
        """Per unit its candidate pairs, the classifier's probabilities for all of them (in order)
        and the unit's argument-mention counts [tp, fp, fn]."""
        if gold_entities:
            mentions_per_unit = [self.schema.gold_mentions(ex) for ex in examples]
        else:
            mentions_per_unit = self.predicted_mentions(examples)
        per_unit: list[list[tuple[Argument, Argument, str]]] = []
        entity_counts = []
        for example, mentions in zip(examples, mentions_per_unit, strict=True):
            gold_spans = {(m.type, m.span) for m in self.schema.gold_mentions(example)}
            entity_counts.append(_span_counts(gold_spans, {(m.type, m.span) for m in mentions}))
            per_unit.append(self._candidates(example.text, _arguments(mentions, example.text)))
        flat = [candidate for candidates in per_unit for candidate in candidates]
        scores = self.pairs.predict_scores([(marked, None) for _, _, marked in flat])
        return per_unit, scores, entity_counts

    def _decode(
        self, per_unit: Sequence[Sequence[tuple[Argument, Argument, str]]], scores: torch.Tensor, threshold: float | None
    ) -> list[Prediction]:
        """A pair takes its most probable allowed relation when that relation's probability
        reaches `threshold` (None: when it beats NA, plain argmax), else no relation."""
        labels = self.pairs.labels
        no_relation = labels.index(NO_RELATION)
        predictions, cursor = [], 0
        for candidates in per_unit:
            relations = set()
            for head, tail, _ in candidates:
                allowed = set(self.schema.labels_for(head, tail))
                row = scores[cursor].clone()
                cursor += 1
                row[torch.tensor([label not in allowed for label in labels])] = -1.0  # NA masked too
                best = int(row.argmax())
                if threshold is None:
                    chosen = best if float(row[best]) > float(scores[cursor - 1][no_relation]) else no_relation
                else:
                    chosen = best if float(row[best]) >= threshold else no_relation
                if chosen != no_relation:
                    relations.add((head.text, labels[chosen], tail.text))
            predictions.append(Prediction(relations=relations))
        return predictions

    def calibrate(self, examples: Sequence[Example], *, gold_entities: bool = False) -> dict[str, Any]:
        """Choose the pair decision threshold on held-out examples (the dev split): the value of
        a grid that maximises the benchmark's micro-F1 (taiyi_bench.harness.scoring) of the end-to-end
        pipeline, predicted arguments included (`gold_entities=True`: of the pair classifier
        alone). Stored in the pairs head (saved with it)."""
        from taiyi_bench.harness import scoring

        per_unit, scores, _ = self._scored_candidates(examples, gold_entities)
        grid = [round(0.05 * k, 2) for k in range(1, 20)]
        by_threshold: dict[float, float] = {}
        for threshold in grid:
            predictions = self._decode(per_unit, scores, threshold)
            units = [scoring.score_unit(self.spec, ex, pred) for ex, pred in zip(examples, predictions, strict=True)]
            by_threshold[threshold] = scoring.aggregate(self.spec, units)["micro_f1"]
        best = max(grid, key=lambda t: (by_threshold[t], -abs(t - 0.5)))  # ties: nearest to 0.5
        self.pairs.meta["decision_threshold"] = best
        return {
            "decision_threshold": best, "units": len(examples), "candidate_pairs": int(scores.shape[0]),
            "micro_f1_by_threshold": {str(t): round(f, 4) for t, f in by_threshold.items()},
        }

    def predict(self, examples: Sequence[Example], *, gold_entities: bool = False) -> BaselineOutput:
        """End-to-end prediction; `gold_entities=True` skips step 1 and classifies the pairs of
        the gold arguments instead (the usual "RE given gold entities" diagnostic - a different
        setting, which the results files name as such)."""
        per_unit, scores, entity_counts = self._scored_candidates(examples, gold_entities)
        predictions = self._decode(per_unit, scores, self.decision_threshold)
        extra = {"entity_span_f1": _micro_f1(entity_counts), "candidate_pairs": float(scores.shape[0])}
        unit_values = [{"entity_span_f1": counts} for counts in entity_counts]
        return BaselineOutput(predictions, [ex.text for ex in examples], extra, unit_values)


# --------------------------------------------------------------------------------------------
# TC


class TextClassifier(Baseline):
    """LitCovid, HoC (multi-label, sigmoid per label, threshold) and KUAKE-QIC (softmax).

    A multi-label set whose training units all carry a label (LitCovid) always predicts at least
    its most probable label; one with label-less units (HoC) may predict none.
    """

    family = "tc"
    head_types = {"model": Classifier}

    @classmethod
    def head_names(cls) -> dict[str, str]:
        return {"model": "sequence"}

    @classmethod
    def create(cls, spec: DatasetSpec, encoder: str, configs: dict[str, HeadConfig], train: Sequence[Example]) -> TextClassifier:
        require_label = bool(train) and all(ex.labels for ex in train)
        head = Classifier.create(encoder, spec.labels, configs["sequence"], multi_label=spec.multi_label, require_label=require_label)
        return cls(spec, {"model": head})

    @property
    def model(self) -> Classifier:
        return self.heads["model"]  # type: ignore[return-value]

    def fit(self, examples: Sequence[Example]) -> dict[str, dict[str, Any]]:
        labels = self.model.labels
        if self.model.multi_label:
            targets: list[Any] = [[1.0 if label in ex.labels else 0.0 for label in labels] for ex in examples]
        else:
            targets = [labels.index(ex.labels[0]) for ex in examples]
        weights = training.positive_weights(targets) if self.model.multi_label else None
        stats = self.model.fit([(ex.text, None) for ex in examples], targets, class_weights=weights).to_dict()
        if weights is not None:
            stats["positive_weights"] = [round(w, 3) for w in weights]
        return {"model": stats}

    @property
    def needs_calibration(self) -> bool:
        """A multi-label head's decision threshold is chosen on the dev split (`calibrate`)."""
        return self.model.multi_label

    @property
    def decision_threshold(self) -> float:
        value = self.model.meta.get("decision_threshold")
        return self.model.config.threshold if value is None else float(value)

    def calibrate(self, examples: Sequence[Example]) -> dict[str, Any]:
        """The sigmoid threshold (one for all labels) of a grid that maximises the benchmark's
        micro-F1 (taiyi_bench.harness.scoring) on held-out examples; stored in the head."""
        from taiyi_bench.harness import scoring

        scores = self.model.predict_scores([(ex.text, None) for ex in examples])
        grid = [round(0.05 * k, 2) for k in range(1, 20)]
        by_threshold = {}
        for threshold in grid:
            predictions = self._decide(scores, threshold)
            units = [scoring.score_unit(self.spec, ex, pred) for ex, pred in zip(examples, predictions, strict=True)]
            by_threshold[threshold] = scoring.aggregate(self.spec, units)["micro_f1"]
        best = max(grid, key=lambda t: (by_threshold[t], -abs(t - 0.5)))
        self.model.meta["decision_threshold"] = best
        return {"decision_threshold": best, "units": len(examples),
                "micro_f1_by_threshold": {str(t): round(f, 4) for t, f in by_threshold.items()}}

    def predict(self, examples: Sequence[Example]) -> BaselineOutput:
        scores = self.model.predict_scores([(ex.text, None) for ex in examples])
        return BaselineOutput(self._decide(scores, self.decision_threshold), [ex.text for ex in examples])

    def _decide(self, scores: torch.Tensor, threshold: float) -> list[Prediction]:
        labels, predictions = self.model.labels, []
        for row in scores:
            if self.model.multi_label:
                chosen = {label for label, p in zip(labels, row.tolist(), strict=True) if p >= threshold}
                if not chosen and self.model.meta.get("require_label"):
                    chosen = {labels[int(row.argmax())]}
            else:
                chosen = {labels[int(row.argmax())]}
            predictions.append(Prediction(labels=chosen))
        return predictions


# --------------------------------------------------------------------------------------------
# QA


class AnswerClassifier(Baseline):
    """PubMedQA: three-way classification of (question, contexts) - the BLURB setup - mapped
    back to the option letter of the predicted answer word."""

    family = "qa"
    head_types = {"model": Classifier}

    @classmethod
    def head_names(cls) -> dict[str, str]:
        return {"model": "sequence"}

    @classmethod
    def create(cls, spec: DatasetSpec, encoder: str, configs: dict[str, HeadConfig], train: Sequence[Example]) -> AnswerClassifier:
        return cls(spec, {"model": Classifier.create(encoder, spec.labels, configs["sequence"])})

    @property
    def model(self) -> Classifier:
        return self.heads["model"]  # type: ignore[return-value]

    @staticmethod
    def _inputs(examples: Sequence[Example]) -> list[tuple[str, str | None]]:
        return [(ex.question, " ".join(ex.contexts) or None) for ex in examples]

    def fit(self, examples: Sequence[Example]) -> dict[str, dict[str, Any]]:
        labels = self.model.labels
        targets = [labels.index(ex.options.get(ex.answer, ex.answer)) for ex in examples]
        return {"model": self.model.fit(self._inputs(examples), targets).to_dict()}

    def predict(self, examples: Sequence[Example]) -> BaselineOutput:
        scores = self.model.predict_scores(self._inputs(examples))
        predictions = []
        for example, row in zip(examples, scores, strict=True):
            word = self.model.labels[int(row.argmax())]
            letter = next((k for k, v in example.options.items() if v == word), word)
            predictions.append(Prediction(choice=letter))
        return BaselineOutput(predictions, [f"{q}\n{c or ''}" for q, c in self._inputs(examples)])


class MultipleChoice(Baseline):
    """MedQA (USMLE, MCMLE): AutoModelForMultipleChoice over (question, option text) pairs."""

    family = "qa"
    head_types = {"model": Chooser}

    @classmethod
    def head_names(cls) -> dict[str, str]:
        return {"model": "choice"}

    @classmethod
    def create(cls, spec: DatasetSpec, encoder: str, configs: dict[str, HeadConfig], train: Sequence[Example]) -> MultipleChoice:
        return cls(spec, {"model": Chooser.create(encoder, configs["choice"], letters=list(spec.labels))})

    @property
    def model(self) -> Chooser:
        return self.heads["model"]  # type: ignore[return-value]

    def _inputs(self, examples: Sequence[Example]) -> tuple[list[str], list[list[str]]]:
        letters = self.model.meta["letters"]
        for example in examples:
            if sorted(example.options) != sorted(letters):
                raise ValueError(f"{example.id}: options {sorted(example.options)} differ from the model's {letters}")
        return [ex.question for ex in examples], [[ex.options[letter] for letter in letters] for ex in examples]

    def fit(self, examples: Sequence[Example]) -> dict[str, dict[str, Any]]:
        questions, options = self._inputs(examples)
        targets = [self.model.meta["letters"].index(ex.answer) for ex in examples]
        return {"model": self.model.fit(questions, options, targets).to_dict()}

    def predict(self, examples: Sequence[Example]) -> BaselineOutput:
        questions, options = self._inputs(examples)
        letters = self.model.meta["letters"]
        predictions = [Prediction(choice=letters[i]) for i in self.model.predict_choice(questions, options)]
        inputs = [q + "\n" + "\n".join(f"{letter}. {text}" for letter, text in zip(letters, opts, strict=True)) for q, opts in zip(questions, options, strict=True)]
        return BaselineOutput(predictions, inputs)


def baseline_class(spec: DatasetSpec) -> type[Baseline]:
    """The baseline family of a set (its registry entry's `baseline_family`)."""
    family = BASELINES.get(spec.baseline_family or "")
    if family is None:
        raise ValueError(f"{spec.display_name}: unknown baseline_family {spec.baseline_family!r}; known: {', '.join(BASELINES)}")
    return family


BASELINES: dict[str, type[Baseline]] = {
    cls.__name__: cls for cls in (NerBaseline, RelationBaseline, TextClassifier, AnswerClassifier, MultipleChoice)
}
