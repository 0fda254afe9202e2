"""`taiyi data fetch [SET ...] [--to DIR]`: get every set its licence allows, verified, in the
layout the readers expect, then run `taiyi data check` on the result.

Each set's sources are in the registry (`DatasetSpec.sources`, canonical release first, then
mirrors); harness/fetch.py downloads, resumes, verifies and places. A set whose licence needs
registration is not downloaded: fetch says where to get it, which files go where and what the
check will verify (and places a copy the user put in a `--mirror` folder). Exit status: 0 when
every set that could be fetched was and the check passes, 1 otherwise, 130 on Ctrl-C. An error
is one line, `taiyi data fetch: error: ...`, naming the set and the URL or file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn
from rich.text import Text

from taiyi_bench.harness.errors import ConfigError
from taiyi_bench.harness.fetch import MANIFEST, FetchAborted, Fetcher, SetResult, select_sets
from taiyi_bench.harness.local_models import CACHE_ENV, cache_root
from taiyi_bench.harness.paths import DATA_DIR_ENV, resolve_data_dir
from taiyi_bench.harness.registry import DatasetSpec

PROG = "taiyi data fetch"
EXIT_INTERRUPTED = 130


def _error(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 1


def _will_verify(spec: DatasetSpec) -> str:
    """What `taiyi data check` holds a manual set's files to, split by split."""
    parts = []
    for split, counts in spec.expected.items():
        line = f"{split} {counts.units:,} units ({spec.unit})" + (f", {counts.gold:,} gold" if counts.gold is not None else "")
        names = spec.files[split]
        sums = [f"{name} {spec.sha256[name][:12]}…" for name in ((names,) if isinstance(names, str) else names)
                if name in spec.sha256]
        parts.append(line + (f" (sha256 {', '.join(sums)})" if sums else ""))
    return "; ".join(parts) or "that each file loads"


def _report(result: SetResult, target: Path, console: Console) -> None:
    spec, folder = result.spec, target / result.spec.data_subdir
    name = spec.display_name
    if result.placed:
        console.print(f"{name}: placed {', '.join(result.placed)} in {folder} ({', '.join(result.sources)})")
    if result.present:
        console.print(f"{name}: already in place, sha256 verified: {', '.join(result.present)}")
    for path in result.replaced:
        console.print(Text(f"{name}: a different file was in the way, kept as {path}", style="yellow"))
    for file, digest in result.unverified.items():
        console.print(Text(f"{name}: {file} has no sha256 in the registry; accepted (--allow-unverified) with "
                           f"sha256 {digest}, recorded in {target / MANIFEST}", style="yellow"), soft_wrap=True)
    if result.refused:
        console.print(Text(f"{name}: not fetched, the registry has no sha256 for {', '.join(result.refused)}; "
                           "--allow-unverified fetches them and records the sha256 seen", style="yellow"), soft_wrap=True)
    if result.manual_missing:
        manual = next(source for source in spec.sources if source.manual)
        console.print(Text(f"{name}: not downloaded ({manual.license}). Get it at {manual.url}: {spec.how_to_get}\n"
                           f"  put {', '.join(result.manual_missing)} into {folder}/ (or the unpacked download in a "
                           f"folder given as --mirror); `taiyi data check` verifies {_will_verify(spec)}",
                           style="yellow"), soft_wrap=True)
    elif not spec.sources:
        console.print(Text(f"{name}: no source recorded; {spec.how_to_get}", style="yellow"), soft_wrap=True)


