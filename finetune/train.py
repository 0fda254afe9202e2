"""The two-stage LoRA / QLoRA fine-tuning recipe, top to bottom.

    taiyi finetune RECIPE [--stage 1|2|all] [--override key=value ...] [--output-dir DIR] [--resume]
    accelerate launch --config_file finetune/accelerate/<config>.yaml -m finetune RECIPE ...

Read it in order: (1) the run directory and the resolved config, (2) the accelerator and the
device checks, (3) the tokenizer and the model (4-bit, gradient checkpointing, LoRA), then for
each stage (4) the data, (5) the batches, (6) the optimizer and schedule, (7) resuming, (8) the
training loop with logging and checkpoints, (9) the adapter; finally (10) the optional merge.

Output layout (`<out>` = --output-dir or runs/<recipe name>):
    <out>/resolved_config.yaml          the exact config of the latest invocation
    <out>/train_log.jsonl               one JSON object per line: events and per-step metrics
    <out>/stage{1,2}/data_report.json   what each dataset contributed; truncated/dropped counts
    <out>/stage{1,2}/run_info.json      world size, steps, versions
    <out>/stage{1,2}/checkpoints/step-NNNNNN/   resumable (accelerate state + scheduler + position)
    <out>/stage{1,2}/adapter/           the PEFT adapter (lm-eval: pretrained=<base>,peft=<this>)
    <out>/stage2/merged/                base + adapter merged (when `merge: true`)
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import platform
import random
import resource
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from finetune import data as data_mod
from finetune.config import PACKAGE_DIR, to_yaml
from finetune.encoding import (
    EncodedSample,
    collate_packed,
    collate_padded,
    encode_all,
    eod_token_id,
    label_token_count,
    pack_indices,
)
from harness.errors import ConfigError

STAGE_MARKER = "taiyi_stage.json"  # written last into a finished stage's adapter directory
CHECKPOINT_MARKER = "trainer_state.json"  # written last into a finished checkpoint
# Keys that may differ between a run and its resumption (they do not change what is trained).
RESUMABLE_CHANGES = {
    "training.progress",
    "training.save_steps",
    "training.save_total_limit",
    "training.logging_steps",
    "merge",
    "overrides",
    "recipe_source",
    "output_dir",
}


# --------------------------------------------------------------------------- small helpers


def resolve_base(base: str) -> str:
    """`local:smollm2` -> the converted SmolLM2 directory; anything else is passed through."""
    if base == "local:smollm2":
        from harness.local_models import smollm2_dir

        return str(smollm2_dir())
    return base


def recipe_search_dirs(config: dict[str, Any]) -> list[Path]:
    """Where relative data paths of a recipe are looked up after the working directory."""
    source = str(config.get("recipe_source") or "<mapping>")
    return ([] if source.startswith("<") else [Path(source).parent]) + [PACKAGE_DIR]


def token_loss_sum(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Summed next-token cross-entropy over label tokens (normalised by the caller, over the
    whole accumulation window, so that every label token weighs the same)."""
    shifted = logits[..., :-1, :].float()
    targets = labels[..., 1:].to(shifted.device)
    return F.cross_entropy(
        shifted.reshape(-1, shifted.size(-1)), targets.reshape(-1), ignore_index=-100, reduction="sum"
    )


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    # ru_maxrss is KiB on Linux, bytes on macOS.
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


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


def find_checkpoints(stage_dir: Path) -> list[Path]:
    """Complete mid-stage checkpoints of a stage, oldest first."""
    folder = stage_dir / "checkpoints"
    if not folder.is_dir():
        return []
    done = [p for p in folder.iterdir() if p.name.startswith("step-") and (p / CHECKPOINT_MARKER).is_file()]
    return sorted(done, key=lambda p: int(p.name.removeprefix("step-")))


