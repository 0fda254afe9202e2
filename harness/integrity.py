"""Is a saved model, adapter or checkpoint complete? Cheap checks before anything loads it.

A run killed while saving, a copy that stopped half-way or a full disk leaves files that look
present but end early; loading them fails deep inside safetensors or torch with a message that
names neither the file nor what to do. Every loader of this project's outputs asks here first:

- a folder written by `taiyi finetune` is trusted only with its completion marker, written last
  (`taiyi_stage.json` in a stage's adapter, `trainer_state.json` in a checkpoint), and with the
  file sizes the marker recorded;
- a `.safetensors` file must be as long as its own header says (the header lists every tensor's
  byte range), a torch file (`.pt`, `.bin`) must be a complete zip archive, a `.json` file must
  parse.

The checks read headers and sizes only: milliseconds, whatever the size of the weights.
"""

from __future__ import annotations

import json
import re
import struct
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from taiyi_bench.harness.errors import ConfigError

# Written last into a finished stage's adapter folder by `taiyi finetune` (with the sizes of the
# files it wrote), and into a finished checkpoint.
STAGE_MARKER = "taiyi_stage.json"
CHECKPOINT_MARKER = "trainer_state.json"
_STAGE_FOLDER = re.compile(r"stage\d+")
_CHECKPOINT_FOLDER = re.compile(r"step-\d+")
_TORCH_SUFFIXES = frozenset({".pt", ".pth", ".bin"})


class IncompleteFilesError(ConfigError):
    """Saved files are missing, truncated or unfinished; the message says which and what to do."""


def safetensors_problem(path: Path) -> str | None:
    """Why a .safetensors file is not complete (None when it is): too short for its header, a
    header that is not JSON, or fewer bytes than the tensors the header lists."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            return f"{size} bytes, shorter than a safetensors header (truncated)"
        (header_size,) = struct.unpack("<Q", prefix)
        if 8 + header_size > size:
            return f"{size} bytes, but its header alone claims {header_size} (truncated)"
        try:
            header = json.loads(handle.read(header_size))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return "its header is not valid JSON (not a safetensors file, or damaged)"
    if not isinstance(header, dict):
        return "its header is not a table of tensors (not a safetensors file)"
    ends = [
        entry["data_offsets"][1] for name, entry in header.items()
        if name != "__metadata__" and isinstance(entry, dict) and isinstance(entry.get("data_offsets"), list)
        and len(entry["data_offsets"]) == 2
    ]
    expected = 8 + header_size + max(ends, default=0)
    if size < expected:
        return f"{size} bytes, but its tensors end at byte {expected} (truncated)"
    return None


def file_problem(path: Path) -> str | None:
    """Why one saved file is not usable (None when it is, or when its kind is not checked)."""
    try:
        if path.suffix == ".safetensors":
            return safetensors_problem(path)
        if path.suffix in _TORCH_SUFFIXES and not zipfile.is_zipfile(path):  # torch.save writes zips since 1.6
            return f"{path.stat().st_size} bytes and not a complete torch archive (truncated or damaged)"
        if path.suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return "not valid JSON (truncated or damaged)"
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    return None


def recorded_sizes(folder: Path) -> dict[str, int]:
    """{relative path: size in bytes} of every file below `folder`, for a completion marker."""
    return {
        path.relative_to(folder).as_posix(): path.stat().st_size
        for path in sorted(folder.rglob("*")) if path.is_file()
    }


def folder_problems(folder: Path, sizes: Mapping[str, int] | None = None, *, skip: Iterable[str] = ()) -> list[str]:
    """Every problem of the files below `folder`: each file against the size a marker recorded
    (`sizes`, when given: missing or another size), and each checkable file on its own."""
    problems = []
    skipped = set(skip)
    for name, size in (sizes or {}).items():
        path = folder / name
        if not path.is_file():
            problems.append(f"{path}: missing (recorded when the folder was written)")
        elif path.stat().st_size != size:
            problems.append(f"{path}: {path.stat().st_size} bytes, {size} when it was written (truncated or changed)")
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name not in skipped and (problem := file_problem(path)):
            problems.append(f"{path}: {problem}")
    return list(dict.fromkeys(problems))


def _marker(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def adapter_problems(folder: str | Path) -> list[str]:
    """Why a PEFT adapter folder cannot be trusted (empty when it can).

    A stage adapter of `taiyi finetune` (`<run>/stage<N>/adapter`) needs its completion marker
    and the sizes it recorded; a checkpoint's adapter (`checkpoints/step-N/adapter`) needs its
    checkpoint's marker; an adapter from elsewhere needs its config and intact weights.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return [f"{folder}: no such adapter folder"]
    parent = folder.parent.name
    sizes: Mapping[str, int] | None = None
    if _STAGE_FOLDER.fullmatch(parent):
        marker = _marker(folder / STAGE_MARKER)
        if marker is None:
            return [
                f"{folder}: this stage's adapter is unfinished (no valid {STAGE_MARKER}, which `taiyi finetune` "
                "writes last): the stage was interrupted; finish it with `taiyi finetune ... --resume`"
            ]
        sizes = marker.get("files") if isinstance(marker.get("files"), dict) else None
    elif parent.startswith(".step-") or (
        _CHECKPOINT_FOLDER.fullmatch(parent) and _marker(folder.parent / CHECKPOINT_MARKER) is None
    ):  # a checkpoint still being written (a temporary name), or one without its marker
        return [f"{folder}: the checkpoint {folder.parent} is unfinished (no {CHECKPOINT_MARKER}); use an earlier one"]
    elif _CHECKPOINT_FOLDER.fullmatch(parent):  # the checkpoint's marker recorded the adapter's files too
        recorded = (_marker(folder.parent / CHECKPOINT_MARKER) or {}).get("files")
        prefix = folder.name + "/"
        if isinstance(recorded, dict):
            sizes = {name.removeprefix(prefix): size for name, size in recorded.items() if name.startswith(prefix)}
    if not (folder / "adapter_config.json").is_file():
        return [f"{folder}: not a PEFT adapter (no adapter_config.json)"]
    weights = [folder / name for name in ("adapter_model.safetensors", "adapter_model.bin")]
    if not any(path.is_file() for path in weights):
        return [f"{folder}: no adapter weights (adapter_model.safetensors)"]
    return folder_problems(folder, sizes, skip=(STAGE_MARKER,))


def check_adapter(folder: str | Path, what: str = "the adapter") -> Path:
    """`folder` when it holds a complete adapter; `IncompleteFilesError` saying what is wrong
    (`what` names its use: "stage 2's starting adapter")."""
    problems = adapter_problems(folder)
    if problems:
        raise IncompleteFilesError(f"{what} cannot be used: " + "; ".join(problems))
    return Path(folder)


def check_checkpoint(folder: str | Path) -> dict:
    """The marker of a complete training checkpoint; `IncompleteFilesError` naming the first
    truncated or missing file, and what to do (remove the checkpoint to resume from the one before)."""
    folder = Path(folder)
    marker = _marker(folder / CHECKPOINT_MARKER)
    if marker is None:
        raise IncompleteFilesError(f"checkpoint {folder} is unfinished (no valid {CHECKPOINT_MARKER})")
    sizes = marker.get("files") if isinstance(marker.get("files"), dict) else None
    problems = folder_problems(folder, sizes, skip=(CHECKPOINT_MARKER,))
    if problems:
        raise IncompleteFilesError(
            f"checkpoint {folder} is damaged: {'; '.join(problems)}. Remove this checkpoint folder to resume "
            "from the one before it, or start again without --resume in a new --output-dir"
        )
    return marker
