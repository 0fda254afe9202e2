"""The dataset registry: one entry per test set, the one place that knows a set by its key.

Everything the project needs to know about a set is a field of its `DatasetSpec`: files and reader,
variants, labels and their display names, the matching rule the scorer applies, how the parser
splits a pair, the baseline family and its hyperparameters, the generation budget and the
headline metric. Tasks, readers, prompts, parsers, scorers, baselines, fine-tuning, the data check
and the leaderboard read these fields; no module outside this one mentions a set's key.

The entries are data, `harness/datasets.yaml`, read and validated at import (`load_specs`). A set
is added by one entry there (and a task YAML, see README "Adding a dataset"); tests and plug-ins
can add one at run time with `register` / `registered`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import yaml

from taiyi_bench.harness.errors import ConfigError

TaskType = Literal["ner", "re", "tc", "qa"]
Language = Literal["en", "zh"]
# How the scorer compares a unit's prediction with its gold (taiyi_bench.harness.scoring, one function each):
#   mention_set      NER: {(type, mention)}, exact plus a lenient overlap count
#   concept_pairs    RE over concepts: string pairs mapped to the unit's concept ids (BC5CDR CID)
#   ordered_triples  RE over strings: {(subject, predicate, object)}, exact and ordered (CMeIE)
#   label_set        TC: {label} per unit, micro over (unit, label) decisions
#   choice           QA: the chosen option
MatchingRule = Literal["mention_set", "concept_pairs", "ordered_triples", "label_set", "choice"]
MATCHING_RULES: MappingProxyType = MappingProxyType({
    "ner": ("mention_set",), "re": ("concept_pairs", "ordered_triples"), "tc": ("label_set",), "qa": ("choice",),
})
# Inside a predicted pair "[a, b, c]" with several candidate commas: split at the first or the last.
PairSplit = Literal["first", "last"]
# When a split lists several files: "first_present" reads the first that exists (alternatives),
# "all" hands every one to the reader (a file and its ground truth).
FilePolicy = Literal["first_present", "all"]
# The discriminative baseline of each task type (baselines/families.py class names); a set whose
# baseline differs from its type's says so in its entry (`baseline_family`).
DEFAULT_BASELINE_FAMILY = MappingProxyType({
    "ner": "NerBaseline", "re": "RelationBaseline", "tc": "TextClassifier", "qa": "MultipleChoice",
})


@dataclass(frozen=True)
class SplitCounts:
    """Expected counts of one split. `units` is what one prompt covers; the rest are gold items."""

    units: int
    gold: int | None = None  # mentions (NER), relation pairs/triples (RE), labelled units (HoC)
    extra: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class Variant:
    """Another form of a set, chosen by the value of the set's `variant_option` (an lm-eval
    `--metadata` key, so one `--metadata` can go to every task). Unset fields keep the default
    form's; `expected` None keeps its unit and gold counts but not its per-label counts."""

    name: str  # how reports name it ("5 options")
    label: str  # its short tag in a leaderboard column header ("MCMLE 5-opt")
    files: MappingProxyType | None = None
    labels: tuple[str, ...] | None = None
    expected: MappingProxyType | None = None
    notes: str = ""


ArchiveKind = Literal["zip", "tar.gz"]


@dataclass(frozen=True)
class Source:
    """One place a set's files come from (`taiyi data fetch`, harness/fetch.py).

    `url` is an archive (`archive` set) or a folder URL ending in "/" that each member is joined
    to; `files` maps the member (path inside the archive or under the folder) to the file name in
    the set's folder (a name of `DatasetSpec.files`). The sha256 each file must have is the set's
    `sha256` entry for that name; a name without one is fetched only with --allow-unverified.
    `manual`: the licence asks the user to register or accept terms, so the files are never
    downloaded; `url` is the page to get them from, and fetch only picks up a copy the user put
    in a local folder (`--mirror DIR`). A set's sources are tried in order, per file.
    """

    name: str  # what `--source` selects
    url: str
    files: MappingProxyType  # member -> file name in the set's folder
    license: str
    archive: ArchiveKind | None = None
    manual: bool = False
    note: str = ""


