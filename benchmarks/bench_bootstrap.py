"""Bootstrap timing: 95% intervals and the paired test on synthetic per-unit values.

Times `bootstrap_ci` (micro-F1 from `[tp, fp, fn]` per unit, and accuracy from 0/1) and
`paired_bootstrap` for a given number of units and resamples (default: 1000 resamples on 5,000
units, about the size of the largest sets: BC5CDR's 4,797 sentences, CMeEE's 5,000). Each
timing is the best of `--repeat` runs. Usage:

    python benchmarks/bench_bootstrap.py [--units 5000] [--resamples 1000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from taiyi_bench.harness.apps.leaderboard.bootstrap import Units, bootstrap_ci, paired_bootstrap


def _best_of(repeat: int, fn: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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
        seconds = _best_of(args.repeat, fn)
        print(f"  {name:<34} {seconds * 1000:8.1f} ms")
    result = bootstrap_ci(f1_a, args.resamples, seed=0)
    print(f"  (micro-F1 {result.point * 100:.1f}, 95% CI [{result.low * 100:.1f}, {result.high * 100:.1f}])")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
