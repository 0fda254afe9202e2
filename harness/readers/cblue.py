"""CBLUE files (Chinese): CMeEE-V2 (JSON array), CMeIE-V2 (JSON Lines + 53_schemas.json), KUAKE-QIC (JSON array).

CBLUE hides the labels of its test files, so the labelled `dev` split is the evaluation split;
a record without its labels (the official test files) is a format error here, never an empty gold.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from taiyi_bench.harness.errors import DataFormatError
from taiyi_bench.harness.readers._common import (
    UniqueIds,
    check_span,
    iter_jsonl,
    iter_lines,
    load_json,
    record_location,
    require_field,
)
from taiyi_bench.harness.records import Entity, Example, Relation

if TYPE_CHECKING:  # type hints only: the registry imports the readers (no import circle)
    from taiyi_bench.harness.registry import DatasetSpec


def _json_array(path: str | Path) -> list:
    records = load_json(path)
    if not isinstance(records, list):
        raise DataFormatError(path, 1, "a JSON array of records", type(records).__name__)
    return records


def read_cmeee(path: str | Path, spec: DatasetSpec, split: str) -> list[Example]:
    """CMeEE-V2 sentences as NER `Example`s with id `"<split>-<record index>"` (0-based).

    V2 `end_idx` is EXCLUSIVE (`text[start_idx:end_idx] == entity`; V1 was inclusive). Nested and
    overlapping entities are all kept, in file order.
    """
    types = tuple(spec.labels)
    examples = []
    for index, record in enumerate(_json_array(path)):
        where = record_location(index)
        text = require_field(record, "text", str, path, where)
        raw_entities = require_field(record, "entities", list, path, where)
        entities = []
        for number, raw in enumerate(raw_entities):
            ewhere = f"{where}, entity {number}"
            start = require_field(raw, "start_idx", int, path, ewhere, "entity")
            end = require_field(raw, "end_idx", int, path, ewhere, "entity")
            kind = require_field(raw, "type", str, path, ewhere, "entity")
            mention = require_field(raw, "entity", str, path, ewhere, "entity")
            if kind not in types:
                raise DataFormatError(path, ewhere, f"an entity type in {list(types)}", repr(kind))
            check_span(text, start, end, mention, path, ewhere)
            entities.append(Entity(kind, mention, start, end))
        examples.append(
            Example(id=f"{split}-{index}", dataset=spec.key, split=split, text=text, entities=entities, meta={"record": index})
        )
    return examples


def _value(field_value: object) -> object:
    # V2 wraps object and object_type as {"@value": ...}; CMeIE V1 derivatives use plain strings.
    return field_value.get("@value") if isinstance(field_value, dict) else field_value


def read_cmeie(path: str | Path, spec: DatasetSpec, split: str) -> list[Example]:
    """CMeIE-V2 sentences as RE `Example`s with id `"<split>-<line index>"` (0-based).

    Each SPO becomes Relation(head=subject, relation=predicate, tail=object, head_type=subject_type,
    tail_type=object_type). All triples are kept as listed (the dev file repeats 12 triples
    within their sentence; scorers compare sets). `meta["combined"]` keeps each triple's
    `Combined` flag in the same order.
    """
    predicates = tuple(spec.labels)
    examples = []
    for number, record in iter_jsonl(path):
        text = require_field(record, "text", str, path, number)
        spo_list = require_field(record, "spo_list", list, path, number)
        relations, combined = [], []
        for index, spo in enumerate(spo_list):
            where = f"line {number}, spo {index}"
            subject = require_field(spo, "subject", str, path, where, "spo")
            predicate = require_field(spo, "predicate", str, path, where, "spo")
            subject_type = require_field(spo, "subject_type", str, path, where, "spo")
            obj = _value(require_field(spo, "object", (dict, str), path, where, "spo"))
            object_type = _value(require_field(spo, "object_type", (dict, str), path, where, "spo"))
            if not isinstance(obj, str) or not obj or not subject:
                raise DataFormatError(path, where, "non-empty subject and object ({'@value': str})", f"{subject!r}, {obj!r}")
            if not isinstance(object_type, str):
                raise DataFormatError(path, where, "object_type {'@value': str}", repr(object_type))
            if predicate not in predicates:
                raise DataFormatError(path, where, f"a predicate of the {len(predicates)} CMeIE-V2 predicates", repr(predicate))
            relations.append(Relation(subject, predicate, obj, subject_type, object_type))
            combined.append(bool(spo.get("Combined", False)))
        examples.append(Example(id=f"{split}-{number - 1}", dataset=spec.key, split=split, text=text,
                                relations=relations, meta={"line": number, "combined": combined}))
    return examples


def read_cmeie_schemas(path: str | Path) -> tuple[tuple[str, str, str, str], ...]:
    """`53_schemas.json` as (subject_type, predicate, object_type, direction) tuples.

    The official file starts with a `# direction: ...` comment line, which is not JSON; comment
    lines are blanked (not removed) so that JSON error line numbers still match the file.
    """
    text = "\n".join("" if line.lstrip().startswith("#") else line for _, line in iter_lines(path))
    records = load_json(path, text)
    if not isinstance(records, list):
        raise DataFormatError(path, None, "a JSON array of schemas after the '#' comment line", type(records).__name__)
    schemas = []
    for index, record in enumerate(records):
        where = record_location(index)
        fields = [require_field(record, key, str, path, where, "schema") for key in ("subject_type", "predicate", "object_type")]
        direction = str(require_field(record, "direction", (str, int), path, where, "schema"))
        if direction not in ("0", "1"):
            raise DataFormatError(path, where, "direction '0' (symmetric) or '1' (directed)", repr(direction))
        schemas.append((*fields, direction))
    return tuple(schemas)


def read_kuake_qic(path: str | Path, spec: DatasetSpec, split: str) -> list[Example]:
    """KUAKE-QIC queries as single-label TC `Example`s with id = the record's `id`."""
    intents = tuple(spec.labels)
    ids = UniqueIds(path)
    examples = []
    for index, record in enumerate(_json_array(path)):
        where = record_location(index)
        example_id = require_field(record, "id", (str, int), path, where)
        query = require_field(record, "query", str, path, where)
        if "label" not in (record or {}):
            raise DataFormatError(
                path, where, "a 'label' field (the unlabelled CBLUE test file is not an evaluation split)", f"keys {sorted(record)}"
            )
        label = require_field(record, "label", str, path, where)
        if label not in intents:
            raise DataFormatError(path, where, f"a label in {list(intents)}", repr(label))
        ids.add(str(example_id), where)
        examples.append(
            Example(id=str(example_id), dataset=spec.key, split=split, text=query, labels=[label], meta={"record": index})
        )
    return examples
