"""IOB / CoNLL token files (BC5CDR-Chem, BC5CDR-Dise, NCBI-disease, BC4CHEMD for CHEMDNER).

Format (cambridgeltl/MTL-Bioinformatics-2016): one `token<TAB>tag` per line, a blank line
between sentences, tags `O`, `B-<Type>`, `I-<Type>`. The unit is the sentence. Its text is the
tokens joined by single spaces (the files carry no original spacing), and entity offsets point
into that text, so `text[start:end] == mention` always holds.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from taiyi_bench.harness.errors import DataFormatError
from taiyi_bench.harness.readers._common import iter_lines
from taiyi_bench.harness.records import Entity, Example

if TYPE_CHECKING:  # type hints only: the registry imports the readers (no import circle)
    from taiyi_bench.harness.registry import DatasetSpec

# CoNLL-2003 style document markers; not tokens of any sentence.
_DOCSTART = "-DOCSTART-"


def read_iob(path: str | Path, spec: DatasetSpec, split: str) -> list[Example]:
    """Sentences of an IOB file as NER `Example`s with id `"<split>-<sentence index>"` (0-based).

    `meta` keeps `tokens`, `tags` (for token-classification baselines) and `line` (1-based line
    of the sentence's first token). An `I-` tag that does not continue an open entity of the same
    type is a `DataFormatError`: repairing it silently would change the gold.
    """
    types = set(spec.labels)
    examples: list[Example] = []
    tokens: list[str] = []
    tags: list[str] = []
    lines: list[int] = []

    def flush() -> None:
        if tokens:
            examples.append(_sentence(path, spec, split, len(examples), tokens, tags, lines))
            tokens.clear()
            tags.clear()
            lines.clear()

    for number, line in iter_lines(path):
        if not line.strip():
            flush()
            continue
        columns = line.split("\t")
        if len(columns) != 2:
            raise DataFormatError(
                path, number, "2 tab-separated columns (token, IOB tag)", f"{len(columns)} column(s): {line[:80]!r}"
            )
        token, tag = columns
        if token == _DOCSTART:
            flush()
            continue
        if not token.strip():
            raise DataFormatError(path, number, "a non-empty token", repr(token))
        if tag != "O":
            prefix, _, entity_type = tag.partition("-")
            if prefix not in ("B", "I") or entity_type not in types:
                allowed = ", ".join(["O"] + [f"{p}-{t}" for t in spec.labels for p in "BI"])
                raise DataFormatError(path, number, f"a tag in {{{allowed}}}", repr(tag))
        tokens.append(token)
        tags.append(tag)
        lines.append(number)
    flush()
    return examples


def _sentence(
    path: str | Path, spec: DatasetSpec, split: str, index: int, tokens: list[str], tags: list[str], lines: list[int]
) -> Example:
    text = " ".join(tokens)
    spans: list[list] = []  # [type, start, end] of each entity, in order
    open_type: str | None = None
    start = 0
    for token, tag, number in zip(tokens, tags, lines, strict=True):
        end = start + len(token)
        if tag == "O":
            open_type = None
        elif tag.startswith("B-"):
            open_type = tag[2:]
            spans.append([open_type, start, end])
        else:  # "I-": must continue an open entity of the same type
            if open_type != tag[2:]:
                found = f"{tag!r} after {'O/sentence start' if open_type is None else 'an open ' + open_type}"
                raise DataFormatError(path, number, f"'I-{tag[2:]}' only inside a B-{tag[2:]}/I-{tag[2:]} entity", found)
            spans[-1][2] = end
        start = end + 1  # the single joining space
    return Example(id=f"{split}-{index}", dataset=spec.key, split=split, text=text,
                   entities=[Entity(kind, text[s:e], s, e) for kind, s, e in spans],
                   meta={"tokens": list(tokens), "tags": list(tags), "line": lines[0]})
