"""Error analysis end to end on scripted lm-eval runs with planted errors (tests/error_runs.py):
verdicts in the samples files, per-type scores, grounding, `taiyi compare`, `taiyi report` (rendered
in headless Chromium), the leaderboard's per-type and grounding tables, and the BERT writer."""

from __future__ import annotations

import csv
import html.parser
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from taiyi_bench.harness.apps.cli import main
from taiyi_bench.harness.apps.leaderboard.table import fmt_pct
from taiyi_bench.harness.results_io import PER_TYPE_KEY, amend_results
from taiyi_bench.harness.verdicts import unit_verdicts

from error_runs import TASKS, evaluate, planted_answer, samples_of
from scripted_lm import ScriptedLM, oracle_lm


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """The planted run and the oracle run, each a results file with its samples files."""
    root = tmp_path_factory.mktemp("runs")
    return {
        "planted": evaluate(ScriptedLM(planted_answer, name="planted"), root / "planted", "planted"),
        "oracle": evaluate(oracle_lm(), root / "oracle", "oracle"),
        "root": root,
    }


def _errors(results: Path) -> dict[tuple[str, str], list[tuple]]:
    """(task, unit id) -> every item whose verdict is not "matched", as (side, item, verdict, extra)."""
    found: dict[tuple[str, str], list[tuple]] = {}
    for task in TASKS:
        for record in samples_of(results, task):
            verdicts = record["verdicts"]
            assert isinstance(verdicts, dict)  # a plain JSON object, not a JSON string
            rule = verdicts["rule"]
            for side in ("predicted", "gold"):
                for item in verdicts[side]:
                    if item["verdict"] == "matched":
                        continue
                    if rule == "mention_set":
                        key = (item["type"], item["mention"])
                        extra = item.get("gold_type") or item.get("predicted_type") or item.get("gold_mention") \
                            or item.get("predicted_mention") or ("grounded" if item.get("grounded") else "ungrounded"
                                                                 if side == "predicted" else None)
                    elif rule == "ordered_triples":
                        key, extra = (item["head"], item["relation"], item["tail"]), None
                    elif rule == "label_set":
                        key, extra = item["label"], None
                    else:
                        key, extra = item["option"], None
                    found.setdefault((task, record["doc"]["id"]), []).append((side, key, item["verdict"], extra))
    return found


PLANTED = {
    ("taiyi_cmeee", "dev-0"): [
        ("predicted", ("dis", "哮喘"), "boundary", "支气管哮喘"),
        ("predicted", ("sym", "沙丁胺醇"), "wrong_type", "dru"),
        ("gold", ("dis", "支气管哮喘"), "boundary", "哮喘"),
        ("gold", ("dru", "沙丁胺醇"), "wrong_type", "sym"),
    ],
    ("taiyi_cmeee", "dev-1"): [
        ("predicted", ("dis", "糖尿病"), "spurious", "ungrounded"),
        ("predicted", ("dis", "鼻出血"), "spurious", "grounded"),
        ("gold", ("ite", "血小板计数"), "missed", None),
    ],
    ("taiyi_cmeie", "dev-0"): [
        ("predicted", ("咳嗽", "临床表现", "社区获得性肺炎"), "reversed", None),
        ("gold", ("社区获得性肺炎", "临床表现", "咳嗽"), "reversed", None),
    ],
    ("taiyi_cmeie", "dev-1"): [
        ("predicted", ("消化性溃疡", "手术治疗", "奥美拉唑"), "wrong_relation", None),
        ("gold", ("消化性溃疡", "药物治疗", "奥美拉唑"), "wrong_relation", None),
    ],
    ("taiyi_litcovid", "99300026"): [("predicted", "Prevention", "extra_label", None)],
    ("taiyi_medqa_usmle", "test-0"): [("predicted", "B", "wrong_option", None), ("gold", "A", "missed", None)],
    ("taiyi_medqa_usmle", "test-2"): [("gold", "C", "missed", None)],  # no option chosen: the gold is missed
}


