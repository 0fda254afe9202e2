"""Output parsers and the normalisation they share with the scorers (taiyi_bench.harness.parsers, taiyi_bench.harness.normalize)."""

from __future__ import annotations

import random
import string

import pytest

from taiyi_bench.harness.normalize import normalize_label, normalize_mention, resolve_label, resolve_type
from taiyi_bench.harness.parsers import parse_output, split_mentions
from taiyi_bench.harness.records import Prediction
from taiyi_bench.harness.registry import CMEEE_TYPES, CMEIE_PREDICATES, get_spec, iter_specs

CHEM = get_spec("bc5cdr_chem")
DISE = get_spec("bc5cdr_dise")
CMEEE = get_spec("cmeee")
CDR = get_spec("bc5cdr_re")
CMEIE = get_spec("cmeie")
HOC = get_spec("hoc")
LITCOVID = get_spec("litcovid")
QIC = get_spec("kuake_qic")
PUBMEDQA = get_spec("pubmedqa")
USMLE = get_spec("medqa_usmle")
MCMLE = get_spec("medqa_mcmle")

US_OPTIONS = {"A": "Aspirin", "B": "Tell the attending", "C": "B cells", "D": "Aspirin and heparin"}
PQA_OPTIONS = {"A": "yes", "B": "no", "C": "maybe"}


def ents(spec, text):
    prediction = parse_output(spec, text)
    assert not prediction.parse_failed, text
    return prediction.entities


# --------------------------------------------------------------------------------------------
# normalisation


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("(famotidine)", "famotidine"),
        ("famotidine)", "famotidine"),
        ("“Famotidine”。", "famotidine"),
        ("  FAMOTIDINE  ", "famotidine"),
        ("**famotidine**", "famotidine"),
        ("(S)-propranolol", "(s)-propranolol"),
        ("[3H]thymidine", "[3h]thymidine"),
        ("IL-2 (interleukin)", "il-2(interleukin)"),
        ("2 , 4 - dinitrophenol", "2,4-dinitrophenol"),
        ("２，４－ＤＮＰ", "2,4-dnp"),  # full-width to half-width
        ("congestive   heart\tfailure", "congestive heart failure"),
        ("肺 癌", "肺癌"),
        ("【肺炎】", "肺炎"),
        ("《内经》", "内经"),
        ("t（8；14）", "t(8;14)"),
        ("<2.0 mg/dL", "<2.0 mg/dl"),  # < is a comparison sign, not a bracket
        ("Kaposi's sarcoma", "kaposi's sarcoma"),
        ("", ""),
        ("...", ""),
    ],
)
def test_normalize_mention(raw, expected):
    assert normalize_mention(raw) == expected


def test_normalize_is_idempotent_on_random_and_real_looking_strings():
    rng = random.Random(7)
    alphabet = string.ascii_letters + string.digits + " ,.;:()[]{}'\"-“”（）【】，。；：、肺癌疾病αβ\t"
    samples = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 25))) for _ in range(2000)]
    samples += ["(S)-(-)-3-bromo-N-[(1-ethyl-2-pyrrolidinyl)methyl]", "不明原因高热（ ≥ 38 ℃ ）", "“双相期"]
    for s in samples:
        once = normalize_mention(s)
        assert normalize_mention(once) == once, s


def test_normalize_label_reads_separators_as_spaces():
    assert normalize_label("Case-Report") == normalize_label("case_report") == normalize_label("Case Report")


def test_type_resolver_uses_registry_names_only():
    assert resolve_type(CHEM, "Chemical") == "Chemical"
    assert resolve_type(CHEM, "chemicals") == "Chemical"
    assert resolve_type(CHEM, "CHEMICAL ENTITIES") == "Chemical"
    assert resolve_type(CHEM, "Here are the chemical entities") == "Chemical"
    # Another set's type of the same language is a benchmark type (wrong type = false positive).
    assert resolve_type(CHEM, "Diseases") == "Disease"
    assert resolve_type(CHEM, "chemicals and diseases") is None  # ambiguous
    assert resolve_type(CHEM, "Gene") is None
    assert resolve_type(CHEM, "Explanation") is None
    for code, name in CMEEE_TYPES.items():
        assert resolve_type(CMEEE, code) == code
        assert resolve_type(CMEEE, code.upper()) == code
        assert resolve_type(CMEEE, name) == code
    assert resolve_type(CMEEE, "身体部位") == "bod"
    assert resolve_type(CMEEE, "检验项目") == "ite"
    assert resolve_type(CMEEE, "医疗") is None  # part of two types
    assert resolve_type(CMEEE, "Chemical") is None  # an English type is no type of a Chinese set


