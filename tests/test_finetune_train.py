"""The training recipe on a tiny random model: two stages, loss falls, exact resume, guards, outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from taiyi_bench.finetune.config import load_recipe
from taiyi_bench.finetune.train import find_checkpoints, merge_adapter, train
from taiyi_bench.harness.errors import ConfigError
from taiyi_bench.harness.random_models import build_tiny_causal_lm

SAMPLES = Path(__file__).resolve().parents[1] / "finetune" / "samples" / "conversations.jsonl"


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny") / "lm", seed=0)


def _config(tiny_dir: Path, *overrides: str) -> dict:
    base = [
        f"model.base={tiny_dir}",
        "data.tasks.names=[bc5cdr_chem, cmeee, pubmedqa]",
        f"data.files=[{SAMPLES}]",
        "data.cap=6",
        "format.max_length=192",
        "training.per_device_batch_size=2",
        "training.gradient_accumulation_steps=2",
        "training.learning_rate=5e-3",
        "training.max_steps=3",
        "training.save_steps=0",
        "training.progress=false",
        "training.num_threads=1",  # the CI machine's 2 cores are shared with other test processes
    ]
    return load_recipe("cpu_smollm2_tiny", [*base, *overrides])


def _steps(out: Path) -> list[dict]:
    lines = (out / "train_log.jsonl").read_text(encoding="utf-8").splitlines()
    return [r for r in map(json.loads, lines) if r["event"] == "step"]


def test_two_stages_run_and_write_loadable_adapters(tiny_dir, tmp_path):
    out = tmp_path / "run"
    config = _config(tiny_dir)
    summary = train(config, stages=(1, 2), output_dir=out)
    steps = _steps(out)
    assert [(s["stage"], s["step"]) for s in steps] == [(1, 1), (1, 2), (1, 3), (2, 1), (2, 2), (2, 3)]
    for record in steps:
        assert record["loss"] > 0 and record["tokens_per_s"] > 0 and "lr" in record and record["tokens"] > 0
    again = load_recipe(out / "resolved_config.yaml")  # the saved config is itself a recipe
    assert {k: again[k] for k in ("model", "lora", "format", "data", "training", "stages")} == {
        k: config[k] for k in ("model", "lora", "format", "data", "training", "stages")
    }
    for stage in (1, 2):
        adapter = out / f"stage{stage}" / "adapter"
        assert (adapter / "adapter_config.json").is_file() and (
            adapter / "adapter_model.safetensors"
        ).is_file()
        assert summary["stages"][stage]["adapter"] == str(adapter)
    reports = [json.loads((out / f"stage{s}" / "data_report.json").read_text()) for s in (1, 2)]
    from taiyi_bench.harness.loading import load_split

    pubmedqa = len(load_split("pubmedqa", "train").examples)
    assert reports[0]["skipped_for_stage"] == {"qa": pubmedqa + 4, "dialogue": 4}  # not in stage 1
    assert {d["dataset"] for d in reports[1]["datasets"]} >= {"pubmedqa", "sample_dialogue_en"}
    assert reports[0]["uses_bundled_samples"] and "truncated" in reports[0]["encoding"]

    # stage 2 started from stage 1's adapter and changed it
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    a1 = load_file(out / "stage1" / "adapter" / "adapter_model.safetensors")
    a2 = load_file(out / "stage2" / "adapter" / "adapter_model.safetensors")
    assert a1.keys() == a2.keys() and any(not torch.equal(a1[k], a2[k]) for k in a1)

    # merged = base + adapter, loadable as a plain model with the same outputs
    merged_dir = merge_adapter(str(tiny_dir), out / "stage2" / "adapter", tmp_path / "merged")
    ids = torch.tensor([[5, 17, 42, 7, 99]])
    peft_model = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(tiny_dir), out / "stage2" / "adapter"
    )
    merged = AutoModelForCausalLM.from_pretrained(merged_dir)
    with torch.no_grad():
        assert torch.allclose(peft_model.eval()(ids).logits, merged.eval()(ids).logits, atol=1e-4)

    # what the lead's lm-eval test will load: pretrained=<base>,peft=<adapter>
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=str(tiny_dir), peft=str(out / "stage2" / "adapter"), device="cpu", batch_size=1)
    assert isinstance(lm.model, PeftModel)

    # a finished stage is not overwritten by accident
    with pytest.raises(ConfigError, match="--resume"):
        train(_config(tiny_dir), stages=(1,), output_dir=out)
    # stage 2 alone on a new directory needs a stage-1 adapter
    with pytest.raises(ConfigError, match="stage 1 first"):
        train(_config(tiny_dir), stages=(2,), output_dir=tmp_path / "other")


def _sharper_copy(tiny_dir: Path, out: Path) -> Path:
    """The shared tiny LM with 10x larger embeddings. Its own (std 0.02, hidden 32, tied to the
    output layer) bound the logits to about +-0.6, so no adapter could lower the loss much."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_dir)
    with torch.no_grad():
        model.get_input_embeddings().weight.mul_(10.0)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_dir).save_pretrained(out)
    return out


