"""lm-eval's results layout, read and written in one place.

lm-eval 0.4.13 (`EvaluationTracker.save_results_aggregated` / `save_results_samples`) writes

    <output_path>/<model_name_sanitized>/results_<date_id>.json
    <output_path>/<model_name_sanitized>/samples_<task>_<date_id>.jsonl

The BERT baselines write the same layout (`baselines/results.py`), the runner adds the sets it
skipped to a results file, the demo and `taiyi baseline run` find the file lm-eval just wrote, and
the leaderboard reads them all back: every one of them goes through this module.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from harness.atomic_files import atomic_write_text

RESULTS_GLOB = "results_*.json"
# Top-level key of a results file: task name -> why its set was not run (missing from the data
# directory, `--skip-missing`). The leaderboard shows such sets as missing, never as zero.
SKIPPED_SETS_KEY = "taiyi_skipped_sets"


def model_slug(model_name: str) -> str:
    """A folder name for a model name: lm-eval's sanitising, then anything but word characters,
    `.`, `+` and `-` replaced. The result is one path component that cannot climb out of its
    folder (`..` and `.` become `model`)."""
    slug = re.sub(r"[\"<>:/|\\?*\[\]]+", "__", model_name)
    slug = re.sub(r"[^\w.+-]+", "_", slug).strip("_")
    return "model" if slug.strip(".") == "" else slug


def new_date_id() -> str:
    """lm-eval's timestamp for file names (`2026-11-30T21-33-02.123456`)."""
    return datetime.now().isoformat().replace(":", "-")


def results_file(run_dir: Path, date_id: str) -> Path:
    return run_dir / f"results_{date_id}.json"


def samples_file(run_dir: Path, task: str, date_id: str) -> Path:
    return run_dir / f"samples_{task}_{date_id}.jsonl"


def date_id_of(results_path: Path) -> str | None:
    """The timestamp in a results file's name (None for a file named otherwise)."""
    stem = results_path.stem
    return stem.removeprefix("results_") if stem.startswith("results_") else None


def samples_beside(results_path: Path, task: str) -> Path | None:
    """The samples file lm-eval wrote next to `results_path` for `task`, if there is one."""
    date_id = date_id_of(results_path)
    if not date_id:
        return None
    path = samples_file(results_path.parent, task, date_id)
    return path if path.is_file() else None


def write_run_files(results_path: Path, results: Mapping[str, Any], samples: Mapping[str, Sequence[Mapping[str, Any]]]) -> Path:
    """Write the samples files (`task -> records`) and then the results file, each atomically:
    a results file never points at samples that are not there yet."""
    date_id = date_id_of(results_path)
    if date_id is None:
        raise ValueError(f"{results_path}: a results file is named results_<date_id>.json")
    for task, records in samples.items():
        lines = [json.dumps(record, ensure_ascii=False) for record in records]
        atomic_write_text(samples_file(results_path.parent, task, date_id), "\n".join(lines) + ("\n" if lines else ""))
    atomic_write_text(results_path, json.dumps(results, indent=2, ensure_ascii=False, default=list) + "\n")
    return results_path


def iter_jsonl(path: Path, on_bad_line: Callable[[int, str], None]) -> Iterator[tuple[int, Any]]:
    """(line number, value) for each non-blank line of a JSON-lines file (samples files, training
    conversations). A line that is not JSON goes to `on_bad_line(line number, reason)`, which
    decides: raise (a file the user gave us) or warn and go on (a long samples file)."""
    with Path(path).open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield line_no, json.loads(line)
            except json.JSONDecodeError as exc:
                on_bad_line(line_no, f"not valid JSON ({exc.msg})")


def read_results(path: Path) -> dict[str, Any]:
    """A results file as a dict. `ValueError` (with the file named) when it is not JSON or not an
    object; `OSError` when it cannot be read."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text ({exc.reason})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: no 'results' mapping (a JSON {type(data).__name__}, not an lm-eval results file)")
    return data


def find_results_files(paths: Iterable[str | os.PathLike], warnings: list[str]) -> list[Path]:
    """`results_*.json` files: the paths themselves if files, else found recursively below them;
    each path that yields nothing adds a warning. Duplicates (one file named twice) count once."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            hits = sorted(p for p in path.rglob(RESULTS_GLOB) if p.is_file())
            if not hits:
                warnings.append(f"{path}: no {RESULTS_GLOB} files found below this folder")
            found.extend(hits)
        else:
            warnings.append(f"{path}: no such file or folder; skipped")
    unique: dict[Path, Path] = {}
    for path in found:
        unique.setdefault(path.resolve(), path)
    return list(unique.values())


def newest_results(output_path: Path) -> Path | None:
    """The results file written last under `output_path` (lm-eval adds a model-name folder)."""
    files = sorted(Path(output_path).glob(f"**/{RESULTS_GLOB}"), key=lambda p: p.stat().st_mtime)
    return files[-1] if files else None


def record_skipped_sets(results_path: Path, skipped: Mapping[str, str]) -> None:
    """Add the skipped sets (task name -> reason) to a results file, atomically, so the
    leaderboard shows them as missing for exactly this run."""
    data = read_results(results_path)
    data[SKIPPED_SETS_KEY] = dict(skipped)
    atomic_write_text(results_path, json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
