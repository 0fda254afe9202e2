"""Every local LLM config runs on vLLM with `--backend vllm`: the dry-run command carries only
arguments lm-eval's vLLM backend accepts, and keeps what decides the numbers."""

from __future__ import annotations

import ast
import importlib.util
import shlex
from pathlib import Path

import pytest

from taiyi_bench.baselines import llm_run
from taiyi_bench.baselines.llm_registry import list_configs
from taiyi_bench.harness.apps.cli import main
from taiyi_bench.harness.errors import ConfigError

# vLLM engine arguments that lm-eval passes through **kwargs to `vllm.LLM` and that our configs
# or defaults use (vLLM's EngineArgs names; vLLM is not installed on CPU machines, so they are
# listed here rather than read from it).
ENGINE_ARGS = {"gpu_memory_utilization", "enforce_eager", "swap_space", "kv_cache_dtype", "enable_prefix_caching"}
WRAPPER_ARGS = {"prompt_format", "eod_token"}  # taiyi_bench.harness.lmeval.models.TaiyiVLLM


def lm_eval_vllm_parameters() -> set[str]:
    """The named parameters of lm-eval's VLLM.__init__, read from its source (importing it needs vllm)."""
    spec = importlib.util.find_spec("lm_eval.models")
    assert spec is not None and spec.submodule_search_locations
    source = Path(next(iter(spec.submodule_search_locations))) / "vllm_causallms.py"
    tree = ast.parse(source.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == "VLLM":
            init = next(n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
            return {a.arg for a in init.args.args + init.args.kwonlyargs} - {"self"}
    raise AssertionError("lm-eval's VLLM class not found")


LOCAL_CONFIGS = [c for c in list_configs() if not c.is_api]


def test_lm_eval_vllm_signature_is_readable():
    params = lm_eval_vllm_parameters()
    assert {"pretrained", "dtype", "trust_remote_code", "lora_local_path", "think_end_token"} <= params


@pytest.mark.parametrize("config", LOCAL_CONFIGS, ids=lambda c: c.name)
def test_vllm_dry_run_of_every_local_config(config, capsys):
    accepted = lm_eval_vllm_parameters() | ENGINE_ARGS | WRAPPER_ARGS
    assert main(["baseline", "run", config.name, "--backend", "vllm", "--dry-run"]) == 0
    argv = shlex.split(capsys.readouterr().out.strip().splitlines()[-1])
    assert argv[argv.index("--model") + 1] == "taiyi-vllm"
    pairs = dict(item.split("=", 1) for item in argv[argv.index("--model_args") + 1].split(","))
    assert set(pairs) <= accepted, set(pairs) - accepted
    # What decides the numbers is kept: model, revision, remote code, dtype, format, chat template.
    assert pairs["pretrained"] in (config.model, str(Path(config.model))) or config.model.startswith("local:")
    assert pairs["prompt_format"] == config.prompt_format
    assert ("--apply_chat_template" in argv) == config.apply_chat_template
    assert ("trust_remote_code" in pairs) == config.trust_remote_code
    if "dtype" in config.model_args:
        assert pairs["dtype"] == str(config.model_args["dtype"])
    if config.revision:
        assert pairs["revision"] == config.revision
    # Each task's own budget, stop sequences and greedy decoding come from the task files.
    gen = argv[argv.index("--gen_kwargs") + 1] if "--gen_kwargs" in argv else ""
    assert "max_gen_toks" not in gen and "until" not in gen and "do_sample=True" not in gen
    assert "--device" not in argv and argv[argv.index("--batch_size") + 1] == "auto"


def test_hf_only_arguments_are_dropped_and_an_adapter_becomes_a_lora():
    base = next(c for c in LOCAL_CONFIGS if c.backend == "hf")
    import dataclasses

    config = dataclasses.replace(base, model_args={**base.model_args, "device_map": "auto", "peft": "/adapters/x"})
    converted, notes = llm_run.on_backend(config, "vllm")
    assert "device_map" not in converted.model_args and converted.model_args["lora_local_path"] == "/adapters/x"
    assert any("device_map" in note for note in notes) and any("lora_local_path" in note for note in notes)
    assert llm_run.on_backend(config, config.backend) == (config, [])


def test_api_configs_refuse_another_backend():
    api = next(c for c in list_configs() if c.is_api)
    with pytest.raises(ConfigError, match="API endpoint"):
        llm_run.on_backend(api, "vllm")
