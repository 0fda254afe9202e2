"""Corrupted files, one family of faults per format: each raises DataFormatError naming the file,
the line or record, and what was expected. Nothing is repaired or dropped silently."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import time
from contextlib import redirect_stdout

import pytest

from taiyi_bench.harness.apps.cli import main as taiyi_main
from taiyi_bench.harness.apps.data_check import check_data_dir
from taiyi_bench.harness.errors import DataFormatError, DataNotFoundError
from taiyi_bench.harness.loading import load_split
from taiyi_bench.harness.paths import SAMPLES_DIR
from taiyi_bench.harness.readers import (
    read_cmeee,
    read_cmeie,
    read_cmeie_schemas,
    read_hoc,
    read_iob,
    read_kuake_qic,
    read_litcovid,
    read_medqa,
    read_pubmedqa,
    read_pubtator_cdr,
)
from taiyi_bench.harness.registry import get_spec


def fails(reader, path, *args, where: str, expected: str = "", named=None):
    """Run `reader(path, ...)`; it must raise DataFormatError naming the file (`named`, default `path`),
    `where` (line or record) and `expected`."""
    with pytest.raises(DataFormatError) as info:
        reader(path, *args)
    message = str(info.value)
    assert message.startswith(f"{named or path}, ") and where in message, message
    assert expected in message, message
    return message


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- IOB
CHEM = get_spec("bc5cdr_chem")


def test_iob_valid_multi_token_entities(tmp_path):
    path = write(tmp_path, "ok.tsv", "Low\tO\ndose\tO\nsodium\tB-Chemical\nchloride\tI-Chemical\n\nNo\tO\nentity\tO\n")
    first, second = read_iob(path, CHEM, "test")
    assert first.id == "test-0" and first.text == "Low dose sodium chloride"
    assert [(e.mention, e.start, e.end) for e in first.entities] == [("sodium chloride", 9, 24)]
    assert second.entities == [] and second.meta["line"] == 6


def test_iob_orphan_inside_tag(tmp_path):
    path = write(tmp_path, "orphan.tsv", "The\tO\nsalt\tO\n\nA\tO\nbad\tO\nstart\tI-Chemical\n")
    fails(read_iob, path, CHEM, "test", where="line 6", expected="'I-Chemical' only inside")


def test_iob_inside_tag_after_other_type(tmp_path):
    spec = dataclasses.replace(CHEM, labels=("Chemical", "Disease"))
    path = write(tmp_path, "switch.tsv", "lithium\tB-Chemical\ntoxicity\tI-Disease\n")
    fails(read_iob, path, spec, "test", where="line 2", expected="'I-Disease' only inside")


def test_iob_wrong_column_count(tmp_path):
    path = write(tmp_path, "cols.tsv", "a\tO\nb O\n")
    fails(read_iob, path, CHEM, "test", where="line 2", expected="2 tab-separated columns")


def test_iob_unknown_tag(tmp_path):
    path = write(tmp_path, "tag.tsv", "aspirin\tB-Drug\n")
    fails(read_iob, path, CHEM, "test", where="line 1", expected="a tag in")


# ---------------------------------------------------------------- PubTator
CDR = get_spec("bc5cdr_re")
DOC = (
    "1|t|Lithium toxicity.\n"
    "1|a|Polyuria followed lithium.\n"
    "1\t0\t7\tLithium\tChemical\tD1\n"
    "1\t18\t26\tPolyuria\tDisease\tD2\n"
    "1\tCID\tD1\tD2\n"
)


def test_pubtator_valid(tmp_path):
    (example,) = read_pubtator_cdr(write(tmp_path, "ok.txt", DOC), CDR, "test")
    assert example.text == "Lithium toxicity. Polyuria followed lithium."
    assert example.concept_mentions == {"D1": ["Lithium"], "D2": ["Polyuria"]}


@pytest.mark.parametrize(
    "bad_line,where,expected",
    [
        ("1\t0\t6\tLithium\tChemical\tD1", "line 3", "text[0:6] == 'Lithium'"),  # mention differs from offsets
        ("1\t40\t99\tLithium\tChemical\tD1", "line 3", "0 <= start < end <= 44"),  # outside the text
        ("1\t0\t7\tLithium\tChemical", "line 3", "6 or 7 tab-separated columns"),  # wrong column count
        ("1\t0\t7\tLithium\tDrug\tD1", "line 3", "a mention type in"),
        ("1\tx\t7\tLithium\tChemical\tD1", "line 3", "integer start and end"),
        ("2\t0\t7\tLithium\tChemical\tD1", "line 3", "an annotation of document 1"),
    ],
)
def test_pubtator_bad_mention(tmp_path, bad_line, where, expected):
    lines = DOC.splitlines()
    lines[2] = bad_line
    fails(read_pubtator_cdr, write(tmp_path, "bad.txt", "\n".join(lines) + "\n"), CDR, "test", where=where, expected=expected)


def test_pubtator_relation_to_unmentioned_concept(tmp_path):
    path = write(tmp_path, "rel.txt", DOC.replace("1\tCID\tD1\tD2", "1\tCID\tD1\tD9"))
    fails(read_pubtator_cdr, path, CDR, "test", where="line 5", expected="D9 to be a Disease concept mentioned")


def test_pubtator_duplicate_document_and_missing_abstract(tmp_path):
    fails(read_pubtator_cdr, write(tmp_path, "dup.txt", DOC + "\n" + DOC), CDR, "test", where="line 7", expected="unique ids")
    path = write(tmp_path, "noabs.txt", "1|t|Title only.\n1\t0\t5\tTitle\tChemical\tD1\n")
    fails(read_pubtator_cdr, path, CDR, "test", where="line 2", expected="abstract line before annotations")


# ---------------------------------------------------------------- CMeEE
CMEEE = get_spec("cmeee")


def cmeee_file(tmp_path, entities, text="患者发热伴咳嗽。"):
    return write(tmp_path, "CMeEE-V2_dev.json", json.dumps([{"text": "无", "entities": []}, {"text": text, "entities": entities}],
                                                          ensure_ascii=False, indent=2))


def test_cmeee_v1_inclusive_end_is_rejected(tmp_path):
    path = cmeee_file(tmp_path, [{"start_idx": 2, "end_idx": 3, "type": "sym", "entity": "发热"}])
    fails(read_cmeee, path, CMEEE, "dev", where="record 1 (0-based), entity 0", expected="text[2:3] == '发热'")


def test_cmeee_offsets_outside_and_unknown_type(tmp_path):
    path = cmeee_file(tmp_path, [{"start_idx": 5, "end_idx": 30, "type": "sym", "entity": "咳嗽"}])
    fails(read_cmeee, path, CMEEE, "dev", where="record 1", expected="0 <= start < end <= 8")
    path = cmeee_file(tmp_path, [{"start_idx": 2, "end_idx": 4, "type": "symptom", "entity": "发热"}])
    fails(read_cmeee, path, CMEEE, "dev", where="record 1", expected="an entity type in")


def test_cmeee_truncated_and_unlabelled(tmp_path):
    text = json.dumps([{"text": "发热", "entities": []}] * 3, ensure_ascii=False, indent=2)
    path = write(tmp_path, "trunc.json", text[: len(text) // 2])
    fails(read_cmeee, path, CMEEE, "dev", where="line ", expected="valid JSON")
    path = write(tmp_path, "test.json", json.dumps([{"text": "发热"}], ensure_ascii=False))
    fails(read_cmeee, path, CMEEE, "dev", where="record 0", expected="field 'entities'")


# ---------------------------------------------------------------- CMeIE
CMEIE = get_spec("cmeie")
SPO = {"Combined": False, "predicate": "临床表现", "subject": "麻疹", "subject_type": "疾病",
       "object": {"@value": "发热"}, "object_type": {"@value": "症状"}}


def cmeie_line(**changes):
    return json.dumps({"text": "麻疹@麻疹表现为发热。", "spo_list": [{**SPO, **changes}]}, ensure_ascii=False)


def test_cmeie_valid(tmp_path):
    (example,) = read_cmeie(write(tmp_path, "ok.jsonl", cmeie_line() + "\n"), CMEIE, "dev")
    assert example.id == "dev-0" and [(r.head, r.relation, r.tail, r.tail_type) for r in example.relations] == [
        ("麻疹", "临床表现", "发热", "症状")]


def test_cmeie_errors(tmp_path):
    path = write(tmp_path, "a.jsonl", cmeie_line() + "\n" + cmeie_line(predicate="治愈") + "\n")
    fails(read_cmeie, path, CMEIE, "dev", where="line 2, spo 0", expected="a predicate of the 44")
    path = write(tmp_path, "b.jsonl", cmeie_line() + "\n" + cmeie_line()[:30] + "\n")
    fails(read_cmeie, path, CMEIE, "dev", where="line 2", expected="one JSON object per line")
    path = write(tmp_path, "c.jsonl", cmeie_line(object={"value": "发热"}) + "\n")
    fails(read_cmeie, path, CMEIE, "dev", where="line 1, spo 0", expected="non-empty subject and object")


def test_cmeie_schemas(tmp_path):
    good = '# direction: 0: 双向关系； 1: 单向关系\n[\n{"subject_type":"疾病","predicate":"预防","object_type":"其他","direction":"1"}\n]\n'
    assert read_cmeie_schemas(write(tmp_path, "53_schemas.json", good)) == (("疾病", "预防", "其他", "1"),)
    bad = good.replace('"direction":"1"}', '"direction":"1"')
    fails(read_cmeie_schemas, write(tmp_path, "bad_schemas.json", bad), where="line 4", expected="valid JSON")
    odd = good.replace('"direction":"1"', '"direction":"2"')
    fails(read_cmeie_schemas, write(tmp_path, "odd_schemas.json", odd), where="record 0", expected="direction '0'")


# ---------------------------------------------------------------- KUAKE-QIC
KUAKE = get_spec("kuake_qic")


def test_kuake_errors(tmp_path):
    def run(records, where, expected):
        path = write(tmp_path, "KUAKE-QIC_dev.json", json.dumps(records, ensure_ascii=False))
        fails(read_kuake_qic, path, KUAKE, "dev", where=where, expected=expected)

    ok = {"id": "s1", "query": "发烧怎么办", "label": "治疗方案"}
    run([ok, {"id": "s2", "query": "你好"}], "record 1", "the unlabelled CBLUE test file is not an evaluation split")
    run([ok, {"id": "s2", "query": "你好", "label": "闲聊"}], "record 1", "a label in")
    run([ok, {**ok}], "record 1", "duplicate id 's1'")
    path = write(tmp_path, "trunc.json", json.dumps([ok, ok], ensure_ascii=False)[:-5])
    fails(read_kuake_qic, path, KUAKE, "dev", where="line 1", expected="valid JSON")


# ---------------------------------------------------------------- LitCovid
LITCOVID = get_spec("litcovid")
CSV_HEADER = "pmid,journal,title,abstract,keywords,pub_type,authors,doi,label\n"


def test_litcovid_csv_and_tsv(tmp_path):
    csv_text = CSV_HEADER + '1,J,"Title, with comma","Abstract ""quoted"".",k,Journal Article,A,10/1,Treatment;Diagnosis\n'
    (example,) = read_litcovid(write(tmp_path, "BC7-LitCovid-Test-GS.csv", csv_text), LITCOVID, "test")
    assert example.text == 'Title, with comma Abstract "quoted".' and example.labels == ["Treatment", "Diagnosis"]
    tsv = "pmid\ttext\tlabels\n7\tSome text\tMechanism\n"
    assert read_litcovid(write(tmp_path, "test.tsv", tsv), LITCOVID, "test")[0].labels == ["Mechanism"]


@pytest.mark.parametrize(
    "row,where,expected",
    [
        ("2,J,T,A,k,p,a,d,Treatment;Vaccines\n", "line 3", "a label in"),
        ("2,J,T,A,k,p,a,d\n", "line 3", "9 columns as in the header"),
        ("1,J,T,A,k,p,a,d,Treatment\n", "line 3", "duplicate id '1'"),
        ('2,J,"T\nmultiline",A,k,p,a,d,Cure\n', "line 3", "a label in"),  # a record's first line is named
    ],
)
def test_litcovid_errors(tmp_path, row, where, expected):
    text = CSV_HEADER + "1,J,T,A,k,p,a,d,Treatment\n" + row
    fails(read_litcovid, write(tmp_path, "BC7-LitCovid-Dev.csv", text), LITCOVID, "dev", where=where, expected=expected)


def test_litcovid_bad_header(tmp_path):
    path = write(tmp_path, "test.tsv", "id\tabstract\ttopics\n1\tx\tTreatment\n")
    fails(read_litcovid, path, LITCOVID, "test", where="line 1", expected="a header with columns")


# ---------------------------------------------------------------- HoC
HOC = get_spec("hoc")
FLAGS = ",".join(f"{i}_0" for i in range(10))


def test_hoc_valid(tmp_path):
    flags = FLAGS.replace("2_0", "2_1").replace("9_0", "9_1")
    path = write(tmp_path, "test.tsv", f"labels\tsentence\tindex\n{flags}\t\" Quoted \" text .\t123_s0\n{FLAGS}\tNone .\t123_s1\n")
    first, second = read_hoc(path, HOC, "test")
    assert first.labels == ["cellular energetics", "tumor promoting inflammation"] and first.text.startswith('" Quoted "')
    assert second.labels == [] and second.meta["pmid"] == "123"


@pytest.mark.parametrize(
    "line,where,expected",
    [
        (f"{FLAGS},10_0\tS .\t1_s1", "line 3", "10 comma-separated flags"),
        (f"{FLAGS.replace('3_0', '3_2')}\tS .\t1_s1", "line 3", "'3_2' at position 3"),
        (f"{FLAGS}\tS .", "line 3", "3 tab-separated columns"),
        (f"{FLAGS}\tS .\t1_s0", "line 3", "duplicate id '1_s0'"),
    ],
)
def test_hoc_errors(tmp_path, line, where, expected):
    path = write(tmp_path, "dev.tsv", f"labels\tsentence\tindex\n{FLAGS}\tFirst .\t1_s0\n{line}\n")
    fails(read_hoc, path, HOC, "dev", where=where, expected=expected)


def test_hoc_header(tmp_path):
    fails(read_hoc, write(tmp_path, "train.tsv", f"{FLAGS}\tS .\t1_s0\n"), HOC, "train", where="line 1", expected="the header")


# ---------------------------------------------------------------- PubMedQA
PUBMEDQA = get_spec("pubmedqa")


def pubmedqa_files(tmp_path, truth=None, **record_changes):
    record = {"QUESTION": "Q?", "CONTEXTS": ["c1", "c2"], "LABELS": ["A", "B"], "final_decision": "yes", "LONG_ANSWER": "L"}
    records = {"11": {**record, **record_changes}, "22": {**record, "final_decision": "no"}}
    ori = write(tmp_path, "PubMedQA/ori_pqal.json", json.dumps(records, indent=4))
    write(tmp_path, "PubMedQA/test_ground_truth.json", json.dumps(truth if truth is not None else {"11": "yes"}))
    return ori


def test_pubmedqa_valid(tmp_path):
    ori = pubmedqa_files(tmp_path)
    (test,) = read_pubmedqa(ori, PUBMEDQA, "test")
    (train,) = read_pubmedqa(ori, PUBMEDQA, "train")
    assert (test.id, test.answer, test.options[test.answer]) == ("11", "A", "yes")
    assert (train.id, train.answer, train.contexts) == ("22", "B", ["c1", "c2"])


def test_pubmedqa_errors(tmp_path):
    # A disagreement is reported in the ground-truth file, which holds the offending label.
    truth = tmp_path / "PubMedQA" / "test_ground_truth.json"
    ori = pubmedqa_files(tmp_path, truth={"11": "no"})
    fails(read_pubmedqa, ori, PUBMEDQA, "test", where="document 11", expected="the label of ori_pqal.json ('yes')", named=truth)
    ori = pubmedqa_files(tmp_path, truth={"33": "yes"})
    fails(read_pubmedqa, ori, PUBMEDQA, "test", where="document 33", expected="PMID 33 to be in ori_pqal.json", named=truth)
    ori = pubmedqa_files(tmp_path, final_decision="perhaps")
    fails(read_pubmedqa, ori, PUBMEDQA, "test", where="document 11", expected="final_decision in")
    ori = pubmedqa_files(tmp_path)
    ori.write_text(ori.read_text().replace('"22": {', '"11": {'))  # json.loads alone would keep one silently
    fails(read_pubmedqa, ori, PUBMEDQA, "test", where="key '11'", expected="unique keys")
    ori = pubmedqa_files(tmp_path)
    ori.write_text(ori.read_text()[:-20])
    fails(read_pubmedqa, ori, PUBMEDQA, "test", where="line ", expected="valid JSON")


# ---------------------------------------------------------------- MedQA
USMLE = get_spec("medqa_usmle")
ROW = {"question": "Q?", "answer": "Two", "options": {"A": "One", "B": "Two", "C": "Three", "D": "Four"},
       "meta_info": "step1", "answer_idx": "B"}


@pytest.mark.parametrize(
    "changes,expected",
    [
        ({"answer": "Three"}, "answer == options['B']"),
        ({"answer_idx": "E"}, "answer_idx in"),
        ({"options": {**ROW["options"], "E": "Five"}}, "options ['A', 'B', 'C', 'D']"),
        ({"question": None}, "'question' of type str"),
    ],
)
def test_medqa_errors(tmp_path, changes, expected):
    path = write(tmp_path, "phrases_no_exclude_test.jsonl", json.dumps(ROW) + "\n" + json.dumps({**ROW, **changes}) + "\n")
    fails(read_medqa, path, USMLE, "test", where="line 2", expected=expected)


def test_medqa_truncated_and_ids(tmp_path):
    path = write(tmp_path, "t.jsonl", json.dumps(ROW) + "\n\n" + json.dumps(ROW) + "\n")
    assert [ex.id for ex in read_medqa(path, USMLE, "test")] == ["test-0", "test-2"]  # id = 0-based line index
    path = write(tmp_path, "u.jsonl", json.dumps(ROW) + "\n" + json.dumps(ROW)[:-9] + "\n")
    fails(read_medqa, path, USMLE, "test", where="line 2", expected="one JSON object per line")


def test_utf8_required(tmp_path):
    path = tmp_path / "latin1.tsv"
    path.write_bytes("caf\xe9\tO\n".encode("latin-1"))
    fails(read_iob, path, CHEM, "test", where="line 1", expected="UTF-8 text")


# ---------------------------------------------------------------- load_split
def test_missing_file_names_path_and_source(tmp_path):
    (tmp_path / "BC5CDR-Chem").mkdir()
    with pytest.raises(DataNotFoundError) as info:
        load_split("bc5cdr_chem", data_dir=tmp_path)
    message = str(info.value)
    assert str(tmp_path / "BC5CDR-Chem" / "test.tsv") in message and "MTL-Bioinformatics-2016" in message
    with pytest.raises(DataNotFoundError, match="does not exist"):
        load_split("bc5cdr_chem", data_dir=tmp_path / "nowhere")
    with pytest.raises(DataNotFoundError, match="none of .*BC7-LitCovid-Test-GS.csv.*test.tsv"):
        load_split("litcovid", data_dir=tmp_path)


def test_env_data_dir_is_used_without_fallback(tmp_path, monkeypatch):
    monkeypatch.setenv("TAIYI_DATA_DIR", str(tmp_path))
    with pytest.raises(DataNotFoundError):
        load_split("hoc")


def test_unknown_split_and_option_count(tmp_path):
    with pytest.raises(KeyError, match="no split 'test'"):
        load_split("cmeee", "test", tmp_path)
    with pytest.raises(ValueError, match="4 or 5"):
        load_split("medqa_mcmle", mcmle_options=3)


def test_cache_notices_changed_file(tmp_path):
    folder = tmp_path / "NCBI-disease"
    folder.mkdir()
    path = folder / "test.tsv"
    path.write_text("cancer\tB-Disease\n")
    assert len(load_split("ncbi_disease", data_dir=tmp_path)) == 1
    assert load_split("ncbi_disease", data_dir=tmp_path).examples[0] is load_split("ncbi_disease", data_dir=tmp_path).examples[0]
    path.write_text("cancer\tB-Disease\n\ngout\tB-Disease\n")
    stamp = time.time() + 5
    os.utime(path, (stamp, stamp))
    assert len(load_split("ncbi_disease", data_dir=tmp_path)) == 2


# ---------------------------------------------------------------- taiyi data check
def test_data_check_flags_mismatch_and_format_error(tmp_path):
    # A HoC folder holding the (team-written) sample files: counts differ from the registry.
    (tmp_path / "HoC").mkdir()
    for name in ("train.tsv", "dev.tsv", "test.tsv"):
        (tmp_path / "HoC" / name).write_bytes((SAMPLES_DIR / "HoC" / name).read_bytes())
    (tmp_path / "KUAKE-QIC").mkdir()
    (tmp_path / "KUAKE-QIC" / "KUAKE-QIC_dev.json").write_text('[{"id": "s1", "query": "q", "label": "闲聊"}]', encoding="utf-8")
    report = check_data_dir(tmp_path)
    by_key = {s.spec.key: s for s in report.sets}
    assert by_key["hoc"].status == "mismatch" and by_key["kuake_qic"].status == "error"
    assert any("units 24 != expected 3547" in p for r in by_key["hoc"].splits for p in r.problems)
    assert report.exit_code() == 1
    out = io.StringIO()
    with redirect_stdout(out):
        assert taiyi_main(["data", "check", str(tmp_path), "--json", str(tmp_path / "report.json")]) == 1
    assert "FAILED: HoC, KUAKE-QIC" in out.getvalue()
    saved = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert {s["key"]: s["status"] for s in saved["sets"]}["hoc"] == "mismatch"
    with redirect_stdout(io.StringIO()):
        assert taiyi_main(["data", "check", str(tmp_path / "absent")]) == 2
        assert taiyi_main(["data"]) == 2
