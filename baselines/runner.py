"""`taiyi baseline train` / `predict` as functions: check, load data, fine-tune, save, predict,
score, write results. Every check that can fail (encoder, data files) runs before any model is
loaded or trained. A trained baseline is a folder: `baseline.json` (task, family, encoder,
hyperparameters, training record) and one transformers checkpoint per head.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from taiyi_bench.baselines import preflight, settings
from taiyi_bench.baselines.families import BASELINES, Baseline, baseline_class
from taiyi_bench.baselines.results import score_units, write_run
from taiyi_bench.harness import scoring
from taiyi_bench.harness.errors import ConfigError
from taiyi_bench.harness.integrity import folder_problems
from taiyi_bench.harness.loading import LoadedSplit, load_split
from taiyi_bench.harness.provenance import model_identity
from taiyi_bench.harness.records import Example
from taiyi_bench.harness.registry import DatasetSpec, get_spec
from taiyi_bench.harness.results_io import model_slug

logger = logging.getLogger("taiyi-bench.baselines")

MANIFEST = "baseline.json"
DEFAULT_RESULTS_DIR = Path("results") / "runs"
DEFAULT_CHECKPOINT_ROOT = Path("runs") / "baselines"
SAMPLES_BANNER = (
    "!! taiyi-bench: {what} the BUNDLED SAMPLES written by the team, not the real data set. "
    "Scores on them say nothing about the model. Pass --data-dir or set $TAIYI_DATA_DIR."
)


@dataclass
class RunResult:
    checkpoint: Path
    results_path: Path | None
    metrics: dict[str, float]
    train_stats: dict[str, Any]


def limit_examples(examples: list[Example], limit: float | None) -> list[Example]:
    """lm-eval's --limit: an integer count, or a fraction of the split when below 1."""
    if limit is None:
        return examples
    if limit <= 0:
        raise ConfigError("--limit must be > 0")
    count = math.ceil(limit * len(examples)) if limit < 1 else int(limit)
    return examples[:count]


def _load(spec: DatasetSpec, split: str, data_dir: str | os.PathLike | None, what: str) -> LoadedSplit:
    loaded = load_split(spec.key, split, data_dir)
    if loaded.source == "samples":
        logger.warning(SAMPLES_BANNER.format(what=f"{spec.task_name} {what} ({split}) uses"))
    if not loaded.examples:
        raise ConfigError(f"{spec.display_name} {split}: no units in {', '.join(map(str, loaded.paths))}")
    return loaded


def _check_gold_entities(spec: DatasetSpec, gold_entities: bool) -> None:
    if gold_entities and spec.task_type != "re":
        raise ConfigError(f"--gold-entities applies to the relation sets only, not {spec.task_name}")


def _calibrate(baseline: Baseline, spec: DatasetSpec, train_split: str, data_dir: str | os.PathLike | None) -> dict[str, Any]:
    """Decisions a family tunes on held-out data (RE: the pair threshold) are chosen on the dev
    split - never on the evaluation split, nor on the split trained on. A set without such a
    dev split keeps the family's default decision, and the manifest says so."""
    if not getattr(baseline, "needs_calibration", False):
        return {}
    if "dev" not in spec.files or "dev" in (spec.eval_split, train_split):
        logger.warning("%s: no held-out dev split to calibrate on; keeping the default decision rule", spec.task_name)
        return {"split": None}
    dev = _load(spec, "dev", data_dir, "calibration")
    started = time.perf_counter()
    result = baseline.calibrate(dev.examples)
    logger.info("%s: calibrated on dev (%d units) in %.0f s: %s", spec.task_name, len(dev.examples),
                time.perf_counter() - started, {k: v for k, v in result.items() if not isinstance(v, dict)})
    return {"split": "dev", "data_source": dev.source, **result}


