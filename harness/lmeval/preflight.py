"""Checks of an lm-eval run made before its model loads, so that a user's mistake costs no loading.

lm-eval's `simple_evaluate` builds the model before the tasks, so the tasks' own checks run only
once the weights are in memory; `lmeval.plugin` wraps `simple_evaluate` to call `check_run`
first. It is also the one place that sees the model args apart from --metadata (lm-eval merges
them into every task's metadata).

For a run that selects taiyi_* tasks, `check_run` refuses in one line each: a --metadata key
that is neither ours (`known_metadata_keys`), nor lm-eval's, nor a model arg (`{"mcmle_option":
5}` would otherwise run the 4-option files silently); a bad data_dir, a missing set, an empty
evaluation split; a bad thinking_allowance or variant value. For any task it refuses
`--use_cache` with a taiyi-* model in an eod format (`check_cache`). `check_model_location`
(pretrained=, peft=) is called by the taiyi-* model types before their backend loads.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from taiyi_bench.harness import prompt_formats
from taiyi_bench.harness.errors import ConfigError, DataFormatError, DataNotFoundError
from taiyi_bench.harness.lmeval.errors import install_excepthook
from taiyi_bench.harness.loading import LoadedSplit, load_split, missing_sets, split_names
from taiyi_bench.harness.paths import resolve_data_dir
from taiyi_bench.harness.registry import GROUP_FILTERS, DatasetSpec, get_spec, iter_specs

logger = logging.getLogger("taiyi-bench")
install_excepthook()  # these checks run before lm-eval imports any other module of ours

# Our own --metadata keys; each set's variant option is added from the registry.
OWN_METADATA_KEYS = ("data_dir", "thinking_allowance")
# Keys lm-eval itself writes into a task's metadata: the YAML's `version`, where the config came
# from (`config_source`; `config` for a task without YAML; `_metadata` for a non-dict one).
LM_EVAL_METADATA_KEYS = frozenset({"version", "config_source", "config", "_metadata"})
# The lm-eval model types that apply a prompt format (taiyi_bench.harness.lmeval.plugin registers them).
PROMPT_FORMAT_MODEL_TYPES = frozenset(prompt_formats.WRAPPER_BACKENDS.values())

_TRUTHY = {"1", "true", "yes", "on"}


class PromptFormatError(ConfigError):
    """A prompt format that cannot work with the rest of the command (a user error). Here, not in
    `lmeval.models` (which re-exports it): preflight raises it too, and models imports preflight."""


HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")


def known_metadata_keys() -> list[str]:
    """The --metadata keys the taiyi_* tasks read."""
    variants = {spec.variant_option for spec in iter_specs() if spec.variant_option}
    return sorted({*OWN_METADATA_KEYS, *variants})


def data_dir_value(value: Any) -> str | os.PathLike | None:
    """`data_dir` as given (--metadata, a task argument), if it is a path at all."""
    if value is None or isinstance(value, (str, os.PathLike)):
        return value
    raise ConfigError(
        f"data_dir must be the path of a folder, not {value!r} ({type(value).__name__}): "
        'write --metadata \'{"data_dir": "/path/to/data"}\''
    )


def whole_number(value: Any, name: str) -> int:
    """A count from --metadata or --gen_kwargs (thinking_allowance, max_gen_toks): a whole number >= 0.
    A ConfigError, so that `lm_eval` prints it as one line (`taiyi_bench.harness.lmeval.errors`)."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = -1
    if isinstance(value, bool) or number < 0 or (isinstance(value, float) and not value.is_integer()):
        raise ConfigError(f"taiyi-bench: {name} must be a whole number >= 0, not {value!r}")
    return number


# --------------------------------------------------------------------------- the run as a whole


