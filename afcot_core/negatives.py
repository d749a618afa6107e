"""The negative-sampler protocol: wrong options for a multiple-choice item.

A sampler returns up to ``k`` distinct wrong options for ``answer``, never the answer itself nor any
label listed in ``exclude`` (the clip's other positive labels). ``None`` means the item should stay
open-ended (no sensible options exist, e.g. a long free-text answer). The same ``seed`` gives the same
options; ``rng`` (a :class:`random.Random`) is used instead when given.

Samplers that only compute (ontology, random) subclass :class:`NegativeSampler` and implement
``sample``; samplers that ask a teacher subclass :class:`AsyncNegativeSampler` and implement the
coroutine ``asample``. Callers may use either method on any sampler.
"""

from __future__ import annotations

import asyncio
import random
from abc import ABC, abstractmethod
from collections.abc import Iterable

Seed = int | str | None


def make_rng(seed: Seed, *parts: object) -> random.Random:
    """A generator that depends only on ``seed`` and ``parts`` (stable across processes)."""
    return random.Random(":".join(str(p) for p in (seed, *parts)))


class NegativeSampler(ABC):
    """Wrong options for multiple-choice items, computed synchronously."""

    name: str = ""

    @abstractmethod
    def sample(self, answer: str, k: int = 3, *, exclude: Iterable[str] = (), question: str = "",
               seed: Seed = None, rng: random.Random | None = None) -> list[str] | None:
        """Up to ``k`` distinct wrong options for ``answer``, or None to leave the item open."""

    async def asample(self, answer: str, k: int = 3, *, exclude: Iterable[str] = (), question: str = "",
                      seed: Seed = None, rng: random.Random | None = None) -> list[str] | None:
        """The coroutine form of :meth:`sample`."""
        return self.sample(answer, k, exclude=exclude, question=question, seed=seed, rng=rng)


class AsyncNegativeSampler(NegativeSampler):
    """A sampler that awaits a teacher: implement :meth:`asample`; :meth:`sample` runs it to completion."""

    @abstractmethod
    async def asample(self, answer: str, k: int = 3, *, exclude: Iterable[str] = (), question: str = "",
                      seed: Seed = None, rng: random.Random | None = None) -> list[str] | None:
        """Up to ``k`` distinct wrong options for ``answer``, or None to leave the item open."""

    def sample(self, answer: str, k: int = 3, *, exclude: Iterable[str] = (), question: str = "",
               seed: Seed = None, rng: random.Random | None = None) -> list[str] | None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            coro = self.asample(answer, k, exclude=exclude, question=question, seed=seed, rng=rng)
            return asyncio.run(coro)
        raise RuntimeError(f"{type(self).__name__} asks a teacher: await asample() inside an event loop")