@dataclass(frozen=True)
class DatasetSpec:
    """Everything the project knows about one test set."""

    key: str  # short id, lowercase letters, digits and "_"; the lm-eval task is f"taiyi_{key}"
    display_name: str
    language: Language
    task_type: TaskType
    eval_split: str  # "test" or "dev" (CBLUE test labels are hidden)
    unit: str
    data_subdir: str  # folder under the data directory, keeping the official file names
    files: MappingProxyType  # split -> file name(s) relative to data_subdir
    reader: str  # name of the reader function in taiyi_bench.harness.readers
    labels: tuple[str, ...]  # entity types / predicates / classes / option letters
    metric: Literal["f1", "acc"]
    max_gen_toks: int  # the task's generation budget: covers the longest gold answer of the real split
    multi_label: bool = False
    file_policy: FilePolicy = "first_present"
    matching_rule: MatchingRule | None = None  # None: the task type's only rule (see MATCHING_RULES)
    pair_split: PairSplit = "first"
    # NER: how a predicted mention is placed in the unit text for the occurrence-level strict F1
    # (`taiyi_bench.harness.occurrences`): "tokens" = on the IOB files' token boundaries (spacing between tokens
    # ignored), "characters" = any exact substring (CMeEE, unsegmented Chinese).
    mention_grounding: Literal["tokens", "characters"] = "tokens"
    # TC: the `Example.meta` key naming the document a unit belongs to (HoC sentences: "pmid");
    # set, the abstract-level micro-F1 of BLURB applies. None: units are documents already.
    document_key: str | None = None
    # QA whose options are the same classes on every unit (PubMedQA's yes/no/maybe): macro-F1 over
    # the classes applies (single-label TC always has fixed classes).
    fixed_answer_classes: bool = False
    # Names shown to the model for each label where they differ from the label id (CMeEE codes).
    label_names: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    # RE: how a prompt and an answer name a relation, where it differs from `label_name`.
    relation_names: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    # RE: the roles of a pair's two arguments, spelled out in the prompt ("[chemical, disease]").
    argument_roles: tuple[str, ...] = ()
    # RE: (head type, relation, tail type) each relation allows (the baseline's candidate pairs).
    relation_signatures: tuple[tuple[str, str, str], ...] = ()
    baseline_family: str | None = None  # None: DEFAULT_BASELINE_FAMILY of the task type
    # Hyperparameters of this set's baseline heads: head -> {name: value}, over encoders.yaml's.
    baseline_settings: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    # The CPU-sized MiniLM run of `taiyi reference` (`taiyi baseline train` options: max_steps,
    # max_length); empty: the set has no reference run (no train split in the official release).
    reference_run: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    variant_option: str | None = None  # the --metadata key choosing a variant (None: no variants)
    variant_value: int | None = None  # the value of this form (the default one in the registry)
    variants: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))  # value -> Variant
    expected: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))  # split -> SplitCounts
    # sha256 of the official files (name as in `files` -> hex; every variant's files): a run whose
    # files differ is marked "modified data" (taiyi_bench.harness.provenance). Empty: not known (CHEMDNER).
    sha256: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    source: str = ""
    # Where `taiyi data fetch` gets the files, canonical release first, then mirrors (empty: only
    # `how_to_get`, by hand).
    sources: tuple[Source, ...] = ()
    how_to_get: str = ""
    license: str = ""
    citation: str = ""
    notes: str = ""

    def __post_init__(self) -> None:
        if self.matching_rule is None:
            object.__setattr__(self, "matching_rule", MATCHING_RULES.get(self.task_type, (None,))[0])
        if self.baseline_family is None:
            object.__setattr__(self, "baseline_family", DEFAULT_BASELINE_FAMILY.get(self.task_type))

    @property
    def task_name(self) -> str:
        return f"taiyi_{self.key}"

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(self.files)

    @property
    def headline_metric(self) -> str:
        """The results key of the headline metric: "micro_f1" for F1 sets, "acc" for accuracy
        (QA, and single-label TC)."""
        return "micro_f1" if self.metric == "f1" else "acc"

    @property
    def variant_record(self) -> dict[str, int]:
        """The option that selects this form ({"mcmle_options": 4}), {} for a set without variants."""
        return {self.variant_option: self.variant_value} if self.variant_option else {}

    def label_name(self, label: str) -> str:
        """The name a prompt shows for `label` (identity except for coded labels)."""
        return self.label_names.get(label, label)

    def relation_name(self, relation: str) -> str:
        """The name a prompt and an answer use for the relation `relation`."""
        return self.relation_names.get(relation, self.label_name(relation))

    def argument_types(self) -> tuple[str, ...]:
        """RE: the entity types that can be a relation's argument, sorted."""
        return tuple(sorted({t for head, _, tail in self.relation_signatures for t in (head, tail)}))

    def with_variant(self, value: Any) -> DatasetSpec:
        """This set in the form `value` of its `variant_option` selects; ConfigError for a value
        the set does not have."""
        if not self.variant_option:
            return self
        default = _BY_KEY.get(self.key)
        if self.variant_value in self.variants and default is not None and default.variant_value not in default.variants:
            return default.with_variant(value)  # a variant's form: choose again from the default form
        allowed = sorted({self.variant_value, *self.variants})
        try:
            chosen = int(value)
        except (TypeError, ValueError):
            chosen = None
        if chosen not in allowed or isinstance(value, bool):
            raise ConfigError(f"{self.variant_option} must be {' or '.join(map(str, allowed))}, not {value!r} "
                              f"({self.display_name}; lm-eval --metadata or the command line)")
        if chosen == self.variant_value:
            return self
        variant: Variant = self.variants[chosen]
        expected = variant.expected if variant.expected is not None else MappingProxyType(
            {split: SplitCounts(c.units, c.gold) for split, c in self.expected.items()}
        )
        return dataclasses.replace(
            self, files=variant.files if variant.files is not None else self.files,
            labels=variant.labels if variant.labels is not None else self.labels,
            expected=expected, notes=variant.notes or self.notes, variant_value=chosen,
        )

    def forms(self) -> list[tuple[str, DatasetSpec]]:
        """Every form of the set as (variant name, spec): the default ("") first."""
        return [("", self)] + [(variant.name, self.with_variant(value)) for value, variant in self.variants.items()]


