"""The two-stage LoRA / QLoRA fine-tuning recipe, top to bottom.

    taiyi finetune RECIPE [--stage 1|2|all] [--override key=value ...] [--output-dir DIR] [--resume]
    accelerate launch --config_file finetune/accelerate/<config>.yaml -m taiyi_bench.finetune RECIPE ...

`train` reads as the recipe; each step is a function below it, called in this order:
  1. config       `configure_run`: the recipe checked, the run directory and stages chosen
  2. accelerator  `setup_accelerator` (with `check_device`): precision, device checks, processes;
                  then `open_run_directory`: the lock, the resolved config saved, the start logged
  3. tokenizer    `load_tokenizer`
  4. model        `load_model` (attention path, 4-bit)
  per stage (a stage finished earlier is skipped on --resume: `stage_finished_earlier`):
  5. data         `stage_data`: the stage's mixture, encoded, its report written
  6. adapter      `attach_adapter` (LoRA), `StageBatches` (the optimizer steps of a stage),
                  `plan_memory` (gradient checkpointing)
  7. optimiser    `setup_optimizer`, `seed_stage`, `resume_position`, `write_run_info`
  8. loop         `train_loop`, `optimizer_step`: logging tokens/s, MFU, peak memory; checkpoints
  9. save         `save_stage` (the adapter); after the last stage `finish_run` (the optional merge)

Where it writes (`<out>` = --output-dir or runs/<recipe name>) and how outputs are checked before
they are trusted (`taiyi_bench.harness.integrity`): finetune/README.md, "Outputs".
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import platform
import random
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import torch

from taiyi_bench.finetune import data as data_mod
from taiyi_bench.finetune import performance
from taiyi_bench.finetune.adapter_eval import eval_record
from taiyi_bench.finetune.config import PACKAGE_DIR, to_yaml, validate
from taiyi_bench.finetune.encoding import (
    EncodedSample,
    EncodeReport,
    collate_packed,
    collate_padded,
    encode_all,
    eod_token_id,
    label_token_count,
    pack_indices,
)
from taiyi_bench.finetune.lock import RunLock
from taiyi_bench.finetune.lock import acquire as acquire_lock
from taiyi_bench.harness import integrity
from taiyi_bench.harness.atomic_files import atomic_write_text
from taiyi_bench.harness.errors import ConfigError

STAGE_MARKER = integrity.STAGE_MARKER  # written last into a finished stage's adapter directory
CONTAMINATION_REPORT = "contamination.json"  # <out>/: the evaluation units the recipe's data holds
CHECKPOINT_MARKER = integrity.CHECKPOINT_MARKER  # written last into a finished checkpoint
# Keys that may differ between a run and its resumption (they do not change what is trained).
RESUMABLE_CHANGES = {
    "training.progress", "training.save_steps", "training.save_total_limit", "training.logging_steps",
    "training.report_to", "merge", "overrides", "recipe_source", "output_dir",
}


# --------------------------------------------------------------------------- small helpers


def resolve_base(base: str) -> str:
    """`local:smollm2` -> the converted SmolLM2 directory; anything else is passed through."""
    if base == "local:smollm2":
        from taiyi_bench.harness.local_models import smollm2_dir

        return str(smollm2_dir())
    return base


def recipe_search_dirs(config: dict[str, Any]) -> list[Path]:
    """Where relative data paths of a recipe are looked up after the working directory."""
    source = str(config.get("recipe_source") or "<mapping>")
    return ([] if source.startswith("<") else [Path(source).parent]) + [PACKAGE_DIR]


def _flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def config_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    a, b = _flatten(old), _flatten(new)
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k) and k not in RESUMABLE_CHANGES)


class JsonlLog:
    """Append-only JSONL log written by the main process (one object per line, flushed)."""

    def __init__(self, path: Path, enabled: bool):
        self.path, self.enabled = path, enabled

    def write(self, event: str, **fields: Any) -> None:
        if not self.enabled:
            return
        record = {"event": event, "time": round(time.time(), 3), **fields}
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


class Trackers:
    """`training.report_to`: each logged step's scalars, those of its JSONL `step` line, also sent
    to TensorBoard (`<out>/tensorboard`, one chart per stage and figure) and/or Weights & Biases
    (project: $WANDB_PROJECT; the key stays with wandb's own login), by the main process."""

    def __init__(self, config: dict[str, Any], out: Path, enabled: bool) -> None:
        chosen = config["training"]["report_to"]
        names = set([chosen] if isinstance(chosen, str) else chosen) if enabled else set()
        self.tensorboard = self.wandb = None
        if "tensorboard" in names:
            from torch.utils.tensorboard import SummaryWriter

            self.tensorboard = SummaryWriter(log_dir=str(out / "tensorboard"))
        if "wandb" in names:
            import wandb

            self.wandb = wandb.init(name=config["name"], dir=str(out), config=config)

    def log(self, stage: int, step: int, record: dict[str, Any]) -> None:
        scalars = {
            f"stage{stage}/{name}": float(value)
            for name, value in record.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)
        }
        if self.tensorboard:
            for tag, value in scalars.items():
                self.tensorboard.add_scalar(tag, value, global_step=step)
        if self.wandb:
            self.wandb.log({**scalars, f"stage{stage}/step": step})

    def close(self) -> None:
        if self.tensorboard:
            self.tensorboard.close()
        if self.wandb:
            self.wandb.finish()


def find_checkpoints(stage_dir: Path) -> list[Path]:
    """Complete mid-stage checkpoints of a stage, oldest first."""
    folder = stage_dir / "checkpoints"
    if not folder.is_dir():
        return []
    done = [p for p in folder.iterdir() if p.name.startswith("step-") and (p / CHECKPOINT_MARKER).is_file()]
    return sorted(done, key=lambda p: int(p.name.removeprefix("step-")))


@dataclass
class Run:
    """What the steps of one invocation share; filled in as the recipe goes."""

    config: dict[str, Any]
    out: Path
    stages: list[int]
    resume: bool
    stop_after_steps: int | None
    log: JsonlLog | None = None
    trackers: Trackers | None = None
    accelerator: Any = None
    precision: str = "fp32"
    dtype: torch.dtype = torch.float32
    base: str = ""
    tokenizer: Any = None
    pad_id: int = 0
    attention: performance.AttentionPlan | None = None
    lora: Any = None  # peft.LoraConfig of a fresh adapter
    steps_this_call: int = 0
    summary: dict[str, Any] = field(default_factory=dict)
    lock: RunLock | None = None  # held by the main process while it writes into `out`

    @property
    def main(self) -> bool:
        return self.accelerator.is_main_process


