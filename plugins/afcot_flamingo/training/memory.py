"""The train stage's memory plan: the bytes per GPU a training needs, before anything loads.

The model is built on the meta device from its config (the local one when the weights are here, else the
known architecture of the named release), so parameter counts are exact. Activations come from per-block
constants: the bytes the autograd graph keeps per token for one block in bf16, measured on CPU with
``torch.autograd.graph.saved_tensors_hooks`` (tests/test_memory_plan.py measures them again):

- a Qwen2 decoder layer: ``20 h + 8 i + 4 kv + 4 heads + 4 head_dim + 8`` (weights trained), ``12 h + 6 i + ...``
  (weights frozen: a frozen linear layer keeps no input);
- an AF3 (Whisper) encoder layer: ``18 d + 4 f + 4 heads + 8`` per audio frame (1,500 frames per 30-s window);
- AF2: a gated cross-attention block ``28 h + 33 M`` per text token (M audio tokens), an audio transformer layer
  ``18 d + 2 f + 170`` per audio token, AF-CLAP 286 MB per 10-s window (40 % of it with checkpointed blocks).

With activation checkpointing a block keeps only its input (``2 h`` per token) and one block at a time is
recomputed. The loss keeps ``10`` bytes per logit (bf16 logits, their fp32 copy and its gradient) for one chunk.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

GIB = 2**30
#: the CUDA context, allocator reserve and communication buffers not counted elsewhere
OVERHEAD = 1.5 * GIB
#: AF-CLAP's kept activations for one 10-s window in bf16 (released config), and the share left by checkpointing
CLAP_WINDOW_BYTES, CLAP_CHECKPOINTED = 286.3e6, 0.4
#: Whisper frames per 30-s window after the convolutional stem
WHISPER_FRAMES = 1500


def decoder_bytes(h: int, i: int, kv: int, heads: int, head_dim: int, trained: bool) -> int:
    """Bytes a Qwen2 decoder layer keeps per token in bf16."""
    return (20 * h + 8 * i if trained else 12 * h + 6 * i) + 4 * kv + 4 * heads + 4 * head_dim + 8


def encoder_bytes(d: int, f: int, heads: int) -> int:
    """Bytes an AF3 (Whisper) encoder layer keeps per audio frame in bf16."""
    return 18 * d + 4 * f + 4 * heads + 8


@dataclass(frozen=True)
class Stack:
    """``count`` blocks that each keep ``per_item`` bytes per item (token or frame), ``items`` items per sample."""

    count: int
    per_item: float
    items: float
    width: int  # the block input's width (what checkpointing keeps: 2 bytes each)

    def kept(self, batch: int, checkpointing: bool) -> float:
        if not self.count:
            return 0.0
        if checkpointing:
            return batch * self.items * (self.count * 2 * self.width + self.per_item)
        return batch * self.items * self.count * self.per_item


@dataclass(frozen=True)
class Anatomy:
    """What the estimate needs to know about a model: parameter counts and its blocks' activation stacks."""

    params: int
    trainable: int
    largest_unit: int  # parameters of the largest sharding unit (a block)
    root: int  # parameters outside every block (embeddings, output layer, norms, projector)
    vocab: int
    stacks: list[Stack] = field(default_factory=list)
    fixed: float = 0.0  # activation bytes per sample outside the stacks (AF2's CLAP)
    fixed_checkpointed: float = 0.0


@dataclass(frozen=True)
class Setting:
    """What decides the memory of a training besides the model."""

    strategy: str
    checkpointing: bool
    per_device_batch: int
    max_length: int
    loss_chunk: int
    gpus: int
    gpu_gib: float
    bf16: bool
    cpu_offload: bool = False

    def describe(self) -> str:
        where = f"{self.gpus} GPU{'s' if self.gpus != 1 else ''} of {self.gpu_gib:g} GiB"
        return (f"{self.strategy}, {where}, checkpointing {'on' if self.checkpointing else 'off'}, "
                f"{self.per_device_batch} x {self.max_length} tokens per GPU"
                + (", cpu offload" if self.cpu_offload else ""))