DATA_FILE = Path(__file__).with_name("datasets.yaml")
# Fields whose items are records of their own: (class, field) -> the items' class.
_ITEMS = {(DatasetSpec, "expected"): SplitCounts, (DatasetSpec, "variants"): Variant,
          (DatasetSpec, "sources"): Source, (Variant, "expected"): SplitCounts}


def _frozen(value: Any) -> Any:
    """YAML lists as tuples and mappings as read-only mappings, all the way down."""
    if isinstance(value, dict):
        return MappingProxyType({key: _frozen(item) for key, item in value.items()})
    if isinstance(value, list):
        return tuple(_frozen(item) for item in value)
    return value


def _make(cls: type, fields: Any, where: str, **given: Any) -> Any:
    """`cls(**given, **fields)` from a YAML mapping: ConfigError naming `where` and the field for a
    field that is missing, unknown or of the wrong shape."""
    if not isinstance(fields, Mapping):
        raise ConfigError(f"{where}: expected a mapping of {cls.__name__} fields, not {fields!r}")
    shapes = {f.name: str(f.type) for f in dataclasses.fields(cls)}
    values = {}
    for name, value in {**given, **fields}.items():
        if cls is Source and name == "files" and isinstance(value, list):
            value = {member: member for member in value}  # members kept under their own names
        shape = shapes.get(name, "")
        if shape.startswith("tuple") and not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: {name} must be a list, not {value!r}")
        if shape.startswith("MappingProxyType") and not isinstance(value, (Mapping, type(None))):
            raise ConfigError(f"{where}: {name} must be a mapping, not {value!r}")
        item = _ITEMS.get((cls, name))
        if item and isinstance(value, Mapping):
            value = {key: _make(item, one, f"{where}, {name}[{key!r}]") for key, one in value.items()}
        elif item and isinstance(value, (list, tuple)):
            value = [_make(item, one, f"{where}, {name}[{number}]") for number, one in enumerate(value)]
        values[name] = _frozen(value)
    try:
        return cls(**values)
    except TypeError as error:  # a required field missing, or one the class does not have
        raise ConfigError(f"{where}: {error}") from None


