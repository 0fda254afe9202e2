"""LLM text → `Prediction`: one parser per output kind, dispatched on `spec.task_type`.

The expected formats are Taiyi's (harness/prompts.py); the parsers accept the deviations general
chat models produce. These rules are part of the benchmark definition (the README repeats them
in plain words):

Common to all kinds
  - `<think>…</think>` blocks and markdown code fences are removed first; an unterminated
    `<think>` swallows the rest of the output.
  - Per line: leading bullets (`-`, `*`, `•`, `·`, `+`, `–`, `—`), numbering (`1.`, `1)`, `(1)`,
    `1、`, `①`), markdown headers (`#`), quote marks (`>`) and `**bold**` markers are removed.
  - A key is the text before the first `:` or `：` (either, in either language) outside brackets.
    Only a bracket pair that closes is a bracket: an opener never closed on the line
    ("…酸中毒（或碱中毒", a CMeEE gold mention) is plain text and hides no separator.
  - `none`, `N/A`, `null`, `nothing`, `无`, `没有`, `空`, `暂无` ... (alone, as a bullet or numbered
    item - `- 无`, `1. None` - or as a key's value) are a valid empty answer, not a parse
    failure. `no` and `na` are NOT empty words: they are nitric oxide and sodium in chemistry.
  - Empty output, and output in which nothing is recognised, is `Prediction(parse_failed=True)`
    with a `fail_reason`; the scorer treats it as an empty prediction. No parser raises on model
    output. Mentions and arguments are returned as written (trimmed); normalisation happens
    once, in scoring (`taiyi_bench.harness.normalize`).

NER (`Type: e1; e2`)
  - A line whose key resolves to an entity type of the benchmark (`normalize.resolve_type`: the
    set's own types, then the NER types of the other sets of its language) yields entities of
    that type - also when the task did not ask for it, so a wrong-type entity is a false
    positive. Other keys ("Explanation:", "Note:") are chatter.
  - A type key with nothing after it is a header: the bullet/numbered lines below it (or plain
    lines, until the first bullet or a blank line after content) are its mentions.
  - Values split on `;` `；` outside brackets (so "t（8；14）" survives), and in English also on `、`
    and `|`. Commas are NOT separators when the value has a `;`. An English value without `;` is
    split on `，` and on a comma followed by a space, not preceded by one, and not between digits
    (splits "famotidine, cimetidine" and "2,4-dinitrophenol, aspirin"; keeps the tokenised
    "2 , 6 - dimethoxy…" and the locants "1, 2, 3, 4-tetrahydro…"); a leading "and"/"or" of a
    comma-split piece is dropped. " and " alone never splits (disease names contain it).
    Chinese values are never split on `，` or `、` (2.3% of CMeEE-V2 dev mentions contain one),
    only, when there is no `；`, on a half-width comma followed by a space (no gold mention has one).
  - JSON-like values: `["a", "b"]`, `['a', 'b']`, `"a", "b"`; whole-output JSON objects
    `{"Chemical": ["a"]}` and lists `[{"type": …, "mention": …}]`. For a single-type set a bare
    JSON list or a bullet list with no type key anywhere is read as mentions of that type.
RE (`relation: [head, tail]; [head, tail]`)
  - Pairs are the top-level bracket groups `[h, t]`, `(h, t)`, `【h，t】`, `（h，t）` of a value;
    a value without brackets may use `h -> t` / `h → t` or `h, t` pieces separated by `;`.
  - Inside a pair the split point is `，` or a comma followed by a space (not between digits),
    else a bare comma. With several candidates the set's `pair_split` (registry) chooses: BC5CDR
    the last one (chemical names carry commas, disease names rarely do), CMeIE the first.
  - A single-relation set (BC5CDR): keys are ignored and bracketed pairs count on any line;
    unbracketed pieces only under a key naming the relation ("CID", "chemical-induced disease").
    Pairs are ordered as the set's argument roles (chemical, disease).
  - A several-relation set (CMeIE): a line's key must resolve to one of its predicates (exactly,
    or by containing exactly one predicate name: "具有临床表现关系的实体对"), else the line is
    chatter. A keyless line can also carry triples `(subject, predicate, object)` whose middle
    resolves.
TC (`Result: l1; l2` / `上述文本被分类为：l`)
  - The value of the first line keyed by a result word (Result, Label, Category, Topic, Class,
    Answer, Hallmark, Intent, 结果, 分类, 类别, 标签, 答案, 意图 …) or of "…被分类为" / "classified as"
    is the answer, cut at the first sentence end and split on `;` `；` `,` `，` `、` `|`. Without
    such a line, a line whose items are all labels (or none-words) is the answer.
  - Items resolve to label ids (`normalize.resolve_label`: exact after normalisation, or a unique
    ≥ 0.9 string similarity); an unresolved item is kept as its normalised text, a false positive.
    One joined by "and"/"&"/"和"/"及"/"与" is split there when every part is a label ("Treatment
    and Prevention"); HoC labels that contain "and" resolve whole first.
  - Single-label sets (KUAKE-QIC) keep every item too: a hedge "治疗方案; 注意事项" is two labels.
QA
  - Letters are the example's option keys (`options`), else the set's labels. Tried in order on
    the first non-empty line (unless the output starts by echoing the options, "A. …\nB. …"),
    then on the text after each answer cue ("answer is", "Answer:", "答案：", "正确答案是", "选")
    to the end of its line: a leading option letter ("B", "B.", "(B)", "B)", "【B】"), a
    yes/no/maybe word (PubMedQA), the exact option text (normalised), an option text the
    segment starts with (longest), a lowercase letter standing alone ("b", "(b)", "b.") or
    followed by its own option's text ("b. heparin"). Last resort on the whole text: exactly
    one distinct letter in brackets "(B)"/"【B】". A lone "A" followed by a word ("A 45-year-old…")
    is not a letter, and a lowercase "a" inside a sentence is the English article.
  - Bounds for looping output, far beyond a budgeted answer: a cue's segment is at most 256
    characters longer than the longest option text, and only the first 256 distinct cue
    segments are tried.
  - A none-word answer (first line or after a cue) chooses no option: wrong, not a parse failure.
  - The choice is the option letter when options are known, else the label (PubMedQA word).
"""

