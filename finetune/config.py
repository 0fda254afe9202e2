"""Recipes: a small YAML file on top of the defaults below, plus `--override key=value`.

`SCHEMA` is the one place that lists every key a recipe may set: its default, the values it
takes (type and range) and what it does. `load_recipe` merges defaults <- recipe <- overrides
(an unknown key is refused with the keys known there, so a typo never silently leaves a default
in place) and `validate` checks the result against the schema before any work starts, so
`taiyi finetune --dry-run` refuses exactly what the real run refuses; `taiyi_bench.finetune.train.train`
validates again, for a config built in code. Each refusal is one `ConfigError` line naming the
key path and what was expected, e.g. `training.max_steps must be a whole number >= 1, or null
(train for stages.N.epochs), not -1`. Numbers are read as YAML 1.1 writes them (`1e3` is a
whole number, the string `2e-4` a number); `.nan` and `.inf` are refused.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from taiyi_bench.harness.errors import ConfigError

_SCIENTIFIC = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
RECIPES_DIR = Path(__file__).resolve().parent / "recipes"
PACKAGE_DIR = Path(__file__).resolve().parent


# --------------------------------------------------------------------------- kinds of values


class _Refused(Exception):
    """Raised by a kind's `parse`; `detail` (with `{key}`) replaces the generic message."""

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail


