"""The teacher protocol: async per-item requests, coalesced into engine batches by a micro-batcher.

A strategy awaits ``teacher.ask(prompt, audio)`` once per step of one item, exactly as in the
paper's pseudo-code; many items run concurrently, and each teacher's :class:`MicroBatcher` turns
their concurrent requests into batches for the engine (``max_batch``, ``max_wait_ms``,
``max_concurrency`` in-flight batches). A backend only implements ``generate(requests)``.

Faults: every engine call has a timeout; a failed batch is split in halves until the failing
request is alone, so it never fails its batch-mates; a lone failing request is retried with
exponential backoff and jitter (:class:`RetryPolicy`), then raises :class:`TeacherError`. Errors
that mean a bug in the backend (``TypeError``, ``AttributeError``...) and :class:`EngineDead` (an
engine that can answer nothing any more) are never retried: they stop the run.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Literal

import msgspec

from afcot_core.batcher import NOT_RETRIED, MicroBatcher, in_daemon_thread
from afcot_core.cache import ReplayCache
from afcot_core.errors import TeacherError
from afcot_core.inflight import InFlight
from afcot_core.records import AudioRef


class Batching(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How a teacher's requests are coalesced."""

    #: most requests in one engine call
    max_batch: int = 16
    #: how long a partial batch waits for more requests before it goes
    max_wait_ms: float = 5.0
    #: engine calls in flight at once
    max_concurrency: int = 1

    def __post_init__(self) -> None:
        if self.max_batch < 1 or self.max_concurrency < 1 or self.max_wait_ms < 0:
            raise ValueError("max_batch and max_concurrency must be >= 1 and max_wait_ms >= 0")