class _UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml where installed: 10x faster
    """A key written twice in one mapping is a copied entry left unrenamed: an error, where PyYAML
    would silently keep the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value != "<<":
                if key_node.value in seen:
                    raise yaml.MarkedYAMLError(problem=f"{key_node.value!r} is written twice in this mapping",
                                               problem_mark=key_node.start_mark)
                seen.add(key_node.value)
        return super().construct_mapping(node, deep)


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open(encoding="utf-8") as stream:
            data = yaml.load(stream, Loader=_UniqueKeyLoader)
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"{path}: {error}") from None
    if not isinstance(data, dict) or not isinstance(data.get("datasets"), dict):
        raise ConfigError(f"{path}: expected a `datasets:` mapping of set keys to entries")
    return data


_SHIPPED = _read(DATA_FILE)  # parsed once at import, for the constants below and the entries
_CONSTANTS = _SHIPPED["constants"]
CMEEE_TYPES: MappingProxyType = _frozen(_CONSTANTS["CMEEE_TYPES"])
CMEIE_SCHEMAS: tuple[tuple[str, str, str, str], ...] = _frozen(_CONSTANTS["CMEIE_SCHEMAS"])
CMEIE_PREDICATES: tuple[str, ...] = tuple(dict.fromkeys(schema[1] for schema in CMEIE_SCHEMAS))
HOC_HALLMARKS: tuple[str, ...] = _frozen(_CONSTANTS["HOC_HALLMARKS"])
LITCOVID_TOPICS: tuple[str, ...] = _frozen(_CONSTANTS["LITCOVID_TOPICS"])
KUAKE_QIC_INTENTS: tuple[str, ...] = _frozen(_CONSTANTS["KUAKE_QIC_INTENTS"])
PAPER_SETS: tuple[str, ...] = _frozen(_CONSTANTS["PAPER_SETS"])
# Entry fields read from the constants rather than written out twice.
_DERIVED = {"cmeie": {"labels": CMEIE_PREDICATES, "relation_signatures": tuple(s[:3] for s in CMEIE_SCHEMAS)}}


def load_specs(path: Path = DATA_FILE) -> list[DatasetSpec]:
    """The validated entries of a data file (harness/datasets.yaml), in the file's order; a
    ConfigError naming the file, the set and the field for a malformed one."""
    entries = (_SHIPPED if path == DATA_FILE else _read(path))["datasets"].items()
    specs = [_make(DatasetSpec, entry, f"dataset {key!r} ({path})", key=key, **_DERIVED.get(key, {})) for key, entry in entries]
    for spec in specs:
        validate(spec, origin=str(path))
    return specs


# Every registered set by key, in order: the paper's sets (Table 2 order), then any set added with
# `register`. `REGISTRY` and `PAPER_ORDER` are live views of it.
_BY_KEY: dict[str, DatasetSpec] = {}
_GENERATION = [0]  # bumped by every change, so that caches built from the whole registry refresh

REGISTRY: MappingProxyType = MappingProxyType(_BY_KEY)


class _RegisteredKeys(Sequence):
    """The registered keys in order, read at each use (so a set registered later is included)."""

    def __getitem__(self, index):  # type: ignore[override]
        return tuple(_BY_KEY)[index]

    def __len__(self) -> int:
        return len(_BY_KEY)

    def __iter__(self) -> Iterator[str]:
        return iter(tuple(_BY_KEY))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and not isinstance(other, str) and tuple(self) == tuple(other)

    def __repr__(self) -> str:
        return repr(tuple(self))


# Row order of tables and plots: the paper's order, sets added later at the end.
PAPER_ORDER: Sequence[str] = _RegisteredKeys()
TASK_TYPE_NAMES = MappingProxyType({"ner": "NER", "re": "RE", "tc": "TC", "qa": "QA"})

_KEY_PATTERN = re.compile(r"[a-z][a-z0-9_]*")


def generation() -> int:
    """A number that changes whenever a set is registered or removed (for caches over all sets)."""
    return _GENERATION[0]


def validate(spec: DatasetSpec, *, origin: str = "register()") -> None:
    """Check that an entry is complete and consistent; `ConfigError` naming the set, where it
    came from (`origin`) and the field otherwise."""
    from taiyi_bench.harness.readers import READERS  # the readers import this module for DatasetSpec

    problems = []
    if not _KEY_PATTERN.fullmatch(spec.key):
        problems.append("key must be lowercase letters, digits and '_', starting with a letter")
    if spec.task_type not in MATCHING_RULES:
        problems.append(f"task_type must be one of {list(MATCHING_RULES)}")
    elif spec.matching_rule not in MATCHING_RULES[spec.task_type]:
        problems.append(f"matching_rule of a {spec.task_type} set must be one of {list(MATCHING_RULES[spec.task_type])}")
    if spec.reader not in READERS:
        problems.append(f"reader {spec.reader!r} is not one of {sorted(READERS)}")
    if spec.eval_split not in spec.files:
        problems.append(f"eval_split {spec.eval_split!r} has no files")
    if not spec.labels:
        problems.append("labels is empty")
    if not isinstance(spec.max_gen_toks, int) or spec.max_gen_toks < 1:
        problems.append("max_gen_toks must be a whole number >= 1")
    if spec.task_type == "tc" and not spec.multi_label and spec.metric != "acc":
        # One answer per unit: accuracy is the official metric (CBLUE), and micro-F1 over
        # (unit, label) decisions would reward empty answers (2c/(2c+2w+e) against c/(c+w+e)).
        problems.append('a single-label tc set has metric="acc" (micro-F1 is reported beside it)')
    if spec.document_key is not None and spec.task_type != "tc":
        problems.append("document_key applies to tc sets only (the abstract-level micro-F1)")
    if spec.mention_grounding not in ("tokens", "characters"):
        problems.append('mention_grounding must be "tokens" or "characters"')
    if spec.task_type == "re" and not spec.relation_signatures:
        problems.append("an RE set needs relation_signatures (the argument types of each relation)")
    if bool(spec.variant_option) != (spec.variant_value is not None) or (spec.variants and not spec.variant_option):
        problems.append("variant_option, variant_value and variants go together")
    known_names = set(file_names(spec))
    for source in spec.sources:
        if source.archive not in (None, "zip", "tar.gz"):
            problems.append(f"source {source.name!r}: archive must be None, 'zip' or 'tar.gz'")
        if not source.manual and not source.url.startswith(("https://", "http://")):
            problems.append(f"source {source.name!r}: url must be http(s)")
        if not source.archive and not source.manual and not source.url.endswith("/"):
            problems.append(f"source {source.name!r}: a folder url ends with '/'")
        unknown = sorted(set(source.files.values()) - known_names)
        if unknown or not source.files:
            problems.append(f"source {source.name!r}: files must name files of the set (unknown: {unknown})")
    if problems:
        raise ConfigError(f"dataset {spec.key!r} ({origin}): " + "; ".join(problems))


def file_names(spec: DatasetSpec) -> tuple[str, ...]:
    """Every file name the set's readers may read, all variants included, in order."""
    tables = [spec.files] + [variant.files for variant in spec.variants.values() if variant.files is not None]
    names = (name for table in tables for value in table.values() for name in ((value,) if isinstance(value, str) else value))
    return tuple(dict.fromkeys(names))


