"""One line, not a traceback, for the errors a user causes inside the `lm_eval` command.

`lm_eval` has no hook for its tasks' errors: a data file that is empty or malformed, or a data
directory that lacks a set, would end in a Python traceback whose last line is the only part that
matters. Importing the taiyi_* task glue (`taiyi_bench.harness.lmeval.tasks`) installs an excepthook that prints
such an uncaught error as `lm_eval: error: <message>` (the message names the file and what to do);
every other exception keeps Python's traceback. The exit status stays 1.
"""

from __future__ import annotations

import sys
from types import TracebackType

from taiyi_bench.harness.errors import ConfigError, DataFormatError, DataNotFoundError

USER_ERRORS: tuple[type[BaseException], ...] = (DataFormatError, DataNotFoundError, ConfigError)


def install_excepthook() -> None:
    """Chain a one-line printer for `USER_ERRORS` in front of the current excepthook (once)."""
    previous = sys.excepthook
    if getattr(previous, "_taiyi_user_errors", False):
        return

    def hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(exc_type, USER_ERRORS):
            print(f"lm_eval: error: {exc}", file=sys.stderr)
            return
        previous(exc_type, exc, tb)

    hook._taiyi_user_errors = True  # type: ignore[attr-defined]
    sys.excepthook = hook