def estimate(a: Anatomy, s: Setting) -> dict[str, float]:
    """Bytes per GPU by kind: weights, gradients, optimiser, activations, loss peak, overhead and total."""
    n = s.gpus if s.strategy == "fsdp" else 1
    compute = 2 if s.bf16 else 4
    if s.strategy == "fsdp":
        working = compute * (a.root + 2 * a.largest_unit)  # gathered: the root, one unit and the next prefetched
        weights = (0 if s.cpu_offload else 4 * a.params / n) + working
        grads = (0 if s.cpu_offload else 4 * a.trainable / n) + (compute + 4) * a.largest_unit
        optimiser = 0 if s.cpu_offload else 8 * a.trainable / n
    else:
        weights = 4 * a.params + (2 * a.params if s.bf16 else 0)  # fp32 weights and autocast's bf16 copies
        grads = 4 * a.trainable * (2 if s.gpus > 1 else 1)  # gradients and DDP's buckets
        optimiser = 8 * a.trainable
    tokens = s.per_device_batch * s.max_length
    activations = sum(st.kept(s.per_device_batch, s.checkpointing) for st in a.stacks)
    activations += s.per_device_batch * (a.fixed_checkpointed if s.checkpointing else a.fixed)
    activations *= compute / 2
    chunk = tokens if s.loss_chunk <= 0 else min(s.loss_chunk, tokens)
    loss = chunk * a.vocab * (compute + 8)
    parts = {"weights": weights, "gradients": grads, "optimiser": optimiser, "activations": activations,
             "loss_peak": loss, "overhead": OVERHEAD}
    return {**parts, "total": sum(parts.values())}


def fits(a: Anatomy, s: Setting) -> bool:
    return estimate(a, s)["total"] <= s.gpu_gib * GIB