def test_loss_falls_on_a_fixed_batch(tiny_dir, tmp_path):
    config = _config(
        _sharper_copy(tiny_dir, tmp_path / "sharp"),
        "data.tasks.names=[]",
        "data.cap=4",
        "data.datasets.sample_mt.cap=3",  # 7 stage-1 samples from the shipped file
        "training.per_device_batch_size=8",  # all of them in the one micro-batch of every step
        "training.gradient_accumulation_steps=1",
        "training.learning_rate=3e-2",
        "training.warmup_ratio=0",
        "training.max_steps=8",
        "lora.dropout=0",
    )
    train(config, stages=(1,), output_dir=tmp_path / "run")
    losses = [s["loss"] for s in _steps(tmp_path / "run")]
    assert len(losses) == 8 and losses[-1] < 0.85 * losses[0], losses
    assert min(losses[4:]) < min(losses[:4]), losses


def test_resume_reproduces_the_next_step_loss(tiny_dir, tmp_path):
    # dropout on, packing on, accumulation on: the optimizer, the schedule, the RNG and the
    # data position must all be restored for the losses to match
    overrides = ("training.max_steps=5", "lora.dropout=0.2", "training.warmup_ratio=0.4")
    uninterrupted = tmp_path / "a"
    train(_config(tiny_dir, *overrides), stages=(1,), output_dir=uninterrupted)
    interrupted = tmp_path / "b"
    first = train(_config(tiny_dir, *overrides), stages=(1,), output_dir=interrupted, stop_after_steps=2)
    assert first["interrupted"]
    (checkpoint,) = find_checkpoints(interrupted / "stage1")
    assert checkpoint.name == "step-000002"
    from safetensors.torch import load_file

    saved = load_file(checkpoint / "state" / "model.safetensors")
    assert saved and all("lora_" in key for key in saved)  # trainable weights only, not the base
    assert (checkpoint / "adapter" / "adapter_config.json").is_file()

    with pytest.raises(ConfigError, match="differs"):
        train(
            _config(tiny_dir, *overrides, "training.learning_rate=1e-2"),
            stages=(1,),
            output_dir=interrupted,
            resume=True,
        )
    train(_config(tiny_dir, *overrides), stages=(1,), output_dir=interrupted, resume=True)
    expected = {s["step"]: s for s in _steps(uninterrupted)}
    resumed = {s["step"]: s for s in _steps(interrupted)}
    assert sorted(resumed) == [1, 2, 3, 4, 5]
    for step in (3, 4, 5):
        assert resumed[step]["loss"] == pytest.approx(expected[step]["loss"], rel=1e-6, abs=1e-7)
        assert resumed[step]["lr"] == pytest.approx(expected[step]["lr"])
        assert resumed[step]["tokens"] == expected[step]["tokens"]
    a = load_file(uninterrupted / "stage1" / "adapter" / "adapter_model.safetensors")
    b = load_file(interrupted / "stage1" / "adapter" / "adapter_model.safetensors")
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_stage_two_alone_trains_as_it_does_after_stage_one(tiny_dir, tmp_path):
    """Stage 2 started in a new process (after a stop between the stages) must not depend on what
    stage 1 drew from the RNGs: with dropout on, its losses and adapter equal those of one run."""
    from safetensors.torch import load_file

    overrides = ("lora.dropout=0.3",)
    together = tmp_path / "together"
    train(_config(tiny_dir, *overrides), stages=(1, 2), output_dir=together)
    apart = tmp_path / "apart"
    train(_config(tiny_dir, *overrides), stages=(1,), output_dir=apart)
    train(_config(tiny_dir, *overrides), stages=(2,), output_dir=apart)
    one_run = [s["loss"] for s in _steps(together) if s["stage"] == 2]
    two_runs = [s["loss"] for s in _steps(apart) if s["stage"] == 2]
    assert len(one_run) == 3 and two_runs == pytest.approx(one_run, rel=1e-6, abs=1e-7)
    a = load_file(together / "stage2" / "adapter" / "adapter_model.safetensors")
    b = load_file(apart / "stage2" / "adapter" / "adapter_model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.precision=bf16", "needs a CUDA GPU"),
        ("model.quantization=4bit", "QLoRA"),
        ("training.optimizer=paged_adamw_32bit", "bitsandbytes|CUDA"),
    ],
)
def test_gpu_only_paths_fail_clearly_on_cpu(tiny_dir, tmp_path, override, message):
    if torch.cuda.is_available():
        pytest.skip("CPU-only guard")
    with pytest.raises(ConfigError, match=message):
        train(_config(tiny_dir, override), stages=(1,), output_dir=tmp_path / "run")


