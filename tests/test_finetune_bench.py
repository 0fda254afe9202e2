"""The GPU benchmarks run on a CPU with `--shape tiny` in CI time and print every figure."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _run(script: str, args: list[str], env: dict, tmp_path: Path) -> tuple[str, dict]:
    out = tmp_path / f"{script}.json"
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args, "--json", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout, json.loads(out.read_text(encoding="utf-8"))


def test_train_benchmark_tiny_shape_prints_every_figure(tmp_path, single_thread_env):
    args = ["--shape", "tiny", "--steps", "1", "--warmup", "0", "--cap", "4", "--threads", "1"]
    args += ["-o", "format.max_length=256", "-o", "training.gradient_accumulation_steps=1"]
    stdout, figures = _run("bench_train_gpu.py", args, single_thread_env, tmp_path)
    variants = figures["variants"]
    assert set(variants) == {"padding", "packing/sdpa", "packing/flex", "packing/flash"}
    for name in ("padding", "packing/sdpa"):
        ran = variants[name]
        assert ran["tokens_per_s"] > 0 and ran["peak_mem_mb"] > 0 and ran["tokens_per_step"] > 0
        assert "mfu" in ran and ran["mfu"] is None  # a CPU has no bf16 peak to compare against
    assert variants["packing/sdpa"]["layout"] == "mask4d" and variants["packing/sdpa"]["recipe_default"]
    # packed rows carry more real tokens per step than padded single samples
    assert variants["packing/sdpa"]["tokens_per_step"] > variants["padding"]["tokens_per_step"]
    assert "needs a CUDA GPU" in variants["packing/flash"]["skipped"]
    assert "packing/flex" in stdout and "skipped" in stdout  # the reason is printed, not hidden
    assert figures["parameters"] > 0 and figures["shape"] == "tiny" and figures["device"] == "cpu"
    for column in ("tokens/s", "MFU", "peak MB"):
        assert column in stdout


def test_eval_benchmark_tiny_shape_counts_exact_generated_tokens(tmp_path, single_thread_env):
    args = ["--shape", "tiny", "--tasks", "taiyi_kuake_qic", "--limit", "2", "--max-new-tokens", "5"]
    args += ["--batch-size", "2", "--backend", "all"]
    stdout, figures = _run("bench_eval_gpu.py", args, single_thread_env, tmp_path)
    (row,) = figures["rows"]
    assert (row["backend"], row["task"], row["units"]) == ("hf", "taiyi_kuake_qic", 2)
    assert row["generated_tokens"] == 2 * 5  # every unit generates exactly --max-new-tokens
    assert row["units_per_s"] > 0 and row["generated_tokens_per_s"] > 0
    assert "units/s" in stdout and "gen tok/s" in stdout
    try:
        import vllm  # noqa: F401
    except ImportError:
        assert "vllm" in figures["skipped"]