def test_label_resolver():
    for predicate in CMEIE_PREDICATES:
        assert resolve_label(CMEIE, predicate) == predicate
    assert resolve_label(CMEIE, "相关(导致)") == "相关（导致）"
    assert resolve_label(CMEIE, "具有临床表现关系的实体对") == "临床表现"
    assert resolve_label(HOC, "Tumour promoting inflammation") == "tumor promoting inflammation"
    assert resolve_label(HOC, "sustaining proliferative signalling") == "sustaining proliferative signaling"
    assert resolve_label(HOC, "cancer") is None
    assert resolve_label(LITCOVID, "case report") == "Case Report"
    assert resolve_label(QIC, "方案") is None  # no containment for classes


# --------------------------------------------------------------------------------------------
# failures and empty answers, every kind


@pytest.mark.parametrize("spec", list(iter_specs()), ids=lambda s: s.key)
@pytest.mark.parametrize("text", ["", "   \n\t ", None])
def test_empty_output_is_a_parse_failure(spec, text):
    assert parse_output(spec, text) == Prediction(parse_failed=True)


@pytest.mark.parametrize("spec", list(iter_specs()), ids=lambda s: s.key)
def test_garbage_is_a_parse_failure(spec):
    for text in ("I'm sorry, I can't help with that.", "抱歉，我无法回答。", "<think>let me think", "```\n```"):
        prediction = parse_output(spec, text, options=US_OPTIONS if spec.key == "medqa_usmle" else None)
        assert prediction.parse_failed, (spec.key, text)


@pytest.mark.parametrize(
    ("spec", "text"),
    [
        (CHEM, "Chemical: none"),
        (CHEM, "None"),
        (CHEM, "Chemical: N/A"),
        (CHEM, "Chemical: []"),
        (CHEM, "[]"),
        (CMEEE, "疾病：无\n临床表现：没有"),
        (CMEEE, "无"),
        (CDR, "chemical-induced disease: none"),
        (CDR, "None"),
        (CMEIE, "临床表现：无"),
        (HOC, "Result: none"),
        (HOC, "none"),
        (QIC, "上述文本被分类为：无"),
    ],
)
def test_none_is_a_valid_empty_answer(spec, text):
    assert parse_output(spec, text) == Prediction()


@pytest.mark.parametrize("spec", list(iter_specs()), ids=lambda s: s.key)
@pytest.mark.parametrize("text", ["- 无", "1. None", "1、无", "* N/A\n", "- none\n- 无"])
def test_bulleted_or_numbered_none_is_a_valid_empty_answer(spec, text):
    options = US_OPTIONS if spec.task_type == "qa" else None
    assert parse_output(spec, text, options=options) == Prediction(), (spec.key, text)


def test_qa_none_option_text_is_still_that_option():
    options = {"A": "Aspirin", "B": "Heparin", "C": "None of the above"}
    assert parse_output(USMLE, "None of the above", options=options).choice == "C"
    assert parse_output(USMLE, "- None of the above", options=options).choice == "C"


def test_no_and_na_are_not_empty_words():
    # Nitric oxide and sodium.
    assert ents(CHEM, "Chemical: NO; Na") == {("Chemical", "NO"), ("Chemical", "Na")}


@pytest.mark.parametrize("spec", list(iter_specs()), ids=lambda s: s.key)
def test_parser_never_raises_on_random_text(spec):
    rng = random.Random(hash(spec.key) % 1000)
    pieces = ["Chemical", "疾病", ":", "：", ";", "；", ",", "，", "[", "]", "(", ")", "【", "】", "{", "}", '"', "\n",
              "-", "*", "1.", "none", "无", "A", "B.", "answer is", "Result", "临床表现", "->", " ", "x", "肺炎", "```"]
    for _ in range(300):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 40)))
        prediction = parse_output(spec, text, options=US_OPTIONS if spec.task_type == "qa" else None)
        assert isinstance(prediction, Prediction)


