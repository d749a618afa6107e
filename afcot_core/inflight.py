"""Requests in flight: identical ones sent once.

:class:`InFlight` answers every caller of an identical request from one engine call while that call
is running (classification items that share a label ask the same text-only question at the same
moment). The bound on a server's requests and tokens in flight is the OpenAI backend's
(``afcot_qwen.budget``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class InFlight(Generic[T]):
    """Runs one call per key at a time; callers of a key already in flight share its result or error."""

    def __init__(self) -> None:
        self._calls: dict[Hashable, asyncio.Task[T]] = {}
        #: callers answered by a call another caller started
        self.shared = 0

    async def run(self, key: Hashable, call: Callable[[], Awaitable[T]]) -> T:
        task = self._calls.get(key)
        if task is not None and task.get_loop() is asyncio.get_running_loop() and not task.done():
            self.shared += 1
        else:
            task = asyncio.ensure_future(call())
            self._calls[key] = task
            task.add_done_callback(lambda done: self._forget(key, done))
        # shielded: one caller's cancellation must not cancel the call the others wait for
        return await asyncio.shield(task)

    def _forget(self, key: Hashable, done: asyncio.Task[T]) -> None:
        if self._calls.get(key) is done:
            del self._calls[key]
        if not done.cancelled():
            done.exception()  # retrieved: a failure nobody awaits any more is not reported as lost

    def __len__(self) -> int:
        return len(self._calls)
