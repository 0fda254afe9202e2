"""Leaderboard: published tables, run collection, every output format, bootstrap, bad input.

Run result files are built in tmp_path in lm-eval 0.4.13's own layout (what
`EvaluationTracker.save_results_aggregated` / `save_results_samples` write with
`--output_path <dir> --log_samples`), with per-unit values logged as our tasks log them.
"""

from __future__ import annotations

import csv
import html.parser
import io
import json
import math
import os
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from taiyi_bench.harness.apps.leaderboard import (
    Units,
    bootstrap_ci,
    compare_table,
    leaderboard_table,
    load_published,
    paired_bootstrap,
    paper_tables,
    render_csv,
    render_html,
    render_latex,
    render_markdown,
    write_table,
)
from taiyi_bench.harness.apps.leaderboard.bootstrap import read_units
from taiyi_bench.harness.apps.leaderboard.build import paired_report
from taiyi_bench.harness.apps.leaderboard.table import fmt_pct, row_label
from taiyi_bench.harness.atomic_files import atomic_write_text
from taiyi_bench.harness.registry import PAPER_ORDER, PAPER_SETS, REGISTRY
from taiyi_bench.harness.results_io import write_run_files

REPO_ROOT = Path(__file__).resolve().parents[1]
PUBLISHED_MD = REPO_ROOT.parent / "shared" / "reference" / "published.md"


# --- the reference file, parsed in the test so the data files are checked against the source ----


@pytest.fixture(scope="module")
def published_md() -> str:
    if not PUBLISHED_MD.is_file():
        if os.environ.get("TAIYI_REQUIRE_SHARED_DATA"):
            pytest.fail(f"{PUBLISHED_MD} is required (TAIYI_REQUIRE_SHARED_DATA is set) but missing")
        pytest.skip(f"{PUBLISHED_MD} not present")
    return PUBLISHED_MD.read_text(encoding="utf-8")


def _md_section_table(text: str, heading: str) -> list[list[str]]:
    """Body rows (cells stripped) of the first pipe table after a `## <heading>` line."""
    start = text.index(f"## {heading}")
    rows, in_table = [], False
    for line in text[start:].splitlines()[1:]:
        if line.startswith("|"):
            in_table = True
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif in_table:
            break
    assert len(rows) > 2, f"no table under {heading!r}"
    return [r for r in rows[1:] if not set("".join(r)) <= set("-: ")]  # drop header and separator


_VALUE = re.compile(r"^(-?\d+(?:\.\d+)?)(?:\s*\((.+)\))?$")


def _value(cell: str) -> tuple[float, str | None]:
    match = _VALUE.match(cell.replace("\\", ""))
    assert match, f"not a number cell: {cell!r}"
    return float(match.group(1)), match.group(2)


def _expected_tables(text: str) -> dict[str, dict]:
    """{'A': {'labels': [...], 'columns': {header: [a value per set]}, 'models': {...}, 'average': {...}}, 'B': ...}"""
    out = {}
    for letter, heading, first_value_col, headers in (
        ("A", "Table A", 2, ["Taiyi", "ChatGPT-3.5", "SOTA"]),
        ("B", "Table B", 1, ["Taiyi1", "Taiyi2", "GPT3.5", "DeepSeek-14B", "SOTA"]),
    ):
        rows = _md_section_table(text, heading)
        body, average = rows[:-1], rows[-1]
        assert len(body) == len(PAPER_SETS) and average[first_value_col - 1].lower() in ("average", "ave")
        columns = {h: [_value(r[first_value_col + i])[0] for r in body] for i, h in enumerate(headers)}
        models = [_value(r[first_value_col + len(headers) - 1])[1] for r in body]
        avg = {h: _value(average[first_value_col + i])[0] for i, h in enumerate(headers)}
        out[letter] = {"labels": [r[first_value_col - 1] for r in body], "columns": columns, "models": models, "average": avg}
    return out


def _parse_markdown_table(text: str) -> tuple[list[str], list[list[str]]]:
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    split = [[c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]] for line in lines]
    header, body = split[0], split[1:]
    return [h.replace("\\", "") for h in header], [[c.replace("\\", "") for c in row] for row in body]


def _first_rule_rows(body: list[list[str]]) -> list[list[str]]:
    """The first row of each set (its headline rule) in a by-rule table, in order; the averages after."""
    seen: set[str] = set()
    out = []
    for row in body:
        if row[1] not in seen:
            seen.add(row[1])
            out.append(row)
    return out


