"""Training throughput with sequence packing vs padding, on the instruction data's length mix.

    python benchmarks/bench_packing.py                       # tiny random LM (seconds)
    python benchmarks/bench_packing.py --model smollm2 --samples 64 --threads 1
    python benchmarks/bench_packing.py --model Qwen/Qwen2.5-7B --samples 2000   # on a GPU

The samples (the CPU recipe's stage-2 instruction mixture of bundled samples, chat-template encoded,
drawn with replacement to `--samples`) train a LoRA adapter in both modes:
  padding  `--batch` samples per micro-batch, padded to the longest;
  packing  `--batch` rows of at most `--max-length` tokens, samples kept apart by the attention
           mask (sdpa/eager) or varlen position ids (flash attention).
Each mode runs in its own process, so that its peak memory is its own: `ru_maxrss` on CPU,
`torch.cuda.max_memory_allocated` on GPU. tokens/s counts real tokens only.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
from _timing import make_parser
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer

from taiyi_bench.finetune import data
from taiyi_bench.finetune.config import load_recipe
from taiyi_bench.finetune.encoding import collate_packed, collate_padded, encode_all, pack_indices
from taiyi_bench.finetune.performance import token_loss_sum
from taiyi_bench.finetune.train import recipe_search_dirs, resolve_base
from taiyi_bench.harness.random_models import build_tiny_causal_lm


def _lengths_mix(tokenizer: Any, max_length: int) -> tuple[list, Any]:
    """The CPU recipe's stage-2 instruction mixture, encoded with the chat template: (samples, report)."""
    config = load_recipe("cpu_smollm2_tiny", ["data.cap=null"])
    sources = data.load_sources(config["data"], search_dirs=recipe_search_dirs(config))
    mixture = data.build_mixture(sources, 2, cap=None, seed=0)
    return encode_all(tokenizer, mixture.conversations, style="chat_template", max_length=max_length)


def _base_model(args: argparse.Namespace) -> str:
    """The model directory: the tiny random LM built here, SmolLM2's, or a hub id or directory."""
    if args.model == "tiny":
        return str(build_tiny_causal_lm(Path(args.workdir) / "tiny-lm"))
    return resolve_base("local:smollm2" if args.model == "smollm2" else args.model)


def _lora_model(base: str, attn: str, device: torch.device, dtype: torch.dtype) -> Any:
    model = AutoModelForCausalLM.from_pretrained(base, dtype=dtype, attn_implementation=attn).to(device)
    model.config.use_cache = False
    return get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM"))


def _batches(args: argparse.Namespace, samples: list, pad: int, dtype: torch.dtype) -> list[dict]:
    """`--batch` padded samples per micro-batch, or `--batch` packed rows of at most `--max-length`."""
    if args.mode == "padding":
        return [collate_padded(samples[i : i + args.batch], pad) for i in range(0, len(samples), args.batch)]
    layout = "flatten" if "flash" in args.attn else "mask4d"
    mask_dtype = torch.bool if args.attn == "sdpa" else dtype
    packs = [[samples[i] for i in p] for p in pack_indices([len(s) for s in samples], args.max_length)]
    return [
        collate_packed(packs[i : i + args.batch], pad, layout=layout, dtype=mask_dtype)
        for i in range(0, len(packs), args.batch)
    ]


def _train(model: Any, batches: list[dict], device: torch.device, dtype: torch.dtype) -> tuple[float, float]:
    """One optimizer step per batch after an untimed warm-up step: (seconds, peak memory in MB)."""
    cuda = device.type == "cuda"
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    def step(batch: dict) -> None:
        batch = {k: v.to(device) for k, v in batch.items()}
        labels = batch.pop("labels")
        with torch.autocast(device.type, dtype=dtype, enabled=cuda):
            logits = model(**batch, use_cache=False).logits
        loss = token_loss_sum(logits, labels) / max(int((labels[..., 1:] != -100).sum()), 1)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    model.train()
    step(batches[0])  # warm-up (allocations, kernels), not timed
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    for batch in batches:
        step(batch)
    if cuda:
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - started
    if cuda:
        return elapsed, torch.cuda.max_memory_allocated() / 2**20
    return elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_mode(args: argparse.Namespace) -> dict:
    """Train one mode in this process; its figures."""
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    dtype = torch.bfloat16 if cuda else torch.float32
    base = _base_model(args)
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = _lora_model(base, args.attn, device, dtype)
    pool, report = _lengths_mix(tokenizer, args.max_length)
    rng = random.Random(0)
    samples = [pool[rng.randrange(len(pool))] for _ in range(args.samples)]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    batches = _batches(args, samples, pad, dtype)
    elapsed, peak = _train(model, batches, device, dtype)
    real_tokens = sum(len(s) for s in samples)
    slots = sum(b["input_ids"].numel() for b in batches)
    return {
        "mode": args.mode, "model": args.model, "device": str(device), "threads": torch.get_num_threads(),
        "samples": len(samples), "micro_batches": len(batches), "real_tokens": real_tokens, "token_slots": slots,
        "fill": real_tokens / slots, "seconds": elapsed, "tokens_per_s": real_tokens / elapsed, "peak_mem_mb": peak,
        "peak_mem_kind": "cuda max_memory_allocated" if cuda else "process max RSS",
        "length_mean": real_tokens / len(samples), "length_max": max(len(s) for s in samples),
        "pool_truncated": report.truncated, "pool_size": len(pool),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
    parser.add_argument("--model", default="tiny", help="tiny | smollm2 | a hub id or directory")
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8, help="samples (padding) or packed rows (packing) per step")
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--attn", default="sdpa", help="sdpa | eager | flash_attention_2 (GPU)")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0 = torch default)")
    parser.add_argument("--workdir", default="/tmp/taiyi-bench-packing")
    parser.add_argument("--mode", choices=["padding", "packing"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.mode:  # child process: one mode, one JSON line
        print(json.dumps(run_mode(args)))
        return 0
    results = {}
    for mode in ("padding", "packing"):
        command = [sys.executable, __file__, *(argv if argv is not None else sys.argv[1:]), "--mode", mode]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
            return done.returncode
        results[mode] = json.loads(done.stdout.strip().splitlines()[-1])
    pad, pack = results["padding"], results["packing"]
    print(
        f"model {pad['model']} on {pad['device']} ({pad['threads']} threads); {pad['samples']} samples drawn from "
        f"{pad['pool_size']} instruction samples; mean length {pad['length_mean']:.0f}, max {pad['length_max']} "
        f"tokens (max_length {args.max_length})"
    )
    print(f"{'mode':8} {'steps':>6} {'fill':>6} {'tokens/s':>10} {'seconds':>8} {'peak MB':>9}")
    for r in (pad, pack):
        print(
            f"{r['mode']:8} {r['micro_batches']:>6} {r['fill']:>6.1%} {r['tokens_per_s']:>10.0f} "
            f"{r['seconds']:>8.2f} {r['peak_mem_mb']:>9.0f}"
        )
    ratio = pack["tokens_per_s"] / pad["tokens_per_s"]
    print(f"packing / padding tokens/s: {ratio:.2f}x (peak memory: {pad['peak_mem_kind']})")
    print(json.dumps({"padding": pad, "packing": pack}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
