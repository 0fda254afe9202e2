"""`taiyi demo`: the whole pipeline end to end on a CPU, with no model or dataset hub.

    1. eval-base      SmolLM2-135M-Instruct, a general-LLM baseline, on the taiyi_* tasks (lm-eval)
    2. finetune       the two-stage recipe (cpu_smollm2_tiny) turns it into a small Taiyi-style model
    3. eval-finetuned that checkpoint on the same units, the same way
    4. bert           the MiniLM discriminative baseline, trained briefly and scored per set
    5. leaderboard    every run beside the published paper rows, as tables and a plot
    6. report         one HTML page about the three runs (`taiyi report`): intervals, per-type scores,
                      grounding, parse failures and every error unit

The terminal shows one line per step (a progress bar while it runs, then its time) and a short
summary: the headline table and where the report is. Everything the steps print - lm-eval,
transformers and training logs - goes to `<out>/demo.log`.

Each finished step leaves a marker (`<out>/steps/<step>.json`, written atomically) naming its
outputs; a second run with the same settings skips it. An interrupted step leaves the finished
ones intact and resumes (the fine-tuning from its last checkpoint, the BERT step per set).
Without a data directory every step runs on the bundled samples and says so.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from taiyi_bench.harness.apps.cli import whole_number_at_least
from taiyi_bench.harness.atomic_files import atomic_write_text
from taiyi_bench.harness.paths import resolve_data_dir

DEFAULT_OUT = Path("runs") / "demo"
BASE_BASELINE = "smollm2-135m-instruct"
FINETUNED_NAME = "taiyi-style-smollm2-135m"
BERT_NAME = "minilm-l6-bert"  # the BERT runs' folder; the runs are named after the encoder, as everywhere
FINETUNE_RECIPE = "cpu_smollm2_tiny"
STEPS = ("eval-base", "finetune", "eval-finetuned", "bert", "leaderboard", "report")  # each a method of Demo

# The settings that count something, with the option that sets each and its smallest legal
# value: one table for the command line's checks (`whole_number_at_least`, at parse time) and
# for `DemoSettings.check` (settings built in code). 0 units, 0 generated tokens or -3
# fine-tuning steps would fail after minutes of work, or worse, "finish" an untrained adapter.
COUNTS: dict[str, tuple[str | None, int]] = {
    "units": ("--units", 1),
    "max_gen_toks": ("--max-gen-toks", 1),
    "finetune_steps": ("--finetune-steps", 1),
    "finetune_cap": (None, 1),  # no option: DemoSettings.reduced and code set it
    "bert_steps": ("--bert-steps", 1),
    "threads": ("--threads", 1),
}


def task_selection(text: str) -> list[str]:
    """`--tasks`: comma-separated set keys, taiyi_* task names, groups or patterns, checked
    against the registry now (an unknown name used to fail after the first step had run) and
    returned as task names, the form every step takes."""
    from taiyi_bench.harness.registry import specs_for_selection

    if not text.replace(",", "").strip():  # an empty selection would silently mean all 13
        raise argparse.ArgumentTypeError(f"expected at least one task name, not {text!r}")
    try:
        specs = specs_for_selection([text])
    except KeyError as exc:  # its message lists the known names
        raise argparse.ArgumentTypeError(str(exc.args[0]) if exc.args else str(exc)) from None
    return [spec.task_name for spec in specs]


@dataclass
class DemoSettings:
    """What a demo run does. `reduced()` is the small mode the tests use."""

    out: Path = DEFAULT_OUT
    data_dir: str | None = None
    tasks: list[str] | None = None  # task names; None = all 13
    units: int = 2  # evaluation units per set, the same for every model
    # A global generation budget for the demo's LLM runs, to bound CPU time. It cuts most tasks' own
    # budgets: lm-eval warns per task, the results record it and the leaderboard marks the cells.
    max_gen_toks: int = 32
    finetune_steps: int = 6  # optimizer steps per fine-tuning stage
    finetune_cap: int = 4  # instruction samples per dataset
    bert_steps: int = 10  # optimizer steps per BERT head
    # CPU threads for every step. One by default: on a small shared machine two OpenMP threads
    # contend with anything else running and a step can take 10-40x longer (measured here).
    threads: int = 1
    fresh: bool = False
    skip_missing: bool = False  # with a data directory lacking some sets: run the rest
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def reduced(cls, out: Path, tasks: list[str] | None = None) -> DemoSettings:
        return cls(out=out, tasks=tasks, units=1, max_gen_toks=8, finetune_steps=2, finetune_cap=2, bert_steps=2)

    def check(self) -> None:
        """Refuse settings no step can run with, naming the option (`COUNTS`), before any work;
        `tasks` becomes task names (`task_selection`). The command line refuses bad values
        already; this covers settings built in code."""
        from taiyi_bench.harness.errors import ConfigError

        for name, (option, minimum) in COUNTS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ConfigError(f"{option or name} must be a whole number >= {minimum}, not {value!r}")
        if self.tasks is not None:
            try:
                self.tasks = task_selection(",".join(self.tasks))
            except argparse.ArgumentTypeError as exc:
                raise ConfigError(f"--tasks: {exc}") from None

    def fingerprint(self) -> str:
        """Identifies the settings that change results (not where they go, not --fresh)."""
        data = dataclasses.asdict(self)
        for key in ("out", "fresh", "threads", "skip_missing"):
            data.pop(key)
        data["data_dir"] = str(resolve_data_dir(self.data_dir) or "samples")
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]

    @property
    def task_list(self) -> list[str]:
        from taiyi_bench.harness.registry import iter_specs

        return self.tasks or [spec.task_name for spec in iter_specs()]


def _write_json_atomically(path: Path, payload: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(payload, indent=2, ensure_ascii=False, default=str))


class Demo:
    """Runs the steps in order, skipping those already finished with the same settings."""

    def __init__(self, settings: DemoSettings, log: Callable[[str], None] | None = None) -> None:
        self.s = settings
        self.out = Path(settings.out).expanduser().resolve()
        self.runs_dir = self.out / "runs"
        self.log_path = self.out / "demo.log"
        self.log = log  # also receives every line the demo prints itself (tests read them)
        self.console = None  # the StepConsole of a running demo
        self.timings: dict[str, float] = {}
        self.skipped: dict[str, str] = {}  # task name -> why its set is not in the data directory

    def _marker(self, step: str) -> Path:
        return self.out / "steps" / f"{step}.json"

    def _record(self, step: str) -> dict[str, Any] | None:
        """The step's marker if it was written with the current settings."""
        marker = self._marker(step)
        if not marker.is_file():
            return None
        record = json.loads(marker.read_text(encoding="utf-8"))
        return record if record.get("fingerprint") == self.s.fingerprint() else None

    def finished(self, step: str) -> dict[str, Any] | None:
        """A record to reuse instead of running the step (never with --fresh)."""
        return None if self.s.fresh else self._record(step)

    def say(self, text: str = "") -> None:
        """A line of the demo's own on the terminal (and in the log)."""
        from rich.text import Text

        if self.console is not None:
            self.console.print(Text(text))
        else:
            print(text)
        if self.log is not None:
            self.log(text)

    def run(self) -> dict[str, dict[str, Any]]:
        import torch

        from taiyi_bench.harness.apps.console import LM_EVAL_PROGRESS, StepConsole
        from taiyi_bench.harness.apps.leaderboard.bootstrap import MIN_UNITS_FOR_INFERENCE, too_few_units

        self.s.check()
        self.finetune_config()  # the recipe with the demo's overrides, checked before any step runs
        torch.set_num_threads(self.s.threads)
        os.environ.setdefault("OMP_NUM_THREADS", str(self.s.threads))  # the lm_eval subprocesses
        data_dir = resolve_data_dir(self.s.data_dir)
        self._check_sets(data_dir)
        records: dict[str, dict[str, Any]] = {}
        with StepConsole(self.log_path) as console:
            self.console = console
            try:
                self.say(f"taiyi demo -> {self.out}  (full logs: {self.log_path})")
                self.say(f"data: {data_dir}" if data_dir else
                         "data: BUNDLED SAMPLES (no TAIYI_DATA_DIR): the scores say nothing about the models")
                self.say(f"budget: LLM answers stop after {self.s.max_gen_toks} new tokens (--max-gen-toks), below most "
                         "tasks' own budgets, to bound CPU time; such cells are marked (budget cut)")
                if too_few_units(self.s.units):
                    self.say(f"units: {self.s.units} per set (--units), fewer than the {MIN_UNITS_FOR_INFERENCE} an interval or "
                             "p-value needs, so none is shown: the scores show that the pipeline runs, not how good a model is")
                for name in STEPS:
                    previous = self.finished(name)
                    if previous is not None:
                        console.done(name, 0.0, note=f"finished earlier ({previous['seconds']:.0f} s), reused")
                        records[name] = previous
                        self.timings[name] = 0.0
                        continue
                    with console.step(name, progress=LM_EVAL_PROGRESS if name.startswith("eval") else None):
                        outputs = getattr(self, name.replace("-", "_"))()
                    seconds = console.timings[name]
                    record = {"step": name, "seconds": round(seconds, 1), "fingerprint": self.s.fingerprint(), "outputs": outputs}
                    _write_json_atomically(self._marker(name), record)
                    records[name] = record
                    self.timings[name] = seconds
                self._summary(records)
            finally:
                self.console = None
        return records

    def _check_sets(self, data_dir: Path | None) -> None:
        """Every set's evaluation files, before any model loads (DataNotFoundError lists the missing)."""
        from taiyi_bench.baselines.llm_run import select_available_tasks

        tasks, self.skipped = select_available_tasks(self.s.task_list, data_dir, skip_missing=self.s.skip_missing)
        if self.skipped:
            self.s.tasks = list(tasks or [])
            self.say(f"skipping {len(self.skipped)} set(s) missing from {data_dir}: {', '.join(self.skipped)}")

    def _summary(self, records: dict[str, dict[str, Any]]) -> None:
        from taiyi_bench.harness.apps.console import headline_summary

        self.say()
        try:
            self.console.console.print(headline_summary([self.runs_dir], title="Headline (micro-F1 / accuracy, percent)"))
        except (ValueError, OSError) as exc:  # a summary must not hide the files that were written
            self.say(f"(no headline table: {exc})")
        self.say()
        self.say("Where everything went:")
        places = {
            "report": records.get("report", {}).get("outputs", {}).get("report"),
            "leaderboard": records.get("leaderboard", {}).get("outputs", {}).get("tables"),
            "runs": str(self.runs_dir),
            "adapter": records.get("finetune", {}).get("outputs", {}).get("adapter"),
            "log": str(self.log_path),
        }
        for label, value in places.items():
            if value:
                self.say(f"  {label:<12} {value}")

    def _run_llm(self, config: Any, model_location: str) -> dict[str, Any]:
        from taiyi_bench.baselines.llm_run import build_invocation, execute
        from taiyi_bench.harness.results_io import amend_results, newest_results

        invocation = build_invocation(
            config, model_location=model_location, tasks=self.s.task_list, limit=self.s.units,
            data_dir=resolve_data_dir(self.s.data_dir), output_root=self.runs_dir,
            gen_kwargs={"max_gen_toks": self.s.max_gen_toks},
        )
        print("$ " + invocation.shell(), flush=True)  # into the log: the exact command, to reproduce it
        status = execute(invocation)
        if status != 0:
            raise RuntimeError(f"lm_eval exited with status {status} for {config.name}")
        results = newest_results(invocation.output_path)
        if results is None:
            raise RuntimeError(f"lm_eval wrote no results file under {invocation.output_path}")
        amend_results(results, self.skipped)  # the skipped sets and per-type scores, stored with the run
        return {"results": str(results)}

    def eval_base(self) -> dict[str, Any]:
        from taiyi_bench.baselines.llm_registry import find_config
        from taiyi_bench.baselines.llm_run import run_preflight

        config = find_config(BASE_BASELINE)
        return self._run_llm(config, run_preflight(config))

    def finetune_config(self) -> dict[str, Any]:
        """The fine-tuning recipe with the demo's settings, validated by the recipe schema."""
        from taiyi_bench.finetune.config import load_recipe

        overrides = [
            f"data.cap={self.s.finetune_cap}",
            f"training.max_steps={self.s.finetune_steps}",
            f"training.save_steps={max(1, self.s.finetune_steps // 2)}",
            f"training.num_threads={self.s.threads}",
        ]
        data_dir = resolve_data_dir(self.s.data_dir)
        if data_dir:
            overrides.append(f"data.tasks.data_dir={data_dir}")
        return load_recipe(FINETUNE_RECIPE, overrides)

    def finetune(self) -> dict[str, Any]:
        from taiyi_bench.finetune.train import train

        config = self.finetune_config()
        run_dir = self.out / "finetune" / FINETUNED_NAME  # names the adapter in the leaderboard
        if self.s.fresh:
            shutil.rmtree(run_dir, ignore_errors=True)
        # resume=True: after an interruption, training continues from the last checkpoint.
        summary = train(config, output_dir=run_dir, resume=True)
        return {"adapter": summary["stages"][2]["adapter"], "run_dir": str(run_dir)}

    def eval_finetuned(self) -> dict[str, Any]:
        from taiyi_bench.baselines.llm_registry import find_config
        from taiyi_bench.baselines.llm_run import run_preflight
        from taiyi_bench.finetune.adapter_eval import adapter_eval

        finetuned = self._record("finetune")  # written by this run's finetune step, or reused
        if finetuned is None:
            raise RuntimeError("the finetune step has not finished")
        # As the run recorded it: base model, prompt format, eod token, system prompt.
        recorded = adapter_eval(finetuned["outputs"]["adapter"])
        base = find_config(BASE_BASELINE)
        config = dataclasses.replace(
            base, name=FINETUNED_NAME, display_name="Taiyi-style SmolLM2-135M (demo SFT)",
            model=recorded.base, revision=recorded.revision, trust_remote_code=recorded.trust_remote_code,
            model_args={**base.model_args, "peft": recorded.adapter, **recorded.format_args},
            prompt_format=recorded.prompt_format, system_instruction=recorded.system_instruction,
        )
        return self._run_llm(config, run_preflight(config))

    def bert(self) -> dict[str, Any]:
        from taiyi_bench.baselines import runner
        from taiyi_bench.harness.local_models import minilm_dir

        encoder = str(minilm_dir())
        written = []
        for task in self.s.task_list:
            marker = self.out / "steps" / "bert" / f"{task}.json"
            if marker.is_file() and not self.s.fresh and json.loads(marker.read_text())["fingerprint"] == self.s.fingerprint():
                written.append(json.loads(marker.read_text())["results"])
                continue
            result = runner.train(
                task, encoder=encoder, data_dir=resolve_data_dir(self.s.data_dir),
                output_dir=self.out / "bert" / task, hyperparameters={"max_steps": self.s.bert_steps},
                limit=self.s.units, results_dir=self.runs_dir / BERT_NAME,
            )
            _write_json_atomically(marker, {"fingerprint": self.s.fingerprint(), "results": str(result.results_path)})
            written.append(str(result.results_path))
        return {"results": str(self.runs_dir / BERT_NAME), "tasks": str(len(written))}

    def leaderboard(self) -> dict[str, Any]:
        from taiyi_bench.harness.apps.cli import main as taiyi

        out = self.out / "leaderboard"
        status = taiyi(["leaderboard", str(self.runs_dir), "--out", str(out), "--include-partial", "--include-budget-cut", "--published", "A"])
        if status not in (0, None):
            raise RuntimeError(f"taiyi leaderboard exited with status {status}")
        return {"tables": str(out), "plot": str(out / "leaderboard.png")}

    def report(self) -> dict[str, Any]:
        from taiyi_bench.harness.apps.report import build_report

        path = build_report([self.runs_dir], self.out / "report", title="taiyi demo: error report",
                            pair=(BASE_BASELINE, FINETUNED_NAME))  # base against tuned, whatever the column order
        return {"report": str(path)}


