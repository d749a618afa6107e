"""Trainer configs (defaults from the paper's released settings; spec/PAPER.md §6) and preflight checks."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from afcot_core.api import missing_packages, missing_weights

_MODELS = {"torch": "pip install 'afcot[models]'", "transformers": "pip install 'afcot[models]'",
           "accelerate": "pip install 'afcot[models]'"}


#: ``model = "random:tiny"`` trains a tiny random-weight AF3 (the quickstart; no weights needed)
TINY = "random:tiny"


class DataSource(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One training source, blended with the others by ``weight``."""

    #: "shards" (a generate folder of WebDataset shards), "afthink" (AF-Think / AF3 training JSON) or "af2" (manifest)
    kind: Literal["shards", "afthink", "af2"] = "shards"
    #: the folder (shards) or JSON file; ``{run}`` is this run's directory
    path: str = "{run}/generate"
    #: relative share of the samples drawn from this source
    weight: float = 1.0
    #: where audio paths are relative to (default: the JSON's folder; for AF2 the folder above the manifest's)
    audio_root: str = ""
    #: the name used in metrics (default: the file or folder name)
    name: str = ""
    #: shards: CoT targets (true) or plain answers (false) from this source; unset: ``train.cot``. Two sources of
    #: the same shards, one of each, blend CoT with plain data (the prompt tells the student which to give)
    cot: bool | None = None

    def __post_init__(self) -> None:
        if self.weight < 0:
            raise ValueError("weight must be >= 0")


class LoraConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A LoRA adapter on the language model (peft); the base weights stay frozen."""

    #: the adapter's rank
    r: int = 16
    #: the scaling numerator (scale = alpha / r)
    alpha: int = 32
    #: dropout on the adapter's input
    dropout: float = 0.05
    #: module names to adapt; empty: the student's default (the LLM's attention and MLP projections)
    targets: list[str] = msgspec.field(default_factory=list)


class TrainSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """What the model-agnostic training loop reads (every student's config extends it)."""

    #: one folder of shards to train on (default: this run's generate folder); ``sources`` overrides it
    data: str | None = None
    #: sources blended by weight (CoT shards, AF-Think JSON, AF2 manifests); empty: the one folder ``data``
    sources: list[DataSource] = msgspec.field(default_factory=list)
    #: peak learning rate of AdamW
    learning_rate: float = 1.5e-5
    #: AdamW weight decay
    weight_decay: float = 0.0
    #: learning-rate schedule after warm-up
    schedule: Literal["cosine", "constant", "linear"] = "cosine"
    #: share of the steps spent warming the learning rate up
    warmup_ratio: float = 0.03
    #: warm-up length in optimiser steps; when set it replaces ``warmup_ratio`` (AF2's released config: 1875)
    warmup_steps: int | None = None
    #: gradients are clipped to this global norm (0: no clipping); the norm is logged either way
    max_grad_norm: float = 1.0
    #: passes over the data (all sources' samples together) when ``max_steps`` is not set
    epochs: int = 1
    #: optimiser steps to take (overrides epochs)
    max_steps: int | None = None
    #: samples per optimiser step over all processes (per_device_batch x processes x accumulation)
    global_batch: int = 512
    #: samples per forward pass on one process
    per_device_batch: int = 2
    #: longest sample in tokens (audio tokens included)
    max_length: int = 8192
    #: what happens to a longer sample: "truncate" (cut the end of the target) or "drop"
    overlong: Literal["truncate", "drop"] = "drop"
    #: bfloat16: mixed precision on GPUs; float32: full precision
    dtype: Literal["bfloat16", "float32"] = "bfloat16"
    #: cuda or cpu (cpu also when no GPU is present)
    device: str = "cuda"
    #: "ddp": a full copy of the model per GPU; "fsdp": parameters, gradients and optimiser state sharded over the
    #: GPUs per transformer block (PyTorch FSDP2; bf16 compute, fp32 reductions and optimiser state)
    strategy: Literal["ddp", "fsdp"] = "ddp"
    #: recompute each transformer block's activations in the backward pass instead of keeping them
    activation_checkpointing: bool = False
    #: fsdp: keep the sharded parameters, gradients and optimiser state in host memory (slower, less GPU memory)
    cpu_offload: bool = False
    #: assistant tokens per output-layer call in the loss (one chunk's logits exist at a time; 0: all at once)
    loss_chunk: int = 1024
    #: GPUs the memory plan assumes (0: the processes of the run, else this machine's GPUs, else 1)
    gpus: int = 0
    #: memory of one GPU in GiB for the memory plan (0: what CUDA reports, else 80)
    gpu_memory_gb: float = 0.0
    #: seconds of audio per sample the memory plan assumes
    plan_audio_s: float = 30.0
    #: torch threads per process on CPU (0: torch's default; 1 is fastest for tiny models on a busy machine)
    cpu_threads: int = 0
    #: freeze the audio encoder (and projector)
    freeze_audio_tower: bool = False
    #: freeze the language model (e.g. to train the audio side only)
    freeze_llm: bool = False
    #: a LoRA adapter on the language model instead of full finetuning (needs ``pip install 'afcot[lora]'``)
    lora: LoraConfig | None = None
    #: train on CoT targets with the CoT suffix in the prompt; false: the plain answer without the suffix
    cot: bool = True
    #: the target of a plain (``cot = false``) shard sample: "answer", the answer's text as the judge reads it
    #: (``yes``, ``hiss``); "lettered", ``(C) hiss`` as AF-Reasoning-Eval's gold outputs (a small student then
    #: starts every answer with the same letter and scores at chance: docs/performance.md); "caption", the CoT's
    #: CAPTION section as the answer to "Describe the sound." (what the perception stage trains on)
    plain_target: Literal["answer", "lettered", "caption"] = "answer"
    #: optimiser steps of a perception stage before this training, as AF3's alignment stage precedes its SFT: the
    #: student first learns audio -> CAPTION on the same shards (``train/perception/``), then trains from there
    #: (0: none); the same settings otherwise
    perception_steps: int = 0
    #: the options' layout in shard samples' prompts (afcot_core.api.LAYOUTS, docs/interop.md); evaluate
    #: with the same ``evaluate.prompt_layout``
    prompt_layout: Literal["inline", "model-card"] = "inline"
    #: seed of the model's randomness and of the data order
    seed: int = 42
    #: samples held in the seeded shuffle buffer of each data worker (0: no shuffling)
    shuffle_buffer: int = 1000
    #: DataLoader worker processes per rank that prepare batches ahead of the step (0: in the main process)
    num_workers: int = 2
    #: save a resumable checkpoint every this many optimiser steps (0: only at the end)
    checkpoint_every: int = 500
    #: how many step checkpoints to keep (the newest)
    keep_checkpoints: int = 2
    #: continue from the newest checkpoint in the output folder when there is one
    resume: bool = True
    #: write a loss-curve PNG next to ``metrics.jsonl`` (needs matplotlib)
    plot: bool = True

    def __post_init__(self) -> None:
        if self.global_batch % self.per_device_batch:
            raise ValueError("global_batch must be a multiple of per_device_batch")
        if self.per_device_batch < 1 or self.num_workers < 0 or self.shuffle_buffer < 0 or self.checkpoint_every < 0:
            raise ValueError("per_device_batch must be >= 1; num_workers, shuffle_buffer, checkpoint_every >= 0")
        if self.sources and not any(s.weight > 0 for s in self.sources):
            raise ValueError("sources: at least one source needs a weight above 0")
        if self.warmup_steps is not None and self.warmup_steps < 0:
            raise ValueError("warmup_steps must be >= 0")
        if self.loss_chunk < 0 or self.gpus < 0 or self.gpu_memory_gb < 0 or self.plan_audio_s <= 0:
            raise ValueError("loss_chunk, gpus and gpu_memory_gb must be >= 0, plan_audio_s > 0")
        if self.perception_steps < 0:
            raise ValueError("perception_steps must be >= 0")
        if self.cpu_offload and self.strategy != "fsdp":
            raise ValueError("cpu_offload needs strategy = \"fsdp\"")


class Af3TrainConfig(TrainSettings, forbid_unknown_fields=True, kw_only=True):
    """Finetuning Audio Flamingo 3 on CoT shards (AF3 recipe: cosine, warmup 0.03, lr 1.5e-5, max length 8192)."""

    #: the model to finetune: a folder, a hub id in the local cache, or random:tiny (a built-in student, below)
    model: str = "nvidia/audio-flamingo-3-hf"
    #: random:tiny: the random student's size (tiny: 155 k, byte tokens, for tests; small, base: learn in minutes)
    size: Literal["tiny", "small", "base"] = "tiny"
    #: random:tiny: "byte" (256 symbols) or "bpe" (trained on the run's shards, ``vocab_size`` tokens, saved with it)
    tokenizer: Literal["byte", "bpe"] = "byte"
    #: tokens of the "bpe" tokenizer (specials included)
    vocab_size: int = 1000
    #: random:tiny: start from a pre-trained miniature student shipped with afcot ("mini") instead of random weights
    pretrained: str = ""


def missing_sources(config: TrainSettings) -> list[str]:
    """Training sources that are not on this machine, and ``{run}`` folders that a run without their stage lacks."""
    from pathlib import Path

    from afcot_core.api import missing_run_output

    problems = [] if config.sources else missing_run_output(config.data or "{run}/generate", "train.data")
    for i, source in enumerate(config.sources):
        if "{run}" in source.path:  # made by this run's generate stage, unless the planned run leaves it out
            problems += missing_run_output(source.path, f"train.sources[{i}].path")
            continue
        path = Path(source.path).expanduser()
        if not (path.is_dir() if source.kind == "shards" else path.is_file()):
            problems.append(f"train.sources[{i}].path: {source.kind} {'folder' if source.kind == 'shards' else 'file'}"
                            f" not found: {path}")
    return problems


def unplanned(model: str) -> list[dict[str, Any]]:
    return [{"text": f"train memory: not estimated (no config.json for '{model}' here, and not a known release)",
             "ok": True}]


def known_architecture(model: str) -> dict[str, Any] | None:
    """The packaged config of a named release (``training/architectures/<owner>--<name>.json``), or None."""
    import json

    from afcot_flamingo.training.memory import KNOWN

    path = KNOWN / f"{model.replace('/', '--')}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def af3_plan(config: Af3TrainConfig) -> list[dict[str, Any]]:
    """The memory plan of an AF3 training, from the model's config (local, tiny or the known release)."""
    from afcot_core.api import resolve
    from afcot_flamingo.training.memory import af3_anatomy, plan

    if config.model == TINY and config.pretrained:
        from transformers import AutoConfig

        from afcot_flamingo.tiny import STUDENTS

        if not (STUDENTS / config.pretrained / "config.json").is_file():
            return unplanned(f"pretrained = {config.pretrained}")
        architecture = AutoConfig.from_pretrained(STUDENTS / config.pretrained)
    elif config.model == TINY:
        from afcot_flamingo.tiny import af3_config

        architecture = af3_config(config.size)
        if config.tokenizer == "bpe":  # the corpus tokenizer's size, before it is trained
            architecture.text_config.vocab_size = config.vocab_size
    elif "{run}" in config.model:
        return unplanned(config.model)
    else:
        local, known = resolve(config.model), known_architecture(config.model)
        if local is not None and (local / "config.json").is_file():
            from transformers import AutoConfig

            architecture = AutoConfig.from_pretrained(local)
        elif known is not None:
            from transformers import AudioFlamingo3Config

            architecture = AudioFlamingo3Config(**known)
        else:
            return unplanned(config.model)
    return [plan(af3_anatomy(architecture, config), config)]


def af3_preflight(config: Af3TrainConfig) -> list[str]:
    weights = [] if config.model == TINY else missing_weights(config.model)
    lora = missing_packages({"peft": "pip install 'afcot[lora]'"}) if config.lora else []
    return missing_packages(_MODELS) + lora + weights + missing_sources(config)
