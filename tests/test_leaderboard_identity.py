"""Leaderboard run identity: variants that change the numbers are never merged, and are marked.

Results files are written here the way lm-eval 0.4.13 writes them, with each task's
`configs[task]["metadata"]` carrying the keys our tasks record (data and few-shot source,
variant, prompt version, budget, thinking allowance, provenance); older files without those
keys must still load as the defaults.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pytest

from taiyi_bench.harness.apps.leaderboard import compare_table, leaderboard_table, render_csv, render_markdown
from taiyi_bench.harness.apps.leaderboard.parse import collect_runs
from taiyi_bench.harness.apps.leaderboard.table import fmt_pct
from taiyi_bench.harness.lmeval.tasks import task_budgets
from taiyi_bench.harness.registry import PAPER_ORDER, REGISTRY, Variant, registered
from taiyi_bench.harness.results_io import SKIPPED_SETS_KEY

BASE_TIME = datetime(2026, 11, 20, 12, 0, 0, tzinfo=timezone.utc)
PROVENANCE = {
    "taiyi_bench_version": "0.1.0",
    "git_commit": "0123456789abcdef0123456789abcdef01234567",
    "git_dirty": False,
    "scoring_rules_version": 1,
}


def write_results(
    out: Path,
    model: str,
    *,
    keys: list[str] | None = None,
    seed: int = 0,
    when: datetime = BASE_TIME,
    n_shot: int = 0,
    fewshot_source: str | None = "data",
    data_source: str = "data",
    mcmle_options: int = 4,
    forms: dict[str, int] | None = None,
    prompt_version: int = 1,
    max_gen_toks: int | None = None,
    thinking_allowance: int = 0,
    model_args: dict[str, Any] | str | None = None,
    chat_template: str | None = None,
    legacy: bool = False,
    eval_units: int = 40,
    top_level: dict[str, Any] | None = None,
    scoring_rules_version: int = 1,
) -> Path:
    """A results file; `legacy` writes only what files had before variants were recorded.

    `max_gen_toks` is a global --gen_kwargs override: every set's effective budget, cut where it
    is below the set's own (the YAML's max_gen_toks, as the task records it).
    """
    rng = np.random.default_rng(seed)
    keys = keys or list(PAPER_ORDER)
    chosen = {"medqa_mcmle": mcmle_options, **(forms or {})}  # key -> value of its variant option
    own_budgets = task_budgets()
    results, configs, versions, shots, n_samples = {}, {}, {}, {}, {}
    for key in keys:
        task = REGISTRY[key].task_name
        metric = "micro_f1" if REGISTRY[key].metric == "f1" else "acc"
        results[task] = {"name": task, "alias": task, f"{metric},none": float(rng.uniform(0.2, 0.9)),
                         f"{metric}_stderr,none": "N/A"}
        metadata: dict[str, Any] = {"version": 1.0, "data_source": data_source}
        if legacy:
            if key == "medqa_mcmle" and mcmle_options != 4:
                metadata["mcmle_options"] = mcmle_options  # what lm-eval's --metadata put there
        else:
            own = own_budgets[task] + thinking_allowance
            effective = own if max_gen_toks is None else max_gen_toks
            metadata.update({
                "eval_units": eval_units, "expected_units": 40,
                "fewshot_source": fewshot_source if n_shot else None,
                "variant": ({REGISTRY[key].variant_option: chosen.get(key, REGISTRY[key].variant_value)}
                            if REGISTRY[key].variant_option else {}),
                "prompt_version": prompt_version,
                "budget": {"task": own_budgets[task], "effective": effective, "cut": effective < own,
                           "source": "task" if max_gen_toks is None else "gen_kwargs"},
                "thinking_allowance": thinking_allowance,
                "provenance": {**PROVENANCE, "scoring_rules_version": scoring_rules_version,
                               "data_files": {f"{REGISTRY[key].data_subdir}/test.jsonl": "ab" * 32}},
            })
        configs[task] = {"task": task, "output_type": "generate_until", "num_fewshot": n_shot, "metadata": metadata}
        versions[task] = 1.0
        shots[task] = n_shot
        n_samples[task] = {"original": 40, "effective": 40}
    data = {
        "results": results, "configs": configs, "versions": versions, "n-shot": shots, "n-samples": n_samples,
        "config": {"model": "hf", "model_args": model_args or {"pretrained": model}, "limit": None,
                   "gen_kwargs": {} if max_gen_toks is None else {"max_gen_toks": max_gen_toks}},
        "git_hash": None, "date": when.timestamp(), "lm_eval_version": "0.4.13", "model_source": "hf",
        "model_name": model, "chat_template": chat_template, "chat_template_sha": None if chat_template is None else "f00",
        **(top_level or {}),
    }
    date_id = when.replace(tzinfo=None).isoformat(timespec="microseconds").replace(":", "-")
    path = out / f"run-{seed}" / model.replace("/", "__") / f"results_{date_id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    return path


def percent(path: Path, key: str) -> float:
    entry = json.loads(path.read_text(encoding="utf-8"))["results"][REGISTRY[key].task_name]
    return 100 * entry.get("micro_f1,none", entry.get("acc,none"))


def headers(table) -> list[str]:
    return [c.display_header for c in table.columns]


def later(days: int) -> datetime:
    return BASE_TIME + timedelta(days=days)


# --- separate columns, never duplicates ------------------------------------------------------------


def test_mcmle_options_and_few_shot_k_are_separate_columns(tmp_path: Path) -> None:
    four = write_results(tmp_path, "org/m", seed=1)
    five = write_results(tmp_path, "org/m", seed=2, keys=["medqa_mcmle"], mcmle_options=5, when=later(1))
    one_shot = write_results(tmp_path, "org/m", seed=3, n_shot=1, when=later(2))
    table = leaderboard_table([tmp_path], published="none")
    assert headers(table) == ["org/m", "org/m (MCMLE 5-opt)", "org/m (1-shot)"]
    assert not [w for w in table.warnings if "duplicate" in w]
    by_header = {c.header: c for c in table.columns}
    assert by_header["org/m"].value("medqa_mcmle") == pytest.approx(percent(four, "medqa_mcmle"))
    assert by_header["org/m (MCMLE 5-opt)"].value("medqa_mcmle") == pytest.approx(percent(five, "medqa_mcmle"))
    assert by_header["org/m (1-shot)"].value("medqa_mcmle") == pytest.approx(percent(one_shot, "medqa_mcmle"))
    # The 4-option column's averages are its own run's, untouched by the newer 5-option run.
    expected_qa = (percent(four, "medqa_usmle") + percent(four, "medqa_mcmle") + percent(four, "pubmedqa")) / 3
    assert by_header["org/m"].averages()["qa"] == pytest.approx(expected_qa)
    assert by_header["org/m (MCMLE 5-opt)"].averages()["all"] is None  # one set of all
    provenance = " ".join(by_header["org/m (MCMLE 5-opt)"].provenance)
    assert "MCMLE 5 options" in provenance


def test_a_second_variant_bearing_set_keeps_its_forms_apart(tmp_path: Path) -> None:
    """Run identity reads the variant record, whatever the option is called: a second set with
    variants (registered here, an option name no code knows) splits columns as MCMLE's does."""
    base = REGISTRY["pubmedqa"]
    second = dataclasses.replace(
        base, key="pubmedqa_forms", display_name="PubMedQA-forms",
        variant_option="context_form", variant_value=1,
        variants=MappingProxyType({2: Variant(name="question only", label="PubMedQA-forms q-only")}),
    )
    with registered(second):
        keys = ["medqa_mcmle", "pubmedqa_forms"]
        plain = write_results(tmp_path, "org/m", seed=1, keys=keys)
        q_only = write_results(tmp_path, "org/m", seed=2, keys=keys, forms={"pubmedqa_forms": 2}, when=later(1))
        both = write_results(tmp_path, "org/m", seed=3, keys=keys, mcmle_options=5, forms={"pubmedqa_forms": 2},
                             when=later(2))
        table = leaderboard_table([tmp_path], published="none")
        expected = {"org/m": plain, "org/m (PubMedQA-forms q-only)": q_only,
                    "org/m (MCMLE 5-opt, PubMedQA-forms q-only)": both}
        assert sorted(headers(table)) == sorted(expected)
        by_header = {c.header: c for c in table.columns}
        for header, path in expected.items():
            assert by_header[header].value("pubmedqa_forms") == pytest.approx(percent(path, "pubmedqa_forms"))
        assert "PubMedQA-forms question only" in " ".join(by_header["org/m (PubMedQA-forms q-only)"].provenance)


