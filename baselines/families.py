"""One discriminative baseline per task family (baselines/README.md, "The heads, per task family"),
each turning its model outputs into the `Prediction` the LLM parsers produce (scored afterwards by
taiyi_bench.harness.scoring). A set's family is its registry entry's `baseline_family`; a baseline is
saved as one folder per head, each a plain transformers checkpoint.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch

from taiyi_bench.baselines import training
from taiyi_bench.baselines.heads import Chooser, Classifier, Head, Tagger, TagUnit
from taiyi_bench.baselines.results import score_units
from taiyi_bench.baselines.settings import HeadConfig
from taiyi_bench.baselines.words import (
    Span,
    example_words,
    seqeval_tags,
    spans_to_tags,
    tags_to_word_ranges,
    word_ranges_to_spans,
)
from taiyi_bench.harness import scoring
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

    head_types: ClassVar[dict[str, type[Head]]] = {}

    def __init__(self, spec: DatasetSpec, heads: dict[str, Head]):
        self.spec = spec
        self.heads = heads

    @classmethod
    def create(cls, spec: DatasetSpec, encoder: str, configs: dict[str, HeadConfig], train: Sequence[Example]) -> Baseline:
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


def _best_threshold(
    spec: DatasetSpec, examples: Sequence[Example], decide: Callable[[float], list[Prediction]]
) -> dict[str, Any]:
    """The decision threshold of a grid whose predictions (`decide(threshold)`) score the best
    micro-F1 of the benchmark on `examples` (ties: the nearest to 0.5), and the micro-F1 of each."""
    grid = [round(0.05 * k, 2) for k in range(1, 20)]
    by_threshold = {t: scoring.aggregate(spec, score_units(spec, examples, decide(t)))["micro_f1"] for t in grid}
    return {
        "decision_threshold": max(grid, key=lambda t: (by_threshold[t], -abs(t - 0.5))), "units": len(examples),
        "micro_f1_by_threshold": {str(t): round(f, 4) for t, f in by_threshold.items()},
    }


class NerBaseline(Baseline):
    """Token classification; nested NER (CMeEE) by one BIO head per type. Predictions carry their
    character spans (the scorer's occurrence-level rule); seqeval's F1 on the word tags is reported
    beside them, a multi-type set's (unit, type) tag sequences scored together."""

    head_types = {"tagger": Tagger}

    @classmethod
    def create(cls, spec: DatasetSpec, encoder: str, configs: dict[str, HeadConfig], train: Sequence[Example]) -> NerBaseline:
        return cls(spec, {"tagger": Tagger.create(encoder, spec.labels, configs["tagger"])})

    @property
    def tagger(self) -> Tagger:
        return self.heads["tagger"]  # type: ignore[return-value]

    def _units(self, examples: Sequence[Example]) -> list[TagUnit]:
        return [TagUnit(ex.text, example_words(ex), _entity_spans(ex, self.spec.labels)) for ex in examples]

    def fit(self, examples: Sequence[Example]) -> dict[str, dict[str, Any]]:
        return {"tagger": self.tagger.fit(self._units(examples))}

    def predict(self, examples: Sequence[Example]) -> BaselineOutput:
        from seqeval.metrics import f1_score, precision_score, recall_score
        from seqeval.metrics.sequence_labeling import get_entities

        units = self._units(examples)
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
                found = _span_counts(set(get_entities(gold_tags)), set(get_entities(pred_tags)))
                counts = [a + b for a, b in zip(counts, found, strict=True)]
            predictions.append(Prediction(entities=entities, spans=frozenset(spans)))
            unit_values.append({"seqeval_f1": counts})
        metrics = {"seqeval_f1": f1_score, "seqeval_precision": precision_score, "seqeval_recall": recall_score}
        extra = {name: float(metric(y_true, y_pred)) for name, metric in metrics.items()} if y_true else {}
        return BaselineOutput(predictions, [ex.text for ex in examples], extra, unit_values)


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
    mentions = (*head, *tail)
    keep = [(start, end) for index, (start, end) in enumerate(sentence_spans(text))
            if index == 0 or any(s < end and e > start for s, e in mentions)]
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
            out += [text[cursor:position], marker]
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
    """End-to-end RE as a pipeline (baselines/README.md, "End-to-end RE"): a Tagger finds the
    argument mentions, a Classifier reads each allowed ordered pair in the marked text and picks a
    relation or none. Trained on gold arguments (teacher forcing); at prediction it sees the
    tagger's, so tagger errors propagate, as in any pipeline."""

    head_types = {"tagger": Tagger, "pairs": Classifier}

    def __init__(self, spec: DatasetSpec, heads: dict[str, Head]):
        super().__init__(spec, heads)
        self.schema = schema_for(spec)

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
        positives: list[tuple[str, int]] = []
        negatives: list[tuple[str, int]] = []
        label_index = {label: i for i, label in enumerate(self.pairs.labels)}
        for example in examples:
            mentions = self.schema.gold_mentions(example)
            gold = {t: [m.span for m in mentions if m.type == t] for t in self.schema.entity_types}
            units.append(TagUnit(example.text, example_words(example), gold))
            relations = self.schema.gold_pairs(example)
            for head, tail, marked in self._candidates(example.text, _arguments(mentions, example.text)):
                label = relations.get((head.key, tail.key), NO_RELATION)
                (negatives if label == NO_RELATION else positives).append((marked, label_index[label]))
        keep = self.pairs.config.negative_ratio * max(len(positives), 1)
        if keep and len(negatives) > keep:
            negatives = random.Random(self.pairs.config.seed).sample(negatives, keep)
        targets = [label for _, label in positives + negatives]
        stats = {"tagger": self.tagger.fit(units)}
        # Balanced class weights: with ~4 negative candidate pairs per positive (BC5CDR train:
        # 4,522 vs 1,038) an unweighted short run learns the prior and calls every pair NA.
        weights = training.balanced_class_weights(targets, len(self.pairs.labels))
        texts = [(marked, None) for marked, _ in positives + negatives]
        stats["pairs"] = self.pairs.fit(texts, targets, name="pairs", class_weights=weights)
        stats["pairs"].update(
            positive_pairs=len(positives), negative_pairs=len(negatives), class_weights=[round(w, 4) for w in weights]
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
        mentions_per_unit = [self.schema.gold_mentions(ex) for ex in examples] if gold_entities else self.predicted_mentions(examples)
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
            for (head, tail, _), probabilities in zip(candidates, scores[cursor : cursor + len(candidates)], strict=True):
                allowed = set(self.schema.labels_for(head, tail))
                row = probabilities.clone()
                row[torch.tensor([label not in allowed for label in labels])] = -1.0  # NA masked too
                best = int(row.argmax())
                top = float(row[best])
                if best != no_relation and (top > float(probabilities[no_relation]) if threshold is None else top >= threshold):
                    relations.add((head.text, labels[best], tail.text))
            cursor += len(candidates)
            predictions.append(Prediction(relations=relations))
        return predictions

    def calibrate(self, examples: Sequence[Example], *, gold_entities: bool = False) -> dict[str, Any]:
        """Choose the pair decision threshold on held-out examples (the dev split) for the end-to-end
        pipeline, predicted arguments included (`gold_entities=True`: the pair classifier alone).
        Stored in the pairs head (saved with it)."""
        per_unit, scores, _ = self._scored_candidates(examples, gold_entities)
        found = _best_threshold(self.spec, examples, lambda threshold: self._decode(per_unit, scores, threshold))
        self.pairs.meta["decision_threshold"] = found["decision_threshold"]
        return {**found, "candidate_pairs": int(scores.shape[0])}

    def predict(self, examples: Sequence[Example], *, gold_entities: bool = False) -> BaselineOutput:
        """End-to-end prediction; `gold_entities=True` skips step 1 and classifies the pairs of
        the gold arguments instead (the usual "RE given gold entities" diagnostic - a different
        setting, which the results files name as such)."""
        per_unit, scores, entity_counts = self._scored_candidates(examples, gold_entities)
        predictions = self._decode(per_unit, scores, self.decision_threshold)
        extra = {"entity_span_f1": scoring.micro_f1(entity_counts), "candidate_pairs": float(scores.shape[0])}
        unit_values = [{"entity_span_f1": counts} for counts in entity_counts]
        return BaselineOutput(predictions, [ex.text for ex in examples], extra, unit_values)


class TextClassifier(Baseline):
    """LitCovid, HoC (multi-label, sigmoid per label, threshold) and KUAKE-QIC (softmax).

    A multi-label set whose training units all carry a label (LitCovid) always predicts at least
    its most probable label; one with label-less units (HoC) may predict none.
    """

    head_types = {"model": Classifier}

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
        stats = self.model.fit([(ex.text, None) for ex in examples], targets, class_weights=weights)
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
        """The sigmoid threshold (one for all labels) chosen on held-out examples; stored in the head."""
        scores = self.model.predict_scores([(ex.text, None) for ex in examples])
        found = _best_threshold(self.spec, examples, lambda threshold: self._decide(scores, threshold))
        self.model.meta["decision_threshold"] = found["decision_threshold"]
        return found

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


class AnswerClassifier(TextClassifier):
    """PubMedQA: three-way classification of (question, contexts) - the BLURB setup - mapped
    back to the option letter of the predicted answer word."""

    @classmethod
    def create(cls, spec: DatasetSpec, encoder: str, configs: dict[str, HeadConfig], train: Sequence[Example]) -> AnswerClassifier:
        return cls(spec, {"model": Classifier.create(encoder, spec.labels, configs["sequence"])})

    @staticmethod
    def _inputs(examples: Sequence[Example]) -> list[tuple[str, str | None]]:
        return [(ex.question, " ".join(ex.contexts) or None) for ex in examples]

    def fit(self, examples: Sequence[Example]) -> dict[str, dict[str, Any]]:
        labels = self.model.labels
        targets = [labels.index(ex.options.get(ex.answer, ex.answer)) for ex in examples]
        return {"model": self.model.fit(self._inputs(examples), targets)}

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

    head_types = {"model": Chooser}

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
        return {"model": self.model.fit(questions, options, targets)}

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