def _cmd_fetch(args: argparse.Namespace) -> int:
    from taiyi_bench.harness.apps.cli import refuse_unwritable
    from taiyi_bench.harness.apps.data_check import _console, check_data_dir, render

    console = _console()
    try:
        specs = select_sets(args.sets)
        target = resolve_data_dir(args.to)
        if target is None:
            raise ConfigError(f"say where the data goes: --to DIR, or set ${DATA_DIR_ENV}")
        cache = Path(args.cache).expanduser() if args.cache else cache_root()
        refuse_unwritable("--to", target, "folder")
        refuse_unwritable("--cache", cache, "folder")
        if args.source and not any(source.name == args.source for spec in specs for source in spec.sources):
            names = sorted({source.name for spec in specs for source in spec.sources})
            raise ConfigError(f"no selected set has a source named {args.source!r}; sources: {', '.join(names)}")
    except ConfigError as err:
        return _error(str(err))
    if args.source:
        specs = [spec for spec in specs if any(source.name == args.source for source in spec.sources)]

    progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                        console=console, transient=True, disable=not console.is_terminal)
    tasks: dict[str, int] = {}

    def show(label: str, done: int, total: int | None) -> None:
        if label not in tasks:
            tasks[label] = progress.add_task(label, total=total)
        progress.update(tasks[label], completed=done, total=total)
        if total is not None and done >= total:  # one bar per download in flight, not per file ever
            progress.remove_task(tasks.pop(label))

    fetcher = Fetcher(target, cache, mirrors=args.mirror or (), source=args.source,
                      allow_unverified=args.allow_unverified, timeout=args.timeout, progress=show)
    failed, done, nothing = [], 0, []
    with progress:
        for spec in specs:
            try:
                result = fetcher.fetch(spec)
            except FetchAborted as err:
                return _error(f"{spec.display_name}: {err}; stopped, nothing half-written is in {target}")
            except KeyboardInterrupt:
                resume = f" (the partial download {fetcher.partial} is resumed by the next run)" if fetcher.partial else ""
                print(f"{PROG}: interrupted while fetching {fetcher.current or spec.display_name}; nothing "
                      f"half-written is in {target}{resume}", file=sys.stderr)
                return EXIT_INTERRUPTED
            _report(result, target, progress.console)
            if result.error:
                failed.append(spec.display_name)
                _error(result.error)
            elif result.placed or result.present:
                done += 1
            else:
                nothing.append(spec.display_name)
    console.print(Text(f"fetched into {target} (cache {cache}): {done} of {len(specs)} sets in place"
                       + (f"; FAILED: {', '.join(failed)}" if failed else "")
                       + (f"; nothing fetched for {', '.join(nothing)} (see above)" if nothing else ""),
                       style="bold red" if failed else "bold"))
    if args.no_check:
        return 1 if failed else 0
    console.print(f"\n$ taiyi data check {target}")
    report = check_data_dir(target)
    render(report, console)
    return 1 if failed or report.exit_code() else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `taiyi data {check,list,fetch}`: check and list from `taiyi_bench.harness.apps.data_check`, then
    fetch. Registered from here because fetch uses the check, not the reverse (no import circle)."""
    from taiyi_bench.harness.apps.data_check import register as register_data

    fetch = register_data(subparsers).add_parser(
        "fetch", help="download the openly licensed sets, verified, into a data directory; say how to get the others",
        description=__doc__.split("\n\n")[0].replace("\n", " "),
    )
    fetch.add_argument("sets", nargs="*", metavar="SET",
                       help="set keys, task names, groups or display names (default: every set)")
    fetch.add_argument("--to", metavar="DIR", help=f"the data directory to fill (default ${DATA_DIR_ENV})")
    fetch.add_argument("--source", metavar="NAME", help="use only the sources of this name (see `taiyi data list --sources`)")
    fetch.add_argument("--mirror", metavar="URL_OR_DIR", action="append",
                       help="a base URL replacing each source's scheme and host (the path is kept), or a local folder "
                            "of downloaded files (as HOST/PATH, PATH, or an archive's file name; CBLUE sets as "
                            "<set folder>/<file>); repeat to try several in order. With a mirror the sources' own "
                            "hosts are not contacted")
    fetch.add_argument("--cache", metavar="DIR",
                       help=f"where downloads are kept and resumed (default ${CACHE_ENV}, else $XDG_CACHE_HOME/taiyi-bench, else ~/.cache/taiyi-bench)")
    fetch.add_argument("--allow-unverified", action="store_true",
                       help="also fetch files the registry has no sha256 for (CHEMDNER, official LitCovid CSVs, train "
                            f"splits), recording the sha256 seen in DIR/{MANIFEST}")
    fetch.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS", help="network timeout (default 60)")
    fetch.add_argument("--no-check", action="store_true", help="skip the `taiyi data check` at the end")
    fetch.set_defaults(func=_cmd_fetch)
