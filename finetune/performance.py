"""How the recipe runs fast, and how fast it ran: the attention path for packed rows
(`choose_attention`), gradient checkpointing sized to free memory (`plan_checkpointing`), logits
only where labels are (`labelled_loss_sum`), and tokens/s, MFU and peak memory (`Throughput`)."""

from __future__ import annotations

import math
import re
import resource
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from taiyi_bench.finetune.encoding import IGNORE_INDEX
from taiyi_bench.harness.errors import ConfigError

# --------------------------------------------------------------------------- attention path


@dataclass(frozen=True)
class AttentionPlan:
    """The attention implementation the model is loaded with and, when packing, the layout of
    packed rows (`taiyi_bench.finetune.encoding.collate_packed`)."""

    implementation: str | None  # None = transformers' default
    layout: str | None  # None when not packing
    reason: str


def flash_attn_available() -> bool:
    from transformers.utils import is_flash_attn_2_available

    return bool(is_flash_attn_2_available())


def transformers_reads_packed_positions() -> bool:
    """Whether transformers keeps packed samples apart from restarting position ids alone
    (its mask builders split rows where the position ids stop increasing by one)."""
    try:
        from transformers import masking_utils
    except ImportError:
        return False
    return hasattr(masking_utils, "find_packed_sequence_indices")


def flex_attention_trains(device: torch.device, dtype: torch.dtype = torch.bfloat16) -> tuple[bool, str]:
    """Probe: one compiled flex_attention forward and backward with a two-document block mask on
    `device`. Compilation needs a working toolchain and torch's flex kernels have no backward on
    some devices (CPU), so asking the device is the only reliable check."""
    try:
        from torch.nn.attention.flex_attention import create_block_mask, flex_attention
    except ImportError:
        return False, f"torch {torch.__version__} has no flex_attention (needs torch >= 2.5)"
    if not transformers_reads_packed_positions():
        return False, "this transformers cannot build a document mask from position ids"
    try:
        document = torch.tensor([0] * 48 + [1] * 80, device=device)

        def same_document_causal(batch: Any, head: Any, q_index: Any, kv_index: Any) -> Any:
            return (document[q_index] == document[kv_index]) & (kv_index <= q_index)

        block_mask = create_block_mask(same_document_causal, 1, None, 128, 128, device=device)
        query = torch.randn(1, 2, 128, 16, device=device, dtype=dtype, requires_grad=True)
        torch.compile(flex_attention)(query, query, query, block_mask=block_mask).sum().backward()
    except Exception as exc:  # any failure means: not on this machine
        return False, f"flex_attention failed a forward/backward probe ({type(exc).__name__}: {str(exc)[:160]})"
    return True, "flex_attention trained in a probe"


def plan_attention(
    requested: str | None,
    *,
    packing: bool,
    cuda: bool,
    flash: bool,
    flex: tuple[bool, str] | None,
    native: bool = True,
) -> AttentionPlan:
    """The decision, given what the machine offers (`flex` = the probe's answer, None = not
    probed). `requested` None or "auto" chooses; any other value is honoured or refused.
    Remote modelling code (`native=False`) keeps its own attention under auto."""
    flex_trains, why = flex if flex is not None else (False, "not probed")
    if requested in (None, "auto"):
        if not native:
            return AttentionPlan(None, None, "remote modelling code: its own attention")
        if cuda and flash:
            layout = "flatten" if packing else None
            return AttentionPlan("flash_attention_2", layout, "flash-attn installed: variable-length kernels")
        if not packing:
            return AttentionPlan(None, None, "no packing: transformers' default (sdpa) with the padding mask")
        if not cuda:
            return AttentionPlan("sdpa", "mask4d", "CPU: sdpa with a dense block-diagonal 4-D mask")
        if flex_trains:
            return AttentionPlan("flex_attention", "positions", "flex_attention with a document block mask (no dense mask)")
        return AttentionPlan("sdpa", "mask4d", f"sdpa with a dense 4-D mask; flex_attention unusable: {why}")
    if "flash" in requested and not (cuda and flash):
        raise ConfigError(f"model.attn_implementation={requested} needs a CUDA GPU and flash-attn; use auto (or sdpa)")
    if requested == "flex_attention" and not flex_trains:
        raise ConfigError(f"model.attn_implementation=flex_attention cannot train here: {why}; use auto")
    if not packing:
        return AttentionPlan(requested, None, "as configured")
    if "flash" in requested:
        return AttentionPlan(requested, "flatten", "as configured: varlen kernels on one flattened row")
    if requested == "flex_attention":
        return AttentionPlan(requested, "positions", "as configured: document block mask")
    if requested in ("eager", "sdpa"):
        return AttentionPlan(requested, "mask4d", "as configured: dense block-diagonal 4-D mask")
    raise ConfigError(f"format.packing supports eager, sdpa, flex_attention and flash attention, not {requested!r}")


