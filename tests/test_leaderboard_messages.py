"""What the leaderboard says about where it looked and about the sets a run did not run."""

from __future__ import annotations

from pathlib import Path

from taiyi_bench.harness.apps.cli import main
from taiyi_bench.harness.apps.leaderboard.build import leaderboard_table

REFERENCE = Path(__file__).resolve().parents[1] / "results" / "reference" / "smollm2-base"


def _warning_about(table, text: str) -> str:
    (warning,) = [w for w in table.warnings if text in w]
    return warning


def test_a_run_of_few_sets_names_the_sets_it_has_not_the_many_it_lacks():
    one_set = leaderboard_table([REFERENCE / "hoc"], include_partial=True, published="none")
    warning = _warning_about(one_set, "no usable result")
    assert "12 of 13 sets (it has taiyi_hoc); the other cells" in warning
    assert "taiyi_cmeee" not in warning
    most_sets = leaderboard_table([REFERENCE], include_partial=True, published="none")
    warning = _warning_about(most_sets, "no usable result")  # the run lacks CHEMDNER only: that one is named
    assert "1 of 13 sets (taiyi_chemdner); those cells" in warning


def test_the_default_folders_are_named_with_the_place_they_were_looked_for(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["leaderboard", "--formats", "none"]) == 0
    err = capsys.readouterr().err
    assert f"runs from {tmp_path / 'results' / 'runs'} (the default folders under the current directory" in err
