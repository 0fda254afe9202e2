"""`taiyi finetune --data-dir`, `training.report_to` (TensorBoard / W&B through fake modules: no
network, neither need be installed) and the smoothed loss of the run summary."""

from __future__ import annotations

import importlib.machinery
import json
import sys
import types

import pytest

from taiyi_bench.finetune.config import load_recipe
from taiyi_bench.finetune.train import smoothed_loss
from taiyi_bench.harness.errors import ConfigError
from taiyi_bench.harness.paths import SAMPLES_DIR
from taiyi_bench.harness.random_models import build_tiny_causal_lm

SECRET = "wandb-key-that-must-never-be-logged"


def _module(name: str, **attributes: object) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, loader=None)  # find_spec: "installed"
    module.__dict__.update(attributes)
    return module


@pytest.fixture
def fake_trackers(monkeypatch):
    """tensorboard and wandb as modules recording every call they get."""
    calls: dict[str, list] = {"tensorboard": [], "wandb": []}

    class SummaryWriter:
        def __init__(self, log_dir: str) -> None:
            calls["tensorboard"].append(("init", log_dir))

        def add_scalar(self, tag: str, value: float, global_step: int) -> None:
            calls["tensorboard"].append((tag, value, global_step))

        def close(self) -> None:
            calls["tensorboard"].append(("close",))

    class WandbRun:
        def log(self, scalars: dict) -> None:
            calls["wandb"].append(("log", scalars))

        def finish(self) -> None:
            calls["wandb"].append(("finish",))

    def init(**kwargs: object) -> WandbRun:
        calls["wandb"].append(("init", kwargs))
        return WandbRun()

    monkeypatch.setitem(sys.modules, "tensorboard", _module("tensorboard"))
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", _module("torch.utils.tensorboard", SummaryWriter=SummaryWriter))
    monkeypatch.setitem(sys.modules, "wandb", _module("wandb", init=init))
    monkeypatch.setenv("WANDB_API_KEY", SECRET)
    return calls


@pytest.mark.parametrize("tracker", ["tensorboard", "wandb"])
def test_report_to_a_tracker_that_is_not_installed_is_refused_naming_the_setting(monkeypatch, tracker):
    monkeypatch.setitem(sys.modules, tracker, None)  # find_spec: not installed, whatever this machine has
    with pytest.raises(ConfigError, match=rf"training.report_to: {tracker} is not installed \(pip install {tracker}\)"):
        load_recipe("cpu_smollm2_tiny", [f"training.report_to=[none, {tracker}]"])
    with pytest.raises(ConfigError, match="training.report_to must be none, tensorboard, wandb or a list of them"):
        load_recipe("cpu_smollm2_tiny", ["training.report_to=mlflow"])
    assert load_recipe("cpu_smollm2_tiny")["training"]["report_to"] == "none"  # off by default


def test_cli_trains_on_data_dir_and_reports_the_logged_scalars(tmp_path, fake_trackers, capsys):
    from taiyi_bench.harness.apps.cli import main

    tiny = build_tiny_causal_lm(tmp_path / "tiny", seed=0)
    out = tmp_path / "run"
    status = main([
        "finetune", "cpu_smollm2_tiny", "--stage", "1", "--output-dir", str(out), "--data-dir", str(SAMPLES_DIR),
        "--report-to", "tensorboard", "--report-to", "wandb",
        "-o", f"model.base={tiny}", "-o", "data.tasks.names=[bc5cdr_chem]", "-o", "data.files=[]", "-o", "data.cap=6",
        "-o", "format.max_length=192", "-o", "training.max_steps=3", "-o", "training.logging_steps=2",
        "-o", "training.save_steps=0", "-o", "training.progress=false", "-o", "training.num_threads=1",
    ])  # fmt: skip
    captured = capsys.readouterr()
    assert status == 0, captured.err[-3000:]

    # --data-dir: the sets' train splits came from that folder, not from the bundled samples
    report = json.loads((out / "stage1" / "data_report.json").read_text(encoding="utf-8"))
    assert not report["uses_bundled_samples"]
    assert [d["origin"] for d in report["datasets"]] == ["data"]

    # both trackers got exactly the scalars of the JSONL step lines, at the logged steps (2, and the last)
    records = [json.loads(line) for line in (out / "train_log.jsonl").read_text(encoding="utf-8").splitlines()]
    steps = [r for r in records if r["event"] == "step"]
    assert [r["step"] for r in steps] == [2, 3]
    expected = {
        r["step"]: {f"stage1/{k}": float(v) for k, v in r.items() if k not in ("event", "time", "stage", "step") and v is not None}
        for r in steps
    }
    assert {"stage1/loss", "stage1/lr", "stage1/tokens_per_s", "stage1/epoch"} <= set(expected[2])
    tensorboard = fake_trackers["tensorboard"]
    assert tensorboard[0] == ("init", str(out / "tensorboard")) and tensorboard[-1] == ("close",)
    written: dict[int, dict] = {}
    for tag, value, step in tensorboard[1:-1]:
        written.setdefault(step, {})[tag] = value
    assert written == expected
    wandb = fake_trackers["wandb"]
    assert wandb[0][0] == "init" and wandb[0][1]["name"] == "cpu_smollm2_tiny" and wandb[-1] == ("finish",)
    assert [scalars for _, scalars in wandb[1:-1]] == [{**expected[s], "stage1/step": s} for s in (2, 3)]

    # the API key reaches no log, no saved config, no tracker
    saved = [p.read_text(encoding="utf-8") for p in out.rglob("*") if p.suffix in (".jsonl", ".yaml", ".json", ".txt")]
    assert not any(SECRET in text for text in saved) and SECRET not in repr(fake_trackers)

    # the summary gives the smoothed loss, and says over which steps, on screen and in the log
    summary = json.loads(captured.out[captured.out.index("\n{") :])
    stage = summary["stages"]["1"]
    assert stage["loss_smoothing"] == "mean over steps 1 (start) and steps 3 (end)" and "first_loss" not in stage
    assert f"[stage 1] loss {stage['loss_start']:.4f} -> {stage['loss_end']:.4f}, mean over steps 1 (start)" in captured.out
    assert [r for r in records if r["event"] == "stage_end"][0]["loss_end"] == stage["loss_end"]


def test_smoothed_loss_is_the_mean_over_as_many_steps_at_each_end():
    losses = {step: 2.0 - step / 40 for step in range(1, 41)}  # 40 steps: 10 at each end
    losses[1], losses[40] = 0.1, 5.0  # one step's swing is averaged out, not reported
    smoothed = smoothed_loss(losses)
    assert smoothed["loss_smoothing"] == "mean over steps 1-10 (start) and steps 31-40 (end)"
    assert smoothed["loss_start"] == pytest.approx((0.1 + sum(losses[s] for s in range(2, 11))) / 10)
    assert smoothed["loss_end"] == pytest.approx(sum(losses[s] for s in range(31, 41)) / 10)
    # a resumed stage: its steps are the ones named; 8 steps: 2 at each end
    resumed = smoothed_loss({step: float(step) for step in range(5, 13)})
    assert resumed == {"loss_start": 5.5, "loss_end": 11.5, "loss_smoothing": "mean over steps 5-6 (start) and steps 11-12 (end)"}


def test_report_to_is_not_a_reason_to_refuse_resume():
    from taiyi_bench.finetune.train import config_differences

    before = load_recipe("cpu_smollm2_tiny")
    assert config_differences(before, {**before, "training": {**before["training"], "report_to": ["wandb"]}}) == []
