"""The ``openai`` backend of the Qwen teachers: any OpenAI-compatible chat-completions server.

``vllm serve``, SGLang or a hosted endpoint: the server batches, so requests skip the micro-batcher
and go one HTTP call each, round-robin over the servers that are up, with each server's load bounded
by requests and by tokens in flight (:class:`afcot_qwen.budget.TokenBudget`). Failed calls (429,
5xx, timeouts, dropped connections) are retried on the next server under the teacher's retry policy
(the generate stage's ``teacher_timeout_s``, ``teacher_retries``, ``retry_backoff_s``): exponential
backoff with jitter, or what ``Retry-After`` asks.

A server that cannot be reached (connection refused or dropped, 502 / 503 / 504, no reply in time)
is probed (``GET /models``); when the probe fails too, it leaves the rotation, is probed again with
backoff, and comes back when it answers; the request goes to another server without spending a
try. When no server is up, requests wait ("waiting for servers: 0 of N up" on the console and in the
run log) and resume when one is back; they fail only after ``outage_timeout_s``.

The API key comes from the environment variable the recipe names; it is sent in the
``Authorization`` header only and scrubbed from every error message.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import itertools
import os
import struct
import time
from email.utils import parsedate_to_datetime
from typing import Any

from afcot_core.api import BadInput, Request, RetryPolicy, Teacher, TeacherError, get_logger
from afcot_qwen.budget import TokenBudget
from afcot_qwen.config import QwenLlmConfig, QwenOmniConfig
from afcot_qwen.prompts import SAMPLE_RATE, assistant_prefix, clip_wave, reply_text

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
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


#: statuses of a proxy whose server is gone (or not there yet): the server is probed
UNREACHABLE_STATUS = frozenset({502, 503, 504})
#: the longest wait between two probes of a server that is down
PROBE_MAX_S = 10.0
_log = get_logger("afcot.teacher")


class _Server:
    """One server: its URL, its budget of requests and tokens in flight, whether it is up."""

    def __init__(self, url: str, budget: TokenBudget) -> None:
        self.url, self.budget = url, budget
        self.up = True
        #: the probe running for this server (a check after a failure, or the watch while it is down)
        self.probe: asyncio.Task[bool] | None = None
        self.watch: asyncio.Task[None] | None = None


class _Servers:
    """The HTTP side: one client per event loop, a round-robin over the servers that are up, one budget each."""

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
        self.servers: list[_Server] = []
        self._any_up: asyncio.Event | None = None
        #: when the last server went down (None while one is up)
        self._outage_since: float | None = None
        self._policy = RetryPolicy()
        #: failed HTTP calls (then retried or given up), by kind: status code, timeout, connection, bad reply
        self.retried: dict[str, int] = {}
        #: servers taken out of the rotation, and brought back, in this process
        self.downs = self.ups = 0

    @property
    def budgets(self) -> list[TokenBudget]:
        return [s.budget for s in self.servers]

    def _bind(self, policy: RetryPolicy) -> None:
        self._policy = policy
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return
        import httpx

        headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
        self._loop = loop
        self._client = httpx.AsyncClient(headers=headers,
                                         limits=httpx.Limits(max_connections=None, max_keepalive_connections=None))
        self.servers = [_Server(url, TokenBudget(self.config.max_requests_per_server,
                                                 self.config.max_tokens_per_server)) for url in self.urls]
        self._any_up = asyncio.Event()
        self._any_up.set()
        self._outage_since = None

    def scrub(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text

    def _up_count(self) -> int:
        return sum(s.up for s in self.servers)

    async def _pick(self) -> _Server:
        """The next server that is up, round robin; while none is, wait (at most the outage budget)."""
        assert self._any_up is not None
        while True:
            up = [s for s in self.servers if s.up]
            if up:  # turns over the servers that are up: a down server's turns are not all its neighbour's
                return up[next(self._turn) % len(up)]
            since = self._outage_since if self._outage_since is not None else time.monotonic()
            left = self._policy.outage_s - (time.monotonic() - since)
            if left <= 0:
                raise TeacherError(self.scrub(
                    f"{self.config.model}: no server up for {self._policy.outage_s:g} s (0 of {len(self.servers)} "
                    f"up: {', '.join(self.urls)})"))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._any_up.wait(), left)

    async def complete(self, body: dict[str, Any], cost: int, policy: RetryPolicy) -> dict[str, Any]:
        """POST ``body`` to ``/chat/completions``, retrying on the next server; the decoded reply."""
        import httpx

        self._bind(policy)
        problem = ""
        tries = 0
        while True:
            server = await self._pick()
            wait: float | None = None
            unreachable = False
            try:
                response = await server.budget(cost, functools.partial(self._post, server, body, policy.timeout_s))
            except (httpx.TimeoutException, TimeoutError):
                problem, unreachable = f"no reply within {policy.timeout_s} s", True
                self._count("timeout")
            except httpx.TransportError as exc:
                problem, unreachable = f"connection: {type(exc).__name__}", True
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
                    unreachable = response.status_code in UNREACHABLE_STATUS
                    wait = retry_after(response.headers.get("retry-after"))
                    self._count(str(response.status_code))
                else:
                    raise TeacherError(self.scrub(f"{server.url} answered HTTP {response.status_code}: "
                                                  f"{response.text[:300]}"))
            if unreachable and not await self._check(server, problem):
                continue  # the server is down, not the request at fault: another server, or wait for one
            tries += 1
            if tries > policy.retries:
                raise TeacherError(self.scrub(f"{self.config.model}: {problem} (after {tries} tries "
                                              f"over {len(self.urls)} server(s))"))
            await asyncio.sleep(wait if wait is not None else policy.delay(tries - 1))

    async def _check(self, server: _Server, problem: str) -> bool:
        """Whether ``server`` still answers after a failed call; one probe for every caller at once."""
        if not server.up:
            return False
        if server.probe is None or server.probe.done():
            server.probe = asyncio.ensure_future(self._probe(server))
        if await asyncio.shield(server.probe):
            return True
        self._down(server, problem)
        return False

    async def _probe(self, server: _Server) -> bool:
        """One ``GET /models``: the server is up when it answers anything but a proxy's 502 / 503 / 504 or a 5xx."""
        import httpx

        timeout = min(self._policy.timeout_s, PROBE_MAX_S)
        try:
            response = await asyncio.wait_for(self._client.get(f"{server.url}/models", timeout=timeout), timeout)
        except (httpx.HTTPError, TimeoutError, OSError):
            return False
        return response.status_code < 500

    def _down(self, server: _Server, problem: str) -> None:
        if not server.up:
            return
        assert self._any_up is not None
        server.up = False
        self.downs += 1
        up = self._up_count()
        if up == 0:
            self._outage_since = time.monotonic()
            self._any_up.clear()
            _log.warning(f"waiting for servers: 0 of {len(self.servers)} up", model=self.config.model,
                         problem=self.scrub(problem), outage_timeout_s=self._policy.outage_s)
        else:
            _log.warning(f"server out of rotation: {up} of {len(self.servers)} up", model=self.config.model,
                         server=server.url, problem=self.scrub(problem))
        server.watch = asyncio.ensure_future(self._watch(server))

    async def _watch(self, server: _Server) -> None:
        """Probe a server that is down, with backoff (``retry_backoff_s`` doubled, at most 10 s), until it answers."""
        assert self._any_up is not None
        delay = max(self._policy.backoff_s, 0.05)
        while not await self._probe(server):
            await asyncio.sleep(min(delay, PROBE_MAX_S))
            delay *= 2
        server.up = True
        self.ups += 1
        if self._outage_since is not None:
            _log.warning(f"servers back: {self._up_count()} of {len(self.servers)} up", model=self.config.model,
                         server=server.url, outage_s=round(time.monotonic() - self._outage_since, 1))
        self._outage_since = None
        self._any_up.set()

    async def _post(self, server: _Server, body: dict[str, Any], timeout_s: float) -> Any:
        """One HTTP call, abandoned after ``timeout_s`` in all (httpx's own timeout is per read, not per call)."""
        return await asyncio.wait_for(
            self._client.post(f"{server.url}/chat/completions", json=body, timeout=timeout_s), timeout_s)

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

    #: the reply is read after the last ``</think>`` (Qwen3)
    thinking = False
    #: Qwen3's ``enable_thinking`` (None: a model without thinking mode)
    enable_thinking: bool | None = None

    def body(self, request: Request) -> dict[str, Any]:
        """The chat-completions body of ``request``: messages, sampling settings (and the request's seed when the
        teacher samples), special tokens kept in the reply, a prefix continued as the in-process prompt does."""
        c = self.config
        body: dict[str, Any] = {"model": c.served_model or c.model, "messages": self._messages(request),
                                "max_tokens": c.max_new_tokens, "temperature": c.temperature,
                                "skip_special_tokens": False, **c.extra_body, **c.extra_run_body, **self._extra()}
        if c.temperature > 0:  # greedy replies do not depend on a seed: the body carries none
            body["seed"] = c.seed if request.seed is None else request.seed
            body["top_p"] = c.top_p
            if c.top_k:
                body["top_k"] = c.top_k
        if request.prefix:  # continue the assistant turn after the prefix (vLLM / SGLang extension)
            body["messages"].append({"role": "assistant", "content": assistant_prefix(request, self.enable_thinking)})
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
        return reply_text(content, self.thinking)  # a reasoning parser's content has no </think>: the same rule

    def generate(self, requests: list[Request]) -> list[str]:
        """A batch, sent as concurrent requests (for callers outside an event loop)."""

        async def all_of() -> list[str]:
            return list(await asyncio.gather(*(self._submit(r) for r in requests)))

        return asyncio.run(all_of())


class OpenAiQwenLlm(_OpenAiTeacher):
    """Qwen3 behind a server; ``enable_thinking`` goes as ``chat_template_kwargs``, the reply after ``</think>``."""

    role = "llm"
    thinking = True

    def __init__(self, config: QwenLlmConfig) -> None:
        super().__init__(config)
        self.enable_thinking = config.enable_thinking

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
