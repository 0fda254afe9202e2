"""`taiyi reference`: regenerate the measured reference rows in results/reference/.

    taiyi reference --data-dir DIR [--out results/reference] [--work runs/reference]
                    [--parts minilm,base,finetune,tuned,compare] [--batch-size 8] [--dry-run]

Five parts, run in this order by default (the most valuable rows first on a busy CPU):

  minilm    MiniLM-L6 fine-tuned (`taiyi baseline train`) on every set whose train split is in the
            data directory, scored on the FULL official evaluation split; decisions a family tunes
            (the RE pair threshold) are chosen on the dev split; seeded; CPU-sized fixed steps.
  base      SmolLM2-135M-Instruct zero-shot through lm-eval (its chat template, each task's own
            generation budget) on the first SLICE (50) units of each evaluation split present.
  finetune  SmolLM2 fine-tuned with the two-stage recipe `cpu_smollm2_reference` on the real train
            splits (packing on; 12-14 minutes measured on 2 CPU cores).
  tuned     the fine-tuned adapter on the same slices, in the format it was trained in.
  compare   base vs fine-tuned: paired bootstrap test per set and overall -> comparison.json.

Every run is one subprocess (`taiyi baseline ...`, `taiyi finetune`, `lm_eval run`), so what this
command does is what a user can type. It resumes: a set whose results file under
`<out>/<part>/<set>/` has its samples file, agreeing with it, is skipped (a results file alone, left
by a run killed between lm-eval's two writes, is said, moved aside as `*.incomplete` and run
again), and the fine-tuning continues from its last checkpoint. The comparison names every set it
could not compare, and why. Each step's wall time is printed and kept in `<out>/timings.json`;
`<out>/plan.json` records the sets shown as "no train split" (never as zero).

Everything it keeps is made portable when it finishes (`make_portable`): no file under <out> names
a path of the machine that ran it (models are named by their identity, folders by placeholders
such as `<data_dir>` and `<work>`), and lm-eval's run folders, named after the model's path, take
the model's name. Resuming reads only the results and samples files' contents, so a portable run
still counts as done.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from taiyi_bench.baselines.results import keep_predicted_spans
from taiyi_bench.harness.atomic_files import atomic_write_text
from taiyi_bench.harness.errors import ConfigError
from taiyi_bench.harness.lmeval.plugin import tasks_dir
from taiyi_bench.harness.local_models import local_model_folders
from taiyi_bench.harness.paths import resolve_data_dir
from taiyi_bench.harness.provenance import DATA_DIR_PLACEHOLDER, TASKS_PLACEHOLDER, is_machine_path, portable
from taiyi_bench.harness.registry import PAPER_ORDER, REGISTRY, get_spec, iter_specs
from taiyi_bench.harness.results_io import (
    RESULTS_GLOB,
    date_id_of,
    model_args_of,
    portable_results,
    read_results,
    samples_beside,
    samples_file,
    samples_problem,
    write_results,
)

PARTS = ("minilm", "base", "finetune", "tuned", "compare")
SLICE = 50
SEED = 42
LLM_CONFIG = "smollm2-135m-instruct"
RECIPE = "cpu_smollm2_reference"
TUNED_NAME = "smollm2-135m-reference-ft"
# What the kept files say instead of the folders this command was given (`make_portable`).
WORK_PLACEHOLDER, OUT_PLACEHOLDER = "<work>", "<out>"
# The MiniLM steps per set, fixed before any run and sized to the CPU (not tuned on any split):
# batch 16, lr 2e-4 (a 6-layer encoder), each set's max_length from baselines/encoders.yaml except
# PubMedQA (384 sub-words) and BC5CDR CID (192, tagger windows and pair texts alike; 35-40% of the
# dev pair texts are longer and lose their last sentences), to fit the time on 2 shared cores.
MINILM_COMMON = {"batch-size": 16, "learning-rate": 2e-4, "seed": SEED}
# The CPU-sized MiniLM run of each set with a train split (`reference_run` in the registry), as
# `taiyi baseline train` options.
MINILM_PLAN: dict[str, dict[str, Any]] = {
    spec.key: {name.replace("_", "-"): value for name, value in spec.reference_run.items()}
    for spec in iter_specs() if spec.reference_run
}
# Short answers first: the sets with the largest generation budgets (CMeEE 768, CMeIE 1280 tokens)
# take most of the time and come last.
LLM_ORDER = tuple(spec.key for spec in sorted(iter_specs(), key=lambda spec: spec.max_gen_toks or 0))


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "reference", help="regenerate the reference runs (MiniLM, SmolLM2 base and fine-tuned) in results/reference",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data-dir", help="the real data (default $TAIYI_DATA_DIR); required: references are never run on samples")
    parser.add_argument("--out", default="results/reference", help="results folder (default results/reference)")
    parser.add_argument("--work", default="runs/reference", help="checkpoints and adapters, not committed (default runs/reference)")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, in order: {','.join(PARTS)}")
    parser.add_argument("--sets", help="comma-separated set keys (default: every set the part applies to)")
    parser.add_argument("--batch-size", type=int, default=8, help="lm-eval batch size for the SmolLM2 slices (default 8)")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    parser.set_defaults(func=run)


def _taiyi(*args: str) -> list[str]:
    return [sys.executable, "-m", "taiyi_bench.harness.apps.cli", *args]


SAMPLES_LIMIT = 1_000_000  # bytes: larger samples files are not committed (a full NER test split: 11 MB)


def park_large_samples(out: Path, work: Path) -> None:
    """Move samples files over SAMPLES_LIMIT from <out> to <work>/samples/ (same relative path):
    the results file stays and says what was scored; the per-unit file is kept, uncommitted, and a
    span model's predicted spans stay beside the results (`keep_predicted_spans`)."""
    for samples in sorted(out.glob("**/samples_*.jsonl")):
        if samples.stat().st_size > SAMPLES_LIMIT:
            keep_predicted_spans(samples)
            target = work / "samples" / samples.relative_to(out)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(samples), target)
            print(f"[reference] {samples.name}: {target.stat().st_size} bytes, "
                  f"moved to {target} (not committed)", flush=True)


