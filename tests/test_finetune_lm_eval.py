"""The stage-2 checkpoint of the fine-tuning recipe is scored through `lm_eval --tasks` on a taiyi task."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from provenance_keys import missing_keys

from taiyi_bench.finetune.config import load_recipe
from taiyi_bench.finetune.train import train
from taiyi_bench.harness.random_models import build_tiny_causal_lm


def test_stage2_adapter_scores_through_the_lm_eval_cli(tmp_path: Path, single_thread_env: dict):
    tiny = build_tiny_causal_lm(tmp_path / "tiny-lm", seed=1)
    config = load_recipe("cpu_smollm2_tiny", [
        f"model.base={tiny}", "data.tasks.names=[kuake_qic, ncbi_disease]", "data.files=[]", "data.cap=4",
        "format.max_length=160", "training.max_steps=2", "training.save_steps=0", "training.progress=false",
    ])
    summary = train(config, stages=(1, 2), output_dir=tmp_path / "sft")
    adapter = Path(summary["stages"][2]["adapter"])
    assert (adapter / "adapter_config.json").is_file()

    done = subprocess.run(
        ["lm_eval", "--model", "hf", "--model_args", f"pretrained={tiny},peft={adapter}",
         "--tasks", "taiyi_kuake_qic", "--limit", "3", "--gen_kwargs", "max_gen_toks=8",
         "--device", "cpu", "--output_path", str(tmp_path / "eval"), "--log_samples"],
        capture_output=True, text=True, env=single_thread_env, timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (results_file,) = (tmp_path / "eval").glob("*/results_*.json")
    results = json.loads(results_file.read_text(encoding="utf-8"))
    assert str(adapter) in str(results["config"]["model_args"])
    assert missing_keys(results["configs"]["taiyi_kuake_qic"]["metadata"]) == []
    metrics = results["results"]["taiyi_kuake_qic"]
    assert 0.0 <= metrics["micro_f1,none"] <= 1.0 and 0.0 <= metrics["parse_fail,none"] <= 1.0
    (samples_file,) = results_file.parent.glob("samples_taiyi_kuake_qic_*.jsonl")
    assert len(samples_file.read_text(encoding="utf-8").splitlines()) == 3
