"""The one reader/writer of lm-eval's results layout."""

from __future__ import annotations

import json

import pytest

from taiyi_bench.harness.results_io import (
    PER_TYPE_KEY,
    SKIPPED_SETS_KEY,
    amend_results,
    model_slug,
    newest_results,
    read_results,
    samples_beside,
    write_run_files,
)


@pytest.mark.parametrize("name", ["..", ".", "../..", "a/../../b", "/etc/passwd", "  ", "...", "\\..\\"])
def test_slugs_never_climb_out_of_their_folder(name, tmp_path):
    slug = model_slug(name)
    assert "/" not in slug and "\\" not in slug and slug not in (".", "..", "")
    assert (tmp_path / slug).resolve().parent == tmp_path.resolve()


def test_slug_keeps_readable_names():
    assert model_slug("Qwen/Qwen2.5-7B-Instruct") == "Qwen__Qwen2.5-7B-Instruct"
    assert model_slug("minilm (fine-tuned)") == "minilm_fine-tuned"


def test_write_then_read_back_with_samples_beside(tmp_path):
    path = tmp_path / "m" / "results_2026-01-01T00-00-00.000001.json"
    write_run_files(path, {"results": {"taiyi_hoc": {"micro_f1,none": 0.5}}}, {"taiyi_hoc": [{"doc_id": 0}, {"doc_id": 1}]})
    assert read_results(path)["results"]["taiyi_hoc"]["micro_f1,none"] == 0.5
    samples = samples_beside(path, "taiyi_hoc")
    assert samples is not None and [json.loads(line)["doc_id"] for line in samples.read_text().splitlines()] == [0, 1]
    assert samples_beside(path, "taiyi_cmeee") is None
    assert newest_results(tmp_path) == path
    amend_results(path, {"taiyi_chemdner": "missing"})  # one rewrite: the skipped sets and the per-type tables
    data = read_results(path)
    assert data[SKIPPED_SETS_KEY] == {"taiyi_chemdner": "missing"} and "results" in data
    assert set(data[PER_TYPE_KEY]) == {"taiyi_hoc"}
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_a_results_file_must_be_named_for_its_date(tmp_path):
    with pytest.raises(ValueError, match="results_<date_id>.json"):
        write_run_files(tmp_path / "out.json", {}, {})


@pytest.mark.parametrize(("text", "message"), [("{", "not valid JSON"), ("[1]", "no 'results' mapping")])
def test_unreadable_results_name_the_file(tmp_path, text, message):
    path = tmp_path / "results_x.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=message) as info:
        read_results(path)
    assert str(path) in str(info.value)