# --------------------------------------------------------------------------- the recipe


def train(
    config: dict[str, Any],
    *,
    stages: Sequence[int] = (1, 2),
    output_dir: str | Path | None = None,
    resume: bool = False,
    stop_after_steps: int | None = None,
) -> dict[str, Any]:
    """Run the requested stages of a resolved recipe (see `taiyi_bench.finetune.config.load_recipe`).

    `resume` continues from the latest complete checkpoint (finished stages are skipped).
    `stop_after_steps` ends the run after that many optimizer steps in this invocation, having
    written a checkpoint, as an interruption would (used by the resume test).
    Returns a summary: output paths, steps, smoothed start/end loss, tokens/s, MFU, peak memory per stage.
    """
    threads = torch.get_num_threads()
    run: Run | None = None
    try:
        run = configure_run(config, stages, output_dir, resume, stop_after_steps)  # 1. config
        setup_accelerator(run)  # 2. accelerator
        open_run_directory(run)
        load_tokenizer(run)  # 3. tokenizer
        model = load_model(run)  # 4. model
        sources = None  # the data is read and rendered once, for both stages
        for stage in run.stages:
            if stage_finished_earlier(run, stage):
                continue
            if sources is None:
                sources = data_mod.load_sources(run.config["data"], search_dirs=recipe_search_dirs(run.config))
                write_contamination_report(run, sources)
            samples, report = stage_data(run, stage, sources)  # 5. data
            model = attach_adapter(run, model, stage)  # 6. adapter
            batches = StageBatches(run, stage, samples)
            memory = plan_memory(run, model, stage, report)
            model, optimizer, scheduler = setup_optimizer(run, model, batches.total_steps)  # 7. optimiser
            seed_stage(run, stage)
            start_step = resume_position(run, stage, scheduler, batches)
            write_run_info(run, stage, batches, memory)
            result = train_loop(run, model, optimizer, scheduler, batches, start_step)  # 8. loop
            run.summary["stages"][stage] = result
            if result.get("interrupted"):
                run.summary["interrupted"] = True
                return run.summary
            model = save_stage(run, model, stage, result)  # 9. save
        return finish_run(run)
    finally:
        torch.set_num_threads(threads)  # training.num_threads applies to the run only
        if run is not None and run.trackers is not None:
            run.trackers.close()
        if run is not None and run.lock is not None:
            run.lock.release()


# ---- config -------------------------------------------------------------------------------


def configure_run(
    config: dict[str, Any], stages: Sequence[int], output_dir: str | Path | None, resume: bool, stop_after_steps: int | None
) -> Run:
    """The config checked (one built in code too), the run directory (--output-dir, else the
    recipe's, else runs/<name>) and the stages."""
    config = validate(config)
    out = Path(output_dir or config.get("output_dir") or Path("runs") / config["name"]).expanduser()
    return Run(
        config={**config, "output_dir": str(out)},
        out=out,
        stages=sorted({int(s) for s in stages}),
        resume=resume,
        stop_after_steps=stop_after_steps,
        summary={"output_dir": str(out), "base": "", "stages": {}},
    )


def open_run_directory(run: Run) -> None:
    """Create the directory, refuse to overwrite or to resume with another config, save the
    resolved config and log the start."""
    accelerator, out = run.accelerator, run.out
    if run.main:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the run directory {out} ({exc.strerror or exc}); choose another --output-dir") from None
        run.lock = acquire_lock(out)  # before anything is written: a second run stops here
    accelerator.wait_for_everyone()
    run.log = JsonlLog(out / "train_log.jsonl", run.main)
    saved_config = out / "resolved_config.yaml"
    if run.resume and saved_config.is_file():
        import yaml

        differences = config_differences(yaml.safe_load(saved_config.read_text(encoding="utf-8")), run.config)
        if differences:
            raise ConfigError(
                f"--resume: the config differs from the run in {out} in {', '.join(differences)}; "
                "resume with the same recipe and overrides, or start a new --output-dir"
            )
    for stage in run.stages:
        stage_dir = out / f"stage{stage}"
        if not run.resume and (find_checkpoints(stage_dir) or (stage_dir / "adapter" / STAGE_MARKER).is_file()):
            raise ConfigError(
                f"{stage_dir} already holds a run of stage {stage}; pass --resume to continue it, "
                "or choose another --output-dir"
            )
    # Checked on every process before anything is written: a damaged checkpoint, or an unfinished
    # adapter a stage would start from, stops the run here.
    resume_from = {stage: resume_step(out / f"stage{stage}") for stage in run.stages} if run.resume else {}
    for stage in run.stages:
        check_starting_adapter(run, stage)
    if run.main:
        if run.resume:
            rewind_log(run.log.path, resume_from)
        saved_config.write_text(to_yaml(run.config), encoding="utf-8")
    run.trackers = Trackers(run.config, out, run.main)
    run.log.write(
        "start",
        stages=run.stages,
        resume=run.resume,
        world_size=accelerator.num_processes,
        precision=run.precision,
        distributed_type=str(accelerator.distributed_type),
        config_file=str(saved_config),
    )


# ---- accelerator --------------------------------------------------------------------------


def resume_step(stage_dir: Path) -> int | None:
    """The step --resume continues a stage from: its latest complete checkpoint's, 0 without one,
    None when the stage finished (its adapter carries the marker). What it names is checked for
    damage here, before the run writes anything (`IncompleteFilesError` says what to do)."""
    adapter = stage_dir / "adapter"
    if (adapter / STAGE_MARKER).is_file():
        integrity.check_adapter(adapter, f"--resume: {stage_dir.name}'s adapter")
        return None
    checkpoints = find_checkpoints(stage_dir)
    if not checkpoints:
        return 0
    step = integrity.check_checkpoint(checkpoints[-1]).get("step")
    if not isinstance(step, int):
        raise integrity.IncompleteFilesError(f"checkpoint {checkpoints[-1]}: its {CHECKPOINT_MARKER} names no step")
    return step


def starting_adapter(run: Run, stage: int) -> Path | None:
    """The adapter folder a stage starts from (`stages.<N>.init_adapter`): this run's stage-1
    adapter for "stage1", a path, or None for a fresh adapter."""
    init = run.config["stages"][stage].get("init_adapter")
    return (run.out / "stage1" / "adapter") if init == "stage1" else (Path(init) if init else None)


