"""Evaluation throughput of a named model shape with random weights, per task: units/s and generated
tokens/s through lm-eval's hf backend, and through vLLM when it is importable.

    python benchmarks/bench_eval_gpu.py --shape tiny --tasks taiyi_kuake_qic --limit 4 --max-new-tokens 8   # CPU
    python benchmarks/bench_eval_gpu.py --shape qwen2.5-7b --data-dir /data --limit 64 --batch-size 64        # GPU

The model and tokenizer are made as in bench_train_gpu.py (nothing is downloaded). Every generation is
forced to exactly `--max-new-tokens` new tokens (stop sequences and end-of-sequence ignored), so figures
compare across tasks and backends (a random model never stops anyway). Each task runs alone through
`lm_eval.simple_evaluate` with `--limit` units (its scores are noise, not reported). vLLM builds the same
shape with `load_format=dummy` (random weights) from a config and tokenizer saved to a temporary folder.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
from _timing import make_parser
from bench_train_gpu import SHAPES, build_model, load_tokenizer, shape_config


@dataclass
class GenerationCounter:
    """Generated tokens, counted where the backend returns them."""

    tokens: int = 0


def fixed_length_hf(counter: GenerationCounter) -> type:
    """lm-eval's HFLM generating exactly the requested number of new tokens per request."""
    from lm_eval.models.huggingface import HFLM

    class FixedLengthHFLM(HFLM):
        def _model_generate(self, context: Any, max_length: int, stop: list[str], **kwargs: Any) -> Any:
            new_tokens = max_length - context.shape[1]
            kwargs["min_new_tokens"] = new_tokens  # end-of-sequence is suppressed until then
            out = super()._model_generate(context, max_length, [], **kwargs)
            counter.tokens += int(context.shape[0]) * (int(out.shape[1]) - int(context.shape[1]))
            return out

    return FixedLengthHFLM


def fixed_length_vllm(counter: GenerationCounter) -> type:
    """lm-eval's VLLM with end-of-sequence and stop strings ignored (exactly max_tokens each)."""
    from lm_eval.models.vllm_causallms import VLLM
    from vllm import SamplingParams

    class FixedLengthVLLM(VLLM):
        def _model_generate(self, requests: Any, generate: bool = False, sampling_params: Any = None) -> Any:
            if generate and sampling_params is not None:
                params = sampling_params if isinstance(sampling_params, list) else [sampling_params] * len(requests)
                sampling_params = [
                    SamplingParams(temperature=0, max_tokens=p.max_tokens, min_tokens=p.max_tokens, ignore_eos=True)
                    for p in params
                ]
            outputs = super()._model_generate(requests, generate=generate, sampling_params=sampling_params)
            if generate:
                counter.tokens += sum(len(o.outputs[0].token_ids) for o in outputs)
            return outputs

    return FixedLengthVLLM


def make_hf(args: argparse.Namespace, tokenizer: Any, counter: GenerationCounter) -> Any:
    cuda = torch.cuda.is_available()
    dtype = torch.bfloat16 if cuda else torch.float32
    model = build_model(args.shape, tokenizer, dtype, "cuda" if cuda else "cpu").eval()
    model.config.use_cache = True
    return fixed_length_hf(counter)(pretrained=model, tokenizer=tokenizer, batch_size=args.batch_size)


def make_vllm(args: argparse.Namespace, tokenizer: Any, counter: GenerationCounter, workdir: Path) -> Any:
    directory = workdir / f"vllm-{args.shape}"
    shape_config(args.shape, tokenizer).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return fixed_length_vllm(counter)(
        pretrained=str(directory),
        dtype="bfloat16",
        load_format="dummy",  # random weights, no checkpoint read
        batch_size="auto",
        max_model_len=min(int(SHAPES[args.shape][1]["max_position_embeddings"]), 8192),
        gpu_memory_utilization=0.85,
    )


def _row(backend: str, task: str, units: int, seconds: float, generated: int) -> dict[str, Any]:
    return {
        "backend": backend, "task": task, "units": units, "seconds": seconds, "units_per_s": units / seconds,
        "generated_tokens": generated, "generated_tokens_per_s": generated / seconds,
    }  # fmt: skip


