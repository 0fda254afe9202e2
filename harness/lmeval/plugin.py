"""Make `lm_eval --tasks 'taiyi_*'` find this project's tasks with no extra flag.

lm-eval 0.4.13 reads tasks only from its own folder and `--include_path`; it has no plugin
mechanism for task suites yet (upstream is adding an `lm_eval.tasks` entry-point group, which
pyproject.toml also declares). Until then, the wheel installs `taiyi_bench_lm_eval.pth`, which
Python executes at start-up; it calls `install()` below. That adds a tiny import hook and does
nothing else: only when a process imports `lm_eval.tasks` does the hook wrap
`TaskManager.__init__` so that our task folder is appended to `include_path`. Processes that
never import lm-eval pay one `sys.meta_path` entry.

The same hook registers this project's lm-eval model types (`taiyi-hf`, `taiyi-vllm`: the hf and
vllm backends plus a `prompt_format` model_arg, see `taiyi_bench.harness.lmeval.models`) when a process
imports `lm_eval.api.registry`: as lazy entries, so nothing heavy is imported until one is used.

And when a process imports `lm_eval.evaluator`, the hook wraps `simple_evaluate` so that a run
selecting taiyi_* tasks is checked before its model loads (`taiyi_bench.harness.lmeval.preflight.check_run`:
unknown --metadata keys, the data directory, --use_cache with an eod prompt format). lm-eval
builds the model before the tasks, and merges the model args into every task's metadata, so no
task-side hook can do either in time.

All patches are guarded by a version check: on an lm-eval outside the tested range they do not
patch and warn once, telling the user to pass `--include_path` (tasks) or to use `--model hf`
(prompt formats) instead; the run is then checked only by the tasks, once the model is loaded.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys
import warnings
from pathlib import Path
from typing import Any

TESTED_LM_EVAL = ((0, 4, 13), (0, 5, 0))  # [min, max)
DISABLE_ENV = "TAIYI_NO_LM_EVAL_HOOK"
_TARGET_MODULE = "lm_eval.tasks"
_REGISTRY_MODULE = "lm_eval.api.registry"
_EVALUATOR_MODULE = "lm_eval.evaluator"
# Model type -> "module:class", materialised by lm-eval's registry on first use.
PROMPT_FORMAT_MODELS = {
    "taiyi-hf": "taiyi_bench.harness.lmeval.models:TaiyiHFLM",
    "taiyi-vllm": "taiyi_bench.harness.lmeval.models:TaiyiVLLM",
}


def tasks_dir() -> Path:
    """The folder holding the taiyi_* task YAMLs (also the `lm_eval.tasks` entry point)."""
    from taiyi_bench.harness.paths import bundled_dir

    return bundled_dir("tasks")


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def lm_eval_version_supported(version: str) -> bool:
    low, high = TESTED_LM_EVAL
    return low <= _version_tuple(version) < high


def installed_lm_eval_version() -> str:
    """The installed lm-eval's version, "unknown" when its metadata is missing."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lm_eval")
    except PackageNotFoundError:
        return "unknown"


def patch_task_manager(tasks_module) -> bool:
    """Wrap `tasks_module.TaskManager.__init__` to include our tasks. Returns True if patched."""
    installed = installed_lm_eval_version()
    manager_cls = getattr(tasks_module, "TaskManager", None)
    if manager_cls is None or getattr(manager_cls, "_taiyi_bench_patched", False):
        return False
    if installed == "unknown" or not lm_eval_version_supported(installed):
        warnings.warn(
            f"taiyi-bench: lm-eval {installed} is outside the tested range "
            f"{'.'.join(map(str, TESTED_LM_EVAL[0]))}..<{'.'.join(map(str, TESTED_LM_EVAL[1]))}; "
            f"taiyi_* tasks are not registered automatically. Pass --include_path {tasks_dir()}",
            stacklevel=2,
        )
        return False
    original_init = manager_cls.__init__
    our_dir = str(tasks_dir())

    def __init__(self, *args, include_path=None, **kwargs):
        paths = [] if include_path is None else list(include_path) if isinstance(include_path, (list, tuple)) else [include_path]
        # lm-eval lets later paths override earlier ones: a user's --include_path wins over ours.
        if our_dir not in map(str, paths):
            paths.insert(0, our_dir)
        original_init(self, *args, include_path=paths, **kwargs)

    __init__.__wrapped__ = original_init
    manager_cls.__init__ = __init__
    manager_cls._taiyi_bench_patched = True
    return True


