"""`lm_eval --tasks 'taiyi_*'` finds exactly our tasks (one per set) after `pip install`, with no flag."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
import warnings

import pytest

from taiyi_bench.harness.lmeval import plugin as lm_eval_plugin
from taiyi_bench.harness.registry import REGISTRY

EXPECTED_TASKS = sorted(spec.task_name for spec in REGISTRY.values())
EXPECTED_GROUPS = sorted(
    ["taiyibench", "taiyibench_en", "taiyibench_zh", "taiyibench_ner", "taiyibench_re", "taiyibench_tc", "taiyibench_qa"]
)

_PROBE = """
import json
from lm_eval.tasks import TaskManager
manager = TaskManager(**json.loads('''{kwargs}'''))
print(json.dumps({{"matched": manager.match_tasks(["taiyi_*"]),
                   "groups": sorted(g for g in manager.all_groups if g.startswith("taiyibench"))}}))
"""


def _probe(kwargs: dict, env_extra: dict | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != lm_eval_plugin.DISABLE_ENV} | (env_extra or {})
    out = subprocess.run(
        [sys.executable, "-c", _PROBE.format(kwargs=json.dumps(kwargs))],
        capture_output=True, text=True, env=env, check=True, timeout=300,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_installed_hook_registers_exactly_our_tasks_and_groups_apart():
    found = _probe({})
    assert sorted(found["matched"]) == EXPECTED_TASKS  # the glob matches no group
    assert found["groups"] == EXPECTED_GROUPS


def test_without_hook_tasks_are_absent_and_include_path_brings_them_back():
    off = {lm_eval_plugin.DISABLE_ENV: "1"}
    assert _probe({}, off)["matched"] == []
    with_path = _probe({"include_path": str(lm_eval_plugin.tasks_dir())}, off)
    assert sorted(with_path["matched"]) == EXPECTED_TASKS


def test_lm_eval_ls_lists_the_tasks():
    out = subprocess.run(["lm_eval", "ls", "tasks"], capture_output=True, text=True, timeout=300, check=True)
    listed = out.stdout + out.stderr
    for name in EXPECTED_TASKS:
        assert name in listed


def _fake_tasks_module() -> types.ModuleType:
    class FakeManager:
        def __init__(self, include_path=None):
            self.include_path = include_path

    module = types.ModuleType("fake_lm_eval_tasks")
    module.TaskManager = FakeManager
    return module


def test_patch_keeps_user_include_path_last_so_it_wins(monkeypatch):
    monkeypatch.setattr("importlib.metadata.version", lambda _name: "0.4.13")
    module = _fake_tasks_module()
    assert lm_eval_plugin.patch_task_manager(module)
    manager = module.TaskManager(include_path="/my/tasks")
    assert manager.include_path == [str(lm_eval_plugin.tasks_dir()), "/my/tasks"]
    assert not lm_eval_plugin.patch_task_manager(module)  # idempotent


@pytest.mark.parametrize("version", ["0.4.12", "0.5.0", "1.0"])
def test_untested_lm_eval_version_is_not_patched_and_says_what_to_do(monkeypatch, version):
    monkeypatch.setattr("importlib.metadata.version", lambda _name: version)
    module = _fake_tasks_module()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert not lm_eval_plugin.patch_task_manager(module)
    assert any("--include_path" in str(w.message) and version in str(w.message) for w in caught)
    assert module.TaskManager(include_path=None).include_path is None


def test_entry_point_declared_for_upstream_plugin_mechanism():
    from importlib.metadata import entry_points

    points = [ep for ep in entry_points(group="lm_eval.tasks") if ep.name == "taiyibench"]
    assert len(points) == 1
    assert points[0].load()() == lm_eval_plugin.tasks_dir()
    assert (lm_eval_plugin.tasks_dir() / "taiyi_bc5cdr_chem.yaml").is_file()