def check_run(arguments: Mapping[str, Any]) -> None:
    """Everything that can be refused from `simple_evaluate`'s arguments alone (see the module
    docstring). `arguments` are its keyword arguments, as the caller gave them."""
    model_args = _model_args(arguments.get("model_args"))
    check_cache(arguments.get("model"), model_args, arguments.get("use_cache"))
    specs, only_taiyi = selected_sets(arguments.get("tasks"))
    if not specs:
        return
    # What each task will get as metadata, exactly as simple_evaluate builds it: the task
    # manager's when one is passed (the lm_eval command passes one, holding model_args |
    # --metadata), else model_args | metadata.
    manager = arguments.get("task_manager")
    if manager is not None:
        options = dict(getattr(manager, "metadata", None) or {})
    else:
        options = {**model_args, **(arguments.get("metadata") or {})}
    check_metadata_keys(options, model_args, strict=only_taiyi)
    data_dir = data_dir_value(options.get("data_dir"))
    whole_number(options.get("thinking_allowance", 0), "--metadata thinking_allowance")
    check_data([get_spec(spec, options) for spec in specs], data_dir)  # a bad variant option value: ConfigError


def _model_args(value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, str):
        from lm_eval.utils import simple_parse_args_string

        return simple_parse_args_string(value)
    return {}


def selected_sets(tasks: Any) -> tuple[list[DatasetSpec], bool]:
    """The taiyi_* sets a `simple_evaluate` task list selects, in registry order, and whether it
    selects nothing else. Only task names, group names and patterns count: a bare set key is no
    taiyi_* task in lm-eval, and lm-eval has built-in tasks of that name for some sets."""
    names = [tasks] if isinstance(tasks, str) else list(tasks or [])
    chosen: set[str] = set()
    only_taiyi = True
    for name in names:
        if not isinstance(name, str):  # an inline config or a Task object: not ours to read
            only_taiyi = False
            continue
        for part in filter(None, (piece.strip() for piece in name.split(","))):
            if part in GROUP_FILTERS:
                chosen.update(spec.key for spec in iter_specs(**GROUP_FILTERS[part]))
            elif any(ch in part for ch in "*?["):
                chosen.update(spec.key for spec in iter_specs() if fnmatch.fnmatchcase(spec.task_name, part))
                only_taiyi = only_taiyi and part.startswith("taiyi")
            elif part.startswith("taiyi_") and any(spec.task_name == part for spec in iter_specs()):
                chosen.update(spec.key for spec in iter_specs() if spec.task_name == part)
            else:
                only_taiyi = False
    return [spec for spec in iter_specs() if spec.key in chosen], only_taiyi


def check_metadata_keys(options: Mapping[str, Any], model_args: Mapping[str, Any], *, strict: bool) -> None:
    """Refuse (warn, when other suites run too: the key may be theirs) a metadata key nobody reads."""
    known = known_metadata_keys()
    unknown = sorted(set(options) - set(known) - LM_EVAL_METADATA_KEYS - set(model_args))
    if not unknown:
        return
    message = (
        f"unknown --metadata key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}: "
        f"the taiyi_* tasks read {', '.join(known)} (model settings go in --model_args)"
    )
    if strict:
        raise ConfigError(message)
    logger.warning("taiyi-bench: %s; left to the other tasks of this run", message)


def check_data(specs: list[DatasetSpec], data_dir: str | os.PathLike | None) -> None:
    """With a data directory (--metadata data_dir, else $TAIYI_DATA_DIR): it exists, holds every
    selected set's evaluation files, and each evaluation split has units. The splits read here
    stay in `taiyi_bench.harness.loading`'s cache, so the tasks do not read them again."""
    root = resolve_data_dir(data_dir)
    if root is None:
        return  # the bundled samples ship every evaluation split
    missing = missing_sets(specs, data_dir)  # a directory that does not exist: DataNotFoundError
    if missing:
        raise DataNotFoundError(_missing_message(root, specs, [m.spec for m in missing]))
    for spec in specs:
        require_units(load_split(spec, spec.eval_split, data_dir))


def require_units(evaluation: LoadedSplit) -> None:
    """An evaluation split without units is an error naming its files (lm-eval would index into it)."""
    if not evaluation.examples:
        spec, files = evaluation.spec, ", ".join(map(str, evaluation.paths))
        raise DataFormatError(files, None, f"at least one {spec.unit} in the {spec.display_name} {evaluation.split} split", "none")


