"""Audio Flamingo 2 as a student of the shared training loop (:mod:`afcot_flamingo.training.loop`).

The adapter writes each example in AF2's own format (lowercased ``<audio>{prompt}<SEP>{output}<|endofchunk|>{eos}``,
loss on the output and its end tokens), cuts its audio into 10-s windows and keeps the released trainable set
(CLAP, audio transformer, cross-attention, the new-token embedding rows; the LM blocks frozen). The defaults are
the released CoT training config: AdamW lr 2e-5, weight decay 0.1, constant schedule, 1024 tokens, seed 42.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from afcot_core.api import BadInput
from afcot_flamingo.af2.features import training_wave
from afcot_flamingo.af2.load import BASE_LLM, TINY, load, missing
from afcot_flamingo.config import TrainSettings, missing_sources
from afcot_flamingo.training.data import reads_audio
from afcot_flamingo.training.student import IGNORE, Example


class Af2TrainConfig(TrainSettings, forbid_unknown_fields=True, kw_only=True):
    """Finetuning Audio Flamingo 2 (released CoT config: lr 2e-5 constant, wd 0.1, batch 8 x 2 accumulation per GPU,
    1024 tokens)."""

    #: the AF2 model to start from: a release as NVIDIA ships it, our AF2 folder, or "random:tiny"
    model: str = "nvidia/audio-flamingo-2"
    #: the base LM a release is converted with
    llm: str = BASE_LLM
    learning_rate: float = 2e-5
    weight_decay: float = 0.1
    #: the learning-rate schedule; "constant_with_warmup" ramps up over ``warmup_ratio`` of the steps
    schedule: Literal["cosine", "constant", "linear", "constant_with_warmup"] = "constant"  # type: ignore[assignment]
    warmup_ratio: float = 0.0
    global_batch: int = 512
    per_device_batch: int = 8
    max_length: int = 1024


def preflight(config: Af2TrainConfig) -> list[str]:
    from afcot_core.api import missing_packages

    lora = missing_packages({"peft": "pip install 'afcot[lora]'"}) if config.lora else []
    return (missing(config.model, config.llm) + missing_packages({"accelerate": "pip install 'afcot[models]'"}) + lora
            + missing_sources(config))


def plan(config: Af2TrainConfig) -> list[dict[str, Any]]:
    """The memory plan of an AF2 training, from our folder's config, the tiny one or the known release."""
    import msgspec

    from afcot_flamingo.af2.config import CONFIG_FILE, Af2Config
    from afcot_flamingo.af2.load import converted_folder
    from afcot_flamingo.config import known_architecture, unplanned
    from afcot_flamingo.training.memory import af2_anatomy
    from afcot_flamingo.training.memory import plan as memory_plan

    if config.model == TINY:
        from afcot_flamingo.af2.tiny import tiny_config, tiny_tokenizer, token_ids

        tok = tiny_tokenizer()
        architecture = tiny_config(len(tok), **token_ids(tok))
    else:
        ours = None if "{run}" in config.model else converted_folder(config.model)
        known = known_architecture(config.model)
        if ours is not None:
            architecture = msgspec.json.decode((ours / CONFIG_FILE).read_bytes(), type=Af2Config)
        elif known is not None:
            architecture = msgspec.convert(known, Af2Config)
        else:
            return unplanned(config.model)
    return [memory_plan(af2_anatomy(architecture, config), config)]


class Af2Student:
    """The AF2 adapter: AF2 text format and 10-s windows per example; batches padded to the most windows."""

    def __init__(self, config: Af2TrainConfig) -> None:
        self.config = config
        self.tokenizer: Any = None
        self.model: Any = None
        self.clap: Any = None

    def build(self, config: Af2TrainConfig, workdir: Path, device: str, dtype: Any) -> Any:
        self.model, self.tokenizer = load(config.model, config.llm, workdir, skeleton=device == "meta")
        self.tokenizer.padding_side = "right"
        if device != "meta":
            self.model = self.model.to(device=device, dtype=dtype)
        self.clap = self.model.config.clap
        self.model.trainable_parameters()
        return self.model

    @reads_audio(training_wave)  # channel 0 of a stereo file, as the released AF2 data path reads it
    def encode(self, example: Example) -> dict[str, Any]:
        import torch

        from afcot_flamingo.af2.features import windows
        from afcot_flamingo.af2.text import encode_training

        if len(example.turns) != 1:
            raise BadInput(f"[train] sample '{example.key}' of {example.source} has {len(example.turns)} turns; AF2 "
                           "trains on single-turn examples (one prompt, one output)")
        enc = encode_training(self.tokenizer, [(example.prompt, example.target)], max_tokens=1 << 30)
        assert enc is not None
        return {"input_ids": enc["input_ids"][0], "attention_mask": enc["attention_mask"][0],
                "labels": enc["labels"][0], "audio": torch.from_numpy(windows(example.wave, self.clap))}

    def collate(self, encoded: list[dict[str, Any]]) -> dict[str, Any]:
        import torch
        import torch.nn.functional as F

        from afcot_flamingo.af2.features import pad_windows

        width = max(int(e["input_ids"].shape[0]) for e in encoded)
        pad = {"input_ids": self.tokenizer.pad_token_id, "attention_mask": 0, "labels": IGNORE}
        batch = {k: torch.stack([F.pad(e[k], (0, width - e[k].shape[0]), value=v) for e in encoded])
                 for k, v in pad.items()}
        batch["audio"], batch["audio_mask"] = pad_windows([e["audio"].numpy() for e in encoded])
        return batch

    def blocks(self) -> list[Any]:
        swin = [block for stage in self.model.clap.layers for block in stage.blocks]
        return [*self.model.llm.model.layers, *self.model.cross_attn, *self.model.audio_transformer.layer_stack, *swin]

    def hidden(self, batch: dict[str, Any]) -> Any:
        return self.model.hidden_states(**batch)

    def head(self) -> Any:
        return self.model.llm.lm_head

    def after_backward(self) -> None:
        self.model.zero_frozen_rows()

    def freeze(self, audio: bool, llm: bool) -> None:
        """``audio``: CLAP and the audio transformer; ``llm``: the embeddings too (the LM blocks always are)."""
        if audio:
            self.model.clap.requires_grad_(False)
            self.model.audio_transformer.requires_grad_(False)
        if llm:
            self.model.llm.requires_grad_(False)

    def lora_targets(self) -> str | list[str]:
        return r"llm\.model\.layers\.\d+\.(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj)"

    def save(self, module: Any, path: Path) -> None:
        module.save_pretrained(path)
        self.tokenizer.save_pretrained(path)

    def load(self, path: Path) -> Any:
        from afcot_flamingo.af2.model import Af2Model

        return Af2Model.from_pretrained(path)


class Af2Trainer:
    """The ``af2`` trainer: the shared loop with the AF2 student."""

    def __init__(self, config: Af2TrainConfig) -> None:
        self.config = config

    def train(self, data_dir: Path, out_dir: Path, log: Any, progress: Any = None) -> dict[str, Any]:
        from afcot_flamingo.training.loop import train

        if self.config.model == TINY:
            log.info("training a tiny random-weight AF2 (random:tiny)")
        return train(Af2Student(self.config), self.config, data_dir, out_dir, log, progress)
