"""`taiyi contamination (--recipe R | --files F ...) [--sets ...] [--data-dir DIR] [--json PATH]`:
which evaluation units a fine-tuning mixture holds, exactly or by a long shared n-gram.

The mixture is a recipe's (every stage's instruction data, as `taiyi finetune` builds it) or
conversation files in Taiyi's format; the units are each set's evaluation split as the scorers
see it. Per set: units, touched exactly, touched by an n-gram (13 words; 20 characters for
Chinese), the share touched, and the worst units with the conversation (file:line, set) behind
each. The rules: taiyi_bench.harness.contamination. `taiyi finetune` writes the same report
into its run folder (contamination.json).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from taiyi_bench.harness.apps.cli import errors_in_one_line, whole_number_at_least

DEFAULT_WORST = 3


def register(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "contamination",
        help="which evaluation units a fine-tuning mixture holds (exact or long n-gram overlap), per set",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mixture = parser.add_mutually_exclusive_group(required=True)
    mixture.add_argument("--recipe", help="a fine-tuning recipe (file or shipped name): the data of all its stages")
    mixture.add_argument("--files", nargs="+", type=Path, metavar="FILE", help="conversation files (JSONL, Taiyi's format)")
    parser.add_argument("--sets", nargs="+", metavar="SET", help="only these sets (keys or task names; default all)")
    parser.add_argument(
        "--data-dir",
        help="the evaluation splits, and the recipe's train splits (data.tasks.data_dir); default $TAIYI_DATA_DIR, "
        "else the bundled samples",
    )
    parser.add_argument("--worst", type=whole_number_at_least(0), default=DEFAULT_WORST,
                        help="touched units shown per set (default %(default)s; the JSON keeps the worst 10)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the report as JSON")
    parser.set_defaults(func=run)
    return parser


def recipe_mixture(recipe: str, data_dir: str | None) -> tuple[list[Any], str | None]:
    """The conversations every stage of `recipe` trains on, and the data directory it reads."""
    from taiyi_bench.finetune import data
    from taiyi_bench.finetune.config import load_recipe
    from taiyi_bench.finetune.train import recipe_search_dirs

    # JSON text is YAML: a folder name with ": " or "#" stays one string (as `taiyi finetune --data-dir`)
    config = load_recipe(recipe, [f"data.tasks.data_dir={json.dumps(data_dir)}"] if data_dir else [])
    sources = data.load_sources(config["data"], search_dirs=recipe_search_dirs(config))
    return data.trained_conversations(sources, config["data"], sorted(config["stages"])), config["data"]["tasks"]["data_dir"]


@errors_in_one_line("taiyi contamination: ")
def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.text import Text

    from taiyi_bench.finetune.data import read_conversations
    from taiyi_bench.harness.atomic_files import atomic_write_text
    from taiyi_bench.harness.contamination import contamination_report, evaluation_splits

    start = time.perf_counter()
    if args.recipe:
        conversations, data_dir = recipe_mixture(args.recipe, args.data_dir)
    else:
        conversations = [c for path in args.files for c in read_conversations(path)]
        data_dir = args.data_dir
    splits, missing = evaluation_splits(args.sets, data_dir)
    report = contamination_report(conversations, splits, missing=missing)
    report["seconds"] = round(time.perf_counter() - start, 2)
    console = Console()
    render_terminal(report, console, args.worst)
    if args.json:
        atomic_write_text(args.json, json.dumps(report, indent=2, ensure_ascii=False) + "\n")
        console.print(Text(f"wrote {args.json}", style="green"), soft_wrap=True)
    return 0


def one_line(text: str, limit: int = 160) -> str:
    """Printable on one line: whitespace runs as one space, other control characters escaped, cut."""
    text = "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in " ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_terminal(report: dict[str, Any], console: Any, worst: int = DEFAULT_WORST) -> None:
    from rich.table import Table
    from rich.text import Text

    from taiyi_bench.harness.registry import get_spec

    mixture = report["mixture"]
    table = Table(title=Text(
        f"Evaluation units in the mixture ({mixture['conversations']:,} conversations, {mixture['tokens']:,} tokens)"))
    for header in ("Set", "split", "units", "exact", "n-gram", "touched", "too short"):
        table.add_column(header, justify="left" if header in ("Set", "split") else "right", no_wrap=True)
    for key, entry in report["sets"].items():
        split = entry["split"] + (" (samples)" if entry["data_source"] == "samples" else "")
        table.add_row(get_spec(key).display_name, split, str(entry["units"]), str(entry["exact"]), str(entry["ngram"]),
                      f"{entry['share']:.1%}", str(entry["too_short"]))
    console.print(table)
    settings = report["settings"]
    console.print(Text(
        f"touched: exact (every text of the unit inside one conversation, after the scorer's normalisation) or by an "
        f"n-gram (a run of {settings['n_tokens']['en']} words, {settings['n_tokens']['zh']} characters for Chinese, "
        f"shared with a turn); a unit under {settings['shortest_judged']} tokens is too short to judge. "
        f"{report.get('seconds', '?')} s.", style="dim"), soft_wrap=True)
    for key, entry in report["sets"].items():
        for touch in entry["worst"][:worst]:
            source = touch["source"]
            console.print(Text(f"{get_spec(key).display_name} unit {one_line(touch['unit'], 60)}: {touch['kind']}, "
                               f"{touch['overlap']:.0%} of its n-grams", style="bold cyan"), soft_wrap=True)
            console.print(Text(f"  text  {one_line(touch['text'])}"), soft_wrap=True)
            console.print(Text(f"  from  {one_line(source['origin'])} (set {one_line(source['dataset'], 60)}, "
                               f"conversation {one_line(source['conversation'], 60)})"), soft_wrap=True)
    for key, reason in report["missing"].items():
        console.print(Text(f"not checked: {key}: {one_line(reason, 300)}", style="yellow"), soft_wrap=True)
