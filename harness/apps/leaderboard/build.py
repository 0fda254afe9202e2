"""Assemble the tables `taiyi leaderboard` renders: the leaderboard, the paper tables, a run
compared with the published numbers, and a paired comparison of two runs."""

from __future__ import annotations

import contextlib
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from taiyi_bench.harness.apps.leaderboard.bootstrap import (
    DifferentDataError,
    PairedResult,
    Units,
    bootstrap_ci,
    paired_bootstrap,
    read_units,
    too_few_units,
    unit_id,
)
from taiyi_bench.harness.apps.leaderboard.columns import (
    UNTOUCHED_MARK,
    RunColumn,
    build_run_columns,
    contamination_flag,
)
from taiyi_bench.harness.apps.leaderboard.parse import (
    DEFAULT_FILTER,
    Collection,
    RunFile,
    TaskResult,
    collect_runs,
    display_path,
)
from taiyi_bench.harness.apps.leaderboard.published import (
    PublishedTable,
    flag_note,
    load_published,
    published_columns,
)
from taiyi_bench.harness.apps.leaderboard.rules import BY_RULE_CAPTION, NO_LIKE_METRIC
from taiyi_bench.harness.apps.leaderboard.table import (
    AVERAGE_KEYS,
    COST_HEADERS,
    FEW_UNITS_NOTE,
    MISSING,
    Column,
    CostTable,
    Table,
    delta_column,
    few_units_flag,
    rule_notes,
    sets_of,
)
from taiyi_bench.harness.registry import PAPER_ORDER, PAPER_SETS, REGISTRY

DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 0
CI_NOTE = "Intervals: 95% percentile bootstrap over units ({n} resamples, seed {seed}); averages resample every set."


def _set_seeds(seed: int) -> dict[str, np.random.SeedSequence]:
    # One independent stream per set (spawned, not seed+i), identical for every column and call.
    children = np.random.SeedSequence(seed).spawn(len(PAPER_ORDER))
    return dict(zip(PAPER_ORDER, children, strict=True))


def _load_task_units(result: TaskResult, warnings: list[str]):
    """Units of one task result's headline metric, or None with a warning naming the file."""
    where = display_path(result.run.path)
    if result.samples_path is None:
        warnings.append(
            f"{where}: no samples_{result.task}_{result.run.date_id}.jsonl beside it (run lm_eval with --log_samples); "
            f"no interval for {result.task}"
        )
        return None
    spec = REGISTRY[result.key]
    units = read_units(result.samples_path, spec.headline_metric, spec.metric, filter_name=result.filter_name, warnings=warnings)
    if result.left_out is not None:  # --untouched-only: the units its fine-tuning data holds are not resampled
        keep = [i for i, uid in enumerate(units.ids) if uid not in result.left_out]
        hashes = None if units.hashes is None else tuple(units.hashes[i] for i in keep)
        units = Units(tuple(units.ids[i] for i in keep), units.values[keep], units.kind, units.path, hashes)
    if len(units) == 0:
        warnings.append(f"{display_path(result.samples_path)}: no usable {spec.headline_metric!r} values; no interval")
        return None
    return units