# --------------------------------------------------------------------------------------------
# NER


def test_ner_taiyi_format():
    assert ents(CHEM, "Chemical: famotidine; cimetidine") == {("Chemical", "famotidine"), ("Chemical", "cimetidine")}
    assert ents(CMEEE, "疾病：肺炎；哮喘\n临床表现：咳嗽") == {("dis", "肺炎"), ("dis", "哮喘"), ("sym", "咳嗽")}


def test_ner_chinese_colon_and_fullwidth_separator_in_english_task():
    assert ents(CHEM, "Chemical：famotidine；cimetidine") == {("Chemical", "famotidine"), ("Chemical", "cimetidine")}
    assert ents(CHEM, "Chemical：famotidine，cimetidine") == {("Chemical", "famotidine"), ("Chemical", "cimetidine")}


def test_ner_english_colon_in_chinese_task_and_codes_as_keys():
    assert ents(CMEEE, "dis: 肺炎\nSYM: 发热") == {("dis", "肺炎"), ("sym", "发热")}


def test_ner_commas_in_chemical_names_are_not_separators():
    assert ents(CHEM, "Chemical: 2,4-dinitrophenol; 1,3-butadiene") == {
        ("Chemical", "2,4-dinitrophenol"), ("Chemical", "1,3-butadiene")}
    assert ents(CHEM, "Chemical: 2,4-dinitrophenol") == {("Chemical", "2,4-dinitrophenol")}
    # Tokenised text (IOB sets) and locants keep their commas.
    assert ents(CHEM, "Chemical: 2 , 3 , 5 - triphenyltetrazolium chloride") == {
        ("Chemical", "2 , 3 , 5 - triphenyltetrazolium chloride")}
    assert ents(CHEM, "Chemical: trans-2-amino-1, 2, 3, 4-tetrahydronaphthalene") == {
        ("Chemical", "trans-2-amino-1, 2, 3, 4-tetrahydronaphthalene")}
    # A comma list without semicolons is a list; with semicolons, commas are kept.
    assert ents(CHEM, "Chemical: famotidine, cimetidine, and aspirin") == {
        ("Chemical", "famotidine"), ("Chemical", "cimetidine"), ("Chemical", "aspirin")}
    assert ents(DISE, "Disease: liver, blood, and renal disorders; fever") == {
        ("Disease", "liver, blood, and renal disorders"), ("Disease", "fever")}


def test_ner_chinese_values_are_not_split_on_enumeration_comma():
    # 2.3% of CMeEE-V2 dev mentions contain 、 or ，.
    assert parse_output(CMEEE, "检查：支原体抗体、衣原体抗体检测").parse_failed  # "检查" is no CMeEE type: chatter
    assert ents(CMEEE, "医学检验项目：支原体抗体、衣原体抗体检测；血常规") == {
        ("ite", "支原体抗体、衣原体抗体检测"), ("ite", "血常规")}
    assert ents(CMEEE, "疾病：t（8；14）易位白血病；肺炎") == {("dis", "t（8；14）易位白血病"), ("dis", "肺炎")}
    assert ents(CMEEE, "疾病：肺炎，哮喘") == {("dis", "肺炎，哮喘")}
    assert ents(CMEEE, "疾病: 肺炎, 哮喘") == {("dis", "肺炎"), ("dis", "哮喘")}  # half-width comma + space


def test_unclosed_bracket_does_not_swallow_the_separators_after_it():
    unclosed = "失代偿性代谢性（或呼吸性）酸中毒（或碱中毒"  # a CMeEE-V2 dev gold mention
    assert split_mentions(f"{unclosed}；酸碱平衡紊乱", "zh") == [unclosed, "酸碱平衡紊乱"]
    assert ents(CMEEE, f"疾病：{unclosed}；酸碱平衡紊乱\n身体：肺") == {
        ("dis", unclosed), ("dis", "酸碱平衡紊乱"), ("bod", "肺")}
    assert split_mentions("lung (cancer; asthma", "en") == ["lung (cancer", "asthma"]
    # A bracket pair that closes still protects its separators; a later pair does not rescue an
    # earlier unclosed opener.
    assert split_mentions("t（8；14）易位；肺炎", "zh") == ["t（8；14）易位", "肺炎"]
    assert split_mentions("A（或B；C（重症）", "zh") == ["A（或B", "C（重症）"]


