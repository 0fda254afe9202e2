"""The readers on the real data (../shared/data): every published count of the sets, exactly.

Each real split is loaded once per module (load_split's cache makes repeats free).
"""

from __future__ import annotations

import io
import json
from collections import Counter
from contextlib import redirect_stdout

import pytest

from taiyi_bench.harness.apps.cli import main as taiyi_main
from taiyi_bench.harness.apps.data_check import check_data_dir
from taiyi_bench.harness.loading import available_splits, compare_counts, load_split, observed_counts
from taiyi_bench.harness.readers import read_cmeie_schemas
from taiyi_bench.harness.registry import (
    CMEIE_PREDICATES,
    CMEIE_SCHEMAS,
    HOC_HALLMARKS,
    PAPER_SETS,
    REGISTRY,
    get_spec,
    iter_specs,
)

# (set, split, mcmle options) -> (units, gold) written out from the data sets' documentation, independent of
# the registry so that a registry typo cannot hide a reader bug.
COUNTS = {
    ("bc5cdr_chem", "train", 4): (4560, 5203), ("bc5cdr_chem", "dev", 4): (4581, 5347), ("bc5cdr_chem", "test", 4): (4797, 5385),
    ("bc5cdr_dise", "train", 4): (4560, 4182), ("bc5cdr_dise", "dev", 4): (4581, 4246), ("bc5cdr_dise", "test", 4): (4797, 4424),
    ("ncbi_disease", "train", 4): (5424, 5134), ("ncbi_disease", "dev", 4): (923, 787), ("ncbi_disease", "test", 4): (940, 960),
    ("cmeee", "dev", 4): (5000, 26081),
    ("bc5cdr_re", "train", 4): (500, 1038), ("bc5cdr_re", "dev", 4): (500, 1012), ("bc5cdr_re", "test", 4): (500, 1066),
    ("cmeie", "dev", 4): (3585, 16309),
    ("litcovid", "test", 4): (2500, None),
    ("hoc", "train", 4): (12119, 3085), ("hoc", "dev", 4): (1798, 461), ("hoc", "test", 4): (3547, 897),
    ("kuake_qic", "train", 4): (6931, None), ("kuake_qic", "dev", 4): (1955, None),
    ("pubmedqa", "train", 4): (500, None), ("pubmedqa", "test", 4): (500, None),
    ("medqa_usmle", "dev", 4): (1272, None), ("medqa_usmle", "test", 4): (1273, None),
    ("medqa_mcmle", "dev", 4): (3425, None), ("medqa_mcmle", "test", 4): (3426, None),
    ("medqa_mcmle", "dev", 5): (3425, None), ("medqa_mcmle", "test", 5): (3426, None),
}
IOB_TOKENS = {("bc5cdr_chem", "test"): 124750, ("bc5cdr_dise", "test"): 124750, ("bc5cdr_chem", "train"): 118170,
              ("bc5cdr_chem", "dev"): 117453, ("ncbi_disease", "train"): 135701, ("ncbi_disease", "dev"): 23969,
              ("ncbi_disease", "test"): 24497}


@pytest.fixture(scope="module")
def real(shared_data_dir):
    """(set, split, options) -> LoadedSplit for every split present in the real data."""
    loaded = {}
    for key, split, options in COUNTS:
        loaded[key, split, options] = load_split(key, split, shared_data_dir, mcmle_options=options)
    return loaded


def test_present_splits_are_exactly_those_of_sources_md(shared_data_dir):
    present = {(spec.key, split) for spec in iter_specs() for split in available_splits(spec.key, shared_data_dir)}
    assert present == {(key, split) for key, split, options in COUNTS if options == 4}
    assert available_splits("medqa_mcmle", shared_data_dir, mcmle_options=5) == ["dev", "test"]
    assert available_splits("chemdner", shared_data_dir) == []


@pytest.mark.parametrize("key,split,options", sorted(COUNTS))
def test_counts(real, key, split, options):
    loaded = real[key, split, options]
    assert loaded.source == "data"
    observed = observed_counts(loaded.spec, loaded.examples)
    units, gold = COUNTS[key, split, options]
    assert observed.units == units
    if gold is not None:
        assert observed.gold == gold
    # ... and the registry (units, gold and per-type/label counts) agrees.
    assert compare_counts(loaded.spec.expected.get(split), observed) == []
    assert len({example.id for example in loaded.examples}) == units


@pytest.mark.parametrize("key,split", sorted(IOB_TOKENS))
def test_iob_tokens_and_offsets(real, key, split):
    examples = real[key, split, 4].examples
    assert sum(len(example.meta["tokens"]) for example in examples) == IOB_TOKENS[key, split]
    for example in examples:
        assert example.text == " ".join(example.meta["tokens"])
        for entity in example.entities:
            assert example.text[entity.start:entity.end] == entity.mention