def train(
    task: str,
    *,
    encoder: str | None = None,
    data_dir: str | os.PathLike | None = None,
    output_dir: str | os.PathLike | None = None,
    train_split: str = "train",
    train_limit: int | None = None,
    hyperparameters: dict[str, Any] | None = None,
    evaluate: bool = True,
    limit: float | None = None,
    results_dir: str | os.PathLike = DEFAULT_RESULTS_DIR,
    model_name: str | None = None,
    gold_entities: bool = False,
) -> RunResult:
    """Fine-tune the baseline of `task`, save it, and (by default) predict and score the
    evaluation split. `hyperparameters` override encoders.yaml for every head (epochs,
    max_steps, batch_size, learning_rate, max_length, seed, device, ...)."""
    spec = get_spec(task)
    _check_gold_entities(spec, gold_entities)
    requested = settings.expand_encoder(encoder, spec.language)
    source = preflight.resolve_model(requested)
    preflight.check_model_available(source)
    train_data = _load(spec, train_split, data_dir, "training")
    eval_data = _load(spec, spec.eval_split, data_dir, "evaluation") if evaluate else None
    if train_split == spec.eval_split:
        logger.warning("!! %s: training on the evaluation split (%s): the scores are not a held-out evaluation", spec.task_name, train_split)
    family = baseline_class(spec)
    # One hyperparameter block per kind of head (encoders.yaml: heads.tagger, heads.pairs, ...); the family picks its own.
    configs = {head: settings.head_config(spec, head, hyperparameters) for head in settings.HEADS}
    examples = train_data.examples[:train_limit] if train_limit else train_data.examples
    checkpoint = Path(output_dir) if output_dir else DEFAULT_CHECKPOINT_ROOT / spec.key / model_slug(requested)

    baseline = family.create(spec, source.location, configs, examples)
    started = time.perf_counter()
    stats = baseline.fit(examples)
    calibration = _calibrate(baseline, spec, train_split, data_dir)
    baseline.save(checkpoint)
    manifest = {
        "format": 1,
        "task": spec.key,
        "family": type(baseline).__name__,
        "encoder": {"requested": requested, "location": source.location, "kind": source.kind},
        "heads": {folder: baseline.heads[folder].config.to_dict() for folder in baseline.heads},
        "train": {
            "split": train_split, "data_source": train_data.source, "units": len(examples),
            "files": [str(p) for p in train_data.paths], "stats": stats,
            "seconds": round(time.perf_counter() - started, 1),
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        },
        "parameters": sum(p.numel() for head in baseline.heads.values() for p in head.model.parameters()),
        **({"calibration": calibration} if calibration else {}),
    }
    (checkpoint / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    logger.info("saved %s baseline to %s", spec.task_name, checkpoint)
    if eval_data is None:
        return RunResult(checkpoint, None, {}, stats)
    results_path, metrics = _predict_and_write(
        baseline, manifest, checkpoint, eval_data, limit=limit, results_dir=results_dir, model_name=model_name,
        gold_entities=gold_entities,
    )
    return RunResult(checkpoint, results_path, metrics, stats)


def read_manifest(checkpoint: str | os.PathLike) -> dict[str, Any]:
    """A trained baseline's manifest, once its files are checked: every weights file as long as
    its header says, and the manifest (written last by `taiyi baseline train`)."""
    folder = Path(checkpoint)
    if not folder.is_dir():
        raise ConfigError(f"{folder} is not a trained baseline folder (it does not exist); run `taiyi baseline train` first")
    if problems := folder_problems(folder):
        raise ConfigError(f"the trained baseline in {folder} is damaged: {'; '.join(problems)}. Train it again (`taiyi baseline train`)")
    path = folder / MANIFEST
    if not path.is_file():
        raise preflight.PreflightError(f"{checkpoint} is not a trained baseline (no {MANIFEST}); run `taiyi baseline train` first")
    return json.loads(path.read_text(encoding="utf-8"))


def predict(
    checkpoint: str | os.PathLike | None,
    *,
    task: str | None = None,
    encoder: str | None = None,
    data_dir: str | os.PathLike | None = None,
    split: str | None = None,
    limit: float | None = None,
    results_dir: str | os.PathLike = DEFAULT_RESULTS_DIR,
    model_name: str | None = None,
    device: str | None = None,
    eval_batch_size: int | None = None,
    gold_entities: bool = False,
) -> RunResult:
    """Load a trained baseline (`checkpoint`, else the default folder of `task` and `encoder`),
    predict a split (default: the set's evaluation split), score it and write the results files."""
    if checkpoint is None:
        if not task:
            raise ConfigError("give --output-dir (the trained baseline) or --task [--encoder]")
        chosen = get_spec(task)
        checkpoint = DEFAULT_CHECKPOINT_ROOT / chosen.key / model_slug(settings.expand_encoder(encoder, chosen.language))
    manifest = read_manifest(checkpoint)
    spec = get_spec(manifest["task"])
    if task is not None and get_spec(task).key != spec.key:
        raise ConfigError(f"{checkpoint} was trained for {spec.task_name}, not {get_spec(task).task_name}")
    _check_gold_entities(spec, gold_entities)
    eval_data = _load(spec, split or spec.eval_split, data_dir, "evaluation")
    family = BASELINES[manifest["family"]]
    baseline = family.load(spec, checkpoint, {"device": device, "eval_batch_size": eval_batch_size})
    results_path, metrics = _predict_and_write(
        baseline, manifest, Path(checkpoint), eval_data, limit=limit, results_dir=results_dir, model_name=model_name,
        gold_entities=gold_entities,
    )
    return RunResult(Path(checkpoint), results_path, metrics, manifest.get("train", {}).get("stats", {}))


def _predict_and_write(
    baseline: Baseline,
    manifest: dict[str, Any],
    checkpoint: Path,
    eval_data: LoadedSplit,
    *,
    limit: float | None,
    results_dir: str | os.PathLike,
    model_name: str | None,
    gold_entities: bool = False,
) -> tuple[Path, dict[str, float]]:
    spec = baseline.spec
    examples = limit_examples(eval_data.examples, limit)
    started = time.time()
    # Only RelationBaseline.predict takes gold_entities (checked by _check_gold_entities).
    output = baseline.predict(examples, gold_entities=True) if gold_entities else baseline.predict(examples)  # type: ignore[call-arg]
    unit_scores = score_units(spec, examples, output.predictions)  # the one scoring of the run
    encoder = manifest["encoder"]["requested"]
    base = model_identity(encoder)
    # Named after the encoder's own name (`local:minilm` -> all-MiniLM-L6-v2), so one encoder has one
    # name in every run; a gold-entity run is another setting, never merged with end-to-end runs.
    name = (model_name or f"{base['name']} (fine-tuned)") + (" [gold entities]" if gold_entities else "")
    train_info = manifest.get("train", {})
    first_config = next(iter(manifest.get("heads", {}).values()), {})
    results_path = write_run(
        spec, examples, output.predictions, unit_scores=unit_scores, model_name=name,
        model_args={"encoder": encoder, "checkpoint": str(checkpoint), "family": manifest["family"]},
        data_source=eval_data.source, results_dir=results_dir, n_original=len(eval_data.examples),
        split=eval_data.split, limit=limit, inputs=output.inputs, extra_metrics=output.extra_metrics,
        extra_unit_values=output.extra_unit_values, start_time=started,
        data_files=eval_data.paths, data_root=eval_data.root,
        metadata={
            "data_dir": None if eval_data.source == "samples" else str(eval_data.root),
            "model_identity": {**model_identity(str(checkpoint)), "name": name, "base": base},
            "train_split": train_info.get("split"), "train_data_source": train_info.get("data_source"),
            **({"re_entities": "gold" if gold_entities else "predicted"} if spec.task_type == "re" else {}),
        },
        config={
            "model_num_parameters": manifest.get("parameters"), "model_dtype": "torch.float32",
            "batch_size": first_config.get("eval_batch_size"), "device": first_config.get("device"),
            "random_seed": first_config.get("seed"),
        },
        baseline_info={
            "kind": "discriminative", "family": manifest["family"], "encoder": manifest["encoder"],
            "checkpoint": str(checkpoint), "heads": manifest.get("heads", {}), "train": train_info,
            "predict_seconds": round(time.time() - started, 1),
        },
    )
    return results_path, {**scoring.aggregate(spec, unit_scores), **output.extra_metrics}