# --- paper tables ------------------------------------------------------------------------------


def test_paper_tables_match_reference_cell_by_cell(published_md: str) -> None:
    expected = _expected_tables(published_md)
    tables = {t.slug: t for t in paper_tables()}
    published = load_published()
    for letter in ("A", "B"):
        table = tables[f"paper_table_{letter.lower()}"]
        exp = expected[letter]
        assert [c.header for c in table.columns] == list(exp["columns"])
        assert [row["label"] for row in published[letter].rows] == exp["labels"]
        for column in table.columns:
            for index, key in enumerate(PAPER_ORDER):
                assert column.value(key) == exp["columns"][column.header][index], (letter, column.header, key)
            # Averages are recomputed from the cells and agree with the source's average row.
            recomputed = column.averages()["all"]
            assert recomputed == pytest.approx(sum(exp["columns"][column.header]) / len(PAPER_SETS))
            assert fmt_pct(recomputed) == f"{exp['average'][column.header]:.1f}"
        sota = table.column(f"published:{published[letter].id}:sota")
        assert [sota.cells[k].note for k in PAPER_ORDER] == exp["models"]


def test_paper_averages_are_recomputed_not_copied() -> None:
    tables = {t.slug: t for t in paper_tables()}
    a = [fmt_pct(c.averages()["all"]) for c in tables["paper_table_a"].columns]
    b = [fmt_pct(c.averages()["all"]) for c in tables["paper_table_b"].columns]
    assert a == ["65.1", "49.3", "73.5"]
    assert b == ["65.1", "74.5", "49.3", "40.3", "75.3"]
    # Changing a cell changes the average: nothing is read from reported_averages.
    column = tables["paper_table_a"].columns[0]
    column.cells["hoc"].value += 13.0
    assert fmt_pct(column.averages()["all"]) == "66.1"


def test_paper_table_flags_the_stale_64_8_average() -> None:
    table = next(t for t in paper_tables() if t.slug == "paper_table_a")
    flagged = [n for n in table.notes if "64.8" in n]
    assert flagged and "65.1" in flagged[0] and "earlier" in flagged[0].lower()
    markdown = render_markdown(table)
    _, body = _parse_markdown_table(markdown)
    average_row = next(r for r in body if r[1].startswith("Average"))
    assert average_row[3] == "65.1"  # the recomputed value is the one in the table (column 2: Rule)
    assert "64.8" in markdown.split("## Notes", 1)[1]


def test_paper_markdown_cell_by_cell(published_md: str, tmp_path: Path) -> None:
    expected = _expected_tables(published_md)
    from taiyi_bench.harness.apps.cli import main

    assert main(["leaderboard", "--paper", "--out", str(tmp_path), "--formats", "md,csv"]) == 0
    for letter in ("A", "B"):
        header, body = _parse_markdown_table((tmp_path / f"paper_table_{letter.lower()}.md").read_text(encoding="utf-8"))
        exp = expected[letter]
        assert header[2] == "Rule" and header[3:] == list(exp["columns"])
        for index, key in enumerate(PAPER_ORDER):
            # One row per (set, rule): each published number is in exactly one of its set's rows.
            rows = [row for row in body if row[1] == row_label(REGISTRY[key])]
            for offset, column_header in enumerate(exp["columns"]):
                (cell,) = [row[3 + offset] for row in rows if row[3 + offset]]
                assert _value(cell)[0] == exp["columns"][column_header][index]
        overall = next(row for row in body if row[1] == f"Average ({len(PAPER_ORDER)} sets)")
        assert [_value(x)[0] for x in overall[3:]] == list(exp["average"].values())  # SOTA's is marked (mixed)


# --- building lm-eval 0.4.13 result files --------------------------------------------------------


def _sanitize(model_name: str) -> str:
    from lm_eval.utils import sanitize_model_name

    return sanitize_model_name(model_name)


def _units(key: str, n: int, quality: float, rng: np.random.Generator) -> list:
    """Per-unit logged values: [tp, fp, fn] for F1 sets, 0/1 for accuracy sets."""
    if REGISTRY[key].metric == "f1":
        gold = rng.integers(0, 4, size=n)
        tp = rng.binomial(gold, quality)
        fp = rng.binomial(2, (1 - quality) / 2, size=n)
        return [[int(a), int(b), int(c)] for a, b, c in zip(tp, fp, gold - tp, strict=True)]
    return [int(x) for x in rng.random(n) < quality]