def test_cmeee_types_nesting_and_every_offset(real):
    examples = real["cmeee", "dev", 4].examples
    assert Counter(e.type for ex in examples for e in ex.entities) == {
        "bod": 7361, "dis": 6328, "sym": 5297, "pro": 3319, "dru": 1566, "ite": 1339, "mic": 621, "equ": 164, "dep": 86}
    for example in examples:
        for entity in example.entities:
            assert example.text[entity.start:entity.end] == entity.mention

    def overlapping(ex):
        spans = [(e.start, e.end) for e in ex.entities]
        return any(a[0] < b[1] and b[0] < a[1] for i, a in enumerate(spans) for b in spans[i + 1:])
    assert sum(overlapping(ex) for ex in examples) == 1722


def test_bc5cdr_mentions_concepts_and_relations(real):
    for split, chemicals, diseases in (("train", 5203, 4182), ("dev", 5347, 4244), ("test", 5385, 4424)):
        examples = real["bc5cdr_re", split, 4].examples
        assert Counter(e.type for ex in examples for e in ex.entities) == {"Chemical": chemicals, "Disease": diseases}
        for example in examples:
            assert example.text == f"{example.meta['title']} {example.text[example.meta['abstract_start']:]}"
            for entity in example.entities:
                assert example.text[entity.start:entity.end] == entity.mention
            for relation in example.relations:
                assert (relation.relation, relation.head_type, relation.tail_type) == ("CID", "Chemical", "Disease")
                assert example.concept_mentions[relation.head] and example.concept_mentions[relation.tail]
            assert "-1" not in example.concept_mentions
    test = {ex.id: ex for ex in real["bc5cdr_re", "test", 4].examples}
    # Composite mention with individual strings: each component gets its own string and the full one.
    assert {"hemorrhagic cystitis", "cystitis"} <= set(test["23949582"].concept_mentions["D003556"])
    assert {"hemorrhagic cystitis", "hemorrhagic"} <= set(test["23949582"].concept_mentions["D006470"])
    assert "cystitis" not in test["23949582"].concept_mentions["D006470"]
    no_concept = sum(e.concept_ids == ("-1",) for split in ("train", "dev", "test")
                     for ex in real["bc5cdr_re", split, 4].examples for e in ex.entities)
    assert no_concept == 226


def test_cmeie_triples_and_schemas(real, shared_data_dir):
    examples = real["cmeie", "dev", 4].examples
    assert sum(sum(ex.meta["combined"]) for ex in examples) == 3074
    assert sum(not ex.relations for ex in examples) == 18
    schemas = read_cmeie_schemas(shared_data_dir / "CMeIE-V2" / "53_schemas.json")
    assert schemas == CMEIE_SCHEMAS and len(schemas) == 53 and len(CMEIE_PREDICATES) == 44
    allowed = {(s, p, o) for s, p, o, _ in schemas}
    assert all((r.head_type, r.relation, r.tail_type) in allowed for ex in examples for r in ex.relations)


def test_kuake_distribution(real):
    assert Counter(ex.labels[0] for ex in real["kuake_qic", "dev", 4].examples) == {
        "治疗方案": 676, "其他": 395, "病情诊断": 288, "疾病表述": 158, "就医建议": 134, "注意事项": 120,
        "医疗费用": 50, "后果表述": 45, "指标解读": 32, "病因分析": 29, "功效作用": 28}
    assert all(len(ex.labels) == 1 for ex in real["kuake_qic", "train", 4].examples)


def test_litcovid_labels(real):
    examples = real["litcovid", "test", 4].examples
    assert Counter(label for ex in examples for label in ex.labels) == {
        "Treatment": 1035, "Prevention": 926, "Diagnosis": 722, "Mechanism": 567, "Case Report": 197,
        "Transmission": 128, "Epidemic Forecasting": 41}
    assert all(ex.labels for ex in examples)
    assert sum(len(ex.labels) > 1 for ex in examples) > 0


def test_hoc_sentences_and_abstracts(real):
    for split, units, labelled, abstracts in (("train", 12119, 3085, 1295), ("dev", 1798, 461, 186), ("test", 3547, 897, 371)):
        examples = real["hoc", split, 4].examples
        assert (len(examples), sum(bool(ex.labels) for ex in examples)) == (units, labelled)
        assert len({ex.meta["pmid"] for ex in examples}) == abstracts
        assert all(set(ex.labels) <= set(HOC_HALLMARKS) for ex in examples)
    # Bare double quotes survive (no CSV quoting in BLURB's TSV).
    assert any('" Slow progressor "' in ex.text for ex in real["hoc", "test", 4].examples)


