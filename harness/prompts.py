"""Instructions and answer formats (the adapter layer).

The answer formats are the ones Taiyi was trained on (Luo et al. 2024, and its released instruction data):
  NER  `Type: e1; e2`, one line per type (Chinese: `类型：e1；e2`), the type spelled out
  RE   `relation: [head, tail]; [head, tail]` (Chinese: `关系：[主体，客体]；…`)
  TC   `Result: l1; l2` (English) / `上述文本被分类为：l` (Chinese)
  QA   `B. option text`
English sets get English instructions, Chinese sets Chinese ones. Template 0 of each family is
the evaluation prompt; the others are paraphrases used to build instruction data for fine-tuning
(Taiyi used about 20 templates per task; we keep a handful, each a different wording).
`PROMPT_VERSION` is recorded in every task's metadata: bump it whenever template 0 changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from taiyi_bench.harness.records import Example
from taiyi_bench.harness.registry import DatasetSpec

PROMPT_VERSION = 1

EMPTY_ANSWER = {"en": "none", "zh": "无"}
_COLON = {"en": ": ", "zh": "："}
_SEPARATOR = {"en": "; ", "zh": "；"}
_PAIR_SEPARATOR = {"en": ", ", "zh": "，"}
_ENTITY_PLACEHOLDERS = {"en": ("entity1", "entity2"), "zh": ("实体1", "实体2")}

# {types}: type names joined; {text}: the unit's text; {form}/{none_form}: the answer line spelled
# with a real type name ("Chemical: entity1; entity2"). Small models copy a literal "Type:" key.
_NER_TEMPLATES = {
    "en": (
        "Extract all {types} entities from the following text. Answer with one line per entity type in the form "
        "\"{form}\", and write \"{none_form}\" for a type with no entity.\nText: {text}",
        "Find every mention of the following entity types in the text: {types}. List them one type per line as "
        "\"{form}\" (\"{none_form}\" when there are none).\nText: {text}",
        "Named entity recognition. Entity types: {types}.\nText: {text}\nOutput each type on its own line as "
        "\"{form}\", or \"{none_form}\".",
        "Read the biomedical text and identify the {types} entities it mentions. Answer in the format "
        "\"{form}\" with one line per type; use \"none\" if nothing applies.\nText: {text}",
        "Text: {text}\nWhich {types} entities appear in this text? Reply with one line per type, formatted as "
        "\"{form}\", writing \"none\" for an empty type.",
    ),
    "zh": (
        "请从下面的文本中抽取所有{types}实体。每种实体类型一行，格式为“{form}”；某类型没有实体时回答“{none_form}”。\n文本：{text}",
        "找出文本中提到的以下类型的实体：{types}。按“{form}”的格式每类一行输出，没有则写“无”。\n文本：{text}",
        "命名实体识别。实体类型：{types}。\n文本：{text}\n请每种类型输出一行，格式为“{form}”，没有则为“{none_form}”。",
        "阅读下面的医学文本，识别其中的{types}实体，按“{form}”的格式逐行回答，没有的类型写“无”。\n文本：{text}",
        "文本：{text}\n上述文本中包含哪些{types}实体？请按“{form}”的格式每类一行作答，没有则回答“无”。",
    ),
}

# {relations}: relation names; {text}.
_RE_TEMPLATES = {
    "en": (
        "Find all {relations} relations in the following text. Answer in the form "
        "\"relation: [head, tail]; [head, tail]\", or \"relation: none\" if there is none.\nText: {text}",
        "Relation extraction. Relation types: {relations}. List every related pair in the text as "
        "\"relation: [head, tail]; [head, tail]\" (\"relation: none\" if there are none).\nText: {text}",
        "Text: {text}\nExtract the {relations} relations stated in this text. Format: \"relation: [head, tail]; [head, tail]\"; "
        "write \"none\" when there is none.",
        "Read the abstract and identify the pairs linked by a {relations} relation. Answer one relation per line as "
        "\"relation: [head, tail]; [head, tail]\", or \"none\".\nText: {text}",
    ),
    "zh": (
        "请从下面的文本中抽取以下关系类型的三元组：{relations}。每种关系一行，格式为“关系：[主体，客体]；[主体，客体]”；没有则回答“无”。\n文本：{text}",
        "关系抽取。可选关系：{relations}。请找出文本中所有存在这些关系的实体对，按“关系：[主体，客体]；[主体，客体]”的格式输出，没有则写“无”。\n文本：{text}",
        "文本：{text}\n请抽取上述文本中属于{relations}的关系，逐行按“关系：[主体，客体]”的格式作答，多个之间用“；”分隔，没有则回答“无”。",
        "阅读下面的医学文本，找出具有{relations}关系的主体和客体，格式为“关系：[主体，客体]；[主体，客体]”，没有则为“无”。\n文本：{text}",
    ),
}

# {labels}: the label set; {text}.
_TC_TEMPLATES = {
    "en": (
        "Classify the following text into one or more of these categories: {labels}. Answer in the form "
        "\"Result: label1; label2\"{none_clause}.\nText: {text}",
        "Which of the following topics does this text belong to? Topics: {labels}. Reply as \"Result: label1; label2\"{none_clause}.\nText: {text}",
        "Text: {text}\nAssign every applicable category from this list: {labels}. Format: \"Result: label1; label2\"{none_clause}.",
        "Document classification. Categories: {labels}.\nText: {text}\nAnswer with \"Result: \" followed by the applicable categories separated by \"; \"{none_clause}.",
    ),
    "zh": (
        "请判断下面文本的类别，可选类别：{labels}。请回答“上述文本被分类为：类别”。\n文本：{text}",
        "文本分类。类别包括：{labels}。\n文本：{text}\n请以“上述文本被分类为：类别”的格式作答。",
        "文本：{text}\n上述文本属于以下哪一类：{labels}？请回答“上述文本被分类为：类别”。",
        "阅读下面的医疗搜索查询，从{labels}中选出它的意图类别，按“上述文本被分类为：类别”的格式回答。\n文本：{text}",
    ),
}
_TC_NONE_CLAUSE = ", or \"Result: none\" if none applies"
_TC_RESULT_PREFIX = {"en": "Result: ", "zh": "上述文本被分类为："}

# {context}{question}{options}
_QA_TEMPLATES = {
    "en": (
        "{context}Answer the following multiple-choice question. Reply with the letter of the correct option.\n"
        "Question: {question}\nOptions:\n{options}\nAnswer:",
        "{context}Question: {question}\n{options}\nChoose the single best option and answer with its letter.\nAnswer:",
        "You are taking a medical exam. {context}Question: {question}\nOptions:\n{options}\nGive the letter of the correct answer.\nAnswer:",
    ),
    "zh": (
        "{context}以下是一道单项选择题，请选出正确答案，回答选项字母。\n问题：{question}\n选项：\n{options}\n答案：",
        "{context}问题：{question}\n{options}\n请从上述选项中选出最合适的一项，回答其字母。\n答案：",
        "请回答下面的医学考试题目。{context}\n问题：{question}\n选项：\n{options}\n答案：",
    ),
}
_QA_CONTEXT = {"en": "Context: {context}\n", "zh": "背景：{context}\n"}

TEMPLATE_FAMILIES = {"ner": _NER_TEMPLATES, "re": _RE_TEMPLATES, "tc": _TC_TEMPLATES, "qa": _QA_TEMPLATES}


def template_count(spec: DatasetSpec) -> int:
    """How many paraphrased templates exist for this set's task type and language."""
    return len(TEMPLATE_FAMILIES[spec.task_type][spec.language])