def _headline(key: str, values: list) -> float:
    if REGISTRY[key].metric == "f1":
        tp, fp, fn = np.asarray(values).sum(axis=0)
        return 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else 0.0
    return float(np.mean(values))


def write_run(
    out: Path,
    model: str,
    *,
    slug: str | None = None,
    quality: float = 0.7,
    n: int = 40,
    seed: int = 0,
    tasks: list[str] | None = None,
    data_source: str = "data",
    limit: int | None = None,
    when: datetime | None = None,
    units: dict[str, list] | None = None,
    mutate=None,
) -> Path:
    """A results file + samples files as `lm_eval --output_path out/<slug> --log_samples` writes them."""
    rng = np.random.default_rng(seed)
    when = when or datetime(2026, 11, 20, 12, 0, 0, tzinfo=timezone.utc)
    date_id = when.replace(tzinfo=None).isoformat(timespec="microseconds").replace(":", "-")
    folder = out / (slug or _sanitize(model).lower()) / _sanitize(model)
    folder.mkdir(parents=True, exist_ok=True)
    keys = tasks or list(PAPER_ORDER)
    results, configs, versions, n_shot, higher, n_samples = {}, {}, {}, {}, {}, {}
    samples: dict[str, list[dict]] = {}
    for key in keys:
        task = REGISTRY[key].task_name
        values = (units or {}).get(key) or _units(key, n, quality, rng)
        metric = "micro_f1" if REGISTRY[key].metric == "f1" else "acc"
        effective = len(values) if limit is None else min(limit, len(values))
        values = values[:effective]
        results[task] = {
            "name": task, "alias": task, "sample_len": effective,
            f"{metric},none": _headline(key, values), f"{metric}_stderr,none": "N/A",
            "parse_fail,none": 0.0, "parse_fail_stderr,none": 0.0,
        }
        configs[task] = {
            "task": task, "output_type": "generate_until", "num_fewshot": 0,
            "metadata": {"version": 1.0, "data_source": data_source, "config_source": f"tasks/{task}.yaml"},
        }
        versions[task] = 1.0
        n_shot[task] = 0
        higher[task] = {metric: True, "parse_fail": False}
        n_samples[task] = {"original": n if limit is None else max(n, len(values) + 10), "effective": effective}
        samples[task] = [
            {
                "doc_id": doc_id, "doc": {"id": f"{REGISTRY[key].eval_split}-{doc_id}", "data_source": data_source},
                "target": "x", "arguments": {"gen_args_0": {"arg_0": "prompt", "arg_1": {"until": ["\n\n"]}}},
                "resps": [["answer"]], "filtered_resps": ["answer"], "filter": "none",
                "metrics": [metric, "parse_fail"], "doc_hash": "0", "prompt_hash": "0", "target_hash": "0",
                metric: value, "parse_fail": 0,
            }
            for doc_id, value in enumerate(values)
        ]
    data = {
        "results": results, "group_subtasks": {}, "configs": configs, "versions": versions, "n-shot": n_shot,
        "higher_is_better": higher, "n-samples": n_samples,
        "config": {
            "model": "hf", "model_args": {"pretrained": model, "dtype": "bfloat16"}, "model_num_parameters": 1000,
            "model_dtype": "torch.bfloat16", "model_revision": "main", "model_sha": "", "batch_size": "1",
            "batch_sizes": [], "device": "cpu", "use_cache": None, "limit": None if limit is None else float(limit),
            "bootstrap_iters": 100000, "gen_kwargs": {}, "random_seed": 0, "numpy_seed": 1234, "torch_seed": 1234,
            "fewshot_seed": 1234,
        },
        "git_hash": "abc1234", "date": when.timestamp(), "pretty_env_info": "...", "transformers_version": "4.57.0",
        "lm_eval_version": "0.4.13", "upper_git_hash": None, "task_hashes": {}, "model_source": "hf",
        "model_name": model, "model_name_sanitized": _sanitize(model), "system_instruction": None,
        "system_instruction_sha": None, "fewshot_as_multiturn": None, "chat_template": None,
        "chat_template_sha": None, "total_evaluation_time_seconds": "12.5",
    }
    if mutate:
        mutate(data)
    # The one writer of lm-eval's layout (samples first, each file atomically).
    return write_run_files(folder / f"results_{date_id}.json", data, samples)


