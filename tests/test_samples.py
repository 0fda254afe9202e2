"""The bundled samples: they equal a fresh build, load with the official readers, and cover the hard cases."""

from __future__ import annotations

import io
from collections import Counter
from contextlib import redirect_stdout

import pytest

from taiyi_bench.harness.apps.cli import main as taiyi_main
from taiyi_bench.harness.apps.data_check import check_data_dir
from taiyi_bench.harness.loading import available_splits, load_split
from taiyi_bench.harness.paths import SAMPLES_DIR
from taiyi_bench.harness.registry import KUAKE_QIC_INTENTS, LITCOVID_TOPICS, REGISTRY, iter_specs
from taiyi_bench.harness.samples.build_samples import build

# Every form of every set: (key, form name, {variant option: value}); the default form is "".
VARIANTS = [(spec.key, name, form.variant_record) for spec in iter_specs() for name, form in spec.forms()]


@pytest.fixture(autouse=True)
def _no_data_dir(monkeypatch):
    monkeypatch.delenv("TAIYI_DATA_DIR", raising=False)


@pytest.fixture(scope="module")
def samples():
    """(set, form name, split) -> LoadedSplit for every shipped split."""
    loaded = {}
    for key, name, options in VARIANTS:
        for split in available_splits(key, None, **options):
            loaded[key, name, split] = load_split(key, split, None, **options)
    return loaded


def _data_files(root):
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and p.suffix not in (".py", ".md", ".pyc")
            and "__pycache__" not in p.parts}


def test_shipped_files_equal_a_fresh_build(tmp_path):
    build(tmp_path)
    built, shipped = _data_files(tmp_path), _data_files(SAMPLES_DIR)
    assert built == shipped
    for name in built:
        assert (tmp_path / name).read_bytes() == (SAMPLES_DIR / name).read_bytes(), f"{name} is stale: run build_samples"


def test_every_set_ships_train_and_eval_split(samples):
    for key, name, _ in VARIANTS:
        splits = {split for (k, o, split) in samples if (k, o) == (key, name)}
        spec = samples[key, name, next(iter(splits))].spec
        assert {"train", spec.eval_split} <= splits, key


def test_samples_load_cleanly(samples):
    for (key, _, split), loaded in samples.items():
        assert loaded.source == "samples" and loaded.is_samples
        assert 5 <= len(loaded) <= 40, (key, split, len(loaded))  # "a few dozen" (CDR: a few abstracts)
        assert len({ex.id for ex in loaded}) == len(loaded)
        for ex in loaded:
            for entity in ex.entities:
                assert ex.text[entity.start:entity.end] == entity.mention, (key, ex.id, entity)
            if loaded.spec.task_type == "qa":
                # MedQA labels are the letters; PubMedQA's are the option texts (yes/no/maybe).
                labels = set(loaded.spec.labels)
                assert ex.options[ex.answer] and labels in (set(ex.options), set(ex.options.values()))


def test_ner_hard_cases(samples):
    cmeee = samples["cmeee", "", "dev"].examples + samples["cmeee", "", "train"].examples
    nested = crossing = 0
    for ex in cmeee:
        spans = [(e.start, e.end) for e in ex.entities]
        for a in spans:
            for b in spans:
                if a != b and a[0] <= b[0] and b[1] <= a[1]:
                    nested += 1
                elif a[0] < b[0] < a[1] < b[1]:
                    crossing += 1
    assert nested >= 10 and crossing == 2
    assert {e.type for ex in samples["cmeee", "", "dev"].examples for e in ex.entities} == set(samples["cmeee", "", "dev"].spec.labels)
    assert any(not ex.entities for ex in samples["cmeee", "", "dev"].examples)
    chemdner = samples["chemdner", "", "train"].examples
    assert any(e.mention == "2 , 4 - dinitrophenol" for ex in chemdner for e in ex.entities)
    for key in ("bc5cdr_chem", "bc5cdr_dise", "ncbi_disease", "chemdner"):
        examples = samples[key, "", "test"].examples
        assert any(len(e.mention.split()) > 1 for ex in examples for e in ex.entities) and any(not ex.entities for ex in examples)


