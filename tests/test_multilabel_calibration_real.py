"""MiniLM on a slice of the REAL HoC data must predict hallmarks.

Regression: the reference run (MiniLM, 400 steps, sigmoid threshold 0.5) predicted no label for
any of the 3,547 test sentences (micro-F1 0): about 3% of (sentence, hallmark) pairs are positive,
so the unweighted loss settles at the prior's entropy and no sigmoid crosses 0.5. The head now
weights each label's positives by negatives / positives, and its threshold is chosen on the dev
split (`TextClassifier.calibrate`).
"""

from __future__ import annotations

import logging

import pytest

from taiyi_bench.baselines import settings, training
from taiyi_bench.baselines.families import TextClassifier
from taiyi_bench.harness import scoring
from taiyi_bench.harness.loading import load_split
from taiyi_bench.harness.local_models import minilm_dir
from taiyi_bench.harness.registry import get_spec

TRAIN, DEV, TEST = 600, 300, 300


def test_positive_weights_are_negatives_over_positives():
    assert training.positive_weights([[1.0, 0.0], [0.0, 0.0], [0.0, 0.0], [1.0, 0.0]]) == [1.0, 1.0]
    assert training.positive_weights([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0], [0.0, 0.0]]) == [3.0, 3.0]


@pytest.mark.slow
def test_minilm_predicts_hallmarks_on_real_hoc(shared_data_dir):
    import transformers

    transformers.utils.logging.set_verbosity_error()
    logging.getLogger("taiyi-bench").setLevel(logging.ERROR)
    spec = get_spec("hoc")
    train = load_split(spec.key, "train", shared_data_dir).examples[:TRAIN]
    dev = load_split(spec.key, "dev", shared_data_dir).examples[:DEV]
    test = load_split(spec.key, "test", shared_data_dir).examples[:TEST]
    # 60 steps: micro-F1 0.246 vs all-labels 0.076 on 2 cores (80 steps: 0.277); 40 steps fall
    # to 0.121, just over the 1.5x bar: fewer than 60 would leave the assertion no room.
    config = settings.head_config(spec.key, "sequence", {"max_steps": 60, "batch_size": 16, "learning_rate": 2e-4, "seed": 42})
    baseline = TextClassifier.create(spec, str(minilm_dir()), {"sequence": config}, train)
    stats = baseline.fit(train)
    assert min(stats["model"]["positive_weights"]) > 1  # every hallmark is the rare outcome

    calibration = baseline.calibrate(dev)
    predictions = baseline.predict(test).predictions
    metrics = scoring.aggregate(spec, [scoring.score_unit(spec, ex, p) for ex, p in zip(test, predictions, strict=True)])
    predicted = sum(len(p.labels) for p in predictions)
    # The trivial bar: every hallmark for every sentence (threshold 0).
    everything = baseline._decide(baseline.model.predict_scores([(ex.text, None) for ex in test]), 0.0)
    trivial = scoring.aggregate(spec, [scoring.score_unit(spec, ex, p) for ex, p in zip(test, everything, strict=True)])
    print(f"HoC: {predicted} labels predicted on {TEST} sentences, micro_f1 {metrics['micro_f1']:.3f} vs all-labels "
          f"{trivial['micro_f1']:.3f}, threshold {calibration['decision_threshold']}")
    assert predicted > 0
    assert metrics["micro_f1"] > 1.5 * trivial["micro_f1"]
