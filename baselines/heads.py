"""The three model heads the baselines are built from (`Tagger`, `Classifier`, `Chooser`), each a
transformers Auto class so that a saved head loads with plain `from_pretrained`. Remote code is
never executed (`trust_remote_code=False` everywhere): an encoder that needs it is rejected by
transformers with its own message.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn
from transformers import (
    AutoModelForMultipleChoice,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
    PreTrainedTokenizerBase,
)

from taiyi_bench.baselines import training
from taiyi_bench.baselines.settings import HeadConfig
from taiyi_bench.baselines.words import OUTSIDE, TAG_NAMES, Span, spans_to_tags

HEAD_FILE = "head.json"
_H = TypeVar("_H", bound="Head")
# Byte-level BPE tokenizers need a prefix space to take pre-split words.
_PREFIX_SPACE_TOKENIZERS = ("Roberta", "GPT2", "Bart", "Longformer", "Deberta")


def load_tokenizer(location: str) -> PreTrainedTokenizerBase:
    """A fast tokenizer (word alignment needs `word_ids()`), no remote code."""
    tokenizer = AutoTokenizer.from_pretrained(location, use_fast=True, trust_remote_code=False)
    if any(name in type(tokenizer).__name__ for name in _PREFIX_SPACE_TOKENIZERS):
        tokenizer = AutoTokenizer.from_pretrained(location, use_fast=True, trust_remote_code=False, add_prefix_space=True)
    if not tokenizer.is_fast:
        raise ValueError(f"{location}: the baselines need a fast (Rust) tokenizer for word alignment; none is available")
    if tokenizer.pad_token_id is None:
        raise ValueError(f"{location}: the tokenizer has no padding token")
    return tokenizer


def _label_maps(labels: Sequence[str]) -> dict[str, Any]:
    return {"num_labels": len(labels), "id2label": dict(enumerate(labels)), "label2id": {label: i for i, label in enumerate(labels)}}


class Head:
    """A model, its tokenizer and its hyperparameters; saved as one directory."""

    kind = "head"
    auto_class: Any = None

    def __init__(self, model: nn.Module, tokenizer: PreTrainedTokenizerBase, config: HeadConfig, meta: dict[str, Any]):
        self.model = model
        self.tokenizer = tokenizer
        self.config = config
        self.meta = meta
        # Never ask for more positions than the encoder has (MiniLM: 512, some tiny models fewer).
        limit = getattr(model.config, "max_position_embeddings", None) or config.max_length
        self.max_length = max(8, min(config.max_length, int(limit)))

    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)
        payload = {"kind": self.kind, "config": self.config.to_dict(), "meta": self.meta}
        (directory / HEAD_FILE).write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    @classmethod
    def _from_encoder(cls: type[_H], encoder: str, config: HeadConfig, meta: dict[str, Any], **model_kwargs: Any) -> _H:
        """A new head on a pre-trained encoder."""
        torch.manual_seed(config.seed)  # the new head's initialisation is part of the run's seed
        model = cls.auto_class.from_pretrained(encoder, trust_remote_code=False, **model_kwargs)
        return cls(model, load_tokenizer(encoder), config, meta)

    @classmethod
    def load(cls, directory: str | Path, overrides: dict[str, Any] | None = None) -> Head:
        directory = Path(directory)
        payload = json.loads((directory / HEAD_FILE).read_text(encoding="utf-8"))
        if payload.get("kind") != cls.kind:
            raise ValueError(f"{directory} holds a {payload.get('kind')!r} head, not {cls.kind!r}")
        config = HeadConfig.from_dict({**payload["config"], **{k: v for k, v in (overrides or {}).items() if v is not None}})
        model = cls.auto_class.from_pretrained(directory, trust_remote_code=False)
        return cls(model, load_tokenizer(str(directory)), config, payload["meta"])


# --------------------------------------------------------------------------------------------
# token classification


def _first_pieces(word_ids: Sequence[int | None]) -> list[tuple[int, int]]:
    """(token position, word) of each word's first sub-word, the one trained and read (BLURB/BERT)."""
    return [(i, w) for i, w in enumerate(word_ids) if w is not None and (i == 0 or word_ids[i - 1] != w)]


@dataclass
class TagUnit:
    """One unit for the tagger: its text, its words and (for training) gold spans per type."""

    text: str
    words: list[Span]
    gold: dict[str, list[Span]] | None = None


