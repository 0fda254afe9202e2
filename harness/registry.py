"""The dataset registry: one entry per test set, the single source of names, labels and counts.

Tasks, readers, prompts, baselines, fine-tuning and the leaderboard all read from here; none of
them hard-codes a label list, a file name or an expected count. Counts were verified on the real
files (see README, "Data"); `taiyi data check` compares a data directory against them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

TaskType = Literal["ner", "re", "tc", "qa"]
Language = Literal["en", "zh"]

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
class DatasetSpec:
    """Everything the project knows about one test set."""

    key: str  # short id; the lm-eval task is f"taiyi_{key}"
    display_name: str
    language: Language
    task_type: TaskType
    eval_split: str  # "test" or "dev" (CBLUE test labels are hidden)
    unit: str
    data_subdir: str  # folder under the data directory, keeping the official file names
    files: MappingProxyType  # split -> file name(s) relative to data_subdir
    reader: str  # name of the reader function in harness.readers
    labels: tuple[str, ...]  # entity types / predicates / classes / option letters
    metric: Literal["f1", "acc"]
    multi_label: bool = False
    # Names shown to the model for each label where they differ from the label id (CMeEE codes).
    label_names: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    expected: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))  # split -> SplitCounts
    source: str = ""
    how_to_get: str = ""
    license: str = ""
    citation: str = ""
    notes: str = ""

    @property
    def task_name(self) -> str:
        return f"taiyi_{self.key}"

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(self.files)

    def label_name(self, label: str) -> str:
        """The name a prompt shows for `label` (identity except for coded labels)."""
        return self.label_names.get(label, label)


def _m(**kwargs) -> MappingProxyType:
    return MappingProxyType(dict(kwargs))


_MTL_REPO = "https://github.com/cambridgeltl/MTL-Bioinformatics-2016 (data/<SET>-IOB/{train,devel,test}.tsv)"

_SPECS: tuple[DatasetSpec, ...] = (
    DatasetSpec(
        key="bc5cdr_chem", display_name="BC5CDR-Chem", language="en", task_type="ner", eval_split="test",
        unit="sentence", data_subdir="BC5CDR-Chem",
        files=_m(train="train.tsv", dev="devel.tsv", test="test.tsv"), reader="read_iob",
        labels=("Chemical",), metric="f1",
        expected=_m(train=SplitCounts(4560, 5203), dev=SplitCounts(4581, 5347), test=SplitCounts(4797, 5385)),
        source=_MTL_REPO.replace("<SET>", "BC5CDR-chem"),
        how_to_get="Download data/BC5CDR-chem-IOB/*.tsv from cambridgeltl/MTL-Bioinformatics-2016 into BC5CDR-Chem/.",
        license="CC BY 4.0 (MTL-Bioinformatics-2016 materials); BC5CDR corpus public domain",
        citation="Li et al., Database 2016 (BioCreative V CDR)",
    ),
    DatasetSpec(
        key="bc5cdr_dise", display_name="BC5CDR-Dise", language="en", task_type="ner", eval_split="test",
        unit="sentence", data_subdir="BC5CDR-Dise",
        files=_m(train="train.tsv", dev="devel.tsv", test="test.tsv"), reader="read_iob",
        labels=("Disease",), metric="f1",
        expected=_m(train=SplitCounts(4560, 4182), dev=SplitCounts(4581, 4246), test=SplitCounts(4797, 4424)),
        source=_MTL_REPO.replace("<SET>", "BC5CDR-disease"),
        how_to_get="Download data/BC5CDR-disease-IOB/*.tsv from cambridgeltl/MTL-Bioinformatics-2016 into BC5CDR-Dise/.",
        license="CC BY 4.0 (MTL-Bioinformatics-2016 materials); BC5CDR corpus public domain",
        citation="Li et al., Database 2016 (BioCreative V CDR)",
    ),
    DatasetSpec(
        key="chemdner", display_name="CHEMDNER", language="en", task_type="ner", eval_split="test",
        unit="sentence", data_subdir="CHEMDNER",
        files=_m(train="train.tsv", dev="devel.tsv", test="test.tsv"), reader="read_iob",
        labels=("Chemical",), metric="f1",
        # 3,500 / 3,500 / 3,000 abstracts (Krallinger et al. 2015); sentence counts of the IOB
        # conversion were not verified here, so no count is enforced.
        expected=_m(),
        source=_MTL_REPO.replace("<SET>", "BC4CHEMD"),
        how_to_get=(
            "Download data/BC4CHEMD/{train,devel,test}.tsv from cambridgeltl/MTL-Bioinformatics-2016 into CHEMDNER/ "
            "(IOB, tag Chemical). Original corpus: BioCreative IV CHEMDNER, "
            "https://ftp.ncbi.nlm.nih.gov/pub/lu/BC7-NLM-Chem-track/BC7T2-CHEMDNER-corpus_v2.BioC.xml.gz"
        ),
        license="CC BY 4.0 (MTL-Bioinformatics-2016 materials); CHEMDNER terms of BioCreative",
        citation="Krallinger et al., J Cheminform 2015",
        notes="Test = 3,000 abstracts split into sentences (BC4CHEMD IOB).",
    ),
    DatasetSpec(
        key="ncbi_disease", display_name="NCBI-disease", language="en", task_type="ner", eval_split="test",
        unit="sentence", data_subdir="NCBI-disease",
        files=_m(train="train.tsv", dev="devel.tsv", test="test.tsv"), reader="read_iob",
        labels=("Disease",), metric="f1",
        expected=_m(train=SplitCounts(5424, 5134), dev=SplitCounts(923, 787), test=SplitCounts(940, 960)),
        source=_MTL_REPO.replace("<SET>", "NCBI-disease"),
        how_to_get="Download data/NCBI-disease-IOB/*.tsv from cambridgeltl/MTL-Bioinformatics-2016 into NCBI-disease/.",
        license="CC BY 4.0 (MTL-Bioinformatics-2016 materials); NCBI-disease corpus CC0",
        citation="Dogan et al., J Biomed Inform 2014",
    ),
    DatasetSpec(
        key="cmeee", display_name="CMeEE-V2", language="zh", task_type="ner", eval_split="dev",
        unit="sentence", data_subdir="CMeEE-V2",
        files=_m(train="CMeEE-V2_train.json", dev="CMeEE-V2_dev.json"), reader="read_cmeee",
        labels=tuple(CMEEE_TYPES), label_names=CMEEE_TYPES, metric="f1",
        expected=_m(
            train=SplitCounts(15000),
            dev=SplitCounts(5000, 26081, _m(bod=7361, dis=6328, sym=5297, pro=3319, dru=1566, ite=1339, mic=621, equ=164, dep=86)),
        ),
        source="CBLUE benchmark (Tianchi): https://tianchi.aliyun.com/dataset/95414",
        how_to_get="Register on Tianchi, download CBLUE, copy CMeEE-V2/CMeEE-V2_{train,dev}.json into CMeEE-V2/.",
        license="CBLUE / Tianchi terms of use",
        citation="Zhang et al., ACL 2022 (CBLUE)",
        notes="Nested and overlapping entities; V2 end_idx is exclusive. Scored on dev (test labels hidden).",
    ),
    DatasetSpec(
        key="bc5cdr_re", display_name="BC5CDR (RE)", language="en", task_type="re", eval_split="test",
        unit="abstract", data_subdir="BC5CDR-CDR-RE",
        files=_m(train="CDR_TrainingSet.PubTator.txt", dev="CDR_DevelopmentSet.PubTator.txt", test="CDR_TestSet.PubTator.txt"),
        reader="read_pubtator_cdr", labels=("CID",), metric="f1",
        expected=_m(
            train=SplitCounts(500, 1038, _m(Chemical=5203, Disease=4182)),
            dev=SplitCounts(500, 1012, _m(Chemical=5347, Disease=4244)),
            test=SplitCounts(500, 1066, _m(Chemical=5385, Disease=4424)),
        ),
        source="BioCreative V CDR corpus, CDR_Data.zip (CDR.Corpus.v010516), https://biocreative.bioinformatics.udel.edu/tasks/biocreative-v/track-3-cdr/",
        how_to_get="Download CDR_Data.zip (BioCreative V track 3) and copy CDR_{Training,Development,Test}Set.PubTator.txt into BC5CDR-CDR-RE/.",
        license="Public domain (BC5CDR)",
        citation="Li et al., Database 2016; Wei et al., Database 2016",
        notes="Document-level chemical-induced-disease pairs between MeSH concepts.",
    ),
    DatasetSpec(
        key="cmeie", display_name="CMeIE-V2", language="zh", task_type="re", eval_split="dev",
        unit="sentence", data_subdir="CMeIE-V2",
        files=_m(train="CMeIE-V2_train.jsonl", dev="CMeIE-V2_dev.jsonl"), reader="read_cmeie",
        labels=CMEIE_PREDICATES, metric="f1",
        expected=_m(train=SplitCounts(14339), dev=SplitCounts(3585, 16309)),
        source="CBLUE benchmark (Tianchi): https://tianchi.aliyun.com/dataset/95414",
        how_to_get="Register on Tianchi, download CBLUE, copy CMeIE-V2/CMeIE-V2_{train,dev}.jsonl and 53_schemas.json into CMeIE-V2/.",
        license="CBLUE / Tianchi terms of use",
        citation="Zhang et al., ACL 2022 (CBLUE)",
        notes="53 schemas, 44 predicates. Scored on dev (test labels hidden).",
    ),
    DatasetSpec(
        key="litcovid", display_name="BC7LitCovid", language="en", task_type="tc", eval_split="test",
        unit="article", data_subdir="BC7-LitCovid",
        files=_m(train="BC7-LitCovid-Train.csv", dev="BC7-LitCovid-Dev.csv", test=("BC7-LitCovid-Test-GS.csv", "test.tsv")),
        reader="read_litcovid", labels=LITCOVID_TOPICS, metric="f1", multi_label=True,
        expected=_m(
            train=SplitCounts(24960), dev=SplitCounts(6239),
            test=SplitCounts(2500, None, _m(**{"Treatment": 1035, "Prevention": 926, "Diagnosis": 722, "Mechanism": 567,
                                                "Case Report": 197, "Transmission": 128, "Epidemic Forecasting": 41})),
        ),
        source="BioCreative VII Track 5 (LitCovid): https://ftp.ncbi.nlm.nih.gov/pub/lu/LitCovid/biocreative/",
        how_to_get="Download BC7-LitCovid-{Train,Dev,Test-GS}.csv into BC7-LitCovid/ (a title+abstract TSV `test.tsv` with pmid/text/labels columns is also read).",
        license="See the BioCreative VII LitCovid track",
        citation="Chen et al., Database 2022 (LitCovid track overview)",
    ),
    DatasetSpec(
        key="hoc", display_name="HoC", language="en", task_type="tc", eval_split="test",
        unit="sentence", data_subdir="HoC",
        files=_m(train="train.tsv", dev="dev.tsv", test="test.tsv"), reader="read_hoc",
        labels=HOC_HALLMARKS, metric="f1", multi_label=True,
        expected=_m(train=SplitCounts(12119, 3085), dev=SplitCounts(1798, 461), test=SplitCounts(3547, 897)),
        source="BLURB data_generation (HoC sentence-level split): https://microsoft.github.io/BLURB/",
        how_to_get="Run BLURB's data_generation for HoC, or copy data/HoC/{train,dev,test}.tsv of a BLURB data checkout into HoC/.",
        license="Corpus GPL-3.0 (sb895/Hallmarks-of-Cancer); BLURB scripts MIT",
        citation="Baker et al., Bioinformatics 2016; Gu et al., ACM HEALTH 2021 (BLURB)",
        notes="`labels` = 10 comma-separated i_0/i_1 flags in alphabetical hallmark order. Sentences may have no hallmark.",
    ),
    DatasetSpec(
        key="kuake_qic", display_name="KUAKE-QIC", language="zh", task_type="tc", eval_split="dev",
        unit="query", data_subdir="KUAKE-QIC",
        files=_m(train="KUAKE-QIC_train.json", dev="KUAKE-QIC_dev.json"), reader="read_kuake_qic",
        labels=KUAKE_QIC_INTENTS, metric="f1",
        expected=_m(
            train=SplitCounts(6931),
            dev=SplitCounts(1955, None, _m(治疗方案=676, 其他=395, 病情诊断=288, 疾病表述=158, 就医建议=134, 注意事项=120,
                                           医疗费用=50, 后果表述=45, 指标解读=32, 病因分析=29, 功效作用=28)),
        ),
        source="CBLUE benchmark (Tianchi): https://tianchi.aliyun.com/dataset/95414",
        how_to_get="Register on Tianchi, download CBLUE, copy KUAKE-QIC/KUAKE-QIC_{train,dev}.json into KUAKE-QIC/.",
        license="CBLUE / Tianchi terms of use",
        citation="Zhang et al., ACL 2022 (CBLUE)",
        notes="Single-label: micro-F1 equals accuracy. Scored on dev (test labels hidden).",
    ),
    DatasetSpec(
        key="pubmedqa", display_name="PubMedQA", language="en", task_type="qa", eval_split="test",
        unit="question + contexts", data_subdir="PubMedQA",
        files=_m(train=("ori_pqal.json", "test_ground_truth.json"), test=("ori_pqal.json", "test_ground_truth.json")),
        reader="read_pubmedqa", labels=("yes", "no", "maybe"), metric="acc",
        expected=_m(train=SplitCounts(500), test=SplitCounts(500, None, _m(yes=276, no=169, maybe=55))),
        source="https://github.com/pubmedqa/pubmedqa (data/ori_pqal.json, data/test_ground_truth.json)",
        how_to_get="Copy data/ori_pqal.json and data/test_ground_truth.json of pubmedqa/pubmedqa into PubMedQA/.",
        license="MIT",
        citation="Jin et al., EMNLP 2019",
        notes="PQA-L: test = the 500 PMIDs of test_ground_truth.json; train = the other 500.",
    ),
    DatasetSpec(
        key="medqa_usmle", display_name="MedQA-USMLE", language="en", task_type="qa", eval_split="test",
        unit="question", data_subdir="MedQA-USMLE",
        files=_m(train="phrases_no_exclude_train.jsonl", dev="phrases_no_exclude_dev.jsonl", test="phrases_no_exclude_test.jsonl"),
        reader="read_medqa", labels=("A", "B", "C", "D"), metric="acc",
        expected=_m(train=SplitCounts(10178), dev=SplitCounts(1272), test=SplitCounts(1273, None, _m(A=353, B=309, C=346, D=265))),
        source="https://github.com/jind11/MedQA (data_clean/questions/US/4_options/)",
        how_to_get="Download MedQA data_clean (Google Drive link in jind11/MedQA), copy questions/US/4_options/phrases_no_exclude_*.jsonl into MedQA-USMLE/.",
        license="MIT (jind11/MedQA)",
        citation="Jin et al., Applied Sciences 2021",
    ),
    DatasetSpec(
        key="medqa_mcmle", display_name="MedQA-MCMLE", language="zh", task_type="qa", eval_split="test",
        unit="question", data_subdir="MedQA-MCMLE",
        # Default: the 4-option files; `options=5` (lm-eval --metadata) selects the original 5-option files.
        files=_m(train="4_options/train.jsonl", dev="4_options/dev.jsonl", test="4_options/test.jsonl"),
        reader="read_medqa", labels=("A", "B", "C", "D"), metric="acc",
        expected=_m(train=SplitCounts(27400), dev=SplitCounts(3425), test=SplitCounts(3426)),
        source="https://github.com/jind11/MedQA (data_clean/questions/Mainland/)",
        how_to_get="Download MedQA data_clean, copy questions/Mainland/{train,dev,test}.jsonl and 4_options/ into MedQA-MCMLE/.",
        license="MIT (jind11/MedQA)",
        citation="Jin et al., Applied Sciences 2021",
        notes="5-option originals in MedQA-MCMLE/{split}.jsonl (select with options=5).",
    ),
)

REGISTRY: MappingProxyType = MappingProxyType({spec.key: spec for spec in _SPECS})

# The paper's order (Table 2), used by tables and plots.
PAPER_ORDER: tuple[str, ...] = tuple(spec.key for spec in _SPECS)
TASK_TYPE_NAMES = MappingProxyType({"ner": "NER", "re": "RE", "tc": "TC", "qa": "QA"})


def get_spec(name: str) -> DatasetSpec:
    """Look up a set by key (`bc5cdr_chem`) or task name (`taiyi_bc5cdr_chem`)."""
    key = name.removeprefix("taiyi_")
    try:
        return REGISTRY[key]
    except KeyError:
        known = ", ".join(REGISTRY)
        raise KeyError(f"unknown dataset {name!r}; known: {known}") from None


def iter_specs(language: Language | None = None, task_type: TaskType | None = None) -> Iterator[DatasetSpec]:
    """All specs in paper order, optionally filtered."""
    for spec in _SPECS:
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


def specs_for_selection(names: Iterable[str] | None) -> list[DatasetSpec]:
    """The sets a task selection covers, in paper order, without duplicates.

    Accepts what lm-eval's `--tasks` accepts for this suite: set keys (`cmeee`), task names
    (`taiyi_cmeee`), group names (`taiyibench_zh`) and shell-style patterns (`taiyi_*`), alone or
    comma-separated. None or empty selects every set. An unknown name is a `KeyError` listing
    what is known.
    """
    import fnmatch

    items = [item.strip() for chunk in (names or []) for item in chunk.split(",") if item.strip()]
    if not items:
        return list(_SPECS)
    chosen: set[str] = set()
    for item in items:
        if item in GROUP_FILTERS:
            chosen.update(spec.key for spec in iter_specs(**GROUP_FILTERS[item]))
        elif any(ch in item for ch in "*?["):
            matched = [spec.key for spec in _SPECS if fnmatch.fnmatchcase(spec.task_name, item)]
            if not matched:
                raise KeyError(f"task pattern {item!r} matches no taiyi_* task")
            chosen.update(matched)
        else:
            chosen.add(get_spec(item).key)
    return [spec for spec in _SPECS if spec.key in chosen]
