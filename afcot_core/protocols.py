"""What strategies, validators, sources and sinks look like to the runner."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar

from afcot_core.errors import Rejected
from afcot_core.jsonreply import ReplyError, parse_json_reply
from afcot_core.records import AudioRef, CoT, Item, Kind, Record, TeacherCall
from afcot_core.teacher import Teacher, request_seed

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


class ItemContext:
    """The teachers as one item sees them: every call is recorded in ``trace``."""

    def __init__(self, alm: Teacher, llm: Teacher, json_retries: int = 2, item_id: str = "",
                 run_seed: int = 0) -> None:
        self._alm, self._llm = alm, llm
        self.json_retries = json_retries
        self.item_id, self.run_seed = item_id, run_seed
        self.trace: list[TeacherCall] = []

    def seed(self, step: str, attempt: int = 0) -> int:
        """The sampling seed of this item's ``step`` at ``attempt`` (reproducible, fresh per re-ask)."""
        return request_seed(self.run_seed, self.item_id, step, attempt)

    async def alm(self, prompt: str, audio: AudioRef | None, step: str = "alm") -> str:
        """Ask the audio teacher; ``audio=None`` uses it as a text-only knowledge source."""
        reply = await self._alm.ask(prompt, audio, seed=self.seed(f"{step}:{prompt}"))
        self.trace.append(TeacherCall(role="alm", model=self._alm.model, prompt=prompt, reply=reply.text,
                                      with_audio=audio is not None, latency_s=reply.latency_s,
                                      cache_hit=reply.cache_hit))
        return reply.text

    async def llm(self, prompt: str, attempt: int = 0, step: str = "llm") -> str:
        """Ask the text teacher (it never hears audio); ``attempt`` > 0 marks a re-ask."""
        reply = await self._llm.ask(prompt, attempt=attempt, seed=self.seed(step, attempt))
        self.trace.append(TeacherCall(role="llm", model=self._llm.model, prompt=prompt, reply=reply.text,
                                      latency_s=reply.latency_s, cache_hit=reply.cache_hit))
        return reply.text

    async def llm_json(self, prompt: str, schema: type[T], step: str) -> T:
        """Ask the LLM for JSON of ``schema``; repaired, retried, else the item is rejected at ``step``."""
        last = ""
        for attempt in range(1 + self.json_retries):
            text = await self.llm(prompt, attempt, step)
            try:
                return parse_json_reply(text, schema)
            except ReplyError as exc:
                last = str(exc)
        raise Rejected(f"{step}: malformed LLM JSON after {1 + self.json_retries} tries ({last})")


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
