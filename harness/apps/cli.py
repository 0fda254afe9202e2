"""The `taiyi` command line. Each subcommand lives in its own module, which exposes
`register(subparsers)`; this file only wires them together (imports stay lazy so that
`taiyi --help` is fast)."""

from __future__ import annotations

import argparse
import importlib
import sys

# subcommand -> module that defines `register(subparsers)`
SUBCOMMANDS: dict[str, str] = {
    "data": "harness.apps.data_check",
    "leaderboard": "harness.apps.leaderboard.cli",
    "finetune": "finetune.cli",
    "baseline": "baselines.cli",
    "demo": "harness.apps.demo",
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="taiyi",
        description="taiyi-bench: bilingual biomedical evaluation (Taiyi, JAMIA 2024) on lm-evaluation-harness.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in SUBCOMMANDS.items():
        if only is not None and name != only:
            subparsers.add_parser(name, help=f"(see `taiyi {name} --help`)")
            continue
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    first = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(only=first if first in SUBCOMMANDS else None)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