def attach_intervals(
    run_columns: Sequence[RunColumn], *, n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED,
    warnings: list[str],
) -> bool:
    """Add 95% bootstrap intervals to run cells, and to averages whose sets all have intervals.
    A cell on too few units (`too_few_units`) gets no interval but a flag with its count; returns
    whether any did, so that the table says why once (`FEW_UNITS_NOTE`).

    An average's interval averages the per-set resample statistics (sets are resampled
    independently: they share no units), so it costs nothing beyond the per-set bootstraps.
    """
    seeds = _set_seeds(seed)
    withheld = False
    for run_column in run_columns:
        column = run_column.column
        resamples: dict[str, np.ndarray] = {}
        for key in PAPER_ORDER:
            result = run_column.results.get(key)
            if result is None or result.value is None:
                continue
            units = _load_task_units(result, warnings)
            if units is None:
                continue
            boot = bootstrap_ci(units, n_resamples, seed=seeds[key])
            # The samples must be the ones the headline came from; a mismatch means stale files.
            if abs(boot.point * 100 - result.value) > 0.05:
                warnings.append(
                    f"{display_path(result.samples_path)}: recomputed {result.task} = {boot.point * 100:.2f} "
                    f"but {display_path(result.run.path)} says {result.value:.2f}; interval kept, check the files"
                )
            if result.n_effective is not None and result.left_out is None and len(units) != result.n_effective:
                warnings.append(
                    f"{display_path(result.samples_path)}: {len(units)} units, but the results file counts {result.n_effective}"
                )
            cell = column.cells[key]
            if too_few_units(len(units)):
                cell.flag = ", ".join(filter(None, [cell.flag, few_units_flag(len(units))]))
                withheld = True
                continue
            cell.ci = (boot.low * 100, boot.high * 100)
            resamples[key] = boot.resamples * 100
        for group in AVERAGE_KEYS:
            keys = sets_of(group)
            if resamples and all(k in resamples for k in keys):
                stacked = np.mean(np.vstack([resamples[k] for k in keys]), axis=0)
                low, high = np.quantile(stacked, [0.025, 0.975])
                column.average_cis[group] = (float(low), float(high))
        if resamples:
            column.provenance.append(CI_NOTE.format(n=n_resamples, seed=seed))
    return withheld


def keep_untouched_units(runs: Sequence[RunFile], warnings: list[str]) -> None:
    """`--untouched-only`: each result whose fine-tuning mixture touched units of its set gets its
    values (the headline and every other metric) recomputed from its samples file without those
    units, by the metric table's own aggregations; its interval leaves them out too
    (`_load_task_units`). Without a usable samples file it keeps the file's values, and its mark
    says it could not be filtered."""
    from taiyi_bench.harness.results_io import iter_jsonl
    from taiyi_bench.harness.scoring import aggregation_of

    for result in (r for run in runs for r in run.tasks.values()):
        touched = result.touched_units
        if not touched or result.value is None:
            continue
        records: dict[str, dict] = {}  # by unit id; a repeated id keeps its last line, as read_units does
        if result.samples_path is not None:
            try:
                records = {unit_id(record): record for _, record in iter_jsonl(result.samples_path, lambda _line, _why: None)
                           if isinstance(record, dict) and record.get("filter", DEFAULT_FILTER) == result.filter_name}
            except (OSError, UnicodeDecodeError) as exc:
                warnings.append(f"{display_path(result.samples_path)}: cannot be read ({exc}); {result.task} not filtered")
        if not records:
            result.untouched_note = "not filtered: no samples"
            continue
        kept = [record for uid, record in records.items() if uid not in touched]
        values: dict[str, float] = {}
        for name in (result.spec.headline_metric, *result.metrics):
            per_unit = [record.get(name) for record in kept]
            if kept and None not in per_unit:
                with contextlib.suppress(TypeError, ValueError, KeyError, ZeroDivisionError):  # unreadable values: no number
                    values[name] = aggregation_of(result.spec, name)(per_unit) * 100
        result.value = values.pop(result.spec.headline_metric, None)
        result.metrics, result.left_out = values, touched
        result.untouched_note = f"{len(records) - len(kept)} of {len(records)} evaluated units left out"


def _contamination_notes(run_columns: Sequence[RunColumn]) -> list[str]:
    """What the contamination marks mean, said once; a column whose mixture touched nothing says so."""
    results = [result for rc in run_columns for result in rc.results.values()]
    notes = []
    if any(contamination_flag(result) for result in results):
        notes.append(
            "Cells marked (contaminated: X% of units): the fine-tuning data of the run's adapter holds X% of the set's "
            "evaluation split, exactly or by a long shared n-gram (`taiyi contamination`); "
            + (f"columns marked {UNTOUCHED_MARK} are recomputed from their samples without those units, intervals "
               "included (the mark says how many of the evaluated units were left out); a cell marked (not filtered) "
               "had no samples and stays out of the averages." if any(r.untouched_note for r in results)
               else "the value covers every unit, the touched ones included (--untouched-only leaves them out).")
        )
    for rc in run_columns:
        records = [result.contamination for result in rc.results.values() if result.contamination]
        if records and not any(record.get("share") for record in records):
            notes.append(f"{rc.column.display_header}: mixture checked: no evaluation unit found.")
    return notes


