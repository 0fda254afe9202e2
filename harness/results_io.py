"""lm-eval's results layout, read and written in one place.

lm-eval 0.4.13 (`EvaluationTracker.save_results_aggregated` / `save_results_samples`) writes

    <output_path>/<model_name_sanitized>/results_<date_id>.json
    <output_path>/<model_name_sanitized>/samples_<task>_<date_id>.jsonl

The BERT baselines write the same layout (`baselines/results.py`), the demo and `taiyi baseline
run` find the file lm-eval just wrote and amend it (skipped sets, per-type tables), and the
leaderboard, the report and `taiyi compare` read them all back: every one of them goes through
this module, samples records included.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taiyi_bench.harness.atomic_files import atomic_write_text
from taiyi_bench.harness.records import Example, Prediction

if TYPE_CHECKING:
    from taiyi_bench.harness.registry import DatasetSpec

RESULTS_GLOB = "results_*.json"
# Top-level key of a results file: task name -> why its set was not run (missing from the data
# directory, `--skip-missing`). The leaderboard shows such sets as missing, never as zero.
SKIPPED_SETS_KEY = "taiyi_skipped_sets"
# Top-level key of a results file: {task: per-type table} (`verdicts.per_type_table`), computed
# from its samples (`amend_results`; the BERT writer writes it itself).
PER_TYPE_KEY = "taiyi_per_type"


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


def write_results(path: Path, data: Mapping[str, Any]) -> None:
    """(Re)write a results file atomically, as lm-eval lays it out (indented, Chinese as written)."""
    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


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


def model_args_of(data: Mapping[str, Any]) -> dict[str, Any]:
    """lm-eval's `config.model_args` as a mapping (lm-eval writes the `k=v,k=v` string it was given
    as it was given, or a dict)."""
    args = (data.get("config") or {}).get("model_args") if isinstance(data.get("config"), Mapping) else None
    if isinstance(args, Mapping):
        return dict(args)
    return dict(part.split("=", 1) for part in args.split(",") if "=" in part) if isinstance(args, str) else {}


def recorded_identity(data: Mapping[str, Any]) -> dict[str, Any] | None:
    """The `model_identity` the file's taiyi_* tasks recorded (`provenance.model_identity`); None
    in files written before it was."""
    for config in (data.get("configs") or {}).values():
        identity = (config.get("metadata") or {}).get("model_identity") if isinstance(config, Mapping) else None
        if isinstance(identity, Mapping) and identity.get("name"):
            return dict(identity)
    return None


def portable_results(data: Mapping[str, Any], replacements: Mapping[str, str] | None = None,
                     identity: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A results file with no path of the machine that wrote it: lm-eval's own fields
    (`config.model_args`, `model_name`, `model_name_sanitized`, each task's metadata) name the
    model by its identity (`identity`, else the one its tasks recorded, else worked out from the
    model args) and the data and task folders by placeholders (`provenance.path_replacements`);
    `replacements` adds other paths the writer knows. Every taiyi_* task's metadata carries the
    identity. A file made portable before comes back unchanged."""
    from taiyi_bench.harness import provenance

    args = model_args_of(data)
    identity = identity or recorded_identity(data) or provenance.evaluated_model(args)
    metadatas = [config.get("metadata") for config in (data.get("configs") or {}).values() if isinstance(config, Mapping)]
    table: dict[str, str] = {}
    for metadata in [{}, *(m for m in metadatas if isinstance(m, Mapping))]:
        table.update(provenance.path_replacements(args, metadata, identity))
    out = provenance.portable(dict(data), {**table, **(replacements or {})})
    if identity is not None:
        for task, config in (out.get("configs") or {}).items():
            if str(task).startswith("taiyi_") and isinstance(config.get("metadata"), dict):
                config["metadata"]["model_identity"] = dict(identity)
        out["model_name"] = identity["name"]
        out["model_name_sanitized"] = model_slug(identity["name"])
    return out


