"""A server's load bounded by requests and tokens in flight, for the OpenAI-compatible backend.

:class:`TokenBudget` admits a request to a server only while both the number of requests and the tokens they may
occupy (prompt + reply budget) stay under the server's limits (moved here from ``afcot_core.inflight``: only this
backend bounds a server).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")


@dataclass(eq=False)
class _Waiter:
    cost: int
    admitted: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    #: how many later requests were admitted ahead of this one
    passed: int = 0


class TokenBudget:
    """At most ``max_requests`` requests and ``max_tokens`` tokens in flight (``max_tokens`` 0: no token bound).

    Admission is first come, first served, except that a request that fits may pass an older one that
    does not, so short requests are not held behind long ones; an older request is passed at most
    ``max_requests`` times, after which nothing passes it. A request larger than ``max_tokens``
    runs alone.
    """

    def __init__(self, max_requests: int, max_tokens: int = 0) -> None:
        if max_requests < 1 or max_tokens < 0:
            raise ValueError("max_requests must be >= 1 and max_tokens >= 0")
        self.max_requests, self.max_tokens = max_requests, max_tokens
        self.requests = 0
        self.tokens = 0
        self._waiting: deque[_Waiter] = deque()
        #: the most tokens and requests that were in flight at once
        self.peak_tokens = 0
        self.peak_requests = 0

    def _fits(self, cost: int) -> bool:
        if self.requests >= self.max_requests:
            return False
        return self.max_tokens == 0 or self.requests == 0 or self.tokens + cost <= self.max_tokens

    def _take(self, cost: int) -> None:
        self.requests += 1
        self.tokens += cost
        self.peak_tokens = max(self.peak_tokens, self.tokens)
        self.peak_requests = max(self.peak_requests, self.requests)

    async def acquire(self, cost: int) -> None:
        waiter = _Waiter(cost)
        self._waiting.append(waiter)
        self._admit()
        try:
            await waiter.admitted
        except BaseException:
            if waiter in self._waiting:
                self._waiting.remove(waiter)
            elif waiter.admitted.done() and not waiter.admitted.cancelled():
                self.release(cost)  # admitted and cancelled at the same moment: hand the slot back
            raise

    def release(self, cost: int) -> None:
        self.requests -= 1
        self.tokens -= cost
        self._admit()

    def _admit(self) -> None:
        blocked: list[_Waiter] = []
        for waiter in list(self._waiting):
            if any(b.passed >= self.max_requests for b in blocked):
                break  # an older request has been passed often enough: it goes next
            if self._fits(waiter.cost):
                self._waiting.remove(waiter)
                for b in blocked:
                    b.passed += 1
                self._take(waiter.cost)
                waiter.admitted.set_result(None)
            else:
                blocked.append(waiter)
            if self.requests >= self.max_requests:
                break

    async def __call__(self, cost: int, call: Callable[[], Awaitable[T]]) -> T:
        """``await call()`` once ``cost`` tokens are admitted; released when it ends."""
        await self.acquire(cost)
        try:
            return await call()
        finally:
            self.release(cost)
