"""Turn a general-LLM baseline config into one lm-eval invocation, check it, run it.

The invocation is built as an argv list, printed shell-quoted and executed as printed, so the
printed line is a complete reproduction recipe. API keys never appear in it: lm-eval's chat
backends read $OPENAI_API_KEY, and when a config names another variable the child process gets
`OPENAI_API_KEY` copied from it, shown as `OPENAI_API_KEY="$THAT_VARIABLE"`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from taiyi_bench.baselines import preflight
from taiyi_bench.baselines.llm_registry import ADAPTER_ARGS, LLMBaseline
from taiyi_bench.harness.errors import ConfigError, DataNotFoundError
from taiyi_bench.harness.loading import missing_sets
from taiyi_bench.harness.prompt_formats import WRAPPER_BACKENDS
from taiyi_bench.harness.registry import REGISTRY, specs_for_selection

ALL_TASKS = "taiyi_*"
DEFAULT_OUTPUT_ROOT = Path("results") / "runs"
LM_EVAL_KEY_ENV = "OPENAI_API_KEY"  # what lm-eval's chat-completions backends read


@dataclass
class Invocation:
    """An lm-eval command line plus the environment additions it needs."""

    argv: list[str]
    output_path: Path
    env_from: dict[str, str] = field(default_factory=dict)  # child variable -> parent variable it copies
    price: dict[str, Any] | None = None  # the config's price table, applied to the run's token counts afterwards

    def shell(self) -> str:
        """The command as one copy-pasteable shell line (variable references, never values)."""
        prefix = " ".join(f'{child}="${parent}"' for child, parent in self.env_from.items())
        return (prefix + " " if prefix else "") + shlex.join(self.argv)

    def environment(self) -> dict[str, str]:
        return {**os.environ, **{child: os.environ.get(parent, "") for child, parent in self.env_from.items()}}


def task_names(tasks: list[str] | None) -> str:
    """lm-eval's --tasks value: all 13 (`taiyi_*`) by default; set keys gain their `taiyi_` prefix,
    task and group names (taiyibench_en) pass through."""
    if not tasks:
        return ALL_TASKS
    items = [t.strip() for chunk in tasks for t in chunk.split(",") if t.strip()]
    return ",".join(f"taiyi_{item}" if item in REGISTRY else item for item in items)


def _key_values(pairs: dict[str, Any]) -> str:
    # lm-eval parses key=value pairs with a literal-eval-like parser: str() writes booleans as True/False.
    return ",".join(f"{key}={value}" for key, value in pairs.items())


def model_args(config: LLMBaseline, model_location: str) -> dict[str, Any]:
    """The `--model_args` of a config, with the model already resolved (local:<name> -> directory)."""
    args: dict[str, Any]
    if config.is_api:
        endpoint = config.endpoint or {}
        args = {"model": model_location, "base_url": endpoint["base_url"]}
        args.update({key: endpoint[key] for key in ("num_concurrent", "max_retries", "timeout") if key in endpoint})
    else:
        args = {"pretrained": model_location}
        if config.revision:
            args["revision"] = config.revision
        if config.trust_remote_code:
            args["trust_remote_code"] = True
    args.update(config.model_args)
    if config.backend in WRAPPER_BACKENDS:  # the taiyi-* model types take and record the format
        args["prompt_format"] = config.prompt_format
    return args


# hf-backend model_args that vLLM has no use for (device placement, bitsandbytes, attention
# kernels): a config run on vLLM drops them and the dry run says so.
HF_ONLY_MODEL_ARGS = frozenset({
    "device_map", "parallelize", "max_memory_per_gpu", "max_cpu_memory", "offload_folder", "attn_implementation",
    "load_in_4bit", "load_in_8bit", "bnb_4bit_compute_dtype", "bnb_4bit_quant_type", "bnb_4bit_use_double_quant",
    "autogptq", "gptqmodel", "softmax_dtype", "mixed_precision_dtype", "convert_to_fast", "backend",
})
# What a vLLM run sets unless the config says otherwise (leaves room for activations and the sampler).
VLLM_DEFAULTS: dict[str, Any] = {"gpu_memory_utilization": 0.9}


def on_backend(config: LLMBaseline, backend: str | None) -> tuple[LLMBaseline, list[str]]:
    """`config` as it runs on another local backend (`--backend vllm`), and notes on what changed.

    Everything that decides the numbers stays: the model and revision, dtype, remote-code choice,
    prompt format and chat template; stop sequences, greedy decoding and each task's budget come
    from the task files on either backend. A PEFT adapter becomes vLLM's `lora_local_path`."""
    if backend is None or backend == config.backend:
        return config, []
    if config.is_api:
        raise ConfigError(f"{config.name} is served by an API endpoint ({config.backend}); --backend applies to local models only")
    if backend not in WRAPPER_BACKENDS:
        raise ConfigError(f"--backend must be one of {', '.join(WRAPPER_BACKENDS)}, not {backend!r}")
    notes: list[str] = []
    args: dict[str, Any] = {}
    for key, value in config.model_args.items():
        if backend == "vllm" and key == "peft":
            args["lora_local_path"] = value
            notes.append("peft -> lora_local_path (vLLM serves the adapter as a LoRA)")
        elif backend == "vllm" and key in HF_ONLY_MODEL_ARGS:
            notes.append(f"dropped {key}={value} (hf only)")
        elif backend == "hf" and key in VLLM_DEFAULTS | {"max_model_len": None, "tensor_parallel_size": None, "data_parallel_size": None}:
            notes.append(f"dropped {key}={value} (vLLM only)")
        else:
            args[key] = value
    if backend == "vllm":
        args = {**VLLM_DEFAULTS, **args}
    converted = dataclasses.replace(
        config, backend=backend, model_args=args, device=None if backend == "vllm" else config.device,
        batch_size="auto",
    )
    return converted, notes


