"""Every run's results carry what it cost: tokens and time per task (`harness/lmeval/cost.py`),
and `taiyi baseline run` prices an API config's tokens with the config's price table.

lm-eval's own evaluator runs in-process (the start-up hook patches it as it patches the `lm_eval`
command) on two taiyi_* tasks: with scripted models, one of them exposing a real tokenizer, and
with lm-eval's chat-completions model against a local server that reports usage as OpenAI's does.
"""

from __future__ import annotations

import http.server
import json
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import lm_eval
import pytest
import yaml
from lm_eval.loggers import EvaluationTracker
from lm_eval.tasks import TaskManager

from taiyi_bench.baselines import llm_run
from taiyi_bench.baselines.llm_registry import list_configs, load_config
from taiyi_bench.harness.errors import ConfigError
from taiyi_bench.harness.lmeval.cost import (
    COST_KEY,
    FROM_API_USAGE,
    FROM_MODEL_TOKENIZER,
    NOT_EXPOSED,
    cost_summary,
    priced,
)
from taiyi_bench.harness.lmeval.plugin import tasks_dir
from taiyi_bench.harness.results_io import read_results

from cli_runs import run_taiyi
from scripted_lm import ScriptedLM, oracle_lm

TASKS = ["taiyi_kuake_qic", "taiyi_cmeie"]
LIMIT = 3
API_KEY = "sk-cost-test-0123456789abcdef"


def _evaluate(model: Any, output_path: Path, **kwargs: Any) -> dict[str, Any]:
    """lm-eval as its CLI runs it (results and samples files under `output_path`), on our task
    folder only; returns the in-memory samples, task -> records."""
    tracker = EvaluationTracker(output_path=str(output_path))
    manager = TaskManager(include_path=str(tasks_dir()), include_defaults=False)
    out = lm_eval.simple_evaluate(model=model, tasks=TASKS, task_manager=manager, limit=LIMIT, log_samples=True,
                                  evaluation_tracker=tracker, **kwargs)
    samples = out.pop("samples")
    tracker.save_results_aggregated(results=out, samples=samples)
    for task in out["configs"]:
        tracker.save_results_samples(task_name=task, samples=samples[task])
    return samples


def _written(output_path: Path) -> dict[str, Any]:
    (path,) = output_path.glob("**/results_*.json")
    return read_results(path)


def _prompt(record: dict[str, Any]) -> str:
    """The prompt of a samples record (a chat's: its messages as JSON, logged as a 1-tuple)."""
    context = record["arguments"]["gen_args_0"]["arg_0"]
    return context if isinstance(context, str) else context[0]


# --- a model with a tokenizer: exact counts --------------------------------------------------


class TokenizingLM(ScriptedLM):
    """A scripted model exposing a real tokenizer the way lm-eval's hf and vllm backends do."""

    def __init__(self, respond: Callable[[dict[str, Any], str], str]) -> None:
        from transformers import AutoTokenizer

        from taiyi_bench.harness.local_models import smollm2_dir

        super().__init__(respond, name="tokenizing")
        self.tokenizer = AutoTokenizer.from_pretrained(smollm2_dir())

    def tok_encode(self, string: str, add_special_tokens: bool | None = None, **kwargs: Any) -> list[int]:
        return self.tokenizer.encode(string, add_special_tokens=bool(add_special_tokens))


def _answer_length(prompt: str) -> int:
    return len(prompt) % 5 + 1


def test_token_counts_are_exact_per_task_and_reach_the_results_file(tmp_path):
    # " the" is one token of this tokenizer, so each answer's length in tokens is known in advance.
    model = TokenizingLM(lambda _doc, prompt: " the" * _answer_length(prompt))
    assert len(model.tokenizer.encode(" the" * 4, add_special_tokens=False)) == 4
    samples = _evaluate(model, tmp_path)
    cost = _written(tmp_path)[COST_KEY]
    tasks = cost["tasks"]
    assert sorted(tasks) == sorted(TASKS)
    for task in TASKS:
        prompts = [_prompt(record) for record in samples[task]]
        assert len(prompts) == LIMIT
        entry = tasks[task]
        assert entry["units"] == entry["requests"] == LIMIT
        assert entry["prompt_tokens"] == sum(len(model.tokenizer.encode(p, add_special_tokens=False)) for p in prompts)
        assert entry["generated_tokens"] == sum(_answer_length(p) for p in prompts)
        assert entry["tokenizer"] == FROM_MODEL_TOKENIZER
        assert entry["seconds"] > 0 and entry["seconds_per_unit"] == pytest.approx(entry["seconds"] / LIMIT)
        assert entry["generated_tokens_per_second"] == pytest.approx(entry["generated_tokens"] / entry["seconds"])
    # One call served both tasks: its time is shared in proportion to the tokens each generated.
    first, second = (tasks[task] for task in TASKS)
    assert first["seconds"] / second["seconds"] == pytest.approx(first["generated_tokens"] / second["generated_tokens"])
    total = cost["total"]
    assert total["units"] == 2 * LIMIT and total["seconds"] == pytest.approx(first["seconds"] + second["seconds"])
    assert total["generated_tokens"] == first["generated_tokens"] + second["generated_tokens"]
    assert "price" not in cost and "estimated_usd" not in first  # lm-eval alone never prices
    assert cost_summary(_written(tmp_path)) == tasks
    assert model.generate_until.__func__ is TokenizingLM.generate_until  # the model is left as it was


