"""`taiyi baseline ...`: discriminative baselines (train, predict) and the general-LLM registry
(list, run, new, validate)."""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from collections.abc import Callable
from pathlib import Path
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


def register(subparsers: argparse._SubParsersAction, *, run_steps: RunSteps) -> None:
    parser = subparsers.add_parser(
        "baseline",
        help="BERT baselines (train/predict) and general-LLM baselines (list/run/new/validate)",
        description=__doc__,
    )
    commands = parser.add_subparsers(dest="baseline_command", metavar="SUBCOMMAND")

    train = commands.add_parser("train", help="fine-tune an encoder on one set, then score its evaluation split")
    train.add_argument("--task", required=True, help="set key or task name (`taiyi data list` lists them)")
    train.add_argument("--encoder", help="alias from baselines/encoders.yaml, Hub id or local directory (default: the language's)")
    train.add_argument("--data-dir", help="data directory (default $TAIYI_DATA_DIR, else the bundled samples)")
    steps = train.add_mutually_exclusive_group()
    steps.add_argument("--epochs", type=float, help="training epochs (default from encoders.yaml)")
    steps.add_argument("--max-steps", type=int, help="optimizer steps (wins over epochs)")
    train.add_argument("--output-dir", help="where to save the trained baseline (default runs/baselines/<task>/<encoder>)")
    train.add_argument("--limit", type=_limit, help="evaluate only the first N units (or a fraction < 1)")
    train.add_argument("--train-split", default="train", help="split to train on (default train)")
    train.add_argument("--train-limit", type=int, help="train on the first N units only")
    train.add_argument("--batch-size", type=int)
    train.add_argument("--learning-rate", type=float)
    train.add_argument("--max-length", type=int, help="sub-word limit per input (all heads)")
    train.add_argument("--seed", type=int)
    train.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    train.add_argument("--no-eval", action="store_true", help="train and save only")
    train.add_argument("--results-dir", default="results/runs", help="root of the results files (default results/runs)")
    train.add_argument("--model-name", help="name in the results/leaderboard (default '<encoder> (fine-tuned)')")
    train.add_argument("--gold-entities", action="store_true", help="RE sets: evaluate the pair classifier on gold arguments")
    train.set_defaults(func=_train)

    predict = commands.add_parser("predict", help="score a trained baseline on a split and write results files")
    predict.add_argument("--output-dir", "--checkpoint", dest="checkpoint", help="the trained baseline (train's --output-dir)")
    predict.add_argument("--task", help="set key; with --encoder finds the default checkpoint folder")
    predict.add_argument("--encoder", help="with --task: the encoder of the default checkpoint folder")
    predict.add_argument("--data-dir")
    predict.add_argument("--split", help="split to predict (default: the set's evaluation split)")
    predict.add_argument("--limit", type=_limit)
    predict.add_argument("--device")
    predict.add_argument("--results-dir", default="results/runs")
    predict.add_argument("--model-name")
    predict.add_argument("--gold-entities", action="store_true", help="RE sets: classify the pairs of the gold arguments")
    predict.set_defaults(func=_predict)

    listing = commands.add_parser("list", help="the general-LLM baseline configs")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(func=_list)

    run = commands.add_parser("run", help="run one general-LLM baseline through lm-eval on the taiyi_* tasks")
    run.add_argument("name", help="config name (see `taiyi baseline list`) or path to a YAML file")
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
    run.add_argument("--timeout", type=float, default=3.0, help="seconds for each reachability check (default 3)")
    run.add_argument(
        "--skip-missing", action="store_true",
        help="run the sets that are in the data directory and record the others as skipped (default: stop and list them)",
    )
    run.set_defaults(func=_run, run_steps=run_steps)

    new = commands.add_parser("new", help="write a starting config for a new general-LLM baseline")
    new.add_argument("name")
    new.add_argument("--backend", default="hf", choices=["hf", "vllm", "local-chat-completions", "openai-chat-completions"])
    new.add_argument("--model", help="Hub id, local directory or API model name")
    new.add_argument("--dir", help="folder to write to (default: the registry, baselines/llm/)")
    new.set_defaults(func=_new)

    validate = commands.add_parser("validate", help="check configs against baselines/llm/schema.json")
    validate.add_argument("paths", nargs="*", help="YAML files (default: the whole registry)")
    validate.set_defaults(func=_validate)

    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


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
    if name is None:
        return
    if re.search(r"[\x00-\x1f\x7f]", name) or not re.search(r"[^\W_]", name):
        raise ConfigError(
            f"--model-name {name!r} is not a usable model name: give one line of text with at least one "
            "letter or digit (it names the results folder and the leaderboard column)"
        )


def _check_trained_baseline(checkpoint: str | Path) -> None:
    """A trained baseline's files, checked before anything loads them: its manifest (written
    last by `taiyi baseline train`) and every weights file as long as its header says."""
    from taiyi_bench.harness.integrity import folder_problems

    folder = Path(checkpoint)
    if not folder.is_dir():
        raise ConfigError(f"{folder} is not a trained baseline folder (it does not exist); run `taiyi baseline train` first")
    problems = folder_problems(folder)
    if problems:
        raise ConfigError(
            f"the trained baseline in {folder} is damaged: {'; '.join(problems)}. Train it again (`taiyi baseline train`)"
        )


