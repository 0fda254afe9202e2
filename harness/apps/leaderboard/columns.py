"""From runs to leaderboard columns: one column per (model, full/partial kind, variant), per set the
newest result, cells flagged and counted in the averages or not."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from taiyi_bench.harness.apps.leaderboard.identity import (
    RunVariant,
    label_suffixes,
    short_model,
    variant_id,
    varying_parts,
)
from taiyi_bench.harness.apps.leaderboard.parse import Collection, RunFile, TaskResult, display_path
from taiyi_bench.harness.apps.leaderboard.provenance_text import exclusion_notes, provenance
from taiyi_bench.harness.apps.leaderboard.rules import NOT_IN_FILE, headline_rule
from taiyi_bench.harness.apps.leaderboard.table import Cell, Column
from taiyi_bench.harness.registry import PAPER_ORDER, REGISTRY

GroupKey = tuple[str, str, RunVariant]  # (model, "full" or the partial kind, variant)
# The header mark of a column whose values `--untouched-only` recomputed without touched units.
UNTOUCHED_MARK = "[untouched units only]"


@dataclass
class RunColumn:
    """A run column and the task results it was built from (for intervals and paired tests)."""

    column: Column
    results: dict[str, TaskResult]
    model: str = ""
    kind: str = "full"  # "full" or the partial kind
    variant: RunVariant = field(default_factory=RunVariant)

    @property
    def budget_cut(self) -> bool:
        return any(result.budget_cut for result in self.results.values())

    def mismatches_published(self) -> list[str]:
        return self.variant.mismatches_published(budget_cut=self.budget_cut)


def build_run_columns(
    collection: Collection, *, include_partial: bool = False, include_budget_cut: bool = False,
    include_incomplete: bool = False, warnings: list[str] | None = None,
    partial_shown_under: Sequence[str | os.PathLike] = (),
) -> list[RunColumn]:
    """One column per (model, full/partial kind, variant); per set the newest result wins.

    Partial runs (bundled samples, demonstrations from the samples, a limit that dropped units)
    are left out unless `include_partial` or below a folder of `partial_shown_under` (the
    reference slices); shown, they get their own marked columns. Cells whose budget was cut, or
    read from data that is not the official split, are marked and left out of the averages unless
    `include_budget_cut` / `include_incomplete`. Sets the runner skipped are marked, never zero.
    """
    sink = collection.warnings if warnings is None else warnings
    groups, group_runs = _group_results(collection.runs, include_partial, partial_shown_under, sink)
    chosen_by_group = _newest_per_set(groups, sink)
    varies = {model: varying_parts([k[2] for k in groups if k[0] == model]) for model in {k[0] for k in groups}}
    # Columns in order of their shown name (a local path sorts by its folder name, not by "/").
    ordered = sorted(groups, key=lambda k: (short_model(k[0]).lower(), k[0], k[1] != "full", k[1], k[2].sort_key()))
    columns = [
        _run_column(key, chosen_by_group[key], group_runs[key], varies[key[0]], include_budget_cut, include_incomplete, sink)
        for key in ordered
    ]
    _disambiguate_headers(columns)
    return columns


def _group_results(
    runs: Sequence[RunFile], include_partial: bool, partial_shown_under: Sequence[str | os.PathLike], sink: list[str]
) -> tuple[dict[GroupKey, dict[str, list[TaskResult]]], dict[GroupKey, dict[Path, RunFile]]]:
    """Every shown run's results by column and set, and the runs of each column; a partial run
    left out is named in a warning."""
    groups: dict[GroupKey, dict[str, list[TaskResult]]] = {}
    group_runs: dict[GroupKey, dict[Path, RunFile]] = {}
    skipped_partial: dict[Path, str] = {}
    for run in runs:
        shown = any(Path(run.path).resolve().is_relative_to(Path(d).resolve()) for d in partial_shown_under)
        if run.partial_kind and not include_partial and not shown:
            skipped_partial.setdefault(run.path, _partial_reason(list(run.tasks.values())))
            continue
        for result in run.tasks.values():
            key = (run.model, run.partial_kind or "full", run.variant)
            groups.setdefault(key, {}).setdefault(result.key, []).append(result)
            group_runs.setdefault(key, {})[run.path] = run
    for path, reason in skipped_partial.items():
        sink.append(
            f"{display_path(path)}: partial run ({reason}); left out of the leaderboard (pass --include-partial to show it, marked)"
        )
    return groups, group_runs


def _run_column(
    group_key: GroupKey, chosen: dict[str, TaskResult], runs: dict[Path, RunFile], varies: set[str],
    include_budget_cut: bool, include_incomplete: bool, sink: list[str],
) -> RunColumn:
    model, kind, variant = group_key
    budget_cut = any(r.budget_cut for r in chosen.values())
    suffixes = label_suffixes(variant, budget_cut=budget_cut, varies=varies)
    cells: dict[str, Cell] = {}
    rule_cells: dict[tuple[str, str], Cell] = {}
    for key, result in chosen.items():
        cut = bool(result.budget_cut)
        flags = (["budget cut"] if cut else []) + ([result.data_problem] if result.data_problem else [])
        flags += [contaminated] if (contaminated := contamination_flag(result)) else []
        flag = ", ".join(flags) or None
        # --untouched-only that could not leave the touched units out: not a number of the untouched ones.
        unfiltered = result.untouched_note is not None and result.left_out is None
        counted = (include_budget_cut or not cut) and (include_incomplete or not result.data_problem) and not unfiltered
        cells[key] = Cell(result.value, flag=flag, in_averages=counted, rule=headline_rule(key))
        rule_cells.update(_rule_cells(result, flag, counted))
    skipped: dict[str, str] = {}
    for run in runs.values():
        for key, reason in run.skipped.items():
            if key not in chosen:
                skipped.setdefault(key, reason)
                cells[key] = Cell(None, flag="skipped", rule=headline_rule(key))
    header = short_model(model) + (f" ({', '.join(suffixes)})" if suffixes else "")
    if any(result.left_out is not None for result in chosen.values()):
        header += f" {UNTOUCHED_MARK}"
    column = Column(
        key=f"run:{model}:{kind}:{variant_id(variant)}", header=header, kind="run", cells=cells,
        provenance=provenance(model, chosen, skipped)
        + exclusion_notes(chosen, budget_cut, include_budget_cut, include_incomplete) + _contamination_provenance(chosen),
        partial=_partial_reason(list(chosen.values())) if kind != "full" else None,
        rule_cells=rule_cells,
    )
    missing = [REGISTRY[k].task_name for k in PAPER_ORDER if k not in skipped and (chosen.get(k) is None or chosen[k].value is None)]
    if missing:
        paths = sorted({display_path(r.run.path) for r in chosen.values()})
        # A column gathered from one file per set names their folder, not a wall of paths.
        files = ", ".join(paths) if len(paths) <= 2 else f"{len(paths)} results files under {os.path.commonpath(paths)}"
        # Name the shorter list: a 2-set run says which 2 it has, not the 11 it lacks.
        have = [REGISTRY[k].task_name for k in PAPER_ORDER if k not in skipped and REGISTRY[k].task_name not in missing]
        sink.append(
            f"{files}: {column.display_header} has no usable result for {len(missing)} of {len(PAPER_ORDER)} sets "
            + (f"({', '.join(missing)}); those cells" if len(missing) <= len(have) else f"(it has {', '.join(have)}); the other cells")
            + " and their averages are left empty"
        )
    return RunColumn(column, chosen, model=model, kind=kind, variant=variant)


def share_text(share: float) -> str:
    """A share of units as a percent with one decimal; "<0.1%" for a share too small to show so."""
    return "<0.1%" if 0 < share < 0.0005 else f"{share:.1%}"


def contamination_flag(result: TaskResult) -> str | None:
    """The mark of a cell whose evaluation units the run's fine-tuning mixture touched
    ("contaminated: 3.1% of units", the share of the set's split), with what --untouched-only did."""
    share = (result.contamination or {}).get("share")
    if not share:
        return None
    return f"contaminated: {share_text(share)} of units" + (f"; {result.untouched_note}" if result.untouched_note else "")


def _contamination_provenance(chosen: dict[str, TaskResult]) -> list[str]:
    """The contamination report of the column's fine-tuning mixture, in one sentence (none unrecorded)."""
    records = {key: result.contamination for key, result in chosen.items() if result.contamination}
    if not records:
        return []
    digests = ", ".join(sorted({str(record.get("report_sha256"))[:12] for record in records.values()}))
    touched = [f"{REGISTRY[k].display_name} {share_text(records[k]['share'])}" for k in PAPER_ORDER
               if records.get(k, {}).get("share")]
    unchecked = [REGISTRY[k].display_name for k in PAPER_ORDER if records.get(k, {}).get("checked") is False]
    found = f"it holds units of {', '.join(touched)}" if touched else "no evaluation unit found"
    return [f"Fine-tuning mixture checked against the evaluation splits (contamination report sha256 {digests}): "
            f"{found}" + (f"; not checked: {', '.join(unchecked)}" if unchecked else "") + "."]


def _rule_cells(result: TaskResult, flag: str | None, counted: bool) -> dict[tuple[str, str], Cell]:
    """The run's value by each rule of the set other than the headline's, (set, rule) -> Cell,
    flagged as the headline cell is; a metric the file lacks gives a cell that says so."""
    from taiyi_bench.harness.scoring import RULES, metric_for_rule

    spec = REGISTRY[result.key]
    own = headline_rule(result.key)
    out: dict[tuple[str, str], Cell] = {}
    for rule in RULES:
        name = metric_for_rule(spec, rule)
        if name is None or rule == own:
            continue
        value = result.metrics.get(name)
        out[(result.key, rule)] = Cell(value, flag=flag if value is not None else NOT_IN_FILE, in_averages=counted, rule=rule)
    return out


def _newest_per_set(groups: dict[GroupKey, dict[str, list[TaskResult]]], sink: list[str]) -> dict[GroupKey, dict[str, TaskResult]]:
    """Per column and set the newest result; each older one of the same variant is named as a duplicate."""
    chosen_by_group: dict[GroupKey, dict[str, TaskResult]] = {}
    for group_key, per_set in groups.items():
        chosen: dict[str, TaskResult] = {}
        superseded: dict[tuple[Path, Path], list[str]] = {}
        for key, results in per_set.items():
            ordered = sorted(results, key=lambda r: r.run.sort_time, reverse=True)
            chosen[key] = ordered[0]
            for older in ordered[1:]:
                superseded.setdefault((older.run.path, ordered[0].run.path), []).append(key)
        for (old, new), keys in superseded.items():
            names = ", ".join(REGISTRY[k].task_name for k in sorted(keys, key=PAPER_ORDER.index))
            sink.append(
                f"{display_path(old)}: duplicate run of {group_key[0]} ({names}, same variant); kept the newest, {display_path(new)}"
            )
        chosen_by_group[group_key] = chosen
    return chosen_by_group


def _disambiguate_headers(columns: Sequence[RunColumn]) -> None:
    """Two models with the same short name (local folders `a/model`, `b/model`) show in full;
    whatever still collides gets a number, so no two columns ever look alike."""
    def collisions() -> list[RunColumn]:
        headers = [rc.column.display_header for rc in columns]
        return [rc for rc in columns if headers.count(rc.column.display_header) > 1]

    for rc in collisions():
        short = short_model(rc.model)
        if short != rc.model:
            rc.column.header = rc.model + rc.column.header[len(short):]
    seen: dict[str, int] = {}
    for rc in collisions():
        seen[rc.column.display_header] = seen.get(rc.column.display_header, 0) + 1
        if seen[rc.column.display_header] > 1:
            rc.column.header += f" #{seen[rc.column.display_header]}"


def _partial_reason(results: Sequence[TaskResult]) -> str:
    """The marker of a partial column: "samples", "demos from samples", "slice of N" (the first N
    units, lm-eval's --limit N; "slice of 10%" for --limit 0.1) or "subset" (fewer units without
    a recorded limit, lm-eval --samples); a limited run with sample demonstrations carries both."""
    kinds = {r.partial_kind for r in results} | {r.run.partial_kind for r in results}
    if "samples" in kinds:
        return "samples"
    reasons = []
    if any(kind and "demos" in kind for kind in kinds):
        reasons.append("demos from samples")
    if any(kind and "limit" in kind for kind in kinds):
        limits = sorted({r.limit for r in results if r.limit is not None})
        # lm-eval reads a --limit below 1 as a fraction of the set.
        reasons.append("slice of " + "/".join(f"{v * 100:g}%" if v < 1 else f"{v:g}" for v in limits) if limits else "subset")
    return ", ".join(reasons) or "subset"