def test_the_same_variant_still_merges_as_a_duplicate(tmp_path: Path) -> None:
    old = write_results(tmp_path, "org/m", seed=1, keys=["medqa_mcmle", "hoc"], mcmle_options=5)
    new = write_results(tmp_path, "org/m", seed=2, keys=["medqa_mcmle"], mcmle_options=5, when=later(3))
    # A rerun of other sets (no MCMLE in it) joins the default 4-option column, not the 5-option one.
    write_results(tmp_path, "org/m", seed=3, keys=["pubmedqa"], when=later(4))
    table = leaderboard_table([tmp_path], published="none")
    assert headers(table) == ["org/m", "org/m (MCMLE 5-opt)"]
    five = table.columns[1]
    assert five.value("medqa_mcmle") == pytest.approx(percent(new, "medqa_mcmle"))
    assert five.value("hoc") == pytest.approx(percent(old, "hoc"))
    duplicates = [w for w in table.warnings if "duplicate" in w]
    assert len(duplicates) == 1 and old.name in duplicates[0] and "taiyi_medqa_mcmle" in duplicates[0]


def test_prompt_format_version_and_chat_template_split_columns_with_short_labels(tmp_path: Path) -> None:
    write_results(tmp_path, "org/chat", seed=1, chat_template="{{ messages }}")
    write_results(tmp_path, "org/chat", seed=2, when=later(1))  # no template: plain
    write_results(tmp_path, "org/chat", seed=3, prompt_version=2, chat_template="{{ messages }}", when=later(2))
    write_results(tmp_path, "org/taiyi", seed=4, model_args="pretrained=org/taiyi,prompt_format=eod")
    table = leaderboard_table([tmp_path], published="none")
    assert headers(table) == [
        "org/chat (chat template, prompt v1)",
        "org/chat (chat template, prompt v2)",
        "org/chat (plain, prompt v1)",
        "org/taiyi (eod)",  # a non-default format is always named, even alone
    ]
    assert not [w for w in table.warnings if "duplicate" in w]
    taiyi = table.columns[3]
    assert "prompt format eod" in " ".join(taiyi.provenance)