def test_unclosed_bracket_gold_mentions_listed_first_parse_apart(shared_data_dir):
    """Every real CMeEE gold mention with an unclosed bracket, listed before another mention of
    its type, parses back as two mentions."""
    from taiyi_bench.harness.errors import DataNotFoundError
    from taiyi_bench.harness.loading import load_split

    try:
        loaded = load_split("cmeee", data_dir=shared_data_dir)
    except DataNotFoundError as err:
        pytest.skip(f"cmeee not in the shared data: {err}")
    unclosed = sorted({(e.type, e.mention) for ex in loaded.examples for e in ex.entities
                       if e.mention.count("（") + e.mention.count("(") > e.mention.count("）") + e.mention.count(")")})
    assert unclosed, "the dev split has such mentions"
    for entity_type, mention in unclosed:
        name = loaded.spec.label_name(entity_type)
        assert ents(loaded.spec, f"{name}：{mention}；肺炎") == {(entity_type, mention), (entity_type, "肺炎")}, mention


def test_ner_markdown_bullets_numbering_and_headers():
    text = "Here are the chemical entities:\n\n- famotidine\n* **cimetidine**\n• ranitidine\n1. aspirin\n2) heparin"
    assert {m for _, m in ents(CHEM, text)} == {"famotidine", "cimetidine", "ranitidine", "aspirin", "heparin"}
    assert ents(CHEM, "1. **Chemical**: famotidine\n2. **Disease**: delirium") == {
        ("Chemical", "famotidine"), ("Disease", "delirium")}
    assert ents(CHEM, "### Chemicals\nfamotidine\ncimetidine") == {("Chemical", "famotidine"), ("Chemical", "cimetidine")}
    assert ents(CMEEE, "**疾病**：\n1、肺炎\n2、哮喘") == {("dis", "肺炎"), ("dis", "哮喘")}


def test_ner_json_like():
    assert ents(CHEM, 'Chemical: ["famotidine", "2,4-dinitrophenol"]') == {
        ("Chemical", "famotidine"), ("Chemical", "2,4-dinitrophenol")}
    assert ents(CHEM, "Chemical: ['famotidine', 'cimetidine']") == {("Chemical", "famotidine"), ("Chemical", "cimetidine")}
    assert ents(CHEM, 'Chemical: "famotidine", "cimetidine"') == {("Chemical", "famotidine"), ("Chemical", "cimetidine")}
    assert ents(CHEM, '```json\n{"Chemical": ["famotidine"], "Disease": []}\n```') == {("Chemical", "famotidine")}
    assert ents(CHEM, '["famotidine", "cimetidine"]') == {("Chemical", "famotidine"), ("Chemical", "cimetidine")}
    assert ents(CMEEE, '[{"type": "疾病", "entity": "肺炎"}, {"type": "sym", "entity": "发热"}]') == {
        ("dis", "肺炎"), ("sym", "发热")}
    assert ents(CHEM, '{"entities": {"Chemical": ["famotidine"]}}') == {("Chemical", "famotidine")}


def test_ner_chatter_and_explanations_are_ignored():
    text = (
        "Sure! I found the following.\nChemical: famotidine\n\nExplanation: famotidine is an H2 blocker.\n"
        "Note: no other chemicals appear."
    )
    assert ents(CHEM, text) == {("Chemical", "famotidine")}
    text = "Chemicals:\n- famotidine\n\nThese were identified from the drug names."
    assert ents(CHEM, text) == {("Chemical", "famotidine")}


def test_ner_wrong_type_lines_are_kept_and_unknown_types_are_chatter():
    assert ents(CHEM, "Chemical: famotidine\nDisease: delirium\nGene: CYP2D6") == {
        ("Chemical", "famotidine"), ("Disease", "delirium")}


def test_ner_repeated_lines_and_duplicates_collapse():
    text = "Chemical: famotidine; famotidine\nChemical: famotidine"
    assert ents(CHEM, text) == {("Chemical", "famotidine")}


