"""The lm-eval glue through the literal `lm_eval` command: what a review found it let through.

1. `--use_cache`: an eod run was served a plain run's cached answers. The cache is keyed by the
   text lm-eval looks up; a run may use it only where that text is what the model gets.
2. An unknown `--metadata` key (`mcmle_option`, a typo) ran the default form silently.
3. A `data_dir` that is not a path ended in a TypeError traceback.
4. A wrong `pretrained=`/`peft=` path ended in a Hub traceback; an empty data directory was
   reported only after the model loaded.

Each refusal is one `lm_eval: error:` line naming what is wrong, with no traceback, and comes
before the model loads where lm-eval allows it: several runs below give a model path that does
not exist, so an error about anything else proves the check ran first.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from taiyi_bench.harness.errors import ConfigError, DataNotFoundError
from taiyi_bench.harness.lmeval.models import PromptFormatError, TaiyiHFLM
from taiyi_bench.harness.lmeval.preflight import check_run
from taiyi_bench.harness.paths import DATA_DIR_ENV, SAMPLES_DIR
from taiyi_bench.harness.random_models import build_tiny_causal_lm

OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
TASK = "taiyi_kuake_qic"


@pytest.fixture(autouse=True)
def _no_data_dir_env(monkeypatch) -> None:
    # Runs without --metadata data_dir read the bundled samples, whatever the shell exports.
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny") / "lm", seed=0)


def _lm_eval(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lm_eval", *args, "--limit", "2", "--device", "cpu"],
        capture_output=True, text=True, timeout=300,
        env={**{k: v for k, v in env.items() if k != DATA_DIR_ENV}, **OFFLINE},
    )  # fmt: skip


def _error_line(done: subprocess.CompletedProcess) -> str:
    """The one `lm_eval: error:` line of a refused run (exit 1, no traceback)."""
    assert done.returncode == 1, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    (line,) = [x for x in done.stderr.splitlines() if x.startswith("lm_eval: error:")]
    return line


def _model_built(done: subprocess.CompletedProcess) -> bool:
    # lm-eval logs this line just before it builds the model
    return "Initializing" in done.stderr


# ------------------------------------------------------------------------------ 1. --use_cache


def _cached_run(tiny_dir: Path, cache: Path, prompt_format: str, pretrained: Path | None = None) -> list[str]:
    """One in-process run of TASK with lm-eval's response cache at `cache`; the answers it got."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = lm_eval.simple_evaluate(
            model="taiyi-hf", model_args=f"pretrained={pretrained or tiny_dir},prompt_format={prompt_format}",
            tasks=[TASK], limit=2, device="cpu", batch_size=2, use_cache=str(cache), log_samples=True,
            apply_chat_template=prompt_format == "chat_template", gen_kwargs={"max_gen_toks": 4},
            task_manager=TaskManager(include_defaults=False),  # our tasks only: indexing lm-eval's takes seconds
        )  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    return [sample["resps"][0][0] for sample in out["samples"][TASK]]


def test_a_cached_answer_is_reused_only_for_the_prompt_the_model_got(tiny_dir, tmp_path, single_thread_env):
    from lm_eval.api.model import CachingLM
    from sqlitedict import SqliteDict

    cache = tmp_path / "cache" / "tiny"
    _cached_run(tiny_dir, cache, "plain")
    # Mark every cached answer: a run that reuses one says so in its samples.
    with SqliteDict(f"{cache}_rank0.db", autocommit=True) as db:
        assert len(db) >= 2
        for key in list(db):
            db[key] = "CACHED"
    assert _cached_run(tiny_dir, cache, "plain") == ["CACHED", "CACHED"]  # the cache is live
    assert "CACHED" not in _cached_run(tiny_dir, cache, "chat_template")  # another text, another key

    # eod wraps the prompt after lm-eval's lookup: refused before the model loads (the absent
    # pretrained folder would be the error otherwise), and by the model type itself when a caller
    # wraps a built model in lm-eval's cache.
    with pytest.raises(PromptFormatError, match="--use_cache cannot be used with prompt_format=eod"):
        _cached_run(tiny_dir, cache, "eod", pretrained=tmp_path / "absent")
    lm = TaiyiHFLM.__new__(TaiyiHFLM)
    lm._configure_prompt_format("taiyi1", None, {})
    with pytest.raises(PromptFormatError, match="prompt_format=taiyi1"):
        CachingLM(lm, str(tmp_path / "other.db"))

    done = _lm_eval(
        "--model", "taiyi-hf", "--model_args", f"pretrained={tiny_dir},prompt_format=eod",
        "--tasks", TASK, "--use_cache", str(cache), env=single_thread_env,
    )  # fmt: skip
    line = _error_line(done)
    assert "--use_cache" in line and "prompt_format=eod" in line and not _model_built(done)


# ------------------------------------------------------------------------------ 2. unknown --metadata keys


