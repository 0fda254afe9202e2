"""The one record type every reader produces, and the one prediction type every scorer consumes.

Readers (taiyi_bench.harness.readers) turn each official format into `Example`s. LLM output parsers
(taiyi_bench.harness.parsers) and the BERT baselines (baselines/) both turn model output into a
`Prediction`; the scorers (taiyi_bench.harness.scoring) compare the two. Keeping these apart is what lets
the BERT and LLM numbers come from the same scoring code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Entity:
    """A gold mention. `end` is exclusive: text[start:end] == mention (checked by the readers)."""

    type: str
    mention: str
    start: int | None = None
    end: int | None = None
    # BC5CDR: MeSH ids of the concept(s); a composite mention carries several ("D001|D002").
    concept_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Relation:
    """A gold triple. For BC5CDR CID `head`/`tail` are concept ids (MeSH); elsewhere strings."""

    head: str
    relation: str
    tail: str
    head_type: str = ""
    tail_type: str = ""


@dataclass
class Example:
    """One evaluation unit (what one prompt covers).

    Only the fields of the set's task type are filled:
      NER: text, entities
      RE:  text, relations (+ entities; BC5CDR: concept_mentions)
      TC:  text, labels (possibly empty: HoC sentences without a hallmark)
      QA:  question, options (letter -> text), answer (gold letter), contexts (PubMedQA)
    """

    id: str
    dataset: str
    split: str
    text: str = ""
    entities: list[Entity] = field(default_factory=list)
    relations: list[Relation] = field(default_factory=list)
    # BC5CDR CID: concept id -> every mention string of that concept in the document.
    concept_mentions: dict[str, list[str]] = field(default_factory=dict)
    labels: list[str] = field(default_factory=list)
    question: str = ""
    contexts: list[str] = field(default_factory=list)
    options: dict[str, str] = field(default_factory=dict)
    answer: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (what lm-eval stores as a doc and logs in its samples file)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Example:
        """Inverse of `to_dict` (lm-eval hands docs back as plain dicts)."""
        data = dict(doc)
        data["entities"] = [Entity(**{**e, "concept_ids": tuple(e.get("concept_ids", ()))}) for e in data.get("entities", [])]
        data["relations"] = [Relation(**r) for r in data.get("relations", [])]
        return cls(**data)


@dataclass
class Prediction:
    """A structured prediction for one unit, from an LLM's text or a discriminative model.

    NER: entities = {(type, mention)}; RE: relations = {(head, relation, tail)};
    TC: labels = {label}; QA: choice = option letter or None.
    NER `spans`: a span model's (type, start, end) character spans, used as they are by the
    occurrence-level strict rule (`taiyi_bench.harness.occurrences`); None for text, whose mentions are placed
    in the unit text instead.
    `parse_failed` is True when the model output could not be parsed at all (it is then scored
    as an empty prediction and counted in `parse_fail`); the parser says why in `fail_reason`.
    """

    entities: set[tuple[str, str]] = field(default_factory=set)
    relations: set[tuple[str, str, str]] = field(default_factory=set)
    labels: set[str] = field(default_factory=set)
    choice: str | None = None
    parse_failed: bool = False
    spans: frozenset[tuple[str, int, int]] | None = None
    fail_reason: str | None = field(default=None, compare=False)
