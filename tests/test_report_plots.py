"""`taiyi report`'s plots, run B against run A, and small-sample honesty, on the committed reference
runs (two runs, 50 units a set, Chinese sets among them) and on scripted runs of 3 units a set; the
page rendered in headless Chromium must draw Chinese as glyphs, not boxes."""

from __future__ import annotations

import base64
import html
import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from taiyi_bench.harness.apps.cli import main
from taiyi_bench.harness.apps.leaderboard.bootstrap import too_few_units
from taiyi_bench.harness.apps.report import pick_pair
from taiyi_bench.harness.apps.report_plots import UNGROUNDED, UNREADABLE, verdict_kinds
from taiyi_bench.harness.apps.run_views import load_run
from taiyi_bench.harness.verdicts import verdict_totals

from error_runs import evaluate, planted_answer
from scripted_lm import ScriptedLM, oracle_lm

REFERENCE = Path(__file__).resolve().parents[1] / "results" / "reference"
RUNS = [REFERENCE / "smollm2-base", REFERENCE / "smollm2-ft"]
INTERVAL = re.compile(r"\[[-+]?\d+\.\d, [-+]?\d+\.\d\]")


@pytest.fixture(scope="module")
def reference_page(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report")
    assert main(["report", *map(str, RUNS), "--out", str(out), "--resamples", "200"]) == 0
    return out / "report.html"


def _svgs(page: str) -> list[str]:
    return [base64.b64decode(data).decode("utf-8") for data in re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', page)]


def test_verdict_kinds_split_spurious_by_grounding_and_unreadable_misses_from_read_ones():
    view = load_run(RUNS[0], [], tasks=["cmeee"])
    units = list(view.tasks["cmeee"].units.values())
    kinds, totals = verdict_kinds(units), verdict_totals(u.verdicts for u in units)
    assert totals["parse_fail"] and kinds[UNGROUNDED]  # the base model fails to parse and makes mentions up
    # The same items, sorted differently: spurious split in two, and a failed unit's missed gold set apart.
    assert kinds["spurious"] + kinds[UNGROUNDED] == totals["spurious"]
    failed = [u for u in units if u.verdicts["parse_fail"]]
    assert kinds[UNREADABLE] == sum(len(u.verdicts["gold"]) for u in failed)
    assert kinds["missed"] + kinds[UNREADABLE] == totals["missed"]
    assert sum(kinds.values()) == sum(totals.values()) - totals["parse_fail"]


def test_report_on_the_reference_runs_has_the_plots_and_b_minus_a_with_intervals(reference_page):
    page = reference_page.read_text(encoding="utf-8")
    plots = _svgs(page)
    titles = [re.search(r"<text[^>]*>([^<]*)</text>", svg) for svg in plots]
    assert len(plots) == 4 and all(titles)  # headline, B minus A, verdict kinds, parse failures
    deltas, kinds, failures = plots[1:]
    assert "SmolLM2-135M-Instruct-reference-ft [slice of 50] minus SmolLM2-135M-Instruct [slice of 50]" in deltas
    for svg in (deltas, kinds, failures):
        assert "CMeEE-V2" in svg and "MedQA-MCMLE" in svg  # the sets by their display names
        assert "Noto Sans CJK SC" in svg  # a CJK-capable font first in every plot's font list
    assert "spurious, not in the text" in kinds and "missed: output unreadable" in kinds
    mcmle = load_run(RUNS[0], [], tasks=["medqa_mcmle"]).tasks["medqa_mcmle"].units.values()
    assert f"{sum(1 for u in mcmle if u.verdicts['parse_fail'])}/{len(mcmle)}" in failures  # the base run's bar
    table = page[page.index('id="pair-table"'):]
    table = table[: table.index("</table>")]
    rows = re.findall(r'<tr data-set="([^"]+)">(.*?)</tr>', table)
    assert len(rows) == 12 and all(len(INTERVAL.findall(row)) == 1 for _, row in rows)  # 50 units: intervals
    assert 'class="num few"' not in page
    # Side by side: a Chinese unit's text once, both runs' outputs, escaped where a model wrote markup.
    cmeee = page[page.index('id="pair-cmeee"'):]
    first = cmeee[: cmeee.index("</details>")]
    assert first.count("<h4>Text</h4>") == 1 and "<th>Output</th>" in first and "<th>Errors</th>" in first
    assert re.search(r"[\u4e00-\u9fff]", first)


def test_small_runs_show_counts_not_intervals(tmp_path):
    evaluate(ScriptedLM(planted_answer, name="planted"), tmp_path / "planted", "planted")
    evaluate(oracle_lm(), tmp_path / "oracle", "oracle")
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "out"), "--pair", "planted", "oracle"]) == 0
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    reason = html.escape(too_few_units(3) or "")
    assert reason  # 3 units a set: below the threshold
    assert not INTERVAL.search(page)  # no interval anywhere: headline, per type, B minus A
    table = page[page.index('id="pair-table"'):page.index("</table>", page.index('id="pair-table"'))]
    assert table.count(f'class="num few" title="{reason}"') == 4 * 6  # every cell of the 4 sets' rows greyed
    assert "<td" in table and ">—<" in table and not re.search(r">0\.\d{3}<", table)  # no p-value
    assert "too few units for an interval" in _svgs(page)[1]
    assert 'id="pair-cmeee">CMeEE-V2: 2 of 3 units differ' in page  # the planted dev-0 and dev-1
    assert re.search(r'<td class="num few" title="[^"]+" data-run="planted', page)  # headline cells greyed too


