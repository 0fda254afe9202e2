"""MedQA JSON Lines (jind11/MedQA data_clean): US (4 options) and Mainland/MCMLE (4 or 5 options).

Each line: {question, options {letter: text}, answer (text), answer_idx (letter), meta_info
[, metamap_phrases]}. The option letters must be exactly the spec's labels (A-D, or A-E for the
5-option MCMLE variant), and `options[answer_idx] == answer`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from taiyi_bench.harness.errors import DataFormatError
from taiyi_bench.harness.readers._common import iter_jsonl, require_field
from taiyi_bench.harness.records import Example

if TYPE_CHECKING:  # type hints only: the registry imports the readers (no import circle)
    from taiyi_bench.harness.registry import DatasetSpec


def read_medqa(path: str | Path, spec: DatasetSpec, split: str) -> list[Example]:
    """Questions as QA `Example`s with id `"<split>-<line index>"` (0-based).

    options = letter -> text (in letter order), answer = `answer_idx`; meta keeps meta_info
    (USMLE step / MCMLE subject), the answer text and the number of options.
    """
    letters = list(spec.labels)
    examples = []
    for number, record in iter_jsonl(path):
        question = require_field(record, "question", str, path, number)
        options = require_field(record, "options", dict, path, number)
        answer_text = require_field(record, "answer", str, path, number)
        letter = require_field(record, "answer_idx", str, path, number)
        if sorted(options) != letters:
            raise DataFormatError(path, number, f"options {letters}", f"{sorted(options)}")
        if not all(isinstance(text, str) for text in options.values()):
            raise DataFormatError(path, number, "option texts as strings", repr(options)[:80])
        if letter not in options:
            raise DataFormatError(path, number, f"answer_idx in {letters}", repr(letter))
        if options[letter] != answer_text:
            raise DataFormatError(
                path, number, f"answer == options[{letter!r}] ({options[letter]!r:.60})", f"answer {answer_text!r:.60}"
            )
        meta = {"meta_info": record.get("meta_info", ""), "answer_text": answer_text, "n_options": len(letters),
                "line": number}
        examples.append(Example(id=f"{split}-{number - 1}", dataset=spec.key, split=split, question=question,
                                options={key: options[key] for key in letters}, answer=letter, meta=meta))
    return examples