class Sampling(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """How a teacher samples its replies; teacher configs inherit these fields (and may change their defaults)."""

    #: sampling temperature; 0 decodes greedily
    temperature: float = 0.0
    #: nucleus sampling: keep the smallest set of tokens (an embedded teacher: phrasings) whose probability reaches
    #: top_p (1 keeps all)
    top_p: float = 1.0
    #: keep only the top_k most likely tokens (phrasings) before sampling (0 keeps all)
    top_k: int = 0
    #: sampling seed of a request that carries none (a run's requests carry their own, derived from the run seed)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.temperature < 0 or not 0 < self.top_p <= 1 or self.top_k < 0:
            raise ValueError("temperature must be >= 0, top_p in (0, 1], top_k >= 0")


class RetryPolicy(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How long an engine call may take and how often a failed request is tried again."""

    #: seconds one engine call (one batch) may take before it is abandoned
    timeout_s: float = 600.0
    #: tries after the first one for a request whose engine call failed or timed out
    retries: int = 3
    #: delay before the first retry in seconds; doubled at each retry, with random jitter, at most 60 s
    backoff_s: float = 1.0
    #: seconds a teacher's servers may all be down before the requests waiting for them fail
    outage_s: float = 900.0

    def __post_init__(self) -> None:
        if self.timeout_s <= 0 or self.retries < 0 or self.backoff_s < 0:
            raise ValueError("timeout_s must be > 0, retries and backoff_s >= 0")
        if self.outage_s < 0:
            raise ValueError("outage_s must be >= 0")

    def delay(self, retry: int) -> float:
        """Seconds to wait before ``retry`` (0-based): exponential, capped, with "equal jitter"."""
        ceiling = min(60.0, self.backoff_s * 2**retry)
        return ceiling / 2 + random.uniform(0, ceiling / 2)


@dataclass(frozen=True)
class Request:
    """One prompt for a teacher; ``audio`` is None for text-only requests.

    ``prefix`` is the start of the answer, already written: the teacher continues after it and
    replies with the continuation only (used to repair a cut-off CoT).
    """

    prompt: str
    audio: AudioRef | None = None
    prefix: str = ""
    #: sampling seed of this request (see :func:`request_seed`); set only for a teacher that samples (None:
    #: greedy, or the backend's own seed)
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
    #: the replay-cache key of this request ("" when no cache is used); see :meth:`Teacher.remember`
    key: str = ""


class Teacher(ABC):
    """Base of every teacher. Subclasses set ``role`` and ``model`` and implement :meth:`generate`."""

    role: Literal["alm", "llm"]
    model: str = "unknown"
    #: run ``generate`` in a worker thread so the event loop keeps feeding other items
    offload: bool = True

    def __init__(self, batching: Batching | None = None, sampling: Sampling | None = None) -> None:
        self.batching = batching or Batching()
        self._sampling = sampling
        self._sampled: bool | None = None
        self.retry = RetryPolicy()
        self._batcher: MicroBatcher | None = None
        self._cache: ReplayCache | None = None
        self._scope = ""
        self._inflight: InFlight[str] = InFlight()

    @property
    def sampled(self) -> bool:
        """Whether replies depend on the request's seed: the teacher's sampling (or its ``config``) has a temperature.

        Only a sampled teacher's requests carry a seed; requests are identical, and shared while in flight,
        exactly when everything the engine sees of them is equal.
        """
        if self._sampled is not None:
            return self._sampled
        sampling = self._sampling if self._sampling is not None else getattr(self, "config", None)
        return isinstance(sampling, Sampling) and sampling.temperature > 0

    @sampled.setter
    def sampled(self, value: bool) -> None:
        self._sampled = value

    def close(self) -> None:
        """Let go of the engine (its processes, its memory); the teacher is not used afterwards."""
        return None

    def use_cache(self, cache: ReplayCache, scope: str) -> None:
        """Answer repeated requests from ``cache``; ``scope`` identifies this teacher and its config.

        Nothing is stored by :meth:`ask`: the caller stores the replies it accepted with :meth:`remember`.
        """
        self._cache, self._scope = cache, scope

    def use_retry(self, policy: RetryPolicy) -> None:
        """Set the timeout and retries of engine calls (before the first request)."""
        self.retry, self._batcher = policy, None

    async def remember(self, replies: list[Reply]) -> None:
        """Store ``replies`` (from :meth:`ask`, accepted by the caller) in the replay cache."""
        entries = [(r.key, r.text) for r in replies if r.key and not r.cache_hit]
        if self._cache is not None and entries:
            await self._cache.put_many(entries)

    @abstractmethod
    def generate(self, requests: list[Request]) -> list[str]:
        """Answer a batch of requests, in order."""

    async def _run_batch(self, requests: list[Request]) -> list[str]:
        if self.offload:
            return await in_daemon_thread(self.generate, requests)
        return self.generate(requests)

    async def ask(self, prompt: str, audio: AudioRef | None = None, prefix: str = "", attempt: int = 0,
                  seed: int | None = None) -> Reply:
        """One request; concurrent calls are batched, repeated ones answered from the replay cache.

        ``attempt`` numbers re-asks of the same prompt, so that a retry is not answered from the cache.
        Raises :class:`TeacherError` when the engine keeps failing.
        """
        request = Request(prompt, audio, prefix, seed if self.sampled else None)  # a seed only when sampling
        key = ReplayCache.key(self._scope, f"{attempt}:{seed}:{prompt}", prefix, audio) if self._cache else ""
        if self._cache is not None and (hit := await self._cache.get(key)) is not None:
            return Reply(hit, 0.0, cache_hit=True, key=key)
        start = time.perf_counter()
        # identical requests in flight: one call. The key is the request itself (AudioRef compares by
        # content), so requests that differ in anything the engine sees are never merged.
        text = await self._inflight.run(request, lambda: self._submit(request))
        return Reply(text, time.perf_counter() - start, key=key)

    async def _submit(self, request: Request) -> str:
        """The engine's reply through the micro-batcher; failed calls retried with backoff."""
        if self._batcher is None:
            self._batcher = MicroBatcher(self._run_batch, self.batching, self.retry.timeout_s)
        for retry in range(self.retry.retries + 1):
            try:
                return await self._batcher.submit(request)
            except NOT_RETRIED:
                raise
            except Exception as exc:
                if retry == self.retry.retries:
                    raise TeacherError(f"{self.model}: {type(exc).__name__}: {exc} "
                                       f"(after {retry + 1} tries)") from exc
            await asyncio.sleep(self.retry.delay(retry))
        raise AssertionError("unreachable")

    @property
    def batch_sizes(self) -> list[int]:
        return self._batcher.batch_sizes if self._batcher else []