def _pair_form(spec: DatasetSpec) -> str:
    """How the prompt spells a pair: the set's argument roles ("[chemical, disease]") when the
    registry names them, so the order of the pair is unambiguous, else "[head, tail]"."""
    if not spec.argument_roles:
        return "[head, tail]"
    return "[" + _PAIR_SEPARATOR[spec.language].join(spec.argument_roles) + "]"


def _join_names(names: Sequence[str], language: str) -> str:
    return "、".join(names) if language == "zh" else ", ".join(names)


def render_prompt(
    spec: DatasetSpec, example: Example, template: int = 0, labels: Sequence[str] | None = None
) -> str:
    """The instruction for one unit. `labels` restricts the entity types / relations asked for
    (task decomposition for fine-tuning); None asks for all of the set's labels."""
    language = spec.language
    templates = TEMPLATE_FAMILIES[spec.task_type][language]
    pattern = templates[template % len(templates)]
    asked = tuple(labels) if labels is not None else spec.labels
    if spec.task_type == "ner":
        names = [spec.label_name(t) for t in asked]
        placeholder = _ENTITY_PLACEHOLDERS[language]
        colon, separator = _COLON[language], _SEPARATOR[language]
        return pattern.format(
            types=_join_names(names, language),
            text=example.text,
            form=f"{names[0]}{colon}{placeholder[0]}{separator}{placeholder[1]}",
            none_form=f"{names[0]}{colon}{EMPTY_ANSWER[language]}",
        )
    if spec.task_type == "re":
        names = [spec.relation_name(r) for r in asked]
        prompt = pattern.format(relations=_join_names(names, language), text=example.text)
        # The answer line is spelled with a real relation name (small models copy a literal
        # "relation:" key), and the pair with the set's argument roles where it has them.
        prompt = prompt.replace("\"relation:", f"\"{names[0]}:").replace("“关系：", f"“{names[0]}：")
        return prompt.replace("[head, tail]", _pair_form(spec))
    if spec.task_type == "tc":
        labels_text = _join_names([spec.label_name(label) for label in asked], language)
        none_clause = _TC_NONE_CLAUSE if spec.multi_label else ""  # (the Chinese templates have none)
        return pattern.format(labels=labels_text, text=example.text, none_clause=none_clause)
    context = _QA_CONTEXT[language].format(context=" ".join(example.contexts)) if example.contexts else ""
    options = "\n".join(f"{letter}. {text}" for letter, text in example.options.items())
    return pattern.format(context=context, question=example.question, options=options)


