"""taiyi-bench core: dataset registry, readers, prompts, parsers, scorers, leaderboard.

Kept import-light: the startup hook (`taiyi_bench_lm_eval.pth`) imports
`taiyi_bench.harness.lmeval.plugin` in every Python process of the environment.
"""

__version__ = "0.1.0"