def test_every_verdict_in_the_samples_is_the_planted_one(runs):
    assert _errors(runs["planted"]) == PLANTED
    assert _errors(runs["oracle"]) == {}
    usmle = {r["doc"]["id"]: r["verdicts"] for r in samples_of(runs["planted"], "taiyi_medqa_usmle")}
    assert (usmle["test-0"]["verdict"], usmle["test-0"]["chosen"], usmle["test-0"]["gold_option"]) == ("wrong_option", "B", "A")
    assert (usmle["test-2"]["verdict"], usmle["test-2"]["parse_fail"]) == ("no_choice", "empty output")
    assert usmle["test-1"]["verdict"] == "correct" and usmle["test-1"]["parse_fail"] is None
    # the parsed prediction as written, structured
    cmeee = {r["doc"]["id"]: r["verdicts"] for r in samples_of(runs["planted"], "taiyi_cmeee")}
    assert cmeee["dev-0"]["prediction"] == {"entities": [["dis", "哮喘"], ["sym", "沙丁胺醇"]], "parse_failed": False}


# Per-type (tp, fp, fn) counted by hand from the planted answers (tests/error_runs.py) over the
# first three units of each set, and the P/R/F1 they make.
HAND_COUNTS = {
    "taiyi_cmeee": {"dis": (2, 3, 1), "dru": (0, 0, 1), "sym": (1, 1, 0), "bod": (2, 0, 0), "ite": (0, 0, 1)},
    "taiyi_cmeie": {"临床表现": (2, 1, 1), "影像学检查": (1, 0, 0), "病因": (1, 0, 0), "药物治疗": (0, 0, 1),
                    "手术治疗": (1, 1, 0), "病理分型": (1, 0, 0)},
    "taiyi_litcovid": {"Treatment": (1, 0, 0), "Prevention": (0, 1, 0), "Mechanism": (1, 0, 0), "Case Report": (1, 0, 0)},
}
HAND_PRF = {  # (precision, recall, f1, support)
    ("taiyi_cmeee", "dis"): (2 / 5, 2 / 3, 0.5, 3),
    ("taiyi_cmeee", "sym"): (0.5, 1.0, 2 / 3, 1),
    ("taiyi_cmeee", "dru"): (0.0, 0.0, 0.0, 1),
    ("taiyi_cmeie", "临床表现"): (2 / 3, 2 / 3, 2 / 3, 3),
    ("taiyi_cmeie", "手术治疗"): (0.5, 1.0, 2 / 3, 1),
    ("taiyi_litcovid", "Prevention"): (0.0, 0.0, 0.0, 0),
}


def test_per_type_scores_are_the_hand_computed_ones(runs):
    added = amend_results(runs["planted"])
    stored = json.loads(runs["planted"].read_text(encoding="utf-8"))[PER_TYPE_KEY]
    assert stored == json.loads(json.dumps(added))  # written into the results file
    for task, counts in HAND_COUNTS.items():
        table = {k: v for k, v in stored[task].items() if v["tp"] or v["fp"] or v["fn"]}
        assert {k: (v["tp"], v["fp"], v["fn"]) for k, v in table.items()} == counts, task
    for (task, key), (precision, recall, f1, support) in HAND_PRF.items():
        row = stored[task][key]
        assert (row["precision"], row["recall"], row["f1"], row["support"]) == pytest.approx((precision, recall, f1, support))
    assert set(stored["taiyi_cmeee"]) >= {"dis", "sym", "dru", "equ", "pro", "bod", "ite", "mic", "dep"}  # all 9 types


def test_leaderboard_by_type_shows_every_run_with_intervals(runs, tmp_path, capsys):
    code = main(["leaderboard", "--by-type", "cmeee", str(runs["root"]), "--out", str(tmp_path), "--formats", "md,csv"])
    assert code == 0
    out = capsys.readouterr().out
    assert "CMeEE-V2: micro P/R/F1 per entity type" in out and "P/R 40.0 / 66.7, n=3" in out
    markdown = (tmp_path / "by_type_cmeee.md").read_text(encoding="utf-8")
    assert "planted" in markdown and "oracle" in markdown and "临床表现 (sym)" in markdown
    rows = {row["type"]: row for row in csv.DictReader(io.StringIO((tmp_path / "by_type_cmeee.csv").read_text(encoding="utf-8")))
            if row["type"]}
    dis = rows["dis"]
    assert (dis["planted [samples] f1"], dis["planted [samples] precision"], dis["planted [samples] recall"]) == ("50.0", "40.0", "66.7")
    assert (dis["planted [samples] support"], dis["oracle [samples] f1"]) == ("3", "100.0")
    # 3 units: below the small-sample threshold, so no interval (tests/test_leaderboard_honesty.py
    # checks that a run with enough units gets one)
    assert (dis["planted [samples] ci_low"], dis["planted [samples] ci_high"]) == ("", "")


