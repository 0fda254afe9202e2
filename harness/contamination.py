"""Did a fine-tuning mixture see the evaluation units? Which units it touched, and from where.

A unit of an evaluation split is *touched* by a mixture of conversations in one of two ways:
  exact  every text its prompt shows (the text, or the question with its contexts and options)
         appears, after the scorer's normalisation (`normalize_mention`), inside one conversation;
  ngram  otherwise, it shares a run of N tokens with one turn of a conversation. Tokens are the
         normalised text's words, with punctuation ignored, and single characters for Chinese.
         N is 13 words for an English set, the overlap the decontamination literature uses (Brown
         et al. 2020, "Language Models are Few-Shot Learners", Appendix C), and 20 characters for a
         Chinese one: parallel text runs about 1.5 Chinese characters to an English word, so 20
         characters say about as much as 13 words, where 13 characters (some 8 words) would match
         common phrases of medical questions ("请问医生这种情况怎么办").
A unit whose texts are all shorter than N is compared whole (as Brown et al. do), and one shorter
than `SHORTEST_JUDGED` tokens, their smallest N, is too short to tell a quotation from a common
phrase: it is counted as such, not judged.

Cost: the evaluation side is indexed (its window hashes, sorted: a few MB for all 13 sets); the
mixture is streamed once in chunks, each chunk's windows hashed with numpy (polynomial hashes of
the tokens' hashes, each window O(1) from prefix sums), so the time is linear in the mixture and
the memory bounded by a chunk. Indexing this side rather than the mixture keeps the memory small
at paper scale and names the conversation behind every hit in the same pass.
"""

from __future__ import annotations

import json
import logging
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from taiyi_bench.harness.errors import ConfigError
from taiyi_bench.harness.integrity import STAGE_MARKER
from taiyi_bench.harness.loading import LoadedSplit, load_split, missing_sets
from taiyi_bench.harness.normalize import normalize_mention
from taiyi_bench.harness.records import Example
from taiyi_bench.harness.registry import get_spec, iter_specs

NGRAM_TOKENS: Mapping[str, int] = {"en": 13, "zh": 20}  # by the set's language: words, characters
SHORTEST_JUDGED = 8
WORST_SHOWN = 10
REPORT_VERSION = 1

# Scripts written without spaces (CJK ideographs, kana, hangul): a character is a token.
_UNSPACED = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_TOKEN = re.compile(f"[{_UNSPACED}]|[^\\W_{_UNSPACED}]+")
# Uncached: a mixture's texts are each seen once and would only crowd the scorer's cache.
_normalized = normalize_mention.__wrapped__
_BASE = 0x9E3779B97F4A7C15  # odd, so it has an inverse modulo 2**64
_BASE_INVERSE = pow(_BASE, -1, 1 << 64)
_CHUNK_TOKENS = 1 << 21  # mixture tokens hashed at once: ~100 MB of numpy arrays
_FILTER_BITS = 27  # a bit per value of a hash's top 27 bits (16 MB): most windows are dismissed by one look-up


class Document(Protocol):
    """A mixture conversation (`taiyi_bench.finetune.data.Conversation` is one)."""

    id: str
    dataset: str
    origin: str  # "file.jsonl:12", or "<set>/train (data)" for the sets' own instructions
    turns: Sequence[tuple[str, str]]


def unit_texts(example: Example) -> list[str]:
    """The texts a unit's prompt shows, its own text (or question) first."""
    return [t for t in (example.text or example.question, *example.contexts, *example.options.values()) if t]


def tokens(text: str) -> list[str]:
    """The words of `normalize_mention(text)`, punctuation left out, and each character of a
    script written without spaces. Only NFKC and case folding are applied first: the rest of
    the normalisation moves spaces and edge punctuation, which change no token, and costs ten
    times as much."""
    return _TOKEN.findall(unicodedata.normalize("NFKC", text).casefold())


def _powers(base: int, count: int) -> np.ndarray:
    table = np.full(count, base, dtype=np.uint64)
    table[:1] = 1
    return np.cumprod(table)  # wraps modulo 2**64, as the hashes do