def epoch_windows(
    samples: Sequence[EncodedSample],
    *,
    seed: int,
    stage: int,
    epoch: int,
    batch_size: int,
    window: int,
    packing: bool,
    max_length: int,
    open_bins: int,
) -> list[list[list[list[int]]]]:
    """The optimizer steps of one epoch: windows[step][micro][row] = sample indices of one row.

    A window holds `window` (= grad accumulation x processes) micro-batches of `batch_size`
    rows; a row is one sample, or with packing one pack of samples (at most `max_length`
    tokens). Deterministic in (seed, stage, epoch), so resuming needs only the step number. The
    last window is completed by wrapping around to the start of the epoch's order, so every step
    has the same number of micro-batches (accelerate's accumulation counter stays aligned).
    """
    order = list(range(len(samples)))
    random.Random(f"{seed}:stage{stage}:epoch{epoch}").shuffle(order)
    if packing:
        rows = [
            [order[j] for j in pack]
            for pack in pack_indices([len(samples[i]) for i in order], max_length, open_bins)
        ]
    else:
        rows = [[i] for i in order]
    micro = [rows[k : k + batch_size] for k in range(0, len(rows), batch_size)]
    steps = math.ceil(len(micro) / window)
    return [[micro[(s * window + j) % len(micro)] for j in range(window)] for s in range(steps)]


# --------------------------------------------------------------------------- the recipe


def train(
    config: dict[str, Any],
    *,
    stages: Sequence[int] = (1, 2),
    output_dir: str | Path | None = None,
    resume: bool = False,
    stop_after_steps: int | None = None,
) -> dict[str, Any]:
    """Run the requested stages of a resolved recipe (see `finetune.config.load_recipe`).

    `resume` continues from the latest complete checkpoint (finished stages are skipped).
    `stop_after_steps` ends the run after that many optimizer steps in this invocation, having
    written a checkpoint, as an interruption would (used by the resume test).
    Returns a summary: output paths, steps, first/last loss per stage.
    """
    threads = torch.get_num_threads()
    try:
        return _train(
            config, stages=stages, output_dir=output_dir, resume=resume, stop_after_steps=stop_after_steps
        )
    finally:
        torch.set_num_threads(threads)  # training.num_threads applies to the run only