def _published_flag_notes(columns: Sequence[Column], tables: dict[str, PublishedTable]) -> list[str]:
    """The published tables' notes that concern the published columns shown."""
    by_id = {t.id: t for t in tables.values()}
    shown = [tuple(column.key.split(":", 2)[1:]) for column in columns if column.kind == "published"]
    return [flag_note(by_id[table_id], flag) for table_id in dict.fromkeys(table_id for table_id, _ in shown)
            for flag in by_id[table_id].flags if (table_id, flag.get("column")) in shown]


def leaderboard_table(
    paths: Sequence[str | os.PathLike], *, include_partial: bool = False, include_budget_cut: bool = False,
    include_incomplete: bool = False, partial_shown_under: Sequence[str | os.PathLike] = (),
    published: str = "A", ci: bool = False, n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED,
    title: str = "taiyi-bench leaderboard", slug: str = "leaderboard", untouched_only: bool = False,
) -> Table:
    """Published columns (`published` selection) followed by one column per model run and variant;
    `untouched_only`: fine-tuned runs without the evaluation units their mixture holds."""
    collection = collect_runs(paths)
    warnings = collection.warnings
    if untouched_only:
        keep_untouched_units(collection.runs, warnings)
    run_columns = build_run_columns(
        collection, include_partial=include_partial, include_budget_cut=include_budget_cut,
        include_incomplete=include_incomplete, warnings=warnings, partial_shown_under=partial_shown_under,
    )
    if not collection.runs:
        warnings.append("no run results found; only the published columns are shown")
    few_units = ci and attach_intervals(run_columns, n_resamples=n_resamples, seed=seed, warnings=warnings)
    tables = load_published()
    pub = published_columns(published, tables)
    columns = [*pub, *(rc.column for rc in run_columns)]
    notes = _published_flag_notes(columns, tables) + ([FEW_UNITS_NOTE] if few_units else [])
    if any(c.partial for c in columns):
        notes.append(
            "Columns marked [samples] ran on the bundled samples, [demos from samples] took their few-shot "
            "demonstrations from the bundled samples, [slice of N] ran on the first N units: not comparable with full runs."
        )
    notes += _run_notes(columns, include_budget_cut=include_budget_cut, include_incomplete=include_incomplete)
    notes += _contamination_notes(run_columns)
    if pub and any(rc.mismatches_published() for rc in run_columns):
        notes.append(f"The published numbers are {published_variant()}; columns labelled otherwise are another variant.")
    notes.append("An average is shown only when every set of its group has a value.")
    added = [REGISTRY[key].display_name for key in PAPER_ORDER if key not in PAPER_SETS]
    if added:
        notes.append(f"{', '.join(added)}: registered since the paper, shown but in no average "
                     f"(the averages span the paper's {len(PAPER_SETS)} sets, as the published ones do).")
    # By rule: a published number stands only beside the run's metric by the same rule.
    table = Table(title=title, slug=slug, columns=columns, notes=notes, warnings=warnings, by_rule=True,
                  caption=BY_RULE_CAPTION)
    table.notes += rule_notes(table)
    return table


# What the published numbers are: the variant a run must be to be set against them.
def published_variant() -> str:
    """How the published numbers were run; a set with variants in its default form, from the registry."""
    forms = [f"{spec.display_name} with {spec.variant_option}={spec.variant_value}" for spec in REGISTRY.values()
             if spec.variant_option]
    return ", ".join(["zero-shot", *forms, "each model in its own prompt format, each set's own generation budget"])