def test_a_budget_cut_run_is_its_own_column_marked_and_kept_out_of_averages(tmp_path: Path) -> None:
    full = write_results(tmp_path, "org/m", seed=1)
    cut = write_results(tmp_path, "org/m", seed=2, max_gen_toks=64, when=later(1))
    own = task_budgets()
    cut_sets = {key for key in PAPER_ORDER if own[REGISTRY[key].task_name] > 64}
    assert cut_sets and set(PAPER_ORDER) - cut_sets  # the fixture cuts some sets and not others

    table = leaderboard_table([tmp_path], published="none")
    assert headers(table) == ["org/m", "org/m (budget cut)"]
    assert not [w for w in table.warnings if "duplicate" in w]
    full_column, cut_column = table.columns
    assert full_column.averages()["all"] == pytest.approx(sum(percent(full, k) for k in PAPER_ORDER) / len(PAPER_ORDER))
    for key in PAPER_ORDER:
        assert cut_column.value(key) == pytest.approx(percent(cut, key))
        assert (cut_column.cells[key].flag == "budget cut") == (key in cut_sets), key
    averages = cut_column.averages()
    for group in ("ner", "re", "tc", "qa"):
        keys = [k for k in PAPER_ORDER if REGISTRY[k].task_type == group]
        if set(keys) & cut_sets:
            assert averages[group] is None, group
        else:
            assert averages[group] == pytest.approx(sum(percent(cut, k) for k in keys) / len(keys)), group
    assert averages["all"] is None
    markdown = render_markdown(table)
    some_cut = sorted(cut_sets, key=PAPER_ORDER.index)[0]
    assert f"{fmt_pct(percent(cut, some_cut))} (budget cut)" in markdown
    assert "--include-budget-cut" in markdown  # the note says how to count them
    provenance = " ".join(cut_column.provenance)
    assert "BUDGET CUT" in provenance and f"{REGISTRY[some_cut].display_name} 64 of {own[REGISTRY[some_cut].task_name]}" in provenance

    counted = leaderboard_table([tmp_path], published="none", include_budget_cut=True).columns[1]
    assert counted.cells[some_cut].flag == "budget cut"  # still marked
    assert counted.averages()["all"] == pytest.approx(sum(percent(cut, k) for k in PAPER_ORDER) / len(PAPER_ORDER))