def test_a_model_without_a_tokenizer_records_time_and_no_token_counts(tmp_path):
    _evaluate(oracle_lm(), tmp_path)
    tasks = _written(tmp_path)[COST_KEY]["tasks"]
    for task in TASKS:
        assert tasks[task]["units"] == LIMIT and tasks[task]["seconds_per_unit"] > 0
        assert tasks[task]["prompt_tokens"] is None and tasks[task]["generated_tokens"] is None
        assert tasks[task]["generated_tokens_per_second"] is None and tasks[task]["tokenizer"] == NOT_EXPOSED
    # Without token counts the call's time is shared by requests: three each.
    assert tasks[TASKS[0]]["seconds"] == pytest.approx(tasks[TASKS[1]]["seconds"])


def test_cost_summary_of_a_file_written_before_runs_recorded_cost_is_none():
    assert cost_summary({"results": {"taiyi_hoc": {"micro_f1,none": 0.5}}}) is None
    assert cost_summary({COST_KEY: "damaged"}) is None


def test_a_task_without_counts_is_priced_null_never_zero():
    record = {"tasks": {"a": {"prompt_tokens": 2_000_000, "generated_tokens": 100_000}, "b": {"prompt_tokens": None,
              "generated_tokens": None}}, "total": {"prompt_tokens": None, "generated_tokens": None}}
    price = {"input_usd_per_million": 2.5, "output_usd_per_million": 10.0, "date": "2026-12-06", "source": "https://x"}
    out = priced(record, price)
    assert out["tasks"]["a"]["estimated_usd"] == pytest.approx(6.0)
    assert out["tasks"]["b"]["estimated_usd"] is None and out["total"]["estimated_usd"] is None
    assert out["price"] == price


def test_openai_configs_carry_a_dated_price_and_a_price_table_is_checked(tmp_path):
    openai = [config for config in list_configs() if config.backend == "openai-chat-completions"]
    assert openai and all(config.price and config.price["source"].startswith("https://") for config in openai)
    base = {"name": "probe", "display_name": "Probe", "backend": "hf", "model": "org/model", "prompt_format": "plain",
            "batch_size": 1, "gen_kwargs": {}}
    path = tmp_path / "probe.yaml"
    # An unquoted date is a YAML date: read as the same day, not refused.
    path.write_text(yaml.safe_dump(base) + "price: {input_usd_per_million: 1, output_usd_per_million: 2, "
                    "date: 2024-08-06, source: 'https://example.org/pricing'}\n", encoding="utf-8")
    assert load_config(path).price["date"] == "2024-08-06"
    path.write_text(yaml.safe_dump({**base, "price": {"input_usd_per_million": 1, "date": "2024-08-06"}}), encoding="utf-8")
    with pytest.raises(ConfigError, match="price: 'output_usd_per_million' is a required property"):
        load_config(path)


# --- an API model: the provider's usage report, priced by `taiyi baseline run` -------------------


class _ChatServer:
    """A local chat-completions endpoint: answers "A" and reports usage derived from the prompt
    (`usage_for`), as OpenAI's API reports the tokens it bills."""

    def __init__(self) -> None:
        self.authorizations: list[str | None] = []
        seen = self.authorizations

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                seen.append(self.headers.get("Authorization"))
                prompt_tokens, completion_tokens = _ChatServer.usage_for(body["messages"])
                answer = json.dumps({
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "A"}}],
                    "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens},
                }).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def do_GET(self) -> None:  # noqa: N802 - the preflight's reachability probe
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1/chat/completions"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @staticmethod
    def usage_for(messages: list[dict[str, str]]) -> tuple[int, int]:
        content = messages[-1]["content"]
        return len(content), len(content) % 7 + 1


