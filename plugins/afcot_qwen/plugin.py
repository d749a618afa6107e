"""Registers the Qwen teachers (Qwen3 as the LLM, Qwen2.5-Omni as the ALM)."""

from __future__ import annotations

from afcot_core.hookspecs import hookimpl


def _llm(config):
    from afcot_qwen.hf import HfQwenLlm

    return HfQwenLlm(config)


def _omni(config):
    from afcot_qwen.hf import HfQwenOmni

    return HfQwenOmni(config)


@hookimpl
def register_teacher_llms(register):
    from afcot_qwen.config import QwenLlmConfig, preflight

    register("qwen3", _llm, QwenLlmConfig, "Qwen3 text teacher (paper: Qwen/Qwen3-8B, thinking on)",
             preflight=preflight)


@hookimpl
def register_teacher_alms(register):
    from afcot_qwen.config import QwenOmniConfig, preflight

    register("qwen2.5-omni", _omni, QwenOmniConfig,
             "Qwen2.5-Omni thinker as audio teacher (paper: Qwen/Qwen2.5-Omni-7B, greedy, 256 tokens)",
             preflight=preflight)