def test_pubmedqa_split_and_answers(real, shared_data_dir):
    test, train = real["pubmedqa", "test", 4].examples, real["pubmedqa", "train", 4].examples
    truth = json.loads((shared_data_dir / "PubMedQA" / "test_ground_truth.json").read_text())
    # The 500 PMIDs of the ground truth, in ori_pqal.json order (the ground-truth file groups them by label).
    order = list(json.loads((shared_data_dir / "PubMedQA" / "ori_pqal.json").read_text()))
    assert [ex.id for ex in test] == [pmid for pmid in order if pmid in truth]
    assert not {ex.id for ex in test} & {ex.id for ex in train} and len(test) + len(train) == 1000
    assert Counter(ex.meta["final_decision"] for ex in test) == {"yes": 276, "no": 169, "maybe": 55}
    for ex in test + train:
        assert ex.options == {"A": "yes", "B": "no", "C": "maybe"}
        assert ex.options[ex.answer] == ex.meta["final_decision"]
        assert ex.question and ex.contexts


def test_medqa_letters_and_steps(real):
    test = real["medqa_usmle", "test", 4].examples
    assert Counter(ex.answer for ex in test) == {"A": 353, "B": 309, "C": 346, "D": 265}
    assert Counter(ex.meta["meta_info"] for ex in test) == {"step1": 679, "step2&3": 594}
    five = real["medqa_mcmle", "test", 5].examples
    four = real["medqa_mcmle", "test", 4].examples
    assert Counter(ex.answer for ex in five) == {"A": 601, "B": 727, "C": 730, "D": 735, "E": 633}
    assert all(len(ex.options) == 5 for ex in five) and all(len(ex.options) == 4 for ex in four)
    # Same questions, same gold answer text; letters re-assigned in the 4-option files.
    for a, b in zip(four, five, strict=True):
        assert a.question == b.question and a.options[a.answer] == b.options[b.answer]
    for ex in test + four + five:
        assert ex.options[ex.answer] == ex.meta["answer_text"]


def test_data_check_real(shared_data_dir):
    report = check_data_dir(shared_data_dir)
    found = [s.spec.key for s in report.sets if s.found]
    # The data at hand: every set of the paper but CHEMDNER (a set registered since may be absent too).
    assert set(PAPER_SETS) - set(found) == {"chemdner"}
    assert not any(s.failed for s in report.sets)
    chemdner = next(s for s in report.sets if s.spec.key == "chemdner")
    assert chemdner.status == "missing"
    eval_reports = [r for s in report.sets for r in s.splits if r.status not in ("missing",)]
    assert all(r.status == "ok" for r in eval_reports)
    assert report.exit_code() == 0 and report.exit_code(strict=True) == 1

    out = io.StringIO()
    with redirect_stdout(out):
        code = taiyi_main(["data", "check", str(shared_data_dir)])
    text = out.getvalue()
    assert code == 0
    assert f"{len(found)}/{len(REGISTRY)} sets found" in text and "missing: CHEMDNER" in text
    assert get_spec("chemdner").how_to_get.split(" (")[0] in text.replace("\n", " ")
    with redirect_stdout(io.StringIO()):
        assert taiyi_main(["data", "check", str(shared_data_dir), "--strict"]) == 1


def test_data_check_names_a_file_whose_counts_match_but_bytes_differ(shared_data_dir, tmp_path):
    """One query edited in the real KUAKE-QIC dev file: every count still matches the registry,
    only the checksum tells. `data check` says so (the file, both checksums) and fails."""
    folder = tmp_path / "KUAKE-QIC"
    folder.mkdir()
    for name in ("KUAKE-QIC_train.json", "KUAKE-QIC_dev.json"):
        (folder / name).write_bytes((shared_data_dir / "KUAKE-QIC" / name).read_bytes())
    dev = folder / "KUAKE-QIC_dev.json"
    records = json.loads(dev.read_text(encoding="utf-8"))
    records[0]["query"] = records[0]["query"].replace("心肌缺血", "心肌梗死")
    dev.write_text(json.dumps(records, ensure_ascii=False, indent=2), encoding="utf-8")

    report = check_data_dir(tmp_path)
    kuake = next(s for s in report.sets if s.spec.key == "kuake_qic")
    statuses = {r.split: r.status for r in kuake.splits}
    assert statuses == {"train": "ok", "dev": "modified"}, statuses
    assert kuake.status == "modified" and kuake.failed and report.exit_code() == 1

    out = io.StringIO()
    with redirect_stdout(out):
        assert taiyi_main(["data", "check", str(tmp_path)]) == 1
    text = " ".join(out.getvalue().split())
    assert str(dev) in text.replace(" ", "") or "KUAKE-QIC_dev.json: sha256" in text
    assert "modified data" in text and "FAILED: KUAKE-QIC" in text


def test_a_limited_pubmedqa_slice_holds_every_label(shared_data_dir):
    """`test_ground_truth.json` lists its PMIDs grouped by label (all 'yes' first); the test split
    follows `ori_pqal.json` instead, so `--limit 50` is not a one-label slice."""
    from collections import Counter

    examples = load_split("pubmedqa", "test", shared_data_dir).examples
    first = Counter(example.meta["final_decision"] for example in examples[:50])
    assert set(first) == {"yes", "no", "maybe"}
    assert Counter(example.meta["final_decision"] for example in examples) == {"yes": 276, "no": 169, "maybe": 55}
