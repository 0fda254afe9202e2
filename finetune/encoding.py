"""Conversations -> token ids with labels on assistant tokens only, and batching (padded or packed).

Two formats:
  * `chat_template` (default): the tokenizer's own chat template. Which characters belong to an
    assistant turn is found by rendering prefixes of the conversation (the text up to the
    generation prompt of turn i, then up to the end of answer i) and checking each is a prefix
    of the full rendering; tokens whose characters start inside an answer span get labels. This
    works with any template, without `{% generation %}` support.
  * `eod`: Taiyi's format `<eod>input<eod>answer<eod>input<eod>answer<eod>` with the tokenizer's
    eos as `<eod>` (Qwen's `<|endoftext|>`): no roles, no system prompt. Each answer and the
    `<eod>` after it are trained (the model learns to stop).

Labels are the input ids with -100 everywhere else; the model shifts them (HF convention).
Packing puts several samples into one row; `collate_packed` keeps them apart in the layout
`taiyi_bench.finetune.performance.choose_attention` picks.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import torch
from torch.nn.utils.rnn import pad_sequence

from taiyi_bench.harness.errors import ConfigError
from taiyi_bench.harness.prompt_formats import eod_token_id

IGNORE_INDEX = -100
Style = Literal["chat_template", "eod"]
AttentionLayout = Literal["mask4d", "positions", "flatten"]
FLEX_BLOCK = 128  # flex_attention's block size: padded widths are multiples of it (fewer recompiles)


@dataclass
class EncodedSample:
    input_ids: list[int]
    labels: list[int]
    dataset: str = ""

    def __len__(self) -> int:
        return len(self.input_ids)


@dataclass
class EncodeReport:
    """Counts of what happened to over-long samples; printed and logged, never silent."""

    max_length: int
    overlong_policy: str
    samples: int = 0
    kept: int = 0
    truncated: int = 0
    dropped_overlong: int = 0  # policy "drop"
    dropped_no_answer_left: int = 0  # truncation left no assistant token
    tokens: int = 0
    label_tokens: int = 0
    per_dataset: dict[str, Counter] = field(default_factory=dict)

    def count(self, dataset: str, what: str) -> None:
        self.per_dataset.setdefault(dataset, Counter())[what] += 1

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "per_dataset": {k: dict(v) for k, v in sorted(self.per_dataset.items())}}


def _text_ids(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def encode_eod(tokenizer: Any, turns: Sequence[tuple[str, str]], eod_id: int) -> tuple[list[int], list[int]]:
    """Taiyi's `<eod>input<eod>answer<eod>...`: labels on each answer and its closing `<eod>`."""
    input_ids, labels = [eod_id], [IGNORE_INDEX]
    for human, assistant in turns:
        human_ids = _text_ids(tokenizer, human) + [eod_id]
        answer_ids = _text_ids(tokenizer, assistant) + [eod_id]
        input_ids += human_ids + answer_ids
        labels += [IGNORE_INDEX] * len(human_ids) + answer_ids
    return input_ids, labels


def _render(tokenizer: Any, messages: list[dict[str, str]], generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)