def _run_notes(columns: Sequence[Column], *, include_budget_cut: bool, include_incomplete: bool = False) -> list[str]:
    notes = []
    flags = {flag for c in columns if c.kind == "run" for cell in c.cells.values() for flag in (cell.flag or "").split(", ")}
    if "budget cut" in flags:
        notes.append(
            "Cells marked (budget cut) were generated with a smaller max_gen_toks than their set's own budget, so long "
            "answers were truncated; "
            + ("they are counted in the averages (--include-budget-cut)." if include_budget_cut
               else "averages over them are left empty (--include-budget-cut counts them).")
        )
    if flags & {"incomplete", "modified data"}:
        notes.append(
            "Cells marked (incomplete) or (modified data) were read from data files with another unit count or another "
            "checksum than the official split; "
            + ("they are counted in the averages (--include-incomplete)." if include_incomplete
               else "averages over them are left empty (--include-incomplete counts them).")
        )
    if any(cell.flag == "skipped" for c in columns for cell in c.cells.values()):
        notes.append("Cells marked (skipped) were not run (the set's data was missing): missing, not zero.")
    return notes


def paper_tables(directory: str | os.PathLike | None = None) -> list[Table]:
    """Table A (Taiyi 1 paper) and Table B (authors' Taiyi 2 table), averages recomputed."""
    tables = load_published(directory)
    return [tables[letter].to_table() for letter in sorted(tables)]


def _explicit_run_columns(run: str | os.PathLike, warnings: list[str], untouched_only: bool = False) -> list[RunColumn]:
    # A run named explicitly is shown even when partial (the user asked for it); it stays marked.
    collection: Collection = collect_runs([run])
    warnings.extend(collection.warnings)
    if untouched_only:
        keep_untouched_units(collection.runs, warnings)
    return build_run_columns(collection, include_partial=True, warnings=warnings)


def compare_table(
    run: str | os.PathLike, *, against: str = "A:taiyi1", ci: bool = False,
    n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED, untouched_only: bool = False,
) -> Table:
    """A reproduced run beside published columns, with `run - published` delta columns
    (`untouched_only`: as `leaderboard_table`)."""
    warnings: list[str] = []
    all_columns = _explicit_run_columns(run, warnings, untouched_only)
    run_columns = matching_published_variant(all_columns, warnings)
    few_units = ci and attach_intervals(run_columns, n_resamples=n_resamples, seed=seed, warnings=warnings)
    tables = load_published()
    references = published_columns(against, tables)
    columns: list[Column] = []
    for run_column in run_columns:
        columns += [run_column.column, *(delta_column(run_column.column, reference) for reference in references)]
    columns += references
    if not all_columns:
        warnings.append(f"{run}: no run results to compare")
    elif not run_columns:
        warnings.append(f"{run}: no run of the published variant ({published_variant()}); nothing compared")
    name = Path(run).name.removesuffix(".json") or "run"
    notes = _published_flag_notes(columns, tables) + ([FEW_UNITS_NOTE] if few_units else [])
    notes += _run_notes(columns, include_budget_cut=False) + _contamination_notes(run_columns)
    notes.append(f"Δ = reproduced minus published, in percentage points. The published numbers are {published_variant()}.")
    notes.append(
        "Δ is taken only between numbers by the same rule: each Δ stands in the row of its published cell's rule, "
        "from the run's metric by that rule. A difference between two rules would measure the scoring, not the "
        f"model, so none is printed: where the run has no metric of the published cell's rule, the Δ cell is empty "
        f"({NO_LIKE_METRIC}) and so is every Δ average over it."
    )
    table = Table(
        title="Reproduced run vs published numbers", slug=f"compare_{_slug(name)}", columns=columns,
        notes=notes, warnings=warnings, by_rule=True, caption=BY_RULE_CAPTION,
    )
    table.notes += rule_notes(table)
    return table


