"""Discriminative-baseline throughput of the NER tagger head on one set: training steps/s and prediction
units/s, for the choices that decide CPU practicality.

On the same features, best of `--repeat`: (a) training with the fused AdamW kernel and length-bucketed
batches (`taiyi_bench.baselines.training`), (b) the same steps with PyTorch's default AdamW and random
batches (a naive loop), (c) prediction of `--units` units.

    python benchmarks/bench_baselines.py [--task ncbi_disease] [--encoder minilm] [--data-dir DIR]
                                         [--steps 20] [--units 500] [--repeat 2]
"""

from __future__ import annotations

import copy
import random

import torch
from _timing import make_parser, timed

from taiyi_bench.baselines import settings, training
from taiyi_bench.baselines.families import _entity_spans
from taiyi_bench.baselines.heads import Tagger, TagUnit
from taiyi_bench.baselines.preflight import resolve_model
from taiyi_bench.baselines.words import example_words
from taiyi_bench.harness.loading import load_split
from taiyi_bench.harness.registry import get_spec


def _naive_steps(model: torch.nn.Module, features: list, config: settings.HeadConfig, pad_id: int, loss_fn, steps: int) -> None:
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate)  # default (unfused) kernel
    rng = random.Random(0)
    model.train()
    for _ in range(steps):
        batch = training.collate(rng.sample(features, config.batch_size), pad_id)
        loss_fn(model, batch).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
    parser.add_argument("--task", default="ncbi_disease", help="an NER set (the tagger head is timed)")
    parser.add_argument("--encoder", default="minilm")
    parser.add_argument("--data-dir")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--units", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args(argv)
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()

    spec = get_spec(args.task)
    if spec.task_type != "ner":
        parser.error("--task must be an NER set")
    location = resolve_model(settings.expand_encoder(args.encoder, spec.language)).location
    train = load_split(spec.key, "train", args.data_dir).examples
    test = load_split(spec.key, None, args.data_dir).examples[: args.units]
    config = settings.head_config(spec.key, "tagger", {"max_steps": args.steps, "batch_size": args.batch_size, "log_every": 0})
    base = Tagger.create(location, spec.labels, config)
    units = [TagUnit(ex.text, example_words(ex), _entity_spans(ex, spec.labels)) for ex in train]
    features = base.features(units, with_labels=True)
    pad_id = base.tokenizer.pad_token_id
    print(f"{spec.task_name}: {len(features)} training windows, encoder {location}, {torch.get_num_threads()} threads")

    model = base.model

    def fresh_model() -> None:  # every training run starts from the same weights, copied untimed
        nonlocal model
        model = copy.deepcopy(base.model)

    best_ours, _ = timed(
        lambda: training.train(model, features, config, pad_token_id=pad_id, loss_fn=base.loss), args.repeat, fresh_model
    )
    best_naive, _ = timed(
        lambda: _naive_steps(model, features, config, pad_id, base.loss, args.steps), args.repeat, fresh_model
    )
    best_predict, _ = timed(lambda: base.predict_tags([TagUnit(ex.text, example_words(ex)) for ex in test]), args.repeat)

    print(f"train, fused AdamW + length buckets : {args.steps / best_ours:6.2f} steps/s ({best_ours:.1f} s)")
    print(f"train, default AdamW + random batches: {args.steps / best_naive:6.2f} steps/s ({best_naive:.1f} s)")
    print(f"predict                              : {len(test) / best_predict:6.1f} units/s ({best_predict:.1f} s for {len(test)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
