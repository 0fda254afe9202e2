"""Prompt formats: the wrapping of each format (exact text and token ids), the lm-eval model type
that applies it, the configs that name it, and the round trip: a model `taiyi finetune` trains in
`eod` style scores through lm-eval only when it is evaluated in that format."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from taiyi_bench.harness import prompt_formats
from taiyi_bench.harness.errors import ConfigError
from taiyi_bench.harness.lmeval import plugin as lm_eval_plugin
from taiyi_bench.harness.lmeval.models import PromptFormatError, TaiyiHFLM
from taiyi_bench.harness.random_models import build_tiny_causal_lm

PROMPT = "请判断下面文本的类别。\n文本：小孩拉肚子怎么办"
ANSWER = "上述文本被分类为：治疗方案"


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny") / "lm", seed=0)


@pytest.fixture(scope="module")
def tokenizer(tiny_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_dir)


def _wrapper(tokenizer, prompt_format: str, **kwargs) -> TaiyiHFLM:
    """A TaiyiHFLM with a tokenizer and no model: the formatting logic, nothing loaded."""
    lm = TaiyiHFLM.__new__(TaiyiHFLM)
    lm._configure_prompt_format(prompt_format, kwargs.pop("eod_token", None), kwargs)
    lm._bind_tokenizer(tokenizer)
    return lm


def _request(context: str, until: list[str]) -> SimpleNamespace:
    return SimpleNamespace(arguments=(context, {"until": until, "max_gen_toks": 8}))


# ------------------------------------------------------------------------------ the formats


def test_each_format_wraps_the_prompt_exactly():
    assert prompt_formats.wrap_prompt("plain", PROMPT) == PROMPT
    assert prompt_formats.wrap_prompt("chat_template", PROMPT) == PROMPT  # lm-eval rendered it already
    for name in ("eod", "taiyi1"):
        assert prompt_formats.wrap_prompt(name, PROMPT, "<|endoftext|>") == f"<|endoftext|>{PROMPT}<|endoftext|>"
        assert prompt_formats.stop_sequences(name, ["\n\n"], "<|endoftext|>") == ["\n\n", "<|endoftext|>"]
    assert prompt_formats.stop_sequences("plain", "\n\n", "<|endoftext|>") == ["\n\n"]
    assert prompt_formats.canonical("taiyi1") == "eod" and prompt_formats.canonical("plain") == "plain"
    with pytest.raises(ConfigError, match="chat_template, plain, eod, taiyi1"):
        prompt_formats.check_format("chatml")


def test_eod_prompt_is_token_for_token_what_the_recipe_trains_on(tokenizer):
    from taiyi_bench.finetune.encoding import IGNORE_INDEX, encode_eod, eod_token_id

    trained_ids, labels = encode_eod(tokenizer, [(PROMPT, ANSWER)], eod_token_id(tokenizer))
    prompt_part = trained_ids[: labels.index(next(x for x in labels if x != IGNORE_INDEX))]
    for name in ("eod", "taiyi1"):
        lm = _wrapper(tokenizer, name)
        wrapped = lm.wrap_prompt(PROMPT)
        assert wrapped == f"<|endoftext|>{PROMPT}<|endoftext|>"
        # what lm-eval's tokenisation of the context gives (no BOS: the wrapper turns it off)
        assert lm.add_bos_token is False
        assert tokenizer(wrapped, add_special_tokens=False)["input_ids"] == prompt_part
        assert prompt_part[0] == prompt_part[-1] == tokenizer.convert_tokens_to_ids("<|endoftext|>")
        assert lm.eot_token_id == prompt_part[0]


def test_eod_token_is_chosen_as_the_recipe_chooses_it(tokenizer):
    from taiyi_bench.finetune.encoding import encode_eod, eod_token_id

    # A tokenizer whose eos is not <|endoftext|>: the recipe's <eod> is that eos, and so is ours.
    other = tokenizer.__class__.from_pretrained(tokenizer.name_or_path)
    other.eos_token = "<|im_end|>"
    im_end = other.convert_tokens_to_ids("<|im_end|>")
    lm = _wrapper(other, "eod")
    assert lm.wrap_prompt("x") == "<|im_end|>x<|im_end|>" and lm.eot_token_id == im_end
    assert other("<|im_end|>x<|im_end|>", add_special_tokens=False)["input_ids"] == encode_eod(
        other, [("x", "y")], eod_token_id(other)
    )[0][:3]
    # format.eod_token in the recipe = eod_token in --model_args
    assert _wrapper(other, "eod", eod_token="<|endoftext|>").wrap_prompt("x") == "<|endoftext|>x<|endoftext|>"
    with pytest.raises(PromptFormatError, match="not a token"):
        _wrapper(other, "eod", eod_token="<nope>")
    other.eos_token = None
    with pytest.raises(PromptFormatError, match="eod_token=<token>"):
        _wrapper(other, "eod")


def test_requests_are_wrapped_once_with_the_stop_added_and_mismatches_refused(tokenizer):
    lm = _wrapper(tokenizer, "eod")
    request = _request(PROMPT, ["\n\n\n"])
    lm._wrap_requests([request], generation=True)
    lm._wrap_requests([request], generation=True)  # a second pass leaves it alone
    context, gen_kwargs = request.arguments
    assert context == f"<|endoftext|>{PROMPT}<|endoftext|>"
    assert gen_kwargs["until"] == ["\n\n\n", "<|endoftext|>"] and gen_kwargs["max_gen_toks"] == 8
    with pytest.raises(PromptFormatError, match="drop --apply_chat_template"):
        lm.chat_template(True)

    plain = _wrapper(tokenizer, "plain")
    request = _request(PROMPT, ["\n\n\n"])
    plain._wrap_requests([request], generation=True)
    assert request.arguments[0] == PROMPT and request.arguments[1]["until"] == ["\n\n\n"]
    with pytest.raises(PromptFormatError, match="contradict"):
        plain.apply_chat_template([{"role": "user", "content": PROMPT}])

    chat = _wrapper(tokenizer, "chat_template")
    with pytest.raises(PromptFormatError, match="add --apply_chat_template"):
        chat._wrap_requests([_request(PROMPT, [])], generation=True)


@pytest.mark.parametrize(
    "args, message",
    [
        ({}, "needs prompt_format"),
        ({"prompt_format": "chatml"}, "unknown prompt format"),
        ({"prompt_format": "plain", "eod_token": "<|endoftext|>"}, "only for prompt_format=eod"),
        ({"prompt_format": "eod", "add_bos_token": True}, "drop add_bos_token"),
    ],
)
def test_bad_model_args_fail_before_any_model_loads(args, message):
    with pytest.raises(PromptFormatError, match=message):
        TaiyiHFLM(pretrained="/nonexistent/model", **args)


def test_model_types_are_registered_beside_lm_evals_own(monkeypatch):
    from lm_eval.api.registry import get_model

    assert get_model("taiyi-hf") is TaiyiHFLM
    assert get_model("hf").__name__ == "HFLM"  # the built-ins are still found
    registered = SimpleNamespace(model_registry=dict.fromkeys(lm_eval_plugin.PROMPT_FORMAT_MODELS))
    assert not lm_eval_plugin.patch_model_registry(registered)  # already there: nothing to do
    monkeypatch.setattr("importlib.metadata.version", lambda _name: "0.5.0")
    untested = SimpleNamespace(model_registry={})
    with pytest.warns(UserWarning, match="not registered"):
        assert not lm_eval_plugin.patch_model_registry(untested)
    assert untested.model_registry == {}


# ------------------------------------------------------------------------------ configs


def test_configs_name_their_format_and_the_command_carries_it(tmp_path):
    import yaml

    from taiyi_bench.baselines import llm_run
    from taiyi_bench.baselines.llm_registry import REGISTRY_DIR, find_config, load_config

    taiyi = find_config("taiyi-llm")
    assert taiyi.prompt_format == "taiyi1" and not taiyi.apply_chat_template
    argv = llm_run.build_invocation(taiyi).argv
    assert argv[argv.index("--model") + 1] == "taiyi-hf" and "--apply_chat_template" not in argv
    assert "prompt_format=taiyi1" in argv[argv.index("--model_args") + 1].split(",")
    chat = llm_run.build_invocation(find_config("glm4-9b-chat")).argv
    assert "prompt_format=chat_template" in chat[chat.index("--model_args") + 1] and "--apply_chat_template" in chat

    data = yaml.safe_load((REGISTRY_DIR / "glm4-9b-chat.yaml").read_text())
    old = {k: v for k, v in data.items() if k != "prompt_format"} | {"name": "old", "apply_chat_template": False}
    (tmp_path / "old.yaml").write_text(yaml.safe_dump(old))
    assert load_config(tmp_path / "old.yaml").prompt_format == "plain"  # older configs still load
    both = data | {"name": "both", "apply_chat_template": False}
    (tmp_path / "both.yaml").write_text(yaml.safe_dump(both))
    with pytest.raises(ConfigError, match="contradicts prompt_format"):
        load_config(tmp_path / "both.yaml")
    neither = {k: v for k, v in data.items() if k != "prompt_format"} | {"name": "neither"}
    (tmp_path / "neither.yaml").write_text(yaml.safe_dump(neither))
    with pytest.raises(ConfigError, match="prompt_format: required"):
        load_config(tmp_path / "neither.yaml")
    api = yaml.safe_load((REGISTRY_DIR / "gpt-4o.yaml").read_text()) | {"name": "api", "prompt_format": "eod"}
    (tmp_path / "api.yaml").write_text(yaml.safe_dump(api))
    with pytest.raises(ConfigError, match="prompt_format"):
        load_config(tmp_path / "api.yaml")


# ------------------------------------------------------------------------------ the literal lm_eval command


def test_lm_eval_cli_refuses_a_format_mismatch_in_one_line(tiny_dir, tmp_path, single_thread_env):
    done = subprocess.run(
        ["lm_eval", "run", "--model", "taiyi-hf", "--model_args", f"pretrained={tiny_dir},prompt_format=eod",
         "--apply_chat_template", "--tasks", "taiyi_kuake_qic", "--limit", "1", "--device", "cpu",
         "--output_path", str(tmp_path)],
        capture_output=True, text=True, env=single_thread_env, timeout=300,
    )  # fmt: skip
    assert done.returncode != 0
    assert "lm_eval: error: prompt_format=eod and --apply_chat_template contradict each other" in done.stderr
    assert "Traceback" not in done.stderr and not list(tmp_path.glob("**/results_*.json"))


# ------------------------------------------------------------------------------ the round trip


def _untied_copy(tiny_dir: Path, out: Path) -> Path:
    """The tiny model with its output layer untied from the input embeddings.

    LoRA alone cannot make a random 32-wide model confident: its logits come from 0.02-scale
    tied embeddings behind a frozen norm. The test trains the output layer in full
    (lora.modules_to_save), which needs it untied: lm-eval re-ties the weights after loading an
    adapter, and a trained copy of a tied layer breaks that."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_dir)
    model.config.tie_word_embeddings = False
    model.lm_head.weight = torch.nn.Parameter(model.get_input_embeddings().weight.detach().clone())
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_dir).save_pretrained(out)
    return out


