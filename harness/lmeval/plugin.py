"""Make `lm_eval --tasks 'taiyi_*'` find this project's tasks with no extra flag.

lm-eval 0.4.13 reads tasks only from its own folder and `--include_path` (upstream is adding an
`lm_eval.tasks` entry-point group, which pyproject.toml also declares). Until then the wheel
installs `taiyi_bench_lm_eval.pth`, which calls `install()` at start-up: it adds an import hook
that patches lm-eval modules only when a process imports them:

- `lm_eval.tasks`: `TaskManager.__init__` appends our task folder to `include_path`;
- `lm_eval.api.registry`: the model types `taiyi-hf` and `taiyi-vllm` (`lmeval.models`) become
  lazy registry entries;
- `lm_eval.evaluator`: `simple_evaluate` runs `lmeval.preflight.check_run` before the model loads
  (lm-eval builds the model before the tasks, so no task-side hook can check in time), and
  `evaluate` records each task's tokens and time in the results (`lmeval.cost`).

On an lm-eval outside the tested range nothing is patched, with one warning naming
`--include_path` (tasks) or `--model hf` (prompt formats) instead.
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
# Model type -> "module:class", materialised by lm-eval's registry on first use.
PROMPT_FORMAT_MODELS = {
    "taiyi-hf": "taiyi_bench.harness.lmeval.models:TaiyiHFLM",
    "taiyi-vllm": "taiyi_bench.harness.lmeval.models:TaiyiVLLM",
}


def tasks_dir() -> Path:
    """The folder holding the taiyi_* task YAMLs (also the `lm_eval.tasks` entry point)."""
    from taiyi_bench.harness.paths import bundled_dir

    return bundled_dir("tasks")


def _installed_unsupported() -> str | None:
    """The installed lm-eval's version when it is outside the tested range ("unknown" when its
    metadata is missing), else None."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = version("lm_eval")
    except PackageNotFoundError:
        return "unknown"
    release = tuple(int("".join(ch for ch in piece if ch.isdigit()) or 0) for piece in installed.split(".")[:3])
    low, high = TESTED_LM_EVAL
    return None if low <= release < high else installed


def patch_task_manager(tasks_module) -> bool:
    """Wrap `tasks_module.TaskManager.__init__` to include our tasks. Returns True if patched."""
    manager_cls = getattr(tasks_module, "TaskManager", None)
    if manager_cls is None or getattr(manager_cls, "_taiyi_bench_patched", False):
        return False
    if installed := _installed_unsupported():
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
    if installed := _installed_unsupported():
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
    its arguments before the model is built, and `evaluate` so that its results carry the run's cost
    (`taiyi_bench.harness.lmeval.cost.meter_evaluate`). Returns True if patched now."""
    import functools
    import inspect
    import logging

    from taiyi_bench.harness.lmeval.cost import meter_evaluate

    original = getattr(evaluator_module, "simple_evaluate", None)
    if original is None or getattr(original, "_taiyi_bench_patched", False):
        return False
    if _installed_unsupported():
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
    evaluator_module.evaluate = meter_evaluate(evaluator_module.evaluate)
    return True


# The lm-eval modules patched once imported (see the module docstring).
_PATCHES = {"lm_eval.tasks": patch_task_manager, "lm_eval.api.registry": patch_model_registry,
            "lm_eval.evaluator": patch_evaluator}


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
