"""Bootstrap confidence intervals and the paired bootstrap test, from lm-eval's samples files.

Each line of `samples_<task>_<date>.jsonl` carries the per-unit metric values our tasks log:
micro metrics as `[tp, fp, fn]`, `acc` and `parse_fail` as 0/1. Resampling units with replacement
and recomputing the *micro* statistic per resample (not averaging per-unit F1s) is what makes the
interval match the headline number. Everything is vectorised with numpy: one `(chunk, n)` index
matrix per chunk of resamples, gathered column by column (the fastest layout measured, see
`benchmarks/bench_bootstrap.py`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from taiyi_bench.harness.results_io import iter_jsonl

MetricKind = Literal["f1", "acc"]

# Resamples gathered per chunk: bounds the index matrix to about chunk * n * 8 bytes.
_CHUNK_ELEMENTS = 2_000_000

# Below this many units no interval and no p-value is shown, only the count and `too_few_units`'s
# reason. On few units the bootstrap's resampling distribution has few distinct values and its
# percentile interval undercovers: on 5 paired units it can print p = 0.005 where an exact sign test
# cannot go below 2 * 0.5**5 = 0.0625. 30 is the usual floor for normal-theory coverage, and the
# reference runs (50 units a set) clear it.
MIN_UNITS_FOR_INFERENCE = 30


def too_few_units(n_units: int) -> str | None:
    """Why no interval or p-value is shown for `n_units` units, or None when there are enough."""
    if n_units < MIN_UNITS_FOR_INFERENCE:
        return f"{n_units} unit{'' if n_units == 1 else 's'} (< {MIN_UNITS_FOR_INFERENCE}): too few for an interval or a p-value"
    return None


@dataclass(frozen=True)
class Units:
    """Per-unit values of one task's headline metric, keyed by unit id.

    `values` is `(n, 3)` integer `[tp, fp, fn]` for micro-F1 metrics and `(n,)` floats (0/1) for
    accuracy-like metrics.
    """

    ids: tuple[str, ...]
    values: np.ndarray
    kind: MetricKind
    path: Path | None = None
    # lm-eval's `doc_hash` of each unit (None where not logged): what the unit *is*. Ids alone are
    # not enough: a run on the bundled samples and one on the real data both have a `test-0`.
    hashes: tuple[str | None, ...] | None = None

    def __len__(self) -> int:
        return len(self.ids)


class DifferentDataError(ValueError):
    """Two runs hold different units under the same ids: they evaluated different data."""


def check_same_data(
    a: Mapping[str, str | None], b: Mapping[str, str | None], path_a: object, path_b: object
) -> None:
    """`DifferentDataError` when a unit id of both runs (`id -> doc_hash`) has two different
    doc hashes; ids whose hash either run did not log are taken on trust."""
    shared = [uid for uid in a if uid in b]
    mismatched = [uid for uid in shared if a[uid] is not None and b[uid] is not None and a[uid] != b[uid]]
    if mismatched:
        raise DifferentDataError(
            f"the runs evaluated different data: {len(mismatched)} of the {len(shared)} unit ids they share "
            f"(e.g. {mismatched[0]!r}) hold different documents in {path_a} and {path_b}; "
            "pairing them would compare different questions, so nothing was paired"
        )


@dataclass(frozen=True)
class BootstrapResult:
    point: float  # the statistic on all units (fraction, not percent)
    low: float
    high: float
    n_units: int
    n_resamples: int
    resamples: np.ndarray  # (n_resamples,) statistic per resample


@dataclass(frozen=True)
class PairedResult:
    """Paired bootstrap of `a - b` over the units both runs scored."""

    delta: float  # statistic(a) - statistic(b) on the matched units (fraction)
    low: float
    high: float
    p_value: float  # two-sided, H0: no difference
    n_units: int
    n_resamples: int
    point_a: float
    point_b: float
    only_a: int  # units present in a only (left out)
    only_b: int


def statistic(values: np.ndarray, kind: MetricKind) -> np.ndarray | float:
    """Micro-F1 from summed `[tp, fp, fn]` (last axis) or the mean of 0/1 values.

    For `f1`, `values` holds *sums* with shape `(..., 3)`; the result has shape `(...)`. An empty
    denominator (no gold, no prediction anywhere) scores 0, as the scorer does.
    """
    if kind == "f1":
        values = np.asarray(values, dtype=np.float64)
        tp, fp, fn = values[..., 0], values[..., 1], values[..., 2]
        denom = 2 * tp + fp + fn
        with np.errstate(invalid="ignore", divide="ignore"):
            f1 = np.where(denom > 0, 2 * tp / np.where(denom > 0, denom, 1), 0.0)
        return float(f1) if f1.ndim == 0 else f1
    return float(np.mean(values)) if np.ndim(values) == 1 else np.mean(values, axis=-1)


def point_estimate(units: Units) -> float:
    """The statistic on all units (fraction)."""
    if units.kind == "f1":
        return float(statistic(units.values.sum(axis=0), "f1"))
    return float(np.mean(units.values)) if len(units) else 0.0


def _resample_sums(columns: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Sum of each column over `n_resamples` bootstrap resamples of the n units.

    `columns` is `(k, n)`; returns `(n_resamples, k)`. The same index matrix is used for all k
    columns, which is what makes a paired test paired.
    """
    k, n = columns.shape
    out = np.empty((n_resamples, k), dtype=np.float64)
    chunk = max(1, min(n_resamples, _CHUNK_ELEMENTS // max(n, 1)))
    for start in range(0, n_resamples, chunk):
        size = min(chunk, n_resamples - start)
        idx = rng.integers(0, n, size=(size, n))
        for j in range(k):
            out[start : start + size, j] = columns[j][idx].sum(axis=1)
    return out


def _as_columns(units: Units) -> np.ndarray:
    values = np.asarray(units.values, dtype=np.float64)
    return values.T if units.kind == "f1" else values[None, :]


def _stat_from_sums(sums: np.ndarray, kind: MetricKind, n: int) -> np.ndarray:
    return statistic(sums, "f1") if kind == "f1" else sums[:, 0] / n  # type: ignore[return-value]


def bootstrap_ci(
    units: Units, n_resamples: int = 1000, *, confidence: float = 0.95,
    seed: int | np.random.SeedSequence | None = 0,
) -> BootstrapResult:
    """Percentile bootstrap interval of the task's micro statistic (seeded numpy Generator)."""
    n = len(units)
    if n == 0:
        raise ValueError(f"no units to resample{f' in {units.path}' if units.path else ''}")
    if n_resamples < 1:
        raise ValueError("n_resamples must be at least 1")
    rng = np.random.default_rng(seed)
    sums = _resample_sums(_as_columns(units), n_resamples, rng)
    resamples = np.asarray(_stat_from_sums(sums, units.kind, n), dtype=np.float64)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(resamples, [alpha, 1 - alpha])
    return BootstrapResult(point_estimate(units), float(low), float(high), n, n_resamples, resamples)


def match_units(a: Units, b: Units) -> tuple[Units, Units, int, int]:
    """Restrict two runs to the units both scored, in the same order (matched by unit id)."""
    if a.kind != b.kind:
        raise ValueError(f"cannot pair a {a.kind} metric with a {b.kind} metric")
    if a.hashes is not None and b.hashes is not None:
        check_same_data(dict(zip(a.ids, a.hashes, strict=True)), dict(zip(b.ids, b.hashes, strict=True)), a.path, b.path)
    index_b = {uid: i for i, uid in enumerate(b.ids)}
    rows_a = [i for i, uid in enumerate(a.ids) if uid in index_b]
    ids = tuple(a.ids[i] for i in rows_a)
    rows_b = [index_b[uid] for uid in ids]
    pick_a = Units(ids, a.values[rows_a], a.kind, a.path, _pick(a.hashes, rows_a))
    pick_b = Units(ids, b.values[rows_b], b.kind, b.path, _pick(b.hashes, rows_b))
    return pick_a, pick_b, len(a.ids) - len(ids), len(b.ids) - len(ids)


def _pick(hashes: tuple[str | None, ...] | None, rows: Sequence[int]) -> tuple[str | None, ...] | None:
    return None if hashes is None else tuple(hashes[i] for i in rows)


def paired_bootstrap(
    a: Units, b: Units, n_resamples: int = 1000, *, confidence: float = 0.95,
    seed: int | np.random.SeedSequence | None = 0,
) -> PairedResult:
    """Paired bootstrap test of `statistic(a) - statistic(b)` on the units both runs scored.

    Units are matched by id and resampled *jointly*; ids whose logged doc hashes differ refuse
    the test (`DifferentDataError`: the runs evaluated different data). The p-value is two-sided and uses the
    bootstrap distribution shifted to the null (Berg-Kirkpatrick et al. 2012 / Efron &
    Tibshirani): p = (1 + #{|d* - d| >= |d|}) / (B + 1), so it is never exactly 0.
    """
    a_m, b_m, only_a, only_b = match_units(a, b)
    n = len(a_m)
    if n == 0:
        raise ValueError(f"the two runs share no unit ids ({a.path} vs {b.path})")
    rng = np.random.default_rng(seed)
    cols_a, cols_b = _as_columns(a_m), _as_columns(b_m)
    sums = _resample_sums(np.vstack([cols_a, cols_b]), n_resamples, rng)
    k = cols_a.shape[0]
    stat_a = np.asarray(_stat_from_sums(sums[:, :k], a.kind, n))
    stat_b = np.asarray(_stat_from_sums(sums[:, k:], b.kind, n))
    deltas = stat_a - stat_b
    point_a, point_b = point_estimate(a_m), point_estimate(b_m)
    delta = point_a - point_b
    # Tolerance so that float noise on an exactly-zero difference does not count as "beyond".
    extreme = np.abs(deltas - delta) >= abs(delta) - 1e-12
    p_value = float((1 + np.count_nonzero(extreme)) / (n_resamples + 1))
    alpha = (1 - confidence) / 2
    low, high = np.quantile(deltas, [alpha, 1 - alpha])
    return PairedResult(delta, float(low), float(high), min(1.0, p_value), n, n_resamples, point_a, point_b, only_a, only_b)


def unit_id(record: dict) -> str:
    """A samples record's unit id: our `id` in its `doc`, else lm-eval's `doc_id`."""
    doc = record.get("doc")
    if isinstance(doc, dict) and doc.get("id") not in (None, ""):
        return str(doc["id"])
    return f"doc_id:{record.get('doc_id')}"


def read_units(
    path: str | os.PathLike, metric: str, kind: MetricKind, *, filter_name: str = "none",
    warnings: list[str] | None = None,
) -> Units:
    """Per-unit values of `metric` from an lm-eval samples file.

    Units are keyed by our `id` field in `doc` (stable across runs and data orders), falling back
    to lm-eval's `doc_id`. Lines that cannot be read are skipped with a warning naming the file and
    line; a repeated id keeps the last line (lm-eval appends to samples files).
    """
    path = Path(path)
    sink = warnings if warnings is not None else []
    rows: dict[str, object] = {}
    hashes: dict[str, str | None] = {}
    bad = 0

    def skip(line_no: int, why: str) -> None:
        nonlocal bad
        bad += 1
        if bad <= 3:
            sink.append(f"{path}, line {line_no}: {why}; line skipped")

    for line_no, record in iter_jsonl(path, skip):
        if not isinstance(record, dict) or record.get("filter", "none") != filter_name:
            continue
        raw = record.get(metric)
        value = _unit_value(raw, kind)
        if value is None:
            skip(line_no, f"{metric!r} is {raw!r}, expected {'[tp, fp, fn]' if kind == 'f1' else '0/1'}")
            continue
        uid = unit_id(record)
        if uid in rows:
            sink.append(f"{path}, line {line_no}: unit {uid!r} appears again; kept the last line")
        rows[uid] = value
        doc_hash = record.get("doc_hash")
        hashes[uid] = doc_hash if isinstance(doc_hash, str) and doc_hash else None
    if bad > 3:
        sink.append(f"{path}: {bad} unreadable lines in all (first 3 reported)")
    ids = tuple(rows)
    if kind == "f1":
        values = np.asarray(list(rows.values()), dtype=np.int64).reshape(-1, 3)
    else:
        values = np.asarray(list(rows.values()), dtype=np.float64)
    return Units(ids, values, kind, path, tuple(hashes[uid] for uid in ids))


def _unit_value(raw: object, kind: MetricKind) -> object | None:
    if kind == "f1":
        if isinstance(raw, (list, tuple)) and len(raw) == 3 and all(_is_count(x) for x in raw):
            return [int(x) for x in raw]  # type: ignore[arg-type]
        return None
    if isinstance(raw, (int, float)) and math.isfinite(raw):  # a bool too: 0/1
        return float(raw)
    return None


def _is_count(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x >= 0 and float(x).is_integer()
