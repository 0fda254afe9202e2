"""Shared fixtures. `shared_data_dir` is the real data beside the checkout (../shared/data).

When it is absent the tests that need it are skipped with a reason, except under CI
(TAIYI_REQUIRE_SHARED_DATA=1, set by .ci/run), where its absence is a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def _shared_data_path() -> Path:
    override = os.environ.get("TAIYI_SHARED_DATA")
    return Path(override) if override else REPO_ROOT.parent / "shared" / "data"


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
