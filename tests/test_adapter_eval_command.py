"""One builder of "evaluate this fine-tuned adapter in the format it was trained in": what the run
recorded in the adapter's taiyi_stage.json (`taiyi_bench.finetune.adapter_eval`) gives the same
command from `taiyi finetune`, `taiyi demo` and `taiyi reference`."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from taiyi_bench.finetune.adapter_eval import adapter_eval, eval_record
from taiyi_bench.finetune.config import load_recipe
from taiyi_bench.harness.errors import ConfigError
from taiyi_bench.harness.integrity import STAGE_MARKER


def _record(adapter: Path, config: dict, base: str) -> Path:
    """An adapter folder with the marker a finished stage writes (the evaluation part of it)."""
    adapter.mkdir(parents=True)
    (adapter / STAGE_MARKER).write_text(json.dumps({"stage": 2, "eval": eval_record(config, base)}), encoding="utf-8")
    return adapter


def _what_decides(argv: list[str]) -> dict:
    """The parts of an lm_eval command line that the training format decides."""
    model_args = dict(item.split("=", 1) for item in argv[argv.index("--model_args") + 1].split(","))
    model_args.pop("dtype", None)  # the caller's choice (the CPU runs of demo and reference)
    system = argv[argv.index("--system_instruction") + 1] if "--system_instruction" in argv else None
    return {
        "model": argv[argv.index("--model") + 1],
        "model_args": model_args,
        "apply_chat_template": "--apply_chat_template" in argv,
        "system_instruction": system,
    }


def _three_call_sites(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, config: dict) -> list[dict]:
    from taiyi_bench.baselines import llm_run
    from taiyi_bench.finetune.cli import eval_command
    from taiyi_bench.harness.apps import demo, reference

    work = tmp_path / "work"
    base = tmp_path / "base"
    base.mkdir()
    adapter = _record(reference.adapter_dir(work), config, str(base))

    printed = eval_command(config, {"stages": {2: {"adapter": str(adapter)}}, "output_dir": str(tmp_path / "run")})
    assert printed is not None

    run = demo.Demo(demo.DemoSettings.reduced(tmp_path / "demo"))
    marker = {"step": "finetune", "seconds": 1.0, "fingerprint": run.s.fingerprint(), "outputs": {"adapter": str(adapter)}}
    run._marker("finetune").parent.mkdir(parents=True)
    run._marker("finetune").write_text(json.dumps(marker), encoding="utf-8")
    seen: dict = {}
    monkeypatch.setattr(llm_run, "run_preflight", lambda config, **_: config.model)  # no model loads here
    monkeypatch.setattr(demo.Demo, "_run_llm", lambda self, config, location: seen.update(config=config, location=location))
    run.eval_finetuned()
    demo_argv = llm_run.build_invocation(seen["config"], model_location=seen["location"]).argv

    tuned = reference.tuned_command(work, "hoc", tmp_path / "results", tmp_path / "data", 8)
    return [_what_decides(argv) for argv in (shlex.split(printed), demo_argv, tuned[2:])]


def test_an_eod_adapter_is_evaluated_in_eod_with_its_own_token_everywhere(tmp_path, monkeypatch):
    config = load_recipe("cpu_smollm2_tiny", [
        "format.style=eod", "format.eod_token=<|im_end|>", "format.system=ignored in eod",
        "model.trust_remote_code=true", "model.revision=abc123",
    ])  # fmt: skip
    finetune, demo, reference = _three_call_sites(tmp_path, monkeypatch, config)
    adapter = tmp_path / "work" / "SmolLM2-135M-Instruct-reference-ft"
    assert finetune == {
        "model": "taiyi-hf",
        "model_args": {
            "pretrained": str(tmp_path / "base"), "peft": str(adapter), "revision": "abc123",
            "trust_remote_code": "True", "prompt_format": "eod", "eod_token": "<|im_end|>",
        },
        "apply_chat_template": False,
        "system_instruction": None,
    }  # fmt: skip
    assert demo == finetune and reference == finetune


def test_a_chat_template_adapter_is_evaluated_with_its_template_and_system_prompt_everywhere(tmp_path, monkeypatch):
    config = load_recipe("cpu_smollm2_tiny", ["format.system=You are a careful annotator, brief."])
    finetune, demo, reference = _three_call_sites(tmp_path, monkeypatch, config)
    adapter = tmp_path / "work" / "SmolLM2-135M-Instruct-reference-ft"
    assert finetune == {
        "model": "taiyi-hf",
        "model_args": {"pretrained": str(tmp_path / "base"), "peft": str(adapter), "prompt_format": "chat_template"},
        "apply_chat_template": True,
        "system_instruction": "You are a careful annotator, brief.",
    }
    assert demo == finetune and reference == finetune


def test_recipes_map_to_the_format_they_train(tmp_path):
    taiyi = adapter_eval(_record(tmp_path / "a", load_recipe("taiyi1_qwen7b_qlora"), "Qwen/Qwen-7B"))
    assert (taiyi.prompt_format, taiyi.format_args) == ("eod", {"eod_token": "<|endoftext|>"})
    command = taiyi.lm_eval_argv("taiyi_*", "results/runs/x")
    model_args = command[command.index("--model_args") + 1]
    assert model_args == f"pretrained=Qwen/Qwen-7B,peft={tmp_path / 'a'},trust_remote_code=True,prompt_format=eod,eod_token=<|endoftext|>"
    assert "--apply_chat_template" not in command
    qwen25 = adapter_eval(_record(tmp_path / "b", load_recipe("qwen2.5_7b_lora"), "Qwen/Qwen2.5-7B"))
    argv = qwen25.lm_eval_argv("taiyi_*", "results/runs/y")
    assert "prompt_format=chat_template" in argv[argv.index("--model_args") + 1] and "--apply_chat_template" in argv


def test_a_missing_or_malformed_record_is_one_error_naming_the_file(tmp_path):
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    with pytest.raises(ConfigError, match=re.escape(f"{adapter / STAGE_MARKER}: no evaluation record")):
        adapter_eval(adapter)
    (adapter / STAGE_MARKER).write_text(json.dumps({"stage": 1, "files": {}}), encoding="utf-8")  # an older marker
    with pytest.raises(ConfigError, match=re.escape(f"{adapter / STAGE_MARKER}: no evaluation record")):
        adapter_eval(adapter)
    record = eval_record(load_recipe("cpu_smollm2_tiny"), "base") | {"prompt_format": "chatml"}
    (adapter / STAGE_MARKER).write_text(json.dumps({"eval": record}), encoding="utf-8")
    with pytest.raises(ConfigError, match="eval.prompt_format: unknown prompt format 'chatml'"):
        adapter_eval(adapter)
    comma = eval_record(load_recipe("cpu_smollm2_tiny"), "dir,trust_remote_code=True")
    (adapter / STAGE_MARKER).write_text(json.dumps({"eval": comma}), encoding="utf-8")
    with pytest.raises(ConfigError, match="pretrained: 'dir,trust_remote_code=True' contains ','"):
        adapter_eval(adapter).model_args()