@dataclass
class SetState:
    """Whether one set of one part is finished: its newest results file and, when it is not
    finished (or finished with a caveat), why."""

    results: Path | None
    problem: str | None = None  # why the set must run again; None: done
    note: str | None = None  # done, but worth saying (samples parked or not kept)

    @property
    def done(self) -> bool:
        return self.results is not None and self.problem is None


def set_state(folder: Path, out: Path, work: Path | None = None, *, samples_written_first: bool = False) -> SetState:
    """Is the set whose runs live in `folder` (below `out`) finished?

    Only when its newest results file has, for every task in it, a samples file that agrees with
    it (`taiyi_bench.harness.results_io.samples_problem`): beside it, or moved to `<work>/samples/` by
    `park_large_samples`. lm-eval writes the results file first and the samples second, so a run
    killed between the two leaves a results file alone, which once counted as done forever (and
    the comparison then dropped the set). `samples_written_first`: the writer (the BERT baselines'
    `write_run_files`) writes the samples first, so a results file alone means its samples were
    parked or not kept, not an interrupted run: done, with a note.
    """
    found = _latest(folder)
    if found is None:
        return SetState(None, "not run")
    try:
        data = read_results(found)
    except (OSError, ValueError) as exc:
        return SetState(found, f"{found}: unreadable ({exc})")
    tasks = [task for task in (data.get("results") or {}) if str(task).startswith("taiyi_")]
    if not tasks:
        return SetState(found, f"{found}: no taiyi_* result in it")
    for task in tasks:
        samples = samples_beside(found, task)
        if samples is None and work is not None and found.is_relative_to(out):
            parked = work / "samples" / samples_file(found.parent, task, date_id_of(found) or "").relative_to(out)
            samples = parked if parked.is_file() else None
        if samples is None:
            if samples_written_first:
                return SetState(found, note=f"{found.name}: its samples file is not here (parked under --work, or not kept)")
            return SetState(found, f"{found}: no samples file for {task} beside it (lm-eval writes the results "
                                   "first and the samples second: the run was interrupted between the two)")
        problem = samples_problem(found, data, task, samples)
        if problem:
            return SetState(found, problem)
    return SetState(found)


