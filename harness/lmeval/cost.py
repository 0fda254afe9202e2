"""What a run cost: each task's tokens and generation time, written into every results file.

`plugin.patch_evaluator` wraps lm-eval's `evaluate(lm, task_dict, ...)` with `meter_evaluate`.
For the length of that call the built model's `generate_until` is timed and every request is
counted under its task (lm-eval's `Instance.task_name`), whatever the backend: `hf`,
`taiyi-hf`, `vllm`, the chat-completions APIs, a test's scripted model. The results dict gains
`COST_KEY`, which lm-eval's CLI writes into results_<date>.json as it is (layout: results/README.md).

Token counts come from the first source a request has:
  1. the API's usage report (chat-completions backends): the tokens the provider bills;
  2. the model's tokenizer (`lm.tok_encode`): the prompt as sent, and the returned text re-encoded;
  3. none: the counts are null and `tokenizer` says "none exposed" (nothing is guessed).

`taiyi baseline run` prices the counts with the config's `price` table (`add_price`); a BERT run
writes `discriminative_cost`; the leaderboard and the report read the record back through
`cost_summary`.
"""

from __future__ import annotations

import functools
import inspect
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from taiyi_bench.harness.results_io import read_results, write_results

COST_KEY = "taiyi_cost"
FROM_API_USAGE = "the API's usage report (tokens billed)"
FROM_MODEL_TOKENIZER = "the model's tokenizer (prompt as sent, output re-encoded)"
NOT_EXPOSED = "none exposed"
TIME_NOTE = (
    "lm-eval sends every task's requests to the model together, so each call's wall time is shared among "
    "its tasks in proportion to their generated tokens (to their requests when some of the call's tokens "
    "are not counted); generation requests only"
)
PRICE_FIELDS = ("input_usd_per_million", "output_usd_per_million", "date", "source")

# The contexts of the API request being answered: lm-eval's concurrent path hands
# `parse_generations` the response alone, so the request travels beside it, per asyncio task.
_API_REQUEST_CONTEXTS: ContextVar[Sequence[Any] | None] = ContextVar("taiyi_api_request_contexts", default=None)
_log = logging.getLogger("taiyi-bench")


@dataclass
class _Tally:
    """One task's generation requests so far."""

    doc_ids: set[Any] = field(default_factory=set)
    requests: int = 0
    prompt_tokens: int = 0
    generated_tokens: int = 0
    sources: set[str] = field(default_factory=set)  # where the counts came from; NOT_EXPOSED for uncounted ones
    seconds: float = 0.0


def _summary(units: int, tallies: Sequence[_Tally]) -> dict[str, Any]:
    sources = set().union(*(tally.sources for tally in tallies))
    counted = NOT_EXPOSED not in sources
    seconds = sum(tally.seconds for tally in tallies)
    generated = sum(tally.generated_tokens for tally in tallies)
    return {
        "units": units,
        "requests": sum(tally.requests for tally in tallies),
        "prompt_tokens": sum(tally.prompt_tokens for tally in tallies) if counted else None,
        "generated_tokens": generated if counted else None,
        "seconds": seconds,
        "seconds_per_unit": seconds / units if units else None,
        "generated_tokens_per_second": generated / seconds if counted and seconds > 0 else None,
        "tokenizer": " + ".join(sorted(sources)),
    }


