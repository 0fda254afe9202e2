"""The registry of general-LLM baselines: one YAML file per model in `baselines/llm/`.

Each file validates against `baselines/llm/schema.json` (JSON Schema 2020-12). Extra folders of
configs can be added with $TAIYI_BASELINES_DIR (os.pathsep-separated); a config there with the
same name as a shipped one replaces it. `taiyi baseline new NAME` writes a starting file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from harness.errors import ConfigError

REGISTRY_DIR = Path(__file__).resolve().parent / "llm"
SCHEMA_PATH = REGISTRY_DIR / "schema.json"
EXTRA_DIRS_ENV = "TAIYI_BASELINES_DIR"
CHAT_BACKENDS = frozenset({"local-chat-completions", "openai-chat-completions"})


@dataclass(frozen=True)
class LLMBaseline:
    """One validated config (see schema.json for the meaning of each field)."""

    name: str
    display_name: str
    backend: str
    model: str
    prompt_format: str  # harness.prompt_formats.PROMPT_FORMATS
    batch_size: int | str
    gen_kwargs: dict[str, Any]
    path: Path
    description: str = ""
    in_paper: bool = False
    revision: str | None = None
    trust_remote_code: bool = False
    model_args: dict[str, Any] = field(default_factory=dict)
    system_instruction: str | None = None
    device: str | None = None
    endpoint: dict[str, Any] | None = None
    requires: tuple[str, ...] = ()
    notes: str = ""
    thinking_allowance: int = 0  # tokens added to every task's own budget (reasoning models)

    @property
    def is_api(self) -> bool:
        return self.backend in CHAT_BACKENDS

    @property
    def apply_chat_template(self) -> bool:
        """Whether lm-eval applies the model's chat template (--apply_chat_template)."""
        return self.prompt_format == "chat_template"


@lru_cache(maxsize=1)
def load_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def validation_errors(data: Any) -> list[str]:
    """Every schema violation of a parsed config, as `field: message` lines (empty when valid)."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(load_schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    lines = []
    for error in errors:
        where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        if error.validator == "anyOf" and not error.absolute_path:  # the one top-level anyOf
            lines.append(
                "prompt_format: required, one of chat_template, plain, eod, taiyi1 "
                "(older configs: apply_chat_template true/false)"
            )
            continue
        lines.append(f"{where}: {error.message}")
    return lines


def _prompt_format(data: dict[str, Any]) -> tuple[str | None, str | None]:
    """(format, problem): `prompt_format`, else the older `apply_chat_template` read as one."""
    from harness.prompt_formats import default_format

    chosen = data.get("prompt_format")
    legacy = data.get("apply_chat_template")
    if chosen is None:
        return default_format(bool(legacy)), None
    if legacy is not None and bool(legacy) != (chosen == "chat_template"):
        return None, (
            f"apply_chat_template: {str(legacy).lower()} contradicts prompt_format: {chosen} "
            "(only chat_template applies the chat template); keep prompt_format and drop apply_chat_template"
        )
    return chosen, None


def load_config(path: str | os.PathLike) -> LLMBaseline:
    """Parse and validate one YAML file; ConfigError lists every problem with the file's path."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read baseline config: {exc}") from exc
    problems = validation_errors(data)
    if not problems and data["name"] != path.stem:
        problems.append(f"name: {data['name']!r} must equal the file name {path.stem!r}")
    prompt_format, format_problem = _prompt_format(data) if not problems else (None, None)
    if format_problem:
        problems.append(format_problem)
    if not problems:
        for key, value in {**data.get("model_args", {}), **data.get("gen_kwargs", {})}.items():
            if isinstance(value, str) and ("," in value or "=" in value):
                # lm-eval splits key=value,key=value on commas: such a value cannot be passed.
                problems.append(f"{key}: value {value!r} contains ',' or '=', which lm-eval's key=value syntax cannot carry")
    if problems:
        raise ConfigError(f"{path}: invalid baseline config:\n  " + "\n  ".join(problems))
    return LLMBaseline(
        name=data["name"],
        display_name=data["display_name"],
        backend=data["backend"],
        model=data["model"],
        prompt_format=prompt_format,
        batch_size=data["batch_size"],
        gen_kwargs=dict(data["gen_kwargs"]),
        path=path,
        description=data.get("description", ""),
        in_paper=bool(data.get("in_paper", False)),
        revision=data.get("revision"),
        trust_remote_code=bool(data.get("trust_remote_code", False)),
        model_args=dict(data.get("model_args") or {}),
        system_instruction=data.get("system_instruction"),
        device=data.get("device"),
        endpoint=dict(data["endpoint"]) if data.get("endpoint") else None,
        requires=tuple(data.get("requires") or ()),
        notes=data.get("notes", ""),
        thinking_allowance=int(data.get("thinking_allowance", 0)),
    )


