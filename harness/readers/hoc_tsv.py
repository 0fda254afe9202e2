"""Hallmarks of Cancer, BLURB sentence-level TSV (`labels<TAB>sentence<TAB>index`).

`labels` is ten comma-separated flags `k_v` (k = 0..9 in order, v = 0/1) indexing
`registry.HOC_HALLMARKS` (alphabetical order, as BLURB's data_generation writes them);
`index` is `PMID_sN`. A sentence may have no hallmark.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from taiyi_bench.harness.errors import DataFormatError
from taiyi_bench.harness.readers._common import UniqueIds, iter_lines
from taiyi_bench.harness.records import Example

if TYPE_CHECKING:  # type hints only: the registry imports the readers (no import circle)
    from taiyi_bench.harness.registry import DatasetSpec

HEADER = ["labels", "sentence", "index"]


def read_hoc(path: str | Path, spec: DatasetSpec, split: str) -> list[Example]:
    """HoC sentences as multi-label TC `Example`s with id = `index` (`PMID_sN`).

    Fields are split on tabs only, with no CSV quoting: sentences contain bare double quotes
    (`" Slow progressor " ...`) that BLURB wrote unescaped, and CSV rules would eat them.
    """
    hallmarks = tuple(spec.labels)
    ids = UniqueIds(path)
    examples = []
    header_seen = False
    for number, line in iter_lines(path):
        row = line.split("\t")
        if number == 1:
            if row != HEADER:
                raise DataFormatError(path, 1, f"the header {'<TAB>'.join(HEADER)}", repr(line[:80]))
            header_seen = True
            continue
        if not line.strip():
            continue
        if len(row) != 3:
            raise DataFormatError(path, number, "3 tab-separated columns (labels, sentence, index)", f"{len(row)}")
        flags, sentence, index = row
        labels = _labels(flags, hallmarks, path, number)
        if not sentence.strip() or not index:
            raise DataFormatError(path, number, "a non-empty sentence and index", repr(line[:80]))
        ids.add(index, number)
        pmid = index.rsplit("_s", 1)[0]
        examples.append(
            Example(id=index, dataset=spec.key, split=split, text=sentence, labels=labels, meta={"pmid": pmid, "line": number})
        )
    if not header_seen:
        raise DataFormatError(path, 1, f"the header {'<TAB>'.join(HEADER)}", "an empty file")
    return examples


def _labels(flags: str, hallmarks: tuple[str, ...], path: str | Path, number: int) -> list[str]:
    expected = f"{len(hallmarks)} comma-separated flags 0_v,1_v,...,{len(hallmarks) - 1}_v with v in 0/1"
    parts = flags.split(",")
    if len(parts) != len(hallmarks):
        raise DataFormatError(path, number, expected, repr(flags))
    labels = []
    for position, part in enumerate(parts):
        index, _, value = part.partition("_")
        if index != str(position) or value not in ("0", "1"):
            raise DataFormatError(path, number, expected, f"{part!r} at position {position}")
        if value == "1":
            labels.append(hallmarks[position])
    return labels
