"""`taiyi baseline ...`: discriminative baselines (train, predict) and the general-LLM registry
(list, run, new, validate)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import re
import shlex
import sys
from collections.abc import Callable
from typing import Any

from taiyi_bench.harness.errors import ConfigError, DataFormatError, DataNotFoundError

# What a train/predict run can meet that the user can fix: bad settings, missing or malformed
# data, damaged files. Each ends in one `taiyi baseline: error:` line (unreadable or unwritable
# files too, through the `taiyi` command's own guard: taiyi_bench.harness.apps.cli).
_USER_ERRORS = (ConfigError, DataNotFoundError, DataFormatError, KeyError)


def _limit(value: str) -> float:
    number = float(value)
    if number <= 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return number


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return number


# What `taiyi baseline run` does with the lm-eval invocation it built: run it, then score and
# report. Given by the caller (`taiyi_bench.harness.apps.baseline`), because the console and the report are
# applications and the baselines never import the applications.
RunSteps = Callable[[Any, dict[str, str]], int]


class _Parser(argparse.ArgumentParser):
    """A subcommand parser that keeps everything after `--` verbatim in `lm_eval_args`, when the
    subcommand has that default (`run`)."""

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> tuple[argparse.Namespace, list[str]]:
        args = list(args or ())
        if self.get_default("lm_eval_args") is None or "--" not in args:
            return super().parse_known_args(args, namespace)
        cut = args.index("--")
        parsed, rest = super().parse_known_args(args[:cut], namespace)
        parsed.lm_eval_args = args[cut + 1 :]
        return parsed, rest


def _variant_options() -> dict[str, tuple[list[Any], str]]:
    """Each registry variant option: (its values, the set whose form it chooses)."""
    from taiyi_bench.harness.registry import iter_specs

    return {spec.variant_option: (sorted({spec.variant_value, *spec.variants}), spec.display_name)
            for spec in iter_specs() if spec.variant_option}


def register(subparsers: argparse._SubParsersAction, *, run_steps: RunSteps) -> None:
    parser = subparsers.add_parser(
        "baseline",
        help="BERT baselines (train/predict) and general-LLM baselines (list/run/new/validate)",
        description=__doc__,
    )
    commands = parser.add_subparsers(dest="baseline_command", metavar="SUBCOMMAND", parser_class=_Parser)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])

    train = commands.add_parser("train", help="fine-tune an encoder on one set, then score its evaluation split")
    train.add_argument("--task", required=True, help="set key or task name (`taiyi data list` lists them)")
    train.add_argument("--encoder", help="alias from baselines/encoders.yaml, Hub id or local directory (default: the language's)")
    steps = train.add_mutually_exclusive_group()
    steps.add_argument("--epochs", type=float, help="training epochs (default from encoders.yaml)")
    steps.add_argument("--max-steps", type=int, help="optimizer steps (wins over epochs)")
    train.add_argument("--output-dir", help="where to save the trained baseline (default runs/baselines/<task>/<encoder>)")
    train.add_argument("--train-split", default="train", help="split to train on (default train)")
    train.add_argument("--train-limit", type=int, help="train on the first N units only")
    train.add_argument("--batch-size", type=int)
    train.add_argument("--learning-rate", type=float)
    train.add_argument("--max-length", type=int, help="sub-word limit per input (all heads)")
    train.add_argument("--seed", type=int)
    train.add_argument("--no-eval", action="store_true", help="train and save only")
    train.set_defaults(func=_train)

    predict = commands.add_parser("predict", help="score a trained baseline on a split and write results files")
    predict.add_argument("--output-dir", "--checkpoint", dest="checkpoint", help="the trained baseline (train's --output-dir)")
    predict.add_argument("--task", help="set key; with --encoder finds the default checkpoint folder")
    predict.add_argument("--encoder", help="with --task: the encoder of the default checkpoint folder")
    predict.add_argument("--split", help="split to predict (default: the set's evaluation split)")
    predict.set_defaults(func=_predict)

    for command in (train, predict):  # what they share: the data, the units scored, the device and the results
        command.add_argument("--data-dir", help="data directory (default $TAIYI_DATA_DIR, else the bundled samples)")
        command.add_argument("--limit", type=_limit, help="evaluate only the first N units (or a fraction < 1)")
        command.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda when available)")
        command.add_argument("--results-dir", default="results/runs", help="root of the results files (default results/runs)")
        command.add_argument("--model-name", help="name in the results/leaderboard (default: the encoder's own name + ' (fine-tuned)', "
                             "e.g. 'all-MiniLM-L6-v2 (fine-tuned)')")
        command.add_argument("--gold-entities", action="store_true", help="RE sets: classify the pairs of the gold arguments")
    _add_llm_commands(commands, run_steps)


def _add_llm_commands(commands: argparse._SubParsersAction, run_steps: RunSteps) -> None:
    listing = commands.add_parser("list", help="the general-LLM baseline configs")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(func=_list)

    run = commands.add_parser(
        "run", help="run general-LLM baselines through lm-eval on the taiyi_* tasks, one model after another",
        epilog="Arguments after `--` are appended verbatim to every lm_eval command (e.g. -- --wandb_args project=taiyi). "
        "A set already done with the same config, command and data is skipped (--no-resume runs it again); "
        "--use-cache PATH lets an interrupted run reuse the answers it already has.",
    )
    run.add_argument("names", nargs="+", metavar="NAME", help="config names (see `taiyi baseline list`) or paths to YAML files")
    run.add_argument("--limit", type=_limit, help="units per task (lm-eval --limit)")
    run.add_argument("--tasks", nargs="+", help="set keys, task or group names (default: all 13, taiyi_*)")
    run.add_argument("--data-dir", help="data directory (passed as --metadata data_dir; default $TAIYI_DATA_DIR, else samples)")
    run.add_argument("--dry-run", action="store_true", help="print the lm-eval command and exit")
    run.add_argument("--output-root", default="results/runs", help="results root; lm-eval writes <root>/<name>/...")
    run.add_argument("--backend", choices=["hf", "vllm"],
                     help="run a local model on another backend than its config's (vllm: much faster generation on GPUs)")
    run.add_argument("--device", help="override the config's device (hf backend)")
    run.add_argument("--batch-size", help="override the config's batch size")
    run.add_argument(
        "--max-gen-toks", type=_positive_int, metavar="N",
        help="cap EVERY task's generation budget at N tokens (default: each task keeps its own, 32 to 1280); "
        "tasks with a larger budget are cut, warned about, and marked 'budget cut' in the results",
    )
    run.add_argument("--num-fewshot", "--num_fewshot", type=int, metavar="K", help="lm-eval --num_fewshot: demonstrations from each set's train split")
    run.add_argument("--seed", help="lm-eval --seed (one integer, or python,numpy,torch,fewshot)")
    run.add_argument("--use-cache", "--use_cache", metavar="PATH", help="lm-eval --use_cache: a cache of the model's answers")
    run.add_argument("--system-instruction", "--system_instruction", metavar="TEXT", help="lm-eval --system_instruction (replaces the config's)")
    for option, (values, sets) in _variant_options().items():
        run.add_argument(f"--{option.replace('_', '-')}", f"--{option}", dest=option, type=int, choices=values,
                         help=f"the form of {sets} (lm-eval --metadata {option})")
    run.add_argument("--no-resume", action="store_true", help="run every requested set, also those already done")
    run.add_argument("--timeout", type=float, default=3.0, help="seconds for each reachability check (default 3)")
    run.add_argument(
        "--skip-missing", action="store_true",
        help="run the sets that are in the data directory and record the others as skipped (default: stop and list them)",
    )
    run.set_defaults(func=_run, run_steps=run_steps, lm_eval_args=[])

    new = commands.add_parser("new", help="write a starting config for a new general-LLM baseline")
    new.add_argument("name")
    new.add_argument("--backend", default="hf", choices=["hf", "vllm", "local-chat-completions", "openai-chat-completions"])
    new.add_argument("--model", help="Hub id, local directory or API model name")
    new.add_argument("--dir", help="folder to write to (default: baselines/llm/ in the current directory)")
    new.set_defaults(func=_new)

    validate = commands.add_parser("validate", help="check configs against baselines/llm/schema.json")
    validate.add_argument("paths", nargs="*", help="YAML files (default: the whole registry)")
    validate.set_defaults(func=_validate)


def _fail(message: str) -> int:
    print(f"taiyi baseline: error: {message}", file=sys.stderr)
    return 2


def _message(exc: BaseException) -> str:
    # A KeyError's str() is its repr: show the message itself.
    text = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
    return str(text).strip("'\"") or type(exc).__name__


def _check_model_name(name: str | None) -> None:
    """--model-name names the results folder and the leaderboard column: printable, one line,
    and with a letter or digit (`..` or `/` alone would name no model, and no folder)."""
    if name is not None and (re.search(r"[\x00-\x1f\x7f]", name) or not re.search(r"[^\W_]", name)):
        raise ConfigError(
            f"--model-name {name!r} is not a usable model name: give one line of text with at least one "
            "letter or digit (it names the results folder and the leaderboard column)"
        )


def _setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("taiyi-bench.baselines").setLevel(logging.INFO)
    # A fresh classification head is expected to be missing from the encoder checkpoint: the
    # per-load report and shard progress bars are noise on a command line.
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def _train_or_predict(args: argparse.Namespace, work: Callable[[], Any]) -> int:
    """Check the model name, run `work` (a train or predict run), print its scores; a problem the
    user can fix (PreflightError is a ConfigError) ends in one error line."""
    try:
        _check_model_name(args.model_name)
        _setup_logging()
        result = work()
    except _USER_ERRORS as exc:
        return _fail(_message(exc))
    if result.results_path is not None:
        print(json.dumps({k: round(v, 4) for k, v in result.metrics.items() if "." not in k}, indent=2))
        print(f"results: {result.results_path}")
    print(f"checkpoint: {result.checkpoint}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from taiyi_bench.baselines import runner

    names = ("epochs", "max_steps", "batch_size", "learning_rate", "max_length", "seed", "device")
    hyperparameters = {name: getattr(args, name) for name in names}
    return _train_or_predict(args, lambda: runner.train(
        args.task, encoder=args.encoder, data_dir=args.data_dir, output_dir=args.output_dir,
        train_split=args.train_split, train_limit=args.train_limit, hyperparameters=hyperparameters,
        evaluate=not args.no_eval, limit=args.limit, results_dir=args.results_dir, model_name=args.model_name,
        gold_entities=args.gold_entities,
    ))


def _predict(args: argparse.Namespace) -> int:
    from taiyi_bench.baselines import runner

    return _train_or_predict(args, lambda: runner.predict(
        args.checkpoint, task=args.task, encoder=args.encoder, data_dir=args.data_dir, split=args.split,
        limit=args.limit, results_dir=args.results_dir, model_name=args.model_name, device=args.device,
        gold_entities=args.gold_entities,
    ))


def _list(args: argparse.Namespace) -> int:
    from taiyi_bench.baselines.llm_registry import list_configs

    try:
        configs = list_configs()
    except ConfigError as exc:
        return _fail(str(exc))
    if args.json:
        rows = [
            {"name": c.name, "display_name": c.display_name, "backend": c.backend, "model": c.model,
             "in_paper": c.in_paper, "chat_template": c.apply_chat_template, "prompt_format": c.prompt_format,
             "path": str(c.path)}
            for c in configs
        ]
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    width = max(len(c.name) for c in configs) if configs else 4
    print(f"{'NAME':<{width}}  {'BACKEND':<23}  {'PAPER':<5}  MODEL")
    for c in configs:
        print(f"{c.name:<{width}}  {c.backend:<23}  {'yes' if c.in_paper else '':<5}  {c.model}")
    return 0


def _run(args: argparse.Namespace) -> int:
    """Check every model and set before any runs, skip the sets already done, then run the models
    one after another (or, with --dry-run, print their commands)."""
    from taiyi_bench.baselines import llm_resume, llm_run
    from taiyi_bench.baselines.llm_registry import find_config
    from taiyi_bench.baselines.preflight import PreflightError
    from taiyi_bench.harness.registry import get_spec, specs_for_selection

    set_options = {option: getattr(args, option) for option in _variant_options() if getattr(args, option) is not None}
    chosen = {"--num_fewshot": args.num_fewshot, "--seed": args.seed, "--use_cache": args.use_cache}
    extra_args = [token for option, value in chosen.items() if value is not None for token in (option, str(value))]
    options = dict(
        limit=args.limit, data_dir=args.data_dir, output_root=args.output_root, device=args.device,
        batch_size=args.batch_size, gen_kwargs={"max_gen_toks": args.max_gen_toks} if args.max_gen_toks else None,
        set_options=set_options, extra_args=extra_args + args.lm_eval_args,
    )
    try:
        configs = []
        for name in args.names:
            config, backend_notes = llm_run.on_backend(find_config(name), args.backend)
            for note in backend_notes:
                print(f"# {config.name}: --backend {args.backend}: {note}", file=sys.stderr)
            if args.system_instruction is not None:
                config = dataclasses.replace(config, system_instruction=args.system_instruction)
            configs.append(config)
        # Every requested set is checked before any model loads: one message lists all that are missing.
        tasks, skipped = llm_run.select_available_tasks(args.tasks, args.data_dir, skip_missing=args.skip_missing)
        specs = [get_spec(spec, set_options) for spec in specs_for_selection(tasks)]
        runs = []
        for config in configs:
            _warn_budget_cuts(config, args.max_gen_toks, tasks)
            location = _dry_run_location(config) if args.dry_run else llm_run.run_preflight(
                config, data_dir=args.data_dir, timeout=args.timeout)
            invocation = llm_run.build_invocation(config, model_location=location, tasks=tasks, **options)
            key = llm_resume.resume_key(config, invocation)
            done = {} if args.no_resume else llm_resume.done_sets(invocation.output_path, key, specs, args.data_dir)
            if done:
                print(f"# {config.name}: skipping {', '.join(done)}: done with this config, command and data in "
                      f"{invocation.output_path} (--no-resume runs them again)", file=sys.stderr)
                if len(done) == len(specs):
                    continue
                remaining = [spec.task_name for spec in specs if spec.task_name not in done]
                invocation = llm_run.build_invocation(config, model_location=location, tasks=remaining, **options)
            runs.append((config, key, invocation))
    except PreflightError as exc:
        return _fail(f"{config.name}: {exc}")
    except (ConfigError, DataNotFoundError, KeyError) as exc:
        return _fail(_message(exc))
    if args.dry_run:
        for _, _, invocation in runs:
            print(invocation.shell())
        return 0
    failed = []
    for config, key, invocation in runs:
        if "gpu" in config.requires:
            import torch

            if not torch.cuda.is_available():
                print(f"# warning: {config.name} is meant for a GPU and none is visible; this will be slow", file=sys.stderr)
        status = args.run_steps(invocation, skipped)
        if status == 0:
            llm_resume.mark_done(invocation.output_path, key)
        else:
            failed.append((config.name, status))
    if len(runs) > 1 and failed:
        _fail(f"{len(failed)} of {len(runs)} runs failed: {', '.join(name for name, _ in failed)}")
    return failed[0][1] if failed else 0


def _dry_run_location(config: Any) -> str:
    """The model as a dry run prints it: a local:<name> model as the directory it lives in."""
    from taiyi_bench.baselines.preflight import PreflightError, resolve_model

    if config.is_api or not config.model.startswith("local:"):
        return config.model
    try:
        return resolve_model(config.model).location
    except PreflightError as exc:
        print(f"# note: {exc}", file=sys.stderr)
        return config.model


def _warn_budget_cuts(config: Any, max_gen_toks: int | None, tasks: list[str] | None) -> None:
    """Say, before anything runs, which tasks a global max_gen_toks would cut (lm-eval's tasks
    say it again in the run's log and record it in the results)."""
    from taiyi_bench.harness.lmeval.tasks import budget_cut_warning, budget_cuts
    from taiyi_bench.harness.registry import specs_for_selection

    origin = "--max-gen-toks" if max_gen_toks else f"max_gen_toks in {config.path}"
    cap = max_gen_toks or config.gen_kwargs.get("max_gen_toks")
    if not cap:
        return
    names = [spec.task_name for spec in specs_for_selection(tasks)]
    for task, budget in budget_cuts(int(cap), names, config.thinking_allowance).items():
        print(f"# warning: {budget_cut_warning(task, budget, int(cap), origin)}", file=sys.stderr)


def _new(args: argparse.Namespace) -> int:
    from taiyi_bench.baselines.llm_registry import EXTRA_DIRS_ENV, config_dirs, scaffold

    try:
        path = scaffold(args.name, args.dir, backend=args.backend, model=args.model)
    except ConfigError as exc:
        return _fail(str(exc))
    except OSError as exc:  # e.g. a read-only folder
        return _fail(f"cannot write the config ({exc}); choose a folder with --dir")
    where = "" if args.dir else " (baselines/llm/ of the current directory; --dir writes elsewhere)"
    shown = shlex.quote(str(path))
    print(f"wrote {path}{where}; edit it, then: taiyi baseline validate {shown} && taiyi baseline run {shown} --dry-run")
    if path.parent.resolve() not in [folder.resolve() for folder in config_dirs()]:
        print(f"to run it by name: export {EXTRA_DIRS_ENV}={shlex.quote(str(path.parent.resolve()))}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from taiyi_bench.baselines.llm_registry import config_paths, load_config
    from taiyi_bench.baselines.llm_run import check_local_files
    from taiyi_bench.baselines.preflight import PreflightError

    paths = args.paths or [str(p) for p in config_paths().values()]
    failed = 0
    for path in paths:
        try:
            config = load_config(path)
            check_local_files(config)  # a model or adapter folder that does not exist
        except ConfigError as exc:
            failed += 1
            print(f"{path}: {exc}" if isinstance(exc, PreflightError) else str(exc), file=sys.stderr)
            continue
        print(f"ok  {config.name}  ({path})")
    return 1 if failed else 0