def test_ungrounded_rate_is_the_hand_computed_share_and_zero_for_the_oracle(runs):
    planted = json.loads(runs["planted"].read_text(encoding="utf-8"))["results"]
    oracle = json.loads(runs["oracle"].read_text(encoding="utf-8"))["results"]
    # CMeEE: 9 distinct predicted mentions over the three units, one ("糖尿病") nowhere in its text
    assert planted["taiyi_cmeee"]["ungrounded_rate,none"] == pytest.approx(1 / 9)
    assert planted["taiyi_cmeie"]["ungrounded_rate,none"] == 0.0  # a reversed pair is still grounded
    for task in ("taiyi_cmeee", "taiyi_cmeie"):
        assert oracle[task]["ungrounded_rate,none"] == 0.0
    assert "ungrounded_rate,none" not in planted["taiyi_litcovid"]  # no grounding for labels or options
    assert planted["taiyi_cmeee"]["verdicts,none"] == {"boundary": 1, "matched": 5, "missed": 1, "spurious": 2, "wrong_type": 1}


def test_leaderboard_shows_the_grounding_table(runs, tmp_path):
    code = main(["leaderboard", str(runs["root"]), "--include-partial", "--out", str(tmp_path), "--formats", "md"])
    assert code == 0
    grounding = (tmp_path / "leaderboard_grounding.md").read_text(encoding="utf-8")
    row = next(line for line in grounding.splitlines() if "CMeEE" in line)
    assert "11.1" in row and "0.0" in row


def test_compare_counts_add_up_and_list_the_planted_differences(runs, tmp_path, capsys):
    out = tmp_path / "compare.json"
    assert main(["compare", str(runs["planted"]), str(runs["oracle"]), "--json", str(out), "--top", "10"]) == 0
    printed = capsys.readouterr().out
    data = json.loads(out.read_text(encoding="utf-8"))
    planted_units: dict[str, set[str]] = {}
    for task, unit in PLANTED:
        planted_units.setdefault(task, set()).add(unit)
    assert set(data["tasks"]) == set(TASKS)
    for task, result in data["tasks"].items():
        assert result["a_higher"] + result["b_higher"] + result["both_right"] + result["tied_below"] == result["units"] == 3
        assert result["a_higher"] == 0 and result["b_higher"] == len(planted_units[task])
        assert {u["id"] for u in result["differing_units"]} == planted_units[task]
        assert all(u["gap"] < 0 and u["b"]["score"] == 1 for u in result["differing_units"])
        assert result["paired_bootstrap"]["p_value"] is None  # 3 units: withheld
        for unit in planted_units[task]:
            assert re.search(rf"{task} unit {unit}: A (wrong|F1 0\.\d\d .*), B (right|F1 1\.00 )", printed)
    cmeee = {u["id"]: u for u in data["tasks"]["taiyi_cmeee"]["differing_units"]}
    assert cmeee["dev-0"]["a"]["prediction"]["entities"] == [["dis", "哮喘"], ["sym", "沙丁胺醇"]]
    assert "糖尿病" in cmeee["dev-1"]["a"]["output"]
    types = data["tasks"]["taiyi_cmeee"]["per_type"]
    # dis is in the gold of dev-0 (boundary: B higher) and dev-2 (both right); dev-1's dis are A's spurious ones
    assert types["dis"] == {"units": 2, "a_higher": 0, "b_higher": 1, "both_right": 1, "tied_below": 0,
                            "a_spurious": 1, "b_spurious": 0}
    assert types["bod"]["both_right"] == 2 and types["sym"]["a_spurious"] == 1
    assert "dis: 糖尿病 → spurious, not in the text" in printed


def _chromium() -> str | None:
    return next((found for name in ("chromium", "chromium-browser") if (found := shutil.which(name))), None)


