"""`taiyi report` on runs whose results carry a contamination record (a fine-tuned adapter's) and a
cost record: the marked cells and the touched units, the cost-vs-score plot and the cost table,
everything a model or a data file wrote escaped. The runs are committed reference results of two
sets (PubMedQA, English; CMeEE-V2, Chinese) with the records written into their JSON."""

from __future__ import annotations

import base64
import html
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from statistics import fmean

import pytest

from taiyi_bench.harness.apps.cli import main
from taiyi_bench.harness.apps.report_plots import cost_points
from taiyi_bench.harness.apps.run_views import run_views

REFERENCE = Path(__file__).resolve().parents[1] / "results" / "reference"
SETS = ("pubmedqa", "cmeee")
INJECTED = "<script>alert(1)</script>"
NOT_EVALUATED = "unit-beyond-the-slice"  # a touched unit of the split that the 50-unit runs did not evaluate
SPLIT_UNITS = 96


def _copy(run: str, key: str, dest: Path) -> Path:
    """One set's results and samples files of a reference run, copied under `dest`; the results path."""
    source = next((REFERENCE / run / key).glob("*/*/results_*.json"))
    (dest / key).mkdir(parents=True)
    for path in source.parent.iterdir():
        shutil.copy(path, dest / key / path.name)
    return dest / key / source.name


def _edit(path: Path, change: Callable[[dict], None]) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def _cost(task: str, generated: int, seconds: float, usd: float | None = None) -> dict:
    """A `taiyi_cost` record of 50 units (harness/lmeval/cost.py's layout)."""
    summary = {"units": 50, "requests": 50, "prompt_tokens": 20_000, "generated_tokens": generated, "seconds": seconds,
               "seconds_per_unit": seconds / 50, "generated_tokens_per_second": generated / seconds,
               "tokenizer": "the model's tokenizer (prompt as sent, output re-encoded)"}
    return {"tasks": {task: summary if usd is None else {**summary, "estimated_usd": usd}}, "total": summary, "note": ""}


def _contaminate(results: Path, touched: list[str]) -> None:
    key = results.parent.name

    def change(data: dict) -> None:
        data["configs"][f"taiyi_{key}"]["metadata"]["contamination"] = {
            "report_sha256": "ab" * 32, "shortest_judged": 8, "checked": True, "n_tokens": 13 if key == "pubmedqa" else 20,
            "split": "test", "data_source": "data", "units": SPLIT_UNITS, "share": len(touched) / SPLIT_UNITS,
            "touched_units": touched}

    _edit(results, change)


def _unit_ids(results: Path) -> list[str]:
    samples = next(results.parent.glob("samples_*.jsonl"))
    return [json.loads(json.loads(line)["doc"]["example"])["id"] for line in samples.read_text(encoding="utf-8").splitlines()]


def _inject_into_text(results: Path, unit: str) -> None:
    """The text of `unit` (PubMedQA: its first context) in the samples beside `results` starts with markup."""
    samples = next(results.parent.glob("samples_*.jsonl"))
    lines = []
    for line in samples.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        example = json.loads(record["doc"]["example"])
        if example["id"] == unit:
            example["contexts"][0] = INJECTED + example["contexts"][0]
            record["doc"]["example"] = json.dumps(example, ensure_ascii=False)
        lines.append(json.dumps(record, ensure_ascii=False))
    samples.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """base: no record at all; ft: both sets touched (one unit beyond its slice, then two it
    evaluated) and its cost; api: the base run's PubMedQA under a model name with markup, priced."""
    root = tmp_path_factory.mktemp("runs")
    runs = {name: root / name for name in ("base", "ft", "api")}
    for key in SETS:
        _copy("smollm2-base", key, runs["base"])
        ft = _copy("smollm2-ft", key, runs["ft"])
        touched = _unit_ids(ft)[:2]
        _contaminate(ft, [NOT_EVALUATED, *touched])  # the report's order: worst first, whether evaluated or not
        generated = 1200 if key == "pubmedqa" else 600
        _edit(ft, lambda data, key=key, generated=generated: data.update(taiyi_cost=_cost(f"taiyi_{key}", generated, 240.0)))
        if key == "pubmedqa":
            _inject_into_text(ft, touched[0])
    api = _copy("smollm2-base", "pubmedqa", runs["api"])

    def rename(data: dict) -> None:
        data["configs"]["taiyi_pubmedqa"]["metadata"]["model_identity"]["name"] = data["model_name"] = INJECTED + "-api"
        data["taiyi_cost"] = _cost("taiyi_pubmedqa", 300, 20.0, usd=0.125)

    _edit(api, rename)
    return runs