def _expected_percent(path: Path) -> dict[str, float]:
    data = json.loads(path.read_text(encoding="utf-8"))
    out = {}
    for task, entry in data["results"].items():
        key = task.removeprefix("taiyi_")
        value = entry.get("micro_f1,none", entry.get("acc,none"))
        out[key] = value * 100
    return out


@pytest.fixture()
def two_runs(tmp_path: Path) -> tuple[Path, Path, Path]:
    runs = tmp_path / "runs"
    a = write_run(runs, "org/model-a", quality=0.8, seed=1)
    b = write_run(runs, "/ckpt/local/model-b", slug="model-b", quality=0.5, seed=2)
    return runs, a, b


# --- collection, rendering -----------------------------------------------------------------------


def test_collects_lm_eval_layout_and_provenance(two_runs) -> None:
    runs, a, b = two_runs
    assert a.parent.name == "org__model-a"  # lm-eval's own folder naming
    table = leaderboard_table([runs], published="none")
    assert [c.header for c in table.columns] == ["model-b", "org/model-a"]
    run_a = table.columns[1]
    for key, value in _expected_percent(a).items():
        assert run_a.value(key) == pytest.approx(value)
    text = " ".join(run_a.provenance)
    for fragment in ("org/model-a", "lm-eval 0.4.13", "2026-11-20 12:00 UTC", "prompt version 1.0", "official data", "no limit"):
        assert fragment in text
    assert not table.warnings


def test_every_format_renders(two_runs, tmp_path: Path) -> None:
    runs, a, b = two_runs
    table = leaderboard_table([runs], published="A")
    out = tmp_path / "board"
    written = write_table(table, out, ["md", "csv", "tex", "html", "png", "svg"])
    expected = [f"leaderboard.{f}" for f in ("md", "csv", "tex", "html", "png", "svg")] + ["leaderboard.caption.txt"]
    assert sorted(p.name for p in written) == sorted(expected)
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "temporary files left behind"
    expected_a, expected_b = _expected_percent(a), _expected_percent(b)

    # Markdown, cell by cell.
    header, body = _parse_markdown_table((out / "leaderboard.md").read_text(encoding="utf-8"))
    assert header == ["Type", "Set", "Rule", "Taiyi", "ChatGPT-3.5", "SOTA", "model-b", "org/model-a"]
    taiyi = load_published()["A"].values("taiyi1")
    first = _first_rule_rows(body)  # each set's headline-rule row, where the Taiyi cells stand
    for index, key in enumerate(PAPER_ORDER):
        row = first[index]
        assert row[1] == row_label(REGISTRY[key])
        assert row[3] == f"{taiyi[key]:.1f}"
        assert row[6] == fmt_pct(expected_b[key])
        assert row[7] == fmt_pct(expected_a[key])
    overall = body[-1]
    assert overall[7] == fmt_pct(sum(expected_a.values()) / len(PAPER_ORDER))
    assert "## Provenance" in (out / "leaderboard.md").read_text(encoding="utf-8")

    # CSV: same numbers, and a provenance section.
    rows = list(csv.reader(io.StringIO((out / "leaderboard.csv").read_text(encoding="utf-8"))))
    head = rows[0]
    col_a = head.index("org/model-a")
    assert head[3] == "rule"
    headline_rows = [r for r in rows[1:] if len(r) > 3 and r[2].startswith("taiyi_") and r[3] == _headline_rule(r[2])]
    for index, key in enumerate(PAPER_ORDER):
        assert headline_rows[index][2] == REGISTRY[key].task_name
        assert headline_rows[index][col_a] == fmt_pct(expected_a[key])
    assert "SOTA model" in head
    assert ["# provenance"] in rows

    # LaTeX: escaped, booktabs, provenance.
    tex = (out / "leaderboard.tex").read_text(encoding="utf-8")
    assert "\\begin{tabular}" in tex and "\\toprule" in tex and "Provenance" in tex
    assert "org/model-a" in tex and "results\\_" in tex  # underscores in paths are escaped
    assert fmt_pct(expected_a["hoc"]) in tex

    # HTML: parses, has all cells, provenance section.
    page = (out / "leaderboard.html").read_text(encoding="utf-8")
    cells = _html_cells(page)
    assert fmt_pct(expected_a["pubmedqa"]) in cells and "93.3 (PubMedBERT)" in cells
    assert 'id="provenance"' in page

    # PNG: magic bytes, real size, loads as an image.
    png = out / "leaderboard.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 10_000
    import matplotlib.image

    image = matplotlib.image.imread(png)
    assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 600
    svg = (out / "leaderboard.svg").read_text(encoding="utf-8")
    assert "<svg" in svg and "</svg>" in svg