def test_an_unknown_metadata_key_is_refused_naming_it_and_the_known_ones(tmp_path, single_thread_env, caplog):
    done = _lm_eval(
        "--model", "taiyi-hf", "--model_args", f"pretrained={tmp_path / 'absent'},prompt_format=plain,dtype=float32",
        "--tasks", "taiyi_medqa_mcmle", "--metadata", json.dumps({"mcmle_option": 5}), env=single_thread_env,
    )  # fmt: skip
    line = _error_line(done)
    assert "'mcmle_option'" in line and "mcmle_options" in line and "data_dir" in line
    # model args reach the tasks' metadata too: they are not unknown keys
    assert "dtype" not in line and "pretrained" not in line and not _model_built(done)

    # Our keys, lm-eval's own and the model args pass; beside another suite's tasks an unknown key
    # may be theirs, so it is only a warning.
    check_run({
        "model": "hf", "model_args": "pretrained=x,dtype=float32", "tasks": ["taiyibench_qa"],
        "metadata": {"mcmle_options": 5, "thinking_allowance": 0, "version": 1, "config_source": "x"},
    })  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="taiyi-bench"):
        check_run({"model": "hf", "tasks": [TASK, "ruler"], "metadata": {"max_seq_lengths": [4096]}})
    assert "'max_seq_lengths'" in caplog.text
    check_run({"model": "hf", "tasks": ["pubmedqa"], "metadata": {"max_seq_lengths": [4096]}})  # not ours at all


# ------------------------------------------------------------------------------ 3. data_dir that is not a path


def test_a_data_dir_that_is_not_a_path_is_one_line(tmp_path, single_thread_env):
    from taiyi_bench.harness.lmeval.tasks import load_task_dataset

    done = _lm_eval(
        "--model", "taiyi-hf", "--model_args", f"pretrained={tmp_path / 'absent'},prompt_format=plain",
        "--tasks", TASK, "--metadata", json.dumps({"data_dir": 5}), env=single_thread_env,
    )  # fmt: skip
    line = _error_line(done)
    assert "data_dir must be the path of a folder, not 5" in line and not _model_built(done)

    for value in (["/data"], {"path": "/data"}, 5):  # the same straight from the task, with no run around it
        with pytest.raises(ConfigError, match="data_dir must be the path of a folder"):
            load_task_dataset("kuake_qic", data_dir=value)
        with pytest.raises(ConfigError, match="data_dir must be the path of a folder"):
            check_run({"model": "hf", "tasks": [TASK], "metadata": {"data_dir": value}})


# ------------------------------------------------------------------------------ 4. model and data locations


def test_wrong_model_paths_and_an_empty_data_dir_are_one_line_before_any_load(tiny_dir, tmp_path, single_thread_env, monkeypatch):
    absent = tmp_path / "no-such-model"
    done = _lm_eval(
        "--model", "taiyi-hf", "--model_args", f"pretrained={absent},prompt_format=plain", "--tasks", TASK,
        env=single_thread_env,
    )  # fmt: skip
    line = _error_line(done)
    assert f"pretrained={absent} is neither a local folder" in line

    # An empty data directory, with the plain `hf` model type: checked before the model is built
    # (the absent model would be the error otherwise).
    empty = tmp_path / "data"
    empty.mkdir()
    done = _lm_eval(
        "--model", "hf", "--model_args", f"pretrained={absent}", "--tasks", "taiyi_*",
        "--metadata", json.dumps({"data_dir": str(empty)}), env=single_thread_env,
    )  # fmt: skip
    line = _error_line(done)
    assert f"data directory {empty} is empty" in line and not _model_built(done)

    # A wrong adapter path, a Hub id offline that is not in the local cache, a folder that is no
    # model: the same checks in the model type's constructor, before the backend loads anything
    # (in-process: no subprocess needed to see the exception the hook prints).
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError, match=f"peft={absent} is neither a local folder"):
        TaiyiHFLM(pretrained=str(tiny_dir), peft=str(absent), prompt_format="plain")
    with pytest.raises(ConfigError, match="pretrained=org/no-such-model is neither a local folder nor in the local Hugging Face cache"):
        TaiyiHFLM(pretrained="org/no-such-model", prompt_format="plain")
    with pytest.raises(ConfigError, match=f"pretrained={empty} is a folder without config.json"):
        TaiyiHFLM(pretrained=str(empty), prompt_format="plain")
    # A data directory that lacks some selected sets names each and the file it needs.
    shutil.copytree(SAMPLES_DIR / "KUAKE-QIC", empty / "KUAKE-QIC")
    with pytest.raises(DataNotFoundError, match=r"lacks 1 of the 2 selected sets: taiyi_cmeee \(CMeEE-V2/"):
        check_run({"model": "hf", "tasks": [TASK, "taiyi_cmeee"], "metadata": {"data_dir": str(empty)}})
    check_run({"model": "hf", "tasks": [TASK], "metadata": {"data_dir": str(empty)}})  # what it holds runs
