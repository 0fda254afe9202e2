"""The bundled samples: the committed files are the source; they are the files the registry names,
load with the official readers, keep what the official files guarantee, and cover the hard cases."""

from __future__ import annotations

import io
import re
from collections import Counter
from contextlib import redirect_stdout

import pytest

from taiyi_bench.harness.apps.cli import main as taiyi_main
from taiyi_bench.harness.apps.data_check import check_data_dir
from taiyi_bench.harness.loading import available_splits, load_split
from taiyi_bench.harness.paths import SAMPLES_DIR
from taiyi_bench.harness.readers.cblue import read_cmeie_schemas
from taiyi_bench.harness.registry import (
    CMEIE_SCHEMAS,
    KUAKE_QIC_INTENTS,
    LITCOVID_TOPICS,
    REGISTRY,
    iter_specs,
)

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


def test_sample_files_are_the_files_the_registry_names():
    """Folder and file names come from the registry (`data_subdir`, `files` of every form): a
    sample file no form names would never be read."""
    named = {f"{spec.data_subdir}/{name}" for spec in iter_specs() for _, form in spec.forms()
             for names in form.files.values() for name in ((names,) if isinstance(names, str) else names)}
    shipped = {p.relative_to(SAMPLES_DIR).as_posix() for p in SAMPLES_DIR.rglob("*") if p.is_file() and p.name != "README.md"}
    # 53_schemas.json ships as in the CBLUE release; no split reads it (checked below against the registry).
    assert shipped - named == {"CMeIE-V2/53_schemas.json"}
    for spec in iter_specs():
        assert (SAMPLES_DIR / spec.data_subdir).is_dir(), spec.key


def test_cmeie_schemas_file_is_the_registry_s():
    assert read_cmeie_schemas(SAMPLES_DIR / "CMeIE-V2" / "53_schemas.json") == CMEIE_SCHEMAS


def test_every_set_ships_train_and_eval_split(samples):
    for key, name, _ in VARIANTS:
        splits = {split for (k, o, split) in samples if (k, o) == (key, name)}
        spec = samples[key, name, next(iter(splits))].spec
        assert {"train", spec.eval_split} <= splits, key


def test_samples_load_cleanly(samples):
    for (key, _, split), loaded in samples.items():
        assert loaded.source == "samples"
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
    depth = max(sum(b.start <= a.start and a.end <= b.end for b in ex.entities) for ex in cmeee for a in ex.entities)
    assert depth == 3  # three levels of nesting
    assert {e.type for ex in samples["cmeee", "", "dev"].examples for e in ex.entities} == set(samples["cmeee", "", "dev"].spec.labels)
    assert any(not ex.entities for ex in samples["cmeee", "", "dev"].examples)
    ncbi = [ex for split in ("train", "dev", "test") for ex in samples["ncbi_disease", "", split].examples]
    assert any(" and " in e.mention for ex in ncbi for e in ex.entities)  # a composite disease mention
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
    pubtator_lines = [line for path in (SAMPLES_DIR / "BC5CDR-CDR-RE").glob("*.txt") for line in path.read_text("utf-8").splitlines()]
    assert any(line.count("\t") == 6 and line.endswith("\t") for line in pubtator_lines)  # an empty 7th column
    # The IOB files are the same abstracts split into sentences, as in the official data: the same
    # mentions in the same order (IOB files space their tokens apart).
    for split in ("train", "dev", "test"):
        for key, kind in (("bc5cdr_chem", "Chemical"), ("bc5cdr_dise", "Disease")):
            iob = [e.mention.replace(" ", "") for ex in samples[key, "", split].examples for e in ex.entities]
            pubtator = [e.mention.replace(" ", "") for ex in samples["bc5cdr_re", "", split].examples
                        for e in sorted(ex.entities, key=lambda e: e.start) if e.type == kind]
            assert iob == pubtator, (key, split)


def test_identifiers_are_synthetic(samples):
    """No real PMID, MeSH id or DOI: PMIDs 99xxxxxx, concept ids D90/D95/C90xxxx, DOIs 10.99999/."""
    for split in ("train", "dev", "test"):
        for ex in samples["bc5cdr_re", "", split].examples:
            assert ex.id.startswith("99") and len(ex.id) == 8
            assert all(re.fullmatch(r"D9[05]\d{4}|C90\d{4}|-1", c) for e in ex.entities for c in e.concept_ids), ex.id
        assert all(ex.id.startswith("99") and ex.meta["doi"].startswith("10.99999/") for ex in samples["litcovid", "", split].examples)
        assert all(ex.meta["pmid"].startswith("99") for ex in samples["hoc", "", split].examples)
    assert all(ex.id.startswith("99") for split in ("train", "test") for ex in samples["pubmedqa", "", split].examples)


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
    assert {c for ex in cmeie for c in ex.meta["combined"]} == {True, False}
    signatures = set(samples["cmeie", "", "dev"].spec.relation_signatures)
    for ex in cmeie + samples["cmeie", "", "train"].examples:
        for r in ex.relations:
            assert (r.head_type, r.relation, r.tail_type) in signatures and r.head in ex.text and r.tail in ex.text, (ex.id, r)
    assert any("," in ex.text for ex in litcovid)  # fields the CSV must quote


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
            # The official 4-option file drops one distractor and re-letters the rest, in order.
            kept = list(b.options.values())
            assert any(kept[:i] + kept[i + 1:] == list(a.options.values()) for i in range(5) if i != "ABCDE".index(b.answer))
    assert set(Counter(ex.answer for ex in samples["medqa_mcmle", "", "test"].examples)) == set("ABCD")
    assert set(Counter(ex.answer for ex in samples["medqa_mcmle", "5 options", "test"].examples)) == set("ABCDE")
    assert set(Counter(ex.answer for ex in samples["medqa_usmle", "", "test"].examples)) == set("ABCD")
    assert {ex.meta["meta_info"] for ex in samples["medqa_usmle", "", "test"].examples} == {"step1", "step2&3"}


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
