"""The dataset registry: one entry per test set, the one place that knows a set by its key.

Everything the project needs to know about a set is a field of its `DatasetSpec`: files and reader,
variants, labels and their display names, the matching rule the scorer applies, how the parser
splits a pair, the baseline family and its hyperparameters, the generation budget and the
headline metric. Tasks, readers, prompts, parsers, scorers, baselines, fine-tuning, the data check
and the leaderboard read these fields; no module outside this one mentions a set's key. Counts
were verified on the real files (see README, "Data"); `taiyi data check` compares a data
directory against them.

A set is added by one entry in `_SPECS` (and a task YAML, see README "Adding a dataset"); tests
and plug-ins can add one at run time with `register` / `registered`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

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

# CMeEE-V2 entity type codes and the Chinese names the CBLUE guidelines use for them.
CMEEE_TYPES = MappingProxyType(
    {
        "dis": "疾病",
        "sym": "临床表现",
        "dru": "药物",
        "equ": "医疗设备",
        "pro": "医疗程序",
        "bod": "身体",
        "ite": "医学检验项目",
        "mic": "微生物类",
        "dep": "科室",
    }
)

# CMeIE-V2 `53_schemas.json` as (subject_type, predicate, object_type, direction):
# direction "0" = symmetric (双向), "1" = directed (单向). 53 schemas, 44 distinct predicates.
CMEIE_SCHEMAS: tuple[tuple[str, str, str, str], ...] = (
    ("疾病", "预防", "其他", "1"), ("疾病", "阶段", "其他", "1"), ("疾病", "就诊科室", "其他", "1"),
    ("其他", "同义词", "其他", "1"), ("疾病", "辅助治疗", "其他治疗", "1"), ("疾病", "化疗", "其他治疗", "1"),
    ("疾病", "放射治疗", "其他治疗", "1"), ("其他治疗", "同义词", "其他治疗", "0"), ("疾病", "手术治疗", "手术治疗", "1"),
    ("手术治疗", "同义词", "手术治疗", "0"), ("疾病", "实验室检查", "检查", "1"), ("疾病", "影像学检查", "检查", "1"),
    ("疾病", "辅助检查", "检查", "1"), ("疾病", "组织学检查", "检查", "1"), ("检查", "同义词", "检查", "0"),
    ("疾病", "内窥镜检查", "检查", "1"), ("疾病", "筛查", "检查", "1"), ("疾病", "多发群体", "流行病学", "1"),
    ("疾病", "发病率", "流行病学", "1"), ("疾病", "发病年龄", "流行病学", "1"), ("疾病", "多发地区", "流行病学", "1"),
    ("疾病", "发病性别倾向", "流行病学", "1"), ("疾病", "死亡率", "流行病学", "1"), ("疾病", "多发季节", "流行病学", "1"),
    ("疾病", "传播途径", "流行病学", "1"), ("流行病学", "同义词", "流行病学", "0"), ("疾病", "同义词", "疾病", "0"),
    ("疾病", "并发症", "疾病", "1"), ("疾病", "病理分型", "疾病", "1"), ("疾病", "相关（导致）", "疾病", "1"),
    ("疾病", "鉴别诊断", "疾病", "0"), ("疾病", "相关（转化）", "疾病", "1"), ("疾病", "相关（症状）", "疾病", "0"),
    ("疾病", "临床表现", "症状", "1"), ("疾病", "治疗后症状", "症状", "1"), ("疾病", "侵及周围组织转移的症状", "症状", "1"),
    ("症状", "同义词", "症状", "0"), ("疾病", "病因", "社会学", "1"), ("疾病", "高危因素", "社会学", "1"),
    ("疾病", "风险评估因素", "社会学", "1"), ("疾病", "病史", "社会学", "1"), ("疾病", "遗传因素", "社会学", "1"),
    ("社会学", "同义词", "社会学", "0"), ("疾病", "发病机制", "社会学", "1"), ("疾病", "病理生理", "社会学", "1"),
    ("疾病", "药物治疗", "药物", "1"), ("药物", "同义词", "药物", "0"), ("疾病", "发病部位", "部位", "1"),
    ("疾病", "转移部位", "部位", "1"), ("疾病", "外侵部位", "部位", "1"), ("部位", "同义词", "部位", "0"),
    ("疾病", "预后状况", "预后", "1"), ("疾病", "预后生存率", "预后", "1"),
)
CMEIE_PREDICATES: tuple[str, ...] = tuple(dict.fromkeys(s[1] for s in CMEIE_SCHEMAS))

# HoC: BLURB's 10 flags `i_0 … i_9` index the hallmarks in alphabetical order.
HOC_HALLMARKS: tuple[str, ...] = (
    "activating invasion and metastasis",
    "avoiding immune destruction",
    "cellular energetics",
    "enabling replicative immortality",
    "evading growth suppressors",
    "genomic instability and mutation",
    "inducing angiogenesis",
    "resisting cell death",
    "sustaining proliferative signaling",
    "tumor promoting inflammation",
)

LITCOVID_TOPICS: tuple[str, ...] = (
    "Treatment", "Prevention", "Diagnosis", "Mechanism", "Case Report", "Transmission", "Epidemic Forecasting",
)

KUAKE_QIC_INTENTS: tuple[str, ...] = (
    "治疗方案", "其他", "病情诊断", "注意事项", "疾病表述", "就医建议", "功效作用", "后果表述", "医疗费用", "病因分析", "指标解读",
)



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
            raise ConfigError(
                f"{self.variant_option} must be {' or '.join(map(str, allowed))}, not {value!r} "
                f"({self.display_name}; lm-eval --metadata or the command line)"
            )
        if chosen == self.variant_value:
            return self
        variant: Variant = self.variants[chosen]
        expected = variant.expected if variant.expected is not None else MappingProxyType(
            {split: SplitCounts(c.units, c.gold) for split, c in self.expected.items()}
        )
        return dataclasses.replace(
            self,
            files=variant.files if variant.files is not None else self.files,
            labels=variant.labels if variant.labels is not None else self.labels,
            expected=expected,
            notes=variant.notes or self.notes,
            variant_value=chosen,
        )

    def forms(self) -> list[tuple[str, DatasetSpec]]:
        """Every form of the set as (variant name, spec): the default ("") first."""
        return [("", self)] + [(variant.name, self.with_variant(value)) for value, variant in self.variants.items()]


def _m(**kwargs) -> MappingProxyType:
    return MappingProxyType(dict(kwargs))


_MTL_REPO = "https://github.com/cambridgeltl/MTL-Bioinformatics-2016 (data/<SET>-IOB/{train,devel,test}.tsv)"


def _same(*names: str) -> MappingProxyType:
    """Members kept under their own names."""
    return MappingProxyType({name: name for name in names})


def _raw(repo: str, commit: str, folder: str) -> str:
    """A folder of a GitHub repository at a pinned commit, as raw file URLs."""
    return f"https://raw.githubusercontent.com/{repo}/{commit}/{folder.strip('/')}/"


# Every URL is pinned to the commit whose files carry the sha256 above them; a moved branch
# cannot change what a fetch gets.
_MTL_COMMIT = "df0df02fae6dbb87d88ffcf323b9096528f06f84"
_MTL_LICENSE = "CC BY 4.0 (MTL-Bioinformatics-2016 materials)"
_MEDQA_MIRROR = ("Dragon-Wu/LLM-for-Clinical", "cd1ad42e9d936c4c2b39d91c10c9ce797eb74133")
_CBLUE_PAGE = "https://tianchi.aliyun.com/dataset/95414"
_CBLUE_LICENSE = "CBLUE / Tianchi terms of use (registration required)"


def _iob_source(folder: str, license: str = _MTL_LICENSE) -> tuple[Source, ...]:
    return (Source("mtl-2016", _raw("cambridgeltl/MTL-Bioinformatics-2016", _MTL_COMMIT, f"data/{folder}"),
                   _same("train.tsv", "devel.tsv", "test.tsv"), license),)


def _cblue_source(folder: str, *names: str) -> tuple[Source, ...]:
    # The CBLUE download unpacks into one folder per task, named as our set folders are.
    return (Source("tianchi", _CBLUE_PAGE, MappingProxyType({f"{folder}/{name}": name for name in names}),
                   _CBLUE_LICENSE, manual=True),)


_SPECS: tuple[DatasetSpec, ...] = (
    DatasetSpec(
        reference_run=_m(max_steps=400),
        key="bc5cdr_chem", display_name="BC5CDR-Chem", language="en", task_type="ner", eval_split="test",
        unit="sentence", data_subdir="BC5CDR-Chem",
        files=_m(train="train.tsv", dev="devel.tsv", test="test.tsv"), reader="read_iob",
        labels=("Chemical",), metric="f1", max_gen_toks=256,
        expected=_m(train=SplitCounts(4560, 5203), dev=SplitCounts(4581, 5347), test=SplitCounts(4797, 5385)),
        sha256=MappingProxyType({
            "devel.tsv": "3f1df5cfcff95735663ffc37121fd3687e82b1e9a019bec0480491502652721b",
            "test.tsv": "6fce42139a9d819151eff3ab8cb0eda6fbf861fd17d4cfe6be2123f010a3b6c5",
            "train.tsv": "165c4cd2efadd0caf1bb8f3c6bcd3acca199446bb3d55eb06d9137114c9a0b2d",
        }),
        source=_MTL_REPO.replace("<SET>", "BC5CDR-chem"),
        how_to_get="Download data/BC5CDR-chem-IOB/*.tsv from cambridgeltl/MTL-Bioinformatics-2016 into BC5CDR-Chem/.",
        sources=_iob_source("BC5CDR-chem-IOB"),
        license="CC BY 4.0 (MTL-Bioinformatics-2016 materials); BC5CDR corpus public domain",
        citation="Li et al., Database 2016 (BioCreative V CDR)",
    ),
    DatasetSpec(
        reference_run=_m(max_steps=400),
        key="bc5cdr_dise", display_name="BC5CDR-Dise", language="en", task_type="ner", eval_split="test",
        unit="sentence", data_subdir="BC5CDR-Dise",
        files=_m(train="train.tsv", dev="devel.tsv", test="test.tsv"), reader="read_iob",
        labels=("Disease",), metric="f1", max_gen_toks=256,
        expected=_m(train=SplitCounts(4560, 4182), dev=SplitCounts(4581, 4246), test=SplitCounts(4797, 4424)),
        sha256=MappingProxyType({
            "devel.tsv": "8c3af95475029c2100c2b7c0108b2715bc700ac198c7a21d587f11f1d06b17bd",
            "test.tsv": "a530bf9e17a4122b101b09cedd5f3cf8e6307d6a0093146c33b8de2e69ec0fa3",
            "train.tsv": "d630dafe7dd67e21350cc3278dbdcfadcccbb2b63d0fda83b2427853988e5ad9",
        }),
        source=_MTL_REPO.replace("<SET>", "BC5CDR-disease"),
        how_to_get="Download data/BC5CDR-disease-IOB/*.tsv from cambridgeltl/MTL-Bioinformatics-2016 into BC5CDR-Dise/.",
        sources=_iob_source("BC5CDR-disease-IOB"),
        license="CC BY 4.0 (MTL-Bioinformatics-2016 materials); BC5CDR corpus public domain",
        citation="Li et al., Database 2016 (BioCreative V CDR)",
    ),
    DatasetSpec(
        key="chemdner", display_name="CHEMDNER", language="en", task_type="ner", eval_split="test",
        unit="sentence", data_subdir="CHEMDNER",
        files=_m(train="train.tsv", dev="devel.tsv", test="test.tsv"), reader="read_iob",
        labels=("Chemical",), metric="f1", max_gen_toks=256,
        # 3,500 / 3,500 / 3,000 abstracts (Krallinger et al. 2015), 84,355 mentions in all. The
        # sentences of the BC4CHEMD IOB files, as published (Hugging Face extraordinarylab/bc4chemd
        # dataset card: train 30,682, validation 30,639, test 26,364; EvalScope's bc4chemd page:
        # test 26,364). Their mention counts are published nowhere we found, and these files were
        # never read here (no copy under 4 MiB exists), so neither gold counts nor a sha256 are set.
        expected=_m(train=SplitCounts(30682), dev=SplitCounts(30639), test=SplitCounts(26364)),
        # In that repository BC4CHEMD's IOB files sit in data/BC4CHEMD/ (no -IOB suffix, unlike the
        # other sets; data/BC4CHEMD-IOBES/ holds the IOBES form).
        source="https://github.com/cambridgeltl/MTL-Bioinformatics-2016 (data/BC4CHEMD/{train,devel,test}.tsv)",
        how_to_get=(
            "`taiyi data fetch chemdner --allow-unverified` (no checksum known yet), or download "
            "data/BC4CHEMD/{train,devel,test}.tsv from cambridgeltl/MTL-Bioinformatics-2016 into CHEMDNER/ "
            "(IOB, tag Chemical). Original corpus: BioCreative IV CHEMDNER, "
            "https://ftp.ncbi.nlm.nih.gov/pub/lu/BC7-NLM-Chem-track/BC7T2-CHEMDNER-corpus_v2.BioC.xml.gz"
        ),
        sources=_iob_source(
            "BC4CHEMD",
            license="CC BY 4.0 (MTL-Bioinformatics-2016 materials), though its README calls BC4CHEMD's "
                    "redistribution status unclear; CHEMDNER terms of BioCreative",
        ),
        license="CC BY 4.0 (MTL-Bioinformatics-2016 materials); CHEMDNER terms of BioCreative",
        citation="Krallinger et al., J Cheminform 2015",
        notes="Test = 3,000 abstracts split into sentences (BC4CHEMD IOB).",
    ),
    DatasetSpec(
        reference_run=_m(max_steps=400),
        key="ncbi_disease", display_name="NCBI-disease", language="en", task_type="ner", eval_split="test",
        unit="sentence", data_subdir="NCBI-disease",
        files=_m(train="train.tsv", dev="devel.tsv", test="test.tsv"), reader="read_iob",
        labels=("Disease",), metric="f1", max_gen_toks=256,
        expected=_m(train=SplitCounts(5424, 5134), dev=SplitCounts(923, 787), test=SplitCounts(940, 960)),
        sha256=MappingProxyType({
            "devel.tsv": "b4e1e7efcc2a35047bf2f3d281648357470e674f555d4a26a0049ac37d59cc61",
            "test.tsv": "8f088ce45dc4746592188f9e69de3d89d87f3bb8f0ed8c4a287d018123fa148d",
            "train.tsv": "58379baf4614b8d757d93dd7a21b202849ca99f9b9d71b49185523ff5443300c",
        }),
        source=_MTL_REPO.replace("<SET>", "NCBI-disease"),
        how_to_get="Download data/NCBI-disease-IOB/*.tsv from cambridgeltl/MTL-Bioinformatics-2016 into NCBI-disease/.",
        sources=_iob_source("NCBI-disease-IOB"),
        license="CC BY 4.0 (MTL-Bioinformatics-2016 materials); NCBI-disease corpus CC0",
        citation="Dogan et al., J Biomed Inform 2014",
    ),
    DatasetSpec(
        key="cmeee", display_name="CMeEE-V2", language="zh", task_type="ner", eval_split="dev",
        unit="sentence", data_subdir="CMeEE-V2",
        files=_m(train="CMeEE-V2_train.json", dev="CMeEE-V2_dev.json"), reader="read_cmeee",
        labels=tuple(CMEEE_TYPES), label_names=CMEEE_TYPES, metric="f1", max_gen_toks=768, mention_grounding="characters",
        expected=_m(
            train=SplitCounts(15000),
            dev=SplitCounts(5000, 26081, _m(bod=7361, dis=6328, sym=5297, pro=3319, dru=1566, ite=1339, mic=621, equ=164, dep=86)),
        ),
        sha256=MappingProxyType({
            "CMeEE-V2_dev.json": "440469ca5710a64731c0a00c3b92fa25e4e05c71663173e77ca588a540a5cd37",
        }),
        source="CBLUE benchmark (Tianchi): https://tianchi.aliyun.com/dataset/95414",
        how_to_get="Register on Tianchi, download CBLUE, copy CMeEE-V2/CMeEE-V2_{train,dev}.json into CMeEE-V2/.",
        sources=_cblue_source("CMeEE-V2", "CMeEE-V2_train.json", "CMeEE-V2_dev.json"),
        license="CBLUE / Tianchi terms of use",
        citation="Zhang et al., ACL 2022 (CBLUE)",
        notes="Nested and overlapping entities; V2 end_idx is exclusive. Scored on dev (test labels hidden).",
    ),
    DatasetSpec(
        reference_run=_m(max_steps=150, max_length=192),
        key="bc5cdr_re", display_name="BC5CDR (RE)", language="en", task_type="re", eval_split="test",
        unit="abstract", data_subdir="BC5CDR-CDR-RE",
        files=_m(train="CDR_TrainingSet.PubTator.txt", dev="CDR_DevelopmentSet.PubTator.txt", test="CDR_TestSet.PubTator.txt"),
        reader="read_pubtator_cdr", labels=("CID",), metric="f1", max_gen_toks=320,
        # Pairs of MeSH concepts, named by any of their mentions; chemical names carry commas,
        # disease names rarely do, so "[a, b, c]" splits at the last comma.
        matching_rule="concept_pairs", pair_split="last",
        relation_names=_m(CID="chemical-induced disease"), argument_roles=("chemical", "disease"),
        relation_signatures=(("Chemical", "CID", "Disease"),),
        baseline_settings=_m(pairs=_m(max_length=512, epochs=10), tagger=_m(max_length=256)),
        expected=_m(
            train=SplitCounts(500, 1038, _m(Chemical=5203, Disease=4182)),
            dev=SplitCounts(500, 1012, _m(Chemical=5347, Disease=4244)),
            test=SplitCounts(500, 1066, _m(Chemical=5385, Disease=4424)),
        ),
        sha256=MappingProxyType({
            "CDR_DevelopmentSet.PubTator.txt": "265c2cd66808e3e03cddd59796bcf3e37c9577f6933cfbf2906a91edf4e447ab",
            "CDR_TestSet.PubTator.txt": "6514af77b548f7a699723a1a898c8577bd62f25528f92f8ee872b8d0b216108b",
            "CDR_TrainingSet.PubTator.txt": "8748e229c22504184fb242ab3819efdac04e7b0ff5ee7480c290b6439b98acb0",
        }),
        source="BioCreative V CDR corpus, CDR_Data.zip (CDR.Corpus.v010516), https://biocreative.bioinformatics.udel.edu/tasks/biocreative-v/track-3-cdr/",
        how_to_get="Download CDR_Data.zip (BioCreative V track 3) and copy CDR_{Training,Development,Test}Set.PubTator.txt into BC5CDR-CDR-RE/.",
        sources=(
            Source("cdr-zip", "https://github.com/JHnlp/BioCreative-V-CDR-Corpus/raw/master/CDR_Data.zip",
                   MappingProxyType({f"CDR_Data/CDR.Corpus.v010516/{name}": name for name in (
                       "CDR_TrainingSet.PubTator.txt", "CDR_DevelopmentSet.PubTator.txt", "CDR_TestSet.PubTator.txt")}),
                   "Public domain (BC5CDR)", archive="zip",
                   note="the BioCreative V CDR release (CDR.Corpus.v010516) as the BigBIO and flair loaders get it"),
            Source("slm-ner", _raw("MartinH2k3/SLM-NER", "2a22b37f29cd2b5a0f86d48f59f1c891fce3346e", "CDRdatasetPreprocessing"),
                   _same("CDR_TrainingSet.PubTator.txt", "CDR_DevelopmentSet.PubTator.txt", "CDR_TestSet.PubTator.txt"),
                   "Public domain (BC5CDR)", note="mirror: the release's PubTator files, unchanged"),
        ),
        license="Public domain (BC5CDR)",
        citation="Li et al., Database 2016; Wei et al., Database 2016",
        notes="Document-level chemical-induced-disease pairs between MeSH concepts.",
    ),
    DatasetSpec(
        key="cmeie", display_name="CMeIE-V2", language="zh", task_type="re", eval_split="dev",
        unit="sentence", data_subdir="CMeIE-V2",
        files=_m(train="CMeIE-V2_train.jsonl", dev="CMeIE-V2_dev.jsonl"), reader="read_cmeie",
        labels=CMEIE_PREDICATES, metric="f1", max_gen_toks=1280,
        # Objects carry commas, disease subjects rarely do: "[a, b, c]" splits at the first comma.
        matching_rule="ordered_triples", pair_split="first",
        relation_signatures=tuple((subject, predicate, obj) for subject, predicate, obj, _ in CMEIE_SCHEMAS),
        baseline_settings=_m(pairs=_m(max_length=256)),
        expected=_m(train=SplitCounts(14339), dev=SplitCounts(3585, 16309)),
        sha256=MappingProxyType({
            "CMeIE-V2_dev.jsonl": "3406740acfb457609016002c12108976f77bf5fc0405e8a44eae099966f2cfea",
        }),
        source="CBLUE benchmark (Tianchi): https://tianchi.aliyun.com/dataset/95414",
        how_to_get="Register on Tianchi, download CBLUE, copy CMeIE-V2/CMeIE-V2_{train,dev}.jsonl and 53_schemas.json into CMeIE-V2/.",
        sources=_cblue_source("CMeIE-V2", "CMeIE-V2_train.jsonl", "CMeIE-V2_dev.jsonl"),
        license="CBLUE / Tianchi terms of use",
        citation="Zhang et al., ACL 2022 (CBLUE)",
        notes="53 schemas, 44 predicates. Scored on dev (test labels hidden).",
    ),
    DatasetSpec(
        key="litcovid", display_name="BC7LitCovid", language="en", task_type="tc", eval_split="test",
        unit="article", data_subdir="BC7-LitCovid",
        files=_m(train="BC7-LitCovid-Train.csv", dev="BC7-LitCovid-Dev.csv", test=("BC7-LitCovid-Test-GS.csv", "test.tsv")),
        reader="read_litcovid", labels=LITCOVID_TOPICS, metric="f1", max_gen_toks=64, multi_label=True,
        baseline_settings=_m(sequence=_m(max_length=512)),
        expected=_m(
            train=SplitCounts(24960), dev=SplitCounts(6239),
            test=SplitCounts(2500, None, _m(**{"Treatment": 1035, "Prevention": 926, "Diagnosis": 722, "Mechanism": 567,
                                                "Case Report": 197, "Transmission": 128, "Epidemic Forecasting": 41})),
        ),
        sha256=MappingProxyType({
            "test.tsv": "c6377364bcb67ce0907903a6b8ebae6fed6b912d76ffca589afd418403fa95b5",
        }),
        source="BioCreative VII Track 5 (LitCovid): https://ftp.ncbi.nlm.nih.gov/pub/lu/LitCovid/biocreative/",
        how_to_get="Download BC7-LitCovid-{Train,Dev,Test-GS}.csv into BC7-LitCovid/ (a title+abstract TSV `test.tsv` with pmid/text/labels columns is also read).",
        sources=(
            Source("ncbi-ftp", "https://ftp.ncbi.nlm.nih.gov/pub/lu/LitCovid/biocreative/",
                   _same("BC7-LitCovid-Train.csv", "BC7-LitCovid-Dev.csv", "BC7-LitCovid-Test-GS.csv"),
                   "BioCreative VII LitCovid track (BigBIO: unknown)", note="the official CSVs (no checksum known yet)"),
            Source("gpt-bionlp", _raw("qingyu-qc/gpt_bionlp_benchmark", "6830c4fe97540c4aa94ba7b74f0e4f129bac100e",
                                      "Benchmarks/LitCovid/datasets/full_set"),
                   _same("test.tsv"), "BioCreative VII LitCovid track (BigBIO: unknown)",
                   note="test.tsv: the official test gold standard as pmid/text/labels (Chen et al., BioNLP LLM benchmark)"),
        ),
        license="See the BioCreative VII LitCovid track",
        citation="Chen et al., Database 2022 (LitCovid track overview)",
    ),
    DatasetSpec(
        reference_run=_m(max_steps=400),
        key="hoc", display_name="HoC", language="en", task_type="tc", eval_split="test",
        unit="sentence", data_subdir="HoC",
        files=_m(train="train.tsv", dev="dev.tsv", test="test.tsv"), reader="read_hoc",
        labels=HOC_HALLMARKS, metric="f1", max_gen_toks=96, multi_label=True, document_key="pmid",
        baseline_settings=_m(sequence=_m(max_length=128, epochs=10)),
        expected=_m(train=SplitCounts(12119, 3085), dev=SplitCounts(1798, 461), test=SplitCounts(3547, 897)),
        sha256=MappingProxyType({
            "dev.tsv": "c0bae75eab5940db8afd3ac620d391661c826fa1428e38d258c9e730f4358b99",
            "test.tsv": "2e9ffe24c756b126efa2d351a9572ebb671a3473658bc0766d02ec80b9129d48",
            "train.tsv": "48352fe9828a63254c9302d5c9a13abe0167a5016dd1143e7f7e47c0348c9a81",
        }),
        source="BLURB data_generation (HoC sentence-level split): https://microsoft.github.io/BLURB/",
        how_to_get="Run BLURB's data_generation for HoC, or copy data/HoC/{train,dev,test}.tsv of a BLURB data checkout into HoC/.",
        sources=(Source(
            "kebiolm", _raw("hieunguyen7337/KeBioLM", "bc7c3667c786236252ba5b26b3b921197465b7a3", "data/HoC"),
            _same("train.tsv", "dev.tsv", "test.tsv"), "Corpus GPL-3.0 (sb895/Hallmarks-of-Cancer); BLURB scripts MIT",
            note="BLURB data_generation output (BLURB publishes the script, not the files)",
        ),),
        license="Corpus GPL-3.0 (sb895/Hallmarks-of-Cancer); BLURB scripts MIT",
        citation="Baker et al., Bioinformatics 2016; Gu et al., ACM HEALTH 2021 (BLURB)",
        notes="`labels` = 10 comma-separated i_0/i_1 flags in alphabetical hallmark order. Sentences may have no hallmark.",
    ),
    DatasetSpec(
        reference_run=_m(max_steps=400),
        key="kuake_qic", display_name="KUAKE-QIC", language="zh", task_type="tc", eval_split="dev",
        unit="query", data_subdir="KUAKE-QIC",
        files=_m(train="KUAKE-QIC_train.json", dev="KUAKE-QIC_dev.json"), reader="read_kuake_qic",
        # Single-label: the headline is accuracy, CBLUE's metric (micro-F1 is reported beside it).
        labels=KUAKE_QIC_INTENTS, metric="acc", max_gen_toks=48,
        baseline_settings=_m(sequence=_m(max_length=64)),
        expected=_m(
            train=SplitCounts(6931),
            dev=SplitCounts(1955, None, _m(治疗方案=676, 其他=395, 病情诊断=288, 疾病表述=158, 就医建议=134, 注意事项=120,
                                           医疗费用=50, 后果表述=45, 指标解读=32, 病因分析=29, 功效作用=28)),
        ),
        sha256=MappingProxyType({
            "KUAKE-QIC_dev.json": "a572e0576afe8510bc9d6b25424f835e6d30e760109ac9fb48c8a77696aa2602",
            "KUAKE-QIC_train.json": "090b296e71e6ca5144a193e2fc32b0297ab662cb689539ced1272198f19bc372",
        }),
        source="CBLUE benchmark (Tianchi): https://tianchi.aliyun.com/dataset/95414",
        how_to_get="Register on Tianchi, download CBLUE, copy KUAKE-QIC/KUAKE-QIC_{train,dev}.json into KUAKE-QIC/.",
        sources=_cblue_source("KUAKE-QIC", "KUAKE-QIC_train.json", "KUAKE-QIC_dev.json"),
        license="CBLUE / Tianchi terms of use",
        citation="Zhang et al., ACL 2022 (CBLUE)",
        notes="Single-label: the headline is accuracy (CBLUE's metric); micro-F1 equals it only when every query gets exactly one label. Scored on dev (test labels hidden).",
    ),
    DatasetSpec(
        reference_run=_m(max_steps=60, max_length=384),
        key="pubmedqa", display_name="PubMedQA", language="en", task_type="qa", eval_split="test",
        unit="question + contexts", data_subdir="PubMedQA",
        files=_m(train=("ori_pqal.json", "test_ground_truth.json"), test=("ori_pqal.json", "test_ground_truth.json")),
        reader="read_pubmedqa", file_policy="all", labels=("yes", "no", "maybe"), metric="acc", max_gen_toks=32,
        fixed_answer_classes=True,
        # A three-way classifier over the decision words, not a multiple-choice head.
        baseline_family="AnswerClassifier",
        baseline_settings=_m(sequence=_m(max_length=512, epochs=10, learning_rate=2.0e-5, batch_size=16)),
        expected=_m(train=SplitCounts(500), test=SplitCounts(500, None, _m(yes=276, no=169, maybe=55))),
        sha256=MappingProxyType({
            "ori_pqal.json": "8b3276be8942ebbd77f3ddcda12c1749bf0e490045a736fd8438ee40cf37a41d",
            "test_ground_truth.json": "939fe566f09017d13b1ca64d2ddfee0bc2374b366048152997669cccedc44d51",
        }),
        source="https://github.com/pubmedqa/pubmedqa (data/ori_pqal.json, data/test_ground_truth.json)",
        how_to_get="Copy data/ori_pqal.json and data/test_ground_truth.json of pubmedqa/pubmedqa into PubMedQA/.",
        sources=(Source("pubmedqa", _raw("pubmedqa/pubmedqa", "1cbae8e92f72f20c8d3747cbb3bf5bc53554d997", "data"),
                        _same("ori_pqal.json", "test_ground_truth.json"), "MIT"),),
        license="MIT",
        citation="Jin et al., EMNLP 2019",
        notes="PQA-L: test = the 500 PMIDs of test_ground_truth.json; train = the other 500.",
    ),
    DatasetSpec(
        key="medqa_usmle", display_name="MedQA-USMLE", language="en", task_type="qa", eval_split="test",
        unit="question", data_subdir="MedQA-USMLE",
        files=_m(train="phrases_no_exclude_train.jsonl", dev="phrases_no_exclude_dev.jsonl", test="phrases_no_exclude_test.jsonl"),
        reader="read_medqa", labels=("A", "B", "C", "D"), metric="acc", max_gen_toks=64,
        expected=_m(train=SplitCounts(10178), dev=SplitCounts(1272), test=SplitCounts(1273, None, _m(A=353, B=309, C=346, D=265))),
        sha256=MappingProxyType({
            "phrases_no_exclude_dev.jsonl": "774bbd90103af43badbe8d5294e336443573fc37b918763920b8fc3b3df581d9",
            "phrases_no_exclude_test.jsonl": "c3b905ccfa66152dc25afbcb2c10e86c0bdb208824f0658fcdb2c040f60a2beb",
        }),
        source="https://github.com/jind11/MedQA (data_clean/questions/US/4_options/)",
        how_to_get="Download MedQA data_clean (Google Drive link in jind11/MedQA), copy questions/US/4_options/phrases_no_exclude_*.jsonl into MedQA-USMLE/.",
        sources=(Source("llm-for-clinical", _raw(*_MEDQA_MIRROR, "data/MedQA/US/4_options"),
                        _same("phrases_no_exclude_train.jsonl", "phrases_no_exclude_dev.jsonl", "phrases_no_exclude_test.jsonl"),
                        "MIT (jind11/MedQA)", note="mirror of data_clean (the official copy is a Google Drive folder)"),),
        license="MIT (jind11/MedQA)",
        citation="Jin et al., Applied Sciences 2021",
    ),
    DatasetSpec(
        key="medqa_mcmle", display_name="MedQA-MCMLE", language="zh", task_type="qa", eval_split="test",
        unit="question", data_subdir="MedQA-MCMLE",
        # Default: the 4-option files; `mcmle_options=5` (lm-eval --metadata) selects the original
        # 5-option files (same questions, letters A-E, so no per-letter expectations).
        files=_m(train="4_options/train.jsonl", dev="4_options/dev.jsonl", test="4_options/test.jsonl"),
        reader="read_medqa", labels=("A", "B", "C", "D"), metric="acc", max_gen_toks=64,
        variant_option="mcmle_options", variant_value=4,
        variants=MappingProxyType({5: Variant(
            name="5 options", label="MCMLE 5-opt", files=_m(train="train.jsonl", dev="dev.jsonl", test="test.jsonl"),
            labels=("A", "B", "C", "D", "E"), notes="5-option originals (MedQA-MCMLE/{split}.jsonl).",
        )}),
        expected=_m(train=SplitCounts(27400), dev=SplitCounts(3425), test=SplitCounts(3426)),
        sha256=MappingProxyType({
            "4_options/dev.jsonl": "34a72ca9484a6bc6f97a2e97849b09665ec5be1a06a150f6634fd81738cb2997",
            "4_options/test.jsonl": "cf6be9ccd1d51343993f70f5008d2a685568074f3c20e92bb2bfebafcedb68bf",
            "dev.jsonl": "001a3922e71da9e46ba96af0f4e1d1b36e0b5618ea2b5ab168446c954408dec9",
            "test.jsonl": "e7ed08182759549e040de51f65ee52fde3f6c5f73938a06a686710d495a11e7f",
        }),
        source="https://github.com/jind11/MedQA (data_clean/questions/Mainland/)",
        how_to_get="Download MedQA data_clean, copy questions/Mainland/{train,dev,test}.jsonl and 4_options/ into MedQA-MCMLE/.",
        sources=(Source("llm-for-clinical", _raw(*_MEDQA_MIRROR, "data/MedQA/Mainland"),
                        _same(*(f"{folder}{split}.jsonl" for folder in ("4_options/", "") for split in ("train", "dev", "test"))),
                        "MIT (jind11/MedQA)", note="mirror of data_clean (the official copy is a Google Drive folder)"),),
        license="MIT (jind11/MedQA)",
        citation="Jin et al., Applied Sciences 2021",
        notes="5-option originals in MedQA-MCMLE/{split}.jsonl (select with mcmle_options=5).",
    ),
)


# Every registered set by key, in order: the paper's sets (Table 2 order), then any set added with
# `register`. `REGISTRY` and `PAPER_ORDER` are live views of it.
_BY_KEY: dict[str, DatasetSpec] = {spec.key: spec for spec in _SPECS}
_GENERATION = [0]  # bumped by every change, so that caches built from the whole registry refresh

REGISTRY: MappingProxyType = MappingProxyType(_BY_KEY)

# The 13 sets of the Taiyi paper (Table 2), in its order: what the published tables cover. A
# data fact, not the registry's extent: a set added since has no published number.
PAPER_SETS: tuple[str, ...] = (
    "bc5cdr_chem", "bc5cdr_dise", "chemdner", "ncbi_disease", "cmeee", "bc5cdr_re", "cmeie",
    "litcovid", "hoc", "kuake_qic", "pubmedqa", "medqa_usmle", "medqa_mcmle",
)


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

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(tuple(self))


# Row order of tables and plots: the paper's order, sets added later at the end.
PAPER_ORDER: Sequence[str] = _RegisteredKeys()
TASK_TYPE_NAMES = MappingProxyType({"ner": "NER", "re": "RE", "tc": "TC", "qa": "QA"})

_KEY_PATTERN = re.compile(r"[a-z][a-z0-9_]*")


def generation() -> int:
    """A number that changes whenever a set is registered or removed (for caches over all sets)."""
    return _GENERATION[0]


def validate(spec: DatasetSpec) -> None:
    """Check that an entry is complete and consistent; `ConfigError` naming the field otherwise."""
    from taiyi_bench.harness.readers import READERS  # the readers import this module for DatasetSpec

    where = f"dataset {spec.key!r} (harness/registry.py or register())"
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
        raise ConfigError(f"{where}: " + "; ".join(problems))


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


def unregister(key: str) -> DatasetSpec:
    """Remove a set from the registry and return it."""
    spec = _BY_KEY.pop(get_spec(key).key)
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


def get_spec(name: str) -> DatasetSpec:
    """Look up a set by key (`bc5cdr_chem`) or task name (`taiyi_bc5cdr_chem`): its default form."""
    key = name.removeprefix("taiyi_")
    try:
        return _BY_KEY[key]
    except KeyError:
        known = ", ".join(_BY_KEY)
        raise KeyError(f"unknown dataset {name!r}; known: {known}") from None


def resolve_spec(name: str | DatasetSpec, options: Mapping[str, Any] | None = None) -> DatasetSpec:
    """The spec of a set in the form `options` select. `options` are lm-eval `--metadata` style
    keys for every set at once: only the set's own `variant_option` is read, the rest ignored."""
    spec = name if isinstance(name, DatasetSpec) else get_spec(name)
    if spec.variant_option and options and options.get(spec.variant_option) is not None:
        return spec.with_variant(options[spec.variant_option])
    return spec


def iter_specs(language: Language | None = None, task_type: TaskType | None = None) -> Iterator[DatasetSpec]:
    """All specs in registry order (the paper's), optionally filtered."""
    for spec in tuple(_BY_KEY.values()):
        if language and spec.language != language:
            continue
        if task_type and spec.task_type != task_type:
            continue
        yield spec


# The lm-eval groups of the suite, defined by the registry (tasks/taiyibench*.yaml list the same
# members; a test keeps them in step). `taiyibench` is every set.
GROUP_FILTERS: MappingProxyType = MappingProxyType(
    {
        "taiyibench": {},
        "taiyibench_en": {"language": "en"},
        "taiyibench_zh": {"language": "zh"},
        "taiyibench_ner": {"task_type": "ner"},
        "taiyibench_re": {"task_type": "re"},
        "taiyibench_tc": {"task_type": "tc"},
        "taiyibench_qa": {"task_type": "qa"},
    }
)


def groups_of(spec: DatasetSpec) -> list[str]:
    """The lm-eval groups whose task list must name this set."""
    return [
        group for group, filters in GROUP_FILTERS.items()
        if all(getattr(spec, name) == value for name, value in filters.items())
    ]


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