def matching_published_variant(run_columns: Sequence[RunColumn], warnings: list[str]) -> list[RunColumn]:
    """The columns that may stand next to the published numbers; the rest are named in a warning.

    A column matches when it is zero-shot, every set with variants in its default form, and no set's
    budget was cut. The
    published numbers used each model's own prompt format: where a model also has a matching
    column in another format, its `plain` column (text without the model's own wrapping) is
    left out.
    """
    matching: list[RunColumn] = []
    for run_column in run_columns:
        reasons = run_column.mismatches_published()
        if reasons:
            warnings.append(
                f"{run_column.column.display_header}: not compared with the published numbers ({'; '.join(reasons)}); "
                "`taiyi leaderboard` shows it"
            )
        else:
            matching.append(run_column)
    kept: list[RunColumn] = []
    for run_column in matching:
        own_formats = {f for rc in matching if rc.model == run_column.model for f in rc.variant.prompt_formats} - {"plain"}
        if run_column.variant.prompt_formats == ("plain",) and own_formats:
            warnings.append(
                f"{run_column.column.display_header}: not compared with the published numbers (plain prompts; the "
                f"published numbers used each model's own format, here {'/'.join(sorted(own_formats))})"
            )
            continue
        kept.append(run_column)
    return kept


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:80] or "run"


@dataclass
class PairedReport:
    """Per-set paired bootstrap results of run A against run B."""

    a: Column
    b: Column
    rows: dict[str, PairedResult]
    n_resamples: int
    seed: int
    warnings: list[str] = field(default_factory=list)

    @property
    def slug(self) -> str:
        return f"paired_{_slug(self.a.header)}_vs_{_slug(self.b.header)}"


def paired_report(
    run_a: str | os.PathLike, run_b: str | os.PathLike, *, n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED, tasks: Sequence[str] | None = None,
) -> PairedReport:
    """Paired bootstrap test per set between two runs (only `tasks`, registry keys, when given), on
    the units both scored: matched by id, and refused (`DifferentDataError`) where the same id holds
    different documents in the two runs."""
    warnings: list[str] = []
    picked = []
    for run in (run_a, run_b):
        columns = _explicit_run_columns(run, warnings)
        if len(columns) != 1:
            found = ", ".join(c.column.display_header for c in columns) or "none"
            raise ValueError(f"{run}: expected exactly one model run, found {len(columns)} ({found}); name a results file")
        picked.append(columns[0])
    return paired_columns(*picked, n_resamples=n_resamples, seed=seed, tasks=tasks, warnings=warnings)


def paired_columns(
    a: RunColumn, b: RunColumn, *, n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED,
    tasks: Sequence[str] | None = None, warnings: list[str] | None = None,
) -> PairedReport:
    """`paired_report` of two run columns already read (`taiyi report` pairs two of its runs)."""
    warnings = [] if warnings is None else warnings
    seeds = _set_seeds(seed)
    rows: dict[str, PairedResult] = {}
    for key in PAPER_ORDER:
        ra, rb = a.results.get(key), b.results.get(key)
        if ra is None or rb is None or (tasks is not None and key not in tasks):
            continue
        ua, ub = _load_task_units(ra, warnings), _load_task_units(rb, warnings)
        if ua is None or ub is None:
            continue
        try:
            result = paired_bootstrap(ua, ub, n_resamples, seed=seeds[key])
        except DifferentDataError as exc:  # a p-value over different questions is worse than none: refuse
            raise DifferentDataError(f"{REGISTRY[key].task_name}: {exc}") from None
        except ValueError as exc:
            warnings.append(f"{REGISTRY[key].task_name}: {exc}")
            continue
        if result.only_a or result.only_b:
            warnings.append(
                f"{REGISTRY[key].task_name}: {result.only_a} units only in {display_path(ua.path)}, {result.only_b} only in "
                f"{display_path(ub.path)}; compared on the {result.n_units} shared units"
            )
        rows[key] = result
    # The same file named twice (or shared folders) would repeat its warnings.
    return PairedReport(a.column, b.column, rows, n_resamples, seed, list(dict.fromkeys(warnings)))


@dataclass
class TypeCell:
    """One type's scores in one run (fractions), with its 95% bootstrap interval of F1."""

    precision: float
    recall: float
    f1: float
    support: int
    tp: int
    fp: int
    fn: int
    ci: tuple[float, float] | None = None


