"""Instruction data for the two-stage fine-tuning.

Two sources, one record type (`Conversation`):
  * the benchmark's train splits, read through `taiyi_bench.harness.loading.load_split` and rendered with
    the SAME instruction and answer formats the evaluation uses (`taiyi_bench.harness.prompts`), under
    several templates per task, plus task decomposition (a multi-type NER / multi-predicate RE
    example also becomes one instruction per type present);
  * user files in Taiyi's released conversation format (JSONL, one object a line:
    conversation_id, dataset, category, language, conversation=[{human, assistant}, ...]),
    for QA, dialogue, translation and the rest.

Which categories go into which stage is decided here and nowhere else (`STAGE_CATEGORIES`).
Caps (Taiyi capped most sets at 10,000 samples) and mixing weights are applied per dataset by
`build_mixture`, which also returns a report of what was taken from where.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from taiyi_bench.harness.errors import ConfigError, DataFormatError
from taiyi_bench.harness.results_io import iter_jsonl

# --------------------------------------------------------------------------- categories

CATEGORIES: tuple[str, ...] = (
    "extraction",  # NER, RE, event extraction
    "classification",
    "text_pair",  # similarity, inference, matching
    "translation",
    "other",  # summarisation, generation, anything non-dialogue
    "qa",
    "dialogue",
)

# THE stage design (the only place it is written down): stage 1 trains on non-dialogue task data,
# stage 2 on everything, QA and dialogue added (Taiyi found the two kinds converge differently).
STAGE_CATEGORIES: Mapping[int, frozenset[str]] = {
    1: frozenset({"extraction", "classification", "text_pair", "translation", "other"}),
    2: frozenset(CATEGORIES),
}

# Spellings met in released instruction sets (Taiyi's, CBLUE-style Chinese names), normalised to
# lower case with `_`/`-` read as spaces. Anything else is an error: a silent default would put
# dialogue data into stage 1.
_ALIASES: Mapping[str, tuple[str, ...]] = {
    "extraction": (
        "extraction", "information extraction", "ie", "ner", "named entity recognition", "entity recognition",
        "entity extraction", "re", "relation extraction", "relationship extraction", "triple extraction",
        "event extraction", "ee", "信息抽取", "命名实体识别", "实体识别", "关系抽取", "事件抽取",
    ),
    "classification": ("classification", "text classification", "tc", "intent classification", "文本分类", "意图分类"),
    "text_pair": (
        "text pair", "text pairs", "text pair task", "sentence pair", "text matching", "sts", "semantic similarity",
        "text similarity", "nli", "natural language inference", "文本对", "文本匹配", "语义相似度",
    ),
    "translation": ("translation", "machine translation", "mt", "翻译", "机器翻译"),
    "other": ("other", "others", "summarization", "summarisation", "text summarization", "text generation", "其他", "文本摘要"),
    "qa": ("qa", "question answering", "mcqa", "multiple choice", "multiple choice qa", "medical qa", "问答", "医学问答"),
    "dialogue": ("dialogue", "dialog", "conversation", "chat", "multi turn dialogue", "对话", "多轮对话", "医疗对话"),
}  # fmt: skip
_ALIAS_TO_CATEGORY: dict[str, str] = {alias: cat for cat, aliases in _ALIASES.items() for alias in aliases}

# The benchmark's task types as categories.
TASK_TYPE_CATEGORY: Mapping[str, str] = {"ner": "extraction", "re": "extraction", "tc": "classification", "qa": "qa"}


def normalize_category(raw: str) -> str | None:
    """The canonical category of a spelling, or None when it is unknown."""
    key = " ".join(str(raw).strip().lower().replace("_", " ").replace("-", " ").split())
    return _ALIAS_TO_CATEGORY.get(key)


def categories_for_stage(stage: int) -> frozenset[str]:
    if stage not in STAGE_CATEGORIES:
        raise ConfigError(f"unknown stage {stage!r}; stages are {sorted(STAGE_CATEGORIES)}")
    return STAGE_CATEGORIES[stage]


# --------------------------------------------------------------------------- records


@dataclass
class Conversation:
    """One training sample: alternating human/assistant turns (Taiyi's format, no system turn)."""

    id: str
    dataset: str
    category: str  # canonical, one of CATEGORIES
    language: str
    turns: list[tuple[str, str]]  # (human, assistant)
    origin: str = ""  # "file.jsonl:12" or "<set>/train (samples)": where to look when it goes wrong


REQUIRED_FIELDS: tuple[str, ...] = ("conversation_id", "dataset", "category", "language", "conversation")


def read_conversations(
    path: str | Path, *, dataset: str | None = None, category: str | None = None
) -> list[Conversation]:
    """Read a JSONL file in Taiyi's conversation format; `dataset` / `category` (from the recipe)
    replace the records' own values. Blank lines are skipped; any other problem is a
    `DataFormatError` naming the file and the 1-based line."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"conversation file {path} does not exist")
    forced_category = None
    if category is not None:
        forced_category = normalize_category(category)
        if forced_category is None:
            raise ConfigError(f"{path}: recipe category {category!r} is unknown; known: {', '.join(CATEGORIES)}")
    conversations: list[Conversation] = []

    def bad_line(line_no: int, why: str) -> None:
        raise DataFormatError(path, line_no, "one JSON object per line", why)

    for line_no, record in _jsonl_records(path, bad_line):
        if not isinstance(record, dict):
            raise DataFormatError(path, line_no, "a JSON object", type(record).__name__)
        overridden = {"dataset": dataset, "category": category}
        missing = [k for k in REQUIRED_FIELDS if k not in record and overridden.get(k) is None]
        if missing:
            raise DataFormatError(
                path, line_no, f"fields {', '.join(REQUIRED_FIELDS)}", f"missing {', '.join(missing)}"
            )
        if forced_category is not None:
            canonical = forced_category
        else:
            canonical = normalize_category(record["category"])
            if canonical is None:
                raise DataFormatError(
                    path,
                    line_no,
                    f"a known category ({', '.join(CATEGORIES)} or a usual spelling of one; "
                    "or set `category:` for this file in the recipe)",
                    repr(record["category"]),
                )
        turns = _parse_turns(record["conversation"], path, line_no)
        conversations.append(
            Conversation(
                id=str(record.get("conversation_id", f"{path.stem}-{line_no}")),
                dataset=str(dataset if dataset is not None else record["dataset"]),
                category=canonical,
                language=str(record.get("language", "")),
                turns=turns,
                origin=f"{path}:{line_no}",
            )
        )
    return conversations


def _jsonl_records(path: Path, bad_line: Callable[[int, str], None]) -> Iterator[tuple[int, Any]]:
    """`iter_jsonl`, and a line that is not UTF-8 (a GBK export, say) named by its number: the
    text reader fails on a whole buffered chunk, so the line is found again here."""
    try:
        yield from iter_jsonl(path, bad_line)
    except UnicodeDecodeError as exc:
        found = _first_non_utf8(path)
        if found is None:  # cannot happen for a file that failed to decode; say what we know
            raise DataFormatError(path, None, "UTF-8 text", f"invalid byte ({exc.reason})") from None
        line_no, column, byte = found
        raise DataFormatError(
            path, line_no, "UTF-8 text",
            f"byte 0x{byte:02x} at column {column} (GBK or another legacy encoding? re-save the file as UTF-8)",
        ) from None


def _first_non_utf8(path: Path) -> tuple[int, int, int] | None:
    """(line, column, byte) of the first byte that is not UTF-8; lines split as `iter_jsonl`
    splits them (the same text reader, undecodable bytes kept as surrogates)."""
    with Path(path).open(encoding="utf-8", errors="surrogateescape") as handle:
        for line_no, line in enumerate(handle, start=1):
            for column, char in enumerate(line, start=1):
                if "\udc80" <= char <= "\udcff":
                    return line_no, column, ord(char) - 0xDC00
    return None


def _parse_turns(raw: Any, path: Path, line_no: int) -> list[tuple[str, str]]:
    if not isinstance(raw, list) or not raw:
        raise DataFormatError(path, line_no, "`conversation` as a non-empty list of {human, assistant}", repr(raw)[:80])
    turns = []
    for index, turn in enumerate(raw, start=1):
        if not isinstance(turn, dict) or "human" not in turn or "assistant" not in turn:
            found = sorted(turn) if isinstance(turn, dict) else type(turn).__name__
            raise DataFormatError(path, line_no, f"turn {index} with `human` and `assistant`", str(found))
        human, assistant = turn["human"], turn["assistant"]
        if not isinstance(human, str) or not isinstance(assistant, str):
            raise DataFormatError(path, line_no, f"turn {index}: text for `human` and `assistant`", "a non-string")
        if not assistant.strip():
            # An empty answer would train the model to stop at once; it is a data bug, not a sample.
            raise DataFormatError(path, line_no, f"turn {index}: a non-empty assistant answer", "an empty one")
        if not human.strip():
            raise DataFormatError(path, line_no, f"turn {index}: a non-empty human turn", "an empty one")
        turns.append((human, assistant))
    return turns


# --------------------------------------------------------------------------- benchmark train splits


def task_conversations(
    name: str,
    *,
    split: str = "train",
    data_dir: str | Path | None = None,
    templates: int | None = None,
    decompose: bool = True,
    seed: int = 0,
) -> tuple[list[Conversation], str]:
    """Instructions from one benchmark split and their source ("data" or "samples"): one per
    example asking for all of the set's labels, in a template drawn (seeded) from the first
    `templates` paraphrases (None = all); with `decompose`, a multi-type NER or multi-predicate RE
    example also gives one single-type instruction per type in its gold (`labels=[t]`)."""
    from taiyi_bench.harness.loading import load_split
    from taiyi_bench.harness.prompts import render_answer, render_prompt, template_count

    loaded = load_split(name, split, data_dir=data_dir)
    spec = loaded.spec
    available = template_count(spec)
    usable = available if templates is None else max(1, min(int(templates), available))
    rng = random.Random(f"{seed}:{spec.key}:{split}")
    category = TASK_TYPE_CATEGORY[spec.task_type]
    origin = f"{spec.key}/{split} ({loaded.source})"
    out: list[Conversation] = []

    def add(example_id: str, prompt: str, answer: str, suffix: str) -> None:
        out.append(Conversation(f"{spec.key}-{example_id}{suffix}", spec.key, category, spec.language, [(prompt, answer)], origin))

    for example in loaded.examples:
        template = rng.randrange(usable)
        add(example.id, render_prompt(spec, example, template=template), render_answer(spec, example), "")
        if not decompose or len(spec.labels) < 2 or spec.task_type not in ("ner", "re"):
            continue
        if spec.task_type == "ner":
            present = [t for t in spec.labels if any(e.type == t for e in example.entities)]
        else:
            present = [r for r in spec.labels if any(rel.relation == r for rel in example.relations)]
        for label in present:
            template = rng.randrange(usable)
            prompt = render_prompt(spec, example, template=template, labels=[label])
            add(example.id, prompt, render_answer(spec, example, labels=[label]), f"-{label}")
    return out, loaded.source


# --------------------------------------------------------------------------- mixing


@dataclass
class DatasetReport:
    """What one dataset contributed to one stage."""

    dataset: str
    category: str
    origin: str  # "samples", "data", or the file path
    available: int
    cap: int | None
    weight: float
    used: int


@dataclass
class Mixture:
    """The conversations of one stage (shuffled) and where they came from."""

    stage: int
    conversations: list[Conversation]
    datasets: list[DatasetReport] = field(default_factory=list)
    skipped_categories: dict[str, int] = field(default_factory=dict)  # not in this stage

    @property
    def uses_samples(self) -> bool:
        return any(report.origin == "samples" for report in self.datasets)

    def report(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "total": len(self.conversations),
            "uses_bundled_samples": self.uses_samples,
            "datasets": [asdict(r) for r in self.datasets],
            "skipped_for_stage": self.skipped_categories,
        }


def resolve_task_names(names: Any) -> list[str]:
    """`data.tasks.names` as set keys: "all", "none"/null/[] (no set), one name or a list of
    names (keys or taiyi_* task names); an unknown name is a `ConfigError` listing the known."""
    from taiyi_bench.harness.registry import REGISTRY

    if names in (None, "none", []):
        return []
    if names == "all":
        return list(REGISTRY)
    if isinstance(names, str):
        names = [names]
    resolved = []
    for name in names:
        key = str(name).removeprefix("taiyi_")
        if key not in REGISTRY:
            raise ConfigError(f"data.tasks.names: unknown set {name!r}; known: {', '.join(REGISTRY)}")
        resolved.append(key)
    return resolved


def load_sources(
    data_cfg: Mapping[str, Any], *, search_dirs: Sequence[Path] = ()
) -> dict[str, tuple[list[Conversation], str]]:
    """Every dataset named by the recipe's `data` section: dataset name -> (conversations, origin),
    read once for both stages. A relative file path is looked up in the working directory, then
    in `search_dirs` (the recipe's folder and the package, where shipped samples are)."""
    seed = int(data_cfg.get("seed", 0))
    sources: dict[str, tuple[list[Conversation], str]] = {}
    tasks_cfg = data_cfg.get("tasks") or {}
    for name in resolve_task_names(tasks_cfg.get("names", "all")):
        conversations, origin = task_conversations(
            name,
            split=tasks_cfg.get("split", "train"),
            data_dir=tasks_cfg.get("data_dir"),
            templates=None if tasks_cfg.get("templates", "all") == "all" else int(tasks_cfg["templates"]),
            decompose=bool(tasks_cfg.get("decompose", True)),
            seed=seed,
        )
        sources[name] = (conversations, origin)
    for entry in data_cfg.get("files") or []:
        if isinstance(entry, str):
            entry = {"path": entry}
        path = Path(entry["path"]).expanduser()
        if not path.is_absolute() and not path.exists():
            path = next((d / path for d in search_dirs if (d / path).exists()), path)
        conversations = read_conversations(path, dataset=entry.get("dataset"), category=entry.get("category"))
        for conversation in conversations:
            previous = sources.get(conversation.dataset)
            if previous is not None and previous[1] != str(path):
                raise ConfigError(
                    f"dataset name {conversation.dataset!r} ({conversation.origin}) is also used by {previous[1]}; "
                    "set `dataset:` for one of the files in the recipe"
                )
            sources.setdefault(conversation.dataset, ([], str(path)))[0].append(conversation)
    if not sources:
        raise ConfigError("the recipe's `data` section names no data (data.tasks.names and data.files are both empty)")
    return sources


def build_mixture(
    sources: Mapping[str, tuple[Sequence[Conversation], str]],
    stage: int,
    *,
    cap: int | None = 10_000,
    per_dataset: Mapping[str, Mapping[str, Any]] | None = None,
    seed: int = 0,
) -> Mixture:
    """Per dataset: the conversations of the stage's categories, shuffled (seeded), at most `cap`
    (a per-dataset `cap` overrides; None = no cap), scaled by `weight` (0.5 keeps half, 2 repeats
    each twice); all shuffled. A `per_dataset` key naming no dataset is an error (a typo would
    silently leave a set uncapped)."""
    allowed = categories_for_stage(stage)
    per_dataset = dict(per_dataset or {})
    unknown = sorted(set(per_dataset) - set(sources))
    if unknown:
        raise ConfigError(f"data.datasets names unknown datasets {unknown}; known: {sorted(sources)}")
    rng = random.Random(f"{seed}:stage{stage}")
    mixture = Mixture(stage=stage, conversations=[])
    for name in sorted(sources):
        conversations, origin = sources[name]
        options = per_dataset.get(name, {})
        kept = [c for c in conversations if c.category in allowed]
        for c in conversations:
            if c.category not in allowed:
                mixture.skipped_categories[c.category] = mixture.skipped_categories.get(c.category, 0) + 1
        if not kept:
            continue
        dataset_cap = options.get("cap", cap)
        weight = float(options.get("weight", 1.0))
        rng.shuffle(kept)
        if dataset_cap is not None:
            # A negative cap would silently drop the last samples through the slice.
            if isinstance(dataset_cap, bool) or not isinstance(dataset_cap, int) or dataset_cap < 1:
                raise ConfigError(f"the cap for {name} (data.cap or data.datasets.{name}.cap) must be a whole number >= 1 or null, not {dataset_cap!r}")
            kept = kept[:dataset_cap]
        whole, fraction = divmod(weight, 1.0)
        chosen = kept * int(whole) + kept[: int(math.floor(fraction * len(kept) + 0.5))]
        mixture.conversations.extend(chosen)
        categories = sorted({c.category for c in kept})
        mixture.datasets.append(
            DatasetReport(name, "+".join(categories), origin, len(conversations), dataset_cap, weight, len(chosen))
        )
    rng.shuffle(mixture.conversations)
    return mixture


def stage_mixture(
    sources: Mapping[str, tuple[Sequence[Conversation], str]], stage: int, data_cfg: Mapping[str, Any]
) -> Mixture:
    """`build_mixture` as the recipe's `data` section sets it (cap, per-dataset options, seed)."""
    return build_mixture(sources, stage, cap=data_cfg["cap"], per_dataset=data_cfg["datasets"], seed=int(data_cfg["seed"]))


def trained_conversations(
    sources: Mapping[str, tuple[Sequence[Conversation], str]], data_cfg: Mapping[str, Any], stages: Sequence[int]
) -> list[Conversation]:
    """Every conversation the recipe's stages train on, once each: a later stage continues the
    earlier one's adapter, so the model saw them all (the contamination report's mixture)."""
    seen: dict[int, Conversation] = {}
    for stage in stages:
        for conversation in stage_mixture(sources, stage, data_cfg).conversations:
            seen.setdefault(id(conversation), conversation)
    return list(seen.values())