def bench_backend(name: str, lm: Any, counter: GenerationCounter, tasks: list[str], args: argparse.Namespace) -> list:
    """One row of figures per task, each task through its own `simple_evaluate`."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    manager = TaskManager(metadata={"data_dir": args.data_dir} if args.data_dir else None)
    rows = []
    for task in tasks:
        before, started = counter.tokens, time.perf_counter()
        results = lm_eval.simple_evaluate(
            model=lm, tasks=[task], limit=args.limit, task_manager=manager, apply_chat_template=args.chat_template,
            gen_kwargs={"max_gen_toks": args.max_new_tokens}, log_samples=False,
        )  # fmt: skip
        units = int(results["n-samples"][task]["effective"])
        rows.append(_row(name, task, units, time.perf_counter() - started, counter.tokens - before))
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
    parser.add_argument("--shape", choices=sorted(SHAPES), default="tiny")
    parser.add_argument("--tasks", default="all", help="comma list of taiyi_* tasks, or all")
    parser.add_argument("--limit", type=int, default=32, help="units per task")
    parser.add_argument("--batch-size", type=int, default=16, help="hf backend batch size")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="generated tokens per unit, exactly")
    parser.add_argument("--backend", choices=["hf", "vllm", "all"], default="all", help="all: hf, and vllm if importable")
    parser.add_argument("--data-dir", default=None, help="the real data sets (else the bundled samples)")
    parser.add_argument("--tokenizer", help="auto | smollm2 | tiny | DIR (default: tiny for --shape tiny)")
    parser.add_argument("--no-chat-template", dest="chat_template", action="store_false")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    args.tokenizer = args.tokenizer or ("tiny" if args.shape == "tiny" else "auto")
    if importlib.util.find_spec("lm_eval") is None:
        print("bench: lm-eval is not installed (pip install lm-eval)", file=sys.stderr)
        return 2

    from taiyi_bench.harness.registry import REGISTRY

    known = sorted(spec.task_name for spec in REGISTRY.values())
    tasks = known if args.tasks == "all" else [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = sorted(set(tasks) - set(known))
    if unknown:
        parser.error(f"--tasks: unknown {unknown}; known: {', '.join(known)}")
    backends = ["hf", "vllm"] if args.backend == "all" else [args.backend]
    vllm_here = importlib.util.find_spec("vllm") is not None
    rows: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="bench-eval-") as tmp:
        tokenizer, tokenizer_name = load_tokenizer(args.tokenizer, Path(tmp))
        for backend in backends:
            if backend == "vllm" and not vllm_here:
                skipped["vllm"] = "vllm is not importable here"
                continue
            counter = GenerationCounter()
            make = make_hf if backend == "hf" else partial(make_vllm, workdir=Path(tmp))
            lm = make(args, tokenizer, counter)
            rows += bench_backend(backend, lm, counter, tasks, args)
            del lm
    _print(args, tokenizer_name, rows, skipped)
    if args.json:
        payload = {"shape": args.shape, "tokenizer": tokenizer_name, "rows": rows, "skipped": skipped}
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 0


def _print(args: argparse.Namespace, tokenizer: str, rows: list[dict[str, Any]], skipped: dict[str, str]) -> None:
    print(
        f"shape {args.shape}, tokenizer {tokenizer}, {args.max_new_tokens} new tokens per unit, "
        f"limit {args.limit}, hf batch {args.batch_size}"
    )
    print(f"{'backend':8} {'task':24} {'units':>6} {'seconds':>8} {'units/s':>9} {'gen tok/s':>10}")
    totals = []
    for backend in sorted({r["backend"] for r in rows}):
        mine = [r for r in rows if r["backend"] == backend]
        sums = (sum(r[key] for r in mine) for key in ("units", "seconds", "generated_tokens"))
        totals.append(_row(backend, "all", *sums))
    for r in rows + totals:
        print(
            f"{r['backend']:8} {r['task']:24} {r['units']:>6} {r['seconds']:>8.1f} {r['units_per_s']:>9.2f} "
            f"{r['generated_tokens_per_s']:>10,.0f}"
        )
    for backend, why in skipped.items():
        print(f"{backend:8} skipped: {why}")


if __name__ == "__main__":
    raise SystemExit(main())