@dataclass
class ByTypeTable:
    """Per-type P/R/F1 and support of one set, runs side by side (`taiyi leaderboard --by-type`)."""

    spec: object  # DatasetSpec
    runs: list[str]  # column headers
    rows: list[str]  # type / predicate / label keys, by support then name
    cells: dict[tuple[str, int], TypeCell]
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        kind = {"ner": "entity type", "re": "relation", "tc": "label"}.get(self.spec.task_type, "type")
        return f"{self.spec.display_name}: micro P/R/F1 per {kind}"

    @property
    def slug(self) -> str:
        return f"by_type_{self.spec.key}"

    def label(self, key: str) -> str:
        if key not in self.spec.labels:  # a model's label (an echoed query, say): never a type of the set
            return f"{key} [outside the label set]"
        name = self.spec.label_name(key)
        return key if name == key else f"{name} ({key})"


def by_type_table(
    spec, runs: Sequence[tuple[str, Sequence[dict[str, Sequence[int]]]]], *,
    n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED, warnings: list[str] | None = None,
) -> ByTypeTable:
    """Per-type table of `spec` from each run's per-unit per-type counts (`(header, [{type: [tp,
    fp, fn]} per unit])`): micro P/R/F1 over the run's units, support = gold items; intervals are
    the leaderboard's percentile bootstrap over units, of the type's F1."""
    from taiyi_bench.harness.verdicts import per_type_counts, per_type_table

    totals = [per_type_table(per_type_counts({"per_type": u} for u in units), spec) for _, units in runs]
    keys = sorted({k for table in totals for k in table},
                  key=lambda k: (-max(table.get(k, {}).get("support", 0) for table in totals), k))
    cells: dict[tuple[str, int], TypeCell] = {}
    for index, ((_, units), table) in enumerate(zip(runs, totals, strict=True)):
        for type_index, key in enumerate(keys):
            row = table.get(key)
            if row is None or not (row["tp"] or row["fp"] or row["fn"]):
                continue  # nothing of this type in the run's gold or predictions: no score, not 0
            interval = None
            if units and not too_few_units(len(units)):
                values = np.asarray([list(u.get(key, (0, 0, 0))) for u in units], dtype=np.int64).reshape(-1, 3)
                # One stream per (set, type), the same for every column: paired across runs like the sets.
                type_seed = np.random.SeedSequence(seed, spawn_key=(PAPER_ORDER.index(spec.key), 1 + type_index))
                boot = bootstrap_ci(Units(tuple(map(str, range(len(units)))), values, "f1"), n_resamples, seed=type_seed)
                interval = (boot.low, boot.high)
            cells[(key, index)] = TypeCell(row["precision"], row["recall"], row["f1"], int(row["support"]),
                                           int(row["tp"]), int(row["fp"]), int(row["fn"]), interval)
    empty = [k for k in keys if not any((k, index) in cells for index in range(len(runs)))]
    keys = [k for k in keys if k not in empty]
    notes = ["P/R/F1 in percent, micro over the run's units; support = gold items of the type; a type that was only "
             "predicted (a wrong type, a label outside the set, marked so) has support 0; — : nothing of the type in that run."]
    if empty:
        notes.append(f"No gold item and no prediction in any run: {', '.join(spec.label_name(k) for k in empty)}.")
    notes.append(CI_NOTE.format(n=n_resamples, seed=seed).replace("; averages resample every set", "") + " Interval of F1.")
    few = [f"{header}: {len(units)} units" for header, units in runs if units and too_few_units(len(units))]
    if few:
        notes.append(f"No interval ({', '.join(few)}). {FEW_UNITS_NOTE}")
    return ByTypeTable(spec, [header for header, _ in runs], keys, cells, notes, warnings if warnings is not None else [])