class _Windows:
    """The polynomial hash of every window of a token sequence, from its tokens' hashes: with
    S[i] = sum_{j<i} x_j B^-j, the window [i, i+L) hashes to (S[i+L] - S[i]) B^(i+L-1), the same
    value wherever the window stands."""

    def __init__(self, words: Sequence[str]) -> None:
        # Python's string hash: random per process, which is fine, as index and scan share one.
        hashes = np.fromiter(map(hash, words), np.int64, len(words)).view(np.uint64)
        self.prefix = np.zeros(len(hashes) + 1, np.uint64)
        np.cumsum(hashes * _powers(_BASE_INVERSE, len(hashes)), out=self.prefix[1:])
        self.powers = _powers(_BASE, len(hashes))

    def of_length(self, length: int) -> np.ndarray:
        """The hash of the window of `length` tokens starting at each position (windows that run
        past the end of a turn included: the caller drops those)."""
        if length > len(self.powers):
            return np.zeros(0, np.uint64)
        return (self.prefix[length:] - self.prefix[:-length]) * self.powers[length - 1 :]


@dataclass
class _Segments:
    """Token runs hashed together: a unit's texts, or a chunk's turns; no window spans two."""

    tokens: list[str] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    owners: list[int] = field(default_factory=list)  # the unit or document of each run

    def add(self, run: list[str], owner: int) -> None:
        self.tokens.extend(run)
        self.lengths.append(len(run))
        self.owners.append(owner)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        lengths = np.asarray(self.lengths, np.int64)
        ends = np.cumsum(lengths)
        return ends - lengths, ends


@dataclass
class _Unit:
    set_key: str
    id: str
    texts: list[str]  # what its prompt shows, as written
    keys: np.ndarray | None = None  # its windows, as indices into the index's keys
    exact: bool = False
    hits: int = 0  # windows shared with the source conversation
    source: Document | None = None

    @cached_property
    def parts(self) -> list[str]:
        """The normalised texts, for the exact test (asked only of units the mixture touches)."""
        return [p for p in map(_normalized, self.texts) if p]