def config_dirs() -> list[Path]:
    """The shipped registry, then the folders of $TAIYI_BASELINES_DIR (later ones win)."""
    extra = [Path(p).expanduser() for p in os.environ.get(EXTRA_DIRS_ENV, "").split(os.pathsep) if p.strip()]
    return [REGISTRY_DIR, *extra]


def config_paths() -> dict[str, Path]:
    """name -> YAML file, over all registry folders."""
    found: dict[str, Path] = {}
    for folder in config_dirs():
        if folder.is_dir():
            for path in sorted(folder.glob("*.yaml")):
                found[path.stem] = path
    return found


def list_configs() -> list[LLMBaseline]:
    """Every config, validated, sorted by name. One invalid file fails the whole listing: a
    registry that half-loads would hide the broken file."""
    return [load_config(path) for _, path in sorted(config_paths().items())]


def find_config(name_or_path: str) -> LLMBaseline:
    """A config by registry name, or by the path of a YAML file."""
    candidate = Path(name_or_path).expanduser()
    if candidate.suffix in (".yaml", ".yml") and candidate.is_file():
        return load_config(candidate)
    paths = config_paths()
    if name_or_path not in paths:
        raise ConfigError(f"no baseline config named {name_or_path!r}; known: {', '.join(sorted(paths)) or 'none'}")
    return load_config(paths[name_or_path])


_SCAFFOLD = """\
# {name}: a general-LLM baseline for taiyi-bench. Fields: baselines/llm/schema.json;
# `taiyi baseline validate` checks this file, `taiyi baseline run {name} --dry-run` shows the
# lm-eval command it becomes.
name: {name}
display_name: {display_name}
description: ""
in_paper: false
backend: {backend}            # hf | vllm | local-chat-completions | openai-chat-completions
model: {model}
trust_remote_code: false      # enable only for a model without a transformers-native class
{model_args}prompt_format: chat_template  # chat_template | plain | eod | taiyi1 (baselines/llm/schema.json)
batch_size: {batch_size}
# Each task keeps its own generation budget (32 to 1280 tokens). A reasoning model that writes
# its thinking first needs `thinking_allowance: N` (added to every task's budget); a
# max_gen_toks here would cap every task instead, and the cut tasks would be marked.
gen_kwargs:
  do_sample: false
  temperature: 0.0
{endpoint}"""

_ENDPOINT = """\
endpoint:
  base_url: {base_url}
  api_key_env: {api_key_env}   # the NAME of the variable holding the key, never the key
  num_concurrent: 4
  max_retries: 3
  timeout: 120
requires: [api]
"""


def scaffold(name: str, directory: str | os.PathLike | None = None, *, backend: str = "hf", model: str | None = None) -> Path:
    """Write a starting config `<directory>/<name>.yaml` (registry folder by default); refuses to overwrite."""
    folder = Path(directory) if directory is not None else REGISTRY_DIR
    path = folder / f"{name}.yaml"
    if path.exists():
        raise ConfigError(f"{path} already exists")
    if backend in CHAT_BACKENDS:
        openai = backend == "openai-chat-completions"
        endpoint = _ENDPOINT.format(
            base_url="https://api.openai.com/v1/chat/completions" if openai else "http://localhost:8000/v1/chat/completions",
            api_key_env="OPENAI_API_KEY" if openai else "TAIYI_LOCAL_API_KEY",
        )
        model_args, batch_size = "", "1"
    else:
        endpoint = "requires: [gpu]\n"
        model_args, batch_size = "model_args:\n  dtype: bfloat16\n", "auto"
    text = _SCAFFOLD.format(
        name=name, display_name=name, backend=backend, model=model or "org/model-name",
        model_args=model_args, batch_size=batch_size, endpoint=endpoint,
    )
    problems = validation_errors(yaml.safe_load(text))
    if problems:
        raise ConfigError(f"cannot scaffold {name!r}:\n  " + "\n  ".join(problems))
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