class _UnitsPerSet(html.parser.HTMLParser):
    """Error units (details.unit) inside each set's error section of the rendered DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.units: dict[str, list[str]] = {}
        self._set: str | None = None
        self._depth = 0

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "section":
            if "task-errors" in (attributes.get("class") or ""):
                self._set, self._depth = attributes["data-set"], 0
            elif self._set:
                self._depth += 1
        if tag == "details" and self._set and "unit" in (attributes.get("class") or "").split():
            self.units.setdefault(self._set, []).append(attributes["data-unit"])

    def handle_endtag(self, tag):
        if tag == "section" and self._set:
            if self._depth:
                self._depth -= 1
            else:
                self._set = None


def test_report_renders_in_headless_chromium(runs, tmp_path):
    assert main(["report", str(runs["root"]), "--out", str(tmp_path / "report")]) == 0
    page = tmp_path / "report" / "report.html"
    text = page.read_text(encoding="utf-8")
    assert not re.search(r"""(?:src|href)=["']https?:""", text), "the page must not load anything from the network"
    # Chinese labels: a CJK font in the inlined style's stack, ahead of the generic family.
    font_stack = re.search(r"body\{font-family:([^;]+);", text).group(1).split(",")
    assert '"Noto Sans CJK SC"' in font_stack and font_stack[-1] == "sans-serif"
    chromium = _chromium()
    if chromium is None:
        pytest.skip("no Chromium installed (Debian: apt-get install chromium); the page was written but not rendered")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1280,2400"]
    shot = tmp_path / "shot.png"
    subprocess.run([chromium, *flags, f"--screenshot={shot}", page.as_uri()], check=True, capture_output=True, timeout=120)
    dom = subprocess.run([chromium, *flags, "--dump-dom", page.as_uri()], check=True, capture_output=True, text=True,
                         timeout=120).stdout
    from PIL import Image

    image = Image.open(shot).convert("L")
    assert image.size == (1280, 2400)
    low, high = image.getextrema()
    assert high - low > 100 and len(set(image.resize((128, 240)).getdata())) > 20, "the screenshot is blank"
    results = json.loads(runs["planted"].read_text(encoding="utf-8"))["results"]
    for task, metric in (("taiyi_cmeee", "micro_f1"), ("taiyi_cmeie", "micro_f1"), ("taiyi_medqa_usmle", "acc")):
        assert fmt_pct(results[task][f"{metric},none"] * 100) in dom  # the headline table's numbers
    parser = _UnitsPerSet()
    parser.feed(dom)
    planted_units: dict[str, set[str]] = {}
    for task, unit in PLANTED:
        planted_units.setdefault(task.removeprefix("taiyi_"), set()).add(unit)
    assert {key: set(units) for key, units in parser.units.items()} == planted_units  # every error unit, per set
    assert "empty output" in dom and "Ungrounded" in dom


def test_bert_samples_carry_the_same_verdicts(tmp_path):
    from taiyi_bench.baselines.results import write_run
    from taiyi_bench.harness.loading import load_split
    from taiyi_bench.harness.records import Prediction
    from taiyi_bench.harness.registry import get_spec

    spec = get_spec("cmeee")
    examples = load_split("cmeee", "dev", None).examples[:2]
    predictions = [
        Prediction(entities={("dis", "哮喘"), ("sym", "沙丁胺醇")}),
        Prediction(entities={("sym", "反复鼻出血"), ("dis", "糖尿病")}),
    ]
    results = write_run(spec, examples, predictions, model_name="bert-test", model_args={}, data_source="samples",
                        results_dir=tmp_path, n_original=len(examples), split="dev")
    data = json.loads(results.read_text(encoding="utf-8"))
    lines = samples_of(results, "taiyi_cmeee")
    for example, prediction, line in zip(examples, predictions, lines, strict=True):
        assert line["verdicts"] == json.loads(json.dumps(unit_verdicts(spec, example, prediction)))
        assert "verdicts" in line["metrics"] and "ungrounded_rate" in line["metrics"]
    assert data["results"]["taiyi_cmeee"]["ungrounded_rate,none"] == pytest.approx(1 / 4)
    assert data[PER_TYPE_KEY]["taiyi_cmeee"]["dis"]["fp"] == 2


def test_report_and_compare_refuse_folders_without_runs_in_one_line(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["report", str(empty), "--out", str(tmp_path / "report")]) == 2
    err = capsys.readouterr().err
    assert "taiyi report: error: no run with samples files under" in err and "Traceback" not in err
    assert not (tmp_path / "report" / "report.html").exists()
    assert main(["compare", str(empty), str(empty)]) == 2
    assert "expected exactly one model run, found 0" in capsys.readouterr().err