def assistant_char_spans(
    tokenizer: Any, turns: Sequence[tuple[str, str]], system: str | None = None
) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the [start, end) character span of every assistant turn
    (content and the template's end-of-turn marker), found by rendering prefixes."""
    if not getattr(tokenizer, "chat_template", None):
        raise ConfigError(
            "format.style=chat_template but the tokenizer has no chat template; use format.style=eod "
            "(Taiyi's format) or a tokenizer with a template"
        )
    messages = [{"role": "system", "content": system}] if system else []
    for human, assistant in turns:
        messages += [{"role": "user", "content": human}, {"role": "assistant", "content": assistant}]
    full = _render(tokenizer, messages, generation_prompt=False)
    offset = 1 if system else 0
    spans = []
    for i in range(len(turns)):
        user_end = offset + 2 * i + 1
        start_text = _render(tokenizer, messages[:user_end], generation_prompt=True)
        end_text = _render(tokenizer, messages[: user_end + 1], generation_prompt=False)
        if not (full.startswith(start_text) and full.startswith(end_text) and len(end_text) > len(start_text)):
            raise ConfigError(
                "the chat template does not render conversations prefix by prefix (a prefix of the "
                f"conversation is not a prefix of its rendering at turn {i + 1}), so assistant tokens cannot "
                "be located; use format.style=eod or a template that is prefix-stable"
            )
        spans.append((len(start_text), len(end_text)))
    return full, spans


def encode_chat(
    tokenizer: Any, turns: Sequence[tuple[str, str]], system: str | None = None
) -> tuple[list[int], list[int]]:
    """Token ids of the chat-template rendering, labels on assistant spans only."""
    full, spans = assistant_char_spans(tokenizer, turns, system)
    if getattr(tokenizer, "is_fast", False):
        encoded = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
        input_ids = list(encoded["input_ids"])
        labels = [IGNORE_INDEX] * len(input_ids)
        span_index = 0
        for position, (start, end) in enumerate(encoded["offset_mapping"]):
            while span_index < len(spans) and start >= spans[span_index][1]:
                span_index += 1
            if span_index == len(spans):
                break
            # A token belongs to an answer when its first character does (zero-width tokens
            # take the position they sit at).
            if spans[span_index][0] <= start < spans[span_index][1] or (
                start == end and spans[span_index][0] < start < spans[span_index][1]
            ):
                labels[position] = input_ids[position]
        return input_ids, labels
    # Slow tokenizers have no offsets: tokenise the pieces between span boundaries separately.
    input_ids, labels, cursor = [], [], 0
    for start, end in spans:
        prompt_ids = _text_ids(tokenizer, full[cursor:start])
        answer_ids = _text_ids(tokenizer, full[start:end])
        input_ids += prompt_ids + answer_ids
        labels += [IGNORE_INDEX] * len(prompt_ids) + answer_ids
        cursor = end
    tail = _text_ids(tokenizer, full[cursor:])
    return input_ids + tail, labels + [IGNORE_INDEX] * len(tail)


def encode_all(
    tokenizer: Any,
    conversations: Sequence[Any],
    *,
    style: Style = "chat_template",
    max_length: int = 1024,
    overlong: Literal["truncate", "drop"] = "truncate",
    system: str | None = None,
    eod_token: str | None = None,
) -> tuple[list[EncodedSample], EncodeReport]:
    """Encode `Conversation`s; over-long ones are truncated (to `max_length`) or dropped, and
    every such case is counted in the report, per dataset. A truncated sample with no assistant
    token left is dropped (it would contribute nothing but noise), and counted."""
    eod_id = eod_token_id(tokenizer, eod_token) if style == "eod" else None
    report = EncodeReport(max_length=max_length, overlong_policy=overlong)
    samples = []
    for conversation in conversations:
        report.samples += 1
        if eod_id is None:
            input_ids, labels = encode_chat(tokenizer, conversation.turns, system)
        else:
            input_ids, labels = encode_eod(tokenizer, conversation.turns, eod_id)
        if len(input_ids) > max_length:
            if overlong == "drop":
                report.dropped_overlong += 1
                report.count(conversation.dataset, "dropped_overlong")
                continue
            input_ids, labels = input_ids[:max_length], labels[:max_length]
            if all(label == IGNORE_INDEX for label in labels[1:]):
                report.dropped_no_answer_left += 1
                report.count(conversation.dataset, "dropped_no_answer_left")
                continue
            report.truncated += 1
            report.count(conversation.dataset, "truncated")
        report.kept += 1
        report.count(conversation.dataset, "kept")
        report.tokens += len(input_ids)
        report.label_tokens += sum(label != IGNORE_INDEX for label in labels[1:])
        samples.append(EncodedSample(input_ids, labels, conversation.dataset))
    return samples, report


# --------------------------------------------------------------------------- batching


def pack_indices(lengths: Sequence[int], max_length: int, open_bins: int = 8) -> list[list[int]]:
    """Group sample indices into packs of at most `max_length` tokens, keeping the given order
    as far as possible: each sample goes into the first of the last `open_bins` packs it fits
    (bounded first-fit: O(n * open_bins), dense enough, and the shuffle survives)."""
    packs: list[list[int]] = []
    room: list[int] = []
    for index, length in enumerate(lengths):
        if length > max_length:
            raise ValueError(f"sample {index} has {length} tokens > max_length {max_length}; encode with truncation")
        first_open = max(0, len(packs) - open_bins)
        for bin_index in range(first_open, len(packs)):
            if room[bin_index] >= length:
                packs[bin_index].append(index)
                room[bin_index] -= length
                break
        else:
            packs.append([index])
            room.append(max_length - length)
    return packs


def collate_padded(samples: Sequence[EncodedSample], pad_id: int) -> dict[str, torch.Tensor]:
    """One sample per row, right-padded to the longest row; 2D attention mask."""
    rows = [torch.tensor(s.input_ids, dtype=torch.long) for s in samples]
    labels = [torch.tensor(s.labels, dtype=torch.long) for s in samples]
    return {
        "input_ids": pad_sequence(rows, batch_first=True, padding_value=pad_id),
        "labels": pad_sequence(labels, batch_first=True, padding_value=IGNORE_INDEX),
        "attention_mask": pad_sequence([torch.ones_like(row) for row in rows], batch_first=True),
    }


def collate_packed(
    packs: Sequence[Sequence[EncodedSample]],
    pad_id: int,
    *,
    layout: AttentionLayout = "mask4d",
    dtype: torch.dtype = torch.float32,
) -> dict[str, torch.Tensor]:
    """Packed rows whose samples cannot attend to each other; `position_ids` restart per sample.
    Each sample's first label is -100: packed, it would be predicted from the previous sample's
    last token (unpacked, the shift drops it anyway), so the losses are equal.

    mask4d: right-padded rows and a [B, 1, L, L] same-sample causal mask (padding attends to
    itself only, so no row is all-masked), boolean for `dtype=torch.bool` (sdpa), else additive
    (eager). positions: the same rows padded to a multiple of FLEX_BLOCK, no mask: transformers
    (>= 4.53) finds the boundaries where the position ids stop increasing and builds a document
    BlockMask for flex_attention. flatten: all samples in ONE row (`DataCollatorWithFlattening`),
    from whose position ids flash-attention builds varlen boundaries.
    """
    if layout == "flatten":
        from transformers import DataCollatorWithFlattening

        collator = DataCollatorWithFlattening(return_position_ids=True, separator_id=IGNORE_INDEX)
        features = [{"input_ids": s.input_ids, "labels": s.labels} for pack in packs for s in pack]
        return dict(collator(features, return_tensors="pt"))
    if layout not in ("mask4d", "positions"):
        raise ValueError(f"unknown packing layout {layout!r}")
    width = max(sum(len(s) for s in pack) for pack in packs)
    if layout == "positions":
        width = -(-width // FLEX_BLOCK) * FLEX_BLOCK
    batch = len(packs)
    input_ids = torch.full((batch, width), pad_id, dtype=torch.long)
    labels = torch.full((batch, width), IGNORE_INDEX, dtype=torch.long)
    position_ids = torch.zeros((batch, width), dtype=torch.long)
    segment = torch.full((batch, width), -1, dtype=torch.long)  # sample number within the row; -1 = pad
    for row, pack in enumerate(packs):
        cursor = 0
        for number, sample in enumerate(pack):
            n = len(sample)
            input_ids[row, cursor : cursor + n] = torch.tensor(sample.input_ids)
            labels[row, cursor : cursor + n] = torch.tensor([IGNORE_INDEX] + sample.labels[1:])
            position_ids[row, cursor : cursor + n] = torch.arange(n)
            segment[row, cursor : cursor + n] = number
            cursor += n
    if layout == "positions":
        return {"input_ids": input_ids, "labels": labels, "position_ids": position_ids}
    causal = torch.ones((width, width), dtype=torch.bool).tril()
    same = segment[:, :, None] == segment[:, None, :]
    real = (segment >= 0)[:, :, None]
    allowed = same & causal[None] & real
    allowed |= torch.eye(width, dtype=torch.bool)[None] & ~real  # padding: attend to self only
    if dtype == torch.bool:  # sdpa takes a boolean mask (True = may attend) as is
        mask = allowed[:, None]
    else:  # eager adds the mask to the attention scores
        mask = torch.zeros((batch, 1, width, width), dtype=dtype)
        mask.masked_fill_(~allowed[:, None], torch.finfo(dtype).min)
    return {"input_ids": input_ids, "labels": labels, "position_ids": position_ids, "attention_mask": mask}


def label_token_count(batch: dict[str, torch.Tensor]) -> int:
    """Tokens that contribute to the loss (labels after the causal shift)."""
    return int((batch["labels"][..., 1:] != IGNORE_INDEX).sum())
