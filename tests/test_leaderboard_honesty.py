"""The leaderboard tells the truth at every size: no interval or p-value on too few units, named
partial runs shown and marked in every format, and a console table that fits 80 columns whole."""

from __future__ import annotations

import csv
import io
import re
import shutil
from pathlib import Path

import pytest
from rich.console import Console
from test_leaderboard import write_run

from taiyi_bench.harness.apps.cli import main
from taiyi_bench.harness.apps.leaderboard.bootstrap import MIN_UNITS_FOR_INFERENCE
from taiyi_bench.harness.apps.leaderboard.build import by_type_table, leaderboard_table, paired_report
from taiyi_bench.harness.apps.leaderboard.render import (
    render_csv,
    render_html,
    render_latex,
    render_markdown,
    render_paired_csv,
    render_paired_markdown,
    render_paired_terminal,
    render_terminal,
)
from taiyi_bench.harness.registry import REGISTRY, get_spec

REFERENCE = Path(__file__).resolve().parents[1] / "results" / "reference"
INTERVAL = re.compile(r"\\?\[[+-]?\d+\.\d, [+-]?\d+\.\d\\?\]")  # Markdown escapes the brackets
FEW, ENOUGH = 5, 40


@pytest.fixture
def few_and_enough(tmp_path: Path) -> Path:
    """Two runs of HoC and PubMedQA: org/few on 5 units a set, org/enough on 40."""
    assert FEW < MIN_UNITS_FOR_INFERENCE <= ENOUGH
    write_run(tmp_path, "org/few", n=FEW, tasks=["hoc", "pubmedqa"], seed=1)
    write_run(tmp_path, "org/enough", n=ENOUGH, tasks=["hoc", "pubmedqa"], seed=2)
    return tmp_path


def _terminal(table_or_report, width: int = 200, render=render_terminal) -> str:
    console = Console(width=width, record=True)
    render(table_or_report, console)
    return console.export_text()


def test_a_cell_on_few_units_shows_its_count_and_no_interval_in_every_format(few_and_enough: Path) -> None:
    table = leaderboard_table([few_and_enough], published="none", ci=True, n_resamples=200)
    few, enough = (next(c for c in table.columns if c.header == name) for name in ("org/few", "org/enough"))
    assert few.cells["pubmedqa"].ci is None and few.cells["pubmedqa"].flag == f"{FEW} units"
    assert enough.cells["pubmedqa"].ci is not None and enough.cells["pubmedqa"].flag is None

    def row(text: str, marker: str) -> str:
        (line,) = [line for line in text.splitlines() if marker in line]
        return line

    # Markdown, LaTeX, HTML and the console: the row holds the count once and exactly one interval (org/enough's).
    for text, marker in ((render_markdown(table), "| PubMedQA |"), (render_latex(table), "PubMedQA &"),
                         (render_html(table), 'data-set="pubmedqa"'), (_terminal(table), "│ PubMedQA")):
        line = row(text, marker)
        assert f"{FEW} units" in line and len(INTERVAL.findall(line)) == 1, line
        assert f"fewer than {MIN_UNITS_FOR_INFERENCE} units" in text  # the reason, said once
    rows = list(csv.reader(io.StringIO(render_csv(table))))
    header, pubmedqa = rows[0], next(r for r in rows if r[1:2] == ["PubMedQA"])
    cell = dict(zip(header, pubmedqa, strict=False))
    assert cell["org/few flag"] == f"{FEW} units" and not cell.get("org/few ci_low")
    assert cell["org/enough ci_low"] and cell["org/enough ci_high"]
    # An average over a set on too few units has no interval either; org/enough has no complete average.
    assert not few.average_cis