def _missing_message(root: Path, specs: list[DatasetSpec], missing: list[DatasetSpec]) -> str:
    # One line: the excepthook prints it after `lm_eval: error:`. Each missing set is named with
    # the file it needs, relative to the data directory; `taiyi data check` says how to get it.
    def wanted(spec: DatasetSpec) -> str:
        return f"{spec.task_name} ({Path(spec.data_subdir) / split_names(spec, spec.eval_split)[0]})"

    advice = f"`taiyi data check {root}` says where each set's files go and how to get them"
    if not any(root.iterdir()):
        return f"data directory {root} is empty: none of the {len(specs)} selected sets is there; nothing was run. {advice}"
    return (
        f"data directory {root} lacks {len(missing)} of the {len(specs)} selected sets: "
        f"{', '.join(map(wanted, missing))}; nothing was run. Select the sets it holds with --tasks, or add the files: {advice}"
    )


# --------------------------------------------------------------------------- the response cache


def check_cache(model: Any, model_args: Mapping[str, Any], use_cache: Any) -> None:
    """`--use_cache` with a taiyi-* model type in an eod format is refused before the model loads.

    lm-eval's cache (`CachingLM`) looks each request up by its text before the model wrapper
    sees it, while the eod formats wrap the prompt in the wrapper: an eod run would be served the
    answers of a plain run of the same prompts. In the other formats the text looked up is the
    text the model gets (plain: the bare prompt; chat_template: rendered by lm-eval), so the
    cache is sound there. The model types refuse a cache too (`PromptFormatMixin.set_cache_hook`)
    for callers that wrap a built model themselves."""
    if not use_cache or model not in PROMPT_FORMAT_MODEL_TYPES:
        return
    chosen = model_args.get("prompt_format")
    if isinstance(chosen, str) and chosen in prompt_formats.EOD_FORMATS:
        raise PromptFormatError(cache_refusal(chosen))


def cache_refusal(prompt_format: str) -> str:
    return (
        f"--use_cache cannot be used with prompt_format={prompt_format}: lm-eval looks answers up in its cache "
        "before the prompt is wrapped in the eod format, so this run would get the answers given to other "
        "formats' prompts. Drop --use_cache (plain and chat_template runs may keep it)"
    )


# --------------------------------------------------------------------------- model locations


def offline_mode() -> bool:
    """True when the Hugging Face libraries are told not to use the network."""
    return any(os.environ.get(var, "").strip().lower() in _TRUTHY for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def looks_like_path(name: str) -> bool:
    """Whether `name` is written as a path: a Hub id has at most one "/"; anything rooted, dotted,
    home-relative or deeper is a path."""
    return name.startswith(("/", ".", "~")) or name.count("/") > 1 or "\\" in name


def check_model_location(arg: str, value: Any, marker: str, *, revision: str | None = None) -> None:
    """`arg=value` (pretrained=, peft=) must be a local folder holding `marker` (config.json, the
    gguf file, adapter_config.json) or a Hugging Face id that can be fetched; raise a ConfigError
    naming it otherwise.

    transformers takes any folder that does not exist for a Hub id, so a mistyped path ends in a
    60-line traceback about repo ids or the network. Offline (HF_HUB_OFFLINE/TRANSFORMERS_OFFLINE),
    an id must be in the local cache; online, the Hub's answer is left to the loader. A value that
    is not a string (a model object passed in Python) is not ours to judge."""
    if not isinstance(value, str) or not value.strip():
        return
    path = Path(value).expanduser()
    if path.is_dir():
        if not (path / marker).is_file():
            raise ConfigError(f"{arg}={value} is a folder without {marker}: not a model folder (is it the right one?)")
        return
    if path.is_file() and path.suffix == ".gguf":
        return  # vLLM loads a GGUF file itself
    if path.exists():
        raise ConfigError(f"{arg}={value} is a file; give the folder that holds {marker}")
    if looks_like_path(value) or not HUB_ID.match(value):
        raise ConfigError(f"{arg}={value} is neither a local folder (there is no such directory) nor a Hugging Face model id")
    if not offline_mode():
        return
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache(value, marker, revision=revision), str):
        return
    raise ConfigError(
        f"{arg}={value} is neither a local folder nor in the local Hugging Face cache, and the Hub is not reachable "
        "(offline mode: HF_HUB_OFFLINE/TRANSFORMERS_OFFLINE is set). Give a local folder, or download it first"
    )