def test_cli_dry_run_and_errors(capsys):
    from taiyi_bench.harness.apps.cli import main

    assert (
        main(["finetune", "cpu_smollm2_tiny", "--dry-run", "--stage", "1", "-o", "data.tasks.names=[hoc]"])
        == 0
    )
    printed = capsys.readouterr().out
    assert "uses_bundled_samples" in printed and '"stage": 1' in printed
    assert main(["finetune", "cpu_smollm2_tiny", "--dry-run", "-o", "training.learing_rate=1"]) == 2
    assert "unknown recipe key training.learing_rate" in capsys.readouterr().err


def test_two_processes_match_one_process_with_the_same_window(tiny_dir, tmp_path):
    """DDP over 2 CPU processes (gloo, via torchrun) x accumulation 2 = one process x accumulation
    4: the same samples per step, the same token-weighted loss, the same gradients."""
    import os
    import subprocess
    import sys

    common = [
        "cpu_smollm2_tiny",
        "--stage",
        "1",
        "-o",
        f"model.base={tiny_dir}",
        "-o",
        "training.max_steps=3",
        "-o",
        "training.num_threads=1",
        "-o",
        "training.progress=false",
        "-o",
        "lora.dropout=0",
        "-o",
        "data.tasks.names=[bc5cdr_chem, cmeee]",
        "-o",
        "training.save_steps=2",
    ]
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}
    two = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "taiyi_bench.finetune",
            *common,
            "-o",
            "training.gradient_accumulation_steps=2",
            "--output-dir",
            str(tmp_path / "ddp"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert two.returncode == 0, two.stderr[-3000:]
    train(
        load_recipe(
            common[0], [c for c in common[3:] if c != "-o"] + ["training.gradient_accumulation_steps=4"]
        ),
        stages=(1,),
        output_dir=tmp_path / "single",
    )
    ddp, single = _steps(tmp_path / "ddp"), _steps(tmp_path / "single")
    start = json.loads((tmp_path / "ddp" / "train_log.jsonl").read_text().splitlines()[0])
    assert start["world_size"] == 2 and "MULTI_CPU" in start["distributed_type"]
    assert [s["tokens"] for s in ddp] == [s["tokens"] for s in single]
    for a, b in zip(ddp, single, strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-6)
        assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-4)


def test_shipped_accelerate_configs_parse():
    from accelerate.commands.config.config_args import ClusterConfig

    folder = Path(__file__).resolve().parents[1] / "finetune" / "accelerate"
    kinds = {p.stem: ClusterConfig.from_yaml_file(str(p)) for p in folder.glob("*.yaml")}
    assert set(kinds) == {"single_gpu", "multi_gpu", "deepspeed_zero2", "deepspeed_zero3", "fsdp"}
    assert kinds["deepspeed_zero2"].deepspeed_config["zero_stage"] == 2
    assert kinds["deepspeed_zero3"].deepspeed_config["zero_stage"] == 3
    assert kinds["fsdp"].fsdp_config["fsdp_use_orig_params"] is True
    recipe = load_recipe("taiyi1_qwen7b_qlora")["training"]
    for name in ("deepspeed_zero2", "deepspeed_zero3"):  # DeepSpeed applies these itself
        assert (
            kinds[name].deepspeed_config["gradient_accumulation_steps"]
            == recipe["gradient_accumulation_steps"]
        )
        assert kinds[name].deepspeed_config["gradient_clipping"] == recipe["max_grad_norm"]