class Tagger(Head):
    """One BIO head per entity type over a shared encoder (flat NER is the one-type case):
    AutoModelForTokenClassification with 3 x n_types outputs, read as n_types softmaxes.

    Units longer than `max_length` sub-words are cut into windows of whole words that overlap by
    `window_stride` words; at prediction each word takes the logits of the window in which it
    sits farthest from an edge (most context on both sides). Only a word's first sub-word is
    trained and read, the BLURB/BERT convention.
    """

    kind = "tagger"
    auto_class = AutoModelForTokenClassification

    @property
    def types(self) -> list[str]:
        return list(self.meta["types"])

    @classmethod
    def create(cls, encoder: str, types: Sequence[str], config: HeadConfig) -> Tagger:
        labels = [f"{t}:{tag}" for t in types for tag in TAG_NAMES]
        return cls._from_encoder(encoder, config, {"types": list(types)}, **_label_maps(labels))

    # -- features

    def _word_pieces(self, unit: TagUnit) -> list[int]:
        """Sub-word count of each word (0 for words the tokenizer drops, e.g. control characters)."""
        if not unit.words:
            return []
        words = [unit.text[s:e] for s, e in unit.words]
        # verbose=False: a whole abstract exceeds model_max_length here by design (it is only counted).
        encoding = self.tokenizer(words, is_split_into_words=True, add_special_tokens=False, verbose=False)
        counts = Counter(word_id for word_id in encoding.word_ids() if word_id is not None)
        return [counts[index] for index in range(len(words))]

    def _windows(self, counts: list[int]) -> list[tuple[int, int]]:
        budget = self.max_length - self.tokenizer.num_special_tokens_to_add(pair=False)
        windows, start, n = [], 0, len(counts)
        while start < n:
            end, total = start, 0
            while end < n and total + counts[end] <= budget:
                total += counts[end]
                end += 1
            end = max(end, start + 1)  # one over-long word: its sub-words are truncated
            windows.append((start, end))
            if end >= n:
                break
            start = max(start + 1, end - self.config.window_stride)
        return windows

    def features(self, units: Sequence[TagUnit], *, with_labels: bool) -> list[training.Feature]:
        out = []
        for index, unit in enumerate(units):
            if not unit.words:
                continue
            tags = None
            if with_labels:
                gold = unit.gold or {}
                tags = [spans_to_tags(unit.words, gold.get(t, [])) for t in self.types]
            for start, end in self._windows(self._word_pieces(unit)):
                words = [unit.text[s:e] for s, e in unit.words[start:end]]
                encoding = self.tokenizer(words, is_split_into_words=True, truncation=True, max_length=self.max_length)
                word_ids = encoding.word_ids()
                feature: training.Feature = {k: list(v) for k, v in training.model_inputs(encoding).items()}
                feature.update(unit=index, window=(start, end), word_ids=word_ids)
                if tags is not None:
                    labels = [[training.IGNORE_INDEX] * len(tags) for _ in word_ids]
                    for position, word_id in _first_pieces(word_ids):
                        labels[position] = [t[start + word_id] for t in tags]
                    feature["token_labels"] = labels
                out.append(feature)
        return out

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        # (batch, tokens, n_types x 3) read as one 3-way softmax per (token, type), like token_labels.
        logits = model(**training.model_inputs(batch)).logits.reshape(-1, len(TAG_NAMES)).float()
        return nn.functional.cross_entropy(logits, batch["token_labels"].reshape(-1), ignore_index=training.IGNORE_INDEX)

    # -- train / predict

    def fit(self, units: Sequence[TagUnit]) -> dict[str, Any]:
        features = self.features(units, with_labels=True)
        return training.train(
            self.model, features, self.config, pad_token_id=self.tokenizer.pad_token_id, loss_fn=self.loss, name="tagger"
        )

    def predict_tags(self, units: Sequence[TagUnit]) -> list[dict[str, list[int]]]:
        """Per unit, per type: one tag (OUTSIDE/BEGIN/INSIDE) per word."""
        features = self.features(units, with_labels=False)
        logits = training.predict_logits(self.model, features, self.config, pad_token_id=self.tokenizer.pad_token_id)
        n_types = len(self.types)
        # best[unit][word] = (margin, per-type tag ids)
        best: list[dict[int, tuple[int, list[int]]]] = [{} for _ in units]
        for feature, unit_logits in zip(features, logits, strict=True):
            start, end = feature["window"]
            tags = unit_logits.view(-1, n_types, len(TAG_NAMES)).argmax(-1).tolist()
            for position, word_id in _first_pieces(feature["word_ids"]):
                word = start + word_id
                margin = min(word - start, end - 1 - word)
                slot = best[feature["unit"]]
                if word not in slot or margin > slot[word][0]:
                    slot[word] = (margin, tags[position])
        return [
            {t: [slot[w][1][k] if w in slot else OUTSIDE for w in range(len(unit.words))] for k, t in enumerate(self.types)}
            for unit, slot in zip(units, best, strict=True)
        ]


