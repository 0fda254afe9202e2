"""Choosing the files of a split (data directory or bundled samples) and loading them, cached.

`load_split` is the one way the rest of the project gets examples. It reads the user's data
directory when one is given (argument, then $TAIYI_DATA_DIR) and the bundled samples otherwise;
when a data directory is given but a file is missing it raises `DataNotFoundError` (naming the
path and where to get the set) and never falls back to the samples silently.
"""

from __future__ import annotations

import logging
import os
from collections import Counter, OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from taiyi_bench.harness.errors import DataNotFoundError
from taiyi_bench.harness.paths import DATA_DIR_ENV, SAMPLES_DIR, resolve_data_dir
from taiyi_bench.harness.readers import READERS
from taiyi_bench.harness.records import Example
from taiyi_bench.harness.registry import DatasetSpec, SplitCounts, get_spec

logger = logging.getLogger("taiyi-bench")

SetName = str | DatasetSpec  # a key, a task name, or a spec already resolved (variant included)


@dataclass
class LoadedSplit:
    """The examples of one split and where they came from.

    `source` is "samples" when the bundled team-written samples were read: anything computed
    from them must say so. `spec` is the spec actually used, variant included (the 5-option
    MCMLE form has labels A-E and the 5-option files): pass it on rather than looking the set up
    again.
    """

    examples: list[Example]
    source: Literal["data", "samples"]
    paths: list[Path]
    spec: DatasetSpec
    split: str
    root: Path = field(default=SAMPLES_DIR)  # the data directory, or the samples folder

    def __len__(self) -> int:
        return len(self.examples)

    def __iter__(self) -> Iterator[Example]:
        return iter(self.examples)


def _root(data_dir: str | os.PathLike | None) -> tuple[Path, Literal["data", "samples"]]:
    chosen = resolve_data_dir(data_dir)
    return (chosen, "data") if chosen is not None else (SAMPLES_DIR, "samples")


def split_names(spec: DatasetSpec, split: str) -> tuple[str, ...]:
    """The file names of `split`, relative to the set's folder (none for a split it lacks)."""
    names = spec.files.get(split, ())
    return (names,) if isinstance(names, str) else tuple(names)


def split_files(spec: DatasetSpec, split: str, root: Path) -> list[Path]:
    """The files to read for `split` under `root`; `DataNotFoundError` when they are missing."""
    if split not in spec.files:
        raise KeyError(f"{spec.display_name} has no split {split!r}; its splits are {list(spec.files)}")
    candidates = [root / spec.data_subdir / name for name in split_names(spec, split)]
    # "all": the reader needs every file; "first_present": the files are alternatives (LitCovid:
    # the official CSV, else the TSV derivative) and the first present one is read.
    if spec.file_policy == "all" or len(candidates) == 1:
        missing = [path for path in candidates if not path.is_file()]
        if not missing:
            return candidates
        raise _not_found(spec, split, root, f"missing {', '.join(map(str, missing))}")
    for path in candidates:
        if path.is_file():
            return [path]
    raise _not_found(spec, split, root, f"none of {', '.join(map(str, candidates))} exists")


def _not_found(spec: DatasetSpec, split: str, root: Path, what: str) -> DataNotFoundError:
    if root == SAMPLES_DIR:
        shipped = [s for s in spec.files if _present(spec, s, root)]
        return DataNotFoundError(
            f"{spec.display_name} {split}: {what}. The bundled samples ship only {shipped}; "
            f"for the real data set $TAIYI_DATA_DIR. How to get it: {spec.how_to_get}"
        )
    return DataNotFoundError(f"{spec.display_name} {split}: {what} (data directory {root}). How to get it: {spec.how_to_get}")


def _present(spec: DatasetSpec, split: str, root: Path) -> bool:
    try:
        split_files(spec, split, root)
    except DataNotFoundError:
        return False
    return True


def available_splits(name: SetName, data_dir: str | os.PathLike | None = None, **options: Any) -> list[str]:
    """The splits of `name` whose files are present (in the data directory, else the samples)."""
    spec = get_spec(name, options)
    root, _ = _root(data_dir)
    return [split for split in spec.files if _present(spec, split, root)]


def load_split(
    name: SetName, split: str | None = None, data_dir: str | os.PathLike | None = None, *, warn_samples: bool = True,
    **options: Any,
) -> LoadedSplit:
    """Load one split of a set as `Example`s (split None = the set's evaluation split).

    `name` is a key or task name, with `options` choosing a variant (`<variant_option>=5`), or a
    spec already resolved. The returned `LoadedSplit.spec` is the spec used. Repeated loads of
    unchanged files in one process come from a cache keyed on (path, mtime, size); the returned
    list is new each time, but the `Example` objects are shared: treat them as read-only.
    """
    spec = get_spec(name, options)
    split = spec.eval_split if split is None else split
    root, source = _root(data_dir)
    if source == "data" and not root.is_dir():
        raise DataNotFoundError(f"data directory {root} does not exist (given as argument or ${DATA_DIR_ENV})")
    paths = split_files(spec, split, root)
    if source == "samples" and warn_samples:  # a caller reading many sets says it once itself
        _warn_samples(spec.display_name, split)
    return LoadedSplit(list(_read_cached(spec, split, paths)), source, paths, spec, split, root)


