"""Where a predicted mention occurs in its unit's text: the occurrence-level strict NER rule.

The official NER scorers (seqeval on BIO tags for BC5CDR, NCBI-disease and BC4CHEMD; CBLUE's
span matching for CMeEE) compare (type, start, end) spans: every occurrence counts, and a span one
character off is wrong. An LLM writes strings, not offsets, so its reading of that rule places each
predicted mention at every place it occurs in the unit text:

- `tokens` grounding (IOB sets, whose text is the files' tokens joined by single spaces): an
  occurrence starts at a token start and ends at a token end; the spacing between tokens is
  ignored ("2,4-dinitrophenol" is the tokens "2 , 4 - dinitrophenol"), nothing else is forgiven
  (case and punctuation must match);
- `characters` grounding (CMeEE, unsegmented Chinese): any exact substring.

A mention that occurs nowhere is one false positive (per distinct (type, mention)). Nesting and
overlap are allowed on both sides. A discriminative model's predicted spans are used as they are.
Work is linear in the text per distinct mention, and mentions are deduplicated first, so a model
that repeats one mention until its budget runs out costs one search.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from taiyi_bench.harness.records import Example

Span = tuple[str, int, int]  # (type, start, end), end exclusive, character offsets
Grounding = Literal["tokens", "characters"]


class _SpacelessText:
    """The text with whitespace removed, with the map back to original offsets and the token
    boundaries (as positions in the spaceless text)."""

    def __init__(self, text: str) -> None:
        chars: list[str] = []
        self.original: list[int] = []  # spaceless index -> original index
        self.token_starts: set[int] = set()
        self.token_ends: set[int] = set()
        previous_space = True
        for index, ch in enumerate(text):
            if ch.isspace():
                if not previous_space:
                    self.token_ends.add(len(chars))
                previous_space = True
                continue
            if previous_space:
                self.token_starts.add(len(chars))
            previous_space = False
            chars.append(ch)
            self.original.append(index)
        if not previous_space:
            self.token_ends.add(len(chars))
        self.text = "".join(chars)

    def spans(self, mention: str) -> list[tuple[int, int]]:
        return [
            (self.original[start], self.original[end - 1] + 1)
            for start, end in _occurrences(self.text, "".join(mention.split()))
            if start in self.token_starts and end in self.token_ends
        ]


def _occurrences(text: str, needle: str) -> list[tuple[int, int]]:
    """Every (start, end) of `needle` in `text`, overlapping ones included; none for ""."""
    found: list[tuple[int, int]] = []
    at = text.find(needle) if needle else -1
    while at != -1:
        found.append((at, at + len(needle)))
        at = text.find(needle, at + 1)
    return found


def gold_spans(example: Example) -> set[Span]:
    """The gold (type, start, end) spans of a unit (the readers keep every entity's offsets)."""
    return {(e.type, e.start, e.end) for e in example.entities if e.start is not None and e.end is not None}


def place_mentions(
    example: Example, mentions: Iterable[tuple[str, str]], grounding: Grounding
) -> tuple[set[Span], list[tuple[str, str]]]:
    """Every occurrence of each (type, mention) in the unit text, and the mentions found nowhere."""
    placed: set[Span] = set()
    ungrounded: list[tuple[str, str]] = []
    spaceless = _SpacelessText(example.text) if grounding == "tokens" else None
    for entity_type, mention in sorted(set(mentions)):
        where = spaceless.spans(mention) if spaceless is not None else _occurrences(example.text, mention.strip())
        if where:
            placed.update((entity_type, start, end) for start, end in where)
        else:
            ungrounded.append((entity_type, mention))
    return placed, ungrounded


def occurrence_counts(
    example: Example,
    mentions: Iterable[tuple[str, str]],
    grounding: Grounding,
    predicted_spans: Iterable[Span] | None = None,
) -> tuple[int, int, int]:
    """(tp, fp, fn) of the occurrence-level strict rule for one unit. `predicted_spans` (a span
    model's output) is used as it is; otherwise the mentions are placed in the text."""
    gold = gold_spans(example)
    if predicted_spans is not None:
        predicted, ungrounded = set(predicted_spans), []
    else:
        predicted, ungrounded = place_mentions(example, mentions, grounding)
    tp = len(gold & predicted)
    return tp, len(predicted) - tp + len(ungrounded), len(gold) - tp