@pytest.fixture
def chat_server() -> Iterator[_ChatServer]:
    server = _ChatServer()
    yield server
    server.server.shutdown()
    server.server.server_close()


PRICE = {"input_usd_per_million": 2.5, "output_usd_per_million": 10.0, "date": "2026-12-06",
         "source": "https://platform.openai.com/docs/pricing"}


@pytest.mark.parametrize(("price", "concurrent"), [(PRICE, 2), (None, 1)], ids=["priced-concurrent", "no-table-sequential"])
def test_baseline_run_prices_the_apis_reported_tokens_and_never_writes_the_key(
    chat_server, tmp_path, capsys, monkeypatch, price, concurrent
):
    config = {"name": "probe", "display_name": "Probe", "backend": "openai-chat-completions", "model": "probe-model",
              "prompt_format": "chat_template", "batch_size": 1, "gen_kwargs": {"do_sample": False},
              "endpoint": {"base_url": chat_server.url, "api_key_env": "PROBE_KEY", "num_concurrent": concurrent}}
    if price:
        config["price"] = price
    path = tmp_path / "probe.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    monkeypatch.setenv("PROBE_KEY", API_KEY)
    samples: dict[str, Any] = {}

    def execute(invocation: llm_run.Invocation) -> int:
        # lm-eval in-process with the model the command names, in the environment it would get.
        model_args = {"model": "probe-model", "base_url": chat_server.url, "num_concurrent": concurrent, "max_retries": 1}
        with mock.patch.dict(os.environ, invocation.environment()):
            samples.update(_evaluate("openai-chat-completions", invocation.output_path, model_args=model_args,
                                     apply_chat_template=True))
        return 0

    monkeypatch.setattr(llm_run, "execute", execute)
    code, out, err = run_taiyi(capsys, "baseline", "run", path, "--tasks", "kuake_qic,cmeie", "--limit", LIMIT,
                               "--output-root", tmp_path / "runs")
    assert code == 0, err
    assert chat_server.authorizations and all(a == f"Bearer {API_KEY}" for a in chat_server.authorizations)
    cost = _written(tmp_path / "runs")[COST_KEY]
    for task in TASKS:
        usage = [_ChatServer.usage_for(json.loads(_prompt(record))) for record in samples[task]]
        entry = cost["tasks"][task]
        assert (entry["prompt_tokens"], entry["generated_tokens"]) == (sum(u[0] for u in usage), sum(u[1] for u in usage))
        assert entry["tokenizer"] == FROM_API_USAGE
        if price:
            expected = (entry["prompt_tokens"] * 2.5 + entry["generated_tokens"] * 10.0) / 1_000_000
            assert entry["estimated_usd"] == pytest.approx(expected)
        else:
            assert "estimated_usd" not in entry
    if price:
        assert cost["price"] == price
        assert cost["total"]["estimated_usd"] == pytest.approx(sum(cost["tasks"][t]["estimated_usd"] for t in TASKS))
    else:
        assert "price" not in cost
    written = [p for p in (tmp_path / "runs").rglob("*") if p.is_file()]
    assert written and not [p for p in written if API_KEY.encode() in p.read_bytes()]
    assert API_KEY not in out + err


def test_a_bert_run_records_its_prediction_time_and_no_generated_tokens(tmp_path: Path) -> None:
    import time

    from taiyi_bench.baselines.results import write_run
    from taiyi_bench.harness.records import Entity, Example, Prediction
    from taiyi_bench.harness.registry import get_spec

    spec = get_spec("ncbi_disease")
    examples = [Example(id=f"u{i}", dataset=spec.key, split="test", text="BRCA1 in breast cancer",
                        entities=[Entity("Disease", "breast cancer")]) for i in range(4)]
    started = time.time() - 2.0  # as if the encoder took two seconds over the four units
    path = write_run(spec, examples, [Prediction(entities={("Disease", "breast cancer")})] * 4, model_name="bert-x",
                     model_args={}, data_source="samples", results_dir=tmp_path, n_original=4, split="test",
                     start_time=started)
    (task, cost), = cost_summary(read_results(path)).items()
    assert task == spec.task_name and cost["units"] == 4 and cost["generated_tokens"] == 0
    assert cost["prompt_tokens"] is None and 0.5 <= cost["seconds_per_unit"] < 5
    assert cost["seconds"] == pytest.approx(cost["seconds_per_unit"] * 4)
