"""A real model through the literal user command: `lm_eval --tasks 'taiyi_*' --model hf ...`."""

from __future__ import annotations

import json
import subprocess

import pytest
from provenance_keys import missing_keys

from taiyi_bench.harness.local_models import smollm2_dir
from taiyi_bench.harness.registry import REGISTRY
from taiyi_bench.harness.scoring import headline_metric_name

pytestmark = pytest.mark.slow


def test_smollm2_runs_all_13_tasks_through_the_lm_eval_cli(tmp_path, single_thread_env):
    command = [
        "lm_eval", "--model", "hf",
        "--model_args", f"pretrained={smollm2_dir()},dtype=float32",
        "--tasks", "taiyi_*", "--limit", "2", "--apply_chat_template",
        # keep CPU time small: the tasks' own budgets are sized for real answers
        "--gen_kwargs", "max_gen_toks=12", "--batch_size", "1",
        "--output_path", str(tmp_path), "--log_samples",
    ]
    done = subprocess.run(command, capture_output=True, text=True, env=single_thread_env, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "BUNDLED SAMPLES" in done.stderr + done.stdout  # said loudly

    (results_file,) = tmp_path.glob("*/results_*.json")
    results = json.loads(results_file.read_text(encoding="utf-8"))
    expected = {spec.task_name: spec for spec in REGISTRY.values()}
    assert set(results["results"]) == set(expected)
    for task, spec in expected.items():
        metrics = results["results"][task]
        assert 0.0 <= metrics[f"{headline_metric_name(spec)},none"] <= 1.0
        assert 0.0 <= metrics["parse_fail,none"] <= 1.0
        metadata = results["configs"][task]["metadata"]
        assert metadata["data_source"] == "samples" and missing_keys(metadata) == []
        # the global max_gen_toks=12 cuts every task's own budget: said, and recorded
        assert metadata["budget"]["effective"] == 12 and metadata["budget"]["cut"], task
        assert f"cuts {task}'s generation budget" in done.stderr + done.stdout
        (samples_file,) = results_file.parent.glob(f"samples_{task}_*.jsonl")
        lines = samples_file.read_text(encoding="utf-8").splitlines()
        assert len(lines) == 2
        assert all("parse_fail" in json.loads(line) for line in lines)
