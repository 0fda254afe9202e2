"""Words and BIO tags: the bridge between character-offset gold (Entity.start/end) and a
token-classification head. A unit's *words* get one tag each: the IOB files' own tokens when the
reader kept them (`meta["tokens"]`: the tags are exactly the files', seqeval's F1 is BLURB's
number), else `segment`'s words.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence
from itertools import accumulate

from taiyi_bench.harness.records import Example

Span = tuple[int, int]  # [start, end) in characters

_CJK = "\u2e80-\u2fdf\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
_WORD = re.compile(rf"[{_CJK}]|(?:(?![{_CJK}])\w)+|[^\w\s]")

OUTSIDE, BEGIN, INSIDE = 0, 1, 2
TAG_NAMES = ("O", "B", "I")


def segment(text: str) -> list[Span]:
    """Character spans of the words of `text`: one per CJK character (Chinese BERTs tokenise that
    way), Latin letter/digit runs, every other non-space character alone (so a PubTator span such as
    "H2" in "H2-receptor" is still a whole number of words)."""
    return [m.span() for m in _WORD.finditer(text)]


def example_words(example: Example) -> list[Span]:
    """The words of one unit: the reader's tokens when they tile the text, else `segment`."""
    tokens = example.meta.get("tokens") if isinstance(example.meta, dict) else None
    if tokens and " ".join(tokens) == example.text:
        starts = accumulate((len(token) + 1 for token in tokens[:-1]), initial=0)
        return [(start, start + len(token)) for start, token in zip(starts, tokens, strict=True)]
    return segment(example.text)


def span_to_words(words: Sequence[Span], span: Span) -> tuple[int, int] | None:
    """Word range [first, last) overlapping the character span, or None when it covers no word."""
    starts = [w[0] for w in words]
    ends = [w[1] for w in words]
    first = bisect.bisect_right(ends, span[0])  # first word ending after the span starts
    last = bisect.bisect_left(starts, span[1])  # first word starting at/after the span ends
    return (first, last) if first < last else None


def spans_to_tags(words: Sequence[Span], spans: Iterable[Span]) -> list[int]:
    """BIO tags (OUTSIDE/BEGIN/INSIDE) of one entity type over the words.

    One head holds one layer, so spans of the SAME type that overlap cannot all be encoded: the
    longer span wins (CMeEE nests different types far more often than equal ones; those go to
    different heads). Spans of other types never interact here.
    """
    tags = [OUTSIDE] * len(words)
    ranges = [r for s in spans if (r := span_to_words(words, s)) is not None]
    for first, last in sorted(set(ranges), key=lambda r: (-(r[1] - r[0]), r[0])):
        if any(tags[i] != OUTSIDE for i in range(first, last)):
            continue
        tags[first] = BEGIN
        for i in range(first + 1, last):
            tags[i] = INSIDE
    return tags


def tags_to_word_ranges(tags: Sequence[int]) -> list[tuple[int, int]]:
    """Word ranges [first, last) of the entities in a BIO sequence, read by seqeval: an INSIDE after
    OUTSIDE starts an entity (the usual lenient CoNLL reading), so a model's stray I is a mention."""
    from seqeval.metrics.sequence_labeling import get_entities

    return [(first, last + 1) for _, first, last in get_entities(seqeval_tags(tags, "X"))]


def word_ranges_to_spans(words: Sequence[Span], ranges: Iterable[tuple[int, int]]) -> list[Span]:
    return [(words[first][0], words[last - 1][1]) for first, last in ranges]


def seqeval_tags(tags: Sequence[int], entity_type: str) -> list[str]:
    """Tags as seqeval strings ("B-Chemical")."""
    return ["O" if t == OUTSIDE else f"{TAG_NAMES[t]}-{entity_type}" for t in tags]
