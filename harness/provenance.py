"""What every results file records about how its numbers were made, LLM and BERT runs alike.

`task_metadata` builds the keys that go into `configs[<task>]["metadata"]` of a results file:
lm-eval copies the metadata of the taiyi_* tasks there (`tasks/utils.py:TaiyiTask`), and
`baselines/results.py` writes the same keys for the discriminative baselines. The leaderboard
reads them to tell variants apart (MCMLE options, few-shot source, budget) and to show where a
number came from (taiyi-bench version and commit, scoring rules, data file checksums).

`completeness` says whether the number covers the official split: a data file with another unit
count than the registry's, or with another checksum than the official file's, is marked
("incomplete", "modified data"), so a short or edited file never passes for a full run.
"""

from __future__ import annotations

import hashlib
import logging
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Literal, get_args

from taiyi_bench.harness.loading import split_names
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
) -> dict[str, Any]:
    """Every shared-contract key of a task's results metadata (see the module docstring).

    `spec` is the variant actually evaluated, `files` the (path, data root) pairs read, the
    few-shot pool's included; `fewshot_source` None when no demonstrations were shown;
    `evaluated_units` the units a --limit left (None: all of them).
    """
    files = list(files)
    check = check_completeness(
        spec, split, data_source=data_source, eval_units=eval_units, files=files, evaluated_units=evaluated_units
    )
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
    }