def register(spec: DatasetSpec, *, replace: bool = False) -> DatasetSpec:
    """Add a set to the registry (after the others) and return it. A key already taken is an
    error unless `replace`; a replaced set keeps its place."""
    validate(spec)
    if spec.key in _BY_KEY and not replace:
        raise ConfigError(f"dataset {spec.key!r} is already registered (pass replace=True to replace it)")
    _BY_KEY[spec.key] = spec
    _GENERATION[0] += 1
    return spec


@contextmanager
def registered(spec: DatasetSpec) -> Iterator[DatasetSpec]:
    """`with registered(spec):` the set is known for the block only (tests, one-off runs)."""
    register(spec)
    try:
        yield spec
    finally:
        _BY_KEY.pop(spec.key, None)
        _GENERATION[0] += 1


def get_spec(name: str | DatasetSpec, options: Mapping[str, Any] | None = None) -> DatasetSpec:
    """A set by key (`bc5cdr_chem`) or task name (`taiyi_bc5cdr_chem`), in the form `options`
    select. `options` are lm-eval `--metadata` style keys for every set at once: only the set's own
    `variant_option` is read, so one `--metadata` can go to every task. A spec passed in is taken
    as it is unless `options` choose another form of it."""
    if isinstance(name, DatasetSpec):
        spec = name
    else:
        try:
            spec = _BY_KEY[name.removeprefix("taiyi_")]
        except KeyError:
            raise KeyError(f"unknown dataset {name!r}; known: {', '.join(_BY_KEY)}") from None
    if spec.variant_option and options and options.get(spec.variant_option) is not None:
        return spec.with_variant(options[spec.variant_option])
    return spec