def model_type(config: LLMBaseline) -> str:
    """lm-eval's --model: hf and vllm run as taiyi-hf / taiyi-vllm (the same backends plus
    `prompt_format`, see taiyi_bench.harness.lmeval.models); the chat-completions backends as they are."""
    return WRAPPER_BACKENDS.get(config.backend, config.backend)


def build_invocation(
    config: LLMBaseline,
    *,
    model_location: str | None = None,
    tasks: list[str] | None = None,
    limit: float | None = None,
    data_dir: str | os.PathLike | None = None,
    output_root: str | os.PathLike = DEFAULT_OUTPUT_ROOT,
    device: str | None = None,
    batch_size: int | str | None = None,
    gen_kwargs: dict[str, Any] | None = None,
    set_options: dict[str, Any] | None = None,
    extra_args: Sequence[str] = (),
) -> Invocation:
    """The exact lm-eval command for `config`. `model_location` defaults to `config.model`
    (pass the resolved one for local:<name> models).

    Each task keeps its own generation budget: a `max_gen_toks` in `gen_kwargs` (or the
    config's) caps every task and the tasks warn and record the cut. A reasoning model's
    `thinking_allowance` travels in `--metadata`, where each task adds it to its own budget;
    data_dir, thinking_allowance and `set_options` (the registry variant options choosing a
    set's form, `{option: value}`) share that one JSON object. `extra_args` (more lm-eval
    options) are appended verbatim; one that sets an option the command already has is a ConfigError."""
    output_path = Path(output_root) / config.name
    argv = [
        "lm_eval", "run",
        "--model", model_type(config),
        "--model_args", _key_values(model_args(config, model_location or config.model)),
        "--tasks", task_names(tasks),
        "--batch_size", str(batch_size if batch_size is not None else config.batch_size),
        "--output_path", str(output_path),
        "--log_samples",
    ]
    if config.apply_chat_template:
        argv.append("--apply_chat_template")
    if config.system_instruction:
        argv += ["--system_instruction", config.system_instruction]
    merged_gen = {**config.gen_kwargs, **(gen_kwargs or {})}
    if merged_gen:
        argv += ["--gen_kwargs", _key_values(merged_gen)]
    chosen_device = device or config.device
    if chosen_device and not config.is_api:
        argv += ["--device", chosen_device]
    if limit is not None:
        argv += ["--limit", str(int(limit) if float(limit).is_integer() and limit >= 1 else limit)]
    metadata: dict[str, Any] = {}
    if data_dir is not None:
        metadata["data_dir"] = str(Path(data_dir).expanduser().resolve())
    if config.thinking_allowance:
        metadata["thinking_allowance"] = config.thinking_allowance
    metadata.update(set_options or {})
    if metadata:
        argv += ["--metadata", json.dumps(metadata)]
    for token in extra_args:
        _refuse_clash(token, argv)
        argv.append(token)
    key_env = (config.endpoint or {})["api_key_env"] if config.is_api else LM_EVAL_KEY_ENV
    env_from = {LM_EVAL_KEY_ENV: key_env} if key_env != LM_EVAL_KEY_ENV else {}
    return Invocation(argv=argv, output_path=output_path, env_from=env_from, price=config.price)


# lm-eval's short forms of options (`lm_eval run --help`) a built command may already set.
_SHORT_FORMS = {"-t": "--tasks", "-M": "--model", "-a": "--model_args", "-L": "--limit", "-o": "--output_path",
                "-s": "--log_samples", "-b": "--batch_size", "-f": "--num_fewshot", "-c": "--use_cache"}