def alternatives(a: Anatomy, s: Setting) -> list[str]:
    """The nearest settings that fit (fewest changes first), as recipe assignments."""
    options: list[tuple[int, str]] = []
    batches = [b for b in (s.per_device_batch // 2, s.per_device_batch // 4, 1) if 1 <= b < s.per_device_batch]
    for strategy in dict.fromkeys((s.strategy, "fsdp")):
        for checkpointing in dict.fromkeys((s.checkpointing, True)):
            for offload in dict.fromkeys((s.cpu_offload, strategy == "fsdp")):
                for batch in [s.per_device_batch, *sorted(set(batches), reverse=True)]:
                    t = replace(s, strategy=strategy, checkpointing=checkpointing, per_device_batch=batch,
                                cpu_offload=offload)
                    if t == s or not fits(a, t):
                        continue
                    changes = [f'train.strategy = "{strategy}"'] if strategy != s.strategy else []
                    changes += ["train.activation_checkpointing = true"] if checkpointing != s.checkpointing else []
                    changes += ["train.cpu_offload = true"] if offload != s.cpu_offload else []
                    changes += [f"train.per_device_batch = {batch}"] if batch != s.per_device_batch else []
                    options.append((len(changes), ", ".join(changes)))
                    break
    return [text for _, text in sorted(set(options))][:3]


def count(module: Any, blocks: list[Any]) -> tuple[int, int, int, int]:
    """(parameters, trainable, largest block, outside every block) of a meta-device module."""
    total = sum(p.numel() for p in module.parameters())
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    sizes = [sum(p.numel() for p in b.parameters()) for b in blocks]
    return total, trainable, max(sizes, default=0), total - sum(sizes)


def af3_anatomy(config: Any, c: Any) -> Anatomy:
    """AF3 from its transformers config, frozen and split into blocks by the student itself; with LoRA only the
    adapter trains (peft freezes every base weight)."""
    from transformers import AudioFlamingo3ForConditionalGeneration

    from afcot_flamingo.af3 import Af3Student
    from afcot_flamingo.training.parallel import empty_weights

    student = Af3Student(c)
    with empty_weights():
        student.model = model = AudioFlamingo3ForConditionalGeneration._from_config(config)
    student.freeze(c.freeze_audio_tower, c.freeze_llm)
    total, trainable, largest, root = count(model, student.blocks())
    if c.lora:
        trainable = _lora_params(model.model.language_model, c.lora.r)
    t, au = config.text_config, config.audio_config
    head_dim = getattr(t, "head_dim", None) or t.hidden_size // t.num_attention_heads
    kv = t.num_key_value_heads * head_dim
    text_trained = not (c.freeze_llm or c.lora)
    windows = max(1, math.ceil(c.plan_audio_s / 30))
    stacks = [Stack(t.num_hidden_layers, decoder_bytes(t.hidden_size, t.intermediate_size, kv, t.num_attention_heads,
                                                       head_dim, text_trained), c.max_length, t.hidden_size),
              Stack(au.num_hidden_layers, encoder_bytes(au.hidden_size, au.intermediate_size, au.num_attention_heads),
                    windows * WHISPER_FRAMES, au.hidden_size)]
    return Anatomy(total, trainable, largest, root, t.vocab_size, stacks)


def af2_anatomy(config: Any, c: Any) -> Anatomy:
    """AF2 from its :class:`Af2Config`, with the released trainable set, frozen and split into blocks by the
    student itself."""
    from afcot_flamingo.af2.model import Af2Model
    from afcot_flamingo.af2.trainer import Af2Student
    from afcot_flamingo.training.parallel import empty_weights

    student = Af2Student(c)
    with empty_weights():
        student.model = model = Af2Model(config)
    model.trainable_parameters()
    student.freeze(c.freeze_audio_tower, c.freeze_llm)
    total, trainable, largest, root = count(model, student.blocks())
    llm = model.llm.config
    head_dim = getattr(llm, "head_dim", None) or llm.hidden_size // llm.num_attention_heads
    kv = llm.num_key_value_heads * head_dim
    windows = min(config.clap.max_windows, max(1, math.ceil(c.plan_audio_s / config.clap.window_seconds)))
    media = windows * 64
    at = config.audio_transformer
    stacks = [Stack(llm.num_hidden_layers, decoder_bytes(llm.hidden_size, llm.intermediate_size, kv,
                                                         llm.num_attention_heads, head_dim, False),
                    c.max_length, llm.hidden_size),
              Stack(len(model.cross_attn), 28 * llm.hidden_size + 33 * media, c.max_length, llm.hidden_size),
              Stack(at.layers, 18 * config.clap.out_dim + 2 * at.d_inner + 170, media, config.clap.out_dim)]
    clap = windows * CLAP_WINDOW_BYTES
    return Anatomy(total, trainable, largest, root, llm.vocab_size, stacks, clap, clap * CLAP_CHECKPOINTED)


def _lora_params(module: Any, r: int) -> int:
    import torch

    names = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    return sum(r * (m.in_features + m.out_features) for n, m in module.named_modules()
               if isinstance(m, torch.nn.Linear) and n.rsplit(".", 1)[-1] in names)


def machine(c: Any) -> tuple[int, float]:
    """(GPUs, GiB per GPU) the plan checks against: the recipe's, else the job's processes and CUDA's, else 1 x 80."""
    import os

    gpus, gib = c.gpus, c.gpu_memory_gb
    cuda = None
    if not gpus or not gib:
        try:
            import torch

            cuda = torch.cuda if torch.cuda.is_available() else None
        except ImportError:
            pass
    if not gpus:
        gpus = int(os.environ.get("WORLD_SIZE", "0")) or (cuda.device_count() if cuda else 1)
    if not gib:
        gib = cuda.get_device_properties(0).total_memory / GIB if cuda else 80.0
    return gpus, gib


def _count(n: int) -> str:
    return f"{n / 1e9:.2f} B" if n >= 1e8 else f"{n / 1e6:.2f} M"


def plan(anatomy: Anatomy, c: Any) -> dict[str, Any]:
    """The memory line of a train stage and its figures (``ok`` False when it does not fit)."""
    gpus, gib = machine(c)
    if c.device == "cpu":
        gpus, gib = 1, math.inf
    s = Setting(c.strategy, c.activation_checkpointing, c.per_device_batch, c.max_length, c.loss_chunk, gpus,
                round(gib, 1), c.dtype == "bfloat16", c.cpu_offload)
    figures = estimate(anatomy, s)
    ok = figures["total"] <= gib * GIB
    text = f"train memory: {figures['total'] / GIB:.1f} GiB per GPU ({s.describe()}): " + (
        "fits" if ok else "does not fit")
    if c.device == "cpu":
        shape = s.describe().split(", ", 2)[2].replace(" per GPU", "")
        text = f"train memory: {figures['total'] / GIB:.1f} GiB on the CPU ({shape})"
    if not ok:
        nearest = alternatives(anatomy, s)
        text += "; nearest settings that fit: " + (" | ".join(nearest) if nearest else "none (more GPUs needed)")
    parts = ", ".join(f"{k} {v / GIB:.1f}" for k, v in figures.items() if k != "total")
    return {"text": text, "ok": ok, "detail": f"  {parts} GiB; {_count(anatomy.params)} parameters, "
            f"{_count(anatomy.trainable)} trained",
            "figures": {"gib": {k: round(v / GIB, 2) for k, v in figures.items()}, "params": anatomy.params,
                        "trainable": anatomy.trainable, "gpus": gpus,
                        "gpu_memory_gb": None if math.isinf(gib) else round(gib, 1),
                        "strategy": c.strategy, "activation_checkpointing": c.activation_checkpointing,
                        "per_device_batch": c.per_device_batch, "max_length": c.max_length}}


#: the known architecture of a release, for a plan made before its weights are downloaded
KNOWN = Path(__file__).resolve().parent / "architectures"