def test_per_type_intervals_need_enough_units() -> None:
    spec = get_spec("ncbi_disease")
    unit = {"Disease": [1, 1, 1]}
    table = by_type_table(spec, [("few", [unit] * FEW), ("enough", [unit, {"Disease": [0, 1, 2]}] * (ENOUGH // 2))],
                          n_resamples=200)
    assert table.cells[("Disease", 0)].ci is None and table.cells[("Disease", 1)].ci is not None
    assert any(f"few: {FEW} units" in note and f"fewer than {MIN_UNITS_FOR_INFERENCE}" in note for note in table.notes)


def _copy_pubmedqa(source: Path, destination: Path, units: int) -> Path:
    """A reference run's PubMedQA folder with only its first `units` samples."""
    shutil.copytree(source, destination)
    (samples,) = destination.glob("**/samples_*.jsonl")
    lines = samples.read_text(encoding="utf-8").splitlines(keepends=True)
    samples.write_text("".join(lines[:units]), encoding="utf-8")
    return destination


def test_paired_rows_on_few_units_give_the_count_not_a_p_value(tmp_path: Path) -> None:
    base = _copy_pubmedqa(REFERENCE / "smollm2-base" / "pubmedqa", tmp_path / "base", FEW)
    tuned = _copy_pubmedqa(REFERENCE / "smollm2-ft" / "pubmedqa", tmp_path / "tuned", FEW)
    report = paired_report(base, tuned, n_resamples=200)
    assert report.rows["pubmedqa"].n_units == FEW
    for text in (render_paired_markdown(report), render_paired_csv(report)):
        line = next(line for line in text.splitlines() if "PubMedQA" in line)
        assert line.count(f"({FEW} units)") == 2 and not INTERVAL.search(line), line
        assert f"fewer than {MIN_UNITS_FOR_INFERENCE} units" in text
    # The committed 50-unit slices clear the threshold: an interval and a p-value, in 80 columns whole.
    full = paired_report(REFERENCE / "smollm2-base" / "pubmedqa", REFERENCE / "smollm2-ft" / "pubmedqa", n_resamples=200)
    text = _terminal(full, width=80, render=render_paired_terminal)
    line = next(line for line in text.splitlines() if "PubMedQA" in line)
    assert INTERVAL.search(line) and re.search(r"\b[01]\.\d{3}\b", line) and "…" not in text  # noqa
    assert f"A = {full.a.display_header}" in text


def test_a_partial_run_named_on_the_command_line_is_shown_marked(tmp_path: Path, capsys, monkeypatch) -> None:
    assert main(["leaderboard", str(REFERENCE / "smollm2-base"), "--formats", "md,csv,tex,html", "--out", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert "left out of the leaderboard" not in captured.err
    for name in ("leaderboard.md", "leaderboard.csv", "leaderboard.tex", "leaderboard.html"):
        assert "slice of 50" in (tmp_path / name).read_text(encoding="utf-8"), name  # the mark, in every file
    # Found by scanning the default folders, a partial run is still left out unless --include-partial.
    shutil.copytree(REFERENCE / "smollm2-base" / "hoc", tmp_path / "cwd" / "results" / "runs" / "hoc")
    monkeypatch.chdir(tmp_path / "cwd")
    assert main(["leaderboard", "--formats", "none"]) == 0
    assert "partial run (slice of 50); left out of the leaderboard" in capsys.readouterr().err


def test_samples_mark_and_split_in_every_table_a_person_copies(tmp_path: Path) -> None:
    write_run(tmp_path, "org/demo", data_source="samples", tasks=["hoc", "cmeee"])
    table = leaderboard_table([tmp_path], published="none", include_partial=True)
    for text in (render_markdown(table), render_csv(table), render_latex(table), render_html(table), _terminal(table)):
        assert re.search(r"org/demo \\?\[samples\\?\]", text)
    splits = "/".join(sorted({REGISTRY["hoc"].eval_split, REGISTRY["cmeee"].eval_split}))
    assert f"BUNDLED SAMPLES, not the {splits} splits" in render_markdown(table)


@pytest.mark.parametrize("published", ["A", "all"])
def test_the_console_table_fits_80_columns_without_cutting_names(published: str) -> None:
    table = leaderboard_table([REFERENCE], published=published, partial_shown_under=[REFERENCE])
    text = _terminal(table, width=80)
    assert "…" not in text
    body = text.split("\nRules\n")[0]
    assert max(len(line) for line in body.splitlines() if line[:1] in "┏┃┡│├└") <= 80  # the table's lines
    for key in table.rows:  # every set name whole on one line
        assert any(REGISTRY[key].display_name in line for line in body.splitlines()), key
    for column in table.columns:  # every column named whole, above the table, by its short id
        assert re.search(rf"^[PR]\d+ = {re.escape(column.display_header)}$", body, re.MULTILINE), column.display_header


def test_the_lm_eval_samples_banner_names_the_split_it_stands_in_for(monkeypatch, caplog) -> None:
    from taiyi_bench.harness.lmeval import tasks

    monkeypatch.setattr(tasks, "_BANNER_SHOWN", set())
    with caplog.at_level("WARNING", logger="taiyi-bench"):
        tasks.warn_samples_once("taiyi_cmeee")
    assert REGISTRY["cmeee"].eval_split == "dev" and "not the real dev set" in caplog.text


def test_a_label_outside_the_label_set_is_named_so_in_the_per_type_table() -> None:
    from taiyi_bench.harness.apps.leaderboard.build import leaderboard_by_type

    spec = get_spec("kuake_qic")
    table = leaderboard_by_type([REFERENCE / "smollm2-base", REFERENCE / "smollm2-ft"], "kuake_qic", n_resamples=50)
    strays = [key for key in table.rows if key not in spec.labels]
    assert strays  # the base model echoed a query as its label (the committed run)
    assert all(table.label(key).endswith("[outside the label set]") for key in strays)
    assert not any("outside" in table.label(key) for key in table.rows if key in spec.labels)
