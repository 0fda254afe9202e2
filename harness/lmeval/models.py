"""lm-eval model types that wrap each prompt in a named format: `taiyi-hf` and `taiyi-vllm`.

    lm_eval --model taiyi-hf --model_args pretrained=M,prompt_format=eod --tasks 'taiyi_*'
    lm_eval --model taiyi-hf --model_args pretrained=M,prompt_format=chat_template --apply_chat_template ...

They are lm-eval's own `hf` and `vllm` backends (every other model_arg is theirs) plus two keys:
`prompt_format` (required; `taiyi_bench.harness.prompt_formats.PROMPT_FORMATS`) and, for the eod formats,
`eod_token` (the recipe's `format.eod_token`; default: the tokenizer's eos, else its eod_id).
Because lm-eval copies `--model_args` into the results file, the format is recorded there.

How each format reaches the model:
  * chat_template: lm-eval renders the chat template; this wrapper only checks that
    --apply_chat_template was given (without it the model would get the bare prompt).
  * plain: the bare prompt; --apply_chat_template is refused.
  * eod / taiyi1: `<eod>` + prompt + `<eod>` (text; the tokenizer turns it back into the same
    token ids the recipe trained on, checked when the model loads), `<eod>` added to the
    stop sequences, no BOS added (training adds none). --apply_chat_template is refused.
    The wrapped prompt is what the samples log shows.

Before the backend loads anything, `pretrained=` (and `peft=`/`delta=` for taiyi-hf) must name a
local folder or a Hugging Face id that can be fetched (offline: one in the local cache); anything
else is one line naming it. `--use_cache` is refused in the eod formats: lm-eval's cache looks a
request up before this wrapper wraps it (`taiyi_bench.harness.lmeval.preflight.check_cache`).

`taiyi_bench.harness.lmeval.plugin` registers both names when lm-eval's registry is imported, so the
literal `lm_eval` command needs no extra flag. A format mismatch raises `PromptFormatError`;
under the `lm_eval` command it is printed as one line, without a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lm_eval.models.huggingface import HFLM

from taiyi_bench.harness import prompt_formats
from taiyi_bench.harness.errors import ConfigError
from taiyi_bench.harness.integrity import check_adapter
from taiyi_bench.harness.lmeval.errors import install_excepthook
from taiyi_bench.harness.lmeval.preflight import (
    PromptFormatError as PromptFormatError,  # defined there: preflight raises it
)
from taiyi_bench.harness.lmeval.preflight import cache_refusal, check_model_location


class PromptFormatMixin:
    """Wraps request contexts in the chosen prompt format; put before the lm-eval LM class."""

    def _configure_prompt_format(self, prompt_format: Any, eod_token: Any, kwargs: dict[str, Any]) -> None:
        # Runs before the backend loads the model: argument errors cost no loading time.
        if prompt_format is None:
            choices = " | ".join(prompt_formats.PROMPT_FORMATS)
            raise PromptFormatError(f"this model type needs prompt_format in --model_args: {choices}")
        try:
            self._prompt_format = prompt_formats.check_format(prompt_format, "--model_args prompt_format")
        except ConfigError as exc:
            raise PromptFormatError(str(exc)) from None
        self._eod_format = self._prompt_format in prompt_formats.EOD_FORMATS
        if eod_token is not None and not self._eod_format:
            raise PromptFormatError(
                f"--model_args eod_token is only for prompt_format=eod or taiyi1, not {self._prompt_format}"
            )
        if self._eod_format and kwargs.get("add_bos_token"):
            raise PromptFormatError(
                f"prompt_format={self._prompt_format} puts no BOS before <eod> (the recipe trains without one); "
                "drop add_bos_token from --model_args"
            )
        self._eod_token_arg = None if eod_token is None else str(eod_token)
        self._eod_id: int | None = None
        self._eod_text: str | None = None
        self._template_applied = False

    def _bind_tokenizer(self, tokenizer: Any) -> None:
        """Find `<eod>` in the loaded tokenizer, exactly as the fine-tuning recipe does."""
        if not self._eod_format:
            return
        try:
            eod_id = prompt_formats.eod_token_id(tokenizer, self._eod_token_arg)
        except ConfigError:
            problem = (
                f"eod_token {self._eod_token_arg!r} is not a token of this tokenizer" if self._eod_token_arg
                else "the tokenizer has no eos token (nor an eod_id); name one with eod_token=<token> in --model_args"
            )
            raise PromptFormatError(f"prompt_format={self._prompt_format}: {problem}") from None
        text = tokenizer.decode([eod_id], skip_special_tokens=False)
        # The prompt travels as text: <eod> must come back as exactly its one id, or the model
        # would see other tokens than it was trained on.
        if list(tokenizer.encode(text, add_special_tokens=False)) != [eod_id]:
            raise PromptFormatError(
                f"prompt_format={self._prompt_format}: the eod token {text!r} (id {eod_id}) does not tokenize back "
                "to itself, so it cannot be written into a prompt; choose another eod_token"
            )
        self._eod_id, self._eod_text = eod_id, text
        self.add_bos_token = False  # read by the backends' tokenisation: no BOS before <eod>

    def set_cache_hook(self, cache_hook: Any) -> None:
        # lm-eval's CachingLM (--use_cache) hands the model its database here. It looks requests
        # up before this wrapper adds <eod>, so an eod run would be served other formats' answers
        # (taiyi_bench.harness.lmeval.preflight.check_cache refuses the same earlier, from the command line).
        if getattr(cache_hook, "dbdict", None) is not None and getattr(self, "_eod_format", False):
            raise PromptFormatError(cache_refusal(self._prompt_format))
        super().set_cache_hook(cache_hook)  # type: ignore[misc]

    @property
    def eot_token_id(self) -> int:
        # lm-eval stops at (and decodes) the tokenizer's eos; Qwen 1's tokenizer has none.
        if getattr(self, "_eod_id", None) is not None:
            return self._eod_id
        return super().eot_token_id  # type: ignore[misc]

    def wrap_prompt(self, context: str) -> str:
        return prompt_formats.wrap_prompt(self._prompt_format, context, self._eod_text)

    # lm-eval calls chat_template(flag) before building requests when --apply_chat_template is
    # given, and apply_chat_template(...) for every prompt it renders.
    def chat_template(self, chat_template: bool | str = False) -> str | None:
        if chat_template:
            self._chat_template_requested()
        return super().chat_template(chat_template)  # type: ignore[misc]

    def apply_chat_template(self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        self._chat_template_requested()
        return super().apply_chat_template(chat_history, add_generation_prompt)  # type: ignore[misc]

    def _chat_template_requested(self) -> None:
        if self._prompt_format != "chat_template":
            raise PromptFormatError(
                f"prompt_format={self._prompt_format} and --apply_chat_template contradict each other: "
                "drop --apply_chat_template, or use prompt_format=chat_template"
            )
        self._template_applied = True

    def _check_template_applied(self) -> None:
        if self._prompt_format == "chat_template" and not self._template_applied:
            raise PromptFormatError(
                "prompt_format=chat_template but lm-eval applied no chat template: add --apply_chat_template "
                "(or use prompt_format=plain for the bare prompt)"
            )

    def _wrap_requests(self, requests: list[Any], generation: bool) -> None:
        self._check_template_applied()
        for request in requests:
            if getattr(request, "_taiyi_wrapped", False):
                continue  # never wrap twice (a retried call gets the same instances)
            context, rest = request.arguments[0], request.arguments[1:]
            if generation and rest and isinstance(rest[0], dict):
                gen_kwargs = dict(rest[0])
                gen_kwargs["until"] = prompt_formats.stop_sequences(
                    self._prompt_format, gen_kwargs.get("until"), self._eod_text
                )
                rest = (gen_kwargs, *rest[1:])
            # Replaced in place so that the samples log records the prompt the model saw.
            request.arguments = (self.wrap_prompt(context), *rest)
            request._taiyi_wrapped = True

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        self._wrap_requests(requests, generation=True)
        return super().generate_until(requests, disable_tqdm=disable_tqdm)  # type: ignore[misc]

    def loglikelihood(self, requests: list[Any], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        self._wrap_requests(requests, generation=False)
        return super().loglikelihood(requests, disable_tqdm=disable_tqdm)  # type: ignore[misc]


class TaiyiHFLM(PromptFormatMixin, HFLM):
    """lm-eval's `hf` backend with `prompt_format` (registered as `taiyi-hf`)."""

    def __init__(self, *args: Any, prompt_format: str | None = None, eod_token: str | None = None, **kwargs: Any):
        self._configure_prompt_format(prompt_format, eod_token, kwargs)
        _check_model_folders(kwargs)
        super().__init__(*args, **kwargs)
        self._bind_tokenizer(self.tokenizer)