def test_pair_is_picked_by_number_or_a_unique_part_of_the_name():
    views = [SimpleNamespace(label=label) for label in ("minilm-l6-bert", "SmolLM2-135M-Instruct", "taiyi-style-smollm2-135m")]
    assert pick_pair(views, None) == (views[0], views[1])
    assert pick_pair(views, ["smollm2-135m-instruct", "3"]) == (views[1], views[2])
    with pytest.raises(ValueError, match=r"'smollm2' names 2 runs.*1 = minilm-l6-bert"):
        pick_pair(views, ["smollm2", "1"])
    with pytest.raises(ValueError, match="the same run twice"):
        pick_pair(views, ["2", "SmolLM2-135M-Instruct"])
    assert pick_pair(views[:1], None) is None


def _chromium_with_a_cjk_font() -> str:
    chromium = next((found for name in ("chromium", "chromium-browser") if (found := shutil.which(name))), None)
    if chromium is None:
        pytest.skip("no Chromium installed (Debian: apt-get install chromium); the page was written but not rendered")
    fc_list = shutil.which("fc-list")
    if fc_list is None or not subprocess.run([fc_list, ":lang=zh"], capture_output=True, text=True).stdout.strip():
        pytest.skip("no CJK font installed (Debian: apt-get install fonts-noto-cjk): Chinese would be boxes")
    return chromium


def _dom(chromium: str, page: Path) -> str:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--window-size=1280,2000"]
    return subprocess.run([chromium, *flags, "--dump-dom", page.as_uri()], check=True, capture_output=True, text=True,
                          timeout=120).stdout


def test_chinese_is_drawn_as_glyphs_in_headless_chromium(reference_page, tmp_path):
    chromium = _chromium_with_a_cjk_font()
    dom = _dom(chromium, reference_page)
    # The page's own check: two different characters drawn in its font differ pixel-wise.
    assert re.search(r'<body[^>]* data-cjk="glyphs"', dom)
    assert re.search(r'<p id="cjk-warning"[^>]* hidden', dom)
    # The check can fail: two characters no font has are the same box (or nothing), and it says so.
    page = reference_page.read_text(encoding="utf-8")
    control = tmp_path / "control.html"
    control.write_text(page.replace("</body>", "<script>document.body.dataset.control = "
                                    "glyphsDiffer('\\ue000', '\\ue001') ? 'differ' : 'same';</script></body>"), encoding="utf-8")
    assert 'data-control="same"' in _dom(chromium, control)


def test_the_reference_report_screenshot_is_a_drawn_page(reference_page, tmp_path):
    """The screenshot a person looks at: the reference report from its headline down past the
    verdict and parse-failure plots, CMeEE's and KUAKE-QIC's Chinese labels among them. Kept
    where TAIYI_SCREENSHOT_DIR says."""
    import os

    from PIL import Image

    chromium = _chromium_with_a_cjk_font()
    shot = Path(os.environ.get("TAIYI_SCREENSHOT_DIR") or tmp_path) / "reference_report.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    "--window-size=1280,16000", f"--screenshot={shot}", reference_page.as_uri()],
                   check=True, capture_output=True, timeout=120)
    image = Image.open(shot).convert("RGB")
    assert image.size == (1280, 16000)
    # A drawn page, not a blank or an error page: text, tables and the plots' many colours.
    assert len(image.getcolors(maxcolors=1 << 20) or []) > 500
