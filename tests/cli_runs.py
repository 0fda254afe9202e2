"""Running the `taiyi` command in-process for the reliability tests, and reading its one error line."""

from __future__ import annotations

from typing import Any

import pytest


def run_taiyi(capsys: pytest.CaptureFixture, *argv: Any) -> tuple[int, str, str]:
    """Run `taiyi ARGV` in-process: (exit status, stdout, stderr). An argparse refusal is a
    SystemExit, turned into its status; a traceback would be an exception escaping `main`."""
    from taiyi_bench.harness.apps.cli import main

    try:
        code = main([str(a) for a in argv])
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_error(err: str, prefix: str) -> str:
    """The single line of `err` starting with `prefix` (e.g. "taiyi demo: error:"), and no traceback."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, err
    return lines[0]
