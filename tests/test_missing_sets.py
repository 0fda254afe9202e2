"""A data directory that lacks some sets: every multi-set command checks all requested sets before
any model loads, names every missing one, and `--skip-missing` runs the rest and records the gap."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from taiyi_bench.harness.apps.cli import main
from taiyi_bench.harness.registry import GROUP_FILTERS, iter_specs, specs_for_selection

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def data_dir_without_hoc(shared_data_dir: Path, tmp_path: Path) -> Path:
    """The real data (which has no CHEMDNER) with HoC removed too, as links."""
    root = tmp_path / "data"
    root.mkdir()
    for entry in shared_data_dir.iterdir():
        if entry.is_dir() and entry.name != "HoC":
            (root / entry.name).symlink_to(entry)
    return root


def test_selection_expands_groups_patterns_keys_and_task_names():
    assert [s.key for s in specs_for_selection(None)] == [s.key for s in iter_specs()]
    assert [s.key for s in specs_for_selection(["taiyi_*"])] == [s.key for s in iter_specs()]
    assert [s.key for s in specs_for_selection(["taiyibench_zh"])] == [s.key for s in iter_specs(language="zh")]
    assert [s.key for s in specs_for_selection(["hoc,taiyi_cmeee", "cmeee"])] == ["cmeee", "hoc"]  # paper order, once
    with pytest.raises(KeyError, match="unknown dataset"):
        specs_for_selection(["taiyi_nope"])
    with pytest.raises(KeyError, match="matches no"):
        specs_for_selection(["nope_*"])


def test_group_filters_match_the_group_yamls():
    import yaml

    for group, filters in GROUP_FILTERS.items():
        data = yaml.safe_load((REPO_ROOT / "tasks" / f"{group}.yaml").read_text(encoding="utf-8"))
        assert data["task"] == [spec.task_name for spec in iter_specs(**filters)], group


def test_baseline_run_stops_before_the_model_naming_every_missing_set(data_dir_without_hoc, monkeypatch, capsys):
    from taiyi_bench.baselines import llm_run

    def must_not_run(*_args, **_kwargs):
        raise AssertionError("the model was reached although sets are missing")

    monkeypatch.setattr(llm_run, "run_preflight", must_not_run)
    monkeypatch.setattr(llm_run, "execute", must_not_run)
    status = main(["baseline", "run", "smollm2-135m-instruct", "--data-dir", str(data_dir_without_hoc), "--limit", "1"])
    err = capsys.readouterr().err
    assert status == 2
    assert "taiyi_chemdner" in err and "taiyi_hoc" in err
    assert "BC4CHEMD" in err  # where to get it
    assert "Traceback" not in err
    # A selection without the missing sets is not stopped by them.
    monkeypatch.setattr(llm_run, "run_preflight", lambda *a, **k: (_ for _ in ()).throw(llm_run.preflight.PreflightError("stop here")))
    status = main(["baseline", "run", "smollm2-135m-instruct", "--data-dir", str(data_dir_without_hoc), "--tasks", "kuake_qic"])
    assert status == 2 and "stop here" in capsys.readouterr().err


def test_demo_stops_before_the_first_step(data_dir_without_hoc, tmp_path, monkeypatch, capsys):
    from taiyi_bench.harness.apps import demo

    monkeypatch.setattr(demo.Demo, "eval_base", lambda self: (_ for _ in ()).throw(AssertionError("a step ran")))
    status = main(["demo", "--data-dir", str(data_dir_without_hoc), "--out", str(tmp_path / "demo")])
    err = capsys.readouterr().err
    assert status == 2
    assert "taiyi_hoc" in err and "taiyi_chemdner" in err
    assert not (tmp_path / "demo" / "steps").exists()


@pytest.mark.slow
def test_skip_missing_runs_the_rest_and_the_leaderboard_shows_the_gap(data_dir_without_hoc, tmp_path, capsys):
    status = main([
        "baseline", "run", "smollm2-135m-instruct", "--data-dir", str(data_dir_without_hoc), "--limit", "1",
        "--tasks", "hoc", "kuake_qic", "--skip-missing", "--output-root", str(tmp_path / "runs"),
    ])
    captured = capsys.readouterr()
    assert status == 0, captured.err[-3000:]
    assert "skipping 1 missing set(s): taiyi_hoc" in captured.err
    (results,) = sorted((tmp_path / "runs").glob("**/results_*.json"))
    data = json.loads(results.read_text(encoding="utf-8"))
    assert set(data["results"]) == {"taiyi_kuake_qic"}
    assert set(data["taiyi_skipped_sets"]) == {"taiyi_hoc"}
    from taiyi_bench.harness.apps.leaderboard.parse import collect_runs

    collection = collect_runs([tmp_path / "runs"])
    (run,) = collection.runs
    assert set(run.tasks) == {"kuake_qic"}
    assert set(run.skipped) == {"hoc"}
