"""The ``vllm`` backend of the Qwen teachers: vLLM's offline engine in this process.

The micro-batcher hands each batch to ``LLM.generate`` with one ``SamplingParams`` per request (its
own seed when the teacher samples). Prompts are the same text the transformers backend builds
(:mod:`afcot_qwen.prompts`), so greedy replies match it token for token on the same weights, and the
reply is read by the same rule from the text with its special tokens kept; Omni audio goes as
``multi_modal_data`` at 16 kHz, and vLLM expands the single ``<|AUDIO|>`` placeholder to the clip's length.

vLLM is imported only when an engine is built. Its log lines go to stderr (never stdout, which
``--json`` output owns), its engine and worker processes end with this one (also under ``kill -9``,
where the kernel ends the forked children), and a dead engine stops the run (:class:`EngineDead`).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import json
import os
import signal
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from afcot_core.api import EngineDead, Request, Teacher
from afcot_qwen.config import QwenLlmConfig, QwenOmniConfig
from afcot_qwen.hf import weights_folder
from afcot_qwen.prompts import SAMPLE_RATE, clip_wave, omni_prompt, qwen3_prompt, reply_text

#: vLLM's exceptions that mean its engine is gone: every later request would fail the same way
DEAD_ENGINE_ERRORS = frozenset({"EngineDeadError"})
_PR_SET_PDEATHSIG = 1
R = TypeVar("R")


def sampling_args(config: QwenLlmConfig | QwenOmniConfig, requests: list[Request]) -> list[dict[str, Any]]:
    """The ``SamplingParams`` keywords of each request: the config's settings, and the request's own seed when
    the teacher samples (the config's seed for a request without one); special tokens are kept in the text."""
    c = config
    if c.temperature == 0:
        return [{"temperature": 0.0, "max_tokens": c.max_new_tokens, "skip_special_tokens": False} for _ in requests]
    return [{"temperature": c.temperature, "top_p": c.top_p, "top_k": c.top_k or -1,
             "seed": c.seed if r.seed is None else r.seed, "max_tokens": c.max_new_tokens,
             "skip_special_tokens": False} for r in requests]


def engine_args(config: QwenLlmConfig | QwenOmniConfig, **extra: Any) -> dict[str, Any]:
    """The keywords of ``vllm.LLM``: the weights and the teacher's settings, then ``engine_args`` and
    ``engine_run_args`` from the recipe."""
    return {"model": str(weights_folder(config.model)), "dtype": config.dtype, "seed": config.seed,
            "tensor_parallel_size": config.tensor_parallel_size,
            "gpu_memory_utilization": config.gpu_memory_utilization, **extra, **config.engine_args,
            **config.engine_run_args}


def replies(outputs: list[Any], thinking: bool) -> list[str]:
    """The replies in ``LLM.generate``'s outputs (their text keeps special tokens), by :func:`reply_text`."""
    return [reply_text(out.outputs[0].text, thinking) for out in outputs]


def is_dead_engine(exc: BaseException) -> bool:
    """Whether ``exc`` says the engine is gone (vLLM's ``EngineDeadError``, or an error caused by one)."""
    seen: set[int] = set()
    error: BaseException | None = exc
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if any(cls.__name__ in DEAD_ENGINE_ERRORS for cls in type(error).__mro__):
            return True
        error = error.__cause__ or error.__context__
    return False


def logging_config() -> dict[str, Any]:
    """vLLM's logging configuration (``VLLM_LOGGING_CONFIG_PATH``): its loggers write to stderr, in every process."""
    return {
        "version": 1, "disable_existing_loggers": False,
        "formatters": {"vllm": {"format": "vllm %(levelname)s %(asctime)s %(filename)s:%(lineno)d] %(message)s"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "vllm", "level": "INFO",
                                "stream": "ext://sys.stderr"}},
        "loggers": {"vllm": {"handlers": ["stderr"], "level": "INFO", "propagate": False}},
    }


def _logs_to_stderr() -> None:
    """Point vLLM's logging at stderr before it is imported (unless the user configured it already)."""
    if "VLLM_LOGGING_CONFIG_PATH" in os.environ or os.environ.get("VLLM_CONFIGURE_LOGGING") == "0":
        return
    path = Path(tempfile.gettempdir()) / f"afcot-vllm-logging-{os.getpid()}.json"
    path.write_text(json.dumps(logging_config()))
    os.environ["VLLM_LOGGING_CONFIG_PATH"] = str(path)


def die_with_parent() -> None:
    """In a freshly forked child: ask the kernel to kill it when its parent dies (Linux; a no-op elsewhere)."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


_children_die_with_parent = False


def children_die_with_parent() -> None:
    """From now on every process forked here (and, in turn, by those) is killed when its parent dies.

    vLLM starts its engine core and workers as child processes; forked (``VLLM_WORKER_MULTIPROC_METHOD=fork``,
    set here unless the user chose), they end with afcot even when afcot is killed with ``kill -9``.
    """
    global _children_die_with_parent
    if not _children_die_with_parent:
        os.register_at_fork(after_in_child=die_with_parent)
        _children_die_with_parent = True
    os.environ.setdefault("VLLM_WORKER_MULTIPROC_METHOD", "fork")


def call_engine(model: str, fn: Callable[..., R], *args: Any) -> R:
    """``fn(*args)``, an engine call; a dead engine becomes :class:`EngineDead` (the run stops), other errors stay."""
    try:
        return fn(*args)
    except Exception as exc:
        if is_dead_engine(exc):
            raise EngineDead(f"{model}: the vLLM engine died ({type(exc).__name__}: {exc}); the run stops, and "
                             "running the same command again goes on from the last finished shard") from exc
        raise


class _VllmTeacher(Teacher):
    """One vLLM engine on the configured weights, sized by ``tensor_parallel_size`` and ``gpu_memory_utilization``."""

    thinking = False

    def __init__(self, config: QwenLlmConfig | QwenOmniConfig, **engine: Any) -> None:
        _logs_to_stderr()
        children_die_with_parent()
        from vllm import LLM

        super().__init__(config.batching, config)
        self.config = config
        self.model = config.model
        self.engine: Any = LLM(**engine_args(config, **engine))
        self.tok = self.engine.get_tokenizer()

    def _run(self, prompts: list[dict[str, Any]], requests: list[Request]) -> list[str]:
        from vllm import SamplingParams

        params = [SamplingParams(**kw) for kw in sampling_args(self.config, requests)]
        outputs = call_engine(self.model, functools.partial(self.engine.generate, use_tqdm=False), prompts,
                              params)
        return replies(outputs, self.thinking)

    def close(self) -> None:
        """Shut the engine down, so that its processes end with the stage."""
        engine, self.engine = getattr(self, "engine", None), None
        shutdown = getattr(getattr(engine, "llm_engine", None), "shutdown", None)
        if callable(shutdown):
            with contextlib.suppress(Exception):
                shutdown()


class VllmQwenLlm(_VllmTeacher):
    """Qwen3 on vLLM; the reply is the text after the last ``</think>``."""

    role = "llm"
    thinking = True

    def __init__(self, config: QwenLlmConfig) -> None:
        super().__init__(config)

    def generate(self, requests: list[Request]) -> list[str]:
        assert isinstance(self.config, QwenLlmConfig)
        prompts = [{"prompt": qwen3_prompt(self.tok, r, self.config.enable_thinking)} for r in requests]
        return self._run(prompts, requests)


def omni_prompts(config: QwenOmniConfig, requests: list[Request]) -> list[dict[str, Any]]:
    """The Omni thinker's prompts: one ``<|AUDIO|>`` placeholder that vLLM expands, the clip as multi-modal data."""
    prompts: list[dict[str, Any]] = []
    for r in requests:
        prompt: dict[str, Any] = {"prompt": omni_prompt(config.system_prompt, r.prompt,
                                                        1 if r.audio is not None else 0, r.prefix)}
        if r.audio is not None:
            prompt["multi_modal_data"] = {"audio": (clip_wave(r), SAMPLE_RATE)}
        prompts.append(prompt)
    return prompts


class VllmQwenOmni(_VllmTeacher):
    """The Omni thinker on vLLM: system prompt, then the clip (as multi-modal data) and the text."""

    role = "alm"

    def __init__(self, config: QwenOmniConfig) -> None:
        super().__init__(config, limit_mm_per_prompt={"audio": 1})

    def generate(self, requests: list[Request]) -> list[str]:
        assert isinstance(self.config, QwenOmniConfig)
        return self._run(omni_prompts(self.config, requests), requests)
