"""The one text normalisation, applied to gold and prediction alike before any comparison.

Rules (the README's "Scoring rules" states them in plain words), in order:
1. Unicode NFKC. This also maps full-width forms to half-width (`，` → `,`, `（` → `(`, `Ａ` → `A`)
   and compatibility characters (`µ` → `μ`, `²` → `2`).
2. Case folding (`str.casefold`): Latin and Greek letters lose case; CJK is unaffected.
3. Whitespace: runs collapse to one space, and a space is dropped unless it separates two
   "word" characters of a spaced script (Latin letters, digits, ...). The IOB sets are
   tokenised ("2 , 4 - dinitrophenol", "56 - year - old") while a model usually writes
   "2,4-dinitrophenol"; Chinese has no spaces, so "肺 癌" and "肺癌" are one mention.
4. Surrounding punctuation is stripped repeatedly from both ends: quotes of every kind
   (" ' ` “ ” ‘ ’ 「 」 『 』), sentence punctuation (. , ; : ! ? 、 。 and their full-width forms,
   which NFKC has already made half-width), markdown emphasis (`*`), and brackets
   (( ) [ ] { } 【 】 《 》 〈 〉 〔 〕) - but a bracket only when it is unbalanced or when one
   pair encloses the whole string. So "(famotidine)" becomes "famotidine" while
   "(S)-propranolol", "[3H]thymidine" and "IL-2 (interleukin)" keep theirs.
   `<` and `>` are not brackets here: they are comparison signs in clinical text ("<2.0 mg/dL").

Because both sides go through the same function, an over-eager rule can only merge two
strings that differ in nothing but punctuation or case; it can never make equal strings differ.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from functools import lru_cache

# Stripped from either end whenever they appear there (after NFKC).
_EDGE_PUNCT = frozenset(
    "\"'`“”‘’「」『』〝〞„‟‹›«»"  # quotes
    ".,;:!?、。・･…"  # sentence punctuation (full-width forms are half-width after NFKC)
    "*"  # markdown emphasis residue
)
_OPEN_TO_CLOSE = {"(": ")", "[": "]", "{": "}", "【": "】", "《": "》", "〈": "〉", "〔": "〕", "〖": "〗"}
_CLOSE_TO_OPEN = {close: open_ for open_, close in _OPEN_TO_CLOSE.items()}

# A run of whitespace to become one space: `\s+` without its one-space runs, which stay as they
# are - replacing every single space of a long text by a space was most of the substitution.
_WHITESPACE = re.compile(r"\s{2,}|[^\S ]")


def _is_spaced_word_char(ch: str) -> bool:
    """True for characters of scripts that separate words by spaces (Latin letters, digits...).
    After NFKC, full-width Latin is half-width, so "wide" characters are CJK ideographs, kana,
    hangul and CJK punctuation: spaces next to them carry no meaning."""
    return ch.isalnum() and unicodedata.east_asian_width(ch) not in ("W", "F")


_FEW_SPACES = 32


@lru_cache(maxsize=1024)
def _spaces_beside(chars: str) -> re.Pattern[str]:
    """A space after or before one of `chars` (the space first: the regex engine then jumps from
    space to space)."""
    escaped = re.escape(chars)
    return re.compile(f" (?:(?<=[{escaped}] )|(?=[{escaped}]))")


def _squeeze_spaces(s: str) -> str:
    s = _WHITESPACE.sub(" ", s).strip()
    if " " not in s:
        return s
    # Every space is now single and between two other characters; it stays only when both are
    # word characters of a spaced script.
    if s.count(" ") <= _FEW_SPACES:
        out = []
        for i, ch in enumerate(s):
            if ch == " " and not (_is_spaced_word_char(s[i - 1]) and _is_spaced_word_char(s[i + 1])):
                continue
            out.append(ch)
        return "".join(out)
    # A long text: each distinct character next to a space is judged once, and the spaces beside
    # the ones that are no spaced-script word character go in one regex pass (a test per space
    # in Python was most of the time on a long output).
    pieces = s.split(" ")
    beside = {piece[0] for piece in pieces} | {piece[-1] for piece in pieces}
    unspaced = {ch for ch in beside if not _is_spaced_word_char(ch)}
    if not unspaced:
        return s
    return _spaces_beside("".join(sorted(unspaced))).sub("", s)


_BRACKET = re.compile("[" + re.escape("".join(_OPEN_TO_CLOSE) + "".join(_CLOSE_TO_OPEN)) + "]")


def _is_edge_junk(ch: str) -> bool:
    return ch.isspace() or ch in _EDGE_PUNCT


class _Brackets:
    """The bracket pairs of one string, found in a single pass (rule 4's two questions).

    `closes[i]`: where the opener at i is closed when the brackets opened after it must nest
    properly - a closer of the wrong kind before that leaves it, and every opener still waiting,
    unclosed. `opens[j]`: the opener of the closer at j when only brackets of its own kind are
    counted. Both answers hold for every substring that contains the pair, so `_strip_edges` can
    narrow its window without scanning again: re-scanning the rest of the string for every
    peeled pair was quadratic ("((((x))))", ")))))")."""

    def __init__(self, s: str) -> None:
        self.closes: dict[int, int] = {}
        self.opens: dict[int, int] = {}
        nested: list[int] = []  # openers waiting, for the nesting rule
        by_kind: dict[str, list[int]] = {}  # openers waiting, per kind
        for match in _BRACKET.finditer(s):
            i, ch = match.start(), match.group()
            if ch in _OPEN_TO_CLOSE:
                nested.append(i)
                by_kind.setdefault(ch, []).append(i)
                continue
            open_ = _CLOSE_TO_OPEN[ch]
            waiting = by_kind.get(open_)
            if waiting:
                self.opens[i] = waiting.pop()
            if nested and s[nested[-1]] == open_:
                self.closes[nested.pop()] = i
            else:
                nested.clear()  # mismatched nesting: none of the waiting openers is closed

    def strip(self, s: str, lo: int, hi: int) -> tuple[int, int]:
        """The bracket step of rule 4 on s[lo:hi] - the opener at lo goes when it encloses the
        whole window or is not closed within it, then closers at hi-1 go while not opened within
        it - repeated while it changes something and leaves neither end to the space and
        punctuation steps, which `_strip_edges` takes first. A run of closers goes in one sweep:
        a step in between would change nothing else, since the closer of the opener at lo (if
        it closes in the window) was opened there, and the sweep stops at it."""
        while lo < hi:
            start = lo, hi
            if s[lo] in _OPEN_TO_CLOSE:
                close_at = self.closes.get(lo, -1)
                if close_at == hi - 1:  # one pair encloses everything
                    lo, hi = lo + 1, hi - 1
                elif close_at == -1 or close_at >= hi:  # never closed (within the window)
                    lo += 1
            while lo < hi and s[hi - 1] in _CLOSE_TO_OPEN and self.opens.get(hi - 1, -1) < lo:
                hi -= 1  # not opened within the window
            if (lo, hi) == start or lo >= hi or _is_edge_junk(s[lo]) or _is_edge_junk(s[hi - 1]):
                break
        return lo, hi


def _strip_edges(s: str) -> str:
    """Rule 4, on the window s[lo:hi]: every strip moves an end inward and the string is sliced
    once, at the end (slicing it per stripped character was quadratic on "....x" or "((((x))))")."""
    lo, hi = 0, len(s)
    brackets: _Brackets | None = None  # built on the first bracket at an edge
    while lo < hi:
        before = lo, hi
        while lo < hi and _is_edge_junk(s[lo]):
            lo += 1
        while hi > lo and _is_edge_junk(s[hi - 1]):
            hi -= 1
        if lo >= hi:
            break
        if s[lo] in _OPEN_TO_CLOSE or s[hi - 1] in _CLOSE_TO_OPEN:
            if brackets is None:
                brackets = _Brackets(s)
            lo, hi = brackets.strip(s, lo, hi)
        if (lo, hi) == before:
            break
    return s[lo:hi]


@lru_cache(maxsize=200_000)
def normalize_mention(s: str) -> str:
    """Normalise an entity mention / relation argument / option text for comparison."""
    if not s:
        return ""
    s = unicodedata.normalize("NFKC", s).casefold()
    s = _squeeze_spaces(s)
    s = _strip_edges(s)
    # Stripping can expose inner spaces at the ends; squeeze once more for a canonical form.
    return _squeeze_spaces(s)


_LABEL_SEPARATORS = re.compile(r"[-_/\s]{2,}|[-_/]|[^\S ]")  # `[-_/\s]+` but a lone space (as above)


@lru_cache(maxsize=50_000)
def normalize_label(s: str) -> str:
    """Normalise a label, type key or predicate: `normalize_mention`, with `-`, `_` and `/`
    read as spaces so that "Case-Report", "case_report" and "Case Report" agree."""
    if not s:
        return ""
    s = unicodedata.normalize("NFKC", s)
    s = _LABEL_SEPARATORS.sub(" ", s)
    return normalize_mention(s)


def singular(word: str) -> str:
    """A crude English singular for matching type keys ("chemicals" → "chemical",
    "diseases" → "disease", "entities" → "entity"). Only used on keys, never on mentions."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


_CJK_CHAR = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_MAX_KEY_WORDS, _MAX_KEY_CHARS = 6, 40  # the longest keys the containment rule reads (step 3)


def _words(normalised: str) -> tuple[str, ...]:
    return tuple(singular(w) for w in normalised.split())


class LabelResolver:
    """Maps a label as a model writes it to a label id of the registry.

    Built from `{label id: names}` (the id itself, `spec.label_name(id)`, any other names); no
    label list is hard-coded here. `resolve(key)` tries, in order:
      1. exact match after `normalize_label` (so "CHEMICAL", "chemical", "疾病", "dis" work);
      2. the same with English words made singular ("Chemicals" → Chemical);
      3. containment, only for short keys (at most 6 words / 40 characters) so that a sentence
         of chatter never resolves: the key's words contain the words of exactly one label
         ("Chemical entities", "Here are the chemicals"), or, for Chinese, the key contains
         exactly one label name ("身体部位" → bod, "疾病实体" → dis) or is a part of exactly one
         ("检验项目" → ite, "微生物" → mic);
      4. optionally (`fuzzy` > 0) a difflib similarity of at least `fuzzy` to exactly one label,
         for long free-text labels (HoC: "tumour promoting inflammation", "...signalling").
    Anything ambiguous (two labels match at the same step) resolves to None.
    """

    def __init__(self, names: Mapping[str, Sequence[str]], *, containment: bool = True, fuzzy: float = 0.0) -> None:
        self._exact: dict[str, str] = {}
        self._singular: dict[tuple[str, ...], str] = {}
        self._forms: list[tuple[str, tuple[str, ...], str]] = []  # (normalised, words, id)
        for label, label_names in names.items():
            for name in (label, *label_names):
                norm = normalize_label(name)
                if not norm:
                    continue
                # The first label to claim a name keeps it (callers list the primary labels first).
                self._exact.setdefault(norm, label)
                self._singular.setdefault(_words(norm), label)
                self._forms.append((norm, _words(norm), label))
        self.containment = containment
        self.fuzzy = fuzzy
        self._most_words = max((len(words) for words in self._singular), default=0)
        self._cache: dict[str, str | None] = {}

    def resolve(self, key: str) -> str | None:
        if key in self._cache:
            return self._cache[key]
        result = self._resolve(key)
        if len(self._cache) < 100_000:
            self._cache[key] = result
        return result

    def _resolve(self, key: str) -> str | None:
        norm = normalize_label(key)
        if not norm:
            return None
        if norm in self._exact:
            return self._exact[norm]
        # `norm` has single spaces. A key of more words than any name, and too many for the
        # containment rule, can only match by similarity: its words are not worth making singular
        # (a whole line of output can be a key).
        if norm.count(" ") >= max(self._most_words, _MAX_KEY_WORDS if self.containment else 0):
            return self._fuzzy(norm) if self.fuzzy > 0 else None
        words = _words(norm)
        if words in self._singular:
            return self._singular[words]
        if self.containment and len(words) <= _MAX_KEY_WORDS and len(norm) <= _MAX_KEY_CHARS:
            found = self._contained(norm, words)
            if found is not None:
                return None if found is _AMBIGUOUS else found
        return self._fuzzy(norm) if self.fuzzy > 0 else None

    def _contained(self, norm: str, words: tuple[str, ...]) -> str | None | object:
        hits: set[str] = set()
        for form, form_words, label in self._forms:
            if _CJK_CHAR.search(form):
                if form in norm:
                    hits.add(label)
            elif _contains_run(words, form_words):
                hits.add(label)
        if not hits and _CJK_CHAR.search(norm) and len(norm) >= 2:
            hits = {label for form, _, label in self._forms if norm in form}
        if len(hits) > 1:
            return _AMBIGUOUS
        return next(iter(hits), None)

    def _fuzzy(self, norm: str) -> str | None:
        from difflib import SequenceMatcher

        best: dict[str, float] = {}
        for form, _, label in self._forms:
            matcher = SequenceMatcher(None, norm, form)
            # The two quick ratios are upper bounds of `ratio()` (length alone, then character
            # counts): a long key - a whole line of output - is dismissed without the matching
            # itself, which costs the product of the two lengths.
            if matcher.real_quick_ratio() < self.fuzzy or matcher.quick_ratio() < self.fuzzy:
                continue
            ratio = matcher.ratio()
            if ratio >= self.fuzzy:
                best[label] = max(best.get(label, 0.0), ratio)
        return next(iter(best)) if len(best) == 1 else None


_AMBIGUOUS = object()


def _contains_run(words: tuple[str, ...], run: tuple[str, ...]) -> bool:
    n = len(run)
    return n > 0 and any(words[i : i + n] == run for i in range(len(words) - n + 1))


def _spec_names(spec) -> dict[str, tuple[str, ...]]:
    return {label: (spec.label_name(label),) for label in spec.labels}


_RESOLVERS: dict[tuple, LabelResolver] = {}


def _cached(key: tuple, build) -> LabelResolver:
    if key not in _RESOLVERS:
        _RESOLVERS[key] = build()
    return _RESOLVERS[key]


def _spec_fingerprint(spec) -> tuple:
    return (spec.key, spec.task_type, spec.language, spec.labels, tuple(spec.label_names.items()))


def type_resolver(spec) -> LabelResolver:
    """Entity-type resolver of a NER set: its own types first, then the NER types of every other
    set of the same language in the registry ("a type of the benchmark"). A line keyed by one of
    those other types is kept, so that a wrong-type entity is a false positive ("Disease: ..."
    lines count against a model asked for chemicals); keys that are no type resolve to None."""
    from taiyi_bench.harness.registry import generation, iter_specs

    def build() -> LabelResolver:
        names = _spec_names(spec)
        for other in iter_specs(language=spec.language, task_type="ner"):
            for label, label_names in _spec_names(other).items():
                names.setdefault(label, label_names)
        return LabelResolver(names)

    # The registry's generation: a set registered later adds its types to its language's.
    return _cached(("type", generation(), *_spec_fingerprint(spec)), build)


def label_resolver(spec) -> LabelResolver:
    """Label resolver of a set's own labels: CMeIE predicates, TC classes. TC labels also match
    by similarity (≥ 0.9, unique) to absorb spelling variants of long labels; containment is
    off for TC (a sentence mentioning a label is not that label)."""
    if spec.task_type == "tc":
        return _cached(("tc", *_spec_fingerprint(spec)), lambda: LabelResolver(_spec_names(spec), containment=False, fuzzy=0.9))
    return _cached(("label", *_spec_fingerprint(spec)), lambda: LabelResolver(_spec_names(spec)))


def resolve_type(spec, key: str) -> str | None:
    """The registry entity-type id a model's type key stands for ("Chemicals" → "Chemical",
    "疾病" → "dis", "DIS" → "dis"), or None when the key is no entity type of the benchmark."""
    return type_resolver(spec).resolve(key)


def resolve_label(spec, key: str) -> str | None:
    """The registry label id (predicate, class) `key` stands for, or None."""
    return label_resolver(spec).resolve(key)