def _evaluate(model_args: str, *, apply_chat_template: bool) -> dict:
    import lm_eval

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return lm_eval.simple_evaluate(
            model="taiyi-hf", model_args=model_args, tasks=["taiyi_kuake_qic"], device="cpu",
            batch_size=8, apply_chat_template=apply_chat_template, log_samples=True,
        )  # fmt: skip
    finally:
        torch.set_num_threads(threads)


def test_model_trained_in_eod_style_scores_only_in_its_own_format(tiny_dir, tmp_path, monkeypatch, capsys):
    from taiyi_bench.finetune.cli import main as finetune

    monkeypatch.delenv("TAIYI_DATA_DIR", raising=False)  # train and evaluate on the same bundled units
    base = _untied_copy(tiny_dir, tmp_path / "base")
    out = tmp_path / "sft"
    status = finetune([
        "cpu_smollm2_tiny", "--stage", "1", "--output-dir", str(out),
        "-o", f"model.base={base}", "-o", "format.style=eod", "-o", "format.packing=false",
        "-o", "format.max_length=512",
        # KUAKE-QIC's evaluation units under the evaluation prompt: a memorisable task
        "-o", "data.tasks.names=[kuake_qic]", "-o", "data.tasks.split=dev", "-o", "data.tasks.templates=1",
        "-o", "data.files=[]", "-o", "data.cap=null",
        "-o", "lora.r=16", "-o", "lora.alpha=32", "-o", "lora.dropout=0.0", "-o", "lora.modules_to_save=[lm_head]",
        "-o", "training.per_device_batch_size=25", "-o", "training.gradient_accumulation_steps=1",
        "-o", "training.learning_rate=1e-2", "-o", "training.warmup_ratio=0.0", "-o", "training.max_steps=80",
        "-o", "training.save_steps=0", "-o", "training.progress=false", "-o", "training.num_threads=1",
    ])  # fmt: skip
    captured = capsys.readouterr()
    assert status == 0, captured.err[-3000:]
    lines = captured.out.splitlines()
    summary = json.loads("\n".join(lines[lines.index("{"):]))  # progress lines come before the summary
    assert summary["stages"]["1"]["loss_end"] < 0.1

    # `taiyi finetune` prints and records the command that evaluates its adapter in its format
    command = summary["lm_eval_command"]
    assert (out / "lm_eval_command.txt").read_text(encoding="utf-8").strip() == command
    assert command in captured.err
    argv = shlex.split(command)
    model_args = argv[argv.index("--model_args") + 1]
    assert argv[argv.index("--model") + 1] == "taiyi-hf" and "--apply_chat_template" not in argv
    assert model_args == f"pretrained={base},peft={out / 'stage1' / 'adapter'},prompt_format=eod"

    matched = _evaluate(model_args, apply_chat_template=False)
    # the default for a chat model (it has a chat template): the mismatched format
    default_args = model_args.replace("prompt_format=eod", "prompt_format=chat_template")
    mismatched = _evaluate(default_args, apply_chat_template=True)

    good = matched["results"]["taiyi_kuake_qic"]["micro_f1,none"]
    bad = mismatched["results"]["taiyi_kuake_qic"]["micro_f1,none"]
    assert good >= 0.9, matched["samples"]["taiyi_kuake_qic"][:3]
    assert bad <= good - 0.5
    # the format is in the results file (config.model_args) and in what the model was sent
    assert "prompt_format=eod" in matched["config"]["model_args"].split(",")
    assert "prompt_format=chat_template" in mismatched["config"]["model_args"].split(",")
    sample = matched["samples"]["taiyi_kuake_qic"][0]
    context, gen_kwargs = sample["arguments"][0]
    assert context.startswith("<|endoftext|>") and context.endswith("<|endoftext|>")
    assert "<|endoftext|>" in gen_kwargs["until"]


def test_the_baseline_schema_lists_exactly_the_prompt_formats_the_library_knows():
    """`baselines/llm/schema.json` restates the format names for editors and validators; a format
    added to `prompt_formats.PROMPT_FORMATS` and not to the schema (or the reverse) fails here."""
    schema_path = Path(__file__).resolve().parents[1] / "baselines" / "llm" / "schema.json"
    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    assert schema["properties"]["prompt_format"]["enum"] == list(prompt_formats.PROMPT_FORMATS)
