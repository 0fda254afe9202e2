"""Discriminative baselines: words/tags, entity markers, results layout, and train -> predict ->
score on the bundled samples of every registered set with a tiny random BERT and with MiniLM (CPU)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from provenance_keys import missing_keys

from taiyi_bench.baselines import runner
from taiyi_bench.baselines.families import RelationBaseline, baseline_class, marked_text, sentence_spans
from taiyi_bench.baselines.results import lm_eval_doc, render_prediction
from taiyi_bench.baselines.words import (
    BEGIN,
    INSIDE,
    OUTSIDE,
    example_words,
    segment,
    spans_to_tags,
    tags_to_word_ranges,
    word_ranges_to_spans,
)
from taiyi_bench.harness import scoring
from taiyi_bench.harness.loading import load_split
from taiyi_bench.harness.parsers import parse_output
from taiyi_bench.harness.records import Entity, Example, Prediction
from taiyi_bench.harness.registry import PAPER_ORDER, get_spec

ALL_TASKS = list(PAPER_ORDER)


@pytest.fixture(autouse=True)
def _quiet_transformers():
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    logging.getLogger("taiyi-bench").setLevel(logging.ERROR)


# ------------------------------------------------------------------------------ words and tags


def test_segment_splits_cjk_per_character_and_punctuation_alone():
    text = "H2-receptor 拮抗剂abc"
    words = [text[s:e] for s, e in segment(text)]
    assert words == ["H2", "-", "receptor", "拮", "抗", "剂", "abc"]


def test_iob_tokens_are_the_words():
    example = load_split("bc5cdr_chem", "train").examples[0]
    words = example_words(example)
    assert [example.text[s:e] for s, e in words] == example.meta["tokens"]


def test_tags_roundtrip_and_same_type_overlap_keeps_longer():
    text = "acute renal failure and renal"
    words = segment(text)
    tags = spans_to_tags(words, [(0, 19), (6, 11), (24, 29)])  # "renal" nested in the first: dropped
    assert tags == [BEGIN, INSIDE, INSIDE, OUTSIDE, BEGIN]
    spans = word_ranges_to_spans(words, tags_to_word_ranges(tags))
    assert [text[s:e] for s, e in spans] == ["acute renal failure", "renal"]
    # A stray I after O starts a mention (the CoNLL/seqeval reading).
    assert tags_to_word_ranges([OUTSIDE, INSIDE, INSIDE, BEGIN]) == [(1, 3), (3, 4)]


def test_marked_text_keeps_title_and_sentences_with_the_pair():
    text = "Cocaine and MI. Nothing here. Cocaine caused MI in rats. Unrelated end."
    head = [(0, 7), (30, 37)]
    tail = [(12, 14), (45, 47)]
    marked = marked_text(text, head, tail)
    assert marked == "$ Cocaine $ and # MI #. $ Cocaine $ caused # MI # in rats."
    assert len(sentence_spans("一句。二句！三")) == 3


# ------------------------------------------------------------------------------ results pieces


def test_samples_doc_is_the_lm_eval_tasks_doc():
    from taiyi_bench.harness.lmeval.tasks import _to_docs

    examples = load_split("cmeie", "dev").examples[:3]
    assert [lm_eval_doc(ex, "samples") for ex in examples] == _to_docs(examples, "samples")


@pytest.mark.parametrize("task", ["bc5cdr_chem", "cmeee", "bc5cdr_re", "cmeie", "hoc", "kuake_qic", "pubmedqa", "medqa_usmle"])
def test_rendered_prediction_parses_back_to_the_same_score(task):
    """The `resps` text of a BERT sample is what an LLM would have had to write to score the same."""
    spec = get_spec(task)
    example = load_split(task).examples[0]
    if spec.task_type == "ner":
        prediction = Prediction(entities={(e.type, e.mention) for e in example.entities[:3]})
    elif spec.task_type == "re":
        relations = set()
        for r in example.relations[:2]:
            head = example.concept_mentions.get(r.head, [r.head])[0]
            tail = example.concept_mentions.get(r.tail, [r.tail])[0]
            relations.add((head, r.relation, tail))
        prediction = Prediction(relations=relations)
    elif spec.task_type == "tc":
        prediction = Prediction(labels=set(example.labels[:1]) or {spec.labels[0]})
    else:
        prediction = Prediction(choice=example.answer)
    text = render_prediction(spec, example, prediction)
    reparsed = parse_output(spec, text, options=example.options or None)
    direct = scoring.unit_metric_values(spec, scoring.score_unit(spec, example, prediction))
    via_text = scoring.unit_metric_values(spec, scoring.score_unit(spec, example, reparsed))
    assert direct == via_text


# ------------------------------------------------------------------------------ end to end


def _check_results(path: Path, task: str, metrics: dict[str, float]) -> dict:
    spec = get_spec(task)
    data = json.loads(path.read_text(encoding="utf-8"))
    name = spec.task_name
    entry = data["results"][name]
    headline = scoring.headline_metric_name(spec)
    for metric in scoring.metric_names(spec):
        assert f"{metric},none" in entry and f"{metric}_stderr,none" in entry
    assert entry[f"{headline},none"] == pytest.approx(metrics[headline])
    assert data["configs"][name]["metadata"]["data_source"] == "samples"
    assert missing_keys(data["configs"][name]["metadata"]) == []
    assert data["n-samples"][name]["effective"] == entry["sample_len"]
    assert data["config"]["model"] == "taiyi-bert" and "limit" in data["config"]
    assert isinstance(data["date"], float) and data["model_name"]
    date_id = path.stem.removeprefix("results_")
    samples = path.with_name(f"samples_{name}_{date_id}.jsonl")
    lines = [json.loads(line) for line in samples.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == entry["sample_len"]
    first = lines[0]
    assert {"doc_id", "doc", "target", "arguments", "resps", "filtered_resps", "filter", "metrics", "doc_hash"} <= set(first)
    assert first["doc"]["id"] and Example.from_dict(json.loads(first["doc"]["example"])).id == first["doc"]["id"]
    for metric in scoring.metric_names(spec):
        assert metric in first
    if spec.task_type != "qa":
        assert len(first["micro_f1"]) == 3  # [tp, fp, fn]
    # The leaderboard reads BERT runs like lm-eval's.
    from taiyi_bench.harness.apps.leaderboard.parse import collect_runs

    collection = collect_runs([path])
    assert collection.runs, collection.warnings
    result = collection.runs[0].tasks[spec.key]
    assert result.value == pytest.approx(metrics[headline] * 100)
    assert result.data_source == "samples"
    return data


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> Path:
    from taiyi_bench.harness.random_models import build_tiny_bert

    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert") / "model")


# A random 2-layer model: a high learning rate makes the taggers settle on "O" within the few
# steps, so the RE pipelines do not classify thousands of noise pairs.
_TINY = {"max_steps": 6, "batch_size": 8, "learning_rate": 1e-3, "max_length": 128, "max_arguments": 8}


@pytest.mark.parametrize("task", ALL_TASKS)
def test_tiny_bert_trains_predicts_and_scores(task, tiny_bert, tmp_path):
    result = runner.train(
        task, encoder=str(tiny_bert), output_dir=tmp_path / "ckpt", hyperparameters=_TINY, results_dir=tmp_path / "results",
    )
    assert result.train_stats and all(stats["steps"] == _TINY["max_steps"] for stats in result.train_stats.values())
    data = _check_results(result.results_path, task, result.metrics)
    assert data["taiyi_baseline"]["family"] == baseline_class(get_spec(task)).__name__
    if get_spec(task).task_type == "ner":
        entry = data["results"][get_spec(task).task_name]
        assert "seqeval_f1,none" in entry


def test_predict_reloads_a_checkpoint_and_reproduces_the_scores(tiny_bert, tmp_path):
    trained = runner.train(
        "cmeee", encoder=str(tiny_bert), output_dir=tmp_path / "ckpt", hyperparameters=_TINY, results_dir=tmp_path / "a",
    )
    again = runner.predict(tmp_path / "ckpt", results_dir=tmp_path / "b", limit=10)
    full = {k: v for k, v in trained.metrics.items()}
    assert again.metrics["n_units"] == 10
    assert full["n_units"] == 25
    rerun = runner.predict(tmp_path / "ckpt", results_dir=tmp_path / "c")
    assert rerun.metrics == pytest.approx(full)


def test_same_seed_same_result(tiny_bert, tmp_path):
    runs = [
        runner.train("hoc", encoder=str(tiny_bert), output_dir=tmp_path / f"c{i}", hyperparameters=_TINY, results_dir=tmp_path / f"r{i}")
        for i in range(2)
    ]
    predictions = [
        [json.loads(line)["prediction"] for line in next(r.results_path.parent.glob("samples_*.jsonl")).read_text().splitlines()]
        for r in runs
    ]
    assert predictions[0] == predictions[1]
    assert runs[0].metrics == runs[1].metrics


def test_seqeval_per_unit_counts_sum_to_seqeval_f1(tiny_bert, tmp_path):
    result = runner.train(
        "bc5cdr_dise", encoder=str(tiny_bert), output_dir=tmp_path / "ckpt",
        hyperparameters={**_TINY, "learning_rate": 5e-3, "max_steps": 12}, results_dir=tmp_path / "r",
    )
    path = result.results_path
    samples = next(path.parent.glob("samples_*.jsonl"))
    counts = [json.loads(line)["seqeval_f1"] for line in samples.read_text().splitlines()]
    assert scoring.micro_f1(counts) == pytest.approx(result.metrics["seqeval_f1"])


@pytest.mark.parametrize("task", ["bc5cdr_re", "cmeie"])
def test_relation_pairs_on_gold_entities(task, tiny_bert, tmp_path):
    """Step 2 of the RE pipeline alone: every candidate pair of the gold arguments is classified
    and the run is labelled as the gold-entity setting."""
    result = runner.train(
        task, encoder=str(tiny_bert), output_dir=tmp_path / "ckpt", hyperparameters=_TINY,
        results_dir=tmp_path / "r", gold_entities=True,
    )
    assert result.metrics["candidate_pairs"] > 0
    assert result.metrics["entity_span_f1"] == pytest.approx(1.0)
    data = json.loads(result.results_path.read_text())
    assert data["model_name"].endswith("[gold entities]")
    assert data["configs"][get_spec(task).task_name]["metadata"]["re_entities"] == "gold"


def test_long_units_are_cut_into_overlapping_windows(tiny_bert):
    from taiyi_bench.baselines.families import _entity_spans
    from taiyi_bench.baselines.heads import Tagger, TagUnit
    from taiyi_bench.baselines.settings import head_config

    config = head_config("bc5cdr_re", "tagger", {"max_length": 24, "window_stride": 4})
    tagger = Tagger.create(str(tiny_bert), ["Chemical", "Disease"], config)
    example = load_split("bc5cdr_re", "test").examples[0]
    unit = TagUnit(example.text, example_words(example), _entity_spans(example, ["Chemical", "Disease"]))
    features = tagger.features([unit], with_labels=True)
    windows = [f["window"] for f in features]
    assert len(windows) > 3 and windows[0][0] == 0 and windows[-1][1] == len(unit.words)
    for (_, end), (start, _) in zip(windows, windows[1:], strict=False):
        assert start < end  # consecutive windows overlap
    assert all(len(f["input_ids"]) <= 24 for f in features)
    # Every word is labelled in every window that holds it, once (its first sub-word).
    for feature in features:
        labelled = [w for w, lab in zip(feature["word_ids"], feature["token_labels"], strict=True) if lab[0] != -100]
        assert labelled == sorted(set(w for w in feature["word_ids"] if w is not None))
    tags = tagger.predict_tags([TagUnit(example.text, unit.words)])[0]
    assert {len(v) for v in tags.values()} == {len(unit.words)}


def test_relation_training_pairs_follow_the_schema(tiny_bert):
    from taiyi_bench.baselines.settings import head_config

    spec = get_spec("cmeie")
    configs = {h: head_config("cmeie", h) for h in ("tagger", "pairs")}
    baseline = RelationBaseline.create(spec, str(tiny_bert), configs, [])
    example = load_split("cmeie", "train").examples[0]
    mentions = baseline.schema.gold_mentions(example)
    assert {m.key for m in mentions} >= {r.head for r in example.relations}
    from taiyi_bench.baselines.families import _arguments

    arguments = _arguments(mentions, example.text)
    for head, tail, _marked in baseline._candidates(example.text, arguments):
        assert baseline.schema.labels_for(head, tail)
    gold = baseline.schema.gold_pairs(example)
    for (head, tail), predicate in gold.items():
        assert predicate in baseline.schema.labels_for(arguments[head], arguments[tail])


def test_missing_encoder_and_missing_data_stop_before_training(tmp_path, monkeypatch):
    from taiyi_bench.baselines.preflight import PreflightError
    from taiyi_bench.harness.errors import DataNotFoundError

    with pytest.raises(PreflightError, match="does not exist"):
        runner.train("ncbi_disease", encoder=str(tmp_path / "no-such-encoder"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(PreflightError, match="offline"):
        runner.train("ncbi_disease", encoder="nobody/no-such-bert-model")
    with pytest.raises(DataNotFoundError):
        runner.train("ncbi_disease", encoder="minilm", data_dir=tmp_path)


def test_cli_train_reports_a_clear_error(capsys, tmp_path):
    from taiyi_bench.harness.apps.cli import main

    status = main(["baseline", "train", "--task", "ncbi_disease", "--encoder", str(tmp_path / "missing")])
    assert status == 2
    assert "does not exist" in capsys.readouterr().err


# MiniLM: a real pretrained 6-layer encoder (English WordPiece; Chinese characters it does not
# know become [UNK], which is fine for a smoke run).
_MINILM = {"max_steps": 2, "batch_size": 4, "learning_rate": 1e-4, "max_length": 64, "max_arguments": 6}


@pytest.mark.parametrize("task", ALL_TASKS)
def test_minilm_trains_predicts_and_scores(task, tmp_path):
    result = runner.train(
        task, encoder="minilm", output_dir=tmp_path / "ckpt", hyperparameters=_MINILM, results_dir=tmp_path / "results",
        model_name="minilm-smoke",
    )
    _check_results(result.results_path, task, result.metrics)


def test_cli_train_then_predict(tmp_path, capsys):
    from taiyi_bench.harness.apps.cli import main

    ckpt = tmp_path / "ckpt"
    status = main([
        "baseline", "train", "--task", "kuake_qic", "--encoder", "minilm", "--max-steps", "2", "--batch-size", "4",
        "--output-dir", str(ckpt), "--results-dir", str(tmp_path / "r"), "--limit", "5",
    ])
    assert status == 0
    out = capsys.readouterr().out
    assert "results:" in out and (ckpt / "baseline.json").is_file()
    status = main(["baseline", "predict", "--output-dir", str(ckpt), "--results-dir", str(tmp_path / "p"), "--limit", "3"])
    assert status == 0
    path = Path(capsys.readouterr().out.split("results: ")[1].split()[0])
    assert json.loads(path.read_text())["n-samples"]["taiyi_kuake_qic"] == {"original": 25, "effective": 3}


def test_ner_gold_entity_objects_without_offsets_still_train(tiny_bert):
    """Entities without offsets (hand-made examples) are located in the text."""
    from taiyi_bench.baselines.families import _entity_spans

    example = Example(id="x", dataset="ncbi_disease", split="train", text="breast cancer is common",
                      entities=[Entity("Disease", "breast cancer")])
    assert _entity_spans(example, ["Disease"]) == {"Disease": [(0, 13)]}
