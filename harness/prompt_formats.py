"""Prompt formats: how a task's prompt is wrapped before it reaches a model.

A run names one format; the same name works in a baseline config (`prompt_format:`), in
`lm_eval --model taiyi-hf --model_args ...,prompt_format=<name>` (see `taiyi_bench.harness.lmeval.models`)
and in the results file (lm-eval copies model_args into `config.model_args`).

    chat_template  the model's own chat template, applied by lm-eval (--apply_chat_template);
                   the default for chat models
    plain          the bare prompt, as lm-eval sends it without a chat template
    eod            `<eod>` + prompt + `<eod>`, generation stops at `<eod>`: what `taiyi finetune`
                   trains with `format.style: eod` (finetune/encoding.py: `<eod>input<eod>answer<eod>`,
                   labels on the answer and its closing `<eod>`)
    taiyi1         an alias of `eod`: Taiyi 1's dialogue format is the same wire format

`<eod>` is chosen as the recipe chooses it (`eod_token_id` below, which `finetune` uses): the `eod_token`
given (the recipe's `format.eod_token`), else the tokenizer's eos, else its `eod_id` (Qwen 1's
tokenizer sets no eos; its `<|endoftext|>` is the eod). For Taiyi 1 (a Qwen 1 tokenizer) every
rule gives `<|endoftext|>`, the token its released code puts before and after the input.

This module holds no lm-eval code, so configs and the fine-tuning CLI can use it cheaply.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from taiyi_bench.harness.errors import ConfigError

PROMPT_FORMATS: tuple[str, ...] = ("chat_template", "plain", "eod", "taiyi1")
# Same wire format, two names: `taiyi1` says which model it is for, `eod` what it is.
ALIASES: Mapping[str, str] = {"taiyi1": "eod"}
EOD_FORMATS = frozenset({"eod", "taiyi1"})

# The lm-eval model types that take `prompt_format` (registered by taiyi_bench.harness.lmeval.plugin).
WRAPPER_BACKENDS: Mapping[str, str] = {"hf": "taiyi-hf", "vllm": "taiyi-vllm"}


def check_format(name: Any, where: str = "prompt_format") -> str:
    """`name` when it is a known format; ConfigError naming `where` otherwise."""
    if name not in PROMPT_FORMATS:
        raise ConfigError(f"{where}: unknown prompt format {name!r}; choose one of {', '.join(PROMPT_FORMATS)}")
    return str(name)


def canonical(name: str) -> str:
    """The format an alias stands for (`taiyi1` -> `eod`); other names unchanged."""
    return ALIASES.get(check_format(name), name)


def uses_chat_template(name: str) -> bool:
    """Whether lm-eval must apply the model's chat template (--apply_chat_template)."""
    return check_format(name) == "chat_template"


def default_format(apply_chat_template: bool) -> str:
    """The format of a run that names none (what lm-eval does on its own)."""
    return "chat_template" if apply_chat_template else "plain"


def wrap_prompt(name: str, prompt: str, eod_text: str | None = None) -> str:
    """The text sent to the model for one prompt.

    `chat_template` and `plain` leave it as it is (lm-eval has applied the template already, or
    there is none); the eod formats put `eod_text` (the eod token as text) before and after it.
    """
    if canonical(name) == "eod":
        if not eod_text:
            raise ConfigError(f"prompt_format={name} needs the eod token's text")
        return f"{eod_text}{prompt}{eod_text}"
    return prompt


def stop_sequences(name: str, until: Sequence[str] | str | None, eod_text: str | None = None) -> list[str]:
    """A task's stop sequences plus the format's own (`<eod>` for the eod formats)."""
    stops = [until] if isinstance(until, str) else list(until or [])
    if canonical(name) == "eod" and eod_text and eod_text not in stops:
        stops.append(eod_text)
    return stops


def eod_token_id(tokenizer: Any, eod_token: str | None = None) -> int:
    """The id of Taiyi's `<eod>`: `eod_token` if given, else the tokenizer's eos.

    Qwen-7B's remote-code tokenizer has no eos token set but an `eod_id` (`<|endoftext|>`).
    """
    if eod_token is None:
        if tokenizer.eos_token_id is not None:
            return int(tokenizer.eos_token_id)
        if getattr(tokenizer, "eod_id", None) is not None:
            return int(tokenizer.eod_id)
        raise ConfigError(
            "format.style=eod needs an eod token: the tokenizer has no eos; set format.eod_token"
        )
    if eod_token == "<|endoftext|>" and getattr(tokenizer, "eod_id", None) is not None:
        return int(tokenizer.eod_id)
    token_id = tokenizer.convert_tokens_to_ids(eod_token)
    if token_id is None or token_id == tokenizer.unk_token_id:
        raise ConfigError(f"format.eod_token {eod_token!r} is not a token of this tokenizer")
    return int(token_id)
