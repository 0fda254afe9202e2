"""What a person sees while a long command runs: one line per step, the full logs in a file.

`StepConsole` runs each step with everything it prints - Python `print`s and warnings, logging
handlers that write to the terminal, tqdm bars, and the output of subprocesses such as `lm_eval`
(they inherit the redirected file descriptors) - going to a log file. The terminal shows, per
step, a rich progress bar while it runs and then one line with the step's time. A step whose log
shows a tqdm counter matching its `progress` pattern (lm-eval's "Running generate_until
requests ... 12/40") gets a real bar; the others a pulsing one.

Used by `taiyi demo` and `taiyi baseline run`.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

# lm-eval's request bar, as tqdm writes it into the log.
LM_EVAL_PROGRESS = re.compile(r"Running generate_until requests[^\r\n]*?(\d+)/(\d+)")
_BAR = "━" * 24


@contextlib.contextmanager
def output_to(log: IO[str]) -> Iterator[None]:
    """Everything printed inside goes to `log`: file descriptors 1 and 2 (C code, subprocesses),
    sys.stdout/sys.stderr, and the logging handlers that were writing to the terminal."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    log.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    swapped: list[tuple[logging.StreamHandler, Any]] = []
    console_ids = {id(s) for s in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__) if s is not None}
    loggers = [logging.getLogger()] + [x for x in logging.Logger.manager.loggerDict.values() if isinstance(x, logging.Logger)]
    try:
        for fd in (1, 2):
            os.dup2(log.fileno(), fd)
        for logger in loggers:
            for handler in logger.handlers:
                if type(handler) is logging.StreamHandler and id(handler.stream) in console_ids:
                    swapped.append((handler, handler.stream))
                    handler.setStream(log)
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            yield
    finally:
        for handler, stream in swapped:
            handler.setStream(stream)
        with contextlib.suppress(Exception):
            log.flush()
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)


class _Tail(threading.Thread):
    """Reads the log as it grows and reports the last `pattern` counter seen (done, total)."""

    def __init__(self, path: Path, pattern: re.Pattern[str], report) -> None:
        super().__init__(daemon=True)
        self.path, self.pattern, self.report = path, pattern, report
        self.stop_event = threading.Event()

    def run(self) -> None:
        with self.path.open("r", encoding="utf-8", errors="replace") as handle:
            handle.seek(0, io.SEEK_END)
            tail = ""
            while not self.stop_event.wait(0.5):
                tail = (tail + handle.read())[-4000:]
                if matches := self.pattern.findall(tail):
                    self.report(*map(int, matches[-1]))