def patch_model_registry(registry_module) -> bool:
    """Register `taiyi-hf` / `taiyi-vllm` as lazy entries of lm-eval's model registry.
    Returns True if registered now."""
    registry = getattr(registry_module, "model_registry", None)
    if registry is None or all(name in registry for name in PROMPT_FORMAT_MODELS):
        return False
    installed = installed_lm_eval_version()
    if installed == "unknown" or not lm_eval_version_supported(installed):
        warnings.warn(
            f"taiyi-bench: lm-eval {installed} is outside the tested range; the model types "
            f"{', '.join(PROMPT_FORMAT_MODELS)} (prompt_format) are not registered. Use --model hf "
            "(the bare prompt, or --apply_chat_template)",
            stacklevel=2,
        )
        return False
    # lm-eval fills its registry with the built-in models only when it finds the registry empty;
    # adding ours first would hide them, so the built-ins are registered first (lazy, cheap).
    import lm_eval.models  # noqa: F401

    for name, target in PROMPT_FORMAT_MODELS.items():
        if name not in registry:
            registry.register(name, target=target)
    return True


def patch_evaluator(evaluator_module: Any) -> bool:
    """Wrap `evaluator_module.simple_evaluate` so that `taiyi_bench.harness.lmeval.preflight.check_run` sees
    its arguments before the model is built. Returns True if patched now."""
    import functools
    import inspect
    import logging
    original = getattr(evaluator_module, "simple_evaluate", None)
    if original is None or getattr(original, "_taiyi_bench_patched", False):
        return False
    installed = installed_lm_eval_version()
    if installed == "unknown" or not lm_eval_version_supported(installed):
        return False  # the task-manager patch has warned already; the tasks still check at load time
    signature = inspect.signature(original)

    @functools.wraps(original)
    def simple_evaluate(*args: Any, **kwargs: Any) -> Any:
        from taiyi_bench.harness.lmeval.errors import USER_ERRORS
        from taiyi_bench.harness.lmeval.preflight import check_run

        try:
            arguments = signature.bind(*args, **kwargs).arguments
        except TypeError:  # a call lm-eval itself refuses: its message, not ours
            return original(*args, **kwargs)
        try:
            check_run(arguments)
        except USER_ERRORS:
            raise
        except Exception as exc:  # a bug in an early check must not stop a run the tasks check anyway
            logging.getLogger("taiyi-bench").warning("taiyi-bench: the pre-run checks failed (%r); the run goes on", exc)
        return original(*args, **kwargs)

    simple_evaluate._taiyi_bench_patched = True
    evaluator_module.simple_evaluate = simple_evaluate
    return True


_PATCHES = {_TARGET_MODULE: patch_task_manager, _REGISTRY_MODULE: patch_model_registry, _EVALUATOR_MODULE: patch_evaluator}


class _PatchAfterImport(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds each target module through the normal machinery, then patches it once executed."""

    def __init__(self, pending: set[str]) -> None:
        self._inner_loaders: dict[str, importlib.abc.Loader] = {}
        self._pending = pending

    def find_spec(self, fullname, path, target=None):
        if fullname not in self._pending:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return None
        self._inner_loaders[fullname] = spec.loader
        spec.loader = self
        return spec

    def create_module(self, spec):
        return self._inner_loaders[spec.name].create_module(spec)

    def exec_module(self, module):
        name = module.__spec__.name
        inner = self._inner_loaders.pop(name)
        inner.exec_module(module)
        module.__spec__.loader = inner
        self._pending.discard(name)
        try:
            _PATCHES[name](module)
        except Exception as exc:  # a failed patch must not break lm-eval itself
            warnings.warn(f"taiyi-bench: could not patch {name}: {exc}", stacklevel=2)
        finally:
            if not self._pending and self in sys.meta_path:
                sys.meta_path.remove(self)


def install() -> None:
    """Called from the .pth file at interpreter start-up. Must never raise."""
    try:
        if os.environ.get(DISABLE_ENV):
            return
        for name, patch in _PATCHES.items():
            if name in sys.modules:
                patch(sys.modules[name])
        pending = {name for name in _PATCHES if name not in sys.modules}
        if pending and not any(isinstance(f, _PatchAfterImport) for f in sys.meta_path):
            sys.meta_path.insert(0, _PatchAfterImport(pending))
    except Exception as exc:  # a broken hook must not break every Python process
        warnings.warn(f"taiyi-bench: lm-eval hook not installed: {exc}", stacklevel=2)