class _Index:
    """The windows of every judged unit: sorted hashes (`keys`), the units of each key
    (`key_units[key_offsets[k]:key_offsets[k+1]]`), and a bit filter on the hashes' top bits."""

    def __init__(self, splits: Sequence[LoadedSplit]) -> None:
        self.units: list[_Unit] = []
        self.too_short: Counter[str] = Counter()
        segments, window = _Segments(), []  # window: each segment's window length
        for split in splits:
            size = NGRAM_TOKENS[split.spec.language]
            for example in split.examples:
                texts = unit_texts(example)
                runs = [run for run in map(tokens, texts) if run]
                long = [run for run in runs if len(run) >= size]
                if not long and (not runs or len(runs[0]) < SHORTEST_JUDGED):
                    self.too_short[split.spec.key] += 1
                    continue
                for run in long or runs[:1]:  # a unit of short texts: its own text, whole
                    segments.add(run, len(self.units))
                    window.append(size if long else len(run))
                self.units.append(_Unit(split.spec.key, example.id, texts))
        hashes, owners = _windows_of(segments, np.asarray(window, np.int64))
        self.lengths = sorted(set(window))
        self.keys, key_of = np.unique(hashes, return_inverse=True)
        by_key = np.argsort(key_of, kind="stable")
        self.key_units = owners[by_key]
        self.key_offsets = np.concatenate(([0], np.cumsum(np.bincount(key_of, minlength=len(self.keys)))))
        by_unit = key_of[np.argsort(owners, kind="stable")]
        unit_offsets = np.concatenate(([0], np.cumsum(np.bincount(owners, minlength=len(self.units)))))
        for number, unit in enumerate(self.units):
            unit.keys = by_unit[unit_offsets[number] : unit_offsets[number + 1]]
        self.seen = np.zeros(len(self.keys), bool)
        self.filter = np.zeros(1 << (_FILTER_BITS - 3), np.uint8)
        top = self.keys >> np.uint64(64 - _FILTER_BITS)
        np.bitwise_or.at(self.filter, top >> np.uint64(3), np.left_shift(1, top & np.uint64(7)).astype(np.uint8))

    def find(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(positions in `hashes` that are keys, their key indices)."""
        if not len(self.keys):
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        top = hashes >> np.uint64(64 - _FILTER_BITS)
        maybe = np.flatnonzero((self.filter[top >> np.uint64(3)] >> (top & np.uint64(7)).astype(np.uint8)) & 1)
        at = np.minimum(np.searchsorted(self.keys, hashes[maybe]), len(self.keys) - 1)
        found = self.keys[at] == hashes[maybe]
        return maybe[found], at[found]

    def scan(self, documents: list[Document], segments: _Segments) -> None:
        """Mark the units one chunk of the mixture touches."""
        if not self.lengths:  # every unit too short to judge
            return
        starts, ends = segments.bounds()
        windows = _Windows(segments.tokens)
        end_of = np.repeat(ends, segments.lengths)  # per position: where its turn ends
        hit_at, hit_key = [], []
        for length in self.lengths:
            positions, keys = self.find(windows.of_length(length))
            whole = positions + length <= end_of[positions]
            hit_at.append(positions[whole])
            hit_key.append(keys[whole])
        positions, keys = np.concatenate(hit_at), np.concatenate(hit_key)
        self.seen[keys] = True
        docs = np.asarray(segments.owners, np.int64)[np.searchsorted(starts, positions, side="right") - 1]
        counts = self.key_offsets[keys + 1] - self.key_offsets[keys]
        entries = np.repeat(self.key_offsets[keys] - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
        pairs, hits = np.unique(self.key_units[entries] * len(documents) + np.repeat(docs, counts), return_counts=True)
        texts: dict[int, str] = {}  # a touching document's normalised turns, one a line
        for pair, count in zip(pairs.tolist(), hits.tolist(), strict=True):
            unit, doc = self.units[pair // len(documents)], pair % len(documents)
            if doc not in texts:  # no normalised text holds a line break: no part spans two turns
                texts[doc] = "\n".join(_normalized(text) for turn in documents[doc].turns for text in turn)
            exact = all(part in texts[doc] for part in unit.parts)
            if (exact, count) > (unit.exact, unit.hits):
                unit.exact, unit.hits, unit.source = exact, count, documents[doc]


def _windows_of(segments: _Segments, window: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The hash of every window of each segment's own length `window`, and its segment's owner."""
    starts, ends = segments.bounds()
    hashed = _Windows(segments.tokens)
    counts = ends - starts - window + 1
    hashes, owners = [], []
    for length in np.unique(window).tolist():
        chosen = np.flatnonzero(window == length)
        per = counts[chosen]
        positions = np.repeat(starts[chosen] - np.cumsum(per) + per, per) + np.arange(per.sum())
        hashes.append(hashed.of_length(length)[positions])
        owners.append(np.repeat(np.asarray(segments.owners, np.int64)[chosen], per))
    return np.concatenate(hashes or [np.zeros(0, np.uint64)]), np.concatenate(owners or [np.zeros(0, np.int64)])


def _chunks(documents: Iterable[Document]) -> Iterable[tuple[list[Document], _Segments]]:
    chunk: list[Document] = []
    segments = _Segments()
    for document in documents:
        for turn in document.turns:
            for text in turn:
                segments.add(tokens(text), len(chunk))
        chunk.append(document)
        if len(segments.tokens) >= _CHUNK_TOKENS:
            yield chunk, segments
            chunk, segments = [], _Segments()
    if chunk:
        yield chunk, segments


def evaluation_splits(
    sets: Sequence[str] | None = None, data_dir: str | os.PathLike | None = None
) -> tuple[list[LoadedSplit], dict[str, str]]:
    """The evaluation split of each set (all by default) as the scorers see it, and the sets
    whose files the data directory lacks (key -> why)."""
    specs = [get_spec(name) for name in sets] if sets else list(iter_specs())
    missing = {m.spec.key: m.reason for m in missing_sets(specs, data_dir)}
    splits = [load_split(spec, None, data_dir, warn_samples=False) for spec in specs if spec.key not in missing]
    if any(split.source == "samples" for split in splits):
        logging.getLogger("taiyi-bench").warning(
            "taiyi-bench: no data directory, so the mixture is checked against the BUNDLED SAMPLES of the sets, "
            "not their real evaluation splits (set $TAIYI_DATA_DIR or pass --data-dir)")
    return splits, missing


def contamination_report(
    documents: Iterable[Document],
    splits: Sequence[LoadedSplit],
    *,
    missing: Mapping[str, str] | None = None,
    worst: int = WORST_SHOWN,
) -> dict[str, Any]:
    """Per set: units, touched exactly / by an n-gram, the share touched, the ids of every
    touched unit and the `worst` of them (exact first, then by the share of their windows the
    mixture holds) with the conversation behind each. Plain JSON."""
    index = _Index(splits)
    conversations = mixture_tokens = 0
    for chunk, segments in _chunks(documents):
        index.scan(chunk, segments)
        conversations += len(chunk)
        mixture_tokens += len(segments.tokens)
    by_set: dict[str, list[_Unit]] = {}
    for unit in index.units:
        if unit.source is not None:
            by_set.setdefault(unit.set_key, []).append(unit)
    sets = {}
    for split in splits:
        touched = sorted(by_set.get(split.spec.key, []), key=lambda u: (not u.exact, -_overlap(index, u), -u.hits))
        exact = sum(u.exact for u in touched)
        sets[split.spec.key] = {
            "split": split.split,
            "data_source": split.source,
            "n_tokens": NGRAM_TOKENS[split.spec.language],
            "units": len(split),
            "too_short": index.too_short[split.spec.key],
            "exact": exact,
            "ngram": len(touched) - exact,
            "share": len(touched) / len(split) if len(split) else 0.0,
            "touched_units": [u.id for u in touched],
            "worst": [_touch(index, u) for u in touched[:worst]],
        }
    return {
        "version": REPORT_VERSION,
        "settings": {
            "n_tokens": dict(NGRAM_TOKENS), "shortest_judged": SHORTEST_JUDGED,
            "normalisation": "taiyi_bench.harness.normalize.normalize_mention",
        },
        "mixture": {"conversations": conversations, "tokens": mixture_tokens},
        "sets": sets,
        "missing": dict(missing or {}),
    }


def _overlap(index: _Index, unit: _Unit) -> float:
    """The share of the unit's distinct windows found anywhere in the mixture."""
    keys = np.unique(unit.keys)
    return float(index.seen[keys].mean()) if len(keys) else 0.0


def _touch(index: _Index, unit: _Unit) -> dict[str, Any]:
    source = unit.source
    return {
        "unit": unit.id, "kind": "exact" if unit.exact else "ngram", "overlap": round(_overlap(index, unit), 4),
        "text": unit.texts[0][:300],
        "source": {"origin": source.origin, "dataset": source.dataset, "conversation": source.id},
    }


def contamination_summary(report: Mapping[str, Any]) -> dict[str, float]:
    """Set key -> the share of its evaluation units the mixture touched (exactly or by an n-gram)."""
    return {key: entry["share"] for key, entry in report["sets"].items()}


def adapter_report_path(adapter_dir: str | os.PathLike) -> Path | None:
    """The contamination report an adapter's `taiyi_stage.json` points to (`contamination`, a
    path relative to the adapter folder), or None when it records none."""
    marker = Path(adapter_dir) / STAGE_MARKER
    pointer = json.loads(marker.read_text(encoding="utf-8")).get("contamination") if marker.is_file() else None
    if pointer is None:
        return None
    path = Path(adapter_dir) / pointer
    if not path.is_file():
        raise ConfigError(f"{marker} points to the contamination report {path}, which does not exist")
    return path


def adapter_report(adapter_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The report `adapter_report_path` names, read; None when the adapter records none."""
    path = adapter_report_path(adapter_dir)
    return None if path is None else json.loads(path.read_text(encoding="utf-8"))