def _ready(state: SetState, label: str, *, dry_run: bool) -> bool:
    """True when the set is done (said, and skipped); else says loudly why it runs again and moves
    the unfinished results file (and its samples) aside, so that nothing reads it as a result."""
    if state.done:
        print(f"[reference] {label}: done before, skipped" + (f" ({state.note})" if state.note else ""), flush=True)
        return True
    if state.results is None:
        return False
    print(f"[reference] {label}: NOT FINISHED, running it again: {state.problem}", flush=True)
    if not dry_run:
        date_id = date_id_of(state.results)
        for stale in [state.results, *state.results.parent.glob(f"samples_*_{date_id}.jsonl")]:
            aside = stale.with_name(stale.name + ".incomplete")
            stale.replace(aside)
            print(f"[reference] {label}: moved {stale} to {aside.name}", flush=True)
    return False


class Steps:
    """Prints and records the wall time of each step in <out>/timings.json (atomically)."""

    def __init__(self, out: Path, dry_run: bool):
        self.path = out / "timings.json"
        self.dry_run = dry_run

    def run(self, name: str, command: Sequence[str], env: dict[str, str] | None = None) -> None:
        print(f"[reference] {name}: {' '.join(command)}", flush=True)
        if self.dry_run:
            return
        started = time.perf_counter()
        completed = subprocess.run(list(command), env=env, check=False)
        seconds = round(time.perf_counter() - started, 1)
        print(f"[reference] {name}: {seconds:.0f} s (exit {completed.returncode})", flush=True)
        if completed.returncode != 0:
            raise ConfigError(f"reference step {name} failed (exit {completed.returncode}); rerun `taiyi reference` to resume")
        self.record(name, seconds)

    def record(self, name: str, seconds: float) -> None:
        # Re-read first and add only this step: parts may run as separate processes (MiniLM
        # beside the LLM parts), each writing its own steps.
        times = json.loads(self.path.read_text(encoding="utf-8")) if self.path.is_file() else {}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path, json.dumps({**times, name: seconds}, indent=2, sort_keys=True) + "\n")


def _env() -> dict[str, str]:
    # One thread per process: two spinning OpenMP threads on shared cores stall (see finetune README).
    return {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", **os.environ}


def _selected(names: Sequence[str], wanted: Sequence[str] | None) -> list[str]:
    """`names` in the part's order, or the ones `--sets` names in the order it names them."""
    return list(names) if wanted is None else [n for n in wanted if n in names]


def minilm_plan(data_dir: Path) -> dict[str, str]:
    """set -> "run" or why it is not run ("no train split"), for every registry set."""
    from taiyi_bench.harness.loading import available_splits

    plan = {}
    for spec in iter_specs():
        splits = available_splits(spec.key, data_dir)
        if spec.eval_split not in splits:
            plan[spec.key] = "no evaluation split in the data directory"
        elif "train" not in splits or spec.key not in MINILM_PLAN:
            plan[spec.key] = "no train split"
        else:
            plan[spec.key] = "run"
    return plan


def run_minilm(steps: Steps, out: Path, work: Path, data_dir: Path, wanted: Sequence[str] | None) -> None:
    plan = minilm_plan(data_dir)
    if not steps.dry_run:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "plan.json", json.dumps({"minilm": plan, "slice": SLICE}, indent=2) + "\n")
    for key in _selected(list(MINILM_PLAN), wanted):
        if plan.get(key) != "run":
            print(f"[reference] minilm {key}: {plan.get(key)}", flush=True)
            continue
        results = out / "minilm" / key
        if _ready(set_state(results, out, work, samples_written_first=True), f"minilm {key}", dry_run=steps.dry_run):
            continue
        options = [f"--{k}={v}" for k, v in {**MINILM_COMMON, **MINILM_PLAN[key]}.items()]
        steps.run(f"minilm {key}", _taiyi(
            "baseline", "train", "--task", key, "--encoder", "minilm", "--data-dir", str(data_dir),
            "--output-dir", str(work / "minilm" / key), "--results-dir", str(results), *options,
        ), _env())
        park_large_samples(out, work)


