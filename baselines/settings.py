"""Encoders and fine-tuning hyperparameters of the discriminative baselines (encoders.yaml, and
each set's `baseline_settings` in the registry)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from taiyi_bench.harness.errors import ConfigError
from taiyi_bench.harness.registry import DatasetSpec, get_spec

ENCODERS_FILE = Path(__file__).resolve().parent / "encoders.yaml"

HEADS: tuple[str, ...] = ("tagger", "pairs", "sequence", "choice")


@dataclass
class HeadConfig:
    """Everything one fine-tuning run of one head needs. Defaults are overridden, in order, by
    encoders.yaml (`heads.all`, `heads.<head>`), the set's registry entry
    (`baseline_settings[<head>]`) and the command line."""

    learning_rate: float = 5e-5
    batch_size: int = 32
    epochs: float = 5.0
    max_steps: int | None = None  # when set, wins over epochs
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    seed: int = 42
    max_length: int = 128
    window_stride: int = 32  # tagger: words shared by consecutive windows of a long unit
    negative_ratio: int = 0  # pairs: 0 keeps every negative candidate pair
    max_arguments: int = 64  # pairs: arguments per unit beyond this are dropped (guards n^2 pairs)
    threshold: float = 0.5  # multi-label sequence classification
    eval_batch_size: int = 64
    device: str = "auto"  # auto = cuda when available, else cpu
    bf16: bool | None = None  # None = bf16 autocast on a CUDA device that supports it
    log_every: int = 50

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HeadConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@lru_cache(maxsize=1)
def _load() -> dict[str, Any]:
    with ENCODERS_FILE.open(encoding="utf-8") as handle:
        data = yaml.safe_load(handle) or {}
    for key in ("defaults", "aliases", "heads"):
        if not isinstance(data.get(key), dict):
            raise ConfigError(f"{ENCODERS_FILE}: expected a mapping under {key!r}")
    if "tasks" in data:
        raise ConfigError(
            f"{ENCODERS_FILE}: a set's own hyperparameters belong to its registry entry "
            "(harness/datasets.yaml, `baseline_settings`); remove the `tasks:` block"
        )
    return data


def expand_encoder(name: str | None, language: str) -> str:
    """An alias of encoders.yaml or None (= the language's default) expanded to a hub id, path or local:<name>."""
    data = _load()
    if not name and language not in data["defaults"]:
        raise ConfigError(f"{ENCODERS_FILE}: no default encoder for language {language!r}")
    chosen = name or str(data["defaults"][language])
    return str(data["aliases"].get(chosen, chosen))


def head_config(task: str | DatasetSpec, head: str, overrides: dict[str, Any] | None = None) -> HeadConfig:
    """The hyperparameters of `head` for a set (key, task name or spec): defaults < encoders.yaml
    < the set's `baseline_settings` < `overrides` (None values skipped)."""
    if head not in HEADS:
        raise ConfigError(f"unknown head {head!r}; heads are {HEADS}")
    spec = task if isinstance(task, DatasetSpec) else get_spec(task)
    data = _load()
    merged: dict[str, Any] = {}
    merged.update(data["heads"].get("all") or {})
    merged.update(data["heads"].get(head) or {})
    merged.update(spec.baseline_settings.get(head) or {})
    merged.update({k: v for k, v in (overrides or {}).items() if v is not None})
    unknown = set(merged) - {f.name for f in dataclasses.fields(HeadConfig)}
    if unknown:
        raise ConfigError(f"{ENCODERS_FILE}: unknown hyperparameter(s) {sorted(unknown)} for head {head!r}")
    config = HeadConfig(**merged)
    if config.max_steps is not None and config.max_steps < 1:
        raise ConfigError("max_steps must be >= 1")
    if config.epochs <= 0 and config.max_steps is None:
        raise ConfigError("epochs must be > 0 (or give max_steps)")
    return config
