"""Instruction data, the category-to-stage map, mixing, and recipes (no model involved)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from taiyi_bench.finetune import data
from taiyi_bench.finetune.config import RECIPES_DIR, load_recipe, parse_override
from taiyi_bench.harness.errors import ConfigError, DataFormatError
from taiyi_bench.harness.prompts import render_answer, render_prompt
from taiyi_bench.harness.registry import get_spec

SAMPLE_FILE = Path(data.__file__).parent / "samples" / "conversations.jsonl"


def _record(**overrides):
    record = {
        "conversation_id": 1,
        "dataset": "d",
        "category": "dialogue",
        "language": "en",
        "conversation": [{"human": "hi", "assistant": "hello"}],
    }
    record.update(overrides)
    return record


def _write(tmp_path: Path, lines: list) -> Path:
    path = tmp_path / "conv.jsonl"
    path.write_text(
        "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n", encoding="utf-8"
    )
    return path


def test_stage_map_is_the_paper_design():
    assert data.categories_for_stage(1) == {
        "extraction",
        "classification",
        "text_pair",
        "translation",
        "other",
    }
    assert data.categories_for_stage(2) == set(data.CATEGORIES)
    assert {"qa", "dialogue"}.isdisjoint(data.categories_for_stage(1))
    for alias, category in [
        ("Named Entity Recognition", "extraction"),
        ("machine_translation", "translation"),
        ("问答", "qa"),
        ("multi-turn dialogue", "dialogue"),
        ("Text Pair", "text_pair"),
    ]:
        assert data.normalize_category(alias) == category
    assert data.normalize_category("poetry") is None
    with pytest.raises(ConfigError):
        data.categories_for_stage(3)


def test_shipped_conversation_sample_reads():
    conversations = data.read_conversations(SAMPLE_FILE)
    assert {c.category for c in conversations} == {"dialogue", "qa", "translation", "text_pair", "other"}
    assert any(len(c.turns) > 1 for c in conversations)  # multi-turn included
    assert all(c.origin.startswith(str(SAMPLE_FILE)) for c in conversations)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("{not json", "not valid JSON"),
        (json.dumps(["a list"]), "a JSON object"),
        (json.dumps({k: v for k, v in _record().items() if k != "category"}), "missing category"),
        (json.dumps(_record(conversation=[])), "non-empty list"),
        (json.dumps(_record(conversation=[{"human": "q"}])), "turn 1 with `human` and `assistant`"),
        (json.dumps(_record(conversation=[{"human": "q", "assistant": "  "}])), "non-empty assistant"),
        (
            json.dumps(
                _record(conversation=[{"human": "q", "assistant": "a"}, {"human": "q2", "assistant": ""}])
            ),
            "turn 2: a non-empty assistant",
        ),
        (json.dumps(_record(category="poetry")), "'poetry'"),
    ],
)
def test_bad_conversation_lines_name_file_and_line(tmp_path, line, expected):
    path = _write(tmp_path, [_record(), "", line])  # the bad record is on line 3
    with pytest.raises(DataFormatError) as info:
        data.read_conversations(path)
    message = str(info.value)
    assert str(path) in message and "line 3" in message and expected in message


def test_recipe_may_force_dataset_and_category(tmp_path):
    path = _write(tmp_path, [_record(category="poetry")])
    (conversation,) = data.read_conversations(path, dataset="mine", category="other")
    assert (conversation.dataset, conversation.category) == ("mine", "other")
    with pytest.raises(ConfigError, match="unknown"):
        data.read_conversations(path, category="poetry")


def test_round_trip_through_taiyi_format(tmp_path):
    conversations = data.read_conversations(SAMPLE_FILE)
    released = [
        {"conversation_id": c.id, "dataset": c.dataset, "category": c.category, "language": c.language,
         "conversation": [{"human": h, "assistant": a} for h, a in c.turns]}
        for c in conversations
    ]  # fmt: skip
    again = data.read_conversations(_write(tmp_path, released))
    assert [(c.dataset, c.category, c.turns) for c in again] == [
        (c.dataset, c.category, c.turns) for c in conversations
    ]


def test_task_instructions_use_the_evaluation_formats_and_decompose():
    spec = get_spec("cmeee")
    conversations, source = data.task_conversations("cmeee", seed=0)
    assert source == "samples"
    from taiyi_bench.harness.loading import load_split

    examples = {e.id: e for e in load_split("cmeee", "train").examples}
    full = [c for c in conversations if c.id.removeprefix("cmeee-") in examples]
    assert len(full) == len(examples)
    single = [c for c in conversations if c not in full]
    assert single, "multi-type examples must also give single-type instructions"
    for conversation in single:
        example_id, label = conversation.id.removeprefix("cmeee-").rsplit("-", 1)
        example = examples[example_id]
        assert label in {e.type for e in example.entities}
        ((human, assistant),) = conversation.turns
        assert assistant == render_answer(spec, example, labels=[label])
        assert human in {render_prompt(spec, example, template=t, labels=[label]) for t in range(5)}
        assert "\n" not in assistant  # one type asked, one answer line
    # several templates are used across the set
    prompts = {c.turns[0][0].split("文本：")[0][:12] for c in full}
    assert len(prompts) > 1
    assert all(c.category == "extraction" and c.language == "zh" for c in conversations)


def test_multi_predicate_re_decomposes_and_single_type_sets_do_not():
    cmeie, _ = data.task_conversations("cmeie", seed=0)
    assert any(c.id.count("-") >= 3 for c in cmeie)  # cmeie-<split>-<index>-<predicate>
    chem, _ = data.task_conversations("bc5cdr_chem", seed=0)
    from taiyi_bench.harness.loading import load_split

    assert len(chem) == len(load_split("bc5cdr_chem", "train").examples)
    qa, _ = data.task_conversations("pubmedqa", seed=0)
    assert all(c.category == "qa" for c in qa)


def test_mixture_caps_weights_and_stages():
    def conv(dataset, category, n):
        return [data.Conversation(f"{dataset}-{i}", dataset, category, "en", [("q", "a")]) for i in range(n)]

    sources = {
        "ner": (conv("ner", "extraction", 30), "data"),
        "chat": (conv("chat", "dialogue", 10), "f.jsonl"),
        "mt": (conv("mt", "translation", 10), "g.jsonl"),
    }
    stage1 = data.build_mixture(sources, 1, cap=20, per_dataset={"mt": {"weight": 2.5}}, seed=1)
    used = {r.dataset: r.used for r in stage1.datasets}
    assert used == {"ner": 20, "mt": 25}  # cap, then weight (2 full copies + half)
    assert stage1.skipped_categories == {"dialogue": 10}
    stage2 = data.build_mixture(sources, 2, cap=None, per_dataset={"ner": {"cap": 5, "weight": 0.5}}, seed=1)
    assert {r.dataset: r.used for r in stage2.datasets} == {"ner": 3, "chat": 10, "mt": 10}
    assert not stage2.uses_samples
    with pytest.raises(ConfigError, match="unknown datasets"):
        data.build_mixture(sources, 1, per_dataset={"nre": {"cap": 1}})
    # deterministic in the seed
    again = data.build_mixture(sources, 1, cap=20, per_dataset={"mt": {"weight": 2.5}}, seed=1)
    assert [c.id for c in again.conversations] == [c.id for c in stage1.conversations]


def test_load_sources_reports_samples_and_rejects_clashing_names(tmp_path):
    cfg = {"seed": 0, "tasks": {"names": ["kuake_qic"]}, "files": [str(SAMPLE_FILE)]}
    sources = data.load_sources(cfg)
    assert sources["kuake_qic"][1] == "samples" and "sample_dialogue_en" in sources
    mixture = data.build_mixture(sources, 1, seed=0)
    assert mixture.uses_samples and mixture.report()["uses_bundled_samples"]
    clash = _write(tmp_path, [_record(dataset="kuake_qic")])
    with pytest.raises(ConfigError, match="also used"):
        data.load_sources({"tasks": {"names": ["kuake_qic"]}, "files": [str(clash)]})
    with pytest.raises(ConfigError, match="no data"):
        data.load_sources({"tasks": {"names": []}, "files": []})


def test_recipes_resolve_and_the_paper_recipe_is_faithful():
    names = sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))
    assert {"taiyi1_qwen7b_qlora", "qwen2.5_7b_lora", "cpu_smollm2_tiny"} <= set(names)
    for name in names:
        config = load_recipe(name)
        assert config["model"]["trust_remote_code"] is (name == "taiyi1_qwen7b_qlora")
    paper = load_recipe("taiyi1_qwen7b_qlora")
    assert paper["model"]["base"] == "Qwen/Qwen-7B" and paper["model"]["quantization"] == "4bit"
    assert (paper["lora"]["r"], paper["lora"]["alpha"], paper["lora"]["dropout"]) == (64, 16, 0.05)
    t = paper["training"]
    assert (t["learning_rate"], t["lr_scheduler"], t["warmup_ratio"]) == (2e-4, "constant_with_warmup", 0.1)
    assert (t["per_device_batch_size"], t["gradient_accumulation_steps"]) == (12, 2)
    assert (t["weight_decay"], t["max_grad_norm"]) == (0.0, 0.3)
    assert paper["format"]["max_length"] == 1024 and paper["format"]["style"] == "eod"
    assert (paper["stages"][1]["epochs"], paper["stages"][2]["epochs"]) == (5, 3)
    assert paper["data"]["cap"] == 10000


def test_overrides_and_unknown_keys():
    config = load_recipe(
        "cpu_smollm2_tiny",
        [
            "training.learning_rate=1e-3",
            "stages.2.epochs=2",
            "data.datasets.cmeee.cap=3",
            "format.packing=false",
        ],
    )
    assert config["training"]["learning_rate"] == 1e-3 and config["stages"][2]["epochs"] == 2
    assert config["data"]["datasets"] == {"cmeee": {"cap": 3}} and config["format"]["packing"] is False
    assert parse_override("model.base=Qwen/Qwen2.5-7B") == (["model", "base"], "Qwen/Qwen2.5-7B")
    for bad in (["training.learing_rate=1"], ["data.datasets.cmeee.cp=3"], ["format.style=xml"], ["nokey"]):
        with pytest.raises(ConfigError):
            load_recipe("cpu_smollm2_tiny", bad)
    with pytest.raises(ConfigError, match="not found"):
        load_recipe("no_such_recipe")
