"""`taiyi finetune RECIPE [--stage 1|2|all] [--data-dir DIR] [--override key=value ...] [--output-dir DIR] [--resume]`.

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
        "--override", "-o", action="append", default=[], metavar="KEY=VALUE",
        help="set a recipe key (dotted path, YAML value), e.g. training.max_steps=10; repeatable",
    )  # fmt: skip
    parser.add_argument(
        "--data-dir", help="the sets' train splits (data.tasks.data_dir; default $TAIYI_DATA_DIR, else the bundled samples)"
    )
    parser.add_argument(
        "--report-to", action="append", metavar="{none,tensorboard,wandb}",
        help="training.report_to: also log each step's scalars to TensorBoard or W&B; repeatable (default none)",
    )  # fmt: skip
    parser.add_argument("--output-dir", default=None, help="run directory (default: the recipe's, else runs/<name>)")
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --output-dir")
    parser.add_argument("--merge", action="store_true", help="also write base+adapter merged after the last stage")
    parser.add_argument(
        "--dry-run", action="store_true", help="print the resolved config and each stage's data report, train nothing"
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
        if args.data_dir:  # JSON text is YAML: a folder name with ": " or "#" stays one string
            overrides.append(f"data.tasks.data_dir={json.dumps(args.data_dir)}")
        if args.report_to:
            overrides.append(f"training.report_to={json.dumps(args.report_to)}")
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
    """The lm_eval command line for the run's last adapter, in the format it recorded
    (`taiyi_bench.finetune.adapter_eval`); also written to <output_dir>/lm_eval_command.txt.
    None when the run stopped early."""
    import os
    import shlex
    from pathlib import Path

    from taiyi_bench.finetune.adapter_eval import adapter_eval
    from taiyi_bench.harness.atomic_files import atomic_write_text
    from taiyi_bench.harness.errors import ConfigError

    stages = summary.get("stages") or {}
    adapter = stages[max(stages)].get("adapter") if stages and not summary.get("interrupted") else None
    if not adapter:
        return None
    output_path = f"results/runs/{config.get('name') or 'finetune'}"
    try:
        command = shlex.join(adapter_eval(adapter).lm_eval_argv("taiyi_*", output_path))
    except ConfigError as exc:  # the training itself succeeded: say why there is no command, go on
        print(f"taiyi finetune: no lm_eval command: {exc}", file=sys.stderr)
        return None
    out = Path(summary["output_dir"])
    if int(os.environ.get("RANK", "0")) == 0 and out.is_dir():  # one writer under torchrun / accelerate
        atomic_write_text(out / "lm_eval_command.txt", command + "\n")
    return command


def _dry_run(config: dict, stages: tuple[int, ...], to_yaml: Any) -> int:
    from taiyi_bench.finetune import data
    from taiyi_bench.finetune.train import recipe_search_dirs

    print(to_yaml(config))
    sources = data.load_sources(config["data"], search_dirs=recipe_search_dirs(config))
    for stage in stages:
        print(json.dumps(data.stage_mixture(sources, stage, config["data"]).report(), indent=2, ensure_ascii=False))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m taiyi_bench.finetune", description="Two-stage LoRA/QLoRA fine-tuning."
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))