def test_ner_mentions_are_returned_as_written():
    assert ents(CHEM, "Chemical:  Famotidine ") == {("Chemical", "Famotidine")}


def test_ner_think_blocks_are_removed():
    assert ents(CHEM, "<think>Chemical: wrong</think>\nChemical: famotidine") == {("Chemical", "famotidine")}


def test_split_mentions_direct():
    assert split_mentions("a; b；c、d", "en") == ["a", "b", "c", "d"]
    assert split_mentions("a; b；c、d", "zh") == ["a", "b", "c、d"]
    assert split_mentions("none", "en") == []


# --------------------------------------------------------------------------------------------
# RE


def rels(spec, text):
    prediction = parse_output(spec, text)
    assert not prediction.parse_failed, text
    return prediction.relations


def test_re_bc5cdr_pairs_with_and_without_key():
    expected = {("famotidine", "CID", "delirium"), ("cimetidine", "CID", "confusion")}
    assert rels(CDR, "chemical-induced disease: [famotidine, delirium]; [cimetidine, confusion]") == expected
    assert rels(CDR, "[famotidine, delirium]; [cimetidine, confusion]") == expected
    assert rels(CDR, "CID: (famotidine, delirium)\n- (cimetidine, confusion)") == expected
    assert rels(CDR, "CID：【famotidine，delirium】；【cimetidine，confusion】") == expected
    assert rels(CDR, "CID: famotidine -> delirium; cimetidine → confusion") == expected
    assert rels(CDR, '[["famotidine", "delirium"], ["cimetidine", "confusion"]]') == expected


def test_re_bc5cdr_commas_inside_arguments():
    assert rels(CDR, "CID: [2,4-dinitrophenol, cataract]") == {("2,4-dinitrophenol", "CID", "cataract")}
    assert rels(CDR, "[trans-2-amino-1, 2, 3, 4-tetrahydronaphthalene, catalepsy]") == {
        ("trans-2-amino-1, 2, 3, 4-tetrahydronaphthalene", "CID", "catalepsy")}


def test_re_bc5cdr_unbracketed_chatter_is_not_a_pair():
    assert rels(CDR, "[famotidine, delirium]\nExplanation: famotidine, an H2 blocker, caused it.") == {
        ("famotidine", "CID", "delirium")}


def test_re_cmeie_keys_name_the_predicate():
    text = "临床表现：[小细胞肺癌，咳嗽]；[小细胞肺癌，咯血]\n相关（导致）：[肺炎，呼吸衰竭]\n预后：[x，y]"
    assert rels(CMEIE, text) == {
        ("小细胞肺癌", "临床表现", "咳嗽"), ("小细胞肺癌", "临床表现", "咯血"), ("肺炎", "相关（导致）", "呼吸衰竭")}
    # "预后" names no predicate: chatter.


def test_re_cmeie_objects_with_commas_and_brackets():
    assert rels(CMEIE, "辅助治疗：[失眠症，以舒适、宁静的意象替代忧心忡忡的想法]") == {
        ("失眠症", "辅助治疗", "以舒适、宁静的意象替代忧心忡忡的想法")}
    assert rels(CMEIE, "临床表现：[肺炎，胸片见斑片状阴影，以下叶多见]") == {("肺炎", "临床表现", "胸片见斑片状阴影，以下叶多见")}
    assert rels(CMEIE, "多发群体：[口咽癌，老年人（年龄大于60岁]") == {("口咽癌", "多发群体", "老年人（年龄大于60岁")}
    assert rels(CMEIE, "发病率：[L1，90%]") == {("L1", "发病率", "90%")}


def test_re_cmeie_triples_and_headers():
    assert rels(CMEIE, "(小细胞肺癌, 临床表现, 咳嗽)") == {("小细胞肺癌", "临床表现", "咳嗽")}
    assert rels(CMEIE, "具有临床表现关系的实体对如下：\n- [肺炎，发热]\n- [肺炎，咳嗽]") == {
        ("肺炎", "临床表现", "发热"), ("肺炎", "临床表现", "咳嗽")}