def check_starting_adapter(run: Run, stage: int) -> None:
    """A stage starting from an adapter this call does not train itself needs it complete: its
    marker, its files as long as when written (`taiyi_bench.harness.integrity`). Said before any work."""
    folder = starting_adapter(run, stage)
    trained_here = run.config["stages"][stage].get("init_adapter") == "stage1" and 1 in run.stages
    if folder is None or trained_here:
        return
    if not folder.exists():
        raise ConfigError(
            f"stage {stage} starts from the adapter in {folder}, which does not exist; "
            f"run stage 1 first or set stages.{stage}.init_adapter (null = a fresh adapter)"
        )
    integrity.check_adapter(folder, f"stage {stage}'s starting adapter (stages.{stage}.init_adapter)")


def rewind_log(path: Path, steps: dict[int, int | None]) -> None:
    """Cut the train log back to where --resume continues: drop the step and checkpoint records
    of each unfinished stage after its resume step (`steps`: stage -> step, None = finished), and
    a last line torn by a kill mid-write. The steps trained again are then logged once."""
    if not path.is_file():
        return
    kept, dropped = [], 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            dropped += 1  # a line cut short when the run was killed
            continue
        stage, step = record.get("stage"), record.get("step")
        redo_from = steps.get(stage) if isinstance(stage, int) else None
        trained_again = redo_from is not None and isinstance(step, int) and step > redo_from
        if trained_again and record.get("event") in ("step", "checkpoint"):
            dropped += 1
            continue
        kept.append(line)
    if dropped:
        atomic_write_text(path, "".join(line + "\n" for line in kept))


def check_device(config: dict[str, Any]) -> str:
    """The precision to train in, after refusing GPU-only settings on a CPU (before any model
    is loaded, with a message saying what to change)."""
    model_cfg, training = config["model"], config["training"]
    cuda = torch.cuda.is_available()
    precision = model_cfg["precision"]
    if precision == "auto":
        precision = "bf16" if cuda and torch.cuda.is_bf16_supported() else "fp32"
    if precision in ("bf16", "fp16") and not cuda:
        raise ConfigError(
            f"model.precision={precision} needs a CUDA GPU; on CPU use --override model.precision=fp32 (or auto)"
        )
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        raise ConfigError("model.precision=bf16 but this GPU has no bf16 support; use fp16 or fp32")
    quantize = model_cfg["quantization"] == "4bit"
    if quantize and not cuda:
        raise ConfigError(
            "model.quantization=4bit (QLoRA) needs a CUDA GPU and bitsandbytes; on CPU use "
            "--override model.quantization=null (plain LoRA)"
        )
    needs_bnb = quantize or training["optimizer"].startswith("paged_")
    if needs_bnb and importlib.util.find_spec("bitsandbytes") is None:
        raise ConfigError("4-bit loading / paged optimizers need bitsandbytes: pip install 'taiyi-bench[gpu]'")
    if training["optimizer"].startswith("paged_") and not cuda:
        raise ConfigError(f"training.optimizer={training['optimizer']} needs a CUDA GPU; use adamw on CPU")
    if os.environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() == "true":
        if not cuda:
            raise ConfigError("the DeepSpeed accelerate configs are for GPUs; on CPU launch without --config_file")
        if importlib.util.find_spec("deepspeed") is None:
            raise ConfigError("this accelerate config uses DeepSpeed: pip install 'taiyi-bench[deepspeed]'")
    if os.environ.get("ACCELERATE_USE_FSDP", "").lower() == "true" and not cuda:
        raise ConfigError("the FSDP accelerate config is for GPUs; on CPU launch without --config_file")
    return precision


