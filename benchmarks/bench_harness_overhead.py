"""Harness overhead over raw `generate` calls, measured side by side in one run.

Same tiny random causal LM, prompts and greedy budget, model load included: (a) `lm_eval` with a taiyi_*
task (dataset, prompts, scheduling, parsing, scoring), (b) a plain `model.generate` loop on the rendered
prompts. Prints wall times and the ratio (a)/(b).

    python benchmarks/bench_harness_overhead.py [--task taiyi_ncbi_disease] [--units 40] [--data-dir DIR]
"""

from __future__ import annotations

import tempfile
from functools import partial
from pathlib import Path

import torch
from _timing import make_parser, timed


def main() -> None:
    parser = make_parser(__doc__)
    parser.add_argument("--task", default="taiyi_ncbi_disease")
    parser.add_argument("--units", type=int, default=40)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()

    import lm_eval
    from lm_eval.tasks import TaskManager
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from taiyi_bench.harness.loading import load_split
    from taiyi_bench.harness.prompts import render_prompt
    from taiyi_bench.harness.random_models import build_tiny_causal_lm
    from taiyi_bench.harness.registry import get_spec

    torch.manual_seed(0)
    spec = get_spec(args.task)
    examples = load_split(spec.key, data_dir=args.data_dir).examples[: args.units]
    units = len(examples)
    half = max(1, units // 2)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_tiny_causal_lm(Path(tmp) / "tiny-lm")
        # min_new_tokens pins both paths to the same number of generated tokens per unit.
        gen = f"max_gen_toks={args.new_tokens},min_new_tokens={args.new_tokens}"
        device = "cuda" if torch.cuda.is_available() else "cpu"

        metadata = {"data_dir": args.data_dir} if args.data_dir else None
        index_s, manager = timed(lambda: TaskManager(metadata=metadata))

        def harness(n: int) -> None:
            lm_eval.simple_evaluate(
                model="hf", model_args=f"pretrained={model_dir},dtype=float32", tasks=[spec.task_name],
                limit=n, batch_size=1, device=device, gen_kwargs=gen, task_manager=manager,
            )

        def raw(n: int) -> None:
            tokenizer = AutoTokenizer.from_pretrained(model_dir)
            model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).to(device).eval()
            with torch.inference_mode():
                for example in examples[:n]:
                    inputs = tokenizer(render_prompt(spec, example), return_tensors="pt").to(device)
                    model.generate(
                        **inputs, max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens, do_sample=False,
                        pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
                    )

        harness_half, harness_full = (timed(partial(harness, n))[0] for n in (half, units))
        raw_half, raw_full = (timed(partial(raw, n))[0] for n in (half, units))

    # Marginal cost per unit from two run sizes separates fixed costs (model load, dataset
    # build) from the per-unit path, which is what grows with a real test split.
    per_unit_h = (harness_full - harness_half) / (units - half)
    per_unit_r = (raw_full - raw_half) / (units - half)
    print(f"task={spec.task_name} units={units} (and {half}) new_tokens/unit={args.new_tokens} "
          f"device={device} threads={torch.get_num_threads()}")
    print(f"lm-eval task index build (once per process): {index_s:.2f} s")
    print(f"{'path':<28}{'total s':>10}{'ms/unit':>10}{'fixed s':>10}")
    for name, full, per_unit in (("lm_eval + taiyi task", harness_full, per_unit_h), ("raw model.generate loop", raw_full, per_unit_r)):
        print(f"{name:<28}{full:>10.2f}{per_unit * 1000:>10.1f}{full - per_unit * units:>10.2f}")
    print(f"overhead ratio, total (harness / raw): {harness_full / raw_full:.2f}x")
    print(f"overhead ratio, per unit (harness / raw): {per_unit_h / per_unit_r:.2f}x")


if __name__ == "__main__":
    main()
