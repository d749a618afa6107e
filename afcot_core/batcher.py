"""The micro-batcher: concurrent requests of many items coalesced into engine batches, faults kept to one request.

A batch is formed when the engine has a free slot; a failed batch is split in halves until the failing request
is alone. Engine calls run in daemon threads (:func:`in_daemon_thread`), so a hung call never blocks the exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from afcot_core.errors import PROGRAMMING_ERRORS, AfcotError

if TYPE_CHECKING:
    from afcot_core.teacher import Batching, Request

R = TypeVar("R")


class EngineDead(AfcotError):
    """An in-process engine that can answer nothing any more (vLLM's ``EngineDeadError``, a lost device).

    Never retried and never a ``failed`` item: the run stops at once with exit 1 and this message, and no
    shard that was still open is marked done. Running the same command again, once the engine is fixed,
    goes on from the last finished shard.
    """


#: what a teacher call may raise that is no fault of one request: never retried, never split, never ``failed``
NOT_RETRIED: tuple[type[BaseException], ...] = (*PROGRAMMING_ERRORS, EngineDead)


async def in_daemon_thread(fn: Callable[..., R], *args: Any) -> R:
    """``fn(*args)`` in a daemon thread: a call that hangs can be abandoned and never blocks the exit."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[R] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if not future.done():
            future.set_exception(error) if error is not None else future.set_result(result)

    def work() -> None:
        try:
            result, error = fn(*args), None
        except BaseException as exc:  # handed to the awaiting coroutine
            result, error = None, exc
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits for this call any more
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=work, name="afcot-teacher", daemon=True).start()
    return await future


class MicroBatcher:
    """Coalesces concurrent ``submit`` calls into calls of ``run_batch`` on lists of requests.

    A batch is formed only when the engine has a free slot (at most ``max_concurrency`` batches in
    flight), so requests that arrive while the engine is busy join the next batch. A partial batch
    waits up to ``max_wait_ms`` for more requests; a full one goes at once.
    """

    def __init__(self, run_batch: Callable[[list[Request]], Awaitable[list[str]]], batching: Batching,
                 timeout_s: float | None = None) -> None:
        self._run_batch = run_batch
        self._batching = batching
        self._timeout_s = timeout_s
        self._pending: list[tuple[Request, asyncio.Future[str]]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots: asyncio.Semaphore | None = None
        self._full: asyncio.Event | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.batch_sizes: list[int] = []
        #: the engine's death, once seen: every later request fails with it at once, without an engine call
        self._dead: EngineDead | None = None

    async def submit(self, request: Request) -> str:
        if self._dead is not None:
            raise self._dead
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
                if not batch:  # a dead engine failed the requests that were waiting for this slot
                    self._slots.release()
                    break
                task = asyncio.get_running_loop().create_task(self._run(batch))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        finally:
            self._dispatcher = None

    async def _run(self, batch: list[tuple[Request, asyncio.Future[str]]]) -> None:
        assert self._slots is not None
        self.batch_sizes.append(len(batch))
        try:
            await self._answer(batch)
        finally:
            self._slots.release()

    async def _answer(self, batch: list[tuple[Request, asyncio.Future[str]]]) -> None:
        """One engine call for ``batch``; when it fails, each half is tried on its own (bugs excepted)."""
        try:
            replies = await asyncio.wait_for(self._run_batch([r for r, _ in batch]), self._timeout_s)
            if len(replies) != len(batch):
                raise RuntimeError(f"engine returned {len(replies)} replies for {len(batch)} requests")
        except Exception as exc:
            if len(batch) > 1 and not isinstance(exc, NOT_RETRIED):
                half = len(batch) // 2
                await self._answer(batch[:half])
                await self._answer(batch[half:])
                return
            if isinstance(exc, TimeoutError):
                exc = TimeoutError(f"no reply within {self._timeout_s} s")
            if isinstance(exc, EngineDead):
                self._dead = exc
                batch = [*batch, *self._pending]  # the requests waiting for the engine fail with it
                self._pending = []
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)
            return
        for (_, fut), reply in zip(batch, replies, strict=True):
            if not fut.done():
                fut.set_result(reply)