class StepConsole:
    """Steps on the terminal, their output in `log_path`."""

    def __init__(self, log_path: str | os.PathLike, console: Any = None) -> None:
        from rich.console import Console

        self.log_path = Path(log_path)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # A console on the terminal as it is now: later redirections of fd 1 do not reach it.
        self._terminal = None
        if console is None:
            with contextlib.suppress(AttributeError, OSError, ValueError):  # a stdout without a file descriptor
                self._terminal = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8", buffering=1)
            console = Console(file=self._terminal or sys.stdout, highlight=False)
        self.console = console
        self.log = self.log_path.open("a", encoding="utf-8", buffering=1)
        self.timings: dict[str, float] = {}

    def close(self) -> None:
        self.log.close()
        if self._terminal is not None:
            self._terminal.close()

    def __enter__(self) -> StepConsole:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def print(self, *objects: Any, **kwargs: Any) -> None:
        """A line on the terminal (and in the log, so that the log tells the whole story)."""
        self.console.print(*objects, soft_wrap=True, **kwargs)
        text = " ".join(o.plain if hasattr(o, "plain") else str(o) for o in objects)
        self.log.write(f"[taiyi] {text}\n")

    def done(self, name: str, seconds: float, note: str = "") -> None:
        from rich.text import Text

        line = Text.assemble(("✓ ", "green"), (f"{name:<15}", "bold"), (f" {_BAR} ", "green"), f"{seconds:6.1f} s")
        if note:
            line.append(f"  {note}", style="dim")
        self.console.print(line, soft_wrap=True)
        self.log.write(f"[taiyi] step {name}: done in {seconds:.1f} s {note}\n")

    @contextlib.contextmanager
    def step(self, name: str, *, progress: re.Pattern[str] | None = None) -> Iterator[Any]:
        """Run a step: its output to the log, a live bar on the terminal, then one line with its
        time. Yields a callable `advance(done, total)` for steps that count their own progress."""
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
        from rich.text import Text

        self.log.write(f"\n[taiyi] ===== step {name} =====\n")
        bar = Progress(TextColumn("[bold]{task.description:<15}"), BarColumn(), TextColumn("{task.fields[count]}"),
                       TimeElapsedColumn(), console=self.console, transient=True,
                       redirect_stdout=False, redirect_stderr=False)
        task = bar.add_task(name, total=None, count="")  # no count known yet: a pulsing bar

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, count=f"{done}/{total}")

        tail = _Tail(self.log_path, progress, advance) if progress is not None else None
        started = time.perf_counter()
        # A live bar only on a terminal: elsewhere (a pipe, CI) the step's one line says it all.
        live = bar if self.console.is_terminal else contextlib.nullcontext()
        with live:
            if tail is not None:
                tail.start()
            try:
                with output_to(self.log):
                    yield advance
            except BaseException:
                seconds = time.perf_counter() - started
                self.log.write(f"[taiyi] step {name}: FAILED after {seconds:.1f} s\n")
                if live is bar:
                    bar.stop()
                self.console.print(Text.assemble(("✗ ", "red"), (f"{name:<15}", "bold"),
                                                 f" failed after {seconds:.1f} s; the log: {self.log_path}"), soft_wrap=True)
                raise
            finally:
                if tail is not None:
                    tail.stop_event.set()
                    tail.join(timeout=2)
        seconds = time.perf_counter() - started
        self.timings[name] = seconds
        self.done(name, seconds)


def headline_summary(results_paths: list[str | os.PathLike], title: str = "Results") -> Any:
    """A compact rich table of the headline numbers: the sets the runs have (rows) by run
    (columns), one decimal, marked as the leaderboard marks them."""
    from rich import box
    from rich.table import Table as RichTable
    from rich.text import Text

    from taiyi_bench.harness.apps.leaderboard.build import leaderboard_table
    from taiyi_bench.harness.apps.leaderboard.table import (
        RuleRow,
        average_text,
        iter_average_rows,
        row_cell_text,
        row_label,
    )
    from taiyi_bench.harness.registry import PAPER_ORDER, REGISTRY

    table = leaderboard_table(results_paths, include_partial=True, include_budget_cut=True, include_incomplete=True,
                              published="none")
    columns = [c for c in table.columns if c.kind == "run"]
    keys = [k for k in PAPER_ORDER if any(c.cells.get(k) is not None and c.cells[k].value is not None for c in columns)]
    rich_table = RichTable(title=Text(title, style="bold"), box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    rich_table.add_column("Set", no_wrap=True)
    for column in columns:
        rich_table.add_column(Text(column.display_header), justify="right")
    for key in keys:
        # Flags such as "budget cut" are in the column headers already.
        row = RuleRow(key, None, True)  # the set's one row, as in a table that is not by rule
        rich_table.add_row(row_label(REGISTRY[key]), *(row_cell_text(c, row, with_ci=False, with_note=False) for c in columns))
    # The overall average only: the per-type ones are in the leaderboard files and the report.
    for _, label, group in iter_average_rows():
        if group == "all" and any(c.averages()[group] is not None for c in columns):
            rich_table.add_row(Text(label, style="bold"), *(average_text(c, group, with_ci=False) for c in columns))
    return rich_table
