"""Bootstrap timing: 95% intervals and the paired test on synthetic per-unit values.

Times `bootstrap_ci` (micro-F1 from `[tp, fp, fn]` per unit, accuracy from 0/1) and `paired_bootstrap`,
best of `--repeat`. The default 5,000 units is about the largest sets (BC5CDR 4,797, CMeEE 5,000):

    python benchmarks/bench_bootstrap.py [--units 5000] [--resamples 1000] [--repeat 5]
"""

from __future__ import annotations

import numpy as np
from _timing import make_parser, timed

from taiyi_bench.harness.apps.leaderboard.bootstrap import Units, bootstrap_ci, paired_bootstrap


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
    parser.add_argument("--units", type=int, default=5000)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    n = args.units
    ids = tuple(f"test-{i}" for i in range(n))
    gold = rng.integers(0, 4, size=n)
    tp = rng.binomial(gold, 0.8)
    f1_a = Units(ids, np.stack([tp, rng.binomial(2, 0.1, size=n), gold - tp], axis=1), "f1")
    tp_b = rng.binomial(gold, 0.7)
    f1_b = Units(ids, np.stack([tp_b, rng.binomial(2, 0.15, size=n), gold - tp_b], axis=1), "f1")
    acc = Units(ids, (rng.random(n) < 0.6).astype(np.float64), "acc")

    cases = {
        "bootstrap_ci micro-F1 [tp,fp,fn]": lambda: bootstrap_ci(f1_a, args.resamples, seed=0),
        "bootstrap_ci accuracy 0/1": lambda: bootstrap_ci(acc, args.resamples, seed=0),
        "paired_bootstrap micro-F1": lambda: paired_bootstrap(f1_a, f1_b, args.resamples, seed=0),
    }
    print(f"{args.resamples} resamples on {n:,} units (best of {args.repeat})")
    for name, fn in cases.items():
        seconds, _ = timed(fn, args.repeat)
        print(f"  {name:<34} {seconds * 1000:8.1f} ms")
    result = bootstrap_ci(f1_a, args.resamples, seed=0)
    print(f"  (micro-F1 {result.point * 100:.1f}, 95% CI [{result.low * 100:.1f}, {result.high * 100:.1f}])")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
