"""Scripted language models for tests and sanity checks: they answer without any weights.

`ScriptedLM` calls a function of (doc, prompt) for every generation request; `oracle_lm()`
answers each unit with its gold rendered in Taiyi's format, so a correct harness must score
it 1.0 everywhere with `parse_fail` 0. Both plug into lm-eval's own evaluator
(`lm_eval.simple_evaluate(model=oracle_lm(), ...)`), so the whole task path is exercised.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lm_eval.api.model import LM

from taiyi_bench.harness.lmeval.tasks import doc_to_target

Responder = Callable[[dict[str, Any], str], str]


class ScriptedLM(LM):
    """An lm-eval model whose generations come from `respond(doc, prompt)`."""

    def __init__(self, respond: Responder, name: str = "scripted") -> None:
        super().__init__()
        self._respond = respond
        self.name = name
        self.prompts: list[str] = []  # every prompt seen, in request order

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        outputs = []
        for request in requests:
            prompt = request.arguments[0]
            self.prompts.append(prompt)
            outputs.append(self._respond(request.doc, prompt))
        return outputs

    def loglikelihood(self, requests: list[Any], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        raise NotImplementedError("taiyi_* tasks are generate_until only")

    def loglikelihood_rolling(self, requests: list[Any], disable_tqdm: bool = False) -> list[float]:
        raise NotImplementedError("taiyi_* tasks are generate_until only")


def oracle_lm() -> ScriptedLM:
    """Answers every unit with its gold answer in the expected format."""
    return ScriptedLM(lambda doc, _prompt: doc_to_target(doc), name="oracle")


def constant_lm(text: str) -> ScriptedLM:
    """Answers every unit with the same text (e.g. "" to exercise parse failures)."""
    return ScriptedLM(lambda _doc, _prompt: text, name=f"constant:{text[:20]!r}")
