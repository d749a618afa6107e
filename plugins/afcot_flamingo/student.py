"""An Audio Flamingo 3 checkpoint (e.g. one this project trained) answering as a ``teacher_alm``,
so that the evaluate stage and ``afcot bench run`` can score it."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from afcot_core.api import (
    AfcotError,
    Batching,
    Request,
    Teacher,
    expand,
    load_audio_at,
    missing_packages,
    missing_weights,
    resolve,
)

SAMPLE_RATE = 16000


class Af3StudentConfig(msgspec.Struct, forbid_unknown_fields=True):
    """``model``: a folder or hub id; ``{run}`` is this run's directory (``"{run}/train/final"``)."""

    #: a folder or hub id; {run} is this run's directory ({run}/train/final)
    model: str = "nvidia/audio-flamingo-3-hf"
    #: cuda or cpu
    device: str = "cuda"
    #: weights' dtype for inference
    dtype: Literal["bfloat16", "float32"] = "bfloat16"
    #: longest answer generated
    max_new_tokens: int = 1024
    #: torch threads on CPU (0: torch's default; 1 is fastest for tiny models on a busy machine)
    cpu_threads: int = 0
    #: how concurrent prompts are grouped into generate batches
    batching: Batching = Batching(max_batch=8, max_wait_ms=20.0)


def preflight(config: Af3StudentConfig) -> list[str]:
    return missing_packages({"transformers": "pip install 'afcot[models]'"}) + missing_weights(config.model)


class Af3Student(Teacher):
    """Greedy AF3 answers: user turn = audio + prompt, in the checkpoint's own chat template."""

    role = "alm"

    def __init__(self, config: Af3StudentConfig) -> None:
        import torch
        from transformers import AudioFlamingo3ForConditionalGeneration, AutoProcessor

        super().__init__(config.batching)
        if config.device == "cpu" and config.cpu_threads:
            torch.set_num_threads(config.cpu_threads)
        self.config = config
        self.model = config.model
        path = resolve(config.model)
        if path is None:
            hint = " (this run's own checkpoint: run the train stage first)" if "{run}" in config.model else ""
            raise AfcotError(f"AF3 weights '{expand(config.model)}' are not on this machine{hint}")
        self.processor = AutoProcessor.from_pretrained(path)
        self.lm = AudioFlamingo3ForConditionalGeneration.from_pretrained(
            path, dtype=getattr(torch, config.dtype)).to(config.device)
        self.lm.eval()

    def _wave(self, request: Request) -> Any:
        if request.audio is None:
            raise AfcotError("the AF3 student needs audio for every request")
        return load_audio_at(request.audio, SAMPLE_RATE)

    def generate(self, requests: list[Request]) -> list[str]:
        import torch

        from afcot_flamingo.af3 import conversation

        texts = [self.processor.apply_chat_template(conversation(r.prompt, None), tokenize=False,
                                                    add_generation_prompt=True) + r.prefix for r in requests]
        batch = self.processor(text=texts, audio=[self._wave(r) for r in requests], return_tensors="pt")
        batch = {k: v.to(self.config.device) for k, v in batch.items() if k != "num_audio_tokens"}
        batch["input_features"] = batch["input_features"].to(self.lm.dtype)
        tok = self.processor.tokenizer
        with torch.inference_mode():
            out = self.lm.generate(**batch, max_new_tokens=self.config.max_new_tokens, do_sample=False,
                                   pad_token_id=tok.pad_token_id)
        return [t.strip() for t in tok.batch_decode(out[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)]
