"""The ``openai`` backend of the Qwen teachers: any OpenAI-compatible chat-completions server.

``vllm serve``, SGLang or a hosted endpoint: the server batches, so requests skip the micro-batcher
and go one HTTP call each, round-robin over ``base_urls``, with each server's load bounded by
requests and by tokens in flight (:class:`afcot_core.inflight.TokenBudget`). Failed calls (429, 5xx,
timeouts, dropped connections) are retried on the next server under the teacher's retry policy (the
generate stage's ``teacher_timeout_s``, ``teacher_retries``, ``retry_backoff_s``): exponential backoff
with jitter, or what ``Retry-After`` asks. The API key comes from the environment variable the
recipe names; it is sent in the ``Authorization`` header only and scrubbed from every error message.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import os
import struct
from email.utils import parsedate_to_datetime
from typing import Any

from afcot_core.errors import BadInput, TeacherError
from afcot_core.inflight import TokenBudget
from afcot_core.teacher import Request, RetryPolicy, Teacher
from afcot_qwen.config import QwenLlmConfig, QwenOmniConfig
from afcot_qwen.prompts import SAMPLE_RATE, clip_wave, reply_after_think

#: statuses that may go away on a retry, besides every 5xx
RETRIED_STATUS = frozenset({408, 409, 425, 429})


def wav_base64(wave: Any) -> str:
    """A 16 kHz mono clip as base64 WAV of 32-bit floats: the server hears exactly our samples.

    Written by hand: libsndfile adds a PEAK chunk with a timestamp to float WAV, so the same clip would
    not be the same request twice.
    """
    import numpy as np

    data = np.asarray(wave, dtype="<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, SAMPLE_RATE, SAMPLE_RATE * 4, 4, 32)  # IEEE float, mono
    riff = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return base64.b64encode(b"RIFF" + struct.pack("<I", len(riff)) + riff).decode("ascii")


def retry_after(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (delta seconds or an HTTP date); None when absent."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        import time

        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class _Servers:
    """The HTTP side: one client per event loop, a round-robin over the servers, one budget per server."""

    def __init__(self, config: QwenLlmConfig | QwenOmniConfig) -> None:
        self.config = config
        self.urls = config.server_urls()
        if not self.urls:
            raise BadInput(f"no server URLs: set the environment variable {config.base_urls_env}")
        self._key = os.environ.get(config.api_key_env, "") if config.api_key_env else ""
        if config.api_key_env and not self._key:
            raise BadInput(f"the API key is not set: export {config.api_key_env}=<key>")
        self._turn = itertools.count()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: Any = None
        self.budgets: list[TokenBudget] = []
        #: failed HTTP calls (then retried or given up), by kind: status code, timeout, connection, bad reply
        self.retried: dict[str, int] = {}

    def _bind(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return
        import httpx

        headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
        self._loop = loop
        self._client = httpx.AsyncClient(headers=headers,
                                         limits=httpx.Limits(max_connections=None, max_keepalive_connections=None))
        self.budgets = [TokenBudget(self.config.max_requests_per_server, self.config.max_tokens_per_server)
                        for _ in self.urls]

    def scrub(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text

    async def complete(self, body: dict[str, Any], cost: int, policy: RetryPolicy) -> dict[str, Any]:
        """POST ``body`` to ``/chat/completions``, retrying on the next server; the decoded reply."""
        import httpx

        self._bind()
        problem = ""
        for attempt in range(policy.retries + 1):
            index = next(self._turn) % len(self.urls)
            wait: float | None = None
            try:
                response = await self.budgets[index](cost, lambda i=index: self._post(i, body, policy.timeout_s))
            except (httpx.TimeoutException, TimeoutError):
                problem = f"no reply within {policy.timeout_s} s"
                self._count("timeout")
            except httpx.TransportError as exc:
                problem = f"connection: {type(exc).__name__}"
                self._count("connection")
            else:
                if response.status_code == 200:
                    try:
                        return response.json()
                    except ValueError:
                        problem = "the reply is not JSON"
                        self._count("bad reply")
                elif response.status_code in RETRIED_STATUS or response.status_code >= 500:
                    problem = f"HTTP {response.status_code}"
                    wait = retry_after(response.headers.get("retry-after"))
                    self._count(str(response.status_code))
                else:
                    raise TeacherError(self.scrub(f"{self.urls[index]} answered HTTP {response.status_code}: "
                                                  f"{response.text[:300]}"))
            if attempt < policy.retries:
                await asyncio.sleep(wait if wait is not None else policy.delay(attempt))
        raise TeacherError(self.scrub(f"{self.config.model}: {problem} (after {policy.retries + 1} tries "
                                      f"over {len(self.urls)} server(s))"))

    async def _post(self, index: int, body: dict[str, Any], timeout_s: float) -> Any:
        """One HTTP call, abandoned after ``timeout_s`` in all (httpx's own timeout is per read, not per call)."""
        return await asyncio.wait_for(
            self._client.post(f"{self.urls[index]}/chat/completions", json=body, timeout=timeout_s), timeout_s)

    def _count(self, kind: str) -> None:
        self.retried[kind] = self.retried.get(kind, 0) + 1


class _OpenAiTeacher(Teacher):
    """Sends each request as one chat completion; the server batches."""

    offload = False

    def __init__(self, config: QwenLlmConfig | QwenOmniConfig) -> None:
        super().__init__(config.batching, config)
        self.config = config
        self.model = config.model
        self.servers = _Servers(config)

    def _messages(self, request: Request) -> list[dict[str, Any]]:
        raise NotImplementedError

    def _extra(self) -> dict[str, Any]:
        return {}

    def body(self, request: Request) -> dict[str, Any]:
        """The chat-completions body of ``request``: messages, sampling settings and seed, prefix continuation."""
        c = self.config
        body: dict[str, Any] = {"model": c.served_model or c.model, "messages": self._messages(request),
                                "max_tokens": c.max_new_tokens, "temperature": c.temperature, **self._extra()}
        if c.temperature > 0:  # greedy replies do not depend on a seed: the body carries none
            body["seed"] = c.seed if request.seed is None else request.seed
            body["top_p"] = c.top_p
            if c.top_k:
                body["top_k"] = c.top_k
        if request.prefix:  # continue the assistant turn after the prefix (vLLM / SGLang extension)
            body["messages"].append({"role": "assistant", "content": request.prefix})
            body.update(continue_final_message=True, add_generation_prompt=False)
        return body

    def cost(self, request: Request) -> int:
        """Tokens the request may hold on the server: a prompt estimate (4 characters a token, 25 audio
        tokens a second) plus the reply budget."""
        text = len(request.prompt) + len(request.prefix) + len(getattr(self.config, "system_prompt", ""))
        audio = 0
        if request.audio is not None and request.audio.duration:
            audio = int(min(30.0, request.audio.duration) * 25)
        return text // 4 + audio + self.config.max_new_tokens

    async def _submit(self, request: Request) -> str:
        body = await asyncio.to_thread(self.body, request) if request.audio is not None else self.body(request)
        reply = await self.servers.complete(body, self.cost(request), self.retry)
        try:
            content = reply["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            raise TeacherError(f"{self.config.model}: a chat completion without choices[0].message") from None
        return reply_after_think(content)

    def generate(self, requests: list[Request]) -> list[str]:
        """A batch, sent as concurrent requests (for callers outside an event loop)."""

        async def all_of() -> list[str]:
            return list(await asyncio.gather(*(self._submit(r) for r in requests)))

        return asyncio.run(all_of())


class OpenAiQwenLlm(_OpenAiTeacher):
    """Qwen3 behind a server; ``enable_thinking`` goes as ``chat_template_kwargs``, the reply after ``</think>``."""

    role = "llm"

    def _messages(self, request: Request) -> list[dict[str, Any]]:
        return [{"role": "user", "content": request.prompt}]

    def _extra(self) -> dict[str, Any]:
        assert isinstance(self.config, QwenLlmConfig)
        return {"chat_template_kwargs": {"enable_thinking": self.config.enable_thinking}}


class OpenAiQwenOmni(_OpenAiTeacher):
    """The Omni thinker behind a server; the clip goes as base64 ``input_audio`` before the text."""

    role = "alm"

    def _messages(self, request: Request) -> list[dict[str, Any]]:
        assert isinstance(self.config, QwenOmniConfig)
        content: list[dict[str, Any]] = []
        if request.audio is not None:
            content.append({"type": "input_audio",
                            "input_audio": {"data": wav_base64(clip_wave(request)), "format": "wav"}})
        content.append({"type": "text", "text": request.prompt})
        return [{"role": "system", "content": self.config.system_prompt}, {"role": "user", "content": content}]
