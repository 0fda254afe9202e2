"""Load time of every evaluation split (and, with --all, every split) on a data directory.

    python benchmarks/bench_load.py [DATA_DIR] [--all] [--repeat N]

DATA_DIR defaults to ../shared/data beside the repository. "cold" clears the in-process cache first
(a first untimed load warms the OS page cache); "cached" is a repeated `load_split` of unchanged files.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from _timing import make_parser, timed
from rich.console import Console
from rich.table import Table

from taiyi_bench.harness.errors import DataNotFoundError
from taiyi_bench.harness.loading import clear_cache, load_split
from taiyi_bench.harness.registry import iter_specs

REPO_ROOT = Path(__file__).resolve().parents[1]


def bench(data_dir: Path, all_splits: bool, repeat: int) -> Table:
    table = Table(title=f"load_split timings on {data_dir} (median of {repeat})", title_justify="left")
    for column in ("set", "split", "units", "cold ms", "cached ms", "files MB"):
        table.add_column(column, justify="left" if column in ("set", "split") else "right")
    total_cold = 0.0
    for base in iter_specs():
        for variant, spec in base.forms():
            name = spec.display_name + (f" ({variant})" if variant else "")
            for split in spec.files if all_splits else (spec.eval_split,):
                def load(spec=spec, split=split):
                    return load_split(spec, split, data_dir)

                try:
                    load()  # warm the OS page cache so that "cold" measures parsing, not the disk
                except DataNotFoundError:
                    table.add_row(name, split, "missing", "", "", "")
                    continue
                cold_s, loaded = timed(load, repeat, before=clear_cache, stat=statistics.median)
                cached_s, _ = timed(load, max(repeat, 20), stat=statistics.median)
                total_cold += cold_s
                size = sum(p.stat().st_size for p in loaded.paths) / 1e6
                table.add_row(name, split, f"{len(loaded):,}", f"{cold_s * 1e3:.1f}", f"{cached_s * 1e3:.3f}", f"{size:.1f}")
    table.caption = f"total cold: {total_cold:.2f} s"
    return table


def main(argv: list[str] | None = None) -> None:
    parser = make_parser(__doc__)
    parser.add_argument("data_dir", nargs="?", type=Path, default=REPO_ROOT.parent / "shared" / "data")
    parser.add_argument("--all", action="store_true", help="every split, not only the evaluation splits")
    parser.add_argument("--repeat", type=int, default=3, help="timed repetitions (median reported)")
    args = parser.parse_args(argv)
    Console().print(bench(args.data_dir, args.all, args.repeat))


if __name__ == "__main__":
    main()