def leaderboard_by_type(
    paths: Sequence[str | os.PathLike], task: str, *, n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED
) -> ByTypeTable:
    """`taiyi leaderboard --by-type TASK`: every run under `paths` with samples for the set."""
    from taiyi_bench.harness.apps.run_views import run_views
    from taiyi_bench.harness.registry import get_spec

    spec = get_spec(task)
    if spec.task_type == "qa":
        raise ValueError(f"{spec.task_name} is multiple choice: it has no entity types, relations or labels to break down")
    warnings: list[str] = []
    views = [v for v in run_views(paths, warnings, tasks=[spec.key]) if spec.key in v.tasks]
    if not views:
        warnings.append(f"no run with a samples file for {spec.task_name} under {', '.join(map(str, paths))}")
    runs = [(v.label, [u.verdicts.get("per_type", {}) for u in v.tasks[spec.key].units.values()]) for v in views]
    return by_type_table(spec, runs, n_resamples=n_resamples, seed=seed, warnings=list(dict.fromkeys(warnings)))


# The grounding cell of a run that predicted no mention or argument at all: no rate exists.
NOTHING_PREDICTED = "n/a: nothing predicted"


def _checked_mentions(samples: Path | None) -> int | None:
    """How many predicted mentions/arguments a samples file's units checked for grounding (the
    second of each unit's `ungrounded_rate` [ungrounded, checked]); None when it cannot say."""
    if samples is None:
        return None
    from taiyi_bench.harness.results_io import iter_jsonl

    checked = 0
    try:
        for _, record in iter_jsonl(samples, lambda _line, _why: None):
            pair = record.get("ungrounded_rate") if isinstance(record, dict) else None
            if isinstance(pair, list) and len(pair) == 2 and isinstance(pair[1], (int, float)):
                checked += int(pair[1])
    except (OSError, UnicodeDecodeError):
        return None
    return checked


def grounding_table(run_columns: Sequence[RunColumn]) -> Table | None:
    """The share of predicted mentions/arguments found nowhere in their unit's text
    (`ungrounded_rate`), per NER/RE set and run, as a leaderboard table; None when no run has it.

    A run that predicted nothing has no such share (0 of 0): its cell is missing and marked
    "n/a: nothing predicted", never 0.0, which would read as "made nothing up". Files written
    before the rate became NaN there say 0.0; their samples tell the two apart."""
    from taiyi_bench.harness.apps.leaderboard.table import Cell
    from taiyi_bench.harness.results_io import read_results

    cache: dict[Path, dict] = {}
    columns: list[Column] = []
    for run_column in run_columns:
        cells: dict[str, Cell] = {}
        for key, result in run_column.results.items():
            path = result.run.path
            if path not in cache:
                try:
                    cache[path] = read_results(path).get("results", {})
                except (OSError, ValueError):
                    cache[path] = {}
            value = (cache[path].get(result.task) or {}).get(f"ungrounded_rate,{result.filter_name}")
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            if math.isnan(value) or (value == 0 and _checked_mentions(result.samples_path) == 0):
                cells[key] = Cell(None, flag=NOTHING_PREDICTED)
            elif math.isfinite(value):
                cells[key] = Cell(float(value) * 100)
        # Every run column of the main table, in its order, even one without a rate (all missing):
        # the two tables are read side by side.
        columns.append(Column(key=run_column.column.key, header=run_column.column.header, kind="run", cells=cells,
                              provenance=["as in the leaderboard"], partial=run_column.column.partial))
    if not any(column.cells for column in columns):
        return None
    notes = ["Percent of the predicted entity mentions (NER) and relation arguments (RE) that occur nowhere in their "
             "unit's text after the scorer's normalisation: predictions the model made up. Lower is better; TC and QA "
             "have no such rate (shown as missing)."]
    if any(cell.flag == NOTHING_PREDICTED for column in columns for cell in column.cells.values()):
        notes.append(f"Cells marked ({NOTHING_PREDICTED}): the run predicted no mention or argument on the set, so "
                     "there is no share to give (0 of 0), not a rate of 0.")
    return Table(title="taiyi-bench: ungrounded predictions", slug="leaderboard_grounding", columns=columns, notes=notes,
                 warnings=[], caption="ungrounded_rate, percent of predicted mentions/arguments (lower is better).")