def _llm_sets(data_dir: Path, wanted: Sequence[str] | None) -> list[str]:
    from taiyi_bench.harness.loading import available_splits

    keys = []
    for key in _selected(LLM_ORDER, wanted):
        if get_spec(key).eval_split in available_splits(key, data_dir):
            keys.append(key)
        else:
            print(f"[reference] {key}: no evaluation split in {data_dir}, skipped", flush=True)
    return keys


def run_base(steps: Steps, out: Path, data_dir: Path, wanted: Sequence[str] | None, batch_size: int) -> None:
    for key in _llm_sets(data_dir, wanted):
        results = out / "smollm2-base" / key
        if _ready(set_state(results, out), f"base {key}", dry_run=steps.dry_run):
            continue
        steps.run(f"base {key}", _taiyi(
            "baseline", "run", LLM_CONFIG, "--tasks", key, "--limit", str(SLICE), "--batch-size", str(batch_size),
            "--data-dir", str(data_dir), "--output-root", str(results),
        ), _env())


def adapter_dir(work: Path) -> Path:
    """The final adapter, copied under a name that says what it is: lm-eval and the leaderboard
    name an adapter run after the adapter's folder, and `stage2/adapter` would read "adapter"."""
    return work / "SmolLM2-135M-Instruct-reference-ft"


def run_finetune(steps: Steps, out: Path, work: Path, data_dir: Path) -> None:
    run_dir = work / "smollm2_ft"
    final = run_dir / "stage2" / "adapter"
    if final.is_dir():
        print("[reference] finetune: done before, skipped", flush=True)
    else:
        # Resume where an interruption left off: a finished stage 1 is kept and stage 2 starts from
        # its adapter; a stage with checkpoints continues from the latest.
        stage = ["--stage", "2"] if (run_dir / "stage1" / "adapter").is_dir() else []
        started = run_dir / ("stage2" if stage else "stage1") / "checkpoints"
        resume = ["--resume"] if started.is_dir() and any(started.iterdir()) else []
        steps.run("finetune" + (" stage 2" if stage else ""), _taiyi(
            "finetune", RECIPE, "--output-dir", str(run_dir), "-o", f"data.tasks.data_dir={data_dir}", *stage, *resume,
        ), _env())
    if steps.dry_run:
        return
    if not adapter_dir(work).is_dir():
        shutil.copytree(final, adapter_dir(work))
    # The small records of the run travel with the results (the adapter stays in --work).
    keep = out / "smollm2-ft" / "finetune"
    for name in ("resolved_config.yaml", "train_log.jsonl", "lm_eval_command.txt", "contamination.json",
                 "stage1/data_report.json", "stage1/run_info.json", "stage2/data_report.json", "stage2/run_info.json"):
        source = run_dir / name
        if source.is_file():
            (keep / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, keep / name)


def tuned_command(work: Path, key: str, results: Path, data_dir: Path, batch_size: int) -> list[str]:
    """lm-eval on the fine-tuned adapter in the format its run recorded
    (`taiyi_bench.finetune.adapter_eval`: never assumed), on the same slice, with the same budgets
    and decoding as the base run."""
    from taiyi_bench.finetune.adapter_eval import adapter_eval

    argv = adapter_eval(adapter_dir(work)).lm_eval_argv(f"taiyi_{key}", results / TUNED_NAME, dtype="float32")
    return [
        sys.executable, "-m", *argv, "--batch_size", str(batch_size), "--gen_kwargs", "do_sample=False,temperature=0.0",
        "--device", "cpu", "--limit", str(SLICE), "--metadata", json.dumps({"data_dir": str(data_dir)}),
    ]


def run_tuned(steps: Steps, out: Path, work: Path, data_dir: Path, wanted: Sequence[str] | None, batch_size: int) -> None:
    if not adapter_dir(work).is_dir():
        if steps.dry_run:  # the command is read from what the finetune part records in the adapter
            print("[reference] tuned: after the finetune part, lm_eval in the format its adapter records", flush=True)
            return
        raise ConfigError(f"no fine-tuned adapter in {adapter_dir(work)}: run the finetune part first")
    for key in _llm_sets(data_dir, wanted):
        results = out / "smollm2-ft" / key
        if _ready(set_state(results, out), f"tuned {key}", dry_run=steps.dry_run):
            continue
        steps.run(f"tuned {key}", tuned_command(work, key, results, data_dir, batch_size), _env())


