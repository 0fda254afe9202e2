"""MiniLM fine-tuned briefly on the REAL BC5CDR-Chem and NCBI-disease train splits must beat a
dictionary baseline by a wide margin on (a fixed slice of) the real test splits.

The trivial baseline tags every exact, case-insensitive, word-bounded occurrence of a training
mention - on the full test sets it scores micro-F1 65.9 (BC5CDR-Chem) and 59.5 (NCBI), which is
the bar a model that only memorised names would reach. Steps are kept to what fits about a minute
per set on 2 CPU cores; baselines/README.md reports the full-test-set numbers.
"""

from __future__ import annotations

import logging
import re

import pytest

from taiyi_bench.baselines import runner
from taiyi_bench.harness import scoring
from taiyi_bench.harness.loading import load_split
from taiyi_bench.harness.records import Example, Prediction
from taiyi_bench.harness.registry import get_spec

TEST_UNITS = 600  # the first 600 test sentences (BC5CDR: about 1/8 of the split; NCBI: 64%)
HYPERPARAMETERS = {"batch_size": 16, "learning_rate": 3e-4, "max_length": 128, "seed": 42}
# Steps per set, measured on 2 cores (micro-F1 / dictionary; the bars are dictionary + 8 points and 70):
# BC5CDR-Chem 150 steps 81.3 / 63.1 (300 steps at lr 2e-4 gave 84.5, 1 min more; 150 at 2e-4: 79.7);
# NCBI needs more: 225 steps 77.1 / 59.1 (300 at lr 2e-4: 79.3; 200 at 3e-4: 74.9; 150 at 4e-4: 71.7).
STEPS = {"bc5cdr_chem": 150, "ncbi_disease": 225}


def dictionary_f1(task: str, data_dir, train: list[Example], test: list[Example]) -> float:
    spec = get_spec(task)
    lexicon = {e.mention.lower(): e.type for ex in train for e in ex.entities}
    names = sorted(lexicon, key=len, reverse=True)  # longest match first
    pattern = re.compile(r"(?<!\w)(" + "|".join(map(re.escape, names)) + r")(?!\w)", re.IGNORECASE)
    predictions = [Prediction(entities={(lexicon[m.group(0).lower()], m.group(0)) for m in pattern.finditer(ex.text)}) for ex in test]
    return scoring.aggregate(spec, [scoring.score_unit(spec, ex, p) for ex, p in zip(test, predictions, strict=True)])["micro_f1"]


@pytest.mark.slow
@pytest.mark.parametrize("task", list(STEPS))
def test_minilm_beats_the_dictionary_baseline_on_real_data(task, shared_data_dir, tmp_path):
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    logging.getLogger("taiyi-bench").setLevel(logging.ERROR)
    train = load_split(task, "train", shared_data_dir).examples
    test = load_split(task, "test", shared_data_dir).examples[:TEST_UNITS]
    floor = dictionary_f1(task, shared_data_dir, train, test)

    result = runner.train(
        task, encoder="minilm", data_dir=shared_data_dir, output_dir=tmp_path / "ckpt",
        hyperparameters={**HYPERPARAMETERS, "max_steps": STEPS[task]}, limit=TEST_UNITS, results_dir=tmp_path / "results",
    )
    f1 = result.metrics["micro_f1"]
    print(f"{task}: MiniLM {STEPS[task]} steps micro_f1={f1:.3f} seqeval_f1={result.metrics['seqeval_f1']:.3f} "
          f"dictionary={floor:.3f} train {result.train_stats['tagger']['seconds']}s")
    assert result.train_stats["tagger"]["steps"] == STEPS[task]
    assert f1 >= floor + 0.08, (f1, floor)
    assert f1 >= 0.70
    # The results file says it is the real data, and a limited run.
    import json

    data = json.loads(result.results_path.read_text())
    name = get_spec(task).task_name
    assert data["configs"][name]["metadata"]["data_source"] == "data"
    assert data["n-samples"][name]["effective"] == TEST_UNITS < data["n-samples"][name]["original"]