def leaderboard_grounding(
    paths: Sequence[str | os.PathLike], *, include_partial: bool = False,
    partial_shown_under: Sequence[str | os.PathLike] = (),
) -> Table | None:
    """The grounding table of the runs `taiyi leaderboard` shows (None when none has a rate): the
    same columns as the main table, the reference slices (`partial_shown_under`) included."""
    collection = collect_runs(paths)
    columns = build_run_columns(collection, include_partial=include_partial, include_budget_cut=True,
                                include_incomplete=True, warnings=[], partial_shown_under=partial_shown_under)
    return grounding_table(columns)


def _figure(value: object) -> str:
    """A measured number to three significant digits, never in exponent form; the missing marker
    for anything that is not a finite number."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        return MISSING
    decimals = max(0, 2 - math.floor(math.log10(abs(value)))) if value else 0
    return f"{value:,.{decimals}f}"


def _cost_cells(summary: dict | None) -> list[str]:
    """units, generated tokens per unit, seconds per unit, tokens per second, estimated USD."""
    if summary is None:
        return [MISSING] * (len(COST_HEADERS) - 2)
    units, generated = summary.get("units"), summary.get("generated_tokens")
    counted = isinstance(units, int) and not isinstance(units, bool)
    per_unit = generated / units if isinstance(generated, (int, float)) and counted and units > 0 else None
    return [f"{units:,}" if counted else MISSING, _figure(per_unit), _figure(summary.get("seconds_per_unit")),
            _figure(summary.get("generated_tokens_per_second")), _figure(summary.get("estimated_usd"))]


def cost_table(
    paths: Sequence[str | os.PathLike], *, include_partial: bool = False,
    partial_shown_under: Sequence[str | os.PathLike] = (),
) -> CostTable:
    """Per run column of the leaderboard (same runs, same order) and set: what the run recorded of
    its cost (`taiyi_bench.harness.lmeval.cost`). A run written before runs recorded it is one row of
    missing markers, said once in a note."""
    from taiyi_bench.harness.lmeval.cost import TIME_NOTE

    run_columns = build_run_columns(collect_runs(paths), include_partial=include_partial, include_budget_cut=True,
                                    include_incomplete=True, warnings=[], partial_shown_under=partial_shown_under)
    rows, legend, notes = [], [], []
    unrecorded = False  # a run without any cost record
    for number, rc in enumerate(run_columns, start=1):
        run_id = f"R{number}"
        legend.append(f"{run_id} = {rc.column.display_header}")
        costs = {key: (result.run.cost or {}).get(result.task) for key, result in rc.results.items()}
        if not any(costs.values()):
            unrecorded = True
            rows.append([run_id, "all sets", *_cost_cells(None)])
            continue
        rows += [[run_id, REGISTRY[key].display_name, *_cost_cells(costs[key])] for key in PAPER_ORDER if key in costs]
        sources = sorted({str(cost.get("tokenizer")) for cost in costs.values() if cost})
        prices = {tuple(sorted(r.run.price.items())) for r in rc.results.values() if r.run.price}
        priced = "; ".join(
            f"USD at {price.get('input_usd_per_million')} input / {price.get('output_usd_per_million')} output per million "
            f"tokens (price table of {price.get('date')}, {price.get('source')})" for price in map(dict, sorted(prices)))
        notes.append(f"{run_id}: tokens from {' + '.join(sources)}" + (f"; {priced}" if priced else "") + ".")
    notes.insert(0, "Per run and set, as the run recorded it (taiyi_cost in its results file): the units evaluated, "
                    "generated tokens per unit, seconds per unit and generated tokens per second, and for an API config "
                    "with a price table the estimated USD. Seconds: " + TIME_NOTE + ".")
    missing = [f"{MISSING} in every measure: the run was written before runs recorded their cost"] if unrecorded else []
    if any(MISSING in row[3:] for row in rows if row[2] != MISSING):
        missing.append(f"{MISSING} in one measure: the backend exposed no token count, or no price table priced the run")
    notes += ["; ".join(missing) + "."] if missing else []
    return CostTable(rows, legend, notes)