def test_re_cmeie_unknown_predicate_only_is_a_parse_failure():
    assert parse_output(CMEIE, "治疗：[肺炎，抗生素]").parse_failed


# --------------------------------------------------------------------------------------------
# TC


def labels(spec, text):
    prediction = parse_output(spec, text)
    assert not prediction.parse_failed, text
    return prediction.labels


def test_tc_taiyi_formats():
    assert labels(LITCOVID, "Result: Treatment; Prevention") == {"Treatment", "Prevention"}
    assert labels(QIC, "上述文本被分类为：治疗方案") == {"治疗方案"}
    assert labels(QIC, "上述文本被分类为:治疗方案。") == {"治疗方案"}


def test_tc_bare_label_lists():
    assert labels(LITCOVID, "Treatment, Diagnosis") == {"Treatment", "Diagnosis"}
    assert labels(LITCOVID, "- Treatment\n- Case Report") == {"Treatment", "Case Report"}
    assert labels(LITCOVID, '["Treatment", "Mechanism"]') == {"Treatment", "Mechanism"}


def test_tc_label_outside_the_set_is_kept_as_normalised_text():
    assert labels(LITCOVID, "Result: Treatment; Vaccines") == {"Treatment", "vaccines"}


def test_tc_spelling_variants_and_case():
    assert labels(HOC, "Result: Tumour promoting inflammation; GENOMIC INSTABILITY AND MUTATION") == {
        "tumor promoting inflammation", "genomic instability and mutation"}


def test_tc_explanation_after_answer():
    assert labels(LITCOVID, "Result: Treatment; Prevention. The article describes a vaccine trial.") == {
        "Treatment", "Prevention"}
    assert labels(LITCOVID, "Sure, here is the classification.\nResult: Diagnosis\nReason: it evaluates a PCR test.") == {
        "Diagnosis"}
    assert labels(LITCOVID, "Categories:\n1. Treatment\n2. Mechanism\n\nThese are the topics.") == {"Treatment", "Mechanism"}


def test_tc_conjunction_of_labels():
    assert labels(LITCOVID, "Result: Treatment and Prevention") == {"Treatment", "Prevention"}
    assert labels(HOC, "Result: genomic instability and mutation") == {"genomic instability and mutation"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("上述文本被分类为：治疗方案；注意事项", {"治疗方案", "注意事项"}),  # a hedge: both are decisions
        ("上述文本被分类为：注意事项; 治疗方案", {"治疗方案", "注意事项"}),  # the reversed hedge: the same
        ("上述文本被分类为：治疗方案；饮食禁忌", {"治疗方案", "饮食禁忌"}),  # an invented label is kept
        ("治疗方案\n注意事项", {"治疗方案", "注意事项"}),  # label-only lines
        ('{"结果": ["注意事项", "治疗方案"]}', {"治疗方案", "注意事项"}),
    ],
)
def test_tc_single_label_keeps_every_label(text, expected):
    assert labels(QIC, text) == expected


def test_tc_chatter_without_answer_is_a_parse_failure():
    assert parse_output(LITCOVID, "This article is about vaccines and how they work.").parse_failed


@pytest.mark.parametrize(
    ("spec", "text"),
    [
        # Real SmolLM2-135M outputs (reference slices): the prompt's instruction echoed back, then the
        # query itself. Read as "key: value" they made the query text an out-of-set label.
        (QIC, "请判断下面文本的类别，可选类别：心肌缺血如何治疗与调"),
        (QIC, "请判断下面文本的类别：\n\n淋巴细胞比率偏高、中性细胞"),
        (QIC, "请回答“上述文本被分类为：类别”。"),
        (LITCOVID, "Possible answers:\n1. Treatment: Treatment is a medical procedure.\n2. Prevention: the action of preventing"),
        (LITCOVID, "Please classify the text: SARS-CoV-2 spike protein binding"),
    ],
)
def test_tc_echoed_instruction_is_not_an_answer(spec, text):
    prediction = parse_output(spec, text)
    assert prediction.parse_failed and not prediction.labels