def _latest(folder: Path) -> Path | None:
    """The newest results file below `folder`, by the date in its name (not by its folder's name:
    a portable run's folder and a new run's path-named one sort in no useful order)."""
    found = sorted(folder.glob(f"**/{RESULTS_GLOB}"), key=lambda path: (date_id_of(path) or "", str(path)))
    return found[-1] if found else None


# Files whose bytes are hashed into their results file (`task_hashes`): never rewritten.
_HASHED_FILES = ("samples_*.jsonl", "predicted_spans_*.jsonl")


def make_portable(out: Path, replacements: Mapping[str, str]) -> list[Path]:
    """Rewrite what is kept under `out` so that no file names a path of the machine that made it:
    each results file through `results_io.portable_results` (models by their identity, the data
    and task folders by placeholders), its lm-eval run folder (named after the model's path) renamed
    to the model's name, and every other text file (logs, fine-tuning records) with `replacements`
    (machine path -> placeholder) and the same model names. Samples files hold no paths and stay
    byte for byte. Re-runnable: a portable file is left as it is. Returns the files rewritten."""
    table = {**local_model_folders(), **replacements}
    changed = []
    for path in sorted(out.glob(f"**/{RESULTS_GLOB}")):
        data = read_results(path)
        rewritten = portable_results(data, table)
        old_folder, new_folder = data.get("model_name_sanitized"), rewritten.get("model_name_sanitized")
        before, after = model_args_of(data), model_args_of(rewritten)  # the model folders, for the logs
        table.update({value: after[key] for key, value in before.items() if isinstance(value, str) and is_machine_path(value)})
        if rewritten != data:
            write_results(path, rewritten)
            changed.append(path)
        run_folder = next((f for f in (path.parent, path.parent.parent) if f.name == old_folder), None)
        if run_folder is not None and isinstance(new_folder, str) and new_folder != old_folder:
            table[old_folder] = new_folder
            _merge_folder(run_folder, run_folder.with_name(new_folder))
    for path in sorted(p for p in out.rglob("*") if p.is_file() and not p.match(RESULTS_GLOB)
                       and not any(p.match(pattern) for pattern in _HASHED_FILES)):
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        if (portable_text := portable(text, table)) != text:
            atomic_write_text(path, portable_text)
            changed.append(path)
    return changed


def _merge_folder(source: Path, target: Path) -> None:
    """Move everything in `source` into `target` (made if needed), then remove `source`: a
    run folder renamed into one that earlier runs of the same model already use."""
    target.mkdir(exist_ok=True)
    for child in source.iterdir():
        child.replace(target / child.name)
    source.rmdir()


def slice_units(out: Path, part: str, key: str) -> tuple[Any, dict[str, Any]] | str:
    """The per-unit headline values of one slice run and its results block; why not when the set
    has no finished run: no results file, or no samples file that agrees with it (`set_state`)."""
    from taiyi_bench.harness.apps.leaderboard.bootstrap import read_units

    spec = get_spec(key)
    state = set_state(out / part / key, out)
    samples = samples_beside(state.results, spec.task_name) if state.done else None
    if state.results is None or samples is None:
        return state.problem or f"no samples file for {spec.task_name}"
    return read_units(samples, spec.headline_metric, spec.metric), read_results(state.results)["results"][spec.task_name]


