"""Configs of the Qwen teachers, and the checks run before any weights load."""

from __future__ import annotations

from typing import Literal

import msgspec

from afcot_core.teacher import Batching
from afcot_core.weights import missing_packages, missing_weights

Backend = Literal["transformers"]
_PACKAGES = {
    "transformers": {"torch": "pip install 'afcot[models]'", "transformers": "pip install 'afcot[models]'"},
}


class _QwenConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """What every Qwen teacher takes: the weights (hub id or folder), where and how they run, batching."""

    backend: Backend = "transformers"
    dtype: str = "bfloat16"
    device: str = "cuda"
    batching: Batching = Batching(max_batch=16, max_wait_ms=20.0)


class QwenLlmConfig(_QwenConfig, kw_only=True):
    """The text teacher (paper: Qwen3-8B, thinking on, 4096 new tokens, reply after the last </think>)."""

    model: str = "Qwen/Qwen3-8B"
    max_new_tokens: int = 4096
    enable_thinking: bool = True


class QwenOmniConfig(_QwenConfig, kw_only=True):
    """The audio teacher (paper: Qwen2.5-Omni-7B thinker, greedy, 256 new tokens)."""

    model: str = "Qwen/Qwen2.5-Omni-7B"
    max_new_tokens: int = 256
    system_prompt: str = "You are a sound understanding and classification model."


def preflight(config: QwenLlmConfig | QwenOmniConfig) -> list[str]:
    """What is missing on this machine to run the teacher: packages, weights, or a server URL."""
    return missing_packages(_PACKAGES[config.backend]) + missing_weights(config.model)
