"""StepConsole: a step's prints, log records, tqdm bars and subprocess output go to the
log file; the terminal gets one line per step."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from taiyi_bench.harness.apps.console import LM_EVAL_PROGRESS, StepConsole


def test_a_step_talks_to_the_log_and_the_terminal_gets_one_line(tmp_path, capfd):
    logger = logging.getLogger("taiyi-test-console")
    handler = logging.StreamHandler(sys.stderr)  # a handler made before the step, bound to the terminal
    logger.addHandler(handler)
    try:
        with StepConsole(tmp_path / "run.log") as console:
            console.print("starting")
            with console.step("evaluate", progress=LM_EVAL_PROGRESS):
                print("a print")
                logger.warning("a log record")
                sys.stderr.write("Running generate_until requests: 100%|##| 4/4\n")
                subprocess.run([sys.executable, "-c", "print('from a subprocess')"], check=True)
            with pytest.raises(RuntimeError), console.step("broken"):
                raise RuntimeError("boom")
        captured = capfd.readouterr()
        logger.warning("after the steps")  # the handler writes to the terminal again
        assert "after the steps" in capfd.readouterr().err
    finally:
        logger.removeHandler(handler)
    lines = (captured.out + captured.err).splitlines()
    assert lines[0] == "starting"
    assert lines[1].startswith("✓ evaluate") and lines[1].endswith(" s")
    assert lines[2].startswith("✗ broken") and str(tmp_path / "run.log") in lines[2]
    assert len(lines) == 3, lines
    log = (tmp_path / "run.log").read_text(encoding="utf-8")
    for text in ("a print", "a log record", "4/4", "from a subprocess", "step broken: FAILED"):
        assert text in log