def compare(out: Path, *, n_resamples: int = 10_000, seed: int = 0) -> dict[str, Any]:
    """Paired bootstrap (fine-tuned minus base) per set, and overall on the macro average of
    the sets both runs scored (units resampled jointly within each set)."""
    import numpy as np

    from taiyi_bench.harness.apps.leaderboard.bootstrap import match_units, paired_bootstrap, point_estimate

    rows: dict[str, Any] = {}
    missing: dict[str, str] = {}  # set -> why it is not compared: never dropped without a word
    pairs = []
    for index, key in enumerate(LLM_ORDER):
        base, tuned = slice_units(out, "smollm2-base", key), slice_units(out, "smollm2-ft", key)
        if isinstance(base, str) or isinstance(tuned, str):
            missing[key] = "; ".join(f"{part}: {why}" for part, why in (("base", base), ("fine-tuned", tuned)) if isinstance(why, str))
            continue
        (ub, block_b), (ut, block_t) = base, tuned
        result = paired_bootstrap(ut, ub, n_resamples, seed=np.random.SeedSequence([seed, index]))
        rows[key] = {
            "set": get_spec(key).display_name, "units": result.n_units,
            "base": round(100 * result.point_b, 1), "tuned": round(100 * result.point_a, 1),
            "delta": round(100 * result.delta, 1), "ci95": [round(100 * result.low, 1), round(100 * result.high, 1)],
            "p_value": round(result.p_value, 4),
            "parse_fail_base": block_b.get("parse_fail,none"), "parse_fail_tuned": block_t.get("parse_fail,none"),
        }
        pairs.append(match_units(ut, ub)[:2])
    overall = None
    if pairs:
        rng = np.random.default_rng(np.random.SeedSequence([seed, 99]))
        deltas = np.empty(n_resamples)
        for b in range(n_resamples):
            values = []
            for ut, ub in pairs:
                pick = rng.integers(0, len(ut), len(ut))
                values.append(point_estimate(replace(ut, values=ut.values[pick]))
                              - point_estimate(replace(ub, values=ub.values[pick])))
            deltas[b] = np.mean(values)
        delta = float(np.mean([point_estimate(ut) - point_estimate(ub) for ut, ub in pairs]))
        p_value = float((1 + np.count_nonzero(np.abs(deltas - delta) >= abs(delta) - 1e-12)) / (n_resamples + 1))
        overall = {
            "sets": len(pairs), "delta": round(100 * delta, 1),
            "ci95": [round(100 * float(np.quantile(deltas, 0.025)), 1), round(100 * float(np.quantile(deltas, 0.975)), 1)],
            "p_value": round(min(1.0, p_value), 4),
            "base_mean": round(100 * float(np.mean([point_estimate(ub) for _, ub in pairs])), 1),
            "tuned_mean": round(100 * float(np.mean([point_estimate(ut) for ut, _ in pairs])), 1),
        }
    return {"test": "paired bootstrap, two-sided, fine-tuned minus base", "resamples": n_resamples, "seed": seed,
            "per_set": rows, "overall_macro": overall, "missing_sets": missing}


def minilm_table(out: Path) -> list[dict[str, Any]]:
    """Per set: MiniLM on the full split (or why there is none) beside the Taiyi paper's SOTA
    column (results/published, Table A), by the SOTA cell's own rule: seqeval-style strict spans
    on the NER sets, abstract-level micro-F1 on HoC (`taiyi_bench.harness.scoring.metric_for_rule`). Where
    MiniLM has no metric of that rule the row says so instead of a number."""
    from taiyi_bench.harness.apps.leaderboard.published import load_published
    from taiyi_bench.harness.scoring import RULES, headline_metric_name, metric_for_rule

    table = load_published()["A"]
    sota = table.values("sota")
    models = {row["set"]: row.get("sota_model") for row in table.rows}
    plan_file = out / "plan.json"
    plan = json.loads(plan_file.read_text(encoding="utf-8")).get("minilm", {}) if plan_file.is_file() else {}
    rows = []
    for key in PAPER_ORDER:
        spec = get_spec(key)
        rule = table.rule("sota", key) if key in sota else None
        metric = metric_for_rule(spec, rule) if rule else headline_metric_name(spec)
        results = _latest(out / "minilm" / key)
        value, note = None, plan.get(key, "not run")
        note = "not finished" if note == "run" else note
        if results is not None:
            block = read_results(results)["results"][spec.task_name]
            found = block.get(f"{metric},none") if metric else None
            if isinstance(found, (int, float)):
                value, note = round(100 * found, 1), "full split"
            else:
                note = f"full split, no metric by the SOTA's rule ({rule})"
        rows.append({
            "set": spec.display_name, "minilm": value, "metric": metric, "rule": rule,
            "rule_text": RULES.get(rule, "") if rule else "", "headline": headline_metric_name(spec),
            "note": note, "sota": sota.get(key), "sota_model": models.get(key),
        })
    return rows


