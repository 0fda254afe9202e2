"""The contamination report: planted quotes and paraphrases found exactly, a clean mixture clean,
English and Chinese, the command, and the report a fine-tuning run writes and points to."""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path

import pytest

from taiyi_bench.finetune.data import read_conversations
from taiyi_bench.harness.contamination import (
    NGRAM_TOKENS,
    SHORTEST_JUDGED,
    adapter_report,
    contamination_report,
    contamination_summary,
    evaluation_splits,
    tokens,
    unit_texts,
)
from taiyi_bench.harness.loading import load_split

from cli_runs import one_error, run_taiyi

SAMPLES = Path(__file__).resolve().parents[1] / "finetune" / "samples" / "conversations.jsonl"
FILLER = {"en": "Please answer the patient's question about the medication schedule.", "zh": "请根据患者描述给出用药建议。"}


def _write(path: Path, turns: list[tuple[str, str]]) -> Path:
    lines = [
        json.dumps({"conversation_id": f"c{i}", "dataset": "web", "category": "qa", "language": "x",
                    "conversation": [{"human": human, "assistant": answer}]}, ensure_ascii=False)
        for i, (human, answer) in enumerate(turns)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _planted(split, n: int):
    """Ten units long enough for a 14-token paraphrase, each the only unit sharing its first
    tokens, and the mixture: the first five quoted verbatim, the other five paraphrased (their
    first n+1 tokens, then other words), with one run of n-1 tokens of an eleventh unit (too
    short to count) and filler conversations."""
    starts = Counter(tuple(tokens(example.text)[: n - 1]) for example in split.examples)
    chosen = [e for e in split.examples if len(tokens(e.text)) > 2 * n and starts[tuple(tokens(e.text)[: n - 1])] == 1][:11]
    language = split.spec.language
    turns = [(FILLER[language], "ok")]
    turns += [(f"{FILLER[language]}\n{e.text}", "ok") for e in chosen[:5]]
    turns += [(" ".join(tokens(e.text)[: n + 1]) + " " + FILLER[language], "ok") for e in chosen[5:10]]
    turns.append((" ".join(tokens(chosen[10].text)[: n - 1]) + " " + FILLER[language], "ok"))
    return chosen, turns


@pytest.mark.parametrize(("key", "split_name"), [("ncbi_disease", "test"), ("cmeee", "dev")])
def test_planted_units_are_found_exactly(shared_data_dir, tmp_path, key, split_name):
    split = load_split(key, split_name, shared_data_dir)
    n = NGRAM_TOKENS[split.spec.language]
    chosen, turns = _planted(split, n)
    path = _write(tmp_path / "mixture.jsonl", turns)
    report = contamination_report(read_conversations(path), [split])
    entry = report["sets"][key]
    assert (entry["units"], entry["exact"], entry["ngram"]) == (len(split), 5, 5)
    assert entry["share"] == pytest.approx(10 / len(split))
    assert sorted(entry["touched_units"]) == sorted(e.id for e in chosen[:10])
    worst = {touch["unit"]: touch for touch in entry["worst"]}
    for line, example in enumerate(chosen[:10], start=2):  # line 1 is the filler conversation
        touch = worst[example.id]
        assert touch["kind"] == ("exact" if line <= 6 else "ngram")
        assert touch["source"] == {"origin": f"{path}:{line}", "dataset": "web", "conversation": f"c{line - 1}"}
        assert (touch["overlap"] == 1.0) == (line <= 6)
    assert [t["kind"] for t in entry["worst"]] == ["exact"] * 5 + ["ngram"] * 5  # the worst first
    assert contamination_summary(report) == {key: entry["share"]}


def test_a_clean_mixture_touches_nothing(shared_data_dir):
    splits = [load_split("ncbi_disease", "test", shared_data_dir), load_split("cmeee", "dev", shared_data_dir)]
    report = contamination_report(read_conversations(SAMPLES), splits)
    assert report["mixture"]["conversations"] > 10
    assert {key: (e["exact"], e["ngram"], e["touched_units"]) for key, e in report["sets"].items()} == {
        "ncbi_disease": (0, 0, []), "cmeee": (0, 0, []),
    }


def test_a_short_unit_is_compared_whole_and_a_very_short_one_not_judged(shared_data_dir, tmp_path):
    split = load_split("kuake_qic", "dev", shared_data_dir)
    short = next(e for e in split.examples if SHORTEST_JUDGED + 2 <= len(tokens(e.text)) < NGRAM_TOKENS["zh"])
    tiny = next(e for e in split.examples if len(tokens(e.text)) < SHORTEST_JUDGED)
    path = _write(tmp_path / "m.jsonl", [(f"文本：{short.text}", "病情诊断"), (f"文本：{tiny.text}", "其他"),
                                         (" ".join(tokens(short.text)[:-1]), "其他")])
    entry = contamination_report(read_conversations(path), [split])["sets"]["kuake_qic"]
    same_text = [e.id for e in split.examples if tokens(e.text) == tokens(short.text)]
    assert entry["exact"] == len(same_text) and set(entry["touched_units"]) == set(same_text)
    assert tiny.id not in entry["touched_units"]
    assert entry["too_short"] == sum(len(tokens(e.text)) < SHORTEST_JUDGED for e in split.examples) > 0


def test_qa_units_are_exact_only_with_every_option(tmp_path):
    split = load_split("medqa_usmle", "test")  # the bundled samples
    example = next(e for e in split.examples if len(tokens(e.question)) >= NGRAM_TOKENS["en"])
    question = unit_texts(example)[0]
    path = _write(tmp_path / "m.jsonl", [("\n".join(unit_texts(example)), "A"), (question, "B")])
    entry = contamination_report(read_conversations(path), [split])["sets"]["medqa_usmle"]
    assert (entry["exact"], entry["touched_units"]) == (1, [example.id])
    assert entry["worst"][0]["source"]["origin"].endswith(":1")  # the conversation with every option
    path = _write(tmp_path / "m.jsonl", [(question, "B")])
    entry = contamination_report(read_conversations(path), [split])["sets"]["medqa_usmle"]
    assert (entry["exact"], entry["ngram"]) == (0, 1)


def test_the_command_prints_the_table_writes_json_and_names_a_missing_file(shared_data_dir, tmp_path, capsys):
    split = load_split("ncbi_disease", "test", shared_data_dir)
    chosen, turns = _planted(split, NGRAM_TOKENS["en"])
    path = _write(tmp_path / "mixture.jsonl", turns)
    code, out, err = run_taiyi(capsys, "contamination", "--files", path, "--sets", "taiyi_ncbi_disease",
                               "--data-dir", shared_data_dir, "--json", tmp_path / "r.json")
    assert code == 0, err
    row = next(line for line in out.splitlines() if "NCBI-disease" in line and "test" in line)
    assert [cell.strip() for cell in row.split("│")][3:7] == [str(len(split)), "5", "5", f"{10 / len(split):.1%}"]
    assert f"{path}:2" in out
    written = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert written["sets"]["ncbi_disease"]["touched_units"] == [t["unit"] for t in written["sets"]["ncbi_disease"]["worst"]]
    code, _, err = run_taiyi(capsys, "contamination", "--files", tmp_path / "absent.jsonl")
    assert code == 2 and str(tmp_path / "absent.jsonl") in one_error(err, "taiyi contamination: error:")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"conversation_id": 1}\n', encoding="utf-8")
    code, _, err = run_taiyi(capsys, "contamination", "--files", bad)
    assert code == 2 and f"{bad}" in one_error(err, "taiyi contamination: error:")