def _refuse_clash(token: str, argv: list[str]) -> None:
    """An added lm-eval argument must not set an option `argv` has (lm-eval would keep the last
    one silently): `--limit`, `-L 5`, `--limit=5` or argparse's abbreviation `--lim`."""
    if not token.startswith("-") or token[1:2].isdigit():  # a value (a negative number included)
        return
    name = token.split("=", 1)[0] if token.startswith("--") else _SHORT_FORMS.get(token[:2], token)
    clash = next((option for option in argv if option.startswith("--") and option.startswith(name)), None)
    if clash:
        raise ConfigError(
            f"the lm-eval argument {token} would override {clash}, which `taiyi baseline run` already sets: use its own option "
            "(--tasks, --limit, --num-fewshot, --data-dir, --batch-size, ...) instead"
        )


def check_local_files(config: LLMBaseline) -> None:
    """The folders a local config names exist and hold a model or an adapter (no network; a
    `local:` model is only looked up by name, not built)."""
    builtin = config.model.startswith(preflight.LOCAL_PREFIX) and config.model[len(preflight.LOCAL_PREFIX):] in preflight.LOCAL_MODELS
    if not config.is_api and not builtin:
        source = preflight.resolve_model(config.model)
        if source.kind == "path":
            preflight.check_model_available(source)
    for key in ADAPTER_ARGS:  # lm-eval loads these folders on top of the model
        if isinstance(config.model_args.get(key), str):
            preflight.check_adapter_reference(f"model_args.{key} in {config.path}", config.model_args[key])


def run_preflight(config: LLMBaseline, *, data_dir: str | os.PathLike | None = None, timeout: float = preflight.DEFAULT_TIMEOUT_S) -> str:
    """Every check that can fail before lm-eval starts; returns the resolved model location."""
    if data_dir is not None and not Path(data_dir).expanduser().is_dir():
        raise preflight.PreflightError(f"data directory {data_dir} does not exist")
    if config.is_api:
        # The config's own problems first (key, endpoint), then what this machine lacks.
        endpoint = config.endpoint or {}
        preflight.check_api_key(endpoint["api_key_env"], config.name)
        preflight.check_endpoint(endpoint["base_url"], timeout=timeout)
        # The key, the URL and the model name, with the request lm-eval will send.
        preflight.check_chat_endpoint(
            endpoint["base_url"], config.model, endpoint["api_key_env"], timeout=timeout, config_name=config.name
        )
        preflight.check_backend(config.backend)
        return config.model
    preflight.check_backend(config.backend)
    check_local_files(config)
    source = preflight.resolve_model(config.model)
    preflight.check_model_available(source, revision=config.revision, timeout=timeout)
    return source.location


def _lm_eval_executable() -> list[str]:
    # The console script next to this interpreter, so a venv's lm-eval runs, not another one.
    beside = Path(sys.executable).with_name("lm_eval")
    if beside.is_file():
        return [str(beside)]
    found = shutil.which("lm_eval")
    return [found] if found else [sys.executable, "-m", "lm_eval"]


def execute(invocation: Invocation) -> int:
    """Run lm-eval (output streams through) and return its exit status."""
    if not invocation.argv or invocation.argv[0] != "lm_eval":
        raise ConfigError("not an lm_eval invocation")
    argv = _lm_eval_executable() + invocation.argv[1:]
    return subprocess.call(argv, env=invocation.environment())


def select_available_tasks(
    tasks: list[str] | None, data_dir: str | os.PathLike | None, *, skip_missing: bool = False
) -> tuple[list[str] | None, dict[str, str]]:
    """Check every requested set's evaluation files before a model loads.

    Returns the task selection to run (unchanged when nothing is missing) and the skipped sets
    (task name -> reason). A missing set is a `DataNotFoundError` that lists every missing set and
    where to get it, unless `skip_missing`, which drops them from the run instead.
    """
    specs = specs_for_selection(tasks)
    missing = missing_sets(specs, data_dir)
    if not missing:
        return tasks, {}
    if not skip_missing:
        listing = "\n  ".join(f"{m.spec.task_name}: {m.reason}" for m in missing)
        raise DataNotFoundError(
            f"{len(missing)} of the {len(specs)} requested sets are missing from the data directory "
            f"(nothing was run; --skip-missing runs the others):\n  {listing}"
        )
    skipped = {m.spec.task_name: m.reason for m in missing}
    remaining = [spec.task_name for spec in specs if spec.task_name not in skipped]
    if not remaining:
        raise DataNotFoundError("every requested set is missing from the data directory:\n  " + "\n  ".join(skipped.values()))
    print(f"# skipping {len(skipped)} missing set(s): {', '.join(skipped)}", file=sys.stderr)
    return remaining, skipped