def _shown(value: Any) -> str:
    """A value as the user wrote it in YAML (null, true), not as Python prints it (None, True)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value)


@dataclass(frozen=True)
class Kind:
    """The values one setting takes. `expected` says them in words (the error message's
    "must be ..."); `parse` returns the value to keep (normalised) or raises `_Refused` (never
    called with None); `null` is what null means where null is allowed (None: refused)."""

    expected: str
    parse: Callable[[Any], Any]
    null: str | None = None

    def check(self, value: Any, key: str) -> Any:
        if value is None and self.null is not None:
            return None
        try:
            if value is None:
                raise _Refused()
            return self.parse(value)
        except _Refused as refused:
            if refused.detail:
                raise ConfigError(refused.detail.replace("{key}", key)) from None
            expected = self.expected if self.null is None else f"{self.expected}, or null ({self.null})"
            raise ConfigError(f"{key} must be {expected}, not {_shown(value)}") from None


def _accept(ok: bool, value: Any) -> Any:
    if not ok:
        raise _Refused()
    return value


def _as_number(value: Any) -> float | int:
    """An int or float as YAML gave it; a YAML 1.1 number-looking string (`2e-4`) as a float."""
    if isinstance(value, bool):
        raise _Refused()
    if isinstance(value, (int, float)):
        number = value
    elif isinstance(value, str) and _NUMBER.match(value.strip()):
        number = float(value)
    else:
        raise _Refused()
    return _accept(not isinstance(number, float) or math.isfinite(number), number)


def Integer(minimum: int | None = None, *, null: str | None = None) -> Kind:
    """A whole number >= `minimum` (an integral float such as 1e3 is read as that integer)."""

    def parse(value: Any) -> int:
        number = _as_number(value)
        if isinstance(number, float):
            number = int(_accept(number.is_integer(), number))
        return _accept(minimum is None or number >= minimum, number)

    return Kind("a whole number" + (f" >= {minimum}" if minimum is not None else ""), parse, null)


def Number(*, gt: float | None = None, ge: float | None = None, lt: float | None = None, null: str | None = None) -> Kind:
    """A finite number within the bounds given (gt/ge: lower, exclusive/inclusive; lt: upper)."""

    def parse(value: Any) -> float | int:
        number = _as_number(value)
        inside = (gt is None or number > gt) and (ge is None or number >= ge) and (lt is None or number < lt)
        return _accept(inside, number)

    parts = [f"{op} {bound:g}" for op, bound in ((">", gt), (">=", ge), ("<", lt)) if bound is not None]
    return Kind("a number" + (" " + " and ".join(parts) if parts else ""), parse, null)


def Boolean() -> Kind:
    return Kind("true or false", lambda value: _accept(isinstance(value, bool), value))


def Choice(*options: str, null: str | None = None) -> Kind:
    """One of a fixed list of words."""
    words = ", ".join(options[:-1]) + f" or {options[-1]}" if len(options) > 1 else options[0]
    return Kind(f"one of {words}" if len(options) > 2 else words, lambda value: _accept(value in options, value), null)


def Text(expected: str = "a non-empty text", *, null: str | None = None) -> Kind:
    return Kind(expected, lambda value: _accept(isinstance(value, str) and bool(value.strip()), value), null)


def TextList(expected: str, *, empty: bool = True, null: str | None = None) -> Kind:
    """A list of non-empty strings (`empty`: whether [] is allowed)."""

    def parse(value: Any) -> list[str]:
        ok = isinstance(value, list) and (bool(value) or empty)
        return list(_accept(ok and all(isinstance(item, str) and item.strip() for item in value), value))

    return Kind(expected, parse, null)


def AnyOf(expected: str, *kinds: Kind, null: str | None = None) -> Kind:
    """The first of `kinds` that takes the value (in order: an int is tried before a float)."""

    def parse(value: Any) -> Any:
        for kind in kinds:
            try:
                return kind.parse(value)
            except _Refused:
                continue
        raise _Refused()

    return Kind(expected, parse, null)


# --------------------------------------------------------------------------- the schema


@dataclass(frozen=True)
class Setting:
    """One key: its default, the values it takes, what it does."""

    default: Any
    kind: Kind
    doc: str = ""


@dataclass(frozen=True)
class Section:
    """A mapping with fixed keys. `partial`: keys may be left out (no defaults filled in);
    `key`: how a written key is read (stages: `stage1`, "1" -> 1)."""

    fields: Mapping[Any, Setting | Section | FreeMap]
    doc: str = ""
    partial: bool = False
    key: Callable[[Any], Any] = field(default=lambda key: key)

    def defaults(self) -> dict[Any, Any]:
        if self.partial:
            return {}
        return {
            name: (node.defaults() if isinstance(node, (Section, FreeMap)) else copy.deepcopy(node.default))
            for name, node in self.fields.items()
        }

    def known(self) -> str:
        return ", ".join(str(k) for k in self.fields)


@dataclass(frozen=True)
class FreeMap:
    """A mapping whose keys are free (dataset names), each value a `Section`."""

    entry: Section
    doc: str = ""

    def defaults(self) -> dict[Any, Any]:
        return {}


def _stage_key(key: Any) -> Any:
    """`1`, `"1"` and `stage1` all name stage 1 (recipes and `--override stages.stage1.epochs=2`)."""
    try:
        return int(str(key).removeprefix("stage"))
    except ValueError:
        return key


def _attn_implementation(value: Any) -> str:
    if isinstance(value, str) and (value in ("auto", "eager", "sdpa", "flex_attention") or "flash" in value):
        return value
    raise _Refused()


# transformers.SchedulerType's names; a name not listed here is asked of transformers itself
# (a newer version may add one) only then, as importing it costs seconds.
_SCHEDULERS = (
    "linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup",
    "inverse_sqrt", "reduce_lr_on_plateau", "cosine_with_min_lr", "warmup_stable_decay",
)


def _scheduler(value: Any) -> str:
    if not isinstance(value, str):
        raise _Refused()
    if value in _SCHEDULERS:
        return value
    from transformers.trainer_utils import SchedulerType

    known = [kind.value for kind in SchedulerType]
    if value not in known:
        raise _Refused(f"{{key}} must be a transformers scheduler name ({', '.join(known)}), not {value!r}")
    return value


TRACKERS = ("tensorboard", "wandb")  # training.report_to: the package each needs has the same name


def _report_to(value: Any) -> Any:
    """none, a tracker or a list of trackers; each must be installed, said now rather than after
    the model has loaded."""
    import importlib.util

    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(name in ("none", *TRACKERS) for name in names):
        raise _Refused()
    for name in set(names) - {"none"}:
        if importlib.util.find_spec(name) is None:
            raise _Refused(f"{{key}}: {name} is not installed (pip install {name}), or set {{key}}=none")
    return value


def _task_names(value: Any) -> Any:
    """"all", "none", one set, or a list of sets (keys or taiyi_* task names): each must exist,
    said now rather than after the model has loaded."""
    from taiyi_bench.finetune.data import resolve_task_names

    if value == "none" or value == "all":
        return value
    if isinstance(value, str):
        names = [value]
    elif isinstance(value, list) and all(isinstance(item, str) for item in value):
        names = value
    else:
        raise _Refused()
    try:
        resolve_task_names(names)
    except ConfigError as exc:
        raise _Refused(str(exc)) from None
    return value


def _files(value: Any) -> list[Any]:
    """Conversation files: paths, or {path, dataset?, category?} (category: a known one)."""
    from taiyi_bench.finetune.data import CATEGORIES, normalize_category

    if not isinstance(value, list):
        raise _Refused()
    for index, entry in enumerate(value):
        where = f"{{key}}[{index}]"
        if isinstance(entry, str) and entry.strip():
            continue
        if not isinstance(entry, Mapping):
            raise _Refused(f"{where} must be a path or a mapping {{path, dataset, category}}, not {_shown(entry)}")
        unknown = sorted(str(k) for k in set(entry) - {"path", "dataset", "category"})
        if unknown:
            raise _Refused(f"{where}: unknown key {', '.join(unknown)}; known here: path, dataset, category")
        for name in ("path", "dataset", "category"):
            item = entry.get(name)
            if (name == "path" or item is not None) and not (isinstance(item, str) and item.strip()):
                raise _Refused(f"{where}.{name} must be a non-empty text, not {_shown(item)}")
        category = entry.get("category")
        if category is not None and normalize_category(category) is None:
            raise _Refused(f"{where}.category {category!r} is unknown; known: {', '.join(CATEGORIES)}")
    return [dict(entry) if isinstance(entry, Mapping) else entry for entry in value]


SCHEMA = Section({
    "name": Setting("finetune", Text("a non-empty name"), "names the run: runs/<name> unless output_dir is set"),
    "output_dir": Setting(None, Text("a folder", null="runs/<name>")),
    "seed": Setting(42, Integer(0), "model initialisation, dropout and batch order"),
    "model": Section({
        "base": Setting(
            None, Text("a hub id, a directory or local:smollm2 (required)"),
            'hub id or directory; "local:smollm2" = taiyi_bench.harness.local_models.smollm2_dir()',
        ),
        "revision": Setting(None, Text("a revision (branch, tag or commit)", null="the default branch")),
        "trust_remote_code": Setting(False, Boolean(), "OFF unless a recipe explicitly needs it (Qwen-7B does)"),
        "precision": Setting("auto", Choice("auto", "bf16", "fp16", "fp32"), "auto: bf16 on a bf16-capable GPU, else fp32"),
        "attn_implementation": Setting(
            "auto",
            Kind("auto, eager, sdpa, flex_attention or a flash attention implementation (flash_attention_2)",
                 _attn_implementation, null="auto"),
            "auto: flash_attention_2 when flash-attn is installed, else with packing on a GPU flex_attention "
            "(document block mask), else sdpa (CPU: dense 4-D mask for packed rows); or name one. Logged.",
        ),
        "gradient_checkpointing": Setting(
            False, AnyOf("true, false, auto or k >= 1 (every k-th layer)", Boolean(), Choice("auto"), Integer(1)),
            "true: every layer; k: every k-th layer; auto: recompute activations only when the estimate for a "
            "micro-batch exceeds the GPU's free memory, as few layers as fits (CPU: off)",
        ),
        "quantization": Setting(None, Choice("4bit", null="no quantization"), "4bit: QLoRA (CUDA + bitsandbytes)"),
        "bnb_4bit_quant_type": Setting("nf4", Choice("nf4", "fp4")),
        "bnb_4bit_use_double_quant": Setting(True, Boolean()),
        "bnb_4bit_quant_storage": Setting(
            "bfloat16", Choice("bfloat16", "float16", "float32", "uint8"), "bfloat16 lets FSDP / ZeRO-3 shard the 4-bit weights"
        ),
    }),
    "lora": Section({
        "r": Setting(64, Integer(1), "adapter rank"),
        "alpha": Setting(16, Integer(1), "scaling: alpha / r"),
        "dropout": Setting(0.05, Number(ge=0, lt=1)),
        "target_modules": Setting(
            "all-linear",
            AnyOf("all-linear, a module name or a non-empty list of module names", Text(), TextList("", empty=False)),
            "or a list of module names (Qwen-7B: c_attn, c_proj, w1, w2)",
        ),
        "bias": Setting("none", Choice("none", "all", "lora_only")),
        "modules_to_save": Setting(None, TextList("a list of module names", null="none")),
    }),
    "format": Section({
        "style": Setting("chat_template", Choice("chat_template", "eod"), "eod: Taiyi's <eod>input<eod>answer<eod>, eod = eos"),
        "eod_token": Setting(None, Text("a token", null="the tokenizer's eos")),
        "system": Setting(None, Text("a system prompt", null="the template's default"), "chat_template only"),
        "max_length": Setting(1024, Integer(8), "tokens per sample (and per packed row)"),
        "overlong": Setting("truncate", Choice("truncate", "drop"), "both counted and reported"),
        "packing": Setting(False, Boolean()),
        "pack_open_bins": Setting(8, Integer(1)),
    }),
    "data": Section({
        "seed": Setting(42, Integer(0), "template draws and sampling"),
        "cap": Setting(10000, Integer(1, null="no cap"), "per-dataset cap on instruction samples (Taiyi)"),
        "tasks": Section({
            "names": Setting(
                "all", Kind("all, none, a set name or a list of set names", _task_names, null="none"),
                "benchmark sets whose train split becomes instructions",
            ),
            "split": Setting("train", Text("a split name (train, dev, ...)")),
            "data_dir": Setting(None, Text("a folder", null="$TAIYI_DATA_DIR, else the bundled samples (said loudly)")),
            "templates": Setting(
                "all", AnyOf("all or a whole number >= 1", Choice("all"), Integer(1)),
                "how many of the paraphrased templates to draw from",
            ),
            "decompose": Setting(True, Boolean(), "multi-type NER / multi-predicate RE -> also single-type instructions"),
        }),
        "files": Setting(
            [], Kind("a list of conversation files", _files, null="none"),
            "Taiyi conversation-format JSONL: paths or {path, dataset?, category?}",
        ),
        "datasets": FreeMap(
            Section({
                "cap": Setting(None, Integer(1, null="no cap for this dataset")),
                "weight": Setting(1.0, Number(ge=0), "0.5 keeps half, 2 repeats each sample twice"),
            }, partial=True),
            "per-dataset {cap, weight}; a dataset left out gets data.cap and weight 1",
        ),
    }),
    "training": Section({
        "per_device_batch_size": Setting(12, Integer(1)),
        "gradient_accumulation_steps": Setting(2, Integer(1)),
        "learning_rate": Setting(2e-4, Number(gt=0)),
        "lr_scheduler": Setting(
            "constant_with_warmup", Kind("a transformers scheduler name", _scheduler), "any transformers.get_scheduler name"
        ),
        "warmup_ratio": Setting(0.1, Number(ge=0, lt=1)),
        "weight_decay": Setting(0.0, Number(ge=0)),
        "max_grad_norm": Setting(0.3, Number(gt=0)),
        "optimizer": Setting("adamw", Choice("adamw", "paged_adamw_32bit", "paged_adamw_8bit"), "paged_*: bitsandbytes, CUDA"),
        "adam_beta1": Setting(0.9, Number(ge=0, lt=1)),
        "adam_beta2": Setting(0.999, Number(ge=0, lt=1)),
        "adam_epsilon": Setting(1e-8, Number(gt=0)),
        "logging_steps": Setting(1, Integer(1)),
        "report_to": Setting(
            "none", Kind("none, tensorboard, wandb or a list of them", _report_to),
            "also send each logged step's scalars to TensorBoard (<out>/tensorboard) and/or Weights & Biases",
        ),
        "save_steps": Setting(500, Integer(0), "mid-stage checkpoints (resumable); 0 = only at the end of a stage"),
        "save_total_limit": Setting(2, Integer(0), "mid-stage checkpoints kept per stage; 0 = all"),
        "max_steps": Setting(
            None, Integer(1, null="train for stages.N.epochs"), "optimizer steps per stage, instead of epochs (smoke tests)"
        ),
        "progress": Setting(True, Boolean(), "rich progress bars on the main process"),
        "num_threads": Setting(
            None, Integer(1, null="torch's default"),
            "CPU only: torch threads for this run. 1 avoids the collapse (tens of times slower) when other "
            "processes compete for the same cores.",
        ),
    }),
    "stages": Section(
        {
            stage: Section({
                "epochs": Setting(epochs, Number(ge=0), "> 0 unless training.max_steps is set"),
                "init_adapter": Setting(
                    init, Text("stage1 or an adapter folder", null="a fresh adapter"),
                    '"stage1" = this run\'s stage-1 adapter; a path; or null',
                ),
            })
            for stage, epochs, init in ((1, 5, None), (2, 3, "stage1"))
        },
        "categories per stage: taiyi_bench.finetune.data.STAGE_CATEGORIES",
        key=_stage_key,
    ),
    "merge": Setting(False, Boolean(), "also write <output_dir>/stage<N>/merged (base + adapter) after the last stage"),
    # Written by load_recipe (where the recipe came from, the --override list), so that a
    # run's resolved_config.yaml is itself a recipe: `taiyi finetune <out>/resolved_config.yaml`.
    "recipe_source": Setting(None, Text("a path", null="not recorded")),
    "overrides": Setting([], TextList("a list of key=value texts")),
})  # fmt: skip

# Every key with its default (derived from SCHEMA, so the two cannot disagree).
DEFAULTS: dict[str, Any] = SCHEMA.defaults()


# --------------------------------------------------------------------------- merging


def _join(where: str, key: Any) -> str:
    return f"{where}.{key}" if where else str(key)


def _not_a_mapping(node: Section | FreeMap, where: str, value: Any) -> ConfigError:
    if not where:
        return ConfigError(f"a recipe is a YAML mapping of settings, not {_shown(value)}")
    if isinstance(node, FreeMap):
        return ConfigError(f"{where} must be a mapping of names to {{{node.entry.known()}}}, not {_shown(value)}")
    return ConfigError(f"{where} must be a mapping with keys {node.known()}, not {_shown(value)}")


def _merge(node: Section | FreeMap, base: Mapping[Any, Any], update: Any, where: str) -> dict[Any, Any]:
    """`update` laid over `base`, key by key: sections merge, a leaf value replaces. Only the
    structure is checked here (unknown keys, a section given as a non-mapping); values are
    checked by `validate` once everything is merged (an override may fix a recipe's value)."""
    if not isinstance(update, Mapping):
        raise _not_a_mapping(node, where, update)
    out = copy.deepcopy(dict(base))
    for raw_key, value in update.items():
        if isinstance(node, FreeMap):
            key, child = str(raw_key), node.entry
        else:
            key = node.key(raw_key)
            if key not in node.fields:
                raise ConfigError(f"unknown recipe key {_join(where, raw_key)}; known here: {node.known()}")
            child = node.fields[key]
        full = _join(where, key)
        if isinstance(child, (Section, FreeMap)):
            current = out.get(key)
            out[key] = _merge(child, current if isinstance(current, Mapping) else {}, value, full)
        else:
            out[key] = copy.deepcopy(value)
    return out


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


def _read_recipe(path: Path) -> Mapping[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}, line {line}: expected UTF-8 text; found byte 0x{exc.object[exc.start]:02x}") from None
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from None
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path}: a recipe is a YAML mapping of settings, not {_shown(raw)}")
    return raw


