"""Fine-tuning speed features on a tiny model (CPU): packed attention without cross-sample leaks in
every layout, the label-only loss, the attention and checkpointing choices, MFU and the train log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from taiyi_bench.finetune import performance
from taiyi_bench.finetune.config import load_recipe
from taiyi_bench.finetune.data import Conversation
from taiyi_bench.finetune.encoding import IGNORE_INDEX, collate_packed, collate_padded, encode_all
from taiyi_bench.finetune.train import train
from taiyi_bench.harness.errors import ConfigError
from taiyi_bench.harness.random_models import build_tiny_causal_lm

TURNS = [
    ("请从下面的文本中抽取所有疾病实体。\n文本：患者有高血压。", "疾病：高血压"),
    ("And in English: the patient has diabetes.", "Disease: diabetes"),
    ("Thanks! One more?", "Sure: none"),
    ("Extract all Chemical entities from the following text.", "Chemical: cisplatin; doxorubicin"),
]
ROW_SIZES = (1, 2, 5)  # samples per packed row


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # shared CI cores
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny") / "lm", seed=0)


@pytest.fixture(scope="module")
def samples(tiny_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    conversations = [
        Conversation(str(i), "d", "other", "en", [TURNS[i % 4], TURNS[(i + 1) % 4]][: 1 + i % 2])
        for i in range(sum(ROW_SIZES))
    ]
    encoded, _ = encode_all(tokenizer, conversations, style="chat_template", max_length=256)
    assert len(encoded) == sum(ROW_SIZES) and len({len(s) for s in encoded}) > 2
    return encoded


def _rows(samples):
    rows, start = [], 0
    for size in ROW_SIZES:
        rows.append(samples[start : start + size])
        start += size
    return rows


def _model(tiny_dir, attn):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_dir, attn_implementation=attn).eval()


def _flex_available() -> bool:
    try:
        from torch.nn.attention.flex_attention import flex_attention  # noqa: F401
    except ImportError:
        return False
    return performance.transformers_reads_packed_positions()


LAYOUTS = [
    ("eager", "mask4d"),
    ("sdpa", "mask4d"),
    ("sdpa", "positions"),  # the flex layout, masked by transformers' sdpa path
    ("sdpa", "flatten"),  # the flash layout, masked by transformers' sdpa path
    pytest.param(
        "flex_attention",
        "positions",
        marks=pytest.mark.skipif(not _flex_available(), reason="torch without flex_attention"),
    ),
]


@pytest.mark.parametrize(("attn", "layout"), LAYOUTS)
def test_packed_rows_give_the_logits_and_loss_of_samples_run_one_by_one(tiny_dir, samples, attn, layout):
    reference = _model(tiny_dir, "sdpa")
    packed_model = _model(tiny_dir, attn)
    rows = _rows(samples)
    mask_dtype = torch.bool if attn == "sdpa" else torch.float32
    batch = collate_packed(rows, pad_id=0, layout=layout, dtype=mask_dtype)
    if layout == "positions":
        assert "attention_mask" not in batch and batch["input_ids"].shape[1] % 128 == 0
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    with torch.no_grad():  # flex_attention has no backward on CPU; the forward is what is compared
        logits = packed_model(**inputs, use_cache=False).logits
        alone = [reference(torch.tensor([s.input_ids]), use_cache=False).logits[0] for s in samples]
        loss = performance.labelled_loss_sum(packed_model, packed_model.get_output_embeddings(), batch)
        loss_alone = sum(
            performance.token_loss_sum(out[None], torch.tensor([s.labels]))
            for out, s in zip(alone, samples, strict=True)
        )
    index = 0
    for row_number, row in enumerate(rows):
        cursor = 0
        for sample in row:
            n = len(sample)
            if layout == "flatten":  # one row holding every sample of every pack
                start = sum(len(s) for s in samples[:index])
                got = logits[0, start : start + n]
            else:
                got = logits[row_number, cursor : cursor + n]
            torch.testing.assert_close(got, alone[index], atol=2e-5, rtol=1e-4)
            cursor += n
            index += 1
    assert loss.item() == pytest.approx(loss_alone.item(), rel=1e-5)


def test_packing_without_boundaries_is_detected(tiny_dir, samples):
    """Negative control: the comparison above fails when samples may see each other."""
    model = _model(tiny_dir, "sdpa")
    batch = collate_packed(_rows(samples), pad_id=0, layout="positions")
    with torch.no_grad():
        leaky = model(input_ids=batch["input_ids"], use_cache=False).logits  # no positions: one long sample
        alone = model(torch.tensor([samples[1].input_ids]), use_cache=False).logits[0]
    second_of_row = leaky[1, len(samples[1]) : len(samples[1]) + len(samples[2])]
    third_alone = model(torch.tensor([samples[2].input_ids]), use_cache=False).logits[0]
    assert not torch.allclose(second_of_row, third_alone, atol=1e-3)
    assert torch.allclose(leaky[1, : len(samples[1])], alone, atol=1e-5)  # the first sample is unaffected


@pytest.mark.parametrize("packed", [False, True])
def test_label_only_loss_equals_the_full_loss_and_gradients(tiny_dir, samples, packed):
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    model = get_peft_model(
        _model(tiny_dir, "sdpa"),
        LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM"),
    ).train()
    if packed:
        batch = collate_packed(_rows(samples), pad_id=0, layout="mask4d", dtype=torch.bool)
    else:
        batch = collate_padded(samples, pad_id=0)
    head = model.get_output_embeddings()
    seen = []
    hook = head.register_forward_hook(lambda _m, args, _out: seen.append(args[0].shape))

    def loss_and_grads(compute):
        model.zero_grad(set_to_none=True)
        loss = compute()
        loss.backward()
        return loss.item(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}

    inputs = {k: v for k, v in batch.items() if k != "labels"}
    full, full_grads = loss_and_grads(
        lambda: performance.token_loss_sum(model(**inputs, use_cache=False).logits, batch["labels"])
    )
    label_only, grads = loss_and_grads(lambda: performance.labelled_loss_sum(model, head, batch))
    hook.remove()
    labelled = int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())
    assert seen[1] == (labelled, model.config.hidden_size)  # the head saw labelled positions only
    assert labelled < batch["input_ids"].numel() / 2 and seen[0][:2] == batch["input_ids"].shape
    assert label_only == pytest.approx(full, rel=1e-6)
    for name, grad in full_grads.items():
        torch.testing.assert_close(grads[name], grad, atol=1e-6, rtol=1e-4)


def test_attention_plan_chooses_per_machine_and_refuses_what_cannot_run():
    plan = performance.plan_attention
    cpu = plan("auto", packing=True, cuda=False, flash=False, flex=None)
    assert (cpu.implementation, cpu.layout) == ("sdpa", "mask4d")
    flash = plan("auto", packing=True, cuda=True, flash=True, flex=None)
    assert (flash.implementation, flash.layout) == ("flash_attention_2", "flatten")
    flex = plan("auto", packing=True, cuda=True, flash=False, flex=(True, "ok"))
    assert (flex.implementation, flex.layout) == ("flex_attention", "positions")
    fallback = plan("auto", packing=True, cuda=True, flash=False, flex=(False, "no triton"))
    assert (fallback.implementation, fallback.layout) == ("sdpa", "mask4d") and "no triton" in fallback.reason
    assert plan("auto", packing=False, cuda=False, flash=False, flex=None).layout is None
    assert plan("auto", packing=True, cuda=True, flash=True, flex=None, native=False).implementation is None
    assert plan("eager", packing=True, cuda=False, flash=False, flex=None).layout == "mask4d"
    with pytest.raises(ConfigError, match="flash-attn"):
        plan("flash_attention_2", packing=True, cuda=False, flash=False, flex=None)
    with pytest.raises(ConfigError, match="flex_attention cannot train here: no backward"):
        plan("flex_attention", packing=True, cuda=False, flash=False, flex=(False, "no backward"))


def test_checkpointing_plan_follows_free_memory():
    gib = 2**30
    common = {"cuda": True, "layers": 28, "layer_input_bytes": 0.06 * gib, "fixed_bytes": 6 * gib}
    per_layer = 2.4 * gib  # a 7B-shaped layer at 8k tokens
    roomy = performance.plan_checkpointing(
        "auto", per_layer_bytes=per_layer, free_bytes=125 * gib, total_bytes=141 * gib, **common
    )
    tight = performance.plan_checkpointing(
        "auto", per_layer_bytes=per_layer, free_bytes=65 * gib, total_bytes=80 * gib, **common
    )
    tighter = performance.plan_checkpointing(
        "auto", per_layer_bytes=per_layer, free_bytes=55 * gib, total_bytes=80 * gib, **common
    )
    hopeless = performance.plan_checkpointing(
        "auto", per_layer_bytes=per_layer, free_bytes=8 * gib, total_bytes=80 * gib, **common
    )
    assert (
        roomy.every == 0
        and roomy.checkpointed == 0
        and roomy.estimate_gb["need"] < roomy.estimate_gb["budget"]
    )
    assert 0 < tight.checkpointed < tighter.checkpointed < 28 and tight.every > tighter.every > 1
    assert tight.estimate_gb["need"] <= tight.estimate_gb["budget"]
    assert hopeless.every == 1 and hopeless.checkpointed == 28
    cpu = performance.plan_checkpointing(
        "auto", **{**common, "cuda": False}, per_layer_bytes=per_layer, free_bytes=None, total_bytes=None
    )
    assert cpu.every == 0
    fixed = performance.plan_checkpointing(
        3, per_layer_bytes=None, free_bytes=None, total_bytes=None, **common
    )
    assert (fixed.every, fixed.checkpointed) == (3, 10)


def test_every_kth_layer_checkpointing_keeps_the_gradients():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=5, num_attention_heads=2
    )
    model = LlamaForCausalLM(config).train()
    ids = torch.randint(0, 64, (2, 12))

    def grads():
        model.zero_grad(set_to_none=True)
        model(input_ids=ids, labels=ids, use_cache=False).loss.backward()
        return [p.grad.clone() for p in model.parameters()]

    plain = grads()
    assert performance.apply_checkpointing(model, 2) == 3  # layers 0, 2, 4
    flags = [layer.gradient_checkpointing for layer in performance.decoder_layers(model)]
    assert flags == [True, False, True, False, True]
    checkpointed = grads()
    assert performance.apply_checkpointing(model, 0) == 0
    assert not any(layer.gradient_checkpointing for layer in performance.decoder_layers(model))
    for a, b in zip(plain, checkpointed, strict=True):
        torch.testing.assert_close(a, b)


def test_mfu_uses_the_device_peak_and_is_null_when_unknown():
    tera = 1e12
    assert performance.peak_bf16_flops("NVIDIA H100 80GB HBM3") == 989 * tera
    assert performance.peak_bf16_flops("NVIDIA H100 PCIe") == 756 * tera
    assert performance.peak_bf16_flops("NVIDIA H200") == 989 * tera
    assert performance.peak_bf16_flops("NVIDIA A100-SXM4-80GB") == 312 * tera
    assert performance.peak_bf16_flops("NVIDIA L40S") == 362 * tera
    assert performance.peak_bf16_flops("NVIDIA L4") == 121 * tera
    assert performance.peak_bf16_flops("Tesla V100-SXM2-16GB") is None
    assert performance.peak_bf16_flops(None) is None
    # the H200 measurement of the packed 7B recipe: 6,622 tokens/s, 6.88B parameters, 27.6% MFU
    assert performance.mfu(6622, 6_880_000_000, 989 * tera) == pytest.approx(0.276, abs=0.001)
    assert performance.mfu(6622, 6_880_000_000, 989 * tera, devices=2) == pytest.approx(0.138, abs=0.001)
    assert performance.mfu(1000, 10**9, None) is None


def _config(tiny_dir: Path, *overrides: str) -> dict:
    return load_recipe(
        "cpu_smollm2_tiny",
        [
            f"model.base={tiny_dir}",
            "data.tasks.names=[bc5cdr_chem]",
            "data.files=[]",
            "data.cap=6",
            "format.max_length=160",
            "training.max_steps=2",
            "training.save_steps=0",
            "training.progress=false",
            "training.num_threads=1",
            *overrides,
        ],
    )


def test_train_log_and_summary_report_speed_attention_and_checkpointing(tiny_dir, tmp_path):
    out = tmp_path / "run"
    summary = train(_config(tiny_dir, "model.gradient_checkpointing=auto"), stages=(1,), output_dir=out)
    records = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    steps = [r for r in records if r["event"] == "step"]
    assert len(steps) == 2
    for step in steps:
        assert step["tokens_per_s"] > 0 and step["peak_mem_mb"] > 0 and "mfu" in step
        assert step["mfu"] is None  # CPU: no peak to compare against
    (attention,) = [r for r in records if r["event"] == "attention"]
    assert (attention["implementation"], attention["layout"]) == ("sdpa", "mask4d") and attention["reason"]
    (memory,) = [r for r in records if r["event"] == "memory_policy"]
    assert (memory["setting"], memory["every"], memory["checkpointed"]) == ("auto", 0, 0)
    stage = summary["stages"][1]
    assert stage["tokens_per_s"] > 0 and stage["peak_mem_mb"] > 0 and stage["mfu"] is None
    info = json.loads((out / "stage1" / "run_info.json").read_text())
    assert info["packing_layout"] == "mask4d" and info["gradient_checkpointing"]["every"] == 0


def test_configured_checkpointing_and_flex_on_cpu(tiny_dir, tmp_path):
    out = tmp_path / "every2"
    train(_config(tiny_dir, "model.gradient_checkpointing=2"), stages=(1,), output_dir=out)
    records = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    (memory,) = [r for r in records if r["event"] == "memory_policy"]
    assert (memory["every"], memory["layers"], memory["checkpointed"]) == (2, 2, 1)
    with pytest.raises(ConfigError, match="gradient_checkpointing"):
        _config(tiny_dir, "model.gradient_checkpointing=0")
    with pytest.raises(ConfigError, match="attn_implementation"):
        _config(tiny_dir, "model.attn_implementation=xformers")
    if torch.cuda.is_available():
        return
    with pytest.raises(ConfigError, match="flex_attention cannot train here"):
        train(
            _config(tiny_dir, "model.attn_implementation=flex_attention"),
            stages=(1,),
            output_dir=tmp_path / "f",
        )


def test_training_steps_agree_across_packing_layouts(tiny_dir, tmp_path, monkeypatch):
    """The GPU layouts (flex's padded rows with position ids, flash's one flattened row) go through
    the same training loop as the CPU's dense mask; here sdpa masks them, so the losses must agree."""
    losses = {}
    for layout in ("mask4d", "positions", "flatten"):
        plan = performance.AttentionPlan("sdpa", layout, f"test: {layout}")
        monkeypatch.setattr(performance, "choose_attention", lambda *args, _plan=plan, **kwargs: _plan)
        out = tmp_path / layout
        train(_config(tiny_dir, "lora.dropout=0", "training.max_steps=3"), stages=(1,), output_dir=out)
        records = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
        assert [r["layout"] for r in records if r["event"] == "attention"] == [layout]
        losses[layout] = [r["loss"] for r in records if r["event"] == "step"]
    assert len(losses["mask4d"]) == 3
    for layout in ("positions", "flatten"):
        assert losses[layout] == pytest.approx(losses["mask4d"], rel=1e-5)