def test_finetune_writes_the_report_and_the_adapter_points_to_it(tmp_path):
    from taiyi_bench.finetune.config import load_recipe
    from taiyi_bench.finetune.train import train
    from taiyi_bench.harness.integrity import STAGE_MARKER
    from taiyi_bench.harness.random_models import build_tiny_causal_lm

    hoc = load_split("hoc", "test")  # the bundled samples, as the run reads them
    quoted = next(e for e in hoc.examples if len(tokens(e.text)) >= NGRAM_TOKENS["en"])
    files = _write(tmp_path / "web.jsonl", [(f"Read this: {quoted.text}", "A hallmark of cancer.")])
    config = load_recipe("cpu_smollm2_tiny", [
        f"model.base={build_tiny_causal_lm(tmp_path / 'lm', seed=0)}", "data.tasks.names=[kuake_qic]",
        f"data.files=[{{path: {files}, category: other}}]", "data.cap=2", "format.max_length=128",
        "training.max_steps=1", "training.save_steps=0", "training.progress=false", "training.num_threads=1",
    ])
    out = tmp_path / "run"
    train(config, stages=(1,), output_dir=out)
    report = json.loads((out / "contamination.json").read_text(encoding="utf-8"))
    assert report["sets"]["hoc"]["touched_units"] == [quoted.id] and report["sets"]["hoc"]["exact"] == 1
    assert report["sets"]["hoc"]["worst"][0]["source"]["origin"] == f"{files}:1"
    assert set(report["sets"]) == {"bc5cdr_chem", "bc5cdr_dise", "chemdner", "ncbi_disease", "cmeee", "bc5cdr_re",
                                   "cmeie", "litcovid", "hoc", "kuake_qic", "pubmedqa", "medqa_usmle", "medqa_mcmle"}
    adapter = out / "stage1" / "adapter"
    assert json.loads((adapter / STAGE_MARKER).read_text(encoding="utf-8"))["contamination"] == "../../contamination.json"
    assert adapter_report(adapter) == report


def test_checking_against_the_bundled_samples_is_said_once(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="taiyi-bench"):
        splits, missing = evaluation_splits(["ncbi_disease", "cmeee", "hoc"], data_dir=None)
    assert [split.source for split in splits] == ["samples"] * 3 and not missing
    said = [record.getMessage() for record in caplog.records if "BUNDLED SAMPLES" in record.getMessage()]
    assert len(said) == 1 and "not their real evaluation splits" in said[0]
