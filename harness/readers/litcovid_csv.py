"""BioCreative VII LitCovid topic files: the official CSV and the title+abstract TSV derivative.

Official (`BC7-LitCovid-{Train,Dev,Test-GS}.csv`): comma-separated, quoted as CSV, with columns
pmid, journal, title, abstract, keywords, pub_type, authors, doi, label. The unit's text is
`title + " " + abstract`, as in the derivative.
Derivative (`test.tsv`, Chen et al.'s BioNLP benchmark): tab-separated, CSV-quoted, columns
pmid, text, labels. In both, topics are ';'-joined.
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from taiyi_bench.harness.errors import DataFormatError
from taiyi_bench.harness.readers._common import UniqueIds, check_labels, read_text
from taiyi_bench.harness.records import Example

if TYPE_CHECKING:  # type hints only: the registry imports the readers (no import circle)
    from taiyi_bench.harness.registry import DatasetSpec

# Abstracts are long fields; the csv module's default limit (128 KiB) is close enough to hit on
# odd records, so it is raised once for the process.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))

CSV_COLUMNS = ("pmid", "title", "abstract", "label")
TSV_COLUMNS = ("pmid", "text", "labels")


def read_litcovid(path: str | Path, spec: DatasetSpec, split: str) -> list[Example]:
    """LitCovid articles as multi-label TC `Example`s with id = PMID.

    The format is recognised from the header (official CSV or derivative TSV). An unknown topic
    is an error; an empty label field gives no labels. `meta` keeps the CSV's journal,
    keywords, pub_type and doi where present.
    """
    text = read_text(path)
    delimiter = "\t" if Path(path).suffix.lower() == ".tsv" else ","
    # newline="" as the csv docs ask: quoted fields keep their own line breaks.
    rows = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(rows)
    except StopIteration:
        raise DataFormatError(path, 1, "a header line", "an empty file") from None
    official = all(column in header for column in CSV_COLUMNS)
    if not official and not all(column in header for column in TSV_COLUMNS):
        raise DataFormatError(
            path, 1, f"a header with columns {list(CSV_COLUMNS)} (official CSV) or {list(TSV_COLUMNS)} (TSV)", repr(header)
        )
    column = {name: i for i, name in enumerate(header)}
    ids = UniqueIds(path)
    examples = []
    line = rows.line_num + 1  # first physical line of the next record (fields may span lines)
    for row in rows:
        if row == []:  # a trailing blank line
            line = rows.line_num + 1
            continue
        if len(row) != len(header):
            raise DataFormatError(path, line, f"{len(header)} columns as in the header", f"{len(row)}")
        pmid = row[column["pmid"]].strip()
        if not pmid:
            raise DataFormatError(path, line, "a PMID", "an empty pmid field")
        raw_labels = row[column["label" if official else "labels"]]
        labels = [label.strip() for label in raw_labels.split(";")] if raw_labels.strip() else []
        labels = check_labels(labels, spec.labels, path, line)
        if official:
            title, abstract = row[column["title"]], row[column["abstract"]]
            body = f"{title} {abstract}" if abstract else title
            meta = {key: row[column[key]] for key in ("journal", "keywords", "pub_type", "doi") if key in column}
        else:
            body, meta = row[column["text"]], {}
        ids.add(pmid, line)
        meta["line"] = line
        examples.append(Example(id=pmid, dataset=spec.key, split=split, text=body, labels=labels, meta=meta))
        line = rows.line_num + 1
    return examples
