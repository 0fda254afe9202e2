"""Evaluate a fine-tuned adapter in the format it was trained in: the one builder of that command.

A finished stage records in its adapter's `taiyi_stage.json` (under `eval`, from `eval_record`)
everything that changes the evaluation: the base model (resolved), its revision and remote-code
choice, the prompt format, the eod token and the system prompt. `adapter_eval` reads it back;
`taiyi finetune`'s printed command, `taiyi demo` and `taiyi reference` all evaluate through it,
so none of them assumes a format.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taiyi_bench.harness.errors import ConfigError
from taiyi_bench.harness.integrity import STAGE_MARKER
from taiyi_bench.harness.model_args_check import model_arg_problem
from taiyi_bench.harness.prompt_formats import WRAPPER_BACKENDS, check_format


def eval_record(config: dict[str, Any], base: str) -> dict[str, Any]:
    """The `eval` entry of `taiyi_stage.json` for an adapter trained by the resolved recipe
    `config` on `base` (the resolved base model). `format.style` names a prompt format."""
    model, fmt = config["model"], config["format"]
    eod = fmt["style"] == "eod"
    return {
        "base": base,
        "revision": model["revision"],
        "trust_remote_code": bool(model["trust_remote_code"]),
        "prompt_format": fmt["style"],
        "eod_token": fmt["eod_token"] if eod else None,  # None: the tokenizer's eos, as in training
        "system": None if eod else fmt["system"],  # the eod format has no system prompt
    }


@dataclass(frozen=True)
class AdapterEval:
    """How one adapter is evaluated, as its run recorded it."""

    adapter: str
    base: str
    revision: str | None
    trust_remote_code: bool
    prompt_format: str
    eod_token: str | None
    system_instruction: str | None

    @property
    def format_args(self) -> dict[str, str]:
        """The model_args the format needs besides `prompt_format`."""
        return {"eod_token": self.eod_token} if self.eod_token else {}

    def model_args(self, **extra: str) -> str:
        """lm-eval's `--model_args` for the `taiyi-hf` model type; `extra` (e.g. dtype) goes
        before the format's own arguments."""
        args = {"pretrained": self.base, "peft": self.adapter}
        if self.revision:
            args["revision"] = self.revision
        if self.trust_remote_code:
            args["trust_remote_code"] = "True"
        args.update(extra, prompt_format=self.prompt_format, **self.format_args)
        for key, value in args.items():
            if problem := model_arg_problem(key, value):
                raise ConfigError(problem)
        return ",".join(f"{key}={value}" for key, value in args.items())

    def lm_eval_argv(self, tasks: str, output_path: str | Path, **extra_model_args: str) -> list[str]:
        """`lm_eval run` on `tasks` in the recorded format, samples logged under `output_path`."""
        argv = [
            "lm_eval", "run", "--model", WRAPPER_BACKENDS["hf"], "--model_args", self.model_args(**extra_model_args),
            "--tasks", tasks, "--output_path", str(output_path), "--log_samples",
        ]  # fmt: skip
        if self.prompt_format == "chat_template":
            argv.append("--apply_chat_template")
        if self.system_instruction:
            argv += ["--system_instruction", self.system_instruction]
        return argv


def adapter_eval(adapter: str | Path) -> AdapterEval:
    """What the run recorded in `<adapter>/taiyi_stage.json`; a `ConfigError` naming that file
    when it is missing or holds no valid `eval` record."""
    path = Path(adapter) / STAGE_MARKER
    try:
        record = json.loads(path.read_text(encoding="utf-8"))["eval"]
        return AdapterEval(
            adapter=str(adapter),
            base=str(record["base"]),
            revision=record["revision"],
            trust_remote_code=bool(record["trust_remote_code"]),
            prompt_format=check_format(record["prompt_format"], f"{path}: eval.prompt_format"),
            eod_token=record["eod_token"],
            system_instruction=record["system"],
        )
    except ConfigError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else f"{type(exc).__name__}: {exc}"
        raise ConfigError(
            f"{path}: no evaluation record ({why}); `taiyi finetune` writes it when a stage finishes "
            "(an adapter from an older version: train its last stage again)"
        ) from None
