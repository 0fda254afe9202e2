"""Shared helpers of the readers: strict text/JSON/JSONL loading with errors that name the place.

Every reader raises `DataFormatError(path, location, expected, found)`; these helpers keep the
messages uniform (file, 1-based line or record, what was expected, what was found).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from taiyi_bench.harness.errors import DataFormatError


def read_text(path: str | Path) -> str:
    """The whole file as text. UTF-8 (a BOM is tolerated: some Windows tools add one)."""
    raw = Path(path).read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise DataFormatError(path, line, "UTF-8 text", f"undecodable byte at offset {err.start}") from None


def iter_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, line without its line ending). CRLF files are accepted."""
    # splitlines() would also split on \x1c, \u2028 etc., which can occur inside biomedical text;
    # only \n (with an optional \r before it) ends a line in these formats.
    text = read_text(path)
    if text.endswith("\n"):
        text = text[:-1]
    if not text:
        return
    for number, line in enumerate(text.split("\n"), start=1):
        yield number, line.removesuffix("\r")


class _DuplicateKey(ValueError):
    pass


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def load_json(path: str | Path, text: str | None = None, *, unique_keys: bool = False) -> Any:
    """Parse a whole-file JSON document; a syntax error names its line and column.

    `unique_keys`: a repeated object key is an error (json.loads would silently keep the last one;
    for files keyed by id, such as PubMedQA's, that would drop a record).
    """
    text = read_text(path) if text is None else text
    try:
        return json.loads(text, object_pairs_hook=_unique_object if unique_keys else None)
    except json.JSONDecodeError as err:
        raise DataFormatError(path, err.lineno, "valid JSON", f"{err.msg} at column {err.colno} (truncated file?)") from None
    except _DuplicateKey as err:
        raise DataFormatError(path, f"key {err.args[0]!r}", "unique keys (ids)", "the key twice") from None


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, Any]]:
    """(1-based line number, parsed object) for each non-blank line of a JSON Lines file.

    Parsed line by line with `json` rather than `jsonlines` because example ids and error
    messages need the line number of every record, which `jsonlines.Reader` does not expose.
    """
    for number, line in iter_lines(path):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as err:
            raise DataFormatError(path, number, "one JSON object per line", f"{err.msg} at column {err.colno}") from None


def require_field(
    record: Any, key: str, kind: type | tuple[type, ...], path: str | Path, location: str | int, what: str = "record"
) -> Any:
    """`record[key]`, checked to exist and to have type `kind`."""
    if not isinstance(record, dict):
        raise DataFormatError(path, location, f"a JSON object ({what})", type(record).__name__)
    if key not in record:
        raise DataFormatError(path, location, f"field {key!r} in the {what}", f"keys {sorted(record)}")
    value = record[key]
    # bool is a subclass of int; an offset given as true/false is a format error, not 1/0.
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
        names = "/".join(k.__name__ for k in _as_tuple(kind))
        raise DataFormatError(path, location, f"{key!r} of type {names}", f"{type(value).__name__} {value!r:.80}")
    return value


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def check_span(
    text: str, start: int, end: int, mention: str, path: str | Path, location: str | int
) -> None:
    """Offsets inside the text and `text[start:end] == mention` (end exclusive)."""
    if not 0 <= start < end <= len(text):
        raise DataFormatError(
            path, location, f"0 <= start < end <= {len(text)} (text length)", f"start={start} end={end} for {mention!r}"
        )
    if text[start:end] != mention:
        raise DataFormatError(
            path, location, f"text[{start}:{end}] == {mention!r}", f"text[{start}:{end}] == {text[start:end]!r}"
        )


class UniqueIds:
    """Collects example ids and rejects a repeat, naming where the first one was."""

    def __init__(self, path: str | Path):
        self.path = path
        self.seen: dict[str, str | int] = {}

    def add(self, example_id: str, location: str | int) -> None:
        if example_id in self.seen:
            first = self.seen[example_id]
            where = f"line {first}" if isinstance(first, int) else str(first)
            raise DataFormatError(self.path, location, "unique ids", f"duplicate id {example_id!r} (first at {where})")
        self.seen[example_id] = location


def check_labels(labels: Iterable[str], allowed: Iterable[str], path: str | Path, location: str | int) -> list[str]:
    """Every label known to the set (an unknown label is an error, never dropped or guessed)."""
    allowed = tuple(allowed)
    result = []
    for label in labels:
        if label not in allowed:
            raise DataFormatError(path, location, f"a label in {list(allowed)}", repr(label))
        if label in result:
            raise DataFormatError(path, location, "each label once", f"{label!r} repeated")
        result.append(label)
    return result


def record_location(index: int) -> str:
    """Location of element `index` of a whole-file JSON array (0-based, as in the example id)."""
    return f"record {index} (0-based)"
