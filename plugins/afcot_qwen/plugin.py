"""Registers the Qwen teachers (Qwen3 as the LLM, Qwen2.5-Omni as the ALM)."""

from __future__ import annotations

from afcot_core.api import hookimpl

# backend -> (module, LLM class, ALM class); imported only when built, so vllm and httpx stay optional
_BACKENDS = {
    "transformers": ("afcot_qwen.hf", "HfQwenLlm", "HfQwenOmni"),
    "vllm": ("afcot_qwen.vllm_backend", "VllmQwenLlm", "VllmQwenOmni"),
    "openai": ("afcot_qwen.openai_backend", "OpenAiQwenLlm", "OpenAiQwenOmni"),
}


def _build(config, which: int):
    import importlib

    module, *classes = _BACKENDS[config.backend]
    return getattr(importlib.import_module(module), classes[which])(config)


def _llm(config):
    return _build(config, 0)


def _omni(config):
    return _build(config, 1)


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