def setup_accelerator(run: Run) -> None:
    """The accelerator (processes, mixed precision, accumulation), agreeing with the recipe."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedType, set_seed

    training = run.config["training"]
    run.precision = check_device(run.config)
    run.dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[run.precision]
    grad_accum = int(training["gradient_accumulation_steps"])
    accelerator = Accelerator(
        mixed_precision={"bf16": "bf16", "fp16": "fp16", "fp32": "no"}[run.precision],
        gradient_accumulation_steps=grad_accum,
    )
    run.accelerator = accelerator
    if accelerator.gradient_accumulation_steps != grad_accum:
        # The accelerate config (e.g. a DeepSpeed one) set its own value; the batching here
        # follows the recipe, so the two must agree.
        raise ConfigError(
            f"the accelerate config sets gradient accumulation to {accelerator.gradient_accumulation_steps} but the "
            f"recipe's training.gradient_accumulation_steps is {grad_accum}; make them equal"
        )
    if accelerator.distributed_type == DistributedType.DEEPSPEED:
        ds_config = accelerator.state.deepspeed_plugin.deepspeed_config
        # No dataloader goes through prepare(), so DeepSpeed learns the micro-batch size here.
        ds_config["train_micro_batch_size_per_gpu"] = int(training["per_device_batch_size"])
        clipping = ds_config.get("gradient_clipping", "auto")
        if clipping == "auto":
            ds_config["gradient_clipping"] = float(training["max_grad_norm"])
        elif float(clipping) != float(training["max_grad_norm"]):
            raise ConfigError(
                f"the DeepSpeed config clips gradients at {clipping} but training.max_grad_norm is "
                f"{training['max_grad_norm']}; make them equal"
            )
    set_seed(int(run.config["seed"]))
    if training["num_threads"] and accelerator.device.type == "cpu":
        torch.set_num_threads(int(training["num_threads"]))  # restored by `train` on return


# ---- data ---------------------------------------------------------------------------------


def load_tokenizer(run: Run) -> None:
    """The base model's tokenizer and the padding id (pad, else Taiyi's eod, else eos)."""
    from transformers import AutoTokenizer

    model_cfg, fmt = run.config["model"], run.config["format"]
    run.base = resolve_base(str(model_cfg["base"]))
    run.summary["base"] = run.base
    tokenizer = AutoTokenizer.from_pretrained(
        run.base, trust_remote_code=bool(model_cfg["trust_remote_code"]), revision=model_cfg["revision"]
    )
    eod_id = eod_token_id(tokenizer, fmt["eod_token"]) if fmt["style"] == "eod" else None
    pad_id = tokenizer.pad_token_id
    if pad_id is None:
        pad_id = eod_id if eod_id is not None else tokenizer.eos_token_id
    if pad_id is None:
        raise ConfigError("the tokenizer has neither a pad nor an eos token; set format.eod_token")
    run.tokenizer, run.pad_id = tokenizer, int(pad_id)


def stage_finished_earlier(run: Run, stage: int) -> bool:
    """On --resume, a stage whose adapter was written (checked by `resume_step`) is skipped."""
    adapter_dir = run.out / f"stage{stage}" / "adapter"
    if not (run.resume and (adapter_dir / STAGE_MARKER).is_file()):
        return False
    run.log.write("stage_skipped", stage=stage, reason="finished earlier", adapter=str(adapter_dir))
    run.summary["stages"][stage] = {"adapter": str(adapter_dir), "skipped": True}
    return True


def stage_data(run: Run, stage: int, sources: Any) -> tuple[list[EncodedSample], EncodeReport]:
    """The stage's mixture (categories, caps, weights), encoded; its report written and shown."""
    config, fmt = run.config, run.config["format"]
    stage_dir = run.out / f"stage{stage}"
    if run.main:
        stage_dir.mkdir(parents=True, exist_ok=True)
        (stage_dir / "resolved_config.yaml").write_text(to_yaml(config), encoding="utf-8")
    mixture = data_mod.stage_mixture(sources, stage, config["data"])
    if not mixture.conversations:
        raise ConfigError(
            f"stage {stage} has no data: none of the recipe's datasets has a category of "
            f"this stage ({sorted(data_mod.categories_for_stage(stage))})"
        )
    samples, encode_report = encode_all(
        run.tokenizer,
        mixture.conversations,
        style=fmt["style"],
        max_length=int(fmt["max_length"]),
        overlong=fmt["overlong"],
        system=fmt["system"],
        eod_token=fmt["eod_token"],
    )
    if not samples:
        raise ConfigError(f"stage {stage}: every sample was dropped as over-long ({encode_report.as_dict()})")
    report = {**mixture.report(), "encoding": encode_report.as_dict()}
    if run.main:
        (stage_dir / "data_report.json").write_text(
            json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        _print_data_report(run.accelerator, stage, mixture, encode_report)
    run.log.write("data", **report)
    return samples, encode_report


def write_contamination_report(run: Run, sources: Any) -> None:
    """<out>/contamination.json: the evaluation units the data of every stage of the recipe holds
    (`taiyi contamination --recipe`), against the evaluation splits of the data directory it reads."""
    from taiyi_bench.harness.contamination import (
        contamination_report,
        contamination_summary,
        evaluation_splits,
    )

    if not run.main:
        return
    data_cfg = run.config["data"]
    splits, missing = evaluation_splits(data_dir=data_cfg["tasks"]["data_dir"])
    conversations = data_mod.trained_conversations(sources, data_cfg, sorted(run.config["stages"]))
    report = contamination_report(conversations, splits, missing=missing)
    atomic_write_text(run.out / CONTAMINATION_REPORT, json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    run.log.write("contamination", report=str(run.out / CONTAMINATION_REPORT), share=contamination_summary(report))


# ---- model --------------------------------------------------------------------------------


def _is_native(model_cfg: dict[str, Any], base: str) -> bool:
    """Whether transformers' own modelling code runs the base (not code from its repository)."""
    if not model_cfg["trust_remote_code"]:
        return True
    from transformers import AutoConfig

    remote = AutoConfig.from_pretrained(base, trust_remote_code=True, revision=model_cfg["revision"])
    return "AutoModelForCausalLM" not in (getattr(remote, "auto_map", None) or {})


def load_model(run: Run) -> Any:
    """The base model in the run's precision (4-bit for QLoRA) with the chosen attention path,
    and the LoRA config; accelerate's checkpoints are told to keep the trainable weights only."""
    from peft import prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM

    model_cfg, fmt = run.config["model"], run.config["format"]
    quantize = model_cfg["quantization"] == "4bit"
    plan = performance.choose_attention(
        model_cfg["attn_implementation"],
        packing=bool(fmt["packing"]),
        device=run.accelerator.device,
        dtype=run.dtype,
        native=_is_native(model_cfg, run.base),
    )
    kwargs: dict[str, Any] = {
        "dtype": run.dtype,
        "trust_remote_code": bool(model_cfg["trust_remote_code"]),
        "revision": model_cfg["revision"],
    }
    if plan.implementation:
        kwargs["attn_implementation"] = plan.implementation
    if quantize:
        kwargs.update(_quantization_kwargs(run))
    model = AutoModelForCausalLM.from_pretrained(run.base, **kwargs)
    model.config.use_cache = False  # no KV cache in training (and checkpointing requires it)
    if quantize:  # checkpointing is set per stage (`plan_memory`)
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    run.attention = _check_attention(run, model, plan)
    run.lora = lora_config(run.config)
    run.accelerator.register_save_state_pre_hook(_keep_trainable)
    run.accelerator.register_load_state_pre_hook(_load_trainable)
    return model


def lora_config(config: dict[str, Any]) -> Any:
    """The recipe's `lora` section as a peft.LoraConfig (a fresh adapter)."""
    from peft import LoraConfig

    lora_cfg = config["lora"]
    return LoraConfig(
        r=int(lora_cfg["r"]),
        lora_alpha=int(lora_cfg["alpha"]),
        lora_dropout=float(lora_cfg["dropout"]),
        target_modules=lora_cfg["target_modules"],
        bias=lora_cfg["bias"],
        modules_to_save=lora_cfg["modules_to_save"],
        task_type="CAUSAL_LM",
    )


def _quantization_kwargs(run: Run) -> dict[str, Any]:
    from accelerate.utils import DistributedType
    from transformers import BitsAndBytesConfig

    model_cfg = run.config["model"]
    kwargs: dict[str, Any] = {
        "quantization_config": BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type=model_cfg["bnb_4bit_quant_type"],
            bnb_4bit_use_double_quant=bool(model_cfg["bnb_4bit_use_double_quant"]),
            bnb_4bit_compute_dtype=run.dtype,
            bnb_4bit_quant_storage=getattr(torch, model_cfg["bnb_4bit_quant_storage"]),
        )
    }
    sharded = run.accelerator.distributed_type in (DistributedType.DEEPSPEED, DistributedType.FSDP)
    if not sharded:  # one full copy per GPU (DDP); ZeRO-3 / FSDP place the shards themselves
        kwargs["device_map"] = {"": run.accelerator.local_process_index}
    return kwargs


def _check_attention(run: Run, model: Any, plan: performance.AttentionPlan) -> performance.AttentionPlan:
    """The attention the model really runs, checked against packing; logged."""
    attn = getattr(model.config, "_attn_implementation", None) or "eager"
    native = type(model).__module__.startswith("transformers.")
    packing = bool(run.config["format"]["packing"])
    if packing and not native:
        raise ConfigError(
            f"format.packing needs a transformers-native architecture whose attention honours packed "
            f"boundaries; {type(model).__name__} is remote code. Set format.packing=false"
        )
    if packing and plan.layout == "mask4d" and attn not in ("eager", "sdpa"):
        raise ConfigError(f"format.packing supports eager, sdpa, flex_attention and flash attention, not {attn!r}")
    actual = performance.AttentionPlan(attn, plan.layout, plan.reason)
    run.log.write("attention", requested=run.config["model"]["attn_implementation"], **asdict(actual))
    run.accelerator.print(f"attention: {attn}, packed rows: {plan.layout or 'n/a'} ({plan.reason})")
    return actual


# Accelerate checkpoints would store the frozen base weights too (GBs per checkpoint); keep only
# the trainable (LoRA) tensors. DeepSpeed / FSDP save their own sharded states.
def _keep_trainable(models: list, weights: list, _dir: str) -> None:
    for i in range(len(weights)):
        trainable = {name for name, p in models[i].named_parameters() if p.requires_grad}
        weights[i] = {k: v for k, v in weights[i].items() if k in trainable}


def _load_trainable(models: list, input_dir: str) -> None:
    from safetensors.torch import load_file

    for i, model_i in enumerate(models):
        name = "model.safetensors" if i == 0 else f"model_{i}.safetensors"
        state = load_file(os.path.join(input_dir, name))
        trainable = {n for n, p in model_i.named_parameters() if p.requires_grad}
        if set(state) != trainable:
            raise ConfigError(
                f"checkpoint {input_dir} does not hold this model's trainable weights "
                f"({len(set(state) ^ trainable)} names differ)"
            )
        model_i.load_state_dict(state, strict=False)
    models.clear()  # loaded here; accelerate must not load them strictly


def attach_adapter(run: Run, model: Any, stage: int) -> Any:
    """The adapter the stage trains: stage 2 continues stage 1's by default (`init_adapter`)."""
    from peft import PeftModel, get_peft_model

    init = run.config["stages"][stage].get("init_adapter")
    init_dir = starting_adapter(run, stage)
    if init_dir is not None and not (init == "stage1" and isinstance(model, PeftModel)):
        # Checked before the run wrote anything; again here, as a stage-1 adapter from an
        # earlier call is read only now.
        check_starting_adapter(run, stage)
    if not isinstance(model, PeftModel):
        if init_dir is not None:
            model = PeftModel.from_pretrained(model, str(init_dir), is_trainable=True)
        else:
            model = get_peft_model(model, run.lora)
    elif init_dir is not None and init != "stage1":
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        set_peft_model_state_dict(model, load_file(str(init_dir / "adapter_model.safetensors")))
    elif init_dir is None:
        raise ConfigError(
            f"stages.{stage}.init_adapter=null cannot follow another stage in the same call; "
            f"run stage {stage} on its own"
        )
    if run.main:
        trainable, total = model.get_nb_trainable_parameters()
        run.accelerator.print(
            f"[stage {stage}] trainable parameters: {trainable:,} of {total:,} ({100 * trainable / total:.3f}%)"
        )
    return model


def plan_memory(run: Run, model: Any, stage: int, report: EncodeReport) -> performance.CheckpointPlan:
    """Gradient checkpointing for this stage (`model.gradient_checkpointing`), applied and logged.
    auto estimates the activations of a full micro-batch (per_device_batch_size x max_length
    tokens, the stage's share of label tokens) against the device's free memory."""
    config, accelerator = run.config, run.accelerator
    model_config = model.get_base_model().config
    layers = len(performance.decoder_layers(model)) or int(getattr(model_config, "num_hidden_layers", 0) or 0)
    tokens = int(config["training"]["per_device_batch_size"]) * int(config["format"]["max_length"])
    width = 4 if run.precision == "fp32" else 2
    per_token: float | None = None
    if getattr(model_config, "hidden_size", None):
        per_token = performance.activation_bytes_per_token_layer(
            model_config, bytes_per_value=width, lora_dropout=float(config["lora"]["dropout"])
        )
    label_share = report.label_tokens / max(report.tokens, 1)
    trainable, _total = model.get_nb_trainable_parameters()
    vocab = int(getattr(model_config, "vocab_size", 0) or 0)
    free, total = performance.device_memory(accelerator.device)
    if free is not None and accelerator.num_processes > 1:  # every process decides alike
        free = float(accelerator.gather(torch.tensor([free], device=accelerator.device)).min())
    plan = performance.plan_checkpointing(
        config["model"]["gradient_checkpointing"],
        cuda=accelerator.device.type == "cuda",
        layers=layers,
        per_layer_bytes=None if per_token is None else per_token * tokens,
        layer_input_bytes=tokens * int(getattr(model_config, "hidden_size", 0) or 0) * width,
        fixed_bytes=tokens * label_share * vocab * 16 + trainable * 12,  # logits in 3 forms + grad; Adam
        free_bytes=free,
        total_bytes=total,
    )
    done = performance.apply_checkpointing(model, plan.every)
    if done < 0:  # remote code: no per-layer switch, the model checkpoints all its layers
        plan = performance.CheckpointPlan(plan.setting, 1, layers, layers, plan.reason + " (all: remote code)")
    run.log.write("memory_policy", stage=stage, **asdict(plan))
    accelerator.print(
        f"[stage {stage}] gradient checkpointing: {plan.checkpointed}/{plan.layers} layers ({plan.reason})"
    )
    return plan


class StageBatches:
    """The optimizer steps of one stage: which samples form which rows (`windows`), and how rows
    become tensors (padded, or packed in the attention plan's layout)."""

    def __init__(self, run: Run, stage: int, samples: list[EncodedSample]) -> None:
        config, fmt, attention = run.config, run.config["format"], run.attention
        self.samples, self.stage, self.seed, self.pad_id = samples, stage, int(config["seed"]), run.pad_id
        self.batch_size = int(config["training"]["per_device_batch_size"])  # rows per micro-batch
        self.window = int(config["training"]["gradient_accumulation_steps"]) * run.accelerator.num_processes
        self.packing, self.max_length = bool(fmt["packing"]), int(fmt["max_length"])
        self.open_bins = int(fmt["pack_open_bins"])
        self.layout = attention.layout if attention else None
        self.mask_dtype = torch.bool if attention and attention.implementation == "sdpa" else run.dtype
        self.steps_per_epoch = len(self.windows(0))
        epochs = float(config["stages"][stage]["epochs"])
        self.total_steps = int(config["training"]["max_steps"] or math.ceil(epochs * self.steps_per_epoch))

    def windows(self, epoch: int) -> list[list[list[list[int]]]]:
        """The optimizer steps of one epoch: windows[step][micro][row] = sample indices of one row
        (one sample, or a pack of at most `max_length` tokens). Deterministic in (seed, stage,
        epoch), so resuming needs only the step number. The last window wraps around to the start,
        so every step has `window` micro-batches (accelerate's accumulation counter stays aligned)."""
        order = list(range(len(self.samples)))
        random.Random(f"{self.seed}:stage{self.stage}:epoch{epoch}").shuffle(order)
        if self.packing:
            lengths = [len(self.samples[i]) for i in order]
            rows = [[order[j] for j in pack] for pack in pack_indices(lengths, self.max_length, self.open_bins)]
        else:
            rows = [[i] for i in order]
        micro = [rows[k : k + self.batch_size] for k in range(0, len(rows), self.batch_size)]
        steps = math.ceil(len(micro) / self.window)
        return [[micro[(s * self.window + j) % len(micro)] for j in range(self.window)] for s in range(steps)]

    def collate(self, rows: list[list[int]]) -> dict[str, torch.Tensor]:
        if not self.packing:
            return collate_padded([self.samples[row[0]] for row in rows], self.pad_id)
        packs = [[self.samples[i] for i in row] for row in rows]
        return collate_packed(packs, self.pad_id, layout=self.layout or "mask4d", dtype=self.mask_dtype)

    def tokens(self, micro_batches: list[list[list[int]]]) -> int:
        """Real (non-padding) tokens of some micro-batches."""
        return sum(len(self.samples[i]) for rows in micro_batches for row in rows for i in row)


# ---- optimiser ----------------------------------------------------------------------------


def setup_optimizer(run: Run, model: Any, total_steps: int) -> tuple[Any, Any, Any]:
    """AdamW (or bitsandbytes' paged AdamW) over the trainable weights, the schedule, and the
    model and optimizer prepared by accelerate (DDP / DeepSpeed / FSDP wrapping)."""
    from transformers import get_scheduler

    training = run.config["training"]
    params = [p for p in model.parameters() if p.requires_grad]
    decay = float(training["weight_decay"])
    groups = [{"params": params, "weight_decay": decay}]
    if decay > 0:  # no decay on biases and norms
        groups = [
            {"params": [p for p in params if p.ndim >= 2], "weight_decay": decay},
            {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
        ]
    opt_kwargs = {
        "lr": float(training["learning_rate"]),
        "betas": (float(training["adam_beta1"]), float(training["adam_beta2"])),
        "eps": float(training["adam_epsilon"]),
    }
    if training["optimizer"] == "adamw":
        optimizer = torch.optim.AdamW(groups, **opt_kwargs)
    else:
        import bitsandbytes as bnb

        paged = bnb.optim.PagedAdamW8bit if training["optimizer"] == "paged_adamw_8bit" else bnb.optim.PagedAdamW32bit
        optimizer = paged(groups, **opt_kwargs)
    scheduler = get_scheduler(
        training["lr_scheduler"],
        optimizer,
        num_warmup_steps=math.ceil(float(training["warmup_ratio"]) * total_steps),
        num_training_steps=total_steps,
    )
    model, optimizer = run.accelerator.prepare(model, optimizer)
    return model, optimizer, scheduler


def seed_stage(run: Run, stage: int) -> None:
    """Seed every RNG from (seed, stage) before a stage's first step: stage 2 run on its own then
    draws the same dropout masks as straight after stage 1 (--resume restores the saved states)."""
    from accelerate.utils import set_seed

    set_seed(int(run.config["seed"]) + stage - 1)


def resume_position(run: Run, stage: int, scheduler: Any, batches: StageBatches) -> int:
    """On --resume, load the latest complete checkpoint of the stage; the step to start at."""
    checkpoints = find_checkpoints(run.out / f"stage{stage}") if run.resume else []
    if not checkpoints:
        return 0
    latest = checkpoints[-1]
    state = integrity.check_checkpoint(latest)  # every file as long as when it was written
    if state.get("steps_per_epoch") != batches.steps_per_epoch or state.get("total_steps") != batches.total_steps:
        raise ConfigError(
            f"{latest}: the data or batching changed since the checkpoint "
            f"({state.get('steps_per_epoch')}/{state.get('total_steps')} steps then, "
            f"{batches.steps_per_epoch}/{batches.total_steps} now)"
        )
    run.accelerator.load_state(str(latest / "state"))  # weights, optimizer, RNG states
    scheduler.load_state_dict(torch.load(latest / "scheduler.pt", weights_only=True))
    start_step = int(state["step"])
    run.log.write("resumed", stage=stage, step=start_step, checkpoint=str(latest))
    run.accelerator.print(f"[stage {stage}] resumed from {latest} at step {start_step}")
    return start_step


def write_run_info(run: Run, stage: int, batches: StageBatches, memory: performance.CheckpointPlan) -> None:
    """stage<N>/run_info.json (how the stage runs, with versions) and the stage_start event."""
    accelerator, attention = run.accelerator, run.attention
    if run.main:
        info = {
            "stage": stage,
            "world_size": accelerator.num_processes,
            "device": str(accelerator.device),
            "device_name": torch.cuda.get_device_name(accelerator.device) if accelerator.device.type == "cuda" else None,
            "precision": run.precision,
            "distributed_type": str(accelerator.distributed_type),
            "attn_implementation": attention.implementation if attention else None,
            "packing_layout": batches.layout if batches.packing else None,
            "attention_reason": attention.reason if attention else None,
            "gradient_checkpointing": asdict(memory),
            "samples": len(batches.samples),
            "steps_per_epoch": batches.steps_per_epoch,
            "total_steps": batches.total_steps,
            "effective_batch": batches.batch_size * batches.window,
            "base": run.base,
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": version("transformers"),
            "peft": version("peft"),
            "accelerate": version("accelerate"),
        }
        path = run.out / f"stage{stage}" / "run_info.json"
        path.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    run.log.write(
        "stage_start",
        stage=stage,
        samples=len(batches.samples),
        steps_per_epoch=batches.steps_per_epoch,
        total_steps=batches.total_steps,
        gradient_checkpointing=memory.checkpointed,
    )


# ---- loop ---------------------------------------------------------------------------------


def train_loop(
    run: Run, model: Any, optimizer: Any, scheduler: Any, batches: StageBatches, start_step: int
) -> dict[str, Any]:
    """The stage's optimizer steps from `start_step`: one log line per `logging_steps` (loss, lr,
    tokens, tokens/s, MFU, peak memory), checkpoints every `save_steps`, a progress bar. Returns
    the stage's summary (`interrupted` when `stop_after_steps` ended it early)."""
    training, accelerator, stage = run.config["training"], run.accelerator, batches.stage
    head = accelerator.unwrap_model(model).get_output_embeddings()  # logits only where labels are
    _trainable, parameters = accelerator.unwrap_model(model).get_nb_trainable_parameters()
    meter = performance.Throughput.for_device(parameters, accelerator.device, accelerator.num_processes)
    save_steps, total_steps = int(training["save_steps"] or 0), batches.total_steps
    losses: dict[int, float] = {}
    result: dict[str, Any] = {}
    current_epoch, windows = -1, []
    progress = _progress(run.main and bool(training["progress"]))
    task = progress.add_task(f"stage {stage}", total=total_steps, completed=start_step, info="")
    with progress:
        for step in range(start_step, total_steps):
            started = time.perf_counter()
            epoch, index = divmod(step, batches.steps_per_epoch)
            if epoch != current_epoch:
                current_epoch, windows = epoch, batches.windows(epoch)
            figures = optimizer_step(run, model, head, optimizer, scheduler, batches, windows[index])
            elapsed = time.perf_counter() - started
            rates = meter.step(figures["tokens"], elapsed)
            run.steps_this_call += 1
            done = step + 1
            losses[done] = figures["loss"]
            if done % int(training["logging_steps"]) == 0 or done == total_steps:
                record = {"epoch": round(step / batches.steps_per_epoch, 4), **figures, **rates, "step_time_s": elapsed}
                run.log.write("step", stage=stage, step=done, **record)
                run.trackers.log(stage, done, record)
            info = f"loss {figures['loss']:.4f}  lr {figures['lr']:.2e}  {rates['tokens_per_s']:,.0f} tok/s"
            progress.update(task, advance=1, info=info)
            stop = run.stop_after_steps is not None and run.steps_this_call >= run.stop_after_steps and done < total_steps
            if (save_steps and done % save_steps == 0 and done < total_steps) or stop:
                _save_checkpoint(run, model, scheduler, stage, done, batches)
            if stop:
                run.log.write("interrupted", stage=stage, step=done)
                result["interrupted"] = True
                break
    result.update(smoothed_loss(losses), **meter.summary(), total_steps=total_steps, steps_per_epoch=batches.steps_per_epoch)
    result.update(samples=len(batches.samples), attention=run.attention.implementation if run.attention else None)
    return result


def smoothed_loss(losses: dict[int, float]) -> dict[str, Any]:
    """The loss at a stage's start and end, each the mean over the same number of steps (a quarter
    of those trained, 1 to 10): one step's loss swings with its batch, so a first and a last step
    alone can read like divergence while the mean falls. Keyed by step: a resumed stage says so."""
    steps = sorted(losses)  # never empty: a stage trains at least one step in each call
    n = max(1, min(10, len(steps) // 4))
    head, tail = steps[:n], steps[-n:]
    first, last = (f"{chosen[0]}-{chosen[-1]}" if n > 1 else str(chosen[0]) for chosen in (head, tail))
    return {
        "loss_start": sum(losses[s] for s in head) / n,
        "loss_end": sum(losses[s] for s in tail) / n,
        "loss_smoothing": f"mean over steps {first} (start) and steps {last} (end)",
    }


def optimizer_step(
    run: Run, model: Any, head: Any, optimizer: Any, scheduler: Any, batches: StageBatches, window: list[list[list[int]]]
) -> dict[str, Any]:
    """One optimizer step over this process's share of the window: forward and backward per
    micro-batch (logits only at labelled positions), clipping, the update. Every label token of
    the window weighs the same, however it is split into micro-batches and processes."""
    accelerator, training = run.accelerator, run.config["training"]
    grad_accum = int(training["gradient_accumulation_steps"])
    rank = accelerator.process_index
    mine = window[rank * grad_accum : (rank + 1) * grad_accum]
    micro_batches = [batches.collate(rows) for rows in mine]
    local = torch.tensor(
        [sum(label_token_count(b) for b in micro_batches), batches.tokens(mine)],
        device=accelerator.device,
        dtype=torch.float64,
    )
    label_tokens, real_tokens = accelerator.reduce(local, reduction="sum").tolist()
    # accelerate divides by grad_accum and DDP averages over processes: undo both, then
    # divide by the window's label tokens.
    scale = grad_accum * accelerator.num_processes / max(label_tokens, 1.0)
    model.train()
    loss_sum = torch.zeros((), device=accelerator.device, dtype=torch.float64)
    for batch in micro_batches:
        batch = {k: v.to(accelerator.device) for k, v in batch.items()}
        with accelerator.accumulate(model):
            summed = performance.labelled_loss_sum(model, head, batch)
            accelerator.backward(summed * scale)
            loss_sum += summed.detach().double()
    grad_norm = None
    max_grad_norm = float(training["max_grad_norm"])
    if accelerator.sync_gradients and max_grad_norm > 0:
        grad_norm = accelerator.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    lr = scheduler.get_last_lr()[0]
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return {
        "loss": accelerator.reduce(loss_sum, reduction="sum").item() / max(label_tokens, 1.0),
        "lr": lr,
        "tokens": int(real_tokens),
        "label_tokens": int(label_tokens),
        "grad_norm": None if grad_norm is None else float(grad_norm),
    }


# ---- save ---------------------------------------------------------------------------------


def save_stage(run: Run, model: Any, stage: int, result: dict[str, Any]) -> Any:
    """The stage's adapter (with its marker), the log line, and the model unwrapped for the next
    stage (which prepares a new optimizer, and engine)."""
    accelerator = run.accelerator
    stage_dir = run.out / f"stage{stage}"
    adapter_dir = stage_dir / "adapter"
    marker = {  # `_save_adapter` adds the sizes of the files it wrote
        "stage": stage,
        "steps": result["total_steps"],
        "recipe": run.config["name"],
        "eval": eval_record(run.config, run.base),  # how to evaluate it (taiyi_bench.finetune.adapter_eval)
        # what its data holds of the evaluation splits (taiyi_bench.harness.contamination.adapter_report)
        "contamination": os.path.relpath(run.out / CONTAMINATION_REPORT, adapter_dir),
    }
    _save_adapter(accelerator, model, run.tokenizer, adapter_dir, marker)
    result["adapter"] = str(adapter_dir)
    kept = ("loss_start", "loss_end", "loss_smoothing", "tokens_per_s", "mfu", "peak_mem_mb")
    run.log.write("stage_end", stage=stage, adapter=str(adapter_dir), **{k: result[k] for k in kept})
    accelerator.print(
        f"[stage {stage}] loss {result['loss_start']:.4f} -> {result['loss_end']:.4f}, {result['loss_smoothing']}; "
        f"adapter saved to {adapter_dir}"
    )
    if run.main:  # the stage is finished: its mid-stage checkpoints are no longer needed
        shutil.rmtree(stage_dir / "checkpoints", ignore_errors=True)
    model = accelerator.unwrap_model(model)
    accelerator.free_memory()
    return model


def finish_run(run: Run) -> dict[str, Any]:
    """The optional merged model (base + the last stage's adapter) and the end event."""
    accelerator = run.accelerator
    last_adapter = run.out / f"stage{run.stages[-1]}" / "adapter"
    if run.config.get("merge") and run.main:
        integrity.check_adapter(last_adapter, "--merge: the last stage's adapter")
        merged = merge_adapter(
            run.base,
            last_adapter,
            last_adapter.parent / "merged",
            trust_remote_code=bool(run.config["model"]["trust_remote_code"]),
            dtype=torch.bfloat16 if run.precision == "bf16" else torch.float32,
        )
        run.summary["merged"] = str(merged)
        run.log.write("merged", path=str(merged))
    accelerator.wait_for_everyone()
    run.log.write("end", summary=run.summary)
    accelerator.end_training()
    return run.summary


def _save_checkpoint(run: Run, model: Any, scheduler: Any, stage: int, step: int, batches: StageBatches) -> None:
    """A resumable checkpoint: accelerate state (trainable weights, optimizer, RNG), the scheduler,
    the position, and the adapter (so a checkpoint is also evaluable). Written to a temporary
    name and renamed, so a crash mid-save leaves no half checkpoint behind."""
    accelerator = run.accelerator
    stage_dir = run.out / f"stage{stage}"
    folder = stage_dir / "checkpoints"
    final = folder / f"step-{step:06d}"
    tmp = folder / f".step-{step:06d}.tmp"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp / "state"))
    _save_adapter(accelerator, model, run.tokenizer, tmp / "adapter", None)
    if accelerator.is_main_process:
        torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
        state = {
            "step": step, "steps_per_epoch": batches.steps_per_epoch, "total_steps": batches.total_steps,
            "files": integrity.recorded_sizes(tmp),  # checked on --resume (taiyi_bench.harness.integrity)
        }
        (tmp / CHECKPOINT_MARKER).write_text(json.dumps(state) + "\n", encoding="utf-8")
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        keep = int(run.config["training"]["save_total_limit"])
        for old in find_checkpoints(stage_dir)[:-keep] if keep > 0 else []:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    run.log.write("checkpoint", stage=stage, step=step, path=str(final))


def _save_adapter(accelerator: Any, model: Any, tokenizer: Any, directory: Path, marker: dict | None) -> None:
    """The PEFT adapter (adapter_config.json + adapter_model.safetensors) and the tokenizer:
    what `lm_eval --model hf --model_args pretrained=<base>,peft=<directory>` loads."""
    state_dict = accelerator.get_state_dict(model)  # gathers ZeRO-3 / FSDP shards
    if accelerator.is_main_process:
        unwrapped = accelerator.unwrap_model(model)
        unwrapped.save_pretrained(str(directory), state_dict=state_dict, safe_serialization=True)
        tokenizer.save_pretrained(str(directory))
        if marker is not None:  # last, with the sizes of what was written before it
            marker = {**marker, "files": integrity.recorded_sizes(directory)}
            atomic_write_text(directory / STAGE_MARKER, json.dumps(marker, indent=2) + "\n")
    accelerator.wait_for_everyone()


def merge_adapter(
    base: str, adapter_dir: str | Path, out_dir: str | Path, *, trust_remote_code: bool = False,
    dtype: torch.dtype = torch.float32,
) -> Path:
    """Base + adapter merged into one plain model directory (never from 4-bit weights: the base
    is reloaded in `dtype`), with the tokenizer: `lm_eval --model_args pretrained=<out_dir>`."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out_dir = Path(out_dir)
    integrity.check_adapter(adapter_dir, "merge: the adapter")
    model = AutoModelForCausalLM.from_pretrained(resolve_base(base), dtype=dtype, trust_remote_code=trust_remote_code)
    merged = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    merged.save_pretrained(str(out_dir), safe_serialization=True)
    AutoTokenizer.from_pretrained(str(adapter_dir), trust_remote_code=trust_remote_code).save_pretrained(str(out_dir))
    return out_dir


# --------------------------------------------------------------------------- display


def _progress(enabled: bool) -> Any:
    from rich import progress as rp

    return rp.Progress(
        rp.TextColumn("[bold]{task.description}"), rp.BarColumn(), rp.MofNCompleteColumn(), rp.TimeElapsedColumn(),
        rp.TimeRemainingColumn(), rp.TextColumn("{task.fields[info]}"), disable=not enabled,
    )


def _print_data_report(accelerator: Any, stage: int, mixture: data_mod.Mixture, encode_report: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=True)
    if not console.is_terminal:
        console.width = 120  # logs and CI: do not squeeze the table to 80 columns
    table = Table(title=f"stage {stage} data ({len(mixture.conversations)} samples)")
    for column in ("dataset", "category", "origin", "available", "cap", "weight", "used", "truncated", "dropped"):
        table.add_column(column)
    for r in mixture.datasets:
        counts = encode_report.per_dataset.get(r.dataset, {})
        dropped = counts.get("dropped_overlong", 0) + counts.get("dropped_no_answer_left", 0)
        origin = r.origin if r.origin in ("samples", "data") else Path(r.origin).name
        table.add_row(r.dataset, r.category, origin, *map(str, (r.available, r.cap)), f"{r.weight:g}",
                      *map(str, (r.used, counts.get("truncated", 0), dropped)))
    console.print(table)
    if encode_report.truncated or encode_report.dropped_overlong or encode_report.dropped_no_answer_left:
        console.print(
            f"[yellow]over-long samples (max_length {encode_report.max_length}): "
            f"{encode_report.truncated} truncated, {encode_report.dropped_overlong} dropped, "
            f"{encode_report.dropped_no_answer_left} dropped with no answer left after truncation[/yellow]"
        )
    if mixture.uses_samples:
        console.print(
            "[bold red]THIS RUN TRAINS ON THE BUNDLED SAMPLES (a few dozen team-written examples per set), "
            "not the real data sets: pass --data-dir DIR (or set $TAIYI_DATA_DIR).[/bold red]"
        )
    if mixture.skipped_categories:
        console.print(f"not in stage {stage}: {mixture.skipped_categories}")