def load_recipe(recipe: str | Path | Mapping[str, Any], overrides: Sequence[str] = ()) -> dict[str, Any]:
    """The resolved config: defaults <- recipe file (or mapping) <- overrides, validated."""
    if isinstance(recipe, Mapping):
        raw: Mapping[str, Any] = recipe
        source = "<mapping>"
    else:
        path = resolve_recipe_path(recipe)
        raw = _read_recipe(path)
        source = str(path)
    config = _merge(SCHEMA, DEFAULTS, raw, "")
    for text in overrides:
        key_path, value = parse_override(text)
        for part in reversed(key_path):
            value = {part: value}
        config = _merge(SCHEMA, config, value, "")
    if config["recipe_source"] is None:
        config["recipe_source"] = source
    config["overrides"] = [*(config["overrides"] or []), *overrides]
    return validate(config)


# --------------------------------------------------------------------------- validation


def _checked(node: Section | FreeMap | Setting, value: Any, where: str) -> Any:
    """`value` checked against `node`, normalised (an integral 1e3 becomes 1000)."""
    if isinstance(node, Setting):
        return node.kind.check(value, where)
    if not isinstance(value, Mapping):
        raise _not_a_mapping(node, where, value)
    if isinstance(node, FreeMap):
        return {str(name): _checked(node.entry, entry, _join(where, name)) for name, entry in value.items()}
    out: dict[Any, Any] = {}
    for raw_key, item in value.items():
        key = node.key(raw_key)
        if key not in node.fields:
            raise ConfigError(f"unknown recipe key {_join(where, raw_key)}; known here: {node.known()}")
        out[key] = _checked(node.fields[key], item, _join(where, key))
    missing = [str(key) for key in node.fields if key not in out]
    if missing and not node.partial:
        # Only a config built in code lacks keys: load_recipe starts from every default.
        raise ConfigError(f"{_join(where, missing[0])} is missing (taiyi_bench.finetune.config.load_recipe fills in every default)")
    return out