def test_tc_result_keys_still_answer_after_an_echo():
    assert labels(QIC, "判断结果：治疗方案") == {"治疗方案"}
    assert labels(QIC, "类别：治疗方案") == {"治疗方案"}
    assert labels(QIC, "请判断下面文本的类别，可选类别：治疗方案、其他\n上述文本被分类为：其他") == {"其他"}
    assert labels(QIC, "请判断文本中的类别是：\n\n- 治疗方案\n- 病情诊断") == {"治疗方案", "病情诊断"}


# --------------------------------------------------------------------------------------------
# QA


@pytest.mark.parametrize(
    ("text", "choice"),
    [
        ("B", "B"),
        ("B.", "B"),
        ("B. Tell the attending", "B"),
        ("(B)", "B"),
        ("B)", "B"),
        ("【B】", "B"),
        ("**B**", "B"),
        ("Ｂ", "B"),
        ("The answer is (B).", "B"),
        ("The correct answer is B because the resident must disclose.", "B"),
        ("Answer: B", "B"),
        ("答案：B", "B"),
        ("正确答案是B。", "B"),
        ("Tell the attending", "B"),  # exact option text
        ("tell the attending.", "B"),
        ("Aspirin and heparin", "D"),  # exact text beats the shorter option it starts with
        ("B cells", "C"),  # option text that starts with a letter
        ("A 45-year-old man would need... The answer is D.", "D"),  # "A" + word is no letter
        ("I think (C) is right.", "C"),
    ],
)
def test_qa_choices(text, choice):
    assert parse_output(USMLE, text, options=US_OPTIONS) == Prediction(choice=choice)


def test_qa_echoed_options_are_not_an_answer():
    echo = "A. Aspirin\nB. Tell the attending\nC. B cells\nD. Aspirin and heparin"
    assert parse_output(USMLE, echo, options=US_OPTIONS).parse_failed
    assert parse_output(USMLE, echo + "\nAnswer: C", options=US_OPTIONS).choice == "C"
    assert parse_output(USMLE, "B. Tell the attending\nThe answer A is wrong.", options=US_OPTIONS).choice == "B"


@pytest.mark.parametrize(
    ("text", "choice"),
    [
        ("b", "B"),
        ("b.", "B"),
        ("(b)", "B"),
        ("  d  ", "D"),
        ("a", "A"),  # "a" alone on a line is an answer, not an article
        ("Answer: b", "B"),
        ("The answer is b.", "B"),
        ("答案：c", "C"),
        ("b. tell the attending", "B"),  # followed by its own option's text
        ("b cells", "C"),  # option text, not the letter b
    ],
)
def test_qa_lone_lowercase_letter_is_that_option(text, choice):
    assert parse_output(USMLE, text, options=US_OPTIONS) == Prediction(choice=choice)


@pytest.mark.parametrize(
    "text",
    [
        "a 45-year-old man needs further workup",  # the article
        "a patient like this should be observed",
        "The answer is a beta blocker",
        "a. something else entirely",  # "a." followed by text that is not option A's
        "e",  # no option E
    ],
)
def test_qa_lowercase_article_is_not_a_letter(text):
    assert parse_output(USMLE, text, options=US_OPTIONS).parse_failed


def test_qa_five_options_accept_e():
    options = {"A": "a", "B": "b", "C": "c", "D": "d", "E": "e"}
    assert parse_output(MCMLE, "E", options=options).choice == "E"
    assert parse_output(MCMLE, "E", options=None).parse_failed  # the 4-option set has no E


@pytest.mark.parametrize(
    ("text", "choice"),
    [("yes", "A"), ("Yes.", "A"), ("No, because the study...", "B"), ("maybe", "C"), ("C", "C"),
     ("The answer is no.", "B"), ("Answer: maybe", "C")],
)
def test_pubmedqa_word_or_letter(text, choice):
    assert parse_output(PUBMEDQA, text, options=PQA_OPTIONS).choice == choice


def test_pubmedqa_without_options_returns_the_word():
    assert parse_output(PUBMEDQA, "Yes").choice == "yes"
    assert parse_output(PUBMEDQA, "not sure").parse_failed  # "no" is not a prefix of "not"


def test_qa_unparseable():
    assert parse_output(USMLE, "I do not know.", options=US_OPTIONS).parse_failed
    assert parse_output(USMLE, "Either (A) or (B).", options=US_OPTIONS).parse_failed  # two letters: no guess