class _CellParser(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.cells: list[str] = []
        self._in = False

    def handle_starttag(self, tag, attrs):
        if tag == "td":
            self._in = True
            self.cells.append("")

    def handle_endtag(self, tag):
        if tag == "td":
            self._in = False

    def handle_data(self, data):
        if self._in:
            self.cells[-1] += data


def _headline_rule(task: str) -> str:
    from taiyi_bench.harness.apps.leaderboard.rules import headline_rule

    return headline_rule(task.removeprefix("taiyi_"))


def _html_cells(page: str) -> list[str]:
    parser = _CellParser()
    parser.feed(page)
    return parser.cells


def test_escaping_in_text_formats(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    write_run(runs, "org/we|ird_<model>&$", slug="weird")
    table = leaderboard_table([runs], published="none")
    markdown = render_markdown(table)
    header, body = _parse_markdown_table(markdown)
    assert header[3] == "org/we|ird_<model>&$"  # the pipe did not split the cell (column 2: Rule)
    assert len(body[0]) == 4
    assert "<model>" not in render_html(table)
    tex = render_latex(table)
    assert "we\\textbar{}ird\\_\\textless{}model\\textgreater{}\\&\\$" in tex
    rows = list(csv.reader(io.StringIO(render_csv(table))))
    assert rows[0][4] == "org/we|ird_<model>&$"


def test_compare_puts_run_next_to_published_with_deltas(two_runs) -> None:
    runs, a, _ = two_runs
    table = compare_table(a, against="A:taiyi1,B:taiyi2")
    headers = [c.header for c in table.columns]
    assert headers == ["org/model-a", "Δ vs Taiyi", "Δ vs Taiyi2", "Taiyi", "Taiyi2"]
    expected = _expected_percent(a)
    taiyi = load_published()["A"].values("taiyi1")
    delta = table.columns[1]
    for key in PAPER_ORDER:
        assert delta.value(key) == pytest.approx(expected[key] - taiyi[key])
    assert delta.averages()["all"] == pytest.approx(sum(expected.values()) / len(PAPER_ORDER) - 65.1076923, abs=1e-6)
    header, body = _parse_markdown_table(render_markdown(table))
    assert body[0][4].startswith(("+", "-")) or body[0][4] == "0.0"


# --- partial runs, duplicates, bad input ------------------------------------------------------------


def test_partial_runs_are_kept_out_unless_asked(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    write_run(runs, "org/full", seed=1)
    samples_run = write_run(runs, "org/demo", data_source="samples", seed=2)

    def one_set_fully_covered(data):
        # --limit 10 on a 10-unit set drops nothing; the run is still a limited run.
        data["n-samples"]["taiyi_hoc"] = {"original": 10, "effective": 10}

    limited_run = write_run(runs, "org/limited", limit=10, n=40, seed=3, mutate=one_set_fully_covered)
    table = leaderboard_table([runs], published="none")
    assert [c.header for c in table.columns] == ["org/full"]
    joined = "\n".join(table.warnings)
    assert str(samples_run.name) in joined and "samples" in joined and "--include-partial" in joined
    assert str(limited_run.name) in joined and "slice of 10" in joined

    table = leaderboard_table([runs], published="none", include_partial=True)
    headers = [c.display_header for c in table.columns]
    assert headers == ["org/demo [samples]", "org/full", "org/limited [slice of 10]"]
    assert table.columns[2].value("hoc") is not None  # the fully covered set stays in the limited column
    markdown = render_markdown(table)
    assert "org/demo \\[samples\\]" in markdown
    assert "BUNDLED SAMPLES" in markdown  # the provenance says so loudly


def test_samples_flag_read_from_docs_when_metadata_lacks_it(tmp_path: Path) -> None:
    def drop_metadata(data):
        for cfg in data["configs"].values():
            cfg["metadata"].pop("data_source")

    write_run(tmp_path, "org/demo", data_source="samples", mutate=drop_metadata)
    assert leaderboard_table([tmp_path], published="none").columns == []


def test_duplicate_runs_keep_the_newest(tmp_path: Path) -> None:
    old = write_run(tmp_path, "org/m", quality=0.3, seed=1, when=datetime(2026, 1, 1, tzinfo=timezone.utc))
    new = write_run(tmp_path, "org/m", quality=0.9, seed=2, when=datetime(2026, 3, 1, tzinfo=timezone.utc))
    table = leaderboard_table([tmp_path], published="none")
    assert len(table.columns) == 1
    expected = _expected_percent(new)
    assert table.columns[0].value("hoc") == pytest.approx(expected["hoc"])
    warning = next(w for w in table.warnings if "duplicate" in w)
    assert old.name in warning and new.name in warning and "newest" in warning


def test_bad_input_warns_with_file_name_and_rest_renders(tmp_path: Path) -> None:
    good = write_run(tmp_path, "org/good", seed=1)
    broken = tmp_path / "broken" / "x" / "results_2026-01-01T00-00-00.000000.json"
    broken.parent.mkdir(parents=True)
    broken.write_text('{"results": {"taiyi_hoc": {', encoding="utf-8")

    def nan_and_missing(data):
        data["results"]["taiyi_hoc"]["micro_f1,none"] = float("nan")
        del data["results"]["taiyi_pubmedqa"]

    nan_run = write_run(tmp_path, "org/nan", seed=2, mutate=nan_and_missing)

    def older_layout(data):
        for entry in data["results"].values():
            for key in [k for k in entry if "," in k]:
                base = key.split(",")[0]
                entry["f1" if base == "micro_f1" else base] = entry.pop(key)
        data.pop("lm_eval_version")
        data.pop("model_name")

    old_run = write_run(tmp_path, "org/older", seed=3, mutate=older_layout)
    not_lm_eval = tmp_path / "other" / "results_foo.json"
    not_lm_eval.parent.mkdir()
    not_lm_eval.write_text("[1, 2, 3]", encoding="utf-8")

    table = leaderboard_table([tmp_path, tmp_path / "does-not-exist"], published="none")
    warnings = "\n".join(table.warnings)
    assert f"{broken.name}: not valid JSON" in warnings
    assert f"{nan_run.name}: taiyi_hoc 'micro_f1,none' is nan; cell left empty" in warnings
    assert nan_run.name in warnings and "taiyi_pubmedqa" in warnings  # missing set named with the file
    assert f"{old_run.name}: older lm-eval layout" in warnings
    assert f"{not_lm_eval.name}: no 'results' mapping" in warnings
    assert "does-not-exist: no such file or folder" in warnings

    headers = {c.header: c for c in table.columns}
    assert set(headers) == {"org/good", "org/nan", "org/older"}  # older layout: model from model_args
    assert headers["org/good"].value("hoc") == pytest.approx(_expected_percent(good)["hoc"])
    assert headers["org/nan"].value("hoc") is None and headers["org/nan"].averages()["all"] is None
    assert headers["org/nan"].averages()["ner"] is not None  # other groups still average
    assert headers["org/older"].value("hoc") is not None
    assert "lm-eval version not recorded" in " ".join(headers["org/older"].provenance)
    markdown = render_markdown(table)  # everything still renders
    assert "## Warnings" in markdown and broken.name.replace("_", "\\_") in markdown


def test_cli_reports_warnings_and_still_writes(tmp_path: Path, capsys) -> None:
    from taiyi_bench.harness.apps.cli import main

    write_run(tmp_path / "runs", "org/good")
    bad = tmp_path / "runs" / "bad" / "results_x.json"
    bad.parent.mkdir(parents=True)
    bad.write_text("not json", encoding="utf-8")
    code = main(["leaderboard", str(tmp_path / "runs"), "--out", str(tmp_path / "out"), "--formats", "md,png", "--ci"])
    assert code == 0
    captured = capsys.readouterr()
    assert "results_x.json: not valid JSON" in captured.err
    assert (tmp_path / "out" / "leaderboard.md").is_file() and (tmp_path / "out" / "leaderboard.png").is_file()
    assert main(["leaderboard", "--formats", "pdf", "--out", str(tmp_path / "out")]) == 2
    assert "unknown format" in capsys.readouterr().err


def test_the_screen_shows_a_provenance_summary_and_the_file_keeps_it_all(tmp_path: Path, capsys) -> None:
    from taiyi_bench.harness.apps.cli import main

    run = write_run(tmp_path / "runs", "org/good")
    assert main(["leaderboard", str(tmp_path / "runs"), "--out", str(tmp_path / "out"), "--formats", "md"]) == 0
    screen = capsys.readouterr().out
    markdown = (tmp_path / "out" / "leaderboard.md").read_text(encoding="utf-8")
    assert "Provenance (in full:" in screen and "leaderboard.md" in screen
    assert run.name in markdown.replace("\\_", "_")  # the results file, named in full in the file
    assert run.name not in screen  # and not on screen
    # Nothing written to a file: the screen is the only place, so it shows everything.
    assert main(["leaderboard", str(tmp_path / "runs"), "--out", str(tmp_path / "out2"), "--formats", "none"]) == 0
    assert run.name in capsys.readouterr().out.replace("\n", "")


# --- bootstrap -----------------------------------------------------------------------------------


def _f1_units(n: int, quality: float, seed: int) -> Units:
    values = np.asarray(_units("bc5cdr_chem", n, quality, np.random.default_rng(seed)), dtype=np.int64)
    return Units(tuple(f"u{i}" for i in range(n)), values, "f1")


def test_bootstrap_interval_contains_point_and_narrows() -> None:
    small = bootstrap_ci(_f1_units(200, 0.7, 1), 1000, seed=0)
    large = bootstrap_ci(_f1_units(5000, 0.7, 1), 1000, seed=0)
    for result in (small, large):
        assert result.low <= result.point <= result.high
        assert result.resamples.shape == (1000,)
    assert (large.high - large.low) < 0.5 * (small.high - small.low)
    again = bootstrap_ci(_f1_units(200, 0.7, 1), 1000, seed=0)
    assert (again.low, again.high) == (small.low, small.high)  # seeded

    acc = Units(tuple(map(str, range(400))), (np.random.default_rng(3).random(400) < 0.6).astype(float), "acc")
    result = bootstrap_ci(acc, 1000, seed=0)
    assert result.point == pytest.approx(acc.values.mean())
    assert result.low <= result.point <= result.high
    # Binomial standard error check: the 95% width is about 4 * sqrt(p(1-p)/n).
    assert result.high - result.low == pytest.approx(4 * math.sqrt(0.6 * 0.4 / 400), rel=0.25)


def test_micro_f1_is_recomputed_per_resample_not_averaged() -> None:
    # Two units: one with many mentions, one with one. Micro-F1 weighs by counts.
    units = Units(("a", "b"), np.array([[9, 0, 1], [0, 1, 0]]), "f1")
    assert bootstrap_ci(units, 10, seed=0).point == pytest.approx(18 / (18 + 1 + 1))


def test_paired_test_finds_planted_difference_and_not_a_null_one() -> None:
    rng = np.random.default_rng(7)
    n = 600
    truth = rng.random(n)
    better = Units(tuple(map(str, range(n))), (truth < 0.75).astype(float), "acc")
    worse = Units(tuple(map(str, range(n))), (truth < 0.65).astype(float), "acc")
    planted = paired_bootstrap(better, worse, 1000, seed=0)
    assert planted.delta == pytest.approx(better.values.mean() - worse.values.mean())
    assert planted.p_value < 0.01 and planted.low > 0

    same_a = Units(better.ids, (rng.random(n) < 0.7).astype(float), "acc")
    same_b = Units(better.ids, (rng.random(n) < 0.7).astype(float), "acc")
    null = paired_bootstrap(same_a, same_b, 1000, seed=0)
    assert null.p_value > 0.05
    assert null.low < 0 < null.high

    identical = paired_bootstrap(better, better, 200, seed=0)
    assert identical.delta == 0 and identical.p_value == 1.0

    f1_a, f1_b = _f1_units(800, 0.85, 11), _f1_units(800, 0.55, 11)
    assert paired_bootstrap(f1_a, f1_b, 1000, seed=0).p_value < 0.01


def test_paired_test_matches_units_by_id() -> None:
    a = _f1_units(300, 0.8, 1)
    b = _f1_units(300, 0.6, 2)
    order = np.random.default_rng(0).permutation(300)
    shuffled = Units(tuple(b.ids[i] for i in order), b.values[order], "f1")
    extra = Units((*shuffled.ids, "only-b"), np.vstack([shuffled.values, [[5, 0, 0]]]), "f1")
    ref = paired_bootstrap(a, b, 500, seed=3)
    got = paired_bootstrap(a, extra, 500, seed=3)
    assert got.delta == pytest.approx(ref.delta) and got.n_units == 300 and got.only_b == 1


def test_intervals_and_paired_report_from_samples_files(tmp_path: Path) -> None:
    a = write_run(tmp_path, "org/a", quality=0.9, n=120, seed=1)
    b = write_run(tmp_path, "org/b", quality=0.4, n=120, seed=2)
    table = leaderboard_table([tmp_path], published="none", ci=True, n_resamples=300)
    for column in table.columns:
        for key in PAPER_ORDER:
            low, high = column.cells[key].ci
            assert low - 1e-9 <= column.value(key) <= high + 1e-9
        low, high = column.average_cis["all"]
        assert low <= column.averages()["all"] <= high
        assert "bootstrap" in " ".join(column.provenance)
    assert not [w for w in table.warnings if "recomputed" in w]
    header, body = _parse_markdown_table(render_markdown(table))
    assert re.fullmatch(r"\d+\.\d \[\d+\.\d, \d+\.\d\]", body[0][3])

    units = read_units(a.with_name(f"samples_taiyi_hoc_{a.stem.removeprefix('results_')}.jsonl"), "micro_f1", "f1")
    assert len(units) == 120 and units.ids[0] == "test-0"
    report = paired_report(a, b, n_resamples=300)
    assert set(report.rows) == set(PAPER_ORDER)
    assert all(r.delta > 0 for r in report.rows.values())
    assert sum(r.p_value < 0.05 for r in report.rows.values()) >= 11


def test_missing_samples_file_warns(tmp_path: Path) -> None:
    run = write_run(tmp_path, "org/a")
    samples = next(run.parent.glob("samples_taiyi_hoc_*.jsonl"))
    samples.unlink()
    table = leaderboard_table([tmp_path], published="none", ci=True, n_resamples=50)
    assert table.columns[0].cells["hoc"].ci is None
    assert any(run.name in w and "--log_samples" in w and "taiyi_hoc" in w for w in table.warnings)
    assert "all" not in table.columns[0].average_cis and "ner" in table.columns[0].average_cis


# --- files ---------------------------------------------------------------------------------------


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "x.md"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two"
    assert [p.name for p in target.parent.iterdir()] == ["x.md"]

    def boom(_handle):
        raise RuntimeError("fail mid-write")

    from taiyi_bench.harness.atomic_files import atomic_write_with

    with pytest.raises(RuntimeError):
        atomic_write_with(target, boom)
    assert target.read_text() == "two" and [p.name for p in target.parent.iterdir()] == ["x.md"]


def test_published_columns_selection_disambiguates_headers() -> None:
    from taiyi_bench.harness.apps.leaderboard.published import published_columns

    columns = published_columns("A:sota,B:sota,B:taiyi2")
    assert [c.header for c in columns] == ["SOTA (A)", "SOTA (B)", "Taiyi2"]
    with pytest.raises(KeyError):
        published_columns("C")


def test_date_ordering_uses_run_date_over_file_names(tmp_path: Path) -> None:
    base = datetime(2026, 5, 1, tzinfo=timezone.utc)
    write_run(tmp_path, "org/m", quality=0.2, seed=1, when=base + timedelta(days=2))
    newest = write_run(tmp_path, "org/m", quality=0.95, seed=2, when=base + timedelta(days=5))
    table = leaderboard_table([tmp_path], published="none")
    assert table.columns[0].value("pubmedqa") == pytest.approx(_expected_percent(newest)["pubmedqa"])


def test_a_fine_tuning_adapter_column_is_named_by_its_run() -> None:
    from taiyi_bench.harness.apps.leaderboard.identity import short_model as _short_model

    assert _short_model("/w/runs/demo/finetune/taiyi-style/stage2/adapter") == "taiyi-style (stage2 adapter)"
    assert _short_model("/ckpt/local/model-b") == "model-b"
    assert _short_model("org/model-a") == "org/model-a"
