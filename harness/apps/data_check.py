"""`taiyi data check [DIR]` and `taiyi data list`: what a data directory holds, checked against the registry.
(`taiyi data fetch` fills one: harness/apps/data_fetch.py.)

For every registered set and split: found or missing, the counts the readers produce against the
registry's verified counts (units, gold items, per-type/label counts where the registry has them),
a short sha256 of each file, and, for a missing set, where to get it. Exit status: 0 when every
present split loads and matches; 1 on a count mismatch or a format error; missing sets fail only
with --strict.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from taiyi_bench.harness.errors import DataFormatError, DataNotFoundError
from taiyi_bench.harness.fetch import fetchability
from taiyi_bench.harness.loading import compare_counts, load_split, observed_counts, split_files
from taiyi_bench.harness.paths import DATA_DIR_ENV, SAMPLES_DIR, resolve_data_dir
from taiyi_bench.harness.provenance import check_completeness, file_sha256
from taiyi_bench.harness.registry import TASK_TYPE_NAMES, DatasetSpec, SplitCounts, iter_specs

CHECKSUM_CHARS = 12


@dataclass
class FileInfo:
    path: Path
    sha256: str  # first CHECKSUM_CHARS hex digits
    size: int


@dataclass
class SplitReport:
    """One split of one set (`variant` names a non-default file variant, e.g. "5 options")."""

    split: str
    variant: str
    # ok | mismatch | modified (official counts, other checksum) | error | missing | unchecked (no
    # expected count) | sample (bundled samples)
    status: str
    is_eval: bool
    observed: SplitCounts | None = None
    expected: SplitCounts | None = None
    problems: list[str] = field(default_factory=list)
    files: list[FileInfo] = field(default_factory=list)
    seconds: float = 0.0
    message: str = ""

    @property
    def label(self) -> str:
        return f"{self.split} ({self.variant})" if self.variant else self.split


@dataclass
class SetReport:
    spec: DatasetSpec
    splits: list[SplitReport]

    @property
    def found(self) -> bool:
        """The set counts as found when its evaluation split (default variant) is present."""
        return any(s.is_eval and not s.variant and s.status != "missing" for s in self.splits)

    @property
    def failed(self) -> bool:
        return any(s.status in ("mismatch", "modified", "error") for s in self.splits)

    @property
    def status(self) -> str:
        if self.failed:
            statuses = {s.status for s in self.splits}
            return next(status for status in ("error", "mismatch", "modified") if status in statuses)
        if self.found:
            return "found"
        return "incomplete" if any(s.status != "missing" for s in self.splits) else "missing"


@dataclass
class DataReport:
    root: Path
    source: str  # "data" | "samples"
    sets: list[SetReport]

    def exit_code(self, strict: bool = False) -> int:
        return int(any(s.failed or (strict and not s.found) for s in self.sets))

    def to_dict(self) -> dict[str, Any]:
        def counts(c: SplitCounts | None) -> dict[str, Any] | None:
            return None if c is None else {"units": c.units, "gold": c.gold, "extra": dict(c.extra)}

        return {
            "root": str(self.root),
            "source": self.source,
            "sets": [
                {
                    "key": s.spec.key, "task": s.spec.task_name, "status": s.status,
                    "how_to_get": s.spec.how_to_get if not s.found else "",
                    "splits": [
                        {
                            "split": r.split, "variant": r.variant, "status": r.status, "eval": r.is_eval,
                            "observed": counts(r.observed), "expected": counts(r.expected), "problems": r.problems,
                            "files": [{"path": str(f.path), "sha256": f.sha256, "size": f.size} for f in r.files],
                            "seconds": round(r.seconds, 3), "message": r.message,
                        }
                        for r in s.splits
                    ],
                }
                for s in self.sets
            ],
        }


def _checksum(path: Path, cache: dict[Path, FileInfo]) -> FileInfo:
    if path not in cache:
        cache[path] = FileInfo(path, file_sha256(path)[:CHECKSUM_CHARS], path.stat().st_size)
    return cache[path]


def _check_split(
    spec: DatasetSpec, split: str, variant: str, root: Path, samples: bool, sums: dict[Path, FileInfo]
) -> SplitReport:
    report = SplitReport(split, variant, "missing", is_eval=split == spec.eval_split)
    try:
        paths = split_files(spec, split, root)
    except DataNotFoundError:
        names = spec.files[split]
        names = [names] if isinstance(names, str) else list(names)
        wanted = [f"{spec.data_subdir}/{name}" for name in names]
        report.message = ("missing " + ", ".join(wanted)) if len(wanted) == 1 or spec.file_policy == "all" \
            else "missing (one of) " + " or ".join(wanted)
        return report
    except OSError as err:  # a folder that cannot be searched
        report.status, report.message = "error", f"cannot read {err.filename or spec.data_subdir}: {err.strerror or err}"
        return report
    started = time.perf_counter()
    try:
        report.files = [_checksum(path, sums) for path in paths]
        loaded = load_split(spec, split, root)
    except DataFormatError as err:
        report.status, report.message = "error", str(err)
        return report
    except OSError as err:  # unreadable file or folder: this row says so, the report goes on
        report.status, report.message = "error", f"cannot read {err.filename or spec.data_subdir}: {err.strerror or err}"
        return report
    report.seconds = time.perf_counter() - started
    report.observed = observed_counts(loaded.spec, loaded.examples)
    # Sample counts are whatever the team wrote; only real data is held to the registry.
    report.expected = None if samples else spec.expected.get(split)
    report.problems = compare_counts(report.expected, report.observed)
    if not samples and not report.problems:
        # Right counts, other bytes: a run on it would be marked "modified data"; say so here first.
        check = check_completeness(spec, split, data_source="data", eval_units=report.observed.units,
                                   files=[(path, root) for path in paths])
        if check.status == "modified data":
            report.problems = [f"{problem}; results on it are marked 'modified data'" for problem in check.problems]
            report.status = "modified"
            return report
    if report.problems:
        report.status = "mismatch"
    elif samples:
        report.status = "sample"
    else:
        report.status = "ok" if report.expected is not None else "unchecked"
    return report


def check_data_dir(data_dir: str | Path | None = None) -> DataReport:
    """Check every registered set under `data_dir` (default $TAIYI_DATA_DIR, else the bundled samples)."""
    chosen = resolve_data_dir(data_dir)
    root, source = (chosen, "data") if chosen is not None else (SAMPLES_DIR, "samples")
    if source == "data" and not root.is_dir():
        raise DataNotFoundError(f"data directory {root} does not exist")
    sums: dict[Path, FileInfo] = {}
    # Per set its default form, then each variant the registry lists.
    sets = [SetReport(base, [_check_split(spec, split, variant, root, source == "samples", sums)
                             for variant, spec in base.forms() for split in spec.files]) for base in iter_specs()]
    return DataReport(root, source, sets)


_STYLE = {"ok": "green", "unchecked": "cyan", "sample": "cyan", "mismatch": "bold red", "modified": "bold red", "error": "bold red", "missing": "yellow",
          "found": "green", "incomplete": "yellow"}


def _count_cell(observed: int | None, expected: int | None) -> Text:
    if observed is None:
        return Text("-")
    if expected is None:
        return Text(f"{observed:,}")
    if observed == expected:
        return Text(f"{observed:,} ✓", style="green")
    return Text(f"{observed:,} ✗ (expected {expected:,})", style="bold red")


def _extra_cell(report: SplitReport) -> Text:
    observed = report.observed
    if observed is None:
        return Text("")
    expected = report.expected.extra if report.expected is not None else {}
    text = Text()
    if expected:
        for key, count in expected.items():
            got = observed.extra.get(key, 0)
            text.append(f"{key} {got:,}" + (" ✓" if got == count else f" ✗({count:,})"), style="green" if got == count else "bold red")
            text.append("  ")
    elif len(observed.extra) <= 12:
        text.append("  ".join(f"{k} {v:,}" for k, v in sorted(observed.extra.items(), key=lambda kv: -kv[1])))
    else:
        text.append(f"{len(observed.extra)} distinct labels")
    return text


def _files_cell(split: SplitReport, spec: DatasetSpec) -> str:
    # Relative to the set's folder: a set's variant forms may share base names in subfolders.
    return "\n".join(f"{f.path.as_posix().split(spec.data_subdir + '/', 1)[-1]} {f.sha256}" for f in split.files)


def _set_table(report: SetReport) -> Table:
    spec = report.spec
    title = Text.assemble((spec.display_name, "bold"), f"  {spec.task_name}  ", (report.status.upper(), _STYLE.get(report.status, "")))
    table = Table(title=title, title_justify="left", expand=False, show_lines=False)
    for name in ("split", "status", "units", "gold", "per type / label", "files (sha256)", "load s"):
        table.add_column(name, overflow="fold")
    for r in report.splits:
        split_label = Text(r.label + (" *" if r.is_eval else ""), style="bold" if r.is_eval else "")
        if r.status == "missing":
            table.add_row(split_label, Text("missing", style="yellow"), "", "", "", Text(r.message, style="dim"), "")
            continue
        if r.status == "error":
            table.add_row(split_label, Text("FORMAT ERROR", style="bold red"), "", "", Text(r.message, style="red"),
                          _files_cell(r, report.spec), "")
            continue
        expected = r.expected
        table.add_row(
            split_label, Text(r.status, style=_STYLE[r.status]),
            _count_cell(r.observed.units, expected.units if expected else None),
            _count_cell(r.observed.gold, expected.gold if expected else None), _extra_cell(r),
            _files_cell(r, report.spec), f"{r.seconds:.2f}",
        )
    return table


def render(report: DataReport, console: Console) -> None:
    if report.source == "samples":
        console.print(Panel(
            f"No data directory given (argument or ${DATA_DIR_ENV}): checking the BUNDLED SAMPLES in {report.root}.\n"
            "These are short examples written by the team so that commands run out of the box; they are NOT the\n"
            "benchmark and their counts are not compared with the registry. Pass DIR or set "
            f"${DATA_DIR_ENV} to check real data.",
            title="SAMPLES", style="bold yellow",
        ))
    else:
        console.print(f"Data directory: [bold]{report.root}[/]  (* = evaluation split)")
    for set_report in report.sets:
        console.print(_set_table(set_report))
        for split in set_report.splits:
            if split.status == "modified":
                for problem in split.problems:
                    console.print(Text(f"  {split.label}: {problem}", style="bold red"), soft_wrap=True)
        if not set_report.found:
            console.print(Text(f"  How to get it: {set_report.spec.how_to_get}", style="yellow"))
            console.print(Text(f"  Source: {set_report.spec.source}  License: {set_report.spec.license}", style="dim"))
        console.print()
    summary = Table("set", "task", "lang", "eval split", "status", "units", title="Summary", title_justify="left")
    for s in report.sets:
        eval_report = next((r for r in s.splits if r.is_eval and not r.variant), None)
        units = _count_cell(eval_report.observed.units if eval_report and eval_report.observed else None,
                            eval_report.expected.units if eval_report and eval_report.expected else None)
        summary.add_row(s.spec.display_name, s.spec.task_name, s.spec.language, s.spec.eval_split,
                        Text(s.status, style=_STYLE.get(s.status, "")), units)
    console.print(summary)
    found = sum(s.found for s in report.sets)
    failed = [s.spec.display_name for s in report.sets if s.failed]
    missing = [s.spec.display_name for s in report.sets if not s.found]
    line = f"{found}/{len(report.sets)} sets found"
    line += f"; FAILED: {', '.join(failed)}" if failed else ("; every present split loads" +
                                                            (" and matches the registry" if report.source == "data" else ""))
    if missing:
        line += f"; missing: {', '.join(missing)}"
    console.print(Text(line, style="bold red" if failed else "bold"))


def render_list(console: Console) -> None:
    table = Table(title="Registered test sets (taiyi-bench)", title_justify="left")
    for name in ("task", "set", "lang", "type", "eval split", "unit", "metric", "labels", "folder", "licence", "fetchable"):
        table.add_column(name, overflow="fold", no_wrap=name in ("task", "fetchable"))
    for spec in iter_specs():
        labels = ", ".join(spec.label_name(label) for label in spec.labels)
        if len(spec.labels) > 6:
            labels = f"{len(spec.labels)}: " + ", ".join(spec.label_name(label) for label in spec.labels[:4]) + ", ..."
        for value, variant in spec.variants.items():
            if variant.labels:
                labels += f" ({variant.labels[0]}-{variant.labels[-1]} with {spec.variant_option}={value})"
        kind = TASK_TYPE_NAMES[spec.task_type] + (" multi-label" if spec.multi_label else "")
        table.add_row(spec.task_name, spec.display_name, spec.language, kind, spec.eval_split, spec.unit,
                      "micro-F1" if spec.metric == "f1" else "accuracy", labels, spec.data_subdir, spec.license,
                      fetchability(spec))
    console.print(table)
    console.print("`taiyi data fetch --to DIR` gets the fetchable sets (\"unverified\": files with no sha256 in the "
                  "registry, fetched only with --allow-unverified); `taiyi data list --sources` shows where from.")


def render_sources(console: Console) -> None:
    """Every source `taiyi data fetch` knows: per set and source, the URL, files, licence and
    which files have a registry sha256 (verified) or not."""
    table = Table(title="Where `taiyi data fetch` gets each set (sources in the order tried)", title_justify="left")
    for name in ("set", "source", "url", "files -> folder", "licence", "how"):
        table.add_column(name, overflow="fold")
    for spec in iter_specs():
        for source in spec.sources:
            files = "\n".join(
                f"{member} -> {spec.data_subdir}/{name}" + ("" if name in spec.sha256 else " (no sha256)")
                for member, name in source.files.items()
            )
            how = "manual (registration)" if source.manual else (f"{source.archive} archive" if source.archive else "files")
            table.add_row(spec.display_name, source.name, source.url, files, source.license,
                          how + (f"; {source.note}" if source.note else ""))
        if not spec.sources:
            table.add_row(spec.display_name, "-", spec.source, spec.how_to_get, spec.license, "manual")
    console.print(table)


def _console() -> Console:
    console = Console()
    # Piped output (logs, CI) would wrap at 80 columns; tables stay readable at 160.
    return console if console.is_terminal else Console(width=160)


def _cmd_check(args: argparse.Namespace) -> int:
    console = _console()
    try:
        report = check_data_dir(args.dir)
    except DataNotFoundError as err:
        console.print(Text(str(err), style="bold red"))
        return 2
    render(report, console)
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        console.print(f"report written to {args.json}")
    return report.exit_code(strict=args.strict)


def _cmd_list(args: argparse.Namespace) -> int:
    (render_sources if args.sources else render_list)(_console())
    return 0


def register(subparsers: argparse._SubParsersAction) -> argparse._SubParsersAction:
    """Add `taiyi data {check,list}`; returns the actions, to which `taiyi_bench.harness.apps.data_fetch`
    (which registers `taiyi data` and imports this module, not the reverse) adds `fetch`."""
    data = subparsers.add_parser("data", help="fetch the sets, check a data directory against the registry, list the sets")
    actions = data.add_subparsers(dest="data_command", metavar="ACTION")
    check = actions.add_parser(
        "check",
        help="what a data directory holds: found/missing, counts vs registry, checksums, where to get missing sets",
        description=__doc__.splitlines()[0],
    )
    check.add_argument("dir", nargs="?", default=None,
                       help=f"data directory (default ${DATA_DIR_ENV}, else the bundled samples)")
    check.add_argument("--strict", action="store_true", help="exit non-zero when any set is missing too")
    check.add_argument("--json", metavar="PATH", help="also write the report as JSON")
    check.set_defaults(func=_cmd_check)
    listing = actions.add_parser("list", help="print the registry: name, language, type, split, unit, metric, licence, fetchable")
    listing.add_argument("--sources", action="store_true", help="print where `taiyi data fetch` gets each set instead")
    listing.set_defaults(func=_cmd_list)

    def _help(args: argparse.Namespace) -> int:
        data.print_help()
        return 2

    data.set_defaults(func=_help)
    return actions
