"""`taiyi finetune RECIPE [--stage 1|2|all] [--override key=value ...] [--output-dir DIR] [--resume]`.

Single process: `taiyi finetune cpu_smollm2_tiny`. Several GPUs or nodes: launch the same
arguments through accelerate (see finetune/README.md):
    accelerate launch --config_file finetune/accelerate/multi_gpu.yaml -m taiyi_bench.finetune RECIPE ...
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

STAGE_CHOICES = {"1": (1,), "2": (2,), "all": (1, 2)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", help="a recipe YAML file, or the name of a shipped one (finetune/recipes/)")
    parser.add_argument("--stage", choices=sorted(STAGE_CHOICES), default="all", help="which stage(s) to run")
    parser.add_argument(
        "--override",
        "-o",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a recipe key (dotted path, YAML value), e.g. training.max_steps=10; repeatable",
    )
    parser.add_argument(
        "--output-dir", default=None, help="run directory (default: the recipe's, else runs/<name>)"
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue from the latest checkpoint in --output-dir"
    )
    parser.add_argument(
        "--merge", action="store_true", help="also write base+adapter merged after the last stage"
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the resolved config and each stage's data report, train nothing",
    )


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "finetune",
        help="two-stage LoRA/QLoRA fine-tuning (Taiyi recipe)",
        description="Two-stage supervised fine-tuning (stage 1: non-dialogue task data; stage 2: all data).",
    )
    add_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from taiyi_bench.finetune.config import load_recipe, to_yaml
    from taiyi_bench.harness.errors import ConfigError, DataFormatError, DataNotFoundError

    try:
        overrides = list(args.override) + (["merge=true"] if args.merge else [])
        config = load_recipe(args.recipe, overrides)
        if args.dry_run:
            return _dry_run(config, STAGE_CHOICES[args.stage], to_yaml)
        from taiyi_bench.finetune.train import train

        summary = train(
            config, stages=STAGE_CHOICES[args.stage], output_dir=args.output_dir, resume=args.resume
        )
        command = eval_command(config, summary)
    except (ConfigError, DataFormatError, DataNotFoundError) as exc:
        print(f"taiyi finetune: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a full disk, an unwritable or unreadable file (also under `accelerate launch`)
        where = f": {exc.filename}" if exc.filename else ""
        print(f"taiyi finetune: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    if command is not None:
        summary["lm_eval_command"] = command
    print(json.dumps(summary, indent=2, default=str))
    if command is not None:
        print(f"evaluate it in the format it was trained in:\n  {command}", file=sys.stderr)
    return 0


def eval_command(config: dict[str, Any], summary: dict[str, Any]) -> str | None:
    """The lm_eval command line for the run's last adapter, with the recipe's prompt format;
    also written to <output_dir>/lm_eval_command.txt. None when the run stopped early."""
    import os
    import shlex
    from pathlib import Path

    from taiyi_bench.harness.errors import ConfigError
    from taiyi_bench.harness.prompt_formats import finetune_eval_command

    stages = summary.get("stages") or {}
    if summary.get("interrupted") or not stages:
        return None
    adapter = stages[max(stages)].get("adapter")
    if not adapter:
        return None
    try:
        command = shlex.join(finetune_eval_command(config, str(adapter), str(summary["base"])))
    except ConfigError as exc:  # the training itself succeeded: say why there is no command, go on
        print(f"taiyi finetune: no lm_eval command: {exc}", file=sys.stderr)
        return None
    out = Path(summary["output_dir"])
    if int(os.environ.get("RANK", "0")) == 0 and out.is_dir():  # one writer under torchrun / accelerate
        tmp = out / ".lm_eval_command.txt.tmp"
        tmp.write_text(command + "\n", encoding="utf-8")
        tmp.replace(out / "lm_eval_command.txt")
    return command


def _dry_run(config: dict, stages: tuple[int, ...], to_yaml: Any) -> int:
    from taiyi_bench.finetune import data
    from taiyi_bench.finetune.train import recipe_search_dirs

    print(to_yaml(config))
    sources = data.load_sources(config["data"], search_dirs=recipe_search_dirs(config))
    for stage in stages:
        mixture = data.build_mixture(
            sources,
            stage,
            cap=config["data"]["cap"],
            per_dataset=config["data"]["datasets"],
            seed=int(config["data"]["seed"]),
        )
        print(json.dumps(mixture.report(), indent=2, ensure_ascii=False))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m taiyi_bench.finetune", description="Two-stage LoRA/QLoRA fine-tuning."
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))