def test_cli_include_budget_cut_flag(tmp_path: Path) -> None:
    from taiyi_bench.harness.apps.cli import main

    write_results(tmp_path / "runs", "org/m", max_gen_toks=64)
    rows = {}
    for flag in ([], ["--include-budget-cut"]):
        out = tmp_path / ("counted" if flag else "plain")
        assert main(["leaderboard", str(tmp_path / "runs"), "--out", str(out), "--formats", "csv", "--published", "none", *flag]) == 0
        table = list(csv.reader(io.StringIO((out / "leaderboard.csv").read_text(encoding="utf-8"))))
        rows[bool(flag)] = next(r for r in table if r and r[1].startswith(f"Average ({len(PAPER_ORDER)}"))
    assert rows[False][4] == "—"  # column 3: the rule
    assert re.fullmatch(r"\d+\.\d", rows[True][4])


def test_few_shot_demonstrations_from_the_samples_are_never_shown_as_official(tmp_path: Path) -> None:
    write_results(tmp_path, "org/m", seed=1, n_shot=1, fewshot_source="data")
    samples_demos = write_results(tmp_path, "org/m", seed=2, n_shot=1, fewshot_source="samples", when=later(1))
    table = leaderboard_table([tmp_path], published="none")
    assert headers(table) == ["org/m (1-shot)"]
    assert any(samples_demos.name in w and "demos from samples" in w and "--include-partial" in w for w in table.warnings)
    assert "BUNDLED SAMPLES" not in " ".join(table.columns[0].provenance)

    table = leaderboard_table([tmp_path], published="none", include_partial=True)
    assert headers(table) == ["org/m (1-shot)", "org/m (1-shot) [demos from samples]"]
    marked = table.columns[1]
    assert marked.partial == "demos from samples"
    assert marked.value("hoc") == pytest.approx(percent(samples_demos, "hoc"))
    text = " ".join(marked.provenance)
    assert "demonstrations from the BUNDLED SAMPLES, not official data" in text
    assert "train split" not in text
    assert "[demos from samples] took their few-shot demonstrations" in " ".join(table.notes)


# --- comparison with the published numbers ----------------------------------------------------------


def test_compare_puts_only_the_published_variant_next_to_the_paper(tmp_path: Path) -> None:
    zero = write_results(tmp_path, "org/m", seed=1)
    write_results(tmp_path, "org/m", seed=2, keys=["medqa_mcmle"], mcmle_options=5, when=later(1))
    write_results(tmp_path, "org/m", seed=3, n_shot=1, when=later(2))
    write_results(tmp_path, "org/m", seed=4, max_gen_toks=64, when=later(3))
    table = compare_table(tmp_path, against="A:taiyi1")
    assert [c.header for c in table.columns] == ["org/m", "Δ vs Taiyi", "Taiyi"]
    delta = table.columns[1]
    from taiyi_bench.harness.apps.leaderboard import load_published

    taiyi = load_published()["A"].values("taiyi1")
    assert delta.value("medqa_mcmle") == pytest.approx(percent(zero, "medqa_mcmle") - taiyi["medqa_mcmle"])
    warnings = "\n".join(table.warnings)
    for header, reason in (("org/m (MCMLE 5-opt)", "mcmle_options=4"), ("org/m (1-shot)", "zero-shot"),
                           ("org/m (budget cut)", "budget cut")):
        line = next(w for w in table.warnings if w.startswith(f"{header}:"))
        assert "not compared" in line and reason in line, line
    assert "duplicate" not in warnings


