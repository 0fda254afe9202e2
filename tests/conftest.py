"""Shared fixtures. `shared_data_dir` is the real data: TAIYI_DATA_DIR, else ../shared/data.

When it is absent the tests that need it are skipped with a reason, except under CI
(TAIYI_REQUIRE_SHARED_DATA=1, set by .ci/run), where its absence is a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


# The real data: TAIYI_DATA_DIR, the variable every command reads, else ../shared/data. Taken out
# of the environment for the session, so that the tests' own runs see the same (unset) variable on
# every machine and their data source is the one each test chooses.
_REAL_DATA_DIR = os.environ.pop("TAIYI_DATA_DIR", None)


def _shared_data_path() -> Path:
    return Path(_REAL_DATA_DIR) if _REAL_DATA_DIR else REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    path = _shared_data_path()
    if not path.is_dir():
        if os.environ.get("TAIYI_REQUIRE_SHARED_DATA"):
            pytest.fail(f"real data directory {path} is required (TAIYI_REQUIRE_SHARED_DATA is set) but missing")
        pytest.skip(f"real data directory {path} not present")
    return path


@pytest.fixture
def single_thread_env() -> dict[str, str]:
    """Environment for model subprocesses: two OpenMP threads on a shared 2-core machine can
    stall badly (a step measured 40x slower); one thread is predictable."""
    return {**os.environ, "OMP_NUM_THREADS": "1"}