_CACHE: OrderedDict[tuple, tuple[Example, ...]] = OrderedDict()
_CACHE_SIZE = 64


def _read_cached(spec: DatasetSpec, split: str, paths: list[Path]) -> tuple[Example, ...]:
    # Keyed on the files' mtime and size, so an edited file is re-read, and on what the reader
    # takes from the spec (specs themselves are not hashable: they hold mappings).
    stamps = tuple((str(p.resolve()), p.stat().st_mtime_ns, p.stat().st_size) for p in paths)
    key = (spec.key, spec.variant_value, spec.reader, spec.labels, split, stamps)
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    reader = READERS[spec.reader]
    extra = paths[1:] if spec.file_policy == "all" else []
    examples = tuple(reader(paths[0], spec, split, *extra))
    _CACHE[key] = examples
    if len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return examples


def clear_cache() -> None:
    """Forget every cached split (benchmarks use it to time cold loads)."""
    _CACHE.clear()


@cache  # once per split and process: loud, not flooding
def _warn_samples(display_name: str, split: str) -> None:
    logger.warning(
        "taiyi-bench: %s %s comes from the BUNDLED SAMPLES written by the team, not the real data set "
        "(set $TAIYI_DATA_DIR or pass data_dir).", display_name, split,
    )


def observed_counts(spec: DatasetSpec, examples: list[Example]) -> SplitCounts:
    """Counts of a loaded split in the registry's terms (`SplitCounts`), for checks and reports.

    gold: NER mentions, RE relations, HoC-style multi-label sets: units with at least one label,
    otherwise None. extra: NER/RE per entity type, TC per label, QA per answer (the option text
    when the set's labels are texts, as PubMedQA's yes/no/maybe, else the letter).
    """
    extra: Counter[str] = Counter()
    gold: int | None = None
    if spec.task_type in ("ner", "re"):
        extra.update(entity.type for example in examples for entity in example.entities)
        if spec.task_type == "ner":
            gold = sum(len(example.entities) for example in examples)
        else:
            gold = sum(len(example.relations) for example in examples)
            extra.update(relation.relation for example in examples for relation in example.relations)
    elif spec.task_type == "tc":
        extra.update(label for example in examples for label in example.labels)
        if spec.multi_label:
            gold = sum(bool(example.labels) for example in examples)
    else:
        by_text = bool(examples) and examples[0].answer not in spec.labels
        extra.update(example.options[example.answer] if by_text else example.answer for example in examples)
    return SplitCounts(len(examples), gold, MappingProxyType(dict(extra)))


def compare_counts(expected: SplitCounts | None, observed: SplitCounts) -> list[str]:
    """Human-readable differences between expected and observed counts (empty when they agree).

    Only what the registry states is compared: a None gold or an absent extra key is unchecked.
    """
    if expected is None:
        return []
    problems = []
    if observed.units != expected.units:
        problems.append(f"units {observed.units} != expected {expected.units}")
    if expected.gold is not None and observed.gold != expected.gold:
        problems.append(f"gold {observed.gold} != expected {expected.gold}")
    for key, count in expected.extra.items():
        if observed.extra.get(key, 0) != count:
            problems.append(f"{key} {observed.extra.get(key, 0)} != expected {count}")
    return problems


@dataclass(frozen=True)
class MissingSet:
    """A requested set whose evaluation files are not in the data directory."""

    spec: DatasetSpec
    reason: str  # the DataNotFoundError text: which files, and how to get the set


def missing_sets(
    specs: list[DatasetSpec], data_dir: str | os.PathLike | None = None, **options: Any
) -> list[MissingSet]:
    """The sets among `specs` whose evaluation split cannot be read from the data directory.

    Checked before any model loads, so a whole-suite run stops at once with every missing set
    named. Without a data directory (the bundled samples) nothing is missing: the samples ship
    every evaluation split. Few-shot pools are not checked (they fall back to the samples).
    """
    root, source = _root(data_dir)
    if source == "samples":
        return []
    if not root.is_dir():
        raise DataNotFoundError(f"data directory {root} does not exist (given as argument or ${DATA_DIR_ENV})")
    missing = []
    for spec in specs:
        variant = get_spec(spec, options)
        try:
            split_files(variant, variant.eval_split, root)
        except DataNotFoundError as exc:
            missing.append(MissingSet(variant, str(exc)))
    return missing
