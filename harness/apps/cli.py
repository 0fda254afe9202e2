"""The `taiyi` command line. Each subcommand lives in its own module, which exposes
`register(subparsers)`; this file wires them together (imports stay lazy so that `taiyi --help`
is fast) and holds what they share: argument types, the bootstrap options, the one-line errors.

It also guards every subcommand: an output folder or file that cannot be written is refused
before any work, and an error the user can cause and fix (bad settings, a missing, unreadable or
malformed file, a full disk) that escapes a subcommand ends in one line,
`taiyi <command>: error: <message>`, with exit status 1, never in a traceback. TAIYI_DEBUG=1
shows the traceback as well.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import os
import sys
from collections.abc import Callable
from pathlib import Path

# subcommand -> module that defines `register(subparsers)`
SUBCOMMANDS: dict[str, str] = {
    "data": "taiyi_bench.harness.apps.data_fetch",  # registers check and list (data_check) and fetch
    "leaderboard": "taiyi_bench.harness.apps.leaderboard.cli",
    "finetune": "taiyi_bench.finetune.cli",
    "baseline": "taiyi_bench.harness.apps.baseline",  # taiyi_bench.baselines.cli, with the console and report
    "demo": "taiyi_bench.harness.apps.demo",
    "compare": "taiyi_bench.harness.apps.compare",
    "contamination": "taiyi_bench.harness.apps.contamination",
    "report": "taiyi_bench.harness.apps.report",
    "reference": "taiyi_bench.harness.apps.reference",
    "rescore": "taiyi_bench.harness.apps.rescore",
    "models": "taiyi_bench.harness.apps.models",
}
DEBUG_ENV = "TAIYI_DEBUG"
# Parsed arguments that name something a command writes: attribute -> (option, what it is).
# `baseline new --dir` is the one `dir` that is written to (`data check DIR` is read).
OUTPUT_ARGUMENTS: dict[str, tuple[str, str]] = {
    "out": ("--out", "folder"), "results_dir": ("--results-dir", "folder"),
    "output_dir": ("--output-dir", "folder"), "output_root": ("--output-root", "folder"),
    "json": ("--json", "file"),
}
EXIT_USER_ERROR = 1
EXIT_INTERRUPTED = 130


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


def whole_number_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse `type=` that takes a whole number >= `minimum` and refuses anything else with
    one line naming the option (argparse adds `argument --units:`)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, not {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, not {value}")
        return value

    parse.__name__ = f"whole number >= {minimum}"
    return parse


def add_bootstrap_options(parser: argparse.ArgumentParser, resamples: str = "bootstrap resamples") -> None:
    parser.add_argument("--resamples", type=whole_number_at_least(1), default=1000, help=f"{resamples} (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")


def errors_in_one_line(prefix: str) -> Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]:
    """Decorates a subcommand's `run`: bad input (ValueError, KeyError, FileNotFoundError) ends in
    one red line `<prefix>error: <message>` on stderr and exit status 2."""

    def decorate(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        @functools.wraps(run)
        def guarded(args: argparse.Namespace) -> int:
            try:
                return run(args)
            except (ValueError, KeyError, FileNotFoundError) as exc:
                from rich.console import Console
                from rich.text import Text

                message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
                Console(stderr=True).print(Text(f"{prefix}error: {message}", style="bold red"), soft_wrap=True)
                return 2

        return guarded

    return decorate


def refuse_unwritable(option: str, path: str | Path, kind: str) -> None:
    """ConfigError naming `option` when `path` (a "folder" to create or fill, or a "file" to write)
    cannot be written. Nothing is created: the nearest existing folder above it is asked."""
    from taiyi_bench.harness.errors import ConfigError

    target = Path(path).expanduser()
    probe = target.parent if kind == "file" else target
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if target.exists() and (target.is_dir() if kind == "file" else not target.is_dir()):
        reason = f"{target} is a {'folder' if kind == 'file' else 'file'}, not a {kind}"
    elif not probe.is_dir():
        reason = f"{probe} is a file, so no folder can be made below it"
    elif not os.access(probe, os.W_OK | os.X_OK):
        reason = f"{probe} is not writable"
    else:
        return
    raise ConfigError(f"{option} {path}: cannot write there ({reason}); choose another {kind}")


def check_outputs(args: argparse.Namespace) -> None:
    """Refuse an output that cannot be written, before the command does any work (a run must not
    train for an hour and then fail to save)."""
    if getattr(args, "dry_run", False):
        return
    outputs = dict(OUTPUT_ARGUMENTS)
    if str(getattr(args, "formats", "")).strip().lower() == "none":  # `leaderboard --formats none` writes nothing
        outputs.pop("out")
    if args.command == "baseline" and getattr(args, "baseline_command", None) == "new":
        outputs["dir"] = ("--dir", "folder")
    for attribute, (option, kind) in outputs.items():
        value = getattr(args, attribute, None)
        if isinstance(value, (str, Path)) and str(value):
            refuse_unwritable(option, value, kind)


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exception classes a user causes and can fix; anything else is a bug and keeps its traceback.
    ConfigError, DataFormatError and DataNotFoundError are ValueError / OSError subclasses."""
    errors: list[type[BaseException]] = [OSError, ValueError]
    for module, name in (("yaml", "YAMLError"), ("safetensors", "SafetensorError")):
        loaded = sys.modules.get(module)  # only if the command imported it: they cannot be raised otherwise
        if loaded is not None and isinstance(getattr(loaded, name, None), type):
            errors.append(getattr(loaded, name))
    return tuple(errors)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:  # "Permission denied: '/x'", without "[Errno 13]"
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    return str(exc) or type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    first = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(only=first if first in SUBCOMMANDS else None)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        check_outputs(args)
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"taiyi {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - sorted below: user errors become one line, bugs re-raise
        if not isinstance(exc, _user_errors()):
            raise
        from taiyi_bench.harness.errors import ConfigError, DataFormatError, DataNotFoundError

        # The project's own errors are complete messages; for the others the traceback may help.
        ours = isinstance(exc, (ConfigError, DataFormatError, DataNotFoundError))
        hint = "" if ours or os.environ.get(DEBUG_ENV) else f" ({DEBUG_ENV}=1 shows the traceback)"
        print(f"taiyi {args.command}: error: {_describe(exc)}{hint}", file=sys.stderr)
        if os.environ.get(DEBUG_ENV):
            raise
        return EXIT_USER_ERROR


if __name__ == "__main__":
    raise SystemExit(main())