def _representative_mention(example: Example, concept_id: str) -> str:
    """The first mention of a concept in document order: what an annotator would name it by."""
    return (example.concept_mentions.get(concept_id) or [concept_id])[0]


def render_answer(spec: DatasetSpec, example: Example, labels: Sequence[str] | None = None) -> str:
    """The gold answer in Taiyi's format (the fine-tuning target and the few-shot target).
    Parsing it back with `taiyi_bench.harness.parsers.parse_output` reproduces the gold exactly."""
    language = spec.language
    colon, separator, empty = _COLON[language], _SEPARATOR[language], EMPTY_ANSWER[language]
    asked = tuple(labels) if labels is not None else spec.labels
    if spec.task_type == "ner":
        lines = []
        for entity_type in asked:
            mentions = list(dict.fromkeys(e.mention for e in example.entities if e.type == entity_type))
            lines.append(f"{spec.label_name(entity_type)}{colon}{separator.join(mentions) if mentions else empty}")
        return "\n".join(lines)
    if spec.task_type == "re":
        lines = []
        comma = _PAIR_SEPARATOR[language]
        # Concept-pair sets' arguments are concept ids, named by a mention.
        name = partial(_representative_mention, example) if spec.matching_rule == "concept_pairs" else str
        for relation in asked:
            pairs = list(dict.fromkeys(
                f"[{name(rel.head)}{comma}{name(rel.tail)}]" for rel in example.relations if rel.relation == relation
            ))
            if pairs or len(asked) == 1:
                lines.append(f"{spec.relation_name(relation)}{colon}{separator.join(pairs) if pairs else empty}")
        return "\n".join(lines) if lines else empty
    if spec.task_type == "tc":
        chosen = [spec.label_name(label) for label in spec.labels if label in example.labels]
        return _TC_RESULT_PREFIX[language] + (separator.join(chosen) if chosen else empty)
    return f"{example.answer}. {example.options.get(example.answer, '')}".strip()
