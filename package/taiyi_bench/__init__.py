"""taiyi-bench: the one installed package, `taiyi_bench`.

Its sub-packages are the repository's top-level folders: `taiyi_bench.harness` (library,
lm-eval glue, applications), `taiyi_bench.baselines`, `taiyi_bench.finetune`, plus the data
folders `tasks/` and `results/published/`. A wheel copies those folders in here (see
`[tool.hatch.build.targets.wheel.sources]` in pyproject.toml). An editable install puts only this
folder's parent on `sys.path`, so the package path is extended to the checkout's root below:
the folders stay where users know them, and no top-level `harness` or `baselines` module is
installed to collide with other packages of those names.
"""

from pathlib import Path as _Path

_here = _Path(__file__).resolve().parent
_checkout = _here.parent.parent
if not (_here / "harness").is_dir() and (_checkout / "harness" / "__init__.py").is_file():
    __path__.append(str(_checkout))  # noqa: F821 (a package's __path__ is set by the import system)
