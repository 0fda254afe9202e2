"""Evaluation throughput of a named model shape with random weights, per task: units/s and generated
tokens/s through lm-eval's hf backend, and through vLLM when it is importable.

    python benchmarks/bench_eval_gpu.py --shape tiny --tasks taiyi_kuake_qic --limit 4 --max-new-tokens 8   # CPU
    python benchmarks/bench_eval_gpu.py --shape qwen2.5-7b --data-dir /data --limit 64 --batch-size 64        # GPU

The model and tokenizer are made as in bench_train_gpu.py (nothing is downloaded). Every generation
is forced to exactly `--max-new-tokens` new tokens (stop sequences and end-of-sequence are ignored),
so the figures are comparable across tasks and backends: a random model never stops on its own
anyway, and real answers are shorter than the tasks' budgets. Each task runs on its own through
`lm_eval.simple_evaluate` with `--limit` units (its scores are noise and are not reported). The
vLLM backend builds the same shape with `load_format=dummy` (random weights, nothing read) from a
config and tokenizer written to a temporary directory.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, Path(__file__).resolve().parent):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from bench_train_gpu import SHAPES, build_model, load_tokenizer  # noqa: E402


class GenerationCounter:
    """Generated tokens, counted where the backend returns them."""

    def __init__(self) -> None:
        self.tokens = 0


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
                params = (
                    sampling_params
                    if isinstance(sampling_params, list)
                    else [sampling_params] * len(requests)
                )
                sampling_params = [
                    SamplingParams(
                        temperature=0, max_tokens=p.max_tokens, min_tokens=p.max_tokens, ignore_eos=True
                    )
                    for p in params
                ]
            outputs = super()._model_generate(requests, generate=generate, sampling_params=sampling_params)
            if generate:
                counter.tokens += sum(len(o.outputs[0].token_ids) for o in outputs)
            return outputs

    return FixedLengthVLLM


def make_hf(args: argparse.Namespace, tokenizer: Any, counter: GenerationCounter) -> Any:
    import torch

    cuda = torch.cuda.is_available()
    dtype = torch.bfloat16 if cuda else torch.float32
    model = build_model(args.shape, tokenizer, dtype, "cuda" if cuda else "cpu").eval()
    model.config.use_cache = True
    return fixed_length_hf(counter)(pretrained=model, tokenizer=tokenizer, batch_size=args.batch_size)


def make_vllm(args: argparse.Namespace, tokenizer: Any, counter: GenerationCounter, workdir: Path) -> Any:
    from transformers import AutoConfig

    model_type, sizes = SHAPES[args.shape]
    config = AutoConfig.for_model(
        model_type,
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **sizes,
    )
    directory = workdir / f"vllm-{args.shape}"
    config.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return fixed_length_vllm(counter)(
        pretrained=str(directory),
        dtype="bfloat16",
        load_format="dummy",  # random weights, no checkpoint read
        batch_size="auto",
        max_model_len=min(int(sizes["max_position_embeddings"]), 8192),
        gpu_memory_utilization=0.85,
    )


def bench_backend(
    name: str, lm: Any, counter: GenerationCounter, tasks: list[str], args: argparse.Namespace
) -> list[dict[str, Any]]:
    import lm_eval
    from lm_eval.tasks import TaskManager

    manager = TaskManager(metadata={"data_dir": args.data_dir} if args.data_dir else None)
    rows = []
    for task in tasks:
        before, started = counter.tokens, time.perf_counter()
        results = lm_eval.simple_evaluate(
            model=lm,
            tasks=[task],
            limit=args.limit,
            task_manager=manager,
            apply_chat_template=args.chat_template,
            gen_kwargs={"max_gen_toks": args.max_new_tokens},
            log_samples=False,
        )
        seconds = time.perf_counter() - started
        units = int(results["n-samples"][task]["effective"])
        generated = counter.tokens - before
        rows.append(
            {
                "backend": name,
                "task": task,
                "units": units,
                "seconds": seconds,
                "units_per_s": units / seconds,
                "generated_tokens": generated,
                "generated_tokens_per_s": generated / seconds,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shape", choices=sorted(SHAPES), default="tiny")
    parser.add_argument("--tasks", default="all", help="comma list of taiyi_* tasks, or all")
    parser.add_argument("--limit", type=int, default=32, help="units per task")
    parser.add_argument("--batch-size", type=int, default=16, help="hf backend batch size")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="generated tokens per unit, exactly")
    parser.add_argument(
        "--backend", choices=["hf", "vllm", "all"], default="all", help="all = hf, and vllm if importable"
    )
    parser.add_argument("--data-dir", default=None, help="the real data sets (else the bundled samples)")
    parser.add_argument(
        "--tokenizer", default=None, help="auto | smollm2 | tiny | DIR (default: tiny for --shape tiny)"
    )
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
    backends = ["hf"] if args.backend == "hf" else ["vllm"] if args.backend == "vllm" else ["hf", "vllm"]
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
            lm = (
                make_hf(args, tokenizer, counter)
                if backend == "hf"
                else make_vllm(args, tokenizer, counter, Path(tmp))
            )
            rows += bench_backend(backend, lm, counter, tasks, args)
            del lm
    _print(args, tokenizer_name, rows, skipped)
    if args.json:
        payload = {"shape": args.shape, "tokenizer": tokenizer_name, "rows": rows, "skipped": skipped}
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 0


def _print(
    args: argparse.Namespace, tokenizer: str, rows: list[dict[str, Any]], skipped: dict[str, str]
) -> None:
    print(
        f"shape {args.shape}, tokenizer {tokenizer}, {args.max_new_tokens} new tokens per unit, "
        f"limit {args.limit}, hf batch {args.batch_size}"
    )
    print(f"{'backend':8} {'task':24} {'units':>6} {'seconds':>8} {'units/s':>9} {'gen tok/s':>10}")
    for r in rows:
        print(
            f"{r['backend']:8} {r['task']:24} {r['units']:>6} {r['seconds']:>8.1f} {r['units_per_s']:>9.2f} "
            f"{r['generated_tokens_per_s']:>10,.0f}"
        )
    for backend in sorted({r["backend"] for r in rows}):
        mine = [r for r in rows if r["backend"] == backend]
        seconds = sum(r["seconds"] for r in mine)
        units, generated = sum(r["units"] for r in mine), sum(r["generated_tokens"] for r in mine)
        print(
            f"{backend:8} {'all':24} {units:>6} {seconds:>8.1f} {units / seconds:>9.2f} {generated / seconds:>10,.0f}"
        )
    for backend, why in skipped.items():
        print(f"{backend:8} skipped: {why}")


if __name__ == "__main__":
    raise SystemExit(main())