class _Meter:
    """Counts and times one model's generation requests, per task."""

    def __init__(self, lm: Any) -> None:
        self.lm = lm
        self.tasks: dict[str, _Tally] = {}
        self.api_usage: dict[str, list[tuple[int, int]]] = {}  # str(context) -> (prompt, completion) per response
        self.failure: str | None = None

    @contextmanager
    def attached(self) -> Iterator[None]:
        """The model's methods wrapped for the length of one evaluation, then restored."""
        # lm-eval's --use_cache wraps the model in a CachingLM; the API answers inside it.
        inner = getattr(self.lm, "lm", self.lm)
        with ExitStack() as stack:
            stack.enter_context(_replaced(self.lm, "generate_until", self._timed(self.lm.generate_until)))
            if callable(getattr(inner, "parse_generations", None)):
                stack.enter_context(_replaced(inner, "parse_generations", self._reading_usage(inner.parse_generations)))
            if callable(getattr(inner, "amodel_call", None)):
                stack.enter_context(_replaced(inner, "amodel_call", _carrying_contexts(inner.amodel_call)))
            yield

    def _timed(self, generate_until: Callable[..., list[str]]) -> Callable[..., list[str]]:
        def timed(requests: list[Any], *args: Any, **kwargs: Any) -> list[str]:
            start = time.perf_counter()
            outputs = generate_until(requests, *args, **kwargs)
            elapsed = time.perf_counter() - start
            try:
                self._record_call(requests, outputs, elapsed)
            except Exception as exc:  # counting must never cost the run its answers
                self.failure = repr(exc)
                _log.warning("taiyi-bench: the run's cost is not recorded (counting failed: %r)", exc)
            return outputs

        return timed

    def _reading_usage(self, parse_generations: Callable[..., list[Any]]) -> Callable[..., list[Any]]:
        def parse(outputs: Any, **kwargs: Any) -> list[Any]:
            texts = parse_generations(outputs=outputs, **kwargs)
            contexts = kwargs.get("contexts") or _API_REQUEST_CONTEXTS.get()
            usage = outputs.get("usage") if isinstance(outputs, dict) else None
            # One usage block covers the whole response: it belongs to a request only when the response answers one.
            if contexts and len(contexts) == 1 and isinstance(usage, dict):
                prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
                if isinstance(prompt, int) and isinstance(completion, int):
                    self.api_usage.setdefault(str(contexts[0]), []).append((prompt, completion))
            return texts

        return parse

    def _count(self, request: Any, output: Any) -> tuple[int, int, str] | None:
        """(prompt tokens, generated tokens, source) of one answered request; None when uncounted."""
        context = request.args[0]  # read after the call: taiyi-hf wraps its prompts in place
        reported = self.api_usage.get(str(context))
        if reported:
            prompt, generated = reported.pop(0)
            return prompt, generated, FROM_API_USAGE
        if getattr(self.lm, "tokenizer", None) is None or not isinstance(output, str):
            return None
        prompt_ids = self.lm.tok_encode(context)
        output_ids = self.lm.tok_encode(output, add_special_tokens=False)
        # A chat backend's tok_encode hands the text back untokenised: not a count.
        if not (isinstance(prompt_ids, list) and isinstance(output_ids, list)):
            return None
        return len(prompt_ids), len(output_ids), FROM_MODEL_TOKENIZER

    def _record_call(self, requests: Sequence[Any], outputs: Sequence[Any], elapsed: float) -> None:
        counts = [(request, self._count(request, output)) for request, output in zip(requests, outputs, strict=True)]
        by_tokens = all(count is not None for _, count in counts) and sum(count[1] for _, count in counts) > 0
        weights: dict[str, float] = {}
        for request, count in counts:
            tally = self.tasks.setdefault(request.task_name, _Tally())
            tally.doc_ids.add(request.doc_id)
            tally.requests += 1
            if count is None:
                tally.sources.add(NOT_EXPOSED)
            else:
                tally.prompt_tokens += count[0]
                tally.generated_tokens += count[1]
                tally.sources.add(count[2])
            weights[request.task_name] = weights.get(request.task_name, 0) + (count[1] if by_tokens else 1)
        total = sum(weights.values())
        for task, weight in weights.items():
            self.tasks[task].seconds += elapsed * weight / total

    def record(self) -> dict[str, Any] | None:
        """The results' COST_KEY entry; None when nothing was generated or counting failed."""
        if self.failure is not None or not self.tasks:
            return None
        note = TIME_NOTE
        processes = getattr(self.lm, "world_size", 1)
        if isinstance(processes, int) and processes > 1:
            note += f"; a data-parallel run: the counts are this process's share of {processes}"
        tasks = {task: _summary(len(tally.doc_ids), [tally]) for task, tally in sorted(self.tasks.items())}
        total = _summary(sum(len(tally.doc_ids) for tally in self.tasks.values()), list(self.tasks.values()))
        return {"tasks": tasks, "total": total, "note": note}


_MISSING = object()


@contextmanager
def _replaced(owner: Any, name: str, replacement: Any) -> Iterator[None]:
    """`owner.name` is `replacement` inside the block; afterwards what it was (usually the class's method)."""
    saved = vars(owner).get(name, _MISSING)
    setattr(owner, name, replacement)
    try:
        yield
    finally:
        if saved is _MISSING:
            delattr(owner, name)
        else:
            setattr(owner, name, saved)