from __future__ import annotations

import ast
import itertools
import json
import logging
import re
import unicodedata
from collections.abc import Iterator, Mapping
from functools import lru_cache

from taiyi_bench.harness.normalize import LabelResolver, label_resolver, normalize_mention, type_resolver
from taiyi_bench.harness.records import Prediction
from taiyi_bench.harness.registry import DatasetSpec

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# shared helpers

_THINK = re.compile(r"<think>.*?(?:</think>|\Z)", re.S | re.I)
_FENCE_TAG = re.compile(r"[\w-]*")
_SPACES = re.compile(r"\s*")
_BULLET = re.compile(
    r"^(?:[-*•·+–—●○▪◦]\s+|\(?\d{1,3}[.)．]\s+|\(?\d{1,3}[)）]\s*|[（(]\d{1,3}[)）]\s*|\d{1,3}、\s*|[①-⑳]\s*|[一二三四五六七八九十]、\s*)"
)
_HEADER = re.compile(r"^(?:#{1,6}\s+|>\s*)")

_OPENERS = {"(": ")", "[": "]", "{": "}", "（": "）", "［": "］", "【": "】", "〔": "〕", "｛": "｝", "《": "》", "〈": "〉"}
_CLOSERS = {v: k for k, v in _OPENERS.items()}
_WIDTH_FOLD = {"（": "(", "［": "[", "｛": "{"}
_QUOTE_PAIRS = {'"': '"', "“": "”", "「": "」", "『": "』"}

# Empty answers, compared after `normalize_mention`. "no" and "na" are deliberately absent.
_NONE_WORDS = frozenset(
    {
        "none", "n/a", "null", "nil", "nothing", "none found", "not found", "not applicable", "not available",
        "no entity", "no entities", "no relation", "no relations", "no label", "no labels", "none of the above",
        "empty", "-", "—", "–", "[]", "{}",
        "无", "没有", "空", "暂无", "无实体", "无相关实体", "无关系", "无相关关系", "不存在", "均无", "都没有",
    }
)


def _is_none(text: str) -> bool:
    return normalize_mention(text) in _NONE_WORDS or text.strip() in ("[]", "{}")


def _is_none_answer(text: str) -> bool:
    """Whether the whole output is an empty answer: every non-empty line, once its bullet or
    numbering is removed, is a none word ("无", "- 无", "1. None")."""
    lines = [line for line in (_clean_line(raw)[0] for raw in text.split("\n")) if line]
    return bool(lines) and all(_is_none(line) for line in lines)


def _preclean(text: str) -> str:
    return _strip_fences(_THINK.sub("", text.replace("\r\n", "\n").replace("\r", "\n")))


def _strip_fences(text: str) -> str:
    r"""Remove markdown code fences: what `re.sub(r"(?m)^\s*```[\w-]*\s*$", "", text)` removes, from
    the first line start of the whitespace before the backticks to the last line end of the
    whitespace after the tag (or the text's end). The regex re-scanned a whitespace run from every
    line start in it (quadratic); here each backtick triple looks over its own whitespace once."""
    out: list[str] = []
    done = 0  # text[:done] is settled: copied to `out` or removed
    search = 0
    while (fence := text.find("```", search)) != -1:
        search = fence + 3  # an overlapping triple follows a backtick, never a line start: no match
        start = fence
        while start > done and text[start - 1].isspace():
            start -= 1
        if start > 0 and text[start - 1] != "\n":  # the first line start inside the whitespace
            newline = text.find("\n", start, fence)
            if newline == -1:
                continue  # text before the backticks on their line: not a fence
            start = newline + 1
        tag_end = _FENCE_TAG.match(text, fence + 3).end()
        spaces_end = _SPACES.match(text, tag_end).end()
        if spaces_end == len(text):
            end = spaces_end
        else:
            end = text.rfind("\n", tag_end, spaces_end)  # `$` before the last newline of the run
            if end == -1:
                continue  # text after the tag on the fence's line: not a fence
        out.append(text[done:start])
        done = search = end
    out.append(text[done:])
    return "".join(out)


def _clean_line(raw: str) -> tuple[str, bool]:
    """(line without bullets/numbering/markdown, whether it was a list item)."""
    line = _HEADER.sub("", raw.strip().replace("**", "").replace("__", ""))
    match = _BULLET.match(line)
    if match:
        line = line[match.end() :]
    return line.strip().strip("`").strip(), match is not None


_CLOSER_CHARS = "".join(_CLOSERS)
_BRACKETS = "".join(_OPENERS) + _CLOSER_CHARS
_BRACKET = re.compile("[" + re.escape(_BRACKETS) + "]")
# The kind of a bracket, as the opener it pairs with: "（…)" is one pair.
_KIND = {ch: _WIDTH_FOLD.get(ch, ch) for ch in _OPENERS} | {
    ch: _WIDTH_FOLD.get(opener, opener) for ch, opener in _CLOSERS.items()
}


