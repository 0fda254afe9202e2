"""PubMedQA PQA-L: `ori_pqal.json` (the 1,000 expert-labelled questions) + `test_ground_truth.json`.

`ori_pqal.json` maps PMID -> {QUESTION, CONTEXTS, LABELS, MESHES, YEAR, reasoning_required_pred,
reasoning_free_pred, final_decision, LONG_ANSWER}; `test_ground_truth.json` maps the 500 test
PMIDs to their label. Test = those 500, train = the other 500 (the official train/CV pool), both
in `ori_pqal.json` order (the ground-truth file lists its PMIDs grouped by label).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from taiyi_bench.harness.errors import DataFormatError
from taiyi_bench.harness.readers._common import load_json, require_field
from taiyi_bench.harness.records import Example

if TYPE_CHECKING:  # type hints only: the registry imports the readers (no import circle)
    from taiyi_bench.harness.registry import DatasetSpec

GROUND_TRUTH = "test_ground_truth.json"
DECISIONS = ("yes", "no", "maybe")
# The convention of every QA set in this project: options are letter -> text, `answer` is the
# gold letter. Scorers accept the letter or the text ("yes") from a model.
OPTIONS = {"A": "yes", "B": "no", "C": "maybe"}
LETTER = {text: letter for letter, text in OPTIONS.items()}


def read_pubmedqa(
    path: str | Path, spec: DatasetSpec, split: str, ground_truth: str | Path | None = None
) -> list[Example]:
    """PQA-L questions as QA `Example`s with id = PMID.

    `path` is `ori_pqal.json`; `ground_truth` defaults to `test_ground_truth.json` beside it.
    question = QUESTION, contexts = CONTEXTS, options = {"A": "yes", "B": "no", "C": "maybe"},
    answer = the letter of `final_decision`; meta keeps final_decision, long_answer,
    context_labels, meshes, year. A test label that disagrees with `final_decision` is an error.
    """
    if split not in ("train", "test"):
        raise KeyError(f"PubMedQA PQA-L has splits 'train' and 'test', not {split!r}")
    ground_truth = Path(path).with_name(GROUND_TRUTH) if ground_truth is None else Path(ground_truth)
    records = load_json(path, unique_keys=True)
    if not isinstance(records, dict):
        raise DataFormatError(path, 1, "a JSON object mapping PMID -> question record", type(records).__name__)
    truth = load_json(ground_truth, unique_keys=True)
    if not isinstance(truth, dict):
        raise DataFormatError(ground_truth, 1, "a JSON object mapping PMID -> yes/no/maybe", type(truth).__name__)
    for pmid, label in truth.items():
        if label not in DECISIONS:
            raise DataFormatError(ground_truth, f"document {pmid}", f"a label in {list(DECISIONS)}", repr(label))
        if pmid not in records:
            raise DataFormatError(ground_truth, f"document {pmid}", f"PMID {pmid} to be in {Path(path).name}", "absent")
    # Both splits in `ori_pqal.json` order: `test_ground_truth.json` lists its PMIDs grouped by
    # label (all 276 'yes' first), so a `--limit` slice in that order would hold one label only.
    pmids = [pmid for pmid in records if (pmid in truth) == (split == "test")]
    examples = []
    for pmid in pmids:
        record = records[pmid]
        where = f"document {pmid}"
        question = require_field(record, "QUESTION", str, path, where)
        contexts = require_field(record, "CONTEXTS", list, path, where)
        if not all(isinstance(context, str) for context in contexts):
            raise DataFormatError(path, where, "CONTEXTS as a list of strings", repr(contexts)[:80])
        decision = require_field(record, "final_decision", str, path, where)
        if decision not in DECISIONS:
            raise DataFormatError(path, where, f"final_decision in {list(DECISIONS)}", repr(decision))
        if pmid in truth and truth[pmid] != decision:
            raise DataFormatError(
                ground_truth, where, f"the label of {Path(path).name} ({decision!r})", repr(truth[pmid])
            )
        meta = {"final_decision": decision, "long_answer": record.get("LONG_ANSWER", ""),
                "context_labels": record.get("LABELS", []), "meshes": record.get("MESHES", []), "year": record.get("YEAR")}
        examples.append(Example(id=pmid, dataset=spec.key, split=split, question=question, contexts=list(contexts),
                                options=dict(OPTIONS), answer=LETTER[decision], meta=meta))
    return examples
