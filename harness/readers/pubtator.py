"""PubTator files of the BioCreative V CDR corpus (BC5CDR chemical-induced-disease relations).

A document is `PMID|t|title`, `PMID|a|abstract`, then tab-separated annotation lines and a
blank line:
  mention:  PMID  start  end  mention  Chemical|Disease  MeSH[|MeSH...]  [individual|mentions]
  relation: PMID  CID  chemicalMeSH  diseaseMeSH
Offsets index `title + " " + abstract` (end exclusive). A composite mention ("hemorrhagic
cystitis" -> D006470|D003556) lists one concept per component and, in the 7th column, the
component strings; `-1` marks a mention with no MeSH concept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from taiyi_bench.harness.errors import DataFormatError
from taiyi_bench.harness.readers._common import UniqueIds, check_span, iter_lines
from taiyi_bench.harness.records import Entity, Example, Relation

if TYPE_CHECKING:  # type hints only: the registry imports the readers (no import circle)
    from taiyi_bench.harness.registry import DatasetSpec

MENTION_TYPES = ("Chemical", "Disease")
NO_CONCEPT = "-1"
_PASSAGE = re.compile(r"^(\d+)\|([ta])\|(.*)$")


@dataclass
class _Document:
    pmid: str
    line: int
    title: str
    abstract: str | None = None
    entities: list[Entity] = field(default_factory=list)
    relations: list[Relation] = field(default_factory=list)
    relation_lines: list[int] = field(default_factory=list)
    # entity index -> component strings of a composite mention (7th column)
    individual: dict[int, tuple[str, ...]] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return f"{self.title} {self.abstract}"


def read_pubtator_cdr(path: str | Path, spec: DatasetSpec, split: str) -> list[Example]:
    """CDR documents as RE `Example`s with id = PMID.

    `entities` are all mentions (with `concept_ids`), `relations` the CID pairs as
    Relation(head=chemical MeSH, "CID", tail=disease MeSH), and `concept_mentions` maps every
    concept id (not `-1`) to each distinct mention string of it in the document. A composite
    mention contributes its full string to every component concept and each component string
    (7th column) to its own concept (to all of them when the counts of ids and strings differ).
    """
    examples: list[Example] = []
    ids = UniqueIds(path)
    doc: _Document | None = None

    def finish() -> None:
        nonlocal doc
        if doc is not None:
            if doc.abstract is None:
                raise DataFormatError(path, doc.line, f"a '{doc.pmid}|a|' abstract line after the title", "none")
            ids.add(doc.pmid, doc.line)
            examples.append(_example(path, spec, split, doc))
        doc = None

    for number, line in iter_lines(path):
        if not line.strip():
            finish()
            continue
        passage = _PASSAGE.match(line)
        if passage:
            pmid, kind, content = passage.groups()
            if kind == "t":
                finish()  # documents are normally blank-line separated; a new title also ends one
                doc = _Document(pmid, number, content)
            elif doc is None or doc.pmid != pmid or doc.abstract is not None:
                raise DataFormatError(path, number, "an abstract line right after its document's title line", repr(line[:80]))
            else:
                doc.abstract = content
            continue
        if doc is None or doc.abstract is None:
            raise DataFormatError(path, number, "a 'PMID|t|' title and 'PMID|a|' abstract line before annotations", repr(line[:80]))
        columns = line.split("\t")
        if columns[0] != doc.pmid:
            raise DataFormatError(path, number, f"an annotation of document {doc.pmid}", f"PMID {columns[0]!r}")
        if len(columns) == 4:
            _relation(path, number, columns, doc)
        elif len(columns) in (6, 7):
            _mention(path, number, columns, doc)
        else:
            raise DataFormatError(
                path, number, "6 or 7 tab-separated columns (mention) or 4 (relation)", f"{len(columns)}: {line[:80]!r}"
            )
    finish()
    return examples


def _mention(path: str | Path, number: int, columns: list[str], doc: _Document) -> None:
    _, start, end, mention, kind, concepts = columns[:6]
    if not (start.isdigit() and end.isdigit()):
        raise DataFormatError(path, number, "integer start and end offsets", f"{start!r}, {end!r}")
    if kind not in MENTION_TYPES:
        raise DataFormatError(path, number, f"a mention type in {list(MENTION_TYPES)}", repr(kind))
    concept_ids = tuple(concepts.split("|"))
    if not all(concept_ids):
        raise DataFormatError(path, number, "MeSH id(s) separated by '|' (or -1)", repr(concepts))
    check_span(doc.text, int(start), int(end), mention, path, number)
    individual = tuple(columns[6].split("|")) if len(columns) == 7 and columns[6] else ()
    doc.entities.append(Entity(kind, mention, int(start), int(end), concept_ids))
    if individual:
        doc.individual[len(doc.entities) - 1] = individual


def _relation(path: str | Path, number: int, columns: list[str], doc: _Document) -> None:
    _, relation, chemical, disease = columns
    if relation != "CID":
        raise DataFormatError(path, number, "relation type 'CID'", repr(relation))
    pair = Relation(chemical, "CID", disease, "Chemical", "Disease")
    if pair in doc.relations:
        raise DataFormatError(path, number, "each CID pair once per document", f"{chemical}-{disease} repeated")
    doc.relations.append(pair)
    doc.relation_lines.append(number)


def _example(path: str | Path, spec: DatasetSpec, split: str, doc: _Document) -> Example:
    concept_mentions: dict[str, list[str]] = {}
    concepts_of_type: dict[str, set[str]] = {kind: set() for kind in MENTION_TYPES}

    def add(concept: str, mention: str) -> None:
        if concept != NO_CONCEPT:
            strings = concept_mentions.setdefault(concept, [])
            if mention not in strings:
                strings.append(mention)

    for index, entity in enumerate(doc.entities):
        concepts_of_type[entity.type].update(entity.concept_ids)
        for concept in entity.concept_ids:
            add(concept, entity.mention)
        parts = doc.individual.get(index, ())
        if len(parts) == len(entity.concept_ids):
            for concept, part in zip(entity.concept_ids, parts, strict=True):
                add(concept, part)
        else:
            for concept in entity.concept_ids:
                for part in parts:
                    add(concept, part)
    # A CID pair between concepts never mentioned could not be matched by any predicted string.
    for pair, number in zip(doc.relations, doc.relation_lines, strict=True):
        for concept, kind in ((pair.head, "Chemical"), (pair.tail, "Disease")):
            if concept not in concepts_of_type[kind] or concept == NO_CONCEPT:
                raise DataFormatError(path, number, f"{concept} to be a {kind} concept mentioned in document {doc.pmid}", "no such mention")
    meta = {"pmid": doc.pmid, "title": doc.title, "abstract_start": len(doc.title) + 1, "line": doc.line}
    return Example(id=doc.pmid, dataset=spec.key, split=split, text=doc.text, entities=doc.entities,
                   relations=doc.relations, concept_mentions=concept_mentions, meta=meta)