def test_bc5cdr_hard_cases_and_iob_consistency(samples):
    docs = [ex for split in ("train", "dev", "test") for ex in samples["bc5cdr_re", "", split].examples]
    composite = [e for ex in docs for e in ex.entities if len(e.concept_ids) > 1]
    assert composite and any(e.concept_ids == ("-1",) for ex in docs for e in ex.entities)
    assert all("-1" not in ex.concept_mentions for ex in docs)
    assert any(not ex.relations for ex in samples["bc5cdr_re", "", "test"].examples)
    valproate = next(ex for ex in docs if ex.id == "99000303")  # composite with individual strings
    liver, kidney = next(e for e in valproate.entities if e.mention == "liver or kidney injury").concept_ids
    assert {"liver or kidney injury", "liver injury", "Liver injury"} <= set(valproate.concept_mentions[liver])
    assert "kidney injury" not in valproate.concept_mentions[liver]
    arrest = next(ex for ex in docs if ex.id == "99000301")  # composite without the 7th column
    assert all(len(valproate.concept_mentions[c]) >= 1 for c in valproate.concept_mentions)
    heart, lungs = next(e for e in arrest.entities if e.mention == "cardiorespiratory arrest").concept_ids
    assert arrest.concept_mentions[heart] == arrest.concept_mentions[lungs] == ["Cardiorespiratory arrest", "cardiorespiratory arrest"]
    # The IOB files are the same abstracts split into sentences, as in the official data.
    for split in ("train", "dev", "test"):
        pubtator = Counter(e.type for ex in samples["bc5cdr_re", "", split].examples for e in ex.entities)
        assert sum(len(ex.entities) for ex in samples["bc5cdr_chem", "", split].examples) == pubtator["Chemical"]
        assert sum(len(ex.entities) for ex in samples["bc5cdr_dise", "", split].examples) == pubtator["Disease"]


def test_classification_hard_cases(samples):
    hoc = samples["hoc", "", "test"].examples
    assert any(len(ex.labels) > 1 for ex in hoc) and any(not ex.labels for ex in hoc)
    litcovid = samples["litcovid", "", "test"].examples
    assert any(len(ex.labels) > 1 for ex in litcovid)
    assert {label for ex in litcovid for label in ex.labels} == set(LITCOVID_TOPICS)
    assert {ex.labels[0] for ex in samples["kuake_qic", "", "dev"].examples} == set(KUAKE_QIC_INTENTS)
    cmeie = samples["cmeie", "", "dev"].examples
    assert any(len(ex.relations) >= 3 for ex in cmeie) and any(len({r.head for r in ex.relations}) > 1 for ex in cmeie)
    assert any(len(ex.relations) != len(set(ex.relations)) for ex in cmeie)  # a repeated triple, as in the real dev file


def test_qa_hard_cases(samples):
    pubmedqa = samples["pubmedqa", "", "test"].examples
    assert {ex.meta["final_decision"] for ex in pubmedqa} == {"yes", "no", "maybe"}
    assert all(ex.options == {"A": "yes", "B": "no", "C": "maybe"} for ex in pubmedqa)
    assert not {ex.id for ex in pubmedqa} & {ex.id for ex in samples["pubmedqa", "", "train"].examples}
    for split in ("train", "dev", "test"):
        four, five = samples["medqa_mcmle", "", split].examples, samples["medqa_mcmle", "5 options", split].examples
        assert all(len(ex.options) == 4 for ex in four) and all(len(ex.options) == 5 for ex in five)
        for a, b in zip(four, five, strict=True):
            assert a.question == b.question and a.options[a.answer] == b.options[b.answer]
    assert set(Counter(ex.answer for ex in samples["medqa_mcmle", "", "test"].examples)) == set("ABCD")
    assert set(Counter(ex.answer for ex in samples["medqa_mcmle", "5 options", "test"].examples)) == set("ABCDE")
    assert set(Counter(ex.answer for ex in samples["medqa_usmle", "", "test"].examples)) == set("ABCD")


def test_languages(samples):
    for (key, _, _), loaded in samples.items():
        text = "".join(ex.text + ex.question for ex in loaded)
        has_cjk = any("\u4e00" <= ch <= "\u9fff" for ch in text)
        assert has_cjk == (loaded.spec.language == "zh"), key


def test_data_check_on_samples_says_so():
    report = check_data_dir(None)
    assert report.source == "samples" and all(s.found for s in report.sets) and report.exit_code(strict=True) == 0
    out = io.StringIO()
    with redirect_stdout(out):
        assert taiyi_main(["data", "check"]) == 0
    assert "BUNDLED SAMPLES" in out.getvalue() and f"{len(REGISTRY)}/{len(REGISTRY)} sets found" in out.getvalue()
    with redirect_stdout(io.StringIO()) as listing:
        assert taiyi_main(["data", "list"]) == 0
    assert all(spec.task_name in listing.getvalue() for spec in iter_specs())