# --------------------------------------------------------------------------------------------
# sequence classification


class Classifier(Head):
    """Sequence (pair) classification. `meta["labels"]` names the outputs; multi-label heads use
    independent sigmoids (BCE), single-label a softmax (cross-entropy)."""

    kind = "classifier"
    auto_class = AutoModelForSequenceClassification

    @property
    def labels(self) -> list[str]:
        return list(self.meta["labels"])

    @property
    def multi_label(self) -> bool:
        return bool(self.meta.get("multi_label", False))

    @classmethod
    def create(cls, encoder: str, labels: Sequence[str], config: HeadConfig, *, multi_label: bool = False, **meta: Any) -> Classifier:
        return cls._from_encoder(
            encoder, config, {"labels": list(labels), "multi_label": multi_label, **meta}, **_label_maps(labels),
            problem_type="multi_label_classification" if multi_label else "single_label_classification",
        )

    def features(self, texts: Sequence[tuple[str, str | None]], targets: Sequence[Any] | None = None) -> list[training.Feature]:
        out = []
        for index, (text, pair) in enumerate(texts):
            encoding = self.tokenizer(text, pair, truncation="longest_first", max_length=self.max_length)
            feature: training.Feature = {k: list(v) for k, v in training.model_inputs(encoding).items()}
            if targets is not None:
                feature["labels"] = targets[index]
            out.append(feature)
        return out

    def fit(
        self,
        texts: Sequence[tuple[str, str | None]],
        targets: Sequence[Any],
        name: str = "classifier",
        class_weights: Sequence[float] | None = None,
    ) -> dict[str, Any]:
        """`class_weights`: one weight per label - in the cross-entropy (single-label), or the
        positives' weight in each label's binary cross-entropy (multi-label)."""
        loss_fn = training.builtin_loss
        if class_weights is not None:
            loss_fn = training.weighted_loss(class_weights, multi_label=self.multi_label)
        return training.train(
            self.model, self.features(texts, targets), self.config, pad_token_id=self.tokenizer.pad_token_id,
            loss_fn=loss_fn, name=name,
        )

    def predict_scores(self, texts: Sequence[tuple[str, str | None]]) -> torch.Tensor:
        """(N, n_labels): sigmoid probabilities (multi-label) or softmax probabilities."""
        if not texts:
            return torch.zeros(0, len(self.labels))
        logits = torch.stack(training.predict_logits(self.model, self.features(texts), self.config, pad_token_id=self.tokenizer.pad_token_id))
        return torch.sigmoid(logits) if self.multi_label else torch.softmax(logits, dim=-1)


# --------------------------------------------------------------------------------------------
# multiple choice


class Chooser(Head):
    """Multiple choice: each (question, option) pair is encoded, one score per option."""

    kind = "chooser"
    auto_class = AutoModelForMultipleChoice

    @classmethod
    def create(cls, encoder: str, config: HeadConfig, **meta: Any) -> Chooser:
        return cls._from_encoder(encoder, config, dict(meta))

    def features(self, questions: Sequence[str], options: Sequence[Sequence[str]], targets: Sequence[int] | None = None) -> list[training.Feature]:
        out = []
        for index, (question, choices) in enumerate(zip(questions, options, strict=True)):
            encoding = self.tokenizer([question] * len(choices), list(choices), truncation="longest_first", max_length=self.max_length)
            feature: training.Feature = {k: [list(row) for row in v] for k, v in training.model_inputs(encoding).items()}
            if targets is not None:
                feature["labels"] = int(targets[index])
            out.append(feature)
        return out

    def fit(self, questions: Sequence[str], options: Sequence[Sequence[str]], targets: Sequence[int]) -> dict[str, Any]:
        return training.train(
            self.model, self.features(questions, options, targets), self.config,
            pad_token_id=self.tokenizer.pad_token_id, name="chooser",
        )

    def predict_choice(self, questions: Sequence[str], options: Sequence[Sequence[str]]) -> list[int]:
        logits = training.predict_logits(self.model, self.features(questions, options), self.config, pad_token_id=self.tokenizer.pad_token_id)
        return [int(row.argmax()) for row in logits]
