"""The registry of general-LLM baselines: one YAML file per model in `baselines/llm/`.

Each file validates against `baselines/llm/schema.json` (JSON Schema 2020-12). Extra folders of
configs can be added with $TAIYI_BASELINES_DIR (os.pathsep-separated); a config there with the
same name as a shipped one replaces it. `taiyi baseline new NAME` writes a starting file.

Beyond the schema, every value that ends up in lm-eval's `--model_args key=value,key=value` string
(`model`, `revision`, the endpoint's URL, every `model_args` key and value, adapter paths) and in
`--gen_kwargs` goes through one check (`model_arg_problem`): no `,` `=` newline or control
character, which would let a value smuggle in another key (`model: "dir,trust_remote_code=True"`).
`trust_remote_code` is turned on only by its own top-level key. A YAML file that repeats a key is
refused: YAML keeps the last one silently, so a pasted line could override a setting unseen.
"""

from __future__ import annotations

import datetime
import json
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from taiyi_bench.harness.atomic_files import atomic_write_text
from taiyi_bench.harness.errors import ConfigError
from taiyi_bench.harness.model_args_check import model_arg_problem
from taiyi_bench.harness.prompt_formats import PROMPT_FORMATS, default_format

REGISTRY_DIR = Path(__file__).resolve().parent / "llm"
SCHEMA_PATH = REGISTRY_DIR / "schema.json"
EXTRA_DIRS_ENV = "TAIYI_BASELINES_DIR"
CHAT_BACKENDS = frozenset({"local-chat-completions", "openai-chat-completions"})
# A config's name: its file name and its results folder (results/runs/<name>/), so a slug.
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]*")
_KEY_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# model_args keys that a config sets through its own fields: in model_args they would override
# the model preflight checked, or turn remote code on behind `trust_remote_code: false`.
RESERVED_MODEL_ARGS = MappingProxyType({
    "pretrained": "model", "model": "model", "revision": "revision", "trust_remote_code": "trust_remote_code",
    "base_url": "endpoint.base_url", "prompt_format": "prompt_format",
})
# model_args keys whose value is an adapter folder (lm-eval's hf backend).
ADAPTER_ARGS = ("peft", "delta")


@dataclass(frozen=True)
class LLMBaseline:
    """One validated config (see schema.json for the meaning of each field)."""

    name: str
    display_name: str
    backend: str
    model: str
    prompt_format: str  # taiyi_bench.harness.prompt_formats.PROMPT_FORMATS
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
    price: dict[str, Any] | None = None  # USD per million tokens, read on a date from a page (API configs)

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
            formats = ", ".join(PROMPT_FORMATS)
            lines.append(f"prompt_format: required, one of {formats} (older configs: apply_chat_template true/false)")
        else:
            lines.append(f"{where}: {error.message}")
    return lines


def name_problem(name: Any) -> str | None:
    """Why `name` cannot be a config's name (None when it can): lower-case letters, digits, `.`,
    `_`, `-`, starting with a letter or digit (it names the file and the results folder)."""
    if isinstance(name, str) and NAME_PATTERN.fullmatch(name):
        return None
    return (
        f"name: {name!r} is not a valid baseline name: use lower-case letters, digits, '.', '_' and '-', "
        "starting with a letter or digit (it names the file and the results folder)"
    )