def _train(
    config: dict[str, Any],
    *,
    stages: Sequence[int] = (1, 2),
    output_dir: str | Path | None = None,
    resume: bool = False,
    stop_after_steps: int | None = None,
) -> dict[str, Any]:
    from accelerate import Accelerator
    from accelerate.utils import DistributedType, set_seed

    # ---- 1. run directory and resolved config ------------------------------------------------
    out = Path(output_dir or config.get("output_dir") or Path("runs") / config["name"]).expanduser()
    config = {**config, "output_dir": str(out)}
    training, fmt, model_cfg, lora_cfg = config["training"], config["format"], config["model"], config["lora"]
    stages = sorted(set(int(s) for s in stages))

    # ---- 2. accelerator and device checks (before any model is loaded) -----------------------
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
        raise ConfigError(
            "4-bit loading / paged optimizers need bitsandbytes: pip install 'taiyi-bench[gpu]'"
        )
    if training["optimizer"].startswith("paged_") and not cuda:
        raise ConfigError(f"training.optimizer={training['optimizer']} needs a CUDA GPU; use adamw on CPU")
    if os.environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() == "true":
        if not cuda:
            raise ConfigError(
                "the DeepSpeed accelerate configs are for GPUs; on CPU launch without --config_file"
            )
        if importlib.util.find_spec("deepspeed") is None:
            raise ConfigError("this accelerate config uses DeepSpeed: pip install 'taiyi-bench[deepspeed]'")
    if os.environ.get("ACCELERATE_USE_FSDP", "").lower() == "true" and not cuda:
        raise ConfigError("the FSDP accelerate config is for GPUs; on CPU launch without --config_file")

    grad_accum = int(training["gradient_accumulation_steps"])
    accelerator = Accelerator(
        mixed_precision={"bf16": "bf16", "fp16": "fp16", "fp32": "no"}[precision],
        gradient_accumulation_steps=grad_accum,
    )
    main = accelerator.is_main_process
    world = accelerator.num_processes
    sharded = accelerator.distributed_type in (DistributedType.DEEPSPEED, DistributedType.FSDP)
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
    set_seed(int(config["seed"]))
    if training["num_threads"] and accelerator.device.type == "cpu":
        torch.set_num_threads(int(training["num_threads"]))  # restored by `train` on return

    if main:
        out.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()
    log = JsonlLog(out / "train_log.jsonl", main)
    saved_config = out / "resolved_config.yaml"
    if resume and saved_config.is_file():
        import yaml

        differences = config_differences(yaml.safe_load(saved_config.read_text(encoding="utf-8")), config)
        if differences:
            raise ConfigError(
                f"--resume: the config differs from the run in {out} in {', '.join(differences)}; "
                "resume with the same recipe and overrides, or start a new --output-dir"
            )
    for stage in stages:
        stage_dir = out / f"stage{stage}"
        if not resume and (find_checkpoints(stage_dir) or (stage_dir / "adapter" / STAGE_MARKER).is_file()):
            raise ConfigError(
                f"{stage_dir} already holds a run of stage {stage}; pass --resume to continue it, "
                "or choose another --output-dir"
            )
    if main:
        saved_config.write_text(to_yaml(config), encoding="utf-8")
    log.write(
        "start",
        stages=stages,
        resume=resume,
        world_size=world,
        precision=precision,
        distributed_type=str(accelerator.distributed_type),
        config_file=str(saved_config),
    )

    # ---- 3. tokenizer and model --------------------------------------------------------------
    from peft import LoraConfig, PeftModel, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = resolve_base(str(model_cfg["base"]))
    trust = bool(model_cfg["trust_remote_code"])
    tokenizer = AutoTokenizer.from_pretrained(base, trust_remote_code=trust, revision=model_cfg["revision"])
    eod_id = eod_token_id(tokenizer, fmt["eod_token"]) if fmt["style"] == "eod" else None
    pad_id = tokenizer.pad_token_id
    if pad_id is None:
        pad_id = eod_id if eod_id is not None else tokenizer.eos_token_id
    if pad_id is None:
        raise ConfigError("the tokenizer has neither a pad nor an eos token; set format.eod_token")

    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[precision]
    load_kwargs: dict[str, Any] = {
        "dtype": dtype,
        "trust_remote_code": trust,
        "revision": model_cfg["revision"],
    }
    if model_cfg["attn_implementation"]:
        load_kwargs["attn_implementation"] = model_cfg["attn_implementation"]
    if quantize:
        from transformers import BitsAndBytesConfig

        load_kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type=model_cfg["bnb_4bit_quant_type"],
            bnb_4bit_use_double_quant=bool(model_cfg["bnb_4bit_use_double_quant"]),
            bnb_4bit_compute_dtype=dtype,
            bnb_4bit_quant_storage=getattr(torch, model_cfg["bnb_4bit_quant_storage"]),
        )
        if not sharded:  # one full copy per GPU (DDP); ZeRO-3 / FSDP place the shards themselves
            load_kwargs["device_map"] = {"": accelerator.local_process_index}
    model = AutoModelForCausalLM.from_pretrained(base, **load_kwargs)
    model.config.use_cache = False  # no KV cache in training (and checkpointing requires it)
    gc_kwargs = {"use_reentrant": False}  # non-reentrant: works with frozen inputs and DDP
    if quantize:
        model = prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=bool(model_cfg["gradient_checkpointing"]),
            gradient_checkpointing_kwargs=gc_kwargs,
        )
    elif model_cfg["gradient_checkpointing"]:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=gc_kwargs)

    attn = getattr(model.config, "_attn_implementation", None) or "eager"
    native = type(model).__module__.startswith("transformers.")
    layout = "flatten" if "flash" in attn else "mask4d"
    if fmt["packing"] and not native:
        raise ConfigError(
            f"format.packing needs a transformers-native architecture whose attention honours packed "
            f"boundaries; {type(model).__name__} is remote code. Set format.packing=false"
        )
    if fmt["packing"] and layout == "mask4d" and attn not in ("eager", "sdpa"):
        raise ConfigError(f"format.packing supports eager, sdpa and flash attention, not {attn!r}")
    mask_dtype = torch.bool if attn == "sdpa" else dtype

    lora_config = LoraConfig(
        r=int(lora_cfg["r"]),
        lora_alpha=int(lora_cfg["alpha"]),
        lora_dropout=float(lora_cfg["dropout"]),
        target_modules=lora_cfg["target_modules"],
        bias=lora_cfg["bias"],
        modules_to_save=lora_cfg["modules_to_save"],
        task_type="CAUSAL_LM",
    )

    # Accelerate checkpoints would store the frozen base weights too (GBs per checkpoint); keep
    # only the trainable (LoRA) tensors. DeepSpeed / FSDP save their own sharded states.
    def keep_trainable(models: list, weights: list, _dir: str) -> None:
        for i in range(len(weights)):
            trainable = {name for name, p in models[i].named_parameters() if p.requires_grad}
            weights[i] = {k: v for k, v in weights[i].items() if k in trainable}

    def load_trainable(models: list, input_dir: str) -> None:
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

    accelerator.register_save_state_pre_hook(keep_trainable)
    accelerator.register_load_state_pre_hook(load_trainable)

    sources = None  # the data is read and rendered once, for both stages
    batch_size = int(training["per_device_batch_size"])  # rows (samples or packs) per micro-batch
    window = grad_accum * world  # micro-batches per optimizer step, over all processes
    summary: dict[str, Any] = {"output_dir": str(out), "base": base, "stages": {}}
    steps_this_call = 0
    interrupted = False

    for stage in stages:
        stage_dir = out / f"stage{stage}"
        adapter_dir = stage_dir / "adapter"
        stage_cfg = config["stages"][stage]
        if resume and (adapter_dir / STAGE_MARKER).is_file():
            log.write("stage_skipped", stage=stage, reason="finished earlier", adapter=str(adapter_dir))
            summary["stages"][stage] = {"adapter": str(adapter_dir), "skipped": True}
            continue
        if main:
            stage_dir.mkdir(parents=True, exist_ok=True)
            (stage_dir / "resolved_config.yaml").write_text(to_yaml(config), encoding="utf-8")

        # The adapter this stage starts from: stage 2 continues stage 1's adapter by default.
        init = stage_cfg.get("init_adapter")
        init_dir = (out / "stage1" / "adapter") if init == "stage1" else (Path(init) if init else None)
        if not isinstance(model, PeftModel):
            if init_dir is not None:
                if not (init_dir / "adapter_config.json").is_file():
                    raise ConfigError(
                        f"stage {stage} starts from the adapter in {init_dir}, which does not exist; "
                        "run stage 1 first or set stages.2.init_adapter (null = a fresh adapter)"
                    )
                model = PeftModel.from_pretrained(model, str(init_dir), is_trainable=True)
            else:
                model = get_peft_model(model, lora_config)
        elif init_dir is not None and init != "stage1":
            from peft import set_peft_model_state_dict
            from safetensors.torch import load_file

            set_peft_model_state_dict(model, load_file(str(init_dir / "adapter_model.safetensors")))
        elif init_dir is None:
            raise ConfigError(
                f"stages.{stage}.init_adapter=null cannot follow another stage in the same call; "
                f"run stage {stage} on its own"
            )
        if main:
            trainable, total = model.get_nb_trainable_parameters()
            accelerator.print(
                f"[stage {stage}] trainable parameters: {trainable:,} of {total:,} "
                f"({100 * trainable / total:.3f}%)"
            )

        # ---- 4. data: mixture for this stage, encoding, report --------------------------------
        if sources is None:
            sources = data_mod.load_sources(config["data"], search_dirs=recipe_search_dirs(config))
        mixture = data_mod.build_mixture(
            sources,
            stage,
            cap=config["data"]["cap"],
            per_dataset=config["data"]["datasets"],
            seed=int(config["data"]["seed"]),
        )
        if not mixture.conversations:
            raise ConfigError(
                f"stage {stage} has no data: none of the recipe's datasets has a category of "
                f"this stage ({sorted(data_mod.categories_for_stage(stage))})"
            )
        samples, encode_report = encode_all(
            tokenizer,
            mixture.conversations,
            style=fmt["style"],
            max_length=int(fmt["max_length"]),
            overlong=fmt["overlong"],
            system=fmt["system"],
            eod_token=fmt["eod_token"],
        )
        if not samples:
            raise ConfigError(
                f"stage {stage}: every sample was dropped as over-long ({encode_report.as_dict()})"
            )
        report = {**mixture.report(), "encoding": encode_report.as_dict()}
        if main:
            (stage_dir / "data_report.json").write_text(
                json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
            )
            _print_data_report(accelerator, stage, mixture, encode_report)
        log.write("data", **report)

        # ---- 5. batches ----------------------------------------------------------------------

        def windows_for(
            epoch: int, _stage: int = stage, _samples: list = samples
        ) -> list[list[list[list[int]]]]:
            return epoch_windows(
                _samples,
                seed=int(config["seed"]),
                stage=_stage,
                epoch=epoch,
                batch_size=batch_size,
                window=window,
                packing=bool(fmt["packing"]),
                max_length=int(fmt["max_length"]),
                open_bins=int(fmt["pack_open_bins"]),
            )

        def collate(rows: list[list[int]], _samples: list = samples) -> dict[str, torch.Tensor]:
            if not fmt["packing"]:
                return collate_padded([_samples[row[0]] for row in rows], pad_id)
            return collate_packed(
                [[_samples[i] for i in row] for row in rows], pad_id, layout=layout, dtype=mask_dtype
            )

        steps_per_epoch = len(windows_for(0))
        total_steps = int(training["max_steps"] or math.ceil(float(stage_cfg["epochs"]) * steps_per_epoch))

        # ---- 6. optimizer and schedule -------------------------------------------------------
        from transformers import get_scheduler

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

            cls = (
                bnb.optim.PagedAdamW32bit
                if training["optimizer"] == "paged_adamw_32bit"
                else bnb.optim.PagedAdamW8bit
            )
            optimizer = cls(groups, **opt_kwargs)
        scheduler = get_scheduler(
            training["lr_scheduler"],
            optimizer,
            num_warmup_steps=math.ceil(float(training["warmup_ratio"]) * total_steps),
            num_training_steps=total_steps,
        )
        model, optimizer = accelerator.prepare(model, optimizer)

        # ---- 7. resume from the latest complete checkpoint of this stage ----------------------
        start_step = 0
        checkpoints = find_checkpoints(stage_dir) if resume else []
        if checkpoints:
            latest = checkpoints[-1]
            state = json.loads((latest / CHECKPOINT_MARKER).read_text(encoding="utf-8"))
            if state["steps_per_epoch"] != steps_per_epoch or state["total_steps"] != total_steps:
                raise ConfigError(
                    f"{latest}: the data or batching changed since the checkpoint "
                    f"({state['steps_per_epoch']}/{state['total_steps']} steps then, "
                    f"{steps_per_epoch}/{total_steps} now)"
                )
            accelerator.load_state(str(latest / "state"))  # weights, optimizer, RNG states
            scheduler.load_state_dict(torch.load(latest / "scheduler.pt", weights_only=True))
            start_step = int(state["step"])
            log.write("resumed", stage=stage, step=start_step, checkpoint=str(latest))
            accelerator.print(f"[stage {stage}] resumed from {latest} at step {start_step}")

        if main:
            info = {
                "stage": stage,
                "world_size": world,
                "device": str(accelerator.device),
                "precision": precision,
                "distributed_type": str(accelerator.distributed_type),
                "attn_implementation": attn,
                "packing_layout": layout if fmt["packing"] else None,
                "samples": len(samples),
                "steps_per_epoch": steps_per_epoch,
                "total_steps": total_steps,
                "effective_batch": batch_size * window,
                "base": base,
                "python": platform.python_version(),
                "torch": torch.__version__,
                "transformers": _version("transformers"),
                "peft": _version("peft"),
                "accelerate": _version("accelerate"),
            }
            (stage_dir / "run_info.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        log.write(
            "stage_start",
            stage=stage,
            samples=len(samples),
            steps_per_epoch=steps_per_epoch,
            total_steps=total_steps,
            start_step=start_step,
        )

        # ---- 8. the training loop ------------------------------------------------------------
        max_grad_norm = float(training["max_grad_norm"])
        save_steps = int(training["save_steps"] or 0)
        first_loss = last_loss = None
        current_epoch, windows = -1, []
        progress = _progress(main and bool(training["progress"]))
        task = progress.add_task(f"stage {stage}", total=total_steps, completed=start_step, info="")
        with progress:
            for step in range(start_step, total_steps):
                started = time.perf_counter()
                epoch, index = divmod(step, steps_per_epoch)
                if epoch != current_epoch:
                    current_epoch, windows = epoch, windows_for(epoch)
                rank = accelerator.process_index
                mine = windows[index][rank * grad_accum : (rank + 1) * grad_accum]  # this process's share
                micro_batches = [collate(rows) for rows in mine]
                local = torch.tensor(
                    [
                        sum(label_token_count(b) for b in micro_batches),
                        sum(len(samples[i]) for rows in mine for row in rows for i in row),
                    ],
                    device=accelerator.device,
                    dtype=torch.float64,
                )
                label_tokens, real_tokens = accelerator.reduce(local, reduction="sum").tolist()
                # Every label token of the window weighs the same, however it is split into
                # micro-batches and processes (accelerate divides by grad_accum, DDP averages).
                scale = grad_accum * world / max(label_tokens, 1.0)
                model.train()
                loss_sum = torch.zeros((), device=accelerator.device, dtype=torch.float64)
                for batch in micro_batches:
                    batch = {k: v.to(accelerator.device) for k, v in batch.items()}
                    labels = batch.pop("labels")
                    with accelerator.accumulate(model):
                        logits = model(**batch, use_cache=False).logits
                        summed = token_loss_sum(logits, labels)
                        accelerator.backward(summed * scale)
                        loss_sum += summed.detach().double()
                grad_norm = None
                if accelerator.sync_gradients and max_grad_norm > 0:
                    grad_norm = accelerator.clip_grad_norm_(model.parameters(), max_grad_norm)
                optimizer.step()
                lr = scheduler.get_last_lr()[0]
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                loss = accelerator.reduce(loss_sum, reduction="sum").item() / max(label_tokens, 1.0)
                elapsed = time.perf_counter() - started
                first_loss = loss if first_loss is None else first_loss
                last_loss = loss
                steps_this_call += 1
                done = step + 1
                if done % int(training["logging_steps"]) == 0 or done == total_steps:
                    log.write(
                        "step",
                        stage=stage,
                        step=done,
                        epoch=round(step / steps_per_epoch, 4),
                        loss=loss,
                        lr=lr,
                        tokens=int(real_tokens),
                        label_tokens=int(label_tokens),
                        tokens_per_s=real_tokens / elapsed,
                        step_time_s=elapsed,
                        grad_norm=None if grad_norm is None else float(grad_norm),
                        peak_mem_mb=round(peak_memory_mb(accelerator.device), 1),
                    )
                progress.update(
                    task, advance=1, info=f"loss {loss:.4f}  lr {lr:.2e}  {real_tokens / elapsed:,.0f} tok/s"
                )
                stop = (
                    stop_after_steps is not None
                    and steps_this_call >= stop_after_steps
                    and done < total_steps
                )
                if (save_steps and done % save_steps == 0 and done < total_steps) or stop:
                    _save_checkpoint(
                        accelerator,
                        model,
                        scheduler,
                        tokenizer,
                        stage_dir,
                        done,
                        steps_per_epoch,
                        total_steps,
                        int(training["save_total_limit"]),
                        log,
                    )
                if stop:
                    interrupted = True
                    break

        summary["stages"][stage] = {
            "first_loss": first_loss,
            "last_loss": last_loss,
            "total_steps": total_steps,
            "steps_per_epoch": steps_per_epoch,
            "samples": len(samples),
        }
        if interrupted:
            log.write("interrupted", stage=stage, step=start_step + steps_this_call)
            summary["interrupted"] = True
            return summary

        # ---- 9. the stage's adapter ----------------------------------------------------------
        _save_adapter(
            accelerator,
            model,
            tokenizer,
            adapter_dir,
            {
                "stage": stage,
                "steps": total_steps,
                "base": base,
                "format": fmt["style"],
                "recipe": config["name"],
            },
        )
        summary["stages"][stage]["adapter"] = str(adapter_dir)
        log.write(
            "stage_end", stage=stage, adapter=str(adapter_dir), first_loss=first_loss, last_loss=last_loss
        )
        accelerator.print(f"[stage {stage}] adapter saved to {adapter_dir}")
        if main:  # the stage is finished: its mid-stage checkpoints are no longer needed
            shutil.rmtree(stage_dir / "checkpoints", ignore_errors=True)
        model = accelerator.unwrap_model(model)
        accelerator.free_memory()  # the next stage prepares a new optimizer (and engine)

    # ---- 10. merged model (optional) ---------------------------------------------------------
    last_adapter = out / f"stage{stages[-1]}" / "adapter"
    if config.get("merge") and main:
        merged = merge_adapter(
            base,
            last_adapter,
            last_adapter.parent / "merged",
            trust_remote_code=trust,
            dtype=torch.bfloat16 if precision == "bf16" else torch.float32,
        )
        summary["merged"] = str(merged)
        log.write("merged", path=str(merged))
    accelerator.wait_for_everyone()
    log.write("end", summary=summary)
    accelerator.end_training()
    return summary