def _carrying_contexts(amodel_call: Callable[..., Any]) -> Callable[..., Any]:
    async def call(*args: Any, **kwargs: Any) -> Any:
        token = _API_REQUEST_CONTEXTS.set(kwargs.get("messages"))
        try:
            return await amodel_call(*args, **kwargs)
        finally:
            _API_REQUEST_CONTEXTS.reset(token)

    return call


def meter_evaluate(evaluate: Callable[..., Any]) -> Callable[..., Any]:
    """lm-eval's `evaluate`, adding the run's COST_KEY record to the results it returns."""
    if getattr(evaluate, "_taiyi_bench_metered", False):
        return evaluate
    signature = inspect.signature(evaluate)

    @functools.wraps(evaluate)
    def metered(*args: Any, **kwargs: Any) -> Any:
        try:
            lm = signature.bind(*args, **kwargs).arguments.get("lm")
        except TypeError:  # a call lm-eval itself refuses: its message, not ours
            lm = None
        if lm is None or not callable(getattr(lm, "generate_until", None)):
            return evaluate(*args, **kwargs)
        meter = _Meter(lm)
        with meter.attached():
            results = evaluate(*args, **kwargs)
        record = meter.record()
        if isinstance(results, dict) and record is not None:  # None on the other ranks of a parallel run
            results[COST_KEY] = record
        return results

    metered._taiyi_bench_metered = True
    return metered


# --- price and read-back -------------------------------------------------------------------------


DISCRIMINATIVE = "none: a discriminative model generates no tokens"


def discriminative_cost(task: str, units: int, seconds: float) -> dict[str, Any]:
    """The COST_KEY record of a discriminative (BERT) run: its prediction wall time over `units`
    (training excluded), no generated tokens, its input tokens not counted."""
    summary = {**_summary(units, [_Tally(requests=units, sources={NOT_EXPOSED}, seconds=seconds)]),
               "generated_tokens": 0, "tokenizer": DISCRIMINATIVE}
    return {"tasks": {task: summary}, "total": dict(summary),
            "note": "prediction wall time of the encoder over the evaluated units, scoring included, training excluded"}


def priced(record: Mapping[str, Any], price: Mapping[str, Any]) -> dict[str, Any]:
    """A COST_KEY record with `price` (a config's table, PRICE_FIELDS) and the estimated USD of
    every task and of the total: prompt tokens at the input price, generated tokens at the output
    price. A task whose tokens were not counted gets null, never zero."""
    def estimate(summary: Mapping[str, Any]) -> float | None:
        prompt, generated = summary.get("prompt_tokens"), summary.get("generated_tokens")
        if not (isinstance(prompt, int) and isinstance(generated, int)):
            return None
        return (prompt * price["input_usd_per_million"] + generated * price["output_usd_per_million"]) / 1_000_000

    tasks = {task: {**summary, "estimated_usd": estimate(summary)} for task, summary in record.get("tasks", {}).items()}
    total = {**record.get("total", {}), "estimated_usd": estimate(record.get("total", {}))}
    return {**record, "tasks": tasks, "total": total, "price": {key: price[key] for key in PRICE_FIELDS}}


def add_price(results_path: Path, price: Mapping[str, Any] | None) -> bool:
    """Price the token counts of the results file `results_path` in place (`priced`). Nothing
    happens without a price table or a COST_KEY record. Returns whether the file was priced."""
    if not price:
        return False
    data = read_results(results_path)
    record = data.get(COST_KEY)
    if not isinstance(record, dict):
        return False
    data[COST_KEY] = priced(record, price)
    write_results(results_path, data)
    return True


def cost_summary(results: Mapping[str, Any]) -> dict[str, dict[str, Any]] | None:
    """task -> its cost (units, requests, prompt_tokens, generated_tokens, seconds,
    seconds_per_unit, generated_tokens_per_second, tokenizer, and estimated_usd when priced) from a
    results dict; None for a file written before runs recorded their cost."""
    record = results.get(COST_KEY)
    tasks = record.get("tasks") if isinstance(record, Mapping) else None
    if not isinstance(tasks, Mapping):
        return None
    return {str(task): dict(summary) for task, summary in tasks.items() if isinstance(summary, Mapping)}
