"""What strategies, validators, sources and sinks look like to the runner."""

from __future__ import annotations

import asyncio
import contextvars
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from afcot_core.errors import Rejected
from afcot_core.jsonreply import ReplyError, parse_json_reply
from afcot_core.records import AudioRef, CoT, Item, Kind, Record, TeacherCall
from afcot_core.teacher import Reply, Teacher, request_seed

T = TypeVar("T")


@dataclass
class Evidence:
    """What a strategy gathered before composing: the chain C = [(query, answer), ...] and the verdicts.

    ``chain[0]`` is the caption query and the caption. ``prediction`` is the LLM's own answer and
    ``judge`` its verdict on whether the ground truth can be inferred from the chain.
    """

    chain: list[tuple[str, str]]
    prediction: str | None = None
    judge: bool = False
    notes: dict[str, object] = field(default_factory=dict)

    @property
    def caption(self) -> str:
        return self.chain[0][1] if self.chain else ""


class _Lane:
    """The calls of one concurrent branch of an item, in the order that branch made them.

    Entries are calls (``None`` until answered) and the lanes of branches started from this one, each
    placed where it made its first call. The trace is the depth-first walk of the item's lanes.
    """

    __slots__ = ("ctx", "entries", "task")

    def __init__(self, ctx: ItemContext | None, task: asyncio.Task | None) -> None:
        self.ctx, self.task = ctx, task
        self.entries: list[TeacherCall | _Lane | None] = []

    def walk(self) -> Iterator[TeacherCall]:
        for entry in self.entries:
            if isinstance(entry, _Lane):
                yield from entry.walk()
            elif entry is not None:
                yield entry


#: the lane of the running branch; a task started by a branch inherits it and opens a lane of its own
_LANE: contextvars.ContextVar[_Lane | None] = contextvars.ContextVar("afcot_trace_lane", default=None)


