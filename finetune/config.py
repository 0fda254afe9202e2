"""Recipes: a small YAML file on top of the defaults below, plus `--override key=value`.

Every key a recipe may set is in `DEFAULTS` (with a comment saying what it does); an unknown
key is an error, so a typo never silently leaves a default in place. The resolved config (the
defaults, the recipe and the overrides merged) is what the run saves as `resolved_config.yaml`.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from harness.errors import ConfigError

_SCIENTIFIC = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$")
RECIPES_DIR = Path(__file__).resolve().parent / "recipes"
PACKAGE_DIR = Path(__file__).resolve().parent

DEFAULTS: dict[str, Any] = {
    "name": "finetune",
    "output_dir": None,  # default: runs/<name>
    "seed": 42,
    "model": {
        "base": None,  # hub id or directory; "local:smollm2" = harness.local_models.smollm2_dir()
        "revision": None,
        "trust_remote_code": False,  # OFF unless a recipe explicitly needs it (Qwen-7B does)
        "precision": "auto",  # auto (bf16 on a bf16-capable GPU, else fp32) | bf16 | fp16 | fp32
        # auto: flash_attention_2 when flash-attn is installed, else with packing on a GPU
        # flex_attention (document block mask), else sdpa (CPU: dense 4-D mask for packed rows);
        # or name one: eager | sdpa | flex_attention | flash_attention_2. The choice is logged.
        "attn_implementation": "auto",
        # false | true (every layer) | k (every k-th layer) | auto: recompute activations only when
        # the estimate for a micro-batch exceeds the GPU's free memory, as few layers as fits (CPU: off)
        "gradient_checkpointing": False,
        "quantization": None,  # None | "4bit" (QLoRA; CUDA + bitsandbytes only)
        "bnb_4bit_quant_type": "nf4",
        "bnb_4bit_use_double_quant": True,
        "bnb_4bit_quant_storage": "bfloat16",  # lets FSDP / ZeRO-3 shard the 4-bit weights
    },
    "lora": {
        "r": 64,
        "alpha": 16,
        "dropout": 0.05,
        "target_modules": "all-linear",  # or a list of module names (Qwen-7B: c_attn, c_proj, w1, w2)
        "bias": "none",
        "modules_to_save": None,
    },
    "format": {
        "style": "chat_template",  # chat_template | eod (Taiyi: <eod>input<eod>answer<eod>, eod = eos)
        "eod_token": None,  # None = the tokenizer's eos
        "system": None,  # chat_template only; None = the template's default behaviour
        "max_length": 1024,
        "overlong": "truncate",  # truncate | drop (both counted and reported)
        "packing": False,
        "pack_open_bins": 8,
    },
    "data": {
        "seed": 42,
        "cap": 10000,  # per-dataset cap on instruction samples (Taiyi); null = no cap
        "tasks": {
            "names": "all",  # benchmark sets whose train split becomes instructions; "all", a list, or []
            "split": "train",
            "data_dir": None,  # None = $TAIYI_DATA_DIR, else the bundled samples (said loudly)
            "templates": "all",  # or how many of the paraphrased templates to draw from
            "decompose": True,  # multi-type NER / multi-predicate RE -> also single-type instructions
        },
        "files": [],  # Taiyi conversation-format JSONL: paths or {path, dataset?, category?}
        "datasets": {},  # per-dataset {cap, weight}
    },
    "training": {
        "per_device_batch_size": 12,
        "gradient_accumulation_steps": 2,
        "learning_rate": 2e-4,
        "lr_scheduler": "constant_with_warmup",  # any transformers.get_scheduler name
        "warmup_ratio": 0.1,
        "weight_decay": 0.0,
        "max_grad_norm": 0.3,
        "optimizer": "adamw",  # adamw | paged_adamw_32bit (bitsandbytes, CUDA)
        "adam_beta1": 0.9,
        "adam_beta2": 0.999,
        "adam_epsilon": 1e-8,
        "logging_steps": 1,
        "save_steps": 500,  # mid-stage checkpoints (resumable); 0 = only at the end of a stage
        "save_total_limit": 2,  # mid-stage checkpoints kept per stage
        "max_steps": None,  # per stage, overrides epochs (smoke tests)
        "progress": True,  # rich progress bars on the main process
        # CPU only: torch threads for this run (None = torch's default). 1 avoids the collapse
        # (tens of times slower) when other processes compete for the same cores.
        "num_threads": None,
    },
    "stages": {
        1: {"epochs": 5, "init_adapter": None},  # categories: finetune.data.STAGE_CATEGORIES
        2: {"epochs": 3, "init_adapter": "stage1"},  # "stage1" = this run's stage-1 adapter; a path; or None
    },
    "merge": False,  # also write <output_dir>/stage<N>/merged (base + adapter) after the last stage
    # Written by load_recipe (where the recipe came from, the --override list), so that a run's
    # resolved_config.yaml is itself a recipe: `taiyi finetune <out>/resolved_config.yaml`.
    "recipe_source": None,
    "overrides": [],
}


# Mappings whose keys are free (dataset names): any key may be added.
_FREE = {"data.datasets"}


def _merge(base: dict[str, Any], update: Mapping[str, Any], where: str) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in update.items():
        key = _stage_key(key) if where == "stages" else key
        full = f"{where}.{key}" if where else str(key)
        free = any(where == f or where.startswith(f + ".") for f in _FREE)
        if key not in base and not free:
            known = ", ".join(str(k) for k in base)
            raise ConfigError(f"unknown recipe key {full}; known here: {known}")
        current = base.get(key)
        if isinstance(current, dict) and isinstance(value, Mapping) and (current or full in _FREE or free):
            out[key] = _merge(current, value, full)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _stage_key(key: Any) -> Any:
    try:
        return int(str(key).removeprefix("stage"))
    except ValueError:
        return key


def parse_override(text: str) -> tuple[list[str], Any]:
    """`training.learning_rate=1e-4` -> (["training", "learning_rate"], 1e-4); the value is YAML."""
    if "=" not in text:
        raise ConfigError(f"--override expects key=value, got {text!r}")
    key, raw = text.split("=", 1)
    path = [part for part in key.strip().split(".") if part]
    if not path:
        raise ConfigError(f"--override {text!r} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"--override {text!r}: the value is not valid YAML ({exc})") from None
    # YAML 1.1 reads 2e-4 as a string (no dot): take it as the number the user meant.
    if isinstance(value, str) and _SCIENTIFIC.match(value.strip()):
        value = float(value)
    return path, value


def _override_to_mapping(path: Sequence[str], value: Any) -> dict[str, Any]:
    mapping: dict[str, Any] = {}
    cursor = mapping
    for part in path[:-1]:
        cursor = cursor.setdefault(part, {})
    cursor[path[-1]] = value
    return mapping


def resolve_recipe_path(recipe: str | Path) -> Path:
    """A path, or a bare name of a shipped recipe (`cpu_smollm2_tiny`)."""
    path = Path(recipe).expanduser()
    if path.is_file():
        return path
    for candidate in (RECIPES_DIR / f"{recipe}.yaml", RECIPES_DIR / str(recipe)):
        if candidate.is_file():
            return candidate
    shipped = ", ".join(sorted(p.stem for p in RECIPES_DIR.glob("*.yaml")))
    raise ConfigError(f"recipe {recipe!r} not found (neither a file nor a shipped recipe: {shipped})")


def _numbers(config: dict[str, Any]) -> None:
    # YAML 1.1 reads `2e-4` as a string; recipes and overrides mean a number.
    for section, key in (
        ("training", "learning_rate"),
        ("training", "adam_epsilon"),
        ("training", "weight_decay"),
    ):
        value = config[section][key]
        if isinstance(value, str):
            try:
                config[section][key] = float(value)
            except ValueError:
                raise ConfigError(f"{section}.{key} must be a number, not {value!r}") from None


def load_recipe(recipe: str | Path | Mapping[str, Any], overrides: Sequence[str] = ()) -> dict[str, Any]:
    """The resolved config: defaults <- recipe file (or mapping) <- overrides, validated."""
    if isinstance(recipe, Mapping):
        raw: Mapping[str, Any] = recipe
        source = "<mapping>"
    else:
        path = resolve_recipe_path(recipe)
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc})") from None
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{path}: a recipe is a YAML mapping")
        source = str(path)
    config = _merge(DEFAULTS, raw, "")
    for text in overrides:
        key_path, value = parse_override(text)
        if key_path[0] == "stages" and len(key_path) > 1:
            key_path[1] = _stage_key(key_path[1])
        config = _merge(config, _override_to_mapping(key_path, value), "")
    if config["recipe_source"] is None:
        config["recipe_source"] = source
    config["overrides"] = [*config["overrides"], *overrides]
    _numbers(config)
    validate(config)
    return config


def validate(config: Mapping[str, Any]) -> None:
    """Checks that need no GPU; device-dependent checks happen when the model is loaded."""
    model, fmt, training = config["model"], config["format"], config["training"]
    if not model["base"]:
        raise ConfigError("model.base is required (a hub id, a directory, or local:smollm2)")
    if model["precision"] not in ("auto", "bf16", "fp16", "fp32"):
        raise ConfigError(f"model.precision must be auto, bf16, fp16 or fp32, not {model['precision']!r}")
    if model["quantization"] not in (None, "4bit"):
        raise ConfigError(f"model.quantization must be null or 4bit, not {model['quantization']!r}")
    attn = model["attn_implementation"]
    if not (attn in (None, "auto", "eager", "sdpa", "flex_attention") or "flash" in str(attn)):
        raise ConfigError(
            "model.attn_implementation must be auto, eager, sdpa, flex_attention or a flash attention "
            f"implementation (flash_attention_2), not {attn!r}"
        )
    checkpointing = model["gradient_checkpointing"]
    if not (
        isinstance(checkpointing, bool)
        or checkpointing == "auto"
        or (isinstance(checkpointing, int) and checkpointing >= 1)
    ):
        raise ConfigError(
            "model.gradient_checkpointing must be true, false, auto or k >= 1 (every k-th layer), "
            f"not {checkpointing!r}"
        )
    if not isinstance(model["trust_remote_code"], bool):
        raise ConfigError("model.trust_remote_code must be true or false")
    if fmt["style"] not in ("chat_template", "eod"):
        raise ConfigError(f"format.style must be chat_template or eod, not {fmt['style']!r}")
    if fmt["overlong"] not in ("truncate", "drop"):
        raise ConfigError(f"format.overlong must be truncate or drop, not {fmt['overlong']!r}")
    if int(fmt["max_length"]) < 8:
        raise ConfigError("format.max_length must be at least 8")
    for key in ("per_device_batch_size", "gradient_accumulation_steps"):
        if int(training[key]) < 1:
            raise ConfigError(f"training.{key} must be >= 1")
    if training["optimizer"] not in ("adamw", "paged_adamw_32bit", "paged_adamw_8bit"):
        raise ConfigError("training.optimizer must be adamw, paged_adamw_32bit or paged_adamw_8bit")
    if not 0 <= float(training["warmup_ratio"]) < 1:
        raise ConfigError("training.warmup_ratio must be in [0, 1)")
    for name, options in (config["data"]["datasets"] or {}).items():
        if not isinstance(options, Mapping) or set(options) - {"cap", "weight"}:
            raise ConfigError(f"data.datasets.{name} takes only `cap` and `weight`, got {options!r}")
    for stage, stage_cfg in config["stages"].items():
        if stage not in (1, 2):
            raise ConfigError(f"stages: only 1 and 2 exist, not {stage!r}")
        if stage_cfg is None or float(stage_cfg.get("epochs", 0)) <= 0 and not training["max_steps"]:
            raise ConfigError(f"stages.{stage}.epochs must be > 0")


def to_yaml(config: Mapping[str, Any]) -> str:
    return yaml.safe_dump(_plain(config), sort_keys=False, allow_unicode=True)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value
