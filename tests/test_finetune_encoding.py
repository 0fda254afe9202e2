"""Assistant-only labels (token by token, both formats, multi-turn) and packing equivalence."""

from __future__ import annotations

import pytest
import torch

from taiyi_bench.finetune.data import Conversation
from taiyi_bench.finetune.encoding import (
    IGNORE_INDEX,
    collate_packed,
    collate_padded,
    encode_all,
    encode_chat,
    encode_eod,
    pack_indices,
)
from taiyi_bench.finetune.performance import token_loss_sum
from taiyi_bench.harness.errors import ConfigError
from taiyi_bench.harness.random_models import build_tiny_causal_lm

TURNS = [
    ("请从下面的文本中抽取所有疾病实体。\n文本：患者有高血压。", "疾病：高血压"),
    ("And in English: the patient has diabetes.", "Disease: diabetes"),
    ("Thanks! One more?", "Sure: none"),
]


@pytest.fixture(autouse=True)
def one_thread():
    # The CI machine's 2 cores are shared with other test processes; spinning threads collapse.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny") / "lm", seed=0)


@pytest.fixture(scope="module")
def tokenizer(tiny_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_dir)


def _expected_chat_spans(turns):
    """The tiny LM's template, written out by hand: independent of the prefix-rendering code."""
    text, spans = "", []
    for human, assistant in turns:
        text += f"<|im_start|>user\n{human}<|im_end|>\n<|im_start|>assistant\n"
        start = len(text)
        text += f"{assistant}<|im_end|>\n"
        spans.append((start, len(text)))
    return text, spans


@pytest.mark.parametrize("n_turns", [1, 3])
def test_chat_template_labels_token_by_token(tokenizer, n_turns):
    turns = TURNS[:n_turns]
    input_ids, labels = encode_chat(tokenizer, turns)
    text, spans = _expected_chat_spans(turns)
    assert tokenizer.decode(input_ids) == text
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    assert encoded["input_ids"] == input_ids
    for position, (start, _end) in enumerate(encoded["offset_mapping"]):
        inside = any(a <= start < b for a, b in spans)
        assert labels[position] == (input_ids[position] if inside else IGNORE_INDEX), (position, start)
    # the labelled tokens are exactly each answer plus its end-of-turn marker
    runs, current = [], []
    for token, label in zip(input_ids, labels, strict=True):
        if label != IGNORE_INDEX:
            current.append(token)
        elif current:
            runs.append(tokenizer.decode(current))
            current = []
    if current:
        runs.append(tokenizer.decode(current))
    assert runs == [f"{a}<|im_end|>\n" for _h, a in turns]


@pytest.mark.parametrize("n_turns", [1, 3])
def test_eod_format_labels_token_by_token(tokenizer, n_turns):
    turns = TURNS[:n_turns]
    eod = tokenizer.eos_token_id
    input_ids, labels = encode_eod(tokenizer, turns, eod)
    expected_ids, expected_labels = [eod], [IGNORE_INDEX]
    for human, assistant in turns:
        h = tokenizer(human, add_special_tokens=False)["input_ids"]
        a = tokenizer(assistant, add_special_tokens=False)["input_ids"]
        expected_ids += h + [eod] + a + [eod]
        expected_labels += [IGNORE_INDEX] * (len(h) + 1) + a + [eod]
    assert input_ids == expected_ids and labels == expected_labels
    # <eod>input<eod>answer<eod>: no roles, no system prompt
    assert tokenizer.decode(input_ids) == "<|endoftext|>" + "".join(
        f"{h}<|endoftext|>{a}<|endoftext|>" for h, a in turns
    )


def test_templates_that_cannot_be_masked_are_refused(tokenizer):
    from copy import deepcopy

    broken = deepcopy(tokenizer)
    # renders the last message differently from earlier ones: prefixes are not prefixes
    broken.chat_template = (
        "{% for m in messages %}{% if loop.last %}[{{ m['content'] }}]{% else %}{{ m['content'] }}{% endif %}"
        "{% endfor %}{% if add_generation_prompt %}>{% endif %}"
    )
    with pytest.raises(ConfigError, match="prefix"):
        encode_chat(broken, TURNS[:2])
    broken.chat_template = None
    with pytest.raises(ConfigError, match="no chat template"):
        encode_chat(broken, TURNS[:1])


