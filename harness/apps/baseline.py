"""`taiyi baseline ...`: the baselines' own commands (`taiyi_bench.baselines.cli`), given what they need from
the applications: `taiyi baseline run` runs lm-eval, then scores the run and writes its report,
with one line per step on the terminal. Lives here, not in `baselines`, so that the baselines
never import the applications (tests/test_layers.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from taiyi_bench.baselines import cli


def register(subparsers: argparse._SubParsersAction) -> None:
    cli.register(subparsers, run_steps=run_steps)


class _StepFailed(Exception):
    pass


def run_steps(invocation: Any, skipped: dict[str, str]) -> int:
    """lm-eval, then the per-type scores and the report: one line per step on the terminal, the
    full output of lm-eval (and everything else) in a log file in the run folder."""
    from rich.text import Text

    from taiyi_bench.baselines import llm_run
    from taiyi_bench.harness.apps.console import LM_EVAL_PROGRESS, StepConsole, headline_summary
    from taiyi_bench.harness.apps.report import build_report
    from taiyi_bench.harness.lmeval.cost import add_price
    from taiyi_bench.harness.results_io import amend_results, new_date_id, newest_results

    log_path = Path(invocation.output_path) / f"run_{new_date_id()}.log"
    with StepConsole(log_path) as console:
        console.print(Text(f"$ {invocation.shell()}"))  # the exact command: a recipe to reproduce the run
        console.print(Text(f"full log: {log_path}", style="dim"))
        status = 0
        try:
            with console.step("evaluate", progress=LM_EVAL_PROGRESS):
                status = llm_run.execute(invocation)
                newest = newest_results(invocation.output_path) if status == 0 else None
                if newest is None:
                    raise _StepFailed
            with console.step("report"):
                amend_results(newest, skipped)  # the skipped sets and per-type scores, stored with the run
                add_price(newest, invocation.price)  # API configs: the token counts at the config's price
                report = build_report([newest], newest.parent / "report")
        except _StepFailed:
            print(f"taiyi baseline: error: lm_eval exited with status {status} and no results file; "
                  f"its output is in {log_path}", file=sys.stderr)
            return status or 1
        console.console.print(headline_summary([newest], title="Headline (micro-F1 / accuracy, percent)"))
        console.print(f"results: {newest}")
        console.print(f"report:  {report}")
    return 0