def _setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("taiyi-bench.baselines").setLevel(logging.INFO)
    # A fresh classification head is expected to be missing from the encoder checkpoint: the
    # per-load report and shard progress bars are noise on a command line.
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def _hyperparameters(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "epochs": args.epochs, "max_steps": args.max_steps, "batch_size": args.batch_size,
        "learning_rate": args.learning_rate, "max_length": args.max_length, "seed": args.seed, "device": args.device,
    }


def _print_metrics(result: Any) -> None:
    if result.results_path is not None:
        shown = {k: round(v, 4) for k, v in result.metrics.items() if "." not in k}
        print(json.dumps(shown, indent=2))
        print(f"results: {result.results_path}")
    print(f"checkpoint: {result.checkpoint}")


def _train(args: argparse.Namespace) -> int:
    from taiyi_bench.baselines import runner
    from taiyi_bench.baselines.preflight import PreflightError

    try:
        _check_model_name(args.model_name)
    except ConfigError as exc:
        return _fail(str(exc))
    _setup_logging()
    try:
        result = runner.train(
            args.task, encoder=args.encoder, data_dir=args.data_dir, output_dir=args.output_dir,
            train_split=args.train_split, train_limit=args.train_limit, hyperparameters=_hyperparameters(args),
            evaluate=not args.no_eval, limit=args.limit, results_dir=args.results_dir, model_name=args.model_name,
            gold_entities=args.gold_entities,
        )
    except (PreflightError, *_USER_ERRORS) as exc:
        return _fail(_message(exc))
    _print_metrics(result)
    return 0


def _predict(args: argparse.Namespace) -> int:
    from taiyi_bench.baselines import runner, settings
    from taiyi_bench.baselines.preflight import PreflightError
    from taiyi_bench.harness.registry import get_spec
    from taiyi_bench.harness.results_io import model_slug

    try:
        _check_model_name(args.model_name)
    except ConfigError as exc:
        return _fail(str(exc))
    _setup_logging()
    try:
        checkpoint = args.checkpoint
        if checkpoint is None:
            if not args.task:
                return _fail("give --output-dir (the trained baseline) or --task [--encoder]")
            spec = get_spec(args.task)
            checkpoint = runner.DEFAULT_CHECKPOINT_ROOT / spec.key / model_slug(settings.expand_encoder(args.encoder, spec.language))
        _check_trained_baseline(checkpoint)
        result = runner.predict(
            checkpoint, task=args.task, data_dir=args.data_dir, split=args.split, limit=args.limit,
            results_dir=args.results_dir, model_name=args.model_name, device=args.device,
            gold_entities=args.gold_entities,
        )
    except (PreflightError, *_USER_ERRORS) as exc:
        return _fail(_message(exc))
    _print_metrics(result)
    return 0


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
    from taiyi_bench.baselines import llm_run
    from taiyi_bench.baselines.llm_registry import find_config
    from taiyi_bench.baselines.preflight import PreflightError, resolve_model

    try:
        config, backend_notes = llm_run.on_backend(find_config(args.name), args.backend)
    except ConfigError as exc:
        return _fail(str(exc))
    for note in backend_notes:
        print(f"# --backend {args.backend}: {note}", file=sys.stderr)
    gen_kwargs = {"max_gen_toks": args.max_gen_toks} if args.max_gen_toks else None
    # Every requested set is checked before any model loads: one message lists all that are missing.
    try:
        tasks, skipped = llm_run.select_available_tasks(args.tasks, args.data_dir, skip_missing=args.skip_missing)
    except (ConfigError, DataNotFoundError, KeyError) as exc:
        return _fail(str(exc).strip("'\""))
    _warn_budget_cuts(config, args.max_gen_toks, tasks)
    options = dict(
        tasks=tasks, limit=args.limit, data_dir=args.data_dir, output_root=args.output_root,
        device=args.device, batch_size=args.batch_size, gen_kwargs=gen_kwargs,
    )
    if args.dry_run:
        location = config.model
        if not config.is_api and config.model.startswith("local:"):
            try:  # the exact command needs the directory a local:<name> model lives in
                location = resolve_model(config.model).location
            except PreflightError as exc:
                print(f"# note: {exc}", file=sys.stderr)
        print(llm_run.build_invocation(config, model_location=location, **options).shell())
        return 0
    try:
        location = llm_run.run_preflight(config, data_dir=args.data_dir, timeout=args.timeout)
    except PreflightError as exc:
        return _fail(f"{config.name}: {exc}")
    if "gpu" in config.requires:
        import torch

        if not torch.cuda.is_available():
            print(f"# warning: {config.name} is meant for a GPU and none is visible; this will be slow", file=sys.stderr)
    invocation = llm_run.build_invocation(config, model_location=location, **options)
    return args.run_steps(invocation, skipped)


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
    from taiyi_bench.baselines.llm_registry import scaffold

    try:
        path = scaffold(args.name, args.dir, backend=args.backend, model=args.model)
    except ConfigError as exc:
        return _fail(str(exc))
    except OSError as exc:  # e.g. the registry inside a read-only site-packages
        return _fail(f"cannot write the config ({exc}); choose a folder with --dir")
    print(f"wrote {path}; edit it, then: taiyi baseline validate {path} && taiyi baseline run {args.name} --dry-run")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from taiyi_bench.baselines.llm_registry import config_paths, load_config

    paths = args.paths or [str(p) for p in config_paths().values()]
    failed = 0
    for path in paths:
        try:
            config = load_config(path)
        except ConfigError as exc:
            failed += 1
            print(str(exc), file=sys.stderr)
            continue
        print(f"ok  {config.name}  ({path})")
    return 1 if failed else 0