def choose_attention(
    requested: str | None, *, packing: bool, device: torch.device, dtype: torch.dtype, native: bool = True
) -> AttentionPlan:
    """`plan_attention` with the machine's answers; probes flex_attention only when it could
    be chosen (a GPU without flash-attn, or flex_attention asked for)."""
    cuda = device.type == "cuda"
    flash = cuda and flash_attn_available()
    auto = requested in (None, "auto")
    wants_flex = requested == "flex_attention" or (auto and native and packing and cuda and not flash)
    flex = flex_attention_trains(device, dtype) if wants_flex else None
    return plan_attention(requested, packing=packing, cuda=cuda, flash=flash, flex=flex, native=native)


# --------------------------------------------------------------------------- memory policy


@dataclass(frozen=True)
class CheckpointPlan:
    """Which decoder layers recompute their activations in the backward pass: every `every`-th
    (0 = none, 1 = all)."""

    setting: Any  # what the recipe asked: false | true | auto | k
    every: int
    layers: int
    checkpointed: int
    reason: str
    estimate_gb: dict[str, float] = field(default_factory=dict)


def activation_bytes_per_token_layer(model_config: Any, *, bytes_per_value: int, lora_dropout: float) -> float:
    """Estimated bytes one token leaves saved for the backward pass in one decoder layer.

    Counted from what autograd keeps in a Llama/Qwen-style layer trained with LoRA on every
    linear layer (h = hidden size, kv = key/value width, I = MLP width, 16-bit values):
      norms (fp32 input + 16-bit output, twice)      12h
      attention (q, k, v, output, o_proj input)       6h + 4kv
      SwiGLU MLP (gate, up, activation, product)      8I
      LoRA input copies (q, k, v, o, gate, up, down)  2(6h + I), +1 byte each for dropout masks
    = 30h + 4kv + 10I (+ 6h + I with dropout) bytes, scaled for 32-bit runs. For the
    Qwen2.5-7B shape with dropout that is 339 KB; the H200 run of that shape (87.1 GB peak for
    8,192 tokens a micro-batch, no checkpointing) leaves about 290 KB after weights, logits and
    optimizer states: the estimate errs on the safe side.
    """
    hidden = int(model_config.hidden_size)
    heads = int(getattr(model_config, "num_attention_heads", 1) or 1)
    head_dim = int(getattr(model_config, "head_dim", None) or hidden // heads)
    kv = int(getattr(model_config, "num_key_value_heads", None) or heads) * head_dim
    mlp = int(getattr(model_config, "intermediate_size", None) or 4 * hidden)
    sixteen_bit = 30 * hidden + 4 * kv + 10 * mlp
    masks = (6 * hidden + mlp) if lora_dropout > 0 else 0
    return sixteen_bit * bytes_per_value / 2 + masks


def plan_checkpointing(
    setting: Any,
    *,
    cuda: bool,
    layers: int,
    per_layer_bytes: float | None,
    layer_input_bytes: float,
    fixed_bytes: float,
    free_bytes: float | None,
    total_bytes: float | None,
) -> CheckpointPlan:
    """The checkpointing of one stage. `per_layer_bytes` / `layer_input_bytes`: activations of
    the whole micro-batch in one layer, without / with checkpointing (None = shape unknown);
    `fixed_bytes`: what else the step allocates (logits, gradients, optimizer states).

    auto: off when all activations fit into free memory less a margin (10% of the device and
    1 GiB); else the largest k such that checkpointing layers 0, k, 2k, ... fits (one
    checkpointed layer is recomputed at a time, so its activations count once more); every
    layer when nothing fits. On a CPU auto is off (the memory is the host's)."""
    if setting is False or setting is None:
        return CheckpointPlan(setting, 0, layers, 0, "off as configured")
    if setting is not True and setting != "auto":
        every = int(setting)
        return CheckpointPlan(setting, every, layers, _count(layers, every), f"every {every} layer(s) as configured")
    if setting is True:
        return CheckpointPlan(setting, 1, layers, layers, "all layers as configured")
    if not cuda:
        return CheckpointPlan(setting, 0, layers, 0, "auto on CPU: off")
    if per_layer_bytes is None or free_bytes is None or total_bytes is None:
        return CheckpointPlan(setting, 1, layers, layers, "auto: model shape or free memory unknown, all layers")
    budget = free_bytes - (0.10 * total_bytes + 2**30)

    def need(every: int) -> float:
        done = _count(layers, every)
        recompute = per_layer_bytes if done else 0.0
        return (layers - done) * per_layer_bytes + done * layer_input_bytes + recompute + fixed_bytes

    gb = {"free": free_bytes / 1e9, "budget": budget / 1e9, "activations_all_layers": layers * per_layer_bytes / 1e9}
    if need(0) <= budget:
        return CheckpointPlan(setting, 0, layers, 0, "auto: activations fit, off", {**gb, "need": need(0) / 1e9})
    for every in range(layers, 0, -1):  # fewest checkpointed layers first
        if need(every) <= budget:
            done = _count(layers, every)
            reason = f"auto: activations exceed free memory; every {every} layer(s) ({done} of {layers})"
            return CheckpointPlan(setting, every, layers, done, reason, {**gb, "need": need(every) / 1e9})
    return CheckpointPlan(setting, 1, layers, layers, "auto: even all layers may not fit; all layers", {**gb, "need": need(1) / 1e9})


def _count(layers: int, every: int) -> int:
    return 0 if every <= 0 else math.ceil(layers / every)


def decoder_layers(model: Any) -> list[Any]:
    """The repeated blocks transformers can checkpoint one by one (empty for remote code)."""
    try:
        from transformers.modeling_layers import GradientCheckpointingLayer
    except ImportError:
        return []
    return [m for m in model.modules() if isinstance(m, GradientCheckpointingLayer)]


def apply_checkpointing(model: Any, every: int) -> int:
    """Turn recomputation on for decoder layers 0, every, 2*every, ... (0 = off); returns how
    many layers recompute. Non-reentrant checkpointing: works with frozen inputs and DDP."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if every <= 0:
        active = getattr(base, "is_activation_checkpointing", None)  # transformers >= 5.x
        if active is None:
            active = getattr(base, "is_gradient_checkpointing", False)
        if active:
            (getattr(base, "activation_checkpointing_disable", None) or base.gradient_checkpointing_disable)()
        return 0
    kwargs = {"use_reentrant": False}
    if hasattr(base, "activation_checkpointing_enable"):
        base.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        base.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    layers = decoder_layers(base)
    for index, layer in enumerate(layers):
        layer.gradient_checkpointing = index % every == 0
    return sum(bool(layer.gradient_checkpointing) for layer in layers) if layers else -1


def device_memory(device: torch.device) -> tuple[float | None, float | None]:
    """(free, total) bytes of a CUDA device, counting memory torch has cached but not used."""
    if device.type != "cuda":
        return None, None
    free, total = torch.cuda.mem_get_info(device)
    cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    return float(free + cached), float(total)


# --------------------------------------------------------------------------- loss


def token_loss_sum(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Summed next-token cross-entropy over label tokens (normalised by the caller, over the
    whole accumulation window, so that every label token weighs the same)."""
    shifted = logits[..., :-1, :].float()
    targets = labels[..., 1:].to(shifted.device)
    return F.cross_entropy(
        shifted.reshape(-1, shifted.size(-1)), targets.reshape(-1), ignore_index=IGNORE_INDEX, reduction="sum"
    )


@contextmanager
def _output_layer_sees(head: torch.nn.Module, keep: torch.Tensor) -> Iterator[None]:
    """While inside, `head` receives only the hidden states of positions where `keep` [B, L-1]
    is true (flattened to [N, hidden]), so it computes N rows of logits instead of B x L."""

    def select(_module: torch.nn.Module, args: tuple) -> tuple:
        hidden = args[0]
        return (hidden[:, :-1][keep.to(hidden.device)], *args[1:])

    handle = head.register_forward_pre_hook(select)
    try:
        yield
    finally:
        handle.remove()


def labelled_loss_sum(model: Any, head: torch.nn.Module | None, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """`token_loss_sum` of a forward pass, computing logits only where the next token carries a
    label. `head` is the model's output layer (`get_output_embeddings()` of the unwrapped model);
    None falls back to full logits. The call goes through `model` itself, so DDP, DeepSpeed and
    FSDP wrappers run their hooks as usual."""
    inputs = dict(batch)
    labels = inputs.pop("labels")
    if head is None:
        return token_loss_sum(model(**inputs, use_cache=False).logits, labels)
    keep = labels[:, 1:] != IGNORE_INDEX
    targets = labels[:, 1:][keep]
    with _output_layer_sees(head, keep):
        logits = model(**inputs, use_cache=False).logits
    return F.cross_entropy(logits.float(), targets.to(logits.device), reduction="sum")


# --------------------------------------------------------------------------- throughput

# Dense (no sparsity) bf16 tensor-core peaks in TFLOP/s, from the vendors' data sheets, keyed by
# (chip, variant) as they appear in `torch.cuda.get_device_name()`; variant None = any other.
PEAK_BF16_TFLOPS: dict[tuple[str, str | None], float] = {
    ("B200", None): 2250.0,
    ("H200", "NVL"): 835.0,
    ("H200", None): 989.0,  # SXM
    ("GH200", None): 989.0,
    ("H100", "PCIE"): 756.0,
    ("H100", "NVL"): 835.0,
    ("H100", None): 989.0,  # SXM
    ("A100", None): 312.0,
    ("A800", None): 312.0,
    ("L40S", None): 362.0,
    ("L40", None): 181.0,
    ("L4", None): 121.0,
    ("A10", None): 125.0,
    ("A6000", None): 155.0,
    ("4090", None): 165.0,
}


def peak_bf16_flops(device_name: str | None) -> float | None:
    """The device's dense bf16 peak in FLOP/s, or None when it is not in the table (or a CPU)."""
    if not device_name:
        return None
    words = [w.upper() for w in re.split(r"[\s\-_]+", device_name) if w]
    for (chip, variant), tflops in PEAK_BF16_TFLOPS.items():
        if chip in words and (variant is None or variant in words):
            return tflops * 1e12
    return None


def mfu(tokens_per_s: float, parameters: int, peak_flops: float | None, devices: int = 1) -> float | None:
    """Model FLOPs utilisation = 6 * N * tokens/s / (devices * peak).

    6N counts a token's matrix-multiply FLOPs over all N parameters: 2N forward, 4N backward.
    With LoRA the frozen weights get no weight gradient, so the work done is nearer 4N; 6N is
    kept because it is the convention published figures use. Attention's sequence-length term
    is not counted. None when the peak is unknown (CPU, unlisted GPU)."""
    if peak_flops is None or tokens_per_s <= 0:
        return None
    return 6.0 * parameters * tokens_per_s / (devices * peak_flops)


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory so far: CUDA's max allocated, else the process's max resident set size."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    # ru_maxrss is KiB on Linux, bytes on macOS.
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


@dataclass
class Throughput:
    """Tokens/s and MFU per step and over a stage. The stage figure leaves out its first step
    (allocations, kernel compilation) unless that is the only one."""

    parameters: int
    device: torch.device
    devices: int = 1
    peak_flops: float | None = None
    steps: list[tuple[float, float]] = field(default_factory=list)  # (tokens, seconds)

    @classmethod
    def for_device(cls, parameters: int, device: torch.device, devices: int = 1) -> Throughput:
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else None
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        return cls(parameters, device, devices, peak_bf16_flops(name))

    def step(self, tokens: float, seconds: float) -> dict[str, Any]:
        self.steps.append((tokens, seconds))
        return self._figures(tokens / seconds if seconds > 0 else 0.0)

    def summary(self) -> dict[str, Any]:
        timed = self.steps[1:] or self.steps
        seconds = sum(s for _, s in timed)
        return {**self._figures(sum(t for t, _ in timed) / seconds if seconds > 0 else 0.0), "steps": len(self.steps)}

    def _figures(self, tokens_per_s: float) -> dict[str, Any]:
        share = mfu(tokens_per_s, self.parameters, self.peak_flops, self.devices)
        return {
            "tokens_per_s": tokens_per_s,
            "mfu": None if share is None else round(share, 4),
            "peak_mem_mb": round(peak_memory_mb(self.device), 1),
        }