# --------------------------------------------------------------------------- saving


def _save_checkpoint(
    accelerator: Any,
    model: Any,
    scheduler: Any,
    tokenizer: Any,
    stage_dir: Path,
    step: int,
    steps_per_epoch: int,
    total_steps: int,
    keep: int,
    log: JsonlLog,
) -> None:
    """A resumable checkpoint: accelerate state (trainable weights, optimizer, RNG), the scheduler,
    the position, and the adapter (so a checkpoint is also evaluable). Written to a temporary
    name and renamed, so a crash mid-save leaves no half checkpoint behind."""
    folder = stage_dir / "checkpoints"
    final = folder / f"step-{step:06d}"
    tmp = folder / f".step-{step:06d}.tmp"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp / "state"))
    _save_adapter(accelerator, model, tokenizer, tmp / "adapter", None)
    if accelerator.is_main_process:
        torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
        state = {"step": step, "steps_per_epoch": steps_per_epoch, "total_steps": total_steps}
        (tmp / CHECKPOINT_MARKER).write_text(json.dumps(state) + "\n", encoding="utf-8")
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        for old in find_checkpoints(stage_dir)[:-keep] if keep > 0 else []:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    log.write("checkpoint", stage=int(stage_dir.name.removeprefix("stage")), step=step, path=str(final))