class ItemContext:
    """The teachers as one item sees them: every call is recorded in ``trace``, in an order fixed when it is asked.

    Each concurrent branch of an item (a task, e.g. one argument of ``asyncio.gather``) has a lane of its
    own, placed in its parent's lane where the branch makes its first call; a branch's later calls (a JSON
    re-ask, a follow-up) go into its lane, after its earlier ones. So the trace depends on what the
    strategy asks, never on the order in which replies come back. ``replies`` lists what the teachers
    said; :meth:`usable_replies` leaves out those the item could not use (malformed JSON).
    """

    def __init__(self, alm: Teacher, llm: Teacher, json_retries: int = 2, item_id: str = "",
                 run_seed: int = 0) -> None:
        self._alm, self._llm = alm, llm
        self.json_retries = json_retries
        self.item_id, self.run_seed = item_id, run_seed
        self._root = _Lane(self, None)
        self.replies: list[tuple[Teacher, Reply]] = []
        self._unusable: set[int] = set()
        #: per-step reason codes of what happened on the way (e.g. ``predict/fallback``), kept in the record
        self.codes: list[str] = []

    def _lane(self) -> _Lane:
        """The lane of the running task, opened (in its parent's lane) on the task's first call."""
        task = asyncio.current_task()
        current = _LANE.get()
        if current is not None and current.ctx is self and current.task is task:
            return current
        parent = current if current is not None and current.ctx is self else self._root
        lane = _Lane(self, task)
        parent.entries.append(lane)
        _LANE.set(lane)
        return lane

    @property
    def trace(self) -> list[TeacherCall]:
        return list(self._root.walk())

    @staticmethod
    async def gather(*steps: Awaitable[Any]) -> list[Any]:
        """``asyncio.gather`` for an item's concurrent steps: every step runs to its end, then the first failure
        in argument order is raised. A failing step never leaves its siblings running while the record is made,
        so what they asked is in the trace, or not, by the strategy's rule and not by the replies' timing."""
        results = await asyncio.gather(*steps, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return results

    def seed(self, step: str, attempt: int = 0) -> int:
        """The sampling seed of this item's ``step`` at ``attempt`` (reproducible, fresh per re-ask)."""
        return request_seed(self.run_seed, self.item_id, step, attempt)

    async def _ask(self, teacher: Teacher, prompt: str, audio: AudioRef | None, attempt: int, seed: int,
                   with_audio: bool) -> Reply:
        lane = self._lane()
        slot = len(lane.entries)
        lane.entries.append(None)  # the place of this call in the trace is taken when it is asked
        reply = await teacher.ask(prompt, audio, attempt=attempt, seed=seed)
        lane.entries[slot] = TeacherCall(role=teacher.role, model=teacher.model, prompt=prompt, reply=reply.text,
                                        with_audio=with_audio, latency_s=reply.latency_s,
                                        cache_hit=reply.cache_hit)
        self.replies.append((teacher, reply))
        return reply

    async def alm(self, prompt: str, audio: AudioRef | None, step: str = "alm") -> str:
        """Ask the audio teacher; ``audio=None`` uses it as a text-only knowledge source."""
        reply = await self._ask(self._alm, prompt, audio, 0, self.seed(f"{step}:{prompt}"), audio is not None)
        return reply.text

    async def llm(self, prompt: str, attempt: int = 0, step: str = "llm") -> str:
        """Ask the text teacher (it never hears audio); ``attempt`` > 0 marks a re-ask."""
        reply = await self._ask(self._llm, prompt, None, attempt, self.seed(step, attempt), False)
        return reply.text

    async def llm_json(self, prompt: str, schema: type[T], step: str, fallback: T | None = None) -> T:
        """Ask the LLM for JSON of ``schema``; repaired, retried, else the item is rejected at ``step``.

        With a ``fallback``, a reply that still will not parse gives ``fallback`` instead and notes the
        code ``<step>/fallback`` (the paper's own semantics, e.g. "unsure" for a prediction).
        """
        last = ""
        for attempt in range(1 + self.json_retries):
            reply = await self._ask(self._llm, prompt, None, attempt, self.seed(step, attempt), False)
            try:
                return parse_json_reply(reply.text, schema)
            except ReplyError as exc:
                last = str(exc)
                self._unusable.add(id(reply))
        if fallback is not None:
            self.codes.append(f"{step.split(':')[0]}/fallback")
            return fallback
        raise Rejected(f"{step.split(':')[0]}/malformed-json: malformed LLM JSON after {1 + self.json_retries} tries "
                       f"({last})")

    def usable_replies(self) -> list[tuple[Teacher, Reply]]:
        """The replies worth keeping in the replay cache: all but the malformed ones."""
        return [(t, r) for t, r in self.replies if id(r) not in self._unusable]


class Strategy(ABC):
    """A CoT generation algorithm: gather evidence for an item, then compose the CoT."""

    name: str = ""
    kinds: tuple[Kind, ...] = ("aqa", "classification")

    @abstractmethod
    async def gather(self, item: Item, ctx: ItemContext) -> Evidence:
        """Query the teachers; raise :class:`afcot_core.errors.Rejected` to discard the item."""

    @abstractmethod
    async def compose(self, item: Item, evidence: Evidence, ctx: ItemContext) -> CoT:
        """Write the four parts from accepted evidence."""


class Validator(ABC):
    """Accepts or rejects a draft at the ``stages`` it names.

    At the "evidence" stage (after gathering, before composing) ``cot`` is None; at the "final"
    stage it is the composed CoT. Rejecting early saves the composing calls.
    """

    name: str = ""
    stages: tuple[Literal["evidence", "final"], ...] = ("final",)

    @abstractmethod
    def check(self, item: Item, evidence: Evidence, cot: CoT | None) -> str | None:
        """None to accept, else the reason for rejecting."""


def reject_reason(validator: Validator, item: Item, evidence: Evidence, cot: CoT | None) -> str | None:
    """The reason ``validator`` rejects a draft for, as rejects files and statistics show it (``"name: why"``);
    None when it accepts."""
    reason = validator.check(item, evidence, cot)
    return f"{validator.name or type(validator).__name__}: {reason}" if reason else None


class Source(ABC):
    """Where items come from, in deterministic partitions (one output shard each)."""

    @abstractmethod
    def partitions(self, size: int) -> Iterator[Iterable[Item]]:
        """Consecutive partitions of at most ``size`` items; each one lazy, so skipping costs nothing."""


class Sink(ABC):
    """How one shard of records is written; the runner makes it atomic and resumable."""

    suffix: str = ".tar"

    @abstractmethod
    def write(self, path: Path, records: list[Record]) -> None:
        """Write the accepted ``records`` to ``path`` (a temporary name the runner renames)."""
