"""`taiyi leaderboard`: render runs and published numbers as tables and plots.

Collect lm-eval results files (results_*.json) below RESULTS_DIR and render the 13-set leaderboard
with the published numbers, as a terminal table and as files in --out. Each variant of a run
(few-shot K, a set's variant, prompt format, budget, ...) is its own column. Runs named as
RESULTS_DIR are shown even when partial (on the bundled samples or with --limit), marked; of the
default folders' runs, partial ones are left out unless --include-partial.

    taiyi leaderboard --paper                 # Table A and Table B from results/published
    taiyi leaderboard --compare RUN           # a run's published variant next to the published numbers
    taiyi leaderboard --paired RUN_A RUN_B    # paired bootstrap test per set
    taiyi leaderboard --by-type TASK [RESULTS_DIR ...]   # P/R/F1 per entity type, relation or label
    taiyi leaderboard --cost                  # also what each run cost: tokens, seconds, USD per set
    taiyi leaderboard --untouched-only        # fine-tuned runs without the units their training data holds
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from taiyi_bench.harness.apps.cli import add_bootstrap_options, errors_in_one_line

DEFAULT_RUNS_DIR = Path("results") / "runs"
DEFAULT_OUT_DIR = Path("results") / "leaderboard"
# The committed reference runs (`taiyi reference`): shown by default, their slices marked [slice of 50].
REFERENCE_DIR = Path("results") / "reference"


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "leaderboard",
        help="render run results and published numbers (tables, plots, paper tables, comparisons)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("results_dirs", nargs="*", metavar="RESULTS_DIR",
                        help=f"folders (searched recursively) or results_*.json files; default {DEFAULT_RUNS_DIR}")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT_DIR, help=f"output folder (default {DEFAULT_OUT_DIR})")
    parser.add_argument("--formats", default="md,csv,tex,html,png,svg",
                        help="comma-separated: md,csv,tex,html,png,svg (default all); 'none' prints only")
    parser.add_argument("--include-partial", action="store_true",
                        help="also show partial runs found in the default folders (bundled samples, a limit; marked, in their "
                             "own columns); runs named as RESULTS_DIR are always shown")
    parser.add_argument("--include-budget-cut", action="store_true",
                        help="count cells whose generation budget was cut (marked 'budget cut') in the averages")
    parser.add_argument("--include-incomplete", action="store_true",
                        help="count cells read from data that is not the official split (marked 'incomplete' or "
                             "'modified data') in the averages")
    parser.add_argument("--ci", action="store_true",
                        help="95%% bootstrap intervals from the samples_*.jsonl files (lm_eval --log_samples)")
    add_bootstrap_options(parser)
    parser.add_argument("--untouched-only", action="store_true",
                        help="recompute each fine-tuned run's cells (and intervals) from its samples without the "
                             "evaluation units its fine-tuning data holds (its contamination report); column marked "
                             "[untouched units only]")
    parser.add_argument("--cost", action="store_true",
                        help="also a table of what each run cost per set: generated tokens and seconds per unit, "
                             "tokens per second, estimated USD for priced API runs")
    parser.add_argument("--published", default="A",
                        help="published columns to show: A, B, all, none, or e.g. A:taiyi1,B:taiyi2 (default A)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--paper", action="store_true",
                      help="regenerate Table A (Taiyi paper) and Table B (Taiyi 2 README) from results/published")
    mode.add_argument("--compare", metavar="RUN",
                      help="a run (results file or folder) next to published numbers, with deltas; only its variant "
                           "matching theirs (zero-shot, default set variants, own format, no budget cut) is compared")
    mode.add_argument("--paired", nargs=2, metavar=("RUN_A", "RUN_B"), help="paired bootstrap test per set between two runs")
    mode.add_argument("--by-type", metavar="TASK",
                      help="one set's P/R/F1 and support per entity type, relation or label, every run side by side, "
                           "with bootstrap intervals of each F1 (from the samples files)")
    parser.add_argument("--against", default="A:taiyi1",
                        help="published columns for --compare, e.g. A:taiyi1,B:taiyi2 (default A:taiyi1)")
    parser.set_defaults(func=run)
    return parser


@errors_in_one_line("")
def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.text import Text

    from taiyi_bench.harness.apps.leaderboard import build, render

    console = Console()
    formats = [] if args.formats.strip().lower() == "none" else render.parse_formats(args.formats)
    if (args.cost or args.untouched_only) and (args.paper or args.paired or args.by_type):
        raise ValueError("--cost and --untouched-only apply to the leaderboard and --compare, "
                         "not to --paper, --paired or --by-type")
    if args.paired:
        report = build.paired_report(args.paired[0], args.paired[1], n_resamples=args.resamples, seed=args.seed)
        render.render_paired_terminal(report, console)
        written = render.write_paired(report, args.out, formats)
    elif args.by_type:
        by_type = build.leaderboard_by_type(args.results_dirs or [DEFAULT_RUNS_DIR], args.by_type,
                                            n_resamples=args.resamples, seed=args.seed)
        render.render_by_type_terminal(by_type, console)
        written = render.write_by_type(by_type, args.out, formats)
    else:
        # The runs shown (by the cost table too), and those shown even when partial (marked): a run the
        # user named; of the default folders, the reference slices.
        dirs = [args.compare] if args.compare else args.results_dirs or [
            DEFAULT_RUNS_DIR, *([REFERENCE_DIR] if REFERENCE_DIR.is_dir() else [])]
        always_shown = [args.compare] if args.compare else args.results_dirs or [REFERENCE_DIR]
        if args.paper:
            tables = build.paper_tables()
        elif args.compare:
            tables = [build.compare_table(args.compare, against=args.against, ci=args.ci,
                                          n_resamples=args.resamples, seed=args.seed, untouched_only=args.untouched_only)]
        else:
            if not args.results_dirs:  # the defaults are relative: say which folders they were here
                print(f"runs from {', '.join(str(d.resolve()) for d in dirs)} (the default folders under the "
                      "current directory; name RESULTS_DIR to choose)", file=sys.stderr)
            tables = [build.leaderboard_table(dirs, include_partial=args.include_partial, partial_shown_under=always_shown,
                                              include_budget_cut=args.include_budget_cut,
                                              include_incomplete=args.include_incomplete, published=args.published,
                                              ci=args.ci, n_resamples=args.resamples, seed=args.seed,
                                              untouched_only=args.untouched_only)]
            grounding = build.leaderboard_grounding(dirs, include_partial=args.include_partial,
                                                   partial_shown_under=always_shown)
            tables += [grounding] if grounding is not None else []
        written = []
        errors = Console(stderr=True)
        for table in tables:
            # Where a Markdown file is written, it carries the full provenance; the screen a summary.
            full = Path(args.out) / f"{table.slug}.md" if "md" in formats else None
            render.render_terminal(table, console, show_warnings=False, provenance_in=full)
            for warning in table.warnings:
                errors.print(Text(f"warning: {warning}", style="yellow"), soft_wrap=True)
            # The grounding table is a table, not a plot: its text formats only.
            shown = [f for f in formats if table.slug != "leaderboard_grounding" or f in render.TEXT_FORMATS]
            written += render.write_table(table, args.out, shown)
        if args.cost:
            cost = build.cost_table(dirs, include_partial=args.include_partial, partial_shown_under=always_shown)
            render.render_cost_terminal(cost, console)
            written += render.write_cost(cost, args.out, formats)
    for path in written:
        console.print(Text(f"wrote {path}", style="green"), soft_wrap=True)
    return 0
