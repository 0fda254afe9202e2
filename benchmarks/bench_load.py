"""Load time of every evaluation split (and, with --all, every split) on a data directory.

    python benchmarks/bench_load.py [DATA_DIR] [--all] [--repeat N]

DATA_DIR defaults to ../shared/data beside the repository. "cold" clears the in-process cache
first (files may still sit in the OS page cache: the first pass warms it); "cached" is a
repeated `load_split` of unchanged files. Prints a rich table; missing splits are listed as such.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from taiyi_bench.harness.errors import DataNotFoundError
from taiyi_bench.harness.loading import clear_cache, load_split, spec_for
from taiyi_bench.harness.registry import iter_specs

REPO_ROOT = Path(__file__).resolve().parents[1]


def _time(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def bench(data_dir: Path, all_splits: bool, repeat: int) -> Table:
    table = Table(title=f"load_split timings on {data_dir} (median of {repeat})", title_justify="left")
    for column in ("set", "split", "units", "cold ms", "cached ms", "files MB"):
        table.add_column(column, justify="left" if column in ("set", "split") else "right")
    total_cold = 0.0
    for base in iter_specs():
        for options in (4, 5) if base.key == "medqa_mcmle" else (4,):
            spec = spec_for(base.key, mcmle_options=options)
            name = spec.display_name + (" (5 options)" if options == 5 else "")
            for split in spec.files if all_splits else (spec.eval_split,):
                def load(key=spec.key, split=split, options=options):
                    return load_split(key, split, data_dir, mcmle_options=options)

                def cold(load=load):
                    clear_cache()
                    return load()

                try:
                    load()  # warm the OS page cache so that "cold" measures parsing, not the disk
                except DataNotFoundError:
                    table.add_row(name, split, "missing", "", "", "")
                    continue
                cold_s, loaded = _time(cold, repeat)
                cached_s, _ = _time(load, max(repeat, 20))
                total_cold += cold_s
                size = sum(p.stat().st_size for p in loaded.paths) / 1e6
                table.add_row(name, split, f"{len(loaded):,}", f"{cold_s * 1e3:.1f}", f"{cached_s * 1e3:.3f}", f"{size:.1f}")
    table.caption = f"total cold: {total_cold:.2f} s"
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", nargs="?", type=Path, default=REPO_ROOT.parent / "shared" / "data")
    parser.add_argument("--all", action="store_true", help="every split, not only the evaluation splits")
    parser.add_argument("--repeat", type=int, default=3, help="timed repetitions (median reported)")
    args = parser.parse_args(argv)
    Console().print(bench(args.data_dir, args.all, args.repeat))


if __name__ == "__main__":
    main()