def register(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "demo",
        help="the whole pipeline on a CPU: evaluate, fine-tune, BERT baseline, leaderboard",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    parser.add_argument("--data-dir", default=None, help="real data directory (default $TAIYI_DATA_DIR, else the samples)")

    def count(name: str) -> Callable[[str], int]:
        return whole_number_at_least(COUNTS[name][1])

    parser.add_argument("--units", type=count("units"), default=DemoSettings.units, help="evaluation units per set (default %(default)s)")
    parser.add_argument("--tasks", type=task_selection, default=None,
                        help="comma-separated taiyi_* tasks, set keys, groups or patterns (default all 13)")
    parser.add_argument("--max-gen-toks", type=count("max_gen_toks"), default=DemoSettings.max_gen_toks,
                        help="LLM generation budget (default %(default)s)")
    parser.add_argument("--finetune-steps", type=count("finetune_steps"), default=DemoSettings.finetune_steps,
                        help="optimizer steps per stage")
    parser.add_argument("--bert-steps", type=count("bert_steps"), default=DemoSettings.bert_steps, help="optimizer steps per BERT head")
    parser.add_argument("--threads", type=count("threads"), default=DemoSettings.threads, help="CPU threads (default %(default)s)")
    parser.add_argument("--fresh", action="store_true", help="redo every step instead of reusing finished ones")
    parser.add_argument("--skip-missing", action="store_true",
                        help="with --data-dir: run the sets that are there, record the others as skipped (default: stop)")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    # Every setting with an option of the same name (`--tasks` is already task names: task_selection).
    settings = DemoSettings(**{f.name: getattr(args, f.name) for f in dataclasses.fields(DemoSettings) if hasattr(args, f.name)})
    from taiyi_bench.harness.errors import ConfigError, DataNotFoundError

    try:
        Demo(settings).run()
    except (ConfigError, DataNotFoundError) as exc:
        print(f"taiyi demo: error: {exc}", file=sys.stderr)
        return 2
    return 0