def _save_adapter(accelerator: Any, model: Any, tokenizer: Any, directory: Path, marker: dict | None) -> None:
    """The PEFT adapter (adapter_config.json + adapter_model.safetensors) and the tokenizer:
    what `lm_eval --model hf --model_args pretrained=<base>,peft=<directory>` loads."""
    state_dict = accelerator.get_state_dict(model)  # gathers ZeRO-3 / FSDP shards
    if accelerator.is_main_process:
        unwrapped = accelerator.unwrap_model(model)
        unwrapped.save_pretrained(str(directory), state_dict=state_dict, safe_serialization=True)
        tokenizer.save_pretrained(str(directory))
        if marker is not None:
            (directory / STAGE_MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
    accelerator.wait_for_everyone()


def merge_adapter(
    base: str,
    adapter_dir: str | Path,
    out_dir: str | Path,
    *,
    trust_remote_code: bool = False,
    dtype: torch.dtype = torch.float32,
) -> Path:
    """Base + adapter merged into one plain model directory (never from 4-bit weights: the base
    is reloaded in `dtype`), with the tokenizer: `lm_eval --model_args pretrained=<out_dir>`."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out_dir = Path(out_dir)
    model = AutoModelForCausalLM.from_pretrained(
        resolve_base(base), dtype=dtype, trust_remote_code=trust_remote_code
    )
    merged = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    merged.save_pretrained(str(out_dir), safe_serialization=True)
    AutoTokenizer.from_pretrained(str(adapter_dir), trust_remote_code=trust_remote_code).save_pretrained(
        str(out_dir)
    )
    return out_dir


# --------------------------------------------------------------------------- display


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "absent"


class _NoProgress:
    def __enter__(self) -> _NoProgress:
        return self

    def __exit__(self, *args: Any) -> None:
        return None

    def add_task(self, *args: Any, **kwargs: Any) -> int:
        return 0

    def update(self, *args: Any, **kwargs: Any) -> None:
        return None


def _progress(enabled: bool) -> Any:
    if not enabled:
        return _NoProgress()
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
    )


def _print_data_report(accelerator: Any, stage: int, mixture: data_mod.Mixture, encode_report: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=True)
    if not console.is_terminal:
        console = Console(stderr=True, width=120)  # logs and CI: do not squeeze the table to 80 columns
    table = Table(title=f"stage {stage} data ({len(mixture.conversations)} samples)")
    for column in (
        "dataset",
        "category",
        "origin",
        "available",
        "cap",
        "weight",
        "used",
        "truncated",
        "dropped",
    ):
        table.add_column(column)
    for r in mixture.datasets:
        counts = encode_report.per_dataset.get(r.dataset, {})
        dropped = counts.get("dropped_overlong", 0) + counts.get("dropped_no_answer_left", 0)
        table.add_row(
            r.dataset,
            r.category,
            r.origin if r.origin in ("samples", "data") else Path(r.origin).name,
            str(r.available),
            str(r.cap),
            f"{r.weight:g}",
            str(r.used),
            str(counts.get("truncated", 0)),
            str(dropped),
        )
    console.print(table)
    if encode_report.truncated or encode_report.dropped_overlong or encode_report.dropped_no_answer:
        console.print(
            f"[yellow]over-long samples (max_length {encode_report.max_length}): "
            f"{encode_report.truncated} truncated, {encode_report.dropped_overlong} dropped, "
            f"{encode_report.dropped_no_answer} dropped with no answer left after truncation[/yellow]"
        )
    if mixture.uses_samples:
        console.print(
            "[bold red]THIS RUN TRAINS ON THE BUNDLED SAMPLES (a few dozen team-written examples per set), "
            "not the real data sets: set $TAIYI_DATA_DIR or data.tasks.data_dir.[/bold red]"
        )
    if mixture.skipped_categories:
        console.print(f"not in stage {stage}: {mixture.skipped_categories}")