def iter_specs(language: Language | None = None, task_type: TaskType | None = None) -> Iterator[DatasetSpec]:
    """All specs in registry order (the paper's), optionally filtered."""
    for spec in tuple(_BY_KEY.values()):
        if (not language or spec.language == language) and (not task_type or spec.task_type == task_type):
            yield spec


# The lm-eval groups of the suite, defined by the registry (tasks/taiyibench*.yaml list the same
# members; a test keeps them in step). `taiyibench` is every set.
GROUP_FILTERS: MappingProxyType = MappingProxyType({
    "taiyibench": {}, "taiyibench_en": {"language": "en"}, "taiyibench_zh": {"language": "zh"},
    "taiyibench_ner": {"task_type": "ner"}, "taiyibench_re": {"task_type": "re"},
    "taiyibench_tc": {"task_type": "tc"}, "taiyibench_qa": {"task_type": "qa"},
})


def specs_for_selection(names: Iterable[str] | None) -> list[DatasetSpec]:
    """The sets a task selection covers, in registry order, without duplicates.

    Accepts what lm-eval's `--tasks` accepts for this suite: set keys (`cmeee`), task names
    (`taiyi_cmeee`), group names (`taiyibench_zh`) and shell-style patterns (`taiyi_*`), alone or
    comma-separated. None or empty selects every set. An unknown name is a `KeyError` listing
    what is known.
    """
    import fnmatch

    items = [item.strip() for chunk in (names or []) for item in chunk.split(",") if item.strip()]
    if not items:
        return list(iter_specs())
    chosen: set[str] = set()
    for item in items:
        if item in GROUP_FILTERS:
            chosen.update(spec.key for spec in iter_specs(**GROUP_FILTERS[item]))
        elif any(ch in item for ch in "*?["):
            matched = [spec.key for spec in iter_specs() if fnmatch.fnmatchcase(spec.task_name, item)]
            if not matched:
                raise KeyError(f"task pattern {item!r} matches no taiyi_* task")
            chosen.update(matched)
        else:
            chosen.add(get_spec(item).key)
    return [spec for spec in iter_specs() if spec.key in chosen]


# The sets of harness/datasets.yaml, in the file's order (the paper's, Table 2).
_BY_KEY.update((spec.key, spec) for spec in load_specs())
