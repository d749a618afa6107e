"""The transformers backend of the Qwen teachers: batched, greedy ``generate`` on local weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from afcot_core import audio as audio_io
from afcot_core.errors import AfcotError
from afcot_core.teacher import Request, Teacher
from afcot_core.weights import resolve
from afcot_qwen.config import QwenLlmConfig, QwenOmniConfig

SAMPLE_RATE = 16000


def _folder(model: str) -> Path:
    path = resolve(model)
    if path is None:
        raise AfcotError(f"weights for '{model}' are not on this machine; run `afcot recipe plan` for details")
    return path


def _load_tokenizer(path: Path) -> Any:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token or "<|endoftext|>"
    return tok


def _generate(model: Any, tok: Any, enc: dict, max_new_tokens: int) -> list[list[int]]:
    import torch

    with torch.inference_mode():
        out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tok.pad_token_id)
    return out[:, enc["input_ids"].shape[1]:].tolist()


class _HfTeacher(Teacher):
    """Loads a tokenizer and a model class from a local folder, in eval mode on the configured device."""

    def __init__(self, config: QwenLlmConfig | QwenOmniConfig, model_class: Any) -> None:
        import torch

        super().__init__(config.batching)
        self.model = config.model
        path = _folder(config.model)
        self.tok = _load_tokenizer(path)
        self.lm = model_class.from_pretrained(path, dtype=getattr(torch, config.dtype)).to(config.device)
        self.lm.eval()
        self.path = path


class HfQwenLlm(_HfTeacher):
    """Qwen3 as the text teacher; the reply is the text after the last ``</think>``."""

    role = "llm"

    def __init__(self, config: QwenLlmConfig) -> None:
        from transformers import AutoModelForCausalLM

        super().__init__(config, AutoModelForCausalLM)
        self.config = config
        self.think_end = self.tok.convert_tokens_to_ids("</think>")

    def generate(self, requests: list[Request]) -> list[str]:
        texts = [self.tok.apply_chat_template([{"role": "user", "content": r.prompt}], tokenize=False,
                                              add_generation_prompt=True, enable_thinking=self.config.enable_thinking)
                 + r.prefix for r in requests]
        enc = self.tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.config.device)
        replies = []
        for ids in _generate(self.lm, self.tok, dict(enc), self.config.max_new_tokens):
            if self.think_end in ids:
                ids = ids[len(ids) - ids[::-1].index(self.think_end):]
            replies.append(self.tok.decode(ids, skip_special_tokens=True).strip())
        return replies


def audio_token_count(valid_frames: int) -> int:
    """How many ``<|AUDIO|>`` tokens the Omni audio tower makes of ``valid_frames`` mel frames."""
    return ((valid_frames - 1) // 2 + 1 - 2) // 2 + 1


class HfQwenOmni(_HfTeacher):
    """The Qwen2.5-Omni thinker as the audio teacher: system prompt, audio then text, greedy decoding."""

    role = "alm"

    def __init__(self, config: QwenOmniConfig) -> None:
        from transformers import Qwen2_5OmniThinkerForConditionalGeneration, WhisperFeatureExtractor

        super().__init__(config, Qwen2_5OmniThinkerForConditionalGeneration)
        self.config = config
        self.features = WhisperFeatureExtractor.from_pretrained(self.path)

    def _prompt(self, text: str, audio_tokens: int, prefix: str = "") -> str:
        audio = f"<|audio_bos|>{'<|AUDIO|>' * audio_tokens}<|audio_eos|>" if audio_tokens else ""
        return (f"<|im_start|>system\n{self.config.system_prompt}<|im_end|>\n"
                f"<|im_start|>user\n{audio}{text}<|im_end|>\n<|im_start|>assistant\n{prefix}")

    def _wave(self, request: Request) -> np.ndarray:
        assert request.audio is not None
        return audio_io.load_at(request.audio, SAMPLE_RATE)[: 30 * SAMPLE_RATE]

    def generate(self, requests: list[Request]) -> list[str]:
        replies: dict[int, str] = {}
        with_audio = [i for i, r in enumerate(requests) if r.audio is not None]
        text_only = [i for i, r in enumerate(requests) if r.audio is None]
        if with_audio:
            feats = self.features([self._wave(requests[i]) for i in with_audio], sampling_rate=SAMPLE_RATE,
                                  return_attention_mask=True, padding="max_length", return_tensors="pt")
            counts = [audio_token_count(int(n)) for n in feats["attention_mask"].sum(-1)]
            prompts = [self._prompt(requests[i].prompt, n, requests[i].prefix)
                       for i, n in zip(with_audio, counts, strict=True)]
            enc = dict(self.tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False))
            enc["input_features"] = feats["input_features"].to(self.lm.dtype)
            enc["feature_attention_mask"] = feats["attention_mask"]
            self._decode(with_audio, enc, replies)
        if text_only:
            prompts = [self._prompt(requests[i].prompt, 0, requests[i].prefix) for i in text_only]
            self._decode(text_only, dict(self.tok(prompts, return_tensors="pt", padding=True,
                                                  add_special_tokens=False)), replies)
        return [replies[i] for i in range(len(requests))]

    def _decode(self, indices: list[int], enc: dict, replies: dict[int, str]) -> None:
        enc = {k: v.to(self.config.device) for k, v in enc.items()}
        for i, ids in zip(indices, _generate(self.lm, self.tok, enc, self.config.max_new_tokens), strict=True):
            replies[i] = self.tok.decode(ids, skip_special_tokens=True).strip()
