"""Readers of the official file formats: one module per format family, each returning `Example`s.

Every reader has the signature `read_x(path, spec, split) -> list[Example]` (a set whose
registry entry reads every file of a split, `file_policy="all"`, passes the others after `split`:
PubMedQA's ground truth) and raises `taiyi_bench.harness.errors.DataFormatError` naming the file, the line or
record and what was expected. Nothing is repaired or dropped silently. `READERS` maps the
`DatasetSpec.reader` names to the functions.
"""

from __future__ import annotations

from collections.abc import Callable

from taiyi_bench.harness.readers.cblue import read_cmeee, read_cmeie, read_cmeie_schemas, read_kuake_qic
from taiyi_bench.harness.readers.hoc_tsv import read_hoc
from taiyi_bench.harness.readers.iob import read_iob
from taiyi_bench.harness.readers.litcovid_csv import read_litcovid
from taiyi_bench.harness.readers.medqa import read_medqa
from taiyi_bench.harness.readers.pubmedqa_json import read_pubmedqa
from taiyi_bench.harness.readers.pubtator import read_pubtator_cdr

READERS: dict[str, Callable[..., list]] = {
    reader.__name__: reader
    for reader in (
        read_iob, read_pubtator_cdr, read_cmeee, read_cmeie, read_litcovid, read_hoc, read_kuake_qic, read_pubmedqa,
        read_medqa,
    )
}
__all__ = ["READERS", "read_cmeie_schemas", *READERS]
