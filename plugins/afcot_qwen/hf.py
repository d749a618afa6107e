"""The transformers backend of the Qwen teachers: batched ``generate`` on local weights.

Greedy when the config's temperature is 0; otherwise each row is sampled with its request's own seed
(:mod:`afcot_qwen.sampling`), so a reply does not depend on its batch neighbours.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from afcot_core.api import AfcotError, Request, Teacher, resolve
from afcot_qwen.config import QwenLlmConfig, QwenOmniConfig
from afcot_qwen.prompts import SAMPLE_RATE, clip_wave, omni_prompt, qwen3_prompt, reply_text, request_seeds
from afcot_qwen.sampling import sampling_kwargs


def weights_folder(model: str) -> Path:
    path = resolve(model)
    if path is None:
        raise AfcotError(f"weights for '{model}' are not on this machine; run `afcot recipe plan` for details")
    return path


def _load_tokenizer(path: Path) -> Any:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    tok.padding_side = "left"  # a batch's prompts end where generation starts
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token or "<|endoftext|>"
    return tok


def _generate(model: Any, tok: Any, enc: dict, config: QwenLlmConfig | QwenOmniConfig,
              seeds: list[int]) -> list[list[int]]:
    import torch

    sampling = sampling_kwargs(config.temperature, config.top_p, config.top_k, seeds, model.device)
    with torch.inference_mode():
        out = model.generate(**enc, max_new_tokens=config.max_new_tokens, pad_token_id=tok.pad_token_id, **sampling)
    return out[:, enc["input_ids"].shape[1]:].tolist()


def rank_device(device: str) -> str:
    """``cuda`` means this process's own GPU under torchrun (``LOCAL_RANK``); other devices are kept."""
    local = os.environ.get("LOCAL_RANK")
    return f"cuda:{local}" if device == "cuda" and local is not None else device


class _HfTeacher(Teacher):
    """Loads a tokenizer and a model class from a local folder, in eval mode on the configured device."""

    def __init__(self, config: QwenLlmConfig | QwenOmniConfig, model_class: Any) -> None:
        import torch

        super().__init__(config.batching, config)
        self.model = config.model
        path = weights_folder(config.model)
        self.tok = _load_tokenizer(path)
        self.lm = model_class.from_pretrained(path, dtype=getattr(torch, config.dtype)).to(rank_device(config.device))
        self.lm.eval()
        self.path = path


class HfQwenLlm(_HfTeacher):
    """Qwen3 as the text teacher; the reply is the text after the last ``</think>``."""

    role = "llm"

    def __init__(self, config: QwenLlmConfig) -> None:
        from transformers import AutoModelForCausalLM

        super().__init__(config, AutoModelForCausalLM)
        self.config = config

    def generate(self, requests: list[Request]) -> list[str]:
        texts = [qwen3_prompt(self.tok, r, self.config.enable_thinking) for r in requests]
        enc = self.tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.lm.device)
        seeds = request_seeds(requests, self.config.seed)
        return [reply_text(self.tok.decode(ids, skip_special_tokens=False), thinking=True)
                for ids in _generate(self.lm, self.tok, dict(enc), self.config, seeds)]


class HfQwenOmni(_HfTeacher):
    """The Qwen2.5-Omni thinker as the audio teacher: system prompt, audio then text, greedy decoding."""

    role = "alm"

    def __init__(self, config: QwenOmniConfig) -> None:
        from transformers import Qwen2_5OmniThinkerForConditionalGeneration, WhisperFeatureExtractor

        super().__init__(config, Qwen2_5OmniThinkerForConditionalGeneration)
        self.config = config
        self.features = WhisperFeatureExtractor.from_pretrained(self.path)

    def _prompt(self, text: str, audio_tokens: int, prefix: str) -> str:
        return omni_prompt(self.config.system_prompt, text, audio_tokens, prefix)

    def generate(self, requests: list[Request]) -> list[str]:
        replies: dict[int, str] = {}
        with_audio = [i for i, r in enumerate(requests) if r.audio is not None]
        text_only = [i for i, r in enumerate(requests) if r.audio is None]
        if with_audio:
            feats = whisper_features(self.features, [clip_wave(requests[i]) for i in with_audio])
            counts = [audio_token_count(int(n)) for n in feats["attention_mask"].sum(-1)]
            prompts = [self._prompt(requests[i].prompt, n, requests[i].prefix)
                       for i, n in zip(with_audio, counts, strict=True)]
            enc = dict(self.tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False))
            enc["input_features"] = feats["input_features"].to(self.lm.dtype)
            enc["feature_attention_mask"] = feats["attention_mask"]
            self._decode(with_audio, enc, replies, requests)
        if text_only:
            prompts = [self._prompt(requests[i].prompt, 0, requests[i].prefix) for i in text_only]
            self._decode(text_only, dict(self.tok(prompts, return_tensors="pt", padding=True,
                                                  add_special_tokens=False)), replies, requests)
        return [replies[i] for i in range(len(requests))]

    def _decode(self, indices: list[int], enc: dict, replies: dict[int, str], requests: list[Request]) -> None:
        enc = {k: v.to(self.lm.device) for k, v in enc.items()}
        seeds = request_seeds([requests[i] for i in indices], self.config.seed)
        for i, ids in zip(indices, _generate(self.lm, self.tok, enc, self.config, seeds), strict=True):
            replies[i] = reply_text(self.tok.decode(ids, skip_special_tokens=False), thinking=False)


def audio_token_count(valid_frames: int) -> int:
    """How many ``<|AUDIO|>`` tokens the Omni audio tower makes of ``valid_frames`` mel frames."""
    return ((valid_frames - 1) // 2 + 1 - 2) // 2 + 1


def whisper_features(extractor: Any, waves: list[np.ndarray]) -> Any:
    """Log-mel features of a batch, padded to its longest clip instead of Whisper's fixed 30 s.

    Every clip is first padded with zeros to the same length, plus one STFT window, so that each one's
    valid frames see the same zeros after its end as under 30 s padding (the tower reads valid frames only).
    """
    hop, window = extractor.hop_length, extractor.n_fft
    longest = max(len(w) for w in waves)
    size = -(-(longest + window) // hop) * hop
    return extractor(waves, sampling_rate=SAMPLE_RATE, return_attention_mask=True, padding="max_length",
                     max_length=size, truncation=True, return_tensors="pt")
