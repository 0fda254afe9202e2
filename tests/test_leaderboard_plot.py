"""The leaderboard plot: a score of 0 never looks like a missing cell, and the provenance goes to a
caption file beside the figure, not under its axes."""

from __future__ import annotations

import re

from taiyi_bench.harness.apps.leaderboard.plot import caption_path, write_plot
from taiyi_bench.harness.apps.leaderboard.table import Cell, Column, Table
from taiyi_bench.harness.registry import PAPER_ORDER

PROVENANCE = "results/runs/model-z/results_2026.json (all 13 sets): date 2026-11-20 12:00 UTC; lm-eval 0.4.13"


def _table(first: float = 0.0) -> Table:
    cells = {key: Cell(50.0) for key in PAPER_ORDER}
    cells[PAPER_ORDER[0]] = Cell(first)  # a real zero
    cells[PAPER_ORDER[1]] = Cell(None, flag="skipped")  # missing
    del cells[PAPER_ORDER[2]]  # missing too
    column = Column(key="run:model-z", header="model-z", kind="run", cells=cells, provenance=[PROVENANCE])
    return Table(title="zero vs missing", slug="board", columns=[column])


def test_zero_and_missing_are_drawn_differently_and_provenance_goes_to_the_caption(tmp_path):
    svg_path = write_plot(_table(), tmp_path / "board.svg")
    svg = svg_path.read_text(encoding="utf-8")
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    # two missing sets, and the average over all sets is missing with them
    assert texts.count("n/a") == 3
    nonzero = write_plot(_table(first=10.0), tmp_path / "nonzero.svg").read_text(encoding="utf-8")
    # the zero bar has its own "0" label, beside the y axis's "0" tick
    assert texts.count("0") == re.findall(r"<text[^>]*>([^<]*)</text>", nonzero).count("0") + 1
    assert "lm-eval 0.4.13" not in svg and "results/runs/model-z" not in svg  # nothing of the provenance under the axes
    caption = caption_path(svg_path).read_text(encoding="utf-8")
    assert PROVENANCE in caption and "n/a marks a missing cell" in caption


def test_png_plot_writes_the_same_caption(tmp_path):
    png = write_plot(_table(), tmp_path / "board.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert PROVENANCE in caption_path(png).read_text(encoding="utf-8")