@lru_cache(maxsize=16)  # a line is asked for its key, then its value's groups, commas ...
def _bracket_pairs(text: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(openers, closers) of the outermost bracket pairs of `text`, in text order.

    Only a pair that closes counts: an opener never closed ("…（或碱中毒", CMeEE gold) and a closer
    with no opener are ordinary text; a closer pops back to its own opener, so an unclosed inner
    bracket ("[老年人（年龄大于60岁]", "[FEV1 ratio, (FEV1]": CMeIE gold) swallows nothing.
    One pass: whether a closer's kind is open is a count per kind, not a walk down the stack
    ("((((]]]]" was quadratic), and the pairs are found once per text (cached)."""
    kinds: list[str] = []  # the stack of open brackets: kind and index
    indices: list[int] = []
    open_count = dict.fromkeys(_KIND.values(), 0)
    openers: list[int] = []  # the outermost pairs so far
    closers: list[int] = []
    for match in _BRACKET.finditer(text):
        ch = match.group()
        kind = _KIND[ch]
        if ch in _CLOSERS:
            if open_count[kind]:
                while True:  # pop back to the innermost open bracket of this kind
                    popped = kinds.pop()
                    opened = indices.pop()
                    open_count[popped] -= 1
                    if popped == kind:
                        break
                while openers and openers[-1] > opened:  # the pairs it encloses are inner ones
                    openers.pop()
                    closers.pop()
                openers.append(opened)
                closers.append(match.start())
            continue
        kinds.append(kind)
        indices.append(match.start())
        open_count[kind] += 1
    return tuple(openers), tuple(closers)


@lru_cache(maxsize=32)
def _char_class(chars: str) -> re.Pattern[str]:
    return re.compile("[" + re.escape(chars) + "]")


def _depth0(text: str, chars: str) -> Iterator[tuple[int, str]]:
    """(index, char) of each of `chars` in `text` that no bracket pair encloses (see
    `_bracket_pairs`); a pair's own brackets are outside it. The inside of a pair is skipped
    at regex speed."""
    openers, closers = _bracket_pairs(text)
    pattern = _char_class(chars)
    position = pair = 0
    while (match := pattern.search(text, position)) is not None:
        i = match.start()
        while pair < len(openers) and closers[pair] < i:
            pair += 1
        if pair < len(openers) and openers[pair] < i < closers[pair]:
            position = closers[pair]  # on past the inside; the closer itself is outside
            continue
        yield i, match.group()
        position = i + 1


def _split_key(line: str, max_key_chars: int = 60) -> tuple[str, str] | None:
    """Split `key: value` at the first colon (either width) outside brackets."""
    for i, _ in _depth0(line, ":："):
        key = line[:i].strip().strip("*").strip()
        if not key or len(key) > max_key_chars:
            return None
        return key, line[i + 1 :].strip()
    return None


def _split_depth0(text: str, separators: str) -> list[str]:
    return _cut(text, [i for i, _ in _depth0(text, separators)])


_NON_SPACE = re.compile(r"\S")


def _comma_split_points(text: str, *, fullwidth: bool = True) -> list[int]:
    """Depth-0 comma positions that look like list separators (see module docstring)."""
    points = []
    for i, ch in _depth0(text, ",，"):
        if ch == "，" and fullwidth:
            if not (text[i - 1 : i].isdigit() and text[i + 1 : i + 2].isdigit()):  # "淀粉-1，6-葡萄糖苷酶"
                points.append(i)
        elif ch == ",":
            after = text[i + 1 : i + 2]
            before = text[i - 1 : i]
            if not after.isspace() or not before or before.isspace():
                continue
            # The next non-space character, found without copying the rest of the text per comma.
            nxt = _NON_SPACE.search(text, i + 1) if before.isdigit() else None
            if nxt is not None and nxt.group().isdigit():
                continue  # locants: "1, 2, 3, 4-tetrahydro"
            points.append(i)
    return points


def _cut(text: str, points: list[int]) -> list[str]:
    parts, start = [], 0
    for p in points:
        parts.append(text[start:p])
        start = p + 1
    parts.append(text[start:])
    return parts


def _wrapped(text: str, open_: str) -> bool:
    """Whether one bracket pair opened by text[0] encloses the whole text."""
    if not text or text[0] != open_:
        return False
    for i, _ in _depth0(text, _CLOSER_CHARS):  # the first closer outside every pair
        return i == len(text) - 1
    return False


def _literal(text: str) -> object | None:
    """JSON or Python literal, or None."""
    try:
        return json.loads(text)
    except (ValueError, TypeError, RecursionError):  # "[[[[…" a thousand deep: not a literal
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


# The quotes a quoted list may use (`『` opens a list too, but quotes no item).
_QUOTED_CLOSE = {'"': '"', "“": "”", "「": "」"}
_QUOTE_OPEN = re.compile("[" + "".join(_QUOTED_CLOSE) + "]")


def _quoted_list(text: str) -> list[str] | None:
    """`"a", "b"` → [a, b] when the text is nothing but quoted strings and separators.

    The items are the matches of `"([^"]*)"|“([^”]*)”|「([^」]*)」` from left to right, found
    without the regex: it looked for a closing quote from every unclosed opening one, to the end
    of the text each time ("“a“a“a…" was quadratic). Here a quote kind found closed nowhere
    after some point is not looked for again."""
    if not text or text[0] not in _QUOTE_PAIRS:
        return None
    items: list[str] = []
    rest: list[str] = []  # the text outside the items
    unclosed: set[str] = set()  # kinds with no closing quote left
    settled = position = 0
    while (opening := _QUOTE_OPEN.search(text, position)) is not None:
        start = opening.start()
        position = start + 1
        kind = opening.group()
        if kind in unclosed:
            continue
        end = text.find(_QUOTED_CLOSE[kind], start + 1)
        if end == -1:
            unclosed.add(kind)
            continue
        items.append(text[start + 1 : end])
        rest.append(text[settled:start])
        settled = position = end + 1
    rest.append(text[settled:])
    if items and not "".join(rest).strip(" ,，;；、\t"):
        return items
    return None


def _strings_of(value: object) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple, set)) and all(isinstance(v, (str, int, float)) for v in value):
        return [str(v) for v in value]
    return None


def _list_value(value: str) -> list[str] | None:
    """A value written as a JSON/Python list or as quoted strings, else None."""
    value = value.strip()
    if _wrapped(value, "["):
        parsed = _literal(value)
        strings = _strings_of(parsed) if isinstance(parsed, list) else None
        if strings is not None:
            return strings
    return _quoted_list(value)


def _load_json_block(text: str) -> object | None:
    """The whole output as a JSON/Python literal (dict or list), if it is one."""
    stripped = text.strip()
    if stripped[:4].lower() == "json":
        stripped = stripped[4:].strip()
    if not stripped or stripped[0] not in "[{":
        return None
    close = "]" if stripped[0] == "[" else "}"
    end = stripped.rfind(close)
    if end <= 0:
        return None
    parsed = _literal(stripped[: end + 1])
    return parsed if isinstance(parsed, (dict, list)) else None


# --------------------------------------------------------------------------------------------
# NER

_EN_SEPARATORS = ";；、|"
_ZH_SEPARATORS = ";；"
_LEADING_CONJ = re.compile(r"^(?:and|or)\s+", re.I)


def split_mentions(value: str, language: str) -> list[str]:
    """Split a type's value into mentions (rules in the module docstring)."""
    value = value.strip()
    if not value or _is_none(value):
        return []
    listed = _list_value(value)
    if listed is not None:
        return [m.strip() for m in listed if m.strip() and not _is_none(m)]
    if _wrapped(value, "["):  # [a; b] / [a, b] unquoted
        value = value[1:-1]
    separators = _EN_SEPARATORS if language == "en" else _ZH_SEPARATORS
    parts = _split_depth0(value, separators)
    if len(parts) == 1:
        # Chinese: only a half-width comma followed by a space ("肺炎, 哮喘"); `，` stays.
        points = _comma_split_points(value, fullwidth=language == "en")
        if points:
            parts = [_LEADING_CONJ.sub("", p.strip()) for p in _cut(value, points)]
    return [part for p in parts if (part := p.strip()) and not _is_none(part)]


_MENTION_KEYS = ("mention", "entity", "text", "name", "span", "value", "word", "实体", "实体名称", "名称")
_TYPE_KEYS = ("type", "label", "entity_type", "category", "tag", "类型", "实体类型", "类别")
_WRAPPER_KEYS = ("entities", "entity", "results", "result", "output", "answer", "ner", "实体", "结果", "答案")


def _ner_from_json(obj: object, spec: DatasetSpec, resolver) -> tuple[set[tuple[str, str]], bool]:
    entities: set[tuple[str, str]] = set()
    understood = False
    sole = spec.labels[0] if len(spec.labels) == 1 else None
    if isinstance(obj, dict):
        lowered = {str(k).strip().lower(): v for k, v in obj.items()}
        mention_key = next((k for k in _MENTION_KEYS if k in lowered and isinstance(lowered[k], str)), None)
        type_key = next((k for k in _TYPE_KEYS if k in lowered and isinstance(lowered[k], str)), None)
        if mention_key and (type_key or sole):
            entity_type = resolver.resolve(lowered[type_key]) if type_key else sole
            if entity_type:
                return {(entity_type, lowered[mention_key].strip())}, True
            return set(), False
        for key, value in obj.items():
            entity_type = resolver.resolve(str(key))
            if entity_type is not None:
                understood = True
                if isinstance(value, str):
                    entities |= {(entity_type, m) for m in split_mentions(value, spec.language)}
                elif isinstance(value, (list, tuple)):
                    for item in value:
                        if isinstance(item, str) and item.strip() and not _is_none(item):
                            entities.add((entity_type, item.strip()))
                        elif isinstance(item, dict):
                            found = next((item[k] for k in _MENTION_KEYS if isinstance(item.get(k), str)), None)
                            if found and found.strip():
                                entities.add((entity_type, found.strip()))
            elif str(key).strip().lower() in _WRAPPER_KEYS and isinstance(value, (dict, list)):
                inner, ok = _ner_from_json(value, spec, resolver)
                entities |= inner
                understood = understood or ok
    elif isinstance(obj, list):
        if not obj:
            return set(), True  # `[]`: an empty answer
        for item in obj:
            if isinstance(item, str):
                if sole and item.strip() and not _is_none(item):
                    entities.add((sole, item.strip()))
                    understood = True
            elif isinstance(item, (dict, list)):
                inner, ok = _ner_from_json(item, spec, resolver)
                entities |= inner
                understood = understood or ok
    return entities, understood


def _parse_ner(spec: DatasetSpec, text: str, options: Mapping[str, str] | None = None) -> Prediction:
    resolver = type_resolver(spec)
    block = _load_json_block(text)
    if block is not None:
        entities, understood = _ner_from_json(block, spec, resolver)
        if understood:
            return Prediction(entities=entities)
    if _is_none_answer(text):
        return Prediction()

    entities: set[tuple[str, str]] = set()
    understood = False
    header: str | None = None
    header_items = 0  # lines taken under the current header
    header_bullets = False
    bare_items: list[str] = []  # bullet lines outside any header (single-type sets)
    for raw in text.split("\n"):
        if not raw.strip():
            if header is not None and header_items:
                header = None  # a blank line after content ends a header's list
            continue
        line, is_item = _clean_line(raw)
        if not line:
            continue
        kv = _split_key(line)
        if kv is not None:
            entity_type = resolver.resolve(kv[0])
            if entity_type is not None:
                understood = True
                if kv[1]:
                    entities |= {(entity_type, m) for m in split_mentions(kv[1], spec.language)}
                    header = None
                else:
                    header, header_items, header_bullets = entity_type, 0, False
                continue
            if not (is_item and header is not None):
                header = None  # "Explanation: ..." closes a list
                continue
        if header is not None:
            if is_item or not header_bullets:
                header_items += 1
                header_bullets = header_bullets or is_item
                understood = True
                entities |= {(header, m) for m in split_mentions(line, spec.language)}
            continue
        if not is_item and len(line) <= 40:
            entity_type = resolver.resolve(line)  # "**Chemicals**" or "### 疾病" as a header
            if entity_type is not None:
                header, header_items, header_bullets = entity_type, 0, False
                understood = True
                continue
        if is_item:
            bare_items.append(line)
    if not understood and len(spec.labels) == 1 and bare_items:
        # A plain bullet list answering a single-type task.
        entities = {(spec.labels[0], m) for item in bare_items for m in split_mentions(item, spec.language)}
        understood = True
    return Prediction(entities=entities) if understood else Prediction(parse_failed=True)


# --------------------------------------------------------------------------------------------
# RE

# Without the `\s*` on either side that it once had: the pieces are stripped anyway, and a
# leading `\s*` re-scanned a long run of spaces from each of its positions (quadratic).
_ARROW = re.compile(r"->|→|=>|—>|-->|⟶")


_RE_RESOLVERS: dict[tuple, object] = {}


def _re_resolver(spec: DatasetSpec):
    """A single-relation set's predicate also resolves from the names the prompts show for it
    (the registry's `relation_names`)."""
    key = (spec.key, spec.labels, tuple(spec.label_names.items()), tuple(spec.relation_names.items()))
    if key not in _RE_RESOLVERS:
        names = {label: (spec.label_name(label), spec.relation_name(label)) for label in spec.labels}
        _RE_RESOLVERS[key] = LabelResolver(names) if len(spec.labels) == 1 else label_resolver(spec)
    return _RE_RESOLVERS[key]


def split_pair(content: str, *, prefer_last: bool) -> list[str]:
    """Split the inside of a pair group into (head, tail); one element when no split point exists."""
    content = content.strip()
    listed = _list_value(f"[{content}]") if content[:1] in _QUOTE_PAIRS else None
    if listed is not None:
        return [x.strip() for x in listed]
    # Split points by preference: "，" / ", " not between digits; a bare "," not between
    # digits; finally any comma ("[L1，90%]" is a pair, "淀粉-1，6-葡萄糖苷酶" a locant).
    depth0 = [i for i, _ in _depth0(content, ",，")]
    points = (
        _comma_split_points(content)
        or [i for i in depth0 if not (content[i - 1 : i].isdigit() and content[i + 1 : i + 2].isdigit())]
        or depth0
    )
    if not points:
        arrow = _ARROW.split(content)
        return [a.strip() for a in arrow] if len(arrow) == 2 else [content]
    # Of several candidates the registry's `pair_split` chooses (`_pairs_in` has already tried
    # the triple reading where it applies).
    point = points[-1] if prefer_last else points[0]
    return [p.strip() for p in _cut(content, [point])]


def _groups(value: str) -> list[str]:
    """Contents of the top-level bracket groups of a value."""
    groups, start = [], None
    for i, ch in _depth0(value, _BRACKETS):
        if ch in _OPENERS:
            start = i
        elif start is not None:
            groups.append(value[start + 1 : i])
            start = None
    return groups


_MAX_PREDICATE_CHARS = 20


def _triple(content: str, resolver) -> tuple[str, str, str] | None:
    """`subject, predicate, object`: the first pair of split points (in order) whose middle,
    stripped, is a predicate of at most `_MAX_PREDICATE_CHARS` characters between a non-empty
    subject and object.

    The middle only grows as the second point moves right and it holds every comma it spans, so
    a first point is paired with at most ~20 second points; the ends of each piece are found
    once per point. Trying every pair, each with a copy of the content, was cubic in the length
    of a long comma list."""
    points = _comma_split_points(content) or [i for i, _ in _depth0(content, ",")]
    if len(points) < 2:
        return None
    first = len(content) - len(content.lstrip())  # the subject is empty before this
    last = len(content.rstrip())  # ... and the object after this
    starts, ends = [], []  # per point: where the stripped text after it starts, before it ends
    for point in points:
        start = point + 1
        while start < len(content) and content[start].isspace():
            start += 1
        end = point
        while end > 0 and content[end - 1].isspace():
            end -= 1
        starts.append(start)
        ends.append(end)
    for a in range(len(points) - 1):
        if points[a] <= first:
            continue  # empty subject
        for b in range(a + 1, len(points)):
            if points[b] + 1 >= last or ends[b] - starts[a] > _MAX_PREDICATE_CHARS:
                break  # empty object, or a middle too long: both only get worse further right
            if ends[b] <= starts[a]:
                continue  # empty middle: no predicate
            predicate = resolver.resolve(content[starts[a] : ends[b]])
            if predicate is not None:
                return content[: points[a]].strip(), predicate, content[points[b] + 1 :].strip()
    return None


def _pairs_in(
    value: str, *, prefer_last: bool, allow_unbracketed: bool, resolver, triples: bool
) -> tuple[list[tuple[str, str]], list[tuple[str, str, str]]]:
    pairs: list[tuple[str, str]] = []
    found_triples: list[tuple[str, str, str]] = []
    listed = _literal(value.strip()) if _wrapped(value.strip(), "[") else None
    if isinstance(listed, list) and listed and all(isinstance(x, (list, tuple)) for x in listed):
        for item in listed:
            strings = _strings_of(item)
            if strings and len(strings) == 2:
                pairs.append((strings[0].strip(), strings[1].strip()))
            elif strings and len(strings) == 3 and triples and resolver.resolve(strings[1]):
                found_triples.append((strings[0].strip(), resolver.resolve(strings[1]), strings[2].strip()))
        return pairs, found_triples
    groups = _groups(value)
    if not groups and allow_unbracketed:
        groups = [g for g in _split_depth0(value, ";；") if g.strip()]
    for content in groups:
        if triples:
            triple = _triple(content, resolver)
            if triple is not None:
                found_triples.append(triple)
                continue
        parts = split_pair(content, prefer_last=prefer_last)
        if len(parts) == 2 and all(parts):
            pairs.append((parts[0], parts[1]))
    return pairs, found_triples


def _parse_re(spec: DatasetSpec, text: str, options: Mapping[str, str] | None = None) -> Prediction:
    single = len(spec.labels) == 1
    resolver = _re_resolver(spec)
    prefer_last = spec.pair_split == "last"  # the registry says which argument carries commas
    relations: set[tuple[str, str, str]] = set()
    understood = False

    block = _load_json_block(text)
    if isinstance(block, dict):
        for key, value in block.items():
            relation = spec.labels[0] if single else resolver.resolve(str(key))
            if relation is None:
                continue
            understood = True
            if isinstance(value, (list, tuple)):
                for item in value:
                    strings = _strings_of(item)
                    if strings and len(strings) == 2:
                        relations.add((strings[0].strip(), relation, strings[1].strip()))
        if understood:
            return Prediction(relations=relations)
    if _is_none_answer(text):
        return Prediction()

    header: str | None = None
    for raw in text.split("\n"):
        if not raw.strip():
            continue
        line, is_item = _clean_line(raw)
        if not line:
            continue
        kv = _split_key(line)
        if kv is not None:
            key, value = kv
            named = resolver.resolve(key)
            relation = spec.labels[0] if single else named
            if relation is None:
                header = None
                # A chatter key; a keyless-style triple may still follow the colon.
                _, triples = _pairs_in(value, prefer_last=prefer_last, allow_unbracketed=False, resolver=resolver, triples=True)
                relations.update(triples)
                understood = understood or bool(triples)
                continue
            if not value:
                header = relation
                understood = understood or named is not None
                continue
            if _is_none(value):
                understood = True
                continue
            # Under a predicate key a 3-part group is a pair whose object has a comma, not a triple.
            pairs, _ = _pairs_in(
                value, prefer_last=prefer_last, allow_unbracketed=named is not None, resolver=resolver, triples=False
            )
            relations.update((head, relation, tail) for head, tail in pairs)
            understood = understood or bool(pairs) or named is not None
            continue
        relation = header or (spec.labels[0] if single else None)
        pairs, triples = _pairs_in(
            line, prefer_last=prefer_last, allow_unbracketed=header is not None and is_item, resolver=resolver,
            triples=not single,
        )
        if relation is not None and pairs:
            relations.update((head, relation, tail) for head, tail in pairs)
            understood = True
        relations.update(triples)
        understood = understood or bool(triples)
        if not is_item and not pairs and not triples and len(line) <= 40 and (named := resolver.resolve(line)):
            header = spec.labels[0] if single else named
            understood = True
    return Prediction(relations=relations) if understood else Prediction(parse_failed=True)


# --------------------------------------------------------------------------------------------
# TC

_RESULT_KEY = re.compile(
    r"(?:result|label|categor|topic|class|answer|hallmark|intent|prediction|output|"
    r"结果|分类|类别|标签|答案|意图|类型)",
    re.I,
)
_CLASSIFIED_AS = re.compile(r"(?:被?分类为|属于|classified\s+as|categori[sz]ed\s+as)\s*[:：]?\s*(.+)", re.I)
_SENTENCE_END = re.compile(r"(?<=[^\s.])\.\s+(?=\S)|。(?=.)|\n")
_TC_SEPARATORS = ";；,，、|"


# A key that asks or lists rather than answers: the prompt's own instruction echoed back
# ("请判断下面文本的类别，可选类别：<the query>", "Please classify…: <the text>"). Real SmolLM2 output
# echoed it on 7 of 50 KUAKE-QIC units; read as an answer, the query text became an out-of-set label.
_ECHOED_INSTRUCTION_KEY = re.compile(
    r"^\s*(?:请|please\b)|可选|候选|包括|以下|下面|哪|\b(?:which|following|these|possible|available|options|choices)\b",
    re.I,
)


def _is_result_key(key: str) -> bool:
    """A short key naming the answer ("Result", "Predicted labels", "上述文本被分类为"); a long one
    ("Classification rationale for this article") is chatter, and so is an echoed instruction."""
    return (
        bool(_RESULT_KEY.search(key))
        and len(key.split()) <= 4
        and len(key) <= 24
        and not _ECHOED_INSTRUCTION_KEY.search(key)
    )


def _tc_items(value: str) -> list[str]:
    value = value.strip()
    listed = _list_value(value)
    if listed is not None:
        return [x.strip() for x in listed if x.strip()]
    value = _SENTENCE_END.split(value, maxsplit=1)[0]
    if _wrapped(value, "["):
        value = value[1:-1]
    return [p.strip() for p in _split_depth0(value, _TC_SEPARATORS) if p.strip()]


# The matches of `\s+(?:and|&)\s+|\s*[和及与]\s*`, which re-scanned a long run of spaces from each
# of its positions (quadratic). `(?<!\s)`: a match starts where its spaces start - one found from
# inside a run is also found from the run's first space, tried first. The last branch is the
# exception: the run before "和" was eaten by the previous match ("与  和"), which ended there.
_CONJUNCTION = re.compile(r"(?<!\s)\s+(?:and|&)\s+|(?<!\s)\s*[和及与]\s*|[和及与]\s*", re.I)


def _resolve_tc(spec: DatasetSpec, items: list[str]) -> set[str]:
    resolver = label_resolver(spec)
    labels: list[str] = []
    for item in items:
        if _is_none(item):
            continue
        resolved = resolver.resolve(item)
        if resolved is None:
            # "Treatment and Prevention": split on a conjunction only if every part is a label
            # (HoC labels themselves contain "and").
            parts = [resolver.resolve(p) for p in _CONJUNCTION.split(item) if p.strip()]
            if len(parts) > 1 and all(parts):
                labels.extend(parts)
                continue
        labels.append(resolved if resolved is not None else normalize_mention(item))
    # Single-label sets too: every label given is a decision (a hedge "A; B" is one TP and one FP).
    return {x for x in labels if x}


def _parse_tc(spec: DatasetSpec, text: str, options: Mapping[str, str] | None = None) -> Prediction:
    resolver = label_resolver(spec)
    block = _load_json_block(text)
    if block is not None:
        if isinstance(block, dict):
            block = next((v for k, v in block.items() if _is_result_key(str(k))), None)
        strings = _strings_of(block)
        if strings is not None:
            return Prediction(labels=_resolve_tc(spec, strings))
    if _is_none_answer(text):
        return Prediction()

    lines = [_clean_line(raw) for raw in text.split("\n")]
    # 1. A line keyed by a result word (or "…被分类为 X"); one with its value on the line wins
    #    over a bare "Result:" header followed by a list.
    headers: list[int] = []
    for index, (line, _) in enumerate(lines):
        if not line:
            continue
        kv = _split_key(line)
        value = None
        if kv is not None and _is_result_key(kv[0]) and resolver.resolve(kv[0]) is None:
            value = kv[1]
        elif not (kv is not None and _ECHOED_INSTRUCTION_KEY.search(kv[0])):
            match = _CLASSIFIED_AS.search(line)
            if match:
                value = match.group(1)
        if value is None:
            continue
        if not value.strip():
            headers.append(index)
            continue
        if _is_none(value):
            return Prediction()
        return Prediction(labels=_resolve_tc(spec, _tc_items(value)))
    for index in headers:
        following = []
        for next_line, is_item in lines[index + 1 :]:
            if not next_line:
                if following:
                    break
                continue
            if not is_item and following and _split_key(next_line):
                break
            following.append(next_line)
        if following:
            if all(_is_none(x) for x in following):
                return Prediction()
            return Prediction(labels=_resolve_tc(spec, [i for x in following for i in _tc_items(x)]))
    # 2. Lines made only of labels.
    labels: set[str] = set()
    understood = False
    for line, _ in lines:
        if not line:
            continue
        if _is_none(line):
            understood = True
            continue
        items = _tc_items(line)
        resolved = [resolver.resolve(item) for item in items]
        if items and all(r is not None or _is_none(i) for r, i in zip(resolved, items, strict=True)):
            labels |= {r for r in resolved if r is not None}
            understood = True
    return Prediction(labels=labels) if understood else Prediction(parse_failed=True)


# --------------------------------------------------------------------------------------------
# QA

_ANSWER_CUE = re.compile(
    r"(?:final\s+answer|correct\s+(?:answer|option|choice)|the\s+answer|answer|best\s+(?:answer|option)|"
    r"正确答案|最佳答案|答案|应选|选择|选)"
    r"\s*(?:is|would\s+be|should\s+be|will\s+be|:|为|是|应为|应该是|应是)?\s*(?:option|选项)?\s*[:：]?\s*",
    re.I,
)
# The letter patterns are templates for the set's letters (`_letter_pattern`). None has two
# `\s*` that can meet around an optional part (`\s*[)]?\s*`): the engine tried every way to split a
# run of spaces between them, cubic in its length ("a" + 1,600 spaces + "x" took seconds). An
# optional part carries its own trailing spaces instead (`(?:[)]\s*)?`), which matches the same.
_LEADING_LETTER = r"^\s*(?:[\(（\[【「]\s*)?(?:(?:option|选项)\s*)?({letters})\s*(?:[\)）\]】」.．:：、,，。;；]|$)"
_LETTER_THEN_TEXT = r"^\s*({letters})\s+(\S.*)$"
_BRACKETED_LETTER = r"[\(（\[【]\s*({letters})\s*[\)）\]】]"
# A lowercase option letter counts only alone ("b", "(b)", "b.") or followed by its own option's
# text ("b. tell the attending"): inside a sentence "a" is the English article.
_LONE_LOWER_LETTER = r"^\s*(?:[\(（\[【「]\s*)?(?:(?:option|选项)\s*)?({letters})\s*(?:[\)）\]】」]\s*)?(?:[.．。!！]\s*)?$"
_LOWER_LETTER_WITH_TEXT = r"^\s*(?:[\(（\[【「]\s*)?({letters})\s*[\)）\]】」.．:：、]\s*(\S.*)$"
_ECHOED_OPTION = r"^\s*(?:[\(（\[【]\s*)?({letters})\s*[\)）\]】.．:：、]"
_FIRST_WORD_END = re.compile(r"[\s,.;:!?，。；：！？]+")
# A cue's segment is the rest of its line, but at most this many characters beyond the longest
# option text - enough for every rule (a letter, an option text, its first word) - and at most
# `_MAX_CUE_SEGMENTS` distinct segments are tried. Both bound the work on degenerate output, many
# cues on one long line ("the answer is the answer is …", "选…选…选…", a model looping until its
# budget runs out): each cue's segment was the whole rest of its line, and every cue was tried.
# A budgeted answer (64 tokens for MedQA) holds far fewer cues and far shorter lines.
_CUE_SEGMENT_SLACK = 256
_MAX_CUE_SEGMENTS = 256


@lru_cache(maxsize=256)
def _letter_pattern(template: str, letters: tuple[str, ...], flags: int = 0) -> re.Pattern[str]:
    return re.compile(template.format(letters="|".join(map(re.escape, letters))), flags)


def _qa_vocabulary(spec: DatasetSpec, options: Mapping[str, str] | None) -> tuple[list[str], dict[str, str]]:
    """(option letters, option text by letter)."""
    if options:
        return [str(k) for k in options], {str(k): str(v) for k, v in options.items()}
    if all(len(label) == 1 and label.isalpha() for label in spec.labels):
        return list(spec.labels), {}
    return [], {}


def _is_prefix(prefix: str, text: str) -> bool:
    """`text` starts with `prefix` and the prefix ends at a word boundary ("no" is not a prefix
    of "not sure")."""
    if not prefix or not text.startswith(prefix):
        return False
    rest = text[len(prefix) : len(prefix) + 1]
    return not (rest and rest.isalnum() and prefix[-1].isalnum() and rest.isascii())


def _leading_letter(
    segment: str, alone: str, with_text: str, letters: dict[str, str], texts: dict[str, str], *, loose: bool
) -> str | None:
    """The option letter `segment` starts with (`letters`: as written → option letter): alone
    (pattern `alone`), or followed by its own option's text (`with_text`; any text when `loose`)."""
    if not letters:
        return None
    match = _letter_pattern(alone, tuple(letters)).match(segment)
    if match:
        return letters[match.group(1)]
    match = _letter_pattern(with_text, tuple(letters), re.S).match(segment)
    if match:
        letter = letters[match.group(1)]
        option = normalize_mention(texts.get(letter, ""))
        if loose or (option and _is_prefix(option, normalize_mention(match.group(2)))):
            return letter
    return None


def _choice_in_segment(
    segment: str, letters: list[str], texts: dict[str, str], words: dict[str, str], *, loose: bool
) -> str | None:
    """The choice a segment names, or None. `loose`: the segment follows an answer cue, so a
    letter followed by a word ("answer is B because") still counts."""
    segment = segment.strip().replace("**", "")
    if not segment:
        return None
    upper = {letter: letter for letter in letters}
    if (letter := _leading_letter(segment, _LEADING_LETTER, _LETTER_THEN_TEXT, upper, texts, loose=loose)) is not None:
        return letter
    norm = normalize_mention(segment)
    if texts:
        for letter, option in texts.items():
            if normalize_mention(option) == norm:
                return letter
        prefixes = sorted(
            ((len(n), letter) for letter, option in texts.items() if _is_prefix(n := normalize_mention(option), norm)),
            reverse=True,
        )
        if prefixes and (len(prefixes) == 1 or prefixes[0][0] > prefixes[1][0]):
            return prefixes[0][1]
    lowered = {letter.lower(): letter for letter in letters if letter.lower() != letter}
    letter = _leading_letter(segment, _LONE_LOWER_LETTER, _LOWER_LETTER_WITH_TEXT, lowered, texts, loose=False)
    if letter is not None:
        return letter
    if words:
        first = _FIRST_WORD_END.split(norm, maxsplit=1)[0] if norm else ""
        if first in words:
            return words[first]
    return None


def _echoes_options(lines: list[str], letters: list[str]) -> bool:
    """Whether the output starts by repeating the options ("A. …\nB. …"): its first line is
    then no answer."""
    if not letters or len(lines) < 2:
        return False
    pattern = _letter_pattern(_ECHOED_OPTION, tuple(letters))
    starts = [m.group(1) for line in lines[:3] if (m := pattern.match(line))]
    return len(set(starts)) >= 2


def _cue_segments(text: str, reach: int) -> Iterator[str]:
    """The text after each answer cue to the end of its line, at most `reach` characters; each
    distinct one once (a looping model repeats its cue line), the first `_MAX_CUE_SEGMENTS`."""
    seen: set[str] = set()
    for cue in _ANSWER_CUE.finditer(text):
        start = cue.end()
        end = text.find("\n", start, start + reach)
        segment = text[start : end if end != -1 else start + reach]
        if segment not in seen:
            seen.add(segment)
            yield segment
            if len(seen) == _MAX_CUE_SEGMENTS:
                return


def _parse_qa(spec: DatasetSpec, text: str, options: Mapping[str, str] | None = None) -> Prediction:
    text = unicodedata.normalize("NFKC", text)
    letters, texts = _qa_vocabulary(spec, options)
    # Words that name a choice directly (PubMedQA yes/no/maybe): word → choice.
    words: dict[str, str] = {}
    if texts:
        for letter, option in texts.items():
            norm = normalize_mention(option)
            if norm and " " not in norm:
                words.setdefault(norm, letter)
    if not letters:
        words.update({normalize_mention(label): label for label in spec.labels})
    cleaned = [line for line in (_clean_line(r)[0] for r in text.split("\n")) if line]
    first_line = [] if _echoes_options(cleaned, letters) else [(cleaned[0] if cleaned else "", False)]
    reach = _CUE_SEGMENT_SLACK + max(map(len, texts.values()), default=0)
    cue_segments = ((segment, True) for segment in _cue_segments(text, reach))
    tried: list[tuple[str, bool]] = []
    for segment, loose in itertools.chain(first_line, cue_segments):
        tried.append((segment, loose))
        choice = _choice_in_segment(segment, letters, texts, words, loose=loose)
        if choice is not None:
            return Prediction(choice=choice)
    if any(_is_none(segment) for segment, _ in tried if segment.strip()):
        return Prediction()  # "None" / "- 无" / "Answer: N/A": no option chosen (wrong), but no parse failure
    if letters:
        found = set(_letter_pattern(_BRACKETED_LETTER, tuple(letters)).findall(text))
        if len(found) == 1:
            return Prediction(choice=found.pop())
    return Prediction(parse_failed=True)


# --------------------------------------------------------------------------------------------

_PARSERS = {"ner": _parse_ner, "re": _parse_re, "tc": _parse_tc, "qa": _parse_qa}


_NOTHING_RECOGNISED = {
    "mention_set": "no line keyed by an entity type of the benchmark (expected 'Type: mention; mention')",
    "ordered_triples": "no relation pair recognised (expected 'relation: [subject, object]')",
    "concept_pairs": "no relation pair recognised (expected 'relation: [head, tail]')",
    "label_set": "no label recognised (expected 'Result: label' or a line of labels)",
    "choice": "no option letter or option text recognised",
}


def parse_fail_reason(rule: str, output: str | None) -> str:
    """Why an output that failed to parse under the matching rule `rule` failed, in words."""
    if output is None:
        return "no output recorded"
    if not output.strip():
        return "empty output"
    if re.search("<think>", output, re.I) and not re.search("</think>", output, re.I):
        return "reasoning never finished (<think> without </think>): no answer after it"
    if not _preclean(output).strip():
        return "nothing but <think> blocks or code fences"
    return _NOTHING_RECOGNISED[rule]


def parse_output(spec: DatasetSpec, text: str | None, options: Mapping[str, str] | None = None) -> Prediction:
    """Parse one model output for `spec` into a `Prediction`. Never raises on model output.

    `options` (QA): the example's option letters → texts, so that option text is recognised and
    a 5-option variant accepts `E`.
    """
    try:
        cleaned = _preclean(text) if isinstance(text, str) else ""
        prediction = _PARSERS[spec.task_type](spec, cleaned, options) if cleaned.strip() else Prediction(parse_failed=True)
    except Exception:  # a parser bug must not abort a whole evaluation run
        logger.exception("parser error on %s output %.200r; scored as a parse failure", spec.key, text)
        prediction = Prediction(parse_failed=True)
    if prediction.parse_failed:
        prediction.fail_reason = parse_fail_reason(spec.matching_rule, text)
    return prediction