def amend_results(results_path: Path, skipped: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Add what lm-eval does not write to the results file it just wrote, in one atomic rewrite:
    the sets the runner skipped (task name -> reason; the leaderboard shows them as missing for
    exactly this run) and the per-type table of every taiyi_* task with a samples file beside it;
    and write lm-eval's path-bearing fields portably (`portable_results`; the folder lm-eval named
    after the model's path keeps its name, so the caller's path stays valid).
    Returns the per-type tables added."""
    from taiyi_bench.harness.registry import REGISTRY
    from taiyi_bench.harness.verdicts import per_type_counts, per_type_table

    data = read_results(results_path)
    tables: dict[str, Any] = {}
    for task in data.get("results", {}):
        spec = REGISTRY.get(str(task).removeprefix("taiyi_"))
        samples = samples_beside(results_path, str(task)) if spec is not None else None
        if samples is not None:
            verdicts = (record_verdicts(spec, record) for record in iter_sample_records(samples))
            tables[task] = per_type_table(per_type_counts(v for v in verdicts if v is not None), spec)
    if tables:
        data[PER_TYPE_KEY] = {**(data.get(PER_TYPE_KEY) or {}), **tables}
    if skipped:
        data[SKIPPED_SETS_KEY] = dict(skipped)
    amended = portable_results(data)
    if amended != read_results(results_path):
        write_results(results_path, amended)
    return tables


# --- samples records ----------------------------------------------------------------------------


def iter_sample_records(path: Path, warnings: list[str] | None = None, *, filter_name: str = "none") -> Iterator[dict[str, Any]]:
    """The records of a samples file for one filter; unreadable lines are skipped with a warning
    naming the file and line."""
    sink = warnings if warnings is not None else []
    for _, record in iter_jsonl(path, lambda line_no, why: sink.append(f"{path}, line {line_no}: {why}; line skipped")):
        if isinstance(record, dict) and record.get("filter", "none") == filter_name:
            yield record


def record_example(record: Mapping[str, Any]) -> Example | None:
    """The unit's `Example` from a samples record's doc (None when the doc is not a taiyi_* doc)."""
    doc = record.get("doc")
    if not isinstance(doc, dict) or "example" not in doc:
        return None
    raw = doc["example"]
    try:
        return Example.from_dict(json.loads(raw) if isinstance(raw, str) else raw)
    except (TypeError, ValueError, KeyError):
        return None


def record_output(record: Mapping[str, Any]) -> str | None:
    """The model's text for a samples record (lm-eval's filtered response)."""
    response = record.get("filtered_resps")
    while isinstance(response, list) and response:
        response = response[0]
    return response if isinstance(response, str) else None


def record_verdicts(spec: DatasetSpec, record: Mapping[str, Any]) -> dict[str, Any] | None:
    """The unit's verdicts: as logged, or (for samples written before verdicts were logged)
    computed from the doc and the logged prediction or output. None when neither is possible."""
    logged = record.get("verdicts")
    if isinstance(logged, dict) and "gold" in logged and "predicted" in logged:
        return logged
    example = record_example(record)
    if example is None:
        return None
    from taiyi_bench.harness.parsers import parse_output
    from taiyi_bench.harness.verdicts import unit_verdicts

    stored = record.get("prediction")
    if isinstance(stored, dict):  # a BERT baseline's samples: the structured prediction
        prediction = Prediction(
            entities={tuple(x) for x in stored.get("entities", [])},
            relations={tuple(x) for x in stored.get("relations", [])},
            labels=set(stored.get("labels", [])),
            choice=stored.get("choice"),
        )
    else:
        prediction = parse_output(spec, record_output(record), options=example.options or None)
    return unit_verdicts(spec, example, prediction)


# --- does a samples file belong with its results file? -----------------------------------------


def samples_problem(results_path: Path, data: Mapping[str, Any], task: str, samples: Path) -> str | None:
    """Why `samples` is not the samples file of `task` in the results file `data` (read from
    `results_path`); None when it is. One line naming the file.

    lm-eval writes the results file and then the samples file, so a run killed in between, a copy
    cut at a line or lines pasted twice leave a samples file that a rescore or a paired test would
    trust: KUAKE-QIC went from 20.0 to 100.0 on 1 unit of 5. Checked against what the results file
    recorded: per filter, as many units as `n-samples` effective, no unit twice (doc_id, doc id
    or doc_hash), and every line's hashes concatenated give lm-eval's `task_hashes` entry.
    """
    def bad_line(line_no: int, why: str) -> None:
        raise ValueError(f"{samples}, line {line_no}: {why}")

    try:
        records = list(iter_jsonl(samples, bad_line))
    except ValueError as exc:
        return str(exc)
    except (OSError, UnicodeDecodeError) as exc:
        return f"{samples}: cannot be read ({getattr(exc, 'strerror', None) or exc})"
    if not records:
        return f"{samples}: no units in it, but {results_path.name} has a result for {task} (an interrupted run?)"
    by_filter: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for line_no, record in records:
        if not isinstance(record, dict):
            return f"{samples}, line {line_no}: not an lm-eval sample (a JSON {type(record).__name__})"
        by_filter.setdefault(str(record.get("filter", "none")), []).append((line_no, record))
    counts = data.get("n-samples")
    counts = counts.get(task) if isinstance(counts, Mapping) else None
    effective = counts.get("effective") if isinstance(counts, Mapping) else None
    for filter_name, lines in by_filter.items():
        if _is_count(effective) and len(lines) != effective:
            return (
                f"{samples}: {len(lines)} unit(s) (filter {filter_name}), but {results_path.name} counts {effective} "
                "(n-samples effective): the samples file is truncated, has lines twice, or is from another run"
            )
        seen: dict[tuple[str, str], int] = {}
        for line_no, record in lines:
            doc = record.get("doc")
            keys = [("doc_id", record.get("doc_id")), ("unit", doc.get("id") if isinstance(doc, dict) else None),
                    ("doc_hash", record.get("doc_hash"))]
            for kind, value in keys:
                if value is None or isinstance(value, (dict, list)):
                    continue
                first = seen.setdefault((kind, str(value)), line_no)
                if first != line_no:
                    return (f"{samples}, line {line_no}: {kind} {value!r} again (first on line {first}): "
                            "lines duplicated, the file does not match its results file")
    recorded = data.get("task_hashes")
    recorded = recorded.get(task) if isinstance(recorded, Mapping) else None
    hashes = [[record.get(k) for k in ("doc_hash", "prompt_hash", "target_hash")] for _, record in records]
    complete = isinstance(recorded, str) and bool(recorded) and all(isinstance(h, str) for row in hashes for h in row)
    # lm-eval's `hash_string` (sha256 of the UTF-8 text; the library does not import lm-eval).
    if complete and hashlib.sha256("".join("".join(row) for row in hashes).encode("utf-8")).hexdigest() != recorded:
        return (f"{samples}: its units do not hash to the task_hashes {results_path.name} recorded for {task}: "
                "the samples file was changed, cut or is from another run")
    return None


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


# --- are the unit counts a results file claims possible? ---------------------------------------

# How a message names each count: where it stands in the results file.
_COUNT_NAMES = {"n_original": "n-samples original", "n_effective": "n-samples effective"}


def claimed_counts_problem(
    spec: DatasetSpec,
    *,
    completeness: str,
    data_source: str,
    counts: Mapping[str, Any],
) -> tuple[str, str] | None:
    """(what to do, why) when the unit counts a results file claims for one set cannot be true;
    None when they can. `counts`: `n_original`, `n_effective` (lm-eval's n-samples),
    `eval_units`, `expected_units` (the task's metadata), each as recorded (None when absent).

    "refuse": a count that no run can produce (negative, not a whole number, more units evaluated
    than read): the file is damaged or hand-made and its number means nothing.
    "incomplete": the registry knows the official split's size and the file claims the official
    data (`completeness: full`, or real data) with another count, e.g. 9,999 HoC units.
    The leaderboard, the report and `taiyi compare` ask here (`leaderboard.parse.read_results_file`).
    """
    from taiyi_bench.harness.provenance import expected_units

    for name, value in counts.items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or value < 0 or not float(value).is_integer():
            return "refuse", f"{_COUNT_NAMES.get(name, name)} is {value!r}, not a count of units"
    original, effective = counts.get("n_original"), counts.get("n_effective")
    if original is not None and effective is not None and effective > original:
        return "refuse", f"n-samples says {int(effective)} units evaluated of {int(original)} read"
    official = expected_units(spec, spec.eval_split)
    if official is None or data_source == "samples" or completeness in ("samples", "incomplete", "modified data"):
        return None
    claimed = {name: int(value) for name, value in counts.items() if value is not None}
    if completeness == "full":
        # A full run read exactly the official split (and evaluated no more of it than there is).
        wrong = [(name, value) for name, value in claimed.items()
                 if (value != official if name != "n_effective" else value > official)]
    else:
        # Whatever else it claims, no run of the real data reads more units than the split has.
        wrong = [(name, value) for name, value in claimed.items() if value > official] if data_source == "data" else []
    if wrong:
        shown = ", ".join(f"{_COUNT_NAMES.get(name, name)} {value:,}" for name, value in wrong)
        return "incomplete", (f"claims {completeness!r} on {data_source!r} data, but counts {shown}; the official "
                              f"{spec.display_name} {spec.eval_split} split has {official:,} units")
    return None
