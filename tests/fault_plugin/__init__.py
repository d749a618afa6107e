"""A test plugin that injects teacher faults: the embedded teachers, failing a seeded share of their calls.

``faulty-alm`` and ``faulty-llm`` answer like ``embedded-alm`` and ``embedded-llm``, except that a
request is hit by a fault with probability ``rate``, decided by a hash of the fault seed, the
request and (for transient faults) how many times the engine has already seen that request. Kinds:

- ``exception``: the engine call raises ``RuntimeError``;
- ``transient``: it raises :class:`afcot_core.errors.TransientError` (an HTTP 429 / 5xx);
- ``timeout``: the call hangs for ``hang_s`` seconds (longer than the run's ``teacher_timeout_s``);
- ``malformed_json``: a reply to a JSON prompt comes back cut off;
- ``garbage``: the reply is JSON-looking junk or symbol soup.

With ``persistent`` a request that is hit is hit every time (a request the teacher cannot serve).
Faults happen only while the file ``switch`` exists (always when it is ""), so a test can end an
outage without changing the recipe.
"""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path
from typing import Literal

import msgspec
from afcot_embedded.alm import EmbeddedAlm, EmbeddedAlmConfig
from afcot_embedded.llm import EmbeddedLlm, EmbeddedLlmConfig

from afcot_core.cache import audio_identity
from afcot_core.errors import TransientError
from afcot_core.hookspecs import hookimpl
from afcot_core.teacher import Request

FaultKind = Literal["exception", "transient", "timeout", "malformed_json", "garbage"]
INJECTORS: list[Injector] = []
GARBAGE = ('{"oops": <not json', "#@!%& ~^* ;;; ##", "\x00\x07\x1b[2J")


class Faults(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Which faults, how often, and while which file exists."""

    rate: float = 0.2
    kinds: list[FaultKind] = msgspec.field(default_factory=lambda: ["exception", "transient", "timeout"])
    seed: int = 0
    persistent: bool = False
    switch: str = ""
    hang_s: float = 0.4


class FaultyAlmConfig(EmbeddedAlmConfig, forbid_unknown_fields=True):
    faults: Faults = Faults()


class FaultyLlmConfig(EmbeddedLlmConfig, forbid_unknown_fields=True):
    faults: Faults = Faults()


class Injector:
    """Decides, per engine call, which requests are hit and how; every injector is kept in ``INJECTORS``."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self._seen: dict[tuple[str, str, int | None, str], int] = {}
        self._lock = threading.Lock()
        self.injected: dict[str, int] = {}
        INJECTORS.append(self)

    def _draw(self, *parts: object) -> float:
        digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2**64

    def pick(self, request: Request) -> FaultKind | None:
        if self.faults.switch and not Path(self.faults.switch).exists():
            return None
        key = (request.prompt, request.prefix, request.seed, audio_identity(request.audio))  # one per clip
        with self._lock:
            seen = self._seen.get(key, 0)
            self._seen[key] = seen + 1
        visit = 0 if self.faults.persistent else seen
        if self._draw(self.faults.seed, *key, visit) >= self.faults.rate:
            return None
        kind = self.faults.kinds[int(self._draw("kind", self.faults.seed, *key, visit) * len(self.faults.kinds))]
        with self._lock:
            self.injected[kind] = self.injected.get(kind, 0) + 1
        return kind

    def apply(self, requests: list[Request], answer: list[str] | None = None) -> list[FaultKind | None]:
        """Raise or hang for the call-level faults of this batch; return each request's reply fault."""
        kinds = [self.pick(r) for r in requests]
        if "exception" in kinds:
            raise RuntimeError("injected engine error")
        if "transient" in kinds:
            raise TransientError("injected HTTP 429: too many requests")
        if "timeout" in kinds:
            time.sleep(self.faults.hang_s)
            raise RuntimeError("the engine hung and should have been abandoned")
        return kinds


def garble(kind: FaultKind | None, request: Request, reply: str) -> str:
    if kind == "malformed_json" and "{" in reply:
        return reply[: max(1, len(reply) // 2)]
    if kind in ("garbage", "malformed_json"):
        return GARBAGE[len(request.prompt) % len(GARBAGE)]
    return reply


class _Faulty:
    """An embedded teacher (the next base) whose engine calls go through an :class:`Injector`."""

    def __init__(self, config: FaultyAlmConfig | FaultyLlmConfig) -> None:
        super().__init__(config)
        self.injector = Injector(config.faults)

    def generate(self, requests: list[Request]) -> list[str]:
        kinds = self.injector.apply(requests)
        replies = super().generate(requests)
        return [garble(k, r, reply) for k, r, reply in zip(kinds, requests, replies, strict=True)]


class FaultyAlm(_Faulty, EmbeddedAlm):
    model = "faulty-alm"


class FaultyLlm(_Faulty, EmbeddedLlm):
    model = "faulty-llm"
    offload = True  # a hanging call must not block the event loop


class FaultPlugin:
    @hookimpl
    def register_teacher_alms(self, register):
        register("faulty-alm", FaultyAlm, FaultyAlmConfig, "the embedded ALM with injected faults")

    @hookimpl
    def register_teacher_llms(self, register):
        register("faulty-llm", FaultyLlm, FaultyLlmConfig, "the embedded LLM with injected faults")
