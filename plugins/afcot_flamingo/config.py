"""Trainer configs (defaults from the paper's released settings; spec/PAPER.md §6) and preflight checks."""

from __future__ import annotations

from typing import Literal

import msgspec

from afcot_core.weights import missing_packages, missing_weights

_MODELS = {"torch": "pip install 'afcot[models]'", "transformers": "pip install 'afcot[models]'",
           "accelerate": "pip install 'afcot[models]'"}


#: ``model = "random:tiny"`` trains a tiny random-weight AF3 (the quickstart; no weights needed)
TINY = "random:tiny"


class Af3TrainConfig(msgspec.Struct, forbid_unknown_fields=True):
    """Finetuning Audio Flamingo 3 on CoT shards (AF3 recipe: cosine, warmup 0.03, lr 1.5e-5, max length 8192)."""

    model: str = "nvidia/audio-flamingo-3-hf"
    data: str | None = None
    learning_rate: float = 1.5e-5
    weight_decay: float = 0.0
    schedule: Literal["cosine", "constant", "linear"] = "cosine"
    warmup_ratio: float = 0.03
    epochs: int = 1
    max_steps: int | None = None
    global_batch: int = 512
    per_device_batch: int = 2
    max_length: int = 8192
    dtype: Literal["bfloat16", "float32"] = "bfloat16"
    device: str = "cuda"
    freeze_audio_tower: bool = False
    cot: bool = True
    seed: int = 42

    def __post_init__(self) -> None:
        if self.global_batch % self.per_device_batch:
            raise ValueError("global_batch must be a multiple of per_device_batch")


class Af2TrainConfig(msgspec.Struct, forbid_unknown_fields=True):
    """Finetuning Audio Flamingo 2 (released CoT config: lr 2e-5 constant, warmup 1875, wd 0.1, 1024 tokens)."""

    model: str = "nvidia/audio-flamingo-2"
    clap_checkpoint: str = "nvidia/audio-flamingo-2/clap_ckpt/epoch_16.pt"
    data: str | None = None
    learning_rate: float = 2e-5
    weight_decay: float = 0.1
    schedule: Literal["constant"] = "constant"
    warmup_steps: int = 1875
    global_batch: int = 512
    per_device_batch: int = 8
    max_tokens: int = 1024
    seed: int = 42


def af3_preflight(config: Af3TrainConfig) -> list[str]:
    weights = [] if config.model == TINY else missing_weights(config.model)
    return missing_packages(_MODELS) + weights


def af2_preflight(config: Af2TrainConfig) -> list[str]:
    unavailable = ("trainer 'af2': the Audio Flamingo 2 architecture (AF-CLAP + gated cross-attention on Qwen2.5-3B) "
                   "is not part of this release; train Audio Flamingo 3 with `use = \"af3\"` instead")
    return [*missing_weights(config.model), unavailable]
