"""The project installs one package, `taiyi_bench`, and lives beside packages that happen to be
called `baselines` (OpenAI's RL library) or `harness`: a fresh virtual environment gets those two
first, then this project's wheel, and all three import, with lm_eval still listing 13 taiyi_* tasks."""

from __future__ import annotations

import os
import re
import site
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def _run(cmd: list[str], cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PIP_NO_INDEX"] = "1"  # everything here is local: no registry either
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(cmd)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _other_wheel(root: Path, name: str) -> Path:
    """A tiny wheel whose import name is `name` and that says whose it is (written by hand: no
    build backend needed)."""
    dist = f"other_{name}-1.0"
    files = {
        f"{name}/__init__.py": f"OWNER = 'someone else ({name})'\n",
        f"{dist}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: other-{name}\nVersion: 1.0\n",
        f"{dist}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    files[f"{dist}.dist-info/RECORD"] = "".join(f"{path},,\n" for path in files) + f"{dist}.dist-info/RECORD,,\n"
    wheel = root / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel


def test_wheel_installs_beside_packages_named_baselines_and_harness(tmp_path: Path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    purelib = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], tmp_path).strip())
    # Dependencies (lm-eval, torch, ...) come from this interpreter's site-packages as a plain path
    # entry: its .pth files (this checkout's editable install among them) are not executed there.
    (purelib / "zz_dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n", encoding="utf-8")

    for name in ("baselines", "harness"):
        _run([str(python), "-m", "pip", "install", "--no-deps", "-q", str(_other_wheel(tmp_path, name))], tmp_path)
    wheels = tmp_path / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels),
          str(REPO_ROOT)], tmp_path)
    (wheel,) = wheels.glob("taiyi_bench-*.whl")
    _run([str(python), "-m", "pip", "install", "--no-deps", "-q", str(wheel)], tmp_path)

    printed = _run([str(python), "-c", (
        "import baselines, harness, taiyi_bench, taiyi_bench.harness.registry, taiyi_bench.baselines.cli, "
        "taiyi_bench.finetune.config; print(baselines.OWNER); print(harness.OWNER); print(taiyi_bench.__file__)"
    )], tmp_path).splitlines()
    assert printed[:2] == ["someone else (baselines)", "someone else (harness)"]
    assert Path(printed[2]).is_relative_to(purelib), printed[2]  # the wheel, not this checkout

    listed = _run([str(python), "-m", "lm_eval", "ls", "tasks"], tmp_path)
    tasks = dict(re.findall(r"^\|(taiyi_\w+)\s*\|([^|]*?)\s*\|generate_until", listed, re.MULTILINE))
    assert len(tasks) == 13 and "taiyi_medqa_mcmle" in tasks, listed[-2000:]
    assert all(Path(path).is_relative_to(purelib) for path in tasks.values()), tasks
    assert "Two-stage" in _run([str(env_dir / "bin" / "taiyi"), "finetune", "--help"], tmp_path)
