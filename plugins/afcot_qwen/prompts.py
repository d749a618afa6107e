"""What every backend of the Qwen teachers shares: the prompt text, the reply rule, the seeds.

All backends build the same prompt text, so the same request is the same token stream whatever runs it, and
all read a reply by one rule (:func:`reply_text`) from the generated text with its special tokens kept.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from afcot_core.api import Request, load_audio_at

SAMPLE_RATE = 16000
THINK_END = "</think>"
#: what Qwen3's chat template writes after ``<|im_start|>assistant\n`` when thinking is off: an empty think block
EMPTY_THINK = "<think>\n\n</think>\n\n"
#: Qwen's control tokens (``<|im_end|>``, ``<|endoftext|>``, ``<|AUDIO|>``...): the special tokens a decode
#: with ``skip_special_tokens`` drops. ``<think>`` and ``</think>`` are not among them.
CONTROL_TOKEN = re.compile(r"<\|[A-Za-z0-9_]+\|>")


def qwen3_prompt(tok: Any, request: Request, enable_thinking: bool) -> str:
    """Qwen3's chat template on one user turn, then the answer ``prefix`` to continue after."""
    return tok.apply_chat_template([{"role": "user", "content": request.prompt}], tokenize=False,
                                   add_generation_prompt=True, enable_thinking=enable_thinking) + request.prefix


def omni_prompt(system: str, text: str, audio_tokens: int, prefix: str = "") -> str:
    """The Omni thinker's ChatML prompt: system, then the audio (``audio_tokens`` placeholders) and the text."""
    audio = f"<|audio_bos|>{'<|AUDIO|>' * audio_tokens}<|audio_eos|>" if audio_tokens else ""
    return (f"<|im_start|>system\n{system}<|im_end|>\n"
            f"<|im_start|>user\n{audio}{text}<|im_end|>\n<|im_start|>assistant\n{prefix}")


def assistant_prefix(request: Request, enable_thinking: bool | None) -> str:
    """The assistant turn a prefixed request continues, as a server gets it (``continue_final_message``).

    The in-process prompt is the generation prompt and then the prefix; with thinking off Qwen3's generation
    prompt ends in an empty think block, which a continued assistant message does not get from the template,
    so it is written out here: the server's prompt is the in-process prompt, token for token.
    """
    return (EMPTY_THINK if enable_thinking is False else "") + request.prefix


def reply_text(text: str, thinking: bool) -> str:
    """The reply in a generation's text (special tokens kept): after the LAST ``</think>`` when ``thinking``,
    without Qwen's control tokens, stripped. Every backend reads its replies with this one rule."""
    if thinking:
        text = text.rpartition(THINK_END)[2]
    return CONTROL_TOKEN.sub("", text).strip()


def clip_wave(request: Request) -> np.ndarray:
    """The request's audio at 16 kHz mono, cut at the 30 s the audio tower reads."""
    assert request.audio is not None
    return load_audio_at(request.audio, SAMPLE_RATE)[: 30 * SAMPLE_RATE]


def request_seeds(requests: list[Request], default: int) -> list[int]:
    """Each request's own sampling seed, or the config's ``default`` for a request without one."""
    return [default if r.seed is None else r.seed for r in requests]