def test_overlong_samples_are_counted_never_silent(tokenizer):
    long_question = "word " * 300
    conversations = [
        Conversation("ok", "a", "other", "en", [("short", "answer")]),
        Conversation("long-answer", "a", "other", "en", [("short", "answer " * 300)]),
        Conversation("long-question", "b", "other", "en", [(long_question, "answer")]),
    ]
    samples, report = encode_all(
        tokenizer, conversations, style="chat_template", max_length=64, overlong="truncate"
    )
    assert (report.kept, report.truncated, report.dropped_no_answer_left, report.dropped_overlong) == (2, 1, 1, 0)
    assert all(len(s) <= 64 for s in samples)
    assert report.per_dataset["b"]["dropped_no_answer_left"] == 1
    samples, report = encode_all(tokenizer, conversations, style="eod", max_length=64, overlong="drop")
    assert (report.kept, report.dropped_overlong) == (1, 2)
    assert report.as_dict()["per_dataset"] == {
        "a": {"kept": 1, "dropped_overlong": 1},
        "b": {"dropped_overlong": 1},
    }


def test_pack_indices_respects_the_budget():
    lengths = [5, 9, 3, 10, 1, 7, 2, 8, 6, 4]
    packs = pack_indices(lengths, 12, open_bins=3)
    assert sorted(i for pack in packs for i in pack) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in pack) <= 12 for pack in packs)
    assert len(packs) < len(lengths)
    with pytest.raises(ValueError):
        pack_indices([13], 12)


@pytest.mark.parametrize("style", ["chat_template", "eod"])
@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_packed_and_unpacked_batches_give_the_same_loss(tiny_dir, tokenizer, style, attn):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_dir, attn_implementation=attn).eval()
    conversations = [Conversation(str(i), "d", "other", "en", TURNS[: 1 + i % 3]) for i in range(7)]
    samples, _ = encode_all(tokenizer, conversations, style=style, max_length=256)
    pad = tokenizer.pad_token_id

    def mean_loss(batch):
        labels = batch.pop("labels")
        with torch.no_grad():
            logits = model(**batch, use_cache=False).logits
        return (token_loss_sum(logits, labels) / (labels[..., 1:] != IGNORE_INDEX).sum()).item()

    unpacked = mean_loss(collate_padded(samples, pad))
    packs = [[samples[i] for i in pack] for pack in pack_indices([len(s) for s in samples], 256)]
    assert len(packs) < len(samples) and any(len(p) > 1 for p in packs)
    mask_dtype = torch.bool if attn == "sdpa" else torch.float32
    packed = mean_loss(collate_packed(packs, pad, layout="mask4d", dtype=mask_dtype))
    flattened = mean_loss(collate_packed(packs, pad, layout="flatten"))  # position ids only (varlen path)
    assert packed == pytest.approx(unpacked, abs=1e-5)
    assert flattened == pytest.approx(unpacked, abs=1e-5)
    # negative control: packing without boundaries lets samples see each other
    leaky = collate_packed(packs, pad, layout="mask4d", dtype=mask_dtype)
    leaky.pop("attention_mask")
    leaky.pop("position_ids")
    assert abs(mean_loss(leaky) - unpacked) > 1e-4


def test_packed_collator_layout(tokenizer):
    conversations = [Conversation(str(i), "d", "other", "en", [TURNS[i]]) for i in range(3)]
    samples, _ = encode_all(tokenizer, conversations, style="eod", max_length=128)
    batch = collate_packed([[samples[0], samples[1]], [samples[2]]], pad_id=0, dtype=torch.bool)
    n0, n1, n2 = (len(s) for s in samples)
    mask = batch["attention_mask"][:, 0]
    assert mask.shape == (2, n0 + n1, n0 + n1)
    assert batch["position_ids"][0].tolist() == list(range(n0)) + list(range(n1))
    assert not mask[0, n0, n0 - 1] and mask[0, n0, n0] and mask[0, n0 - 1, 0]  # block-diagonal, causal
    assert batch["labels"][0, n0] == IGNORE_INDEX  # a sample's first token is never a target
    assert (batch["labels"][1, n2:] == IGNORE_INDEX).all() and mask[1, n2:, n2:].diagonal(
        dim1=-2, dim2=-1
    ).all()