def test_compare_uses_a_models_own_format_over_plain(tmp_path: Path) -> None:
    eod = write_results(tmp_path, "org/taiyi", seed=1, model_args={"pretrained": "org/taiyi", "prompt_format": "eod"})
    write_results(tmp_path, "org/taiyi", seed=2, when=later(1))  # plain
    table = compare_table(tmp_path, against="A:taiyi1")
    assert [c.header for c in table.columns] == ["org/taiyi (eod)", "Δ vs Taiyi", "Taiyi"]
    assert table.columns[0].value("hoc") == pytest.approx(percent(eod, "hoc"))
    assert any(w.startswith("org/taiyi (plain):") and "own format" in w for w in table.warnings)


def test_cli_compare_with_no_matching_variant_says_so(tmp_path: Path, capsys) -> None:
    from taiyi_bench.harness.apps.cli import main

    write_results(tmp_path / "runs", "org/m", n_shot=3)
    code = main(["leaderboard", "--compare", str(tmp_path / "runs"), "--out", str(tmp_path / "out"), "--formats", "md"])
    assert code == 0
    err = capsys.readouterr().err
    assert "org/m (3-shot): not compared" in err and "no run of the published variant" in err
    markdown = (tmp_path / "out" / "compare_runs.md").read_text(encoding="utf-8")
    assert "Δ vs" not in markdown.split("## Provenance")[0]


# --- provenance, old files, skipped sets -----------------------------------------------------------


def test_provenance_names_the_scorer_and_data_files_while_labels_stay_short(tmp_path: Path) -> None:
    write_results(
        tmp_path, "org/m", n_shot=1, mcmle_options=5, max_gen_toks=64, thinking_allowance=0,
        model_args={"pretrained": "org/m", "prompt_format": "eod"},
    )
    table = leaderboard_table([tmp_path], published="none")
    (column,) = table.columns
    assert column.header == "org/m (1-shot, MCMLE 5-opt, eod, budget cut)"
    text = " ".join(column.provenance)
    for fragment in ("taiyi-bench 0.1.0 (commit 0123456789ab)", "scoring rules v1", "prompt format eod",
                     "1-shot, demonstrations from the train split of the data", "MCMLE 5 options",
                     "MedQA-MCMLE/test.jsonl abababababab", "BUDGET CUT"):
        assert fragment in text, fragment
    rows = list(csv.reader(io.StringIO(render_csv(table))))
    provenance_row = next(r for r in rows if r and r[0] == column.display_header and len(r) == 2)
    assert "scoring rules v1" in provenance_row[1]


def test_old_files_without_the_new_keys_load_as_the_defaults(tmp_path: Path) -> None:
    plain = write_results(tmp_path, "org/old", seed=1, legacy=True)
    chat = write_results(tmp_path, "org/old-chat", seed=2, legacy=True, chat_template="{{ messages }}", n_shot=2)
    five = write_results(tmp_path, "org/old", seed=3, legacy=True, keys=["medqa_mcmle"], mcmle_options=5, when=later(1))
    eod = write_results(tmp_path, "org/old-eod", seed=4, legacy=True, model_args="pretrained=org/old-eod,prompt_format=eod")
    collection = collect_runs([tmp_path])
    runs = {run.path: run for run in collection.runs}
    assert runs[plain].variant.prompt_formats == ("plain",) and runs[plain].variant.set_forms == ()
    assert runs[plain].variant.budget == ("unknown",)
    assert runs[chat].variant.prompt_formats == ("chat_template",) and runs[chat].tasks["hoc"].fewshot_source == "data"
    assert runs[five].variant.set_forms == (("medqa_mcmle", 5),)
    assert runs[eod].variant.prompt_formats == ("eod",)

    table = leaderboard_table([tmp_path], published="none")
    assert headers(table) == ["org/old", "org/old (MCMLE 5-opt)", "org/old-chat (2-shot)", "org/old-eod (eod)"]
    for column in table.columns:
        assert not column.has_flags  # budget unknown: nothing marked
        assert "generation budget not recorded" in " ".join(column.provenance)
        assert "taiyi-bench version and scoring rules not recorded" in " ".join(column.provenance)
    assert table.columns[0].averages()["all"] == pytest.approx(sum(percent(plain, k) for k in PAPER_ORDER) / len(PAPER_ORDER))