def run_compare(steps: Steps, out: Path) -> None:
    if steps.dry_run:
        print("[reference] compare: paired bootstrap per set and overall -> comparison.json", flush=True)
        return
    started = time.perf_counter()
    minilm_rows = minilm_table(out)
    for row in minilm_rows:  # printed first: the part's own output, also kept in comparison.json
        shown = f"{row['minilm']:5.1f}" if row["minilm"] is not None else f"  -   ({row['note']})"
        by = f"  [{row['metric']}, the SOTA's rule]" if row["metric"] and row["metric"] != row["headline"] else ""
        print(f"[reference] MiniLM {row['set']:>14}: {shown}   SOTA {row['sota']} ({row['sota_model']}){by}", flush=True)
    report = compare(out)
    report["minilm_vs_sota"] = minilm_rows
    atomic_write_text(out / "comparison.json", json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    for row in report["per_set"].values():
        print(f"[reference] {row['set']:>14}: base {row['base']:5.1f}  tuned {row['tuned']:5.1f}  "
              f"delta {row['delta']:+5.1f}  p={row['p_value']:.4f}  parse_fail {row['parse_fail_base']} -> {row['parse_fail_tuned']}")
    if report["missing_sets"]:
        names = ", ".join(get_spec(key).display_name for key in report["missing_sets"])
        print(f"[reference] compare: {len(report['missing_sets'])} of {len(LLM_ORDER)} sets NOT COMPARED ({names}):", flush=True)
        for key, reason in report["missing_sets"].items():
            print(f"[reference]   {get_spec(key).display_name}: {reason}", flush=True)
    if report["overall_macro"]:
        o = report["overall_macro"]
        print(f"[reference] overall (macro, {o['sets']} sets): {o['base_mean']} -> {o['tuned_mean']}, p={o['p_value']}")
    steps.record("compare", round(time.perf_counter() - started, 1))


def run(args: argparse.Namespace) -> int:
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        raise ConfigError(f"--parts: unknown {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    data_dir = resolve_data_dir(args.data_dir)
    if data_dir is None or not Path(data_dir).is_dir():
        raise ConfigError("--data-dir (or $TAIYI_DATA_DIR) must name the real data directory: references never run on the samples")
    data_dir = Path(data_dir).resolve()
    out, work = Path(args.out).resolve(), Path(args.work).resolve()
    wanted = [s.strip() for s in args.sets.split(",") if s.strip()] if args.sets else None
    if strangers := [key for key in wanted or () if key not in REGISTRY]:
        raise ConfigError(f"--sets: unknown set key(s) {', '.join(strangers)}; known: {', '.join(REGISTRY)}")
    steps = Steps(out, args.dry_run)
    if not args.dry_run:
        park_large_samples(out, work)
    actions = {
        "minilm": lambda: run_minilm(steps, out, work, data_dir, wanted),
        "base": lambda: run_base(steps, out, data_dir, wanted, args.batch_size),
        "finetune": lambda: run_finetune(steps, out, work, data_dir),
        "tuned": lambda: run_tuned(steps, out, work, data_dir, wanted, args.batch_size),
        "compare": lambda: run_compare(steps, out),
    }
    for part in [p for p in PARTS if p in parts]:
        started = time.perf_counter()
        actions[part]()
        print(f"[reference] part {part}: {time.perf_counter() - started:.0f} s", flush=True)
    if not args.dry_run and out.is_dir():
        rewritten = make_portable(out, {str(data_dir): DATA_DIR_PLACEHOLDER, str(work): WORK_PLACEHOLDER,
                                        str(out): OUT_PLACEHOLDER, str(tasks_dir()): TASKS_PLACEHOLDER})
        print(f"[reference] made portable (no machine paths, run folders named after their models): "
              f"{len(rewritten)} file(s) rewritten", flush=True)
    return 0