def validate(config: Mapping[str, Any]) -> dict[str, Any]:
    """Every key's type and range (`SCHEMA`), then the checks that relate keys; the config to use
    (values normalised). Needs no GPU; device-dependent checks happen when the model loads."""
    from taiyi_bench.finetune.data import resolve_task_names
    from taiyi_bench.harness.registry import get_spec

    checked = _checked(SCHEMA, config, "")
    training, tasks = checked["training"], checked["data"]["tasks"]
    for stage, stage_cfg in checked["stages"].items():
        if training["max_steps"] is None and stage_cfg["epochs"] <= 0:
            raise ConfigError(
                f"stages.{stage}.epochs must be > 0 (training.max_steps is null, so epochs set the length), "
                f"not {_shown(stage_cfg['epochs'])}"
            )
    if checked["stages"][1]["init_adapter"] == "stage1":
        raise ConfigError("stages.1.init_adapter cannot be stage1 (stage 1 cannot start from itself); null or a folder")
    for name in resolve_task_names(tasks["names"]):  # said now, not after the model loaded
        spec = get_spec(name)
        if tasks["split"] not in spec.files:
            raise ConfigError(
                f"data.tasks.split must be a split of every set in data.tasks.names; {spec.display_name} "
                f"has no split {tasks['split']!r} (its splits: {', '.join(spec.files)})"
            )
    return checked


def to_yaml(config: Mapping[str, Any]) -> str:
    """A validated config as YAML (its values are plain: str, numbers, lists, dicts)."""
    return yaml.safe_dump(dict(config), sort_keys=False, allow_unicode=True)