def reference_problems(data: dict[str, Any]) -> list[str]:
    """Every value of a (schema-valid) config that lm-eval's argument strings cannot carry safely."""
    problems = [name_problem(data.get("name"))]
    problems += [model_arg_problem(field_name, data.get(field_name)) for field_name in ("model", "revision")]
    problems.append(model_arg_problem("endpoint.base_url", (data.get("endpoint") or {}).get("base_url")))
    for section in ("model_args", "gen_kwargs"):
        for key, value in (data.get(section) or {}).items():
            if not _KEY_PATTERN.fullmatch(str(key)):
                problems.append(f"{section}: key {key!r} is not a plain name (letters, digits, '_')")
            elif section == "model_args" and key in RESERVED_MODEL_ARGS:
                problems.append(
                    f"model_args.{key}: set through the config's own `{RESERVED_MODEL_ARGS[key]}` key, not model_args "
                    "(there it would bypass the checks made before a run)"
                )
            else:
                problems.append(model_arg_problem(f"{section}.{key}", value))
    return [problem for problem in problems if problem]


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses a key given twice in one mapping."""


def _mapping_without_duplicates(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    first_line: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            earlier = first_line.get(key)
        except TypeError:  # an unhashable key: construct_mapping says so
            continue
        if earlier is not None:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first given on line {earlier + 1})", key_node.start_mark
            )
        first_line[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def parse_yaml(text: str) -> Any:
    """Parse YAML safely; a repeated key is a `yaml.YAMLError` naming it and both lines."""
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass


def _prompt_format(data: dict[str, Any]) -> tuple[str | None, str | None]:
    """(format, problem): `prompt_format`, else the older `apply_chat_template` read as one."""
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
        data = parse_yaml(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read baseline config: {_one_line(exc)}") from None
    price = data.get("price") if isinstance(data, dict) else None
    if isinstance(price, dict) and isinstance(price.get("date"), datetime.date):
        price["date"] = price["date"].isoformat()  # YAML reads an unquoted 2024-08-06 as a date
    problems = validation_errors(data)
    if not problems and data["name"] != path.stem:
        problems.append(f"name: {data['name']!r} must equal the file name {path.stem!r}")
    prompt_format, format_problem = _prompt_format(data) if not problems else (None, None)
    if format_problem:
        problems.append(format_problem)
    if not problems:
        problems += reference_problems(data)
    if problems:
        raise ConfigError(f"{path}: invalid baseline config:\n  " + "\n  ".join(problems))
    values = {key: value for key, value in data.items() if key != "apply_chat_template"}
    return LLMBaseline(**{
        **values, "prompt_format": prompt_format, "path": path, "requires": tuple(data.get("requires") or ()),
        "thinking_allowance": int(data.get("thinking_allowance", 0)),
    })


def _one_line(exc: BaseException) -> str:
    """An exception's message on one line; a YAML error as `line N, column M: problem`."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        context = f" ({exc.context})" if exc.context and exc.context != exc.problem else ""
        return f"line {mark.line + 1}, column {mark.column + 1}: {exc.problem}{context}"
    return " ".join(str(exc).split())


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


def _yaml_scalar(value: Any) -> str:
    """`value` as one YAML scalar, written by the YAML library (quoted and escaped as needed):
    a value is never pasted into the file as text."""
    text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=1 << 30)
    return text.removesuffix("\n...\n").strip()


def scaffold(name: str, directory: str | os.PathLike | None = None, *, backend: str = "hf", model: str | None = None) -> Path:
    """Write a starting config `<directory>/<name>.yaml` (default: `baselines/llm/` of the current
    directory, never the installed package); refuses to overwrite.

    The name and the model are checked before anything is written (a name is a slug, a model
    reference carries no `,` `=` newline or control character); every value goes into the file
    through the YAML library, and the file is read back to make sure it says exactly that.
    """
    problems = [p for p in (name_problem(name), model_arg_problem("--model", model)) if p]
    if problems:
        raise ConfigError(f"cannot create baseline {name!r}: " + "; ".join(problems))
    folder = Path(directory) if directory is not None else Path("baselines") / "llm"
    path = folder / f"{name}.yaml"
    if path.exists():
        raise ConfigError(f"{path} already exists")
    intended: dict[str, Any] = {"name": name, "display_name": name, "backend": backend, "model": model or "org/model-name"}
    if backend in CHAT_BACKENDS:
        openai = backend == "openai-chat-completions"
        endpoint = _ENDPOINT.format(
            base_url=_yaml_scalar(
                "https://api.openai.com/v1/chat/completions" if openai else "http://localhost:8000/v1/chat/completions"
            ),
            api_key_env=_yaml_scalar("OPENAI_API_KEY" if openai else "TAIYI_LOCAL_API_KEY"),
        )
        model_args, intended["batch_size"] = "", 1
    else:
        endpoint = "requires: [gpu]\n"
        model_args, intended["batch_size"] = "model_args:\n  dtype: bfloat16\n", "auto"
    text = _SCAFFOLD.format(
        **{key: _yaml_scalar(value) for key, value in intended.items()}, model_args=model_args, endpoint=endpoint,
    )
    data = parse_yaml(text)
    problems = validation_errors(data) or reference_problems(data)
    changed = sorted(key for key, value in intended.items() if data.get(key) != value)
    if changed:  # cannot happen with values written by the YAML library; checked all the same
        problems.append(f"the written file would not say what was asked for ({', '.join(changed)})")
    if problems:
        raise ConfigError(f"cannot create baseline {name!r}:\n  " + "\n  ".join(problems))
    atomic_write_text(path, text)
    return path
