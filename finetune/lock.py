"""One `taiyi finetune` run at a time per output directory.

Two runs writing into the same folder would both finish "successfully" with each other's
checkpoints, adapters and interleaved log lines. A run therefore holds `<out>/.taiyi_run.lock`
while it writes there: an exclusive `flock` on the file, which also holds a JSON record of the
holder (pid, host, start time, command) for the message a second run prints when it stops.

The kernel drops a `flock` when its process dies, however it dies (SIGKILL, OOM killer), so a
lock left by a dead run on this host is taken over by the next run, with a warning naming the
run that left it. A record written on another host is never taken over (that run may be alive
and the lock not shared across the network file system): the message says to remove the file
once that run is known to be gone.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from taiyi_bench.harness.errors import ConfigError

LOCK_NAME = ".taiyi_run.lock"
logger = logging.getLogger("taiyi-bench.finetune")

try:
    import fcntl
except ImportError:  # Windows: no flock; runs are not locked there
    fcntl = None  # type: ignore[assignment]


class RunDirectoryBusy(ConfigError):
    """Another run is writing into the output directory."""


def _parse(raw: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _describe(holder: dict[str, Any] | None) -> str:
    if not holder:
        return "a run that left no record"
    return f"pid {holder.get('pid')} on host {holder.get('host')!r}, started {holder.get('started', '?')}"


@dataclass
class RunLock:
    """A held lock; `release` removes the file and drops the lock."""

    path: Path
    fd: int | None

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            # Unlink while still holding the lock; a run waiting on the old file notices that
            # the path no longer names it and starts over on a new one.
            if os.stat(self.path).st_ino == os.fstat(self.fd).st_ino:
                os.unlink(self.path)
        except FileNotFoundError:
            pass
        finally:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def acquire(out: Path) -> RunLock:
    """Lock run directory `out` (which must exist) for this process, or `RunDirectoryBusy`
    naming the holder (a live run, or one on another host)."""
    path = out / LOCK_NAME
    if fcntl is None:
        logger.warning("taiyi finetune: no file locking on this platform; do not start two runs into %s", out)
        return RunLock(path, None)
    host = socket.gethostname()
    record = {
        "pid": os.getpid(),
        "host": host,
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
    }
    for _ in range(20):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _parse(os.pread(fd, 1 << 16, 0))
            os.close(fd)
            raise RunDirectoryBusy(
                f"{out} is in use by another taiyi finetune run ({_describe(holder)}); wait for it to finish "
                "or choose another --output-dir"
            ) from None
        try:
            same_file = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same_file = False
        if not same_file:  # released and removed by its holder while we waited: start over
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            continue
        previous = _parse(os.pread(fd, 1 << 16, 0))
        if previous and previous.get("host") not in (None, host):
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            raise RunDirectoryBusy(
                f"{out} is locked by a taiyi finetune run on another host ({_describe(previous)}); it may still be "
                f"running. Once it is gone, remove {path} and start again"
            )
        if previous:
            logger.warning(
                "taiyi finetune: %s was left locked by a run that is gone (%s); taking it over", out, _describe(previous)
            )
        data = (json.dumps(record, indent=2) + "\n").encode("utf-8")
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
        os.fsync(fd)
        return RunLock(path, fd)
    raise RunDirectoryBusy(f"{out}: could not take the run lock {path}; other runs keep taking it")
