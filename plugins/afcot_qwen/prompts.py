"""What every backend of the Qwen teachers shares: the prompt text, the reply after ``</think>``, the seeds.

All backends build the same prompt text, so the same request is the same token stream whatever runs it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from afcot_core import audio as audio_io
from afcot_core.teacher import Request

SAMPLE_RATE = 16000
THINK_END = "</think>"


def qwen3_prompt(tok: Any, request: Request, enable_thinking: bool) -> str:
    """Qwen3's chat template on one user turn, then the answer ``prefix`` to continue after."""
    return tok.apply_chat_template([{"role": "user", "content": request.prompt}], tokenize=False,
                                   add_generation_prompt=True, enable_thinking=enable_thinking) + request.prefix


def omni_prompt(system: str, text: str, audio_tokens: int, prefix: str = "") -> str:
    """The Omni thinker's ChatML prompt: system, then the audio (``audio_tokens`` placeholders) and the text."""
    audio = f"<|audio_bos|>{'<|AUDIO|>' * audio_tokens}<|audio_eos|>" if audio_tokens else ""
    return (f"<|im_start|>system\n{system}<|im_end|>\n"
            f"<|im_start|>user\n{audio}{text}<|im_end|>\n<|im_start|>assistant\n{prefix}")


def after_think(ids: list[int], think_end: int) -> list[int]:
    """The reply tokens after the last ``</think>`` (all of them when there is none)."""
    return ids[len(ids) - ids[::-1].index(think_end):] if think_end in ids else ids


def reply_after_think(text: str) -> str:
    """The reply text after the last ``</think>``, stripped (for backends that return text)."""
    return text.rpartition(THINK_END)[2].strip()


def clip_wave(request: Request) -> np.ndarray:
    """The request's audio at 16 kHz mono, cut at the 30 s the audio tower reads."""
    assert request.audio is not None
    return audio_io.load_at(request.audio, SAMPLE_RATE)[: 30 * SAMPLE_RATE]


def request_seeds(requests: list[Request], default: int) -> list[int]:
    """Each request's own sampling seed, or the config's ``default`` for a request without one."""
    return [default if r.seed is None else r.seed for r in requests]
