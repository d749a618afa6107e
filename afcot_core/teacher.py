"""The teacher protocol: async per-item requests, coalesced into engine batches by a micro-batcher.

A strategy awaits ``teacher.ask(prompt, audio)`` once per step of one item, exactly as in the
paper's pseudo-code; many items run concurrently, and each teacher's :class:`MicroBatcher` turns
their concurrent requests into batches for the engine (``max_batch``, ``max_wait_ms``,
``max_concurrency`` in-flight batches). A backend only implements ``generate(requests)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

import msgspec

from afcot_core.cache import ReplayCache
from afcot_core.records import AudioRef


class Batching(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How a teacher's requests are coalesced."""

    max_batch: int = 16
    max_wait_ms: float = 5.0
    max_concurrency: int = 1

    def __post_init__(self) -> None:
        if self.max_batch < 1 or self.max_concurrency < 1 or self.max_wait_ms < 0:
            raise ValueError("max_batch and max_concurrency must be >= 1 and max_wait_ms >= 0")


@dataclass(frozen=True)
class Request:
    """One prompt for a teacher; ``audio`` is None for text-only requests.

    ``prefix`` is the start of the answer, already written: the teacher continues after it and
    replies with the continuation only (used to repair a cut-off CoT).
    """

    prompt: str
    audio: AudioRef | None = None
    prefix: str = ""
    #: sampling seed of this request (see :func:`request_seed`); None lets the backend use its own
    seed: int | None = None


def request_seed(run_seed: int, item_id: str, step: str, attempt: int) -> int:
    """The seed of one request: a function of the run seed, the item, the step and the attempt only.

    So a sampled reply is reproducible across runs, resumes and ranks, and a re-ask gets a fresh sample.
    """
    digest = hashlib.blake2b(f"{run_seed}\x1f{item_id}\x1f{step}\x1f{attempt}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") & 0x7FFFFFFF


@dataclass(frozen=True)
class Reply:
    text: str
    latency_s: float
    cache_hit: bool = False


class MicroBatcher:
    """Coalesces concurrent ``submit`` calls into calls of ``run_batch`` on lists of requests.

    A batch is formed only when the engine has a free slot (at most ``max_concurrency`` batches in
    flight), so requests that arrive while the engine is busy join the next batch. A partial batch
    waits up to ``max_wait_ms`` for more requests; a full one goes at once.
    """

    def __init__(self, run_batch: Callable[[list[Request]], Awaitable[list[str]]], batching: Batching) -> None:
        self._run_batch = run_batch
        self._batching = batching
        self._pending: list[tuple[Request, asyncio.Future[str]]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots: asyncio.Semaphore | None = None
        self._full: asyncio.Event | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.batch_sizes: list[int] = []

    async def submit(self, request: Request) -> str:
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._full is None:  # a teacher may serve several event loops in turn
            self._loop, self._pending, self._dispatcher = loop, [], None
            self._slots = asyncio.Semaphore(self._batching.max_concurrency)
            self._full = asyncio.Event()
        future: asyncio.Future[str] = loop.create_future()
        self._pending.append((request, future))
        if len(self._pending) >= self._batching.max_batch:
            self._full.set()
        if self._dispatcher is None:
            self._dispatcher = loop.create_task(self._dispatch())
        return await future

    async def _dispatch(self) -> None:
        assert self._slots is not None and self._full is not None
        size, wait = self._batching.max_batch, self._batching.max_wait_ms / 1000
        try:
            while self._pending:
                await self._slots.acquire()
                if len(self._pending) < size and wait > 0:
                    self._full.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._full.wait(), wait)
                batch, self._pending = self._pending[:size], self._pending[size:]
                task = asyncio.get_running_loop().create_task(self._run(batch))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        finally:
            self._dispatcher = None

    async def _run(self, batch: list[tuple[Request, asyncio.Future[str]]]) -> None:
        assert self._slots is not None
        self.batch_sizes.append(len(batch))
        try:
            replies = await self._run_batch([r for r, _ in batch])
            if len(replies) != len(batch):
                raise RuntimeError(f"engine returned {len(replies)} replies for {len(batch)} requests")
        except Exception as exc:
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)
            return
        finally:
            self._slots.release()
        for (_, fut), reply in zip(batch, replies, strict=True):
            if not fut.done():
                fut.set_result(reply)


class Teacher(ABC):
    """Base of every teacher. Subclasses set ``role`` and ``model`` and implement :meth:`generate`."""

    role: Literal["alm", "llm"]
    model: str = "unknown"
    #: run ``generate`` in a worker thread so the event loop keeps feeding other items
    offload: bool = True

    def __init__(self, batching: Batching | None = None) -> None:
        self.batching = batching or Batching()
        self._batcher: MicroBatcher | None = None
        self._cache: ReplayCache | None = None
        self._scope = ""

    def use_cache(self, cache: ReplayCache, scope: str) -> None:
        """Answer repeated requests from ``cache``; ``scope`` identifies this teacher and its config."""
        self._cache, self._scope = cache, scope

    @abstractmethod
    def generate(self, requests: list[Request]) -> list[str]:
        """Answer a batch of requests, in order."""

    async def _run_batch(self, requests: list[Request]) -> list[str]:
        if self.offload:
            return await asyncio.to_thread(self.generate, requests)
        return self.generate(requests)

    async def ask(self, prompt: str, audio: AudioRef | None = None, prefix: str = "", attempt: int = 0,
                  seed: int | None = None) -> Reply:
        """One request; concurrent calls are batched, repeated ones answered from the replay cache.

        ``attempt`` numbers re-asks of the same prompt, so that a retry is not answered from the cache.
        """
        key = ReplayCache.key(self._scope, f"{attempt}:{prompt}", prefix, audio) if self._cache else ""
        if self._cache is not None and (hit := self._cache.get(key)) is not None:
            return Reply(hit, 0.0, cache_hit=True)
        if self._batcher is None:
            self._batcher = MicroBatcher(self._run_batch, self.batching)
        start = time.perf_counter()
        text = await self._batcher.submit(Request(prompt, audio, prefix, seed))
        if self._cache is not None:
            self._cache.put(key, text)
        return Reply(text, time.perf_counter() - start)

    @property
    def batch_sizes(self) -> list[int]:
        return self._batcher.batch_sizes if self._batcher else []