@pytest.fixture(scope="module")
def page(runs, tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("report")
    assert main(["report", *map(str, runs.values()), "--out", str(out), "--resamples", "100"]) == 0
    return (out / "report.html").read_text(encoding="utf-8")


def _section(page: str, section: str) -> str:
    start = page.index(f'<section id="{section}">')
    return page[start: page.index("</section>", start)]


def _headline_cells(page: str) -> dict[tuple[str, str], tuple[str, str]]:
    """(set, run) -> (the cell's attributes, its text)."""
    table = _section(page, "headline")
    cells = {}
    for key, row in re.findall(r'<tr data-set="([^"]+)"[^>]*>(.*?)</tr>', table):
        for attributes, run, text in re.findall(r'<td([^>]*) data-run="([^"]+)">([^<]*)</td>', row):
            cells[key, html.unescape(run)] = (attributes, html.unescape(text))
    return cells


def test_a_touched_set_is_marked_with_its_share_and_rule_and_its_units_listed(page):
    cells = _headline_cells(page)
    ft = "SmolLM2-135M-Instruct-reference-ft [slice of 50]"
    for key, token in (("pubmedqa", "13-word"), ("cmeee", "20-character")):
        attributes, text = cells[key, ft]
        assert "(contaminated: 3.1% of units)" in text  # 3 of 96
        assert 'class="num contaminated"' in attributes and f"exactly or by a {token} n-gram" in attributes
    unmarked = [cell for (_, run), cell in cells.items() if run != ft]
    assert len(unmarked) == 4 and not any("contaminated" in attributes + text for attributes, text in unmarked)

    section = _section(page, "contamination")
    assert section.count("<h3>") == 1 and "2 of them evaluated by this run" in section
    listed = {name: re.findall(r"<li><code>([^<]+)</code>", units)
              for name, units in re.findall(r'<h4>([^:<]+):[^<]*</h4>\s*<ol class="touched">(.*?)</ol>', section)}
    for key, name in (("pubmedqa", "PubMedQA"), ("cmeee", "CMeEE-V2")):
        evaluated = _unit_ids(next((REFERENCE / "smollm2-ft" / key).glob("*/*/results_*.json")))[:2]
        assert listed[name] == [*evaluated, NOT_EVALUATED]  # the evaluated units first, with their text
    assert f"<code>{NOT_EVALUATED}</code> <span class=\"muted\">not evaluated</span>" in section
    assert html.escape(INJECTED) in section and re.search(r"[\u4e00-\u9fff]", section)  # the units' text, escaped
    assert INJECTED not in page  # neither the unit's text nor the model's name reaches the page as markup
    assert "no evaluation unit found" not in page


def test_a_mixture_that_touched_nothing_is_said_once_and_nothing_is_marked(runs, tmp_path):
    clean = tmp_path / "clean"
    for key in SETS:
        _contaminate(_copy("smollm2-ft", key, clean), [])
    assert main(["report", str(runs["base"]), str(clean), "--out", str(tmp_path), "--resamples", "50"]) == 0
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    headline = _section(page, "headline")
    assert headline.count("no evaluation unit found") == 1  # once under the table (the Runs section has its provenance)
    assert 'id="contamination"' not in page and "contaminated" not in headline.split("</table>")[0]


def test_cost_points_average_score_and_cost_over_the_sets_every_costed_run_has(runs):
    views = run_views(list(runs.values()), [])
    points, shared, unrecorded = cost_points(views, ["pubmedqa", "cmeee"])
    assert shared == ["pubmedqa"] and unrecorded == ["SmolLM2-135M-Instruct [slice of 50]"]
    by_label = {point.label: point for point in points}
    api, ft = by_label[INJECTED + "-api [slice of 50]"], by_label["SmolLM2-135M-Instruct-reference-ft [slice of 50]"]
    assert api.costs == {"generated tokens per unit": 6.0, "seconds per unit": 0.4, "USD per 1,000 units": 2.5}
    assert ft.costs == {"generated tokens per unit": 24.0, "seconds per unit": 4.8}  # not priced: no USD
    assert ft.score == views[-1].results["pubmedqa"].value

    (alone,), both, _ = cost_points(views[-1:], ["pubmedqa", "cmeee"])  # the fine-tuned run has both sets
    assert both == ["pubmedqa", "cmeee"]
    assert alone.costs["generated tokens per unit"] == fmean([24.0, 12.0])
    assert alone.score == fmean(views[-1].results[key].value for key in both)


def test_the_cost_plot_and_table_show_the_recorded_figures_and_name_the_run_without_cost(page):
    section = _section(page, "cost")
    (plot,) = [base64.b64decode(data).decode("utf-8") for data in re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', section)]
    assert "Score against cost over 1 set" in plot and "USD per 1,000 units (1 of 2 runs recorded it)" in plot
    assert "reference-ft [slice of 50]" in plot and html.escape(INJECTED) in plot  # points named, markup as text
    rows = [[html.unescape(cell) for cell in re.findall(r"<td[^>]*>([^<]*)</td>", row)]
            for row in re.findall(r"<tr>(.*?)</tr>", section[section.index('id="cost-table"'):])]
    assert ["R1", "PubMedQA", "50", "6.00", "0.400", "15.0", "0.125"] in rows  # the api run: 300 tokens, 20 s, priced
    assert ["R3", "CMeEE-V2", "50", "12.0", "4.80", "2.50", "—"] in rows
    assert "R1 = " + html.escape(INJECTED) in section
    assert "No cost record in its results, so not plotted: SmolLM2-135M-Instruct [slice of 50]." in section
