"""Time of each `taiyi demo` step, default settings, from scratch (target: under 15 minutes on 2 CPU cores).

    python benchmarks/bench_demo.py [--out DIR] [--data-dir DIR]
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from _timing import make_parser, timed

from taiyi_bench.harness.apps.demo import Demo, DemoSettings


def main() -> None:
    parser = make_parser(__doc__)
    parser.add_argument("--out", type=Path, default=None, help="keep the demo's outputs here (default: a temporary folder)")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "demo"
        demo = Demo(DemoSettings(out=out, data_dir=args.data_dir, fresh=True), log=lambda _msg: None)
        total, _ = timed(demo.run)
    print(f"{'step':<16}{'seconds':>10}")
    for step, seconds in demo.timings.items():
        print(f"{step:<16}{seconds:>10.1f}")
    print(f"{'total':<16}{total:>10.1f}  ({'under' if total < 15 * 60 else 'OVER'} 15 minutes)")


if __name__ == "__main__":
    main()