def test_an_unrecorded_budget_is_not_merged_with_a_recorded_one(tmp_path: Path) -> None:
    write_results(tmp_path, "org/m", seed=1, legacy=True)
    write_results(tmp_path, "org/m", seed=2, when=later(1))
    # An older file run with a global --gen_kwargs max_gen_toks: named, but no cell is marked.
    write_results(tmp_path, "org/m", seed=3, legacy=True, max_gen_toks=512, when=later(2))
    table = leaderboard_table([tmp_path], published="none")
    assert headers(table) == ["org/m", "org/m (budget not recorded)", "org/m (max_gen_toks 512)"]
    assert not [w for w in table.warnings if "duplicate" in w]
    overridden = table.columns[2]
    assert not overridden.has_flags and overridden.averages()["all"] is not None
    assert "gen_kwargs max_gen_toks=512 applied to every set" in " ".join(overridden.provenance)


def test_skipped_sets_show_as_missing_never_zero(tmp_path: Path) -> None:
    kept = [k for k in PAPER_ORDER if k != "chemdner"]
    path = write_results(
        tmp_path, "org/m", keys=kept,
        top_level={SKIPPED_SETS_KEY: {"taiyi_chemdner": "CHEMDNER/test.tsv not found in /data"}},
    )
    (run,) = collect_runs([tmp_path]).runs
    assert set(run.skipped) == {"chemdner"}
    table = leaderboard_table([tmp_path], published="none")
    (column,) = table.columns
    cell = column.cells["chemdner"]
    assert cell.value is None and cell.flag == "skipped"
    averages = column.averages()
    assert averages["ner"] is None and averages["all"] is None
    assert averages["qa"] == pytest.approx(sum(percent(path, k) for k in ("medqa_usmle", "medqa_mcmle", "pubmedqa")) / 3)
    assert not [w for w in table.warnings if "no usable result" in w]  # a recorded skip is not a surprise
    assert "CHEMDNER (CHEMDNER/test.tsv not found in /data)" in " ".join(column.provenance)
    markdown = render_markdown(table)
    chemdner_row = next(line for line in markdown.splitlines() if line.startswith("| NER | CHEMDNER"))
    assert "— (skipped)" in chemdner_row and "0.0" not in chemdner_row
    rows = list(csv.reader(io.StringIO(render_csv(table))))
    chem = next(r for r in rows if len(r) > 2 and r[2] == "taiyi_chemdner")
    assert chem[3:6] == ["mention_set", "—", "skipped"]


def test_bad_skipped_list_warns_and_names_the_file(tmp_path: Path) -> None:
    path = write_results(tmp_path, "org/m", keys=["hoc"], top_level={SKIPPED_SETS_KEY: ["taiyi_nope", "taiyi_hoc"]})
    table = leaderboard_table([tmp_path], published="none")
    warnings = "\n".join(table.warnings)
    assert f"{path.name}: {SKIPPED_SETS_KEY} names 'taiyi_nope'" in warnings
    assert f"{path.name}: taiyi_hoc is listed as skipped but has a result" in warnings
    assert table.columns[0].value("hoc") is not None and not math.isnan(table.columns[0].value("hoc"))


def test_a_data_file_of_another_size_warns_but_a_samples_run_does_not(tmp_path: Path) -> None:
    odd = write_results(tmp_path / "data", "org/m", keys=["hoc"], eval_units=39)
    write_results(tmp_path / "samples", "org/s", keys=["hoc"], eval_units=5, data_source="samples")
    table = leaderboard_table([tmp_path], published="none", include_partial=True)
    sized = [w for w in table.warnings if "official split has 40" in w]
    assert len(sized) == 1 and f"{odd.name}: taiyi_hoc read 39 units" in sized[0]


def test_runs_scored_under_other_rules_are_other_columns(tmp_path: Path) -> None:
    """A parser or scorer fix (SCORING_RULES_VERSION) changes numbers: the same model's runs scored
    before and after it never merge, and their labels say which rules each used."""
    write_results(tmp_path, "org/m", seed=1, scoring_rules_version=1)
    write_results(tmp_path, "org/m", seed=2, scoring_rules_version=2, when=later(1))
    table = leaderboard_table([tmp_path], published="none")
    assert headers(table) == ["org/m (scoring rules v1)", "org/m (scoring rules v2)"]
    assert not [w for w in table.warnings if "duplicate" in w]