def _check_model_folders(kwargs: dict[str, Any]) -> None:
    """pretrained= (and taiyi-hf's peft= and delta=) name something loadable, before the backend
    loads anything: a mistyped path would otherwise end in a Hub traceback (`check_model_location`)."""
    revision = kwargs.get("revision") if isinstance(kwargs.get("revision"), str) else None
    gguf_file, subfolder = kwargs.get("gguf_file"), kwargs.get("subfolder")
    # What the backend reads first: the GGUF file when one is named, else config.json, both
    # under `subfolder` when one is given.
    marker = gguf_file if isinstance(gguf_file, str) and gguf_file else "config.json"
    if isinstance(subfolder, str) and subfolder:
        marker = f"{subfolder.strip('/')}/{marker}"
    check_model_location("pretrained", kwargs.get("pretrained"), marker, revision=revision)
    peft = kwargs.get("peft")
    if isinstance(peft, str) and Path(peft).expanduser().exists():
        # A local adapter is evaluated only when complete (`taiyi_bench.harness.integrity`): an interrupted
        # fine-tuning stage or a truncated file stops here, in one line, before any load.
        check_adapter(Path(peft).expanduser(), f"peft={peft}")
    else:
        check_model_location("peft", peft, "adapter_config.json")
    check_model_location("delta", kwargs.get("delta"), "config.json")  # a delta is a whole model's weights


def _vllm_class() -> type:
    try:
        from lm_eval.models.vllm_causallms import VLLM
    except ImportError as exc:
        raise PromptFormatError(
            f"--model taiyi-vllm needs vLLM ({exc}): pip install 'taiyi-bench[vllm]', or use --model taiyi-hf"
        ) from None

    class TaiyiVLLM(PromptFormatMixin, VLLM):
        """lm-eval's `vllm` backend with `prompt_format` (registered as `taiyi-vllm`)."""

        def __init__(self, *args: Any, prompt_format: str | None = None, eod_token: str | None = None, **kwargs: Any):
            self._configure_prompt_format(prompt_format, eod_token, kwargs)
            _check_model_folders(kwargs)
            super().__init__(*args, **kwargs)
            self._bind_tokenizer(self.tokenizer)

    TaiyiVLLM.__module__ = __name__
    return TaiyiVLLM


def __getattr__(name: str) -> Any:
    # vLLM is optional and imports CUDA machinery: build its wrapper only when it is asked for.
    if name == "TaiyiVLLM":
        cls = _vllm_class()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


install_excepthook()  # a PromptFormatError or an incomplete adapter (peft=) is a ConfigError: one line
