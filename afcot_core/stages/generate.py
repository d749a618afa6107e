"""The generate stage: items → strategy (one coroutine per item) → validators → resumable shards.

Outcomes of an item: ``accepted`` and ``rejected`` (the data's verdict), or ``failed`` (a teacher kept
failing after its retries). A shard with failed items is written but marked incomplete, the stage
raises :class:`RunIncomplete` naming them, and the next run redoes that shard. Any other exception
is a bug and stops the run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from afcot_core import audio as audio_io
from afcot_core import stats
from afcot_core.cache import ReplayCache, scope_of
from afcot_core.errors import BadInput, Rejected, RunIncomplete, TeacherError
from afcot_core.plugins import Plugins
from afcot_core.protocols import Evidence, ItemContext, Sink, Source, Strategy, Validator, reject_reason
from afcot_core.recipe import Component, component, convert
from afcot_core.records import Item, Record, Verdict, kept_notes
from afcot_core.shards import ShardCounts, ShardStore
from afcot_core.teacher import RetryPolicy, Teacher

_COMPONENT_KEYS = ("source", "alm", "llm", "strategies", "validators", "sink")
#: settings that change how a run goes, not the data it makes: left out of the fingerprint
RUN_ONLY_SETTINGS = ("concurrency", "cache", "shards_in_flight", "teacher_timeout_s", "teacher_retries",
                     "retry_backoff_s", "outage_timeout_s")


class GenerateSettings(msgspec.Struct, forbid_unknown_fields=True):
    #: items per partition, and so per output shard (the unit of resume)
    shard_size: int = 100
    #: items in flight at once, across partitions
    concurrency: int = 64
    #: re-asks of the LLM when its JSON reply is malformed (then the item is rejected)
    json_retries: int = 2
    #: keep the replies of accepted items in ``generate/replay.sqlite``; a re-run or resume replays them
    cache: bool = True
    #: partitions worked on at once: the next one starts while the last items of the previous finish
    shards_in_flight: int = 2
    #: seconds one teacher engine call may take before it is abandoned and retried
    teacher_timeout_s: float = 600.0
    #: retries of a teacher request after an engine error or timeout; then the item is ``failed``
    teacher_retries: int = 3
    #: delay before the first retry in seconds, doubled at each retry (with jitter, at most 60 s)
    retry_backoff_s: float = 1.0
    #: seconds every server of a teacher may be unreachable before the requests waiting for one fail (the
    #: servers are probed meanwhile, and requests resume when one is back)
    outage_timeout_s: float = 900.0

    def __post_init__(self) -> None:
        if min(self.shard_size, self.concurrency, self.shards_in_flight) < 1 or self.json_retries < 0:
            raise ValueError("shard_size, concurrency and shards_in_flight must be >= 1, json_retries >= 0")
        if self.teacher_timeout_s <= 0 or self.teacher_retries < 0 or self.retry_backoff_s < 0:
            raise ValueError("teacher_timeout_s must be > 0, teacher_retries and retry_backoff_s >= 0")
        if self.outage_timeout_s < 0:
            raise ValueError("outage_timeout_s must be >= 0")

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(self.teacher_timeout_s, self.teacher_retries, self.retry_backoff_s, self.outage_timeout_s)


@dataclass
class GenerateSection:
    settings: GenerateSettings
    source: Component
    alm: Component
    llm: Component
    strategies: dict[str, Component]
    validators: list[Component]
    sink: Component

    def components(self) -> list[Component]:
        return [self.source, self.alm, self.llm, *self.strategies.values(), *self.validators, self.sink]

    def to_table(self) -> dict[str, Any]:
        return {**msgspec.to_builtins(self.settings), **self._component_tables(Component.to_table)}

    def identity_table(self) -> dict[str, Any]:
        """What decides the data (the fingerprint's part): the table without the run-only settings."""
        settings = {k: v for k, v in msgspec.to_builtins(self.settings).items() if k not in RUN_ONLY_SETTINGS}
        return {**settings, **self._component_tables(Component.identity_table)}

    def _component_tables(self, table: Callable[[Component], dict[str, Any]]) -> dict[str, Any]:
        return {
            "source": table(self.source),
            "alm": table(self.alm),
            "llm": table(self.llm),
            "strategies": {kind: table(c) for kind, c in self.strategies.items()},
            "validators": [table(c) for c in self.validators],
            "sink": table(self.sink),
        }

    def run(self, ctx: Any) -> dict[str, int]:
        generator = Generator(self, ctx)
        totals = generator.run()
        if generator.failures:
            shown = "\n  ".join(f"{item_id}: {reason}" for item_id, reason in generator.failures[:20])
            more = len(generator.failures) - 20
            tail = f"\n  ... and {more} more (see rejects-*.jsonl)" if more > 0 else ""
            raise RunIncomplete(
                f"{len(generator.failures)} items failed; their shards are left open and running the same command "
                f"again redoes them:\n  {shown}{tail}")
        return totals


class GenerateStage:
    settings = GenerateSettings

    def parse(self, table: Any, plugins: Plugins) -> GenerateSection:
        if not isinstance(table, dict):
            raise BadInput("[generate]: expected a table")
        for key in ("source", "alm", "llm", "strategies", "sink"):
            if key not in table:
                raise BadInput(f"[generate] missing table [generate.{key}]")
        settings = convert({k: v for k, v in table.items() if k not in _COMPONENT_KEYS}, GenerateSettings, "generate")
        assert isinstance(settings, GenerateSettings)
        strategies_table = table["strategies"]
        if not isinstance(strategies_table, dict) or not strategies_table:
            raise BadInput("[generate.strategies] expected a table mapping an item kind to a strategy")
        strategies = {}
        for kind, spec in strategies_table.items():
            if kind not in ("aqa", "classification"):
                raise BadInput(f"[generate.strategies] unknown item kind '{kind}'; kinds: aqa, classification")
            strategies[kind] = component(spec, "strategy", f"generate.strategies.{kind}", plugins)
        validators_table = table.get("validators", [])
        if not isinstance(validators_table, list):
            raise BadInput("[generate] generate.validators: expected an array of tables")
        return GenerateSection(
            settings=settings,
            source=component(table["source"], "source", "generate.source", plugins),
            alm=component(table["alm"], "teacher_alm", "generate.alm", plugins),
            llm=component(table["llm"], "teacher_llm", "generate.llm", plugins),
            strategies=strategies,
            validators=[component(v, "validator", f"generate.validators[{i}]", plugins)
                        for i, v in enumerate(validators_table)],
            sink=component(table["sink"], "sink", "generate.sink", plugins),
        )


class Generator:
    """Runs the generate stage into ``<run>/generate``."""

    def __init__(self, section: GenerateSection, ctx: Any) -> None:
        self.section = section
        self.ctx = ctx
        self.settings = section.settings
        self.source: Source = section.source.build()
        self.alm: Teacher = section.alm.build()
        self.llm: Teacher = section.llm.build()
        self.strategies: dict[str, Strategy] = {k: c.build() for k, c in section.strategies.items()}
        validators: list[Validator] = [_named(c.build(), c.registration.name) for c in section.validators]
        self.evidence_checks = [v for v in validators if "evidence" in v.stages]
        self.final_checks = [v for v in validators if "final" in v.stages]
        sink: Sink = section.sink.build()
        self.store = ShardStore(ctx.out_dir / "generate", sink, ctx.fingerprint, self._warn)
        self.rank, self.world = ctx.rank, ctx.world
        #: (item id, reason) of every item that ended ``failed`` in this run
        self.failures: list[tuple[str, str]] = []
        self.cache_hits = self.calls = 0
        for teacher in (self.alm, self.llm):
            teacher.use_retry(self.settings.retry_policy())
        name = "replay.sqlite" if self.world == 1 else f"replay-rank{self.rank}.sqlite"  # one writer per file
        self.cache = ReplayCache(ctx.out_dir / "generate" / name, self._warn) if self.settings.cache else None
        if self.cache is not None:
            for teacher, comp in ((self.alm, section.alm), (self.llm, section.llm)):
                teacher.use_cache(self.cache, scope_of(comp.registration.name, comp.identity_table()))

    def _warn(self, message: str) -> None:
        self.ctx.log.warning(message)

    def run(self) -> dict[str, int]:
        try:
            return asyncio.run(self._run())
        finally:
            for teacher in (self.alm, self.llm):
                teacher.close()  # an in-process engine's processes end with the stage
            if self.cache is not None:
                self.cache.close()

    async def _run(self) -> dict[str, int]:
        totals = ShardCounts()
        slots = asyncio.Semaphore(self.settings.concurrency)  # items in flight, across partitions
        running: set[asyncio.Task[ShardCounts]] = set()

        async def settle(return_when: str) -> None:
            nonlocal running
            finished, running = await asyncio.wait(running, return_when=return_when)
            for task in finished:
                totals.add(task.result())

        total_items = getattr(self.source, "count", lambda: None)()
        with self.ctx.progress("generate", total_items) as bar:
            for index, partition in enumerate(self.source.partitions(self.settings.shard_size)):
                if index % self.world != self.rank:
                    continue
                done = await asyncio.to_thread(self.store.done, index)  # reads and hashes the shard
                if done is not None:
                    totals.add(done)
                    bar.advance(done)
                    continue
                if len(running) >= self.settings.shards_in_flight:
                    await settle(asyncio.FIRST_COMPLETED)
                running.add(asyncio.create_task(self._shard(index, list(partition), slots, bar)))
            if running:
                await settle(asyncio.ALL_COMPLETED)
        self.ctx.log.info("generate finished", alm_batches=_mean(self.alm.batch_sizes),
                          llm_batches=_mean(self.llm.batch_sizes), calls=self.calls, cache_hits=self.cache_hits,
                          **msgspec.to_builtins(totals))
        stats.write(self.store.root, run={"calls": self.calls, "cache_hits": self.cache_hits})
        return msgspec.to_builtins(totals)

    async def _shard(self, index: int, items: list[Item], slots: asyncio.Semaphore, bar: Any) -> ShardCounts:
        """Process one partition's items concurrently, then commit its shard."""
        started = time.perf_counter()

        async def one(item: Item) -> Record:
            async with slots:
                record = await self.process(item)
            bar.record(record.verdict)
            return record

        records = list(await asyncio.gather(*(one(item) for item in items)))
        if self.cache is not None:
            await self.cache.flush()  # the replies a shard rests on are durable before the shard is
        counts = await asyncio.to_thread(self.store.commit, index, records)
        self.ctx.log.info("shard written", shard=index, seconds=round(time.perf_counter() - started, 2),
                          **msgspec.to_builtins(counts))
        return counts

    async def process(self, item: Item) -> Record:
        """Run one item through its strategy and the validators, then keep its good replies in the cache.

        Teacher faults make a ``failed`` record; a bug (any other exception) propagates and stops the run.
        """
        ctx = ItemContext(self.alm, self.llm, self.settings.json_retries, item.id, self.ctx.seed)
        record = await self._outcome(item, ctx)
        self.calls += len(ctx.replies)
        self.cache_hits += sum(reply.cache_hit for _, reply in ctx.replies)
        if record.verdict == "failed":
            self.failures.append((item.id, record.reason or ""))
        elif record.verdict == "accepted":  # only replies that made a validated record are replayed later
            for teacher in (self.alm, self.llm):
                await teacher.remember([reply for t, reply in ctx.usable_replies() if t is teacher])
        return record

    async def _outcome(self, item: Item, ctx: ItemContext) -> Record:
        strategy = self.strategies.get(item.kind)
        name = self.section.strategies[item.kind].registration.name if strategy else "none"

        def record(verdict: Verdict, **kw: Any) -> Record:
            return Record(item=item, strategy=name, verdict=verdict, trace=ctx.trace, codes=sorted(ctx.codes),
                          fingerprint=self.ctx.fingerprint, **kw)

        evidence: Evidence | None = None
        try:
            if strategy is None:
                raise Rejected(f"no strategy configured for item kind '{item.kind}'")
            try:
                await asyncio.to_thread(audio_io.load, item.audio)
            except audio_io.AudioError as exc:
                raise Rejected(f"audio: {exc}") from None
            evidence = await strategy.gather(item, ctx)
            self._check(self.evidence_checks, item, evidence, None)
            cot = await strategy.compose(item, evidence, ctx)
            self._check(self.final_checks, item, evidence, cot)
        except Rejected as exc:
            return record("rejected", reason=exc.reason, chain=evidence.chain if evidence else [],
                          prediction=evidence.prediction if evidence else None,
                          **(kept_notes(evidence.notes) if evidence else {}))
        except TeacherError as exc:
            return record("failed", reason=f"teacher: {exc}")
        return record("accepted", cot=cot, chain=evidence.chain, prediction=evidence.prediction,
                      **kept_notes(evidence.notes))

    @staticmethod
    def _check(validators: list[Validator], item: Item, evidence: Evidence, cot: Any) -> None:
        for validator in validators:
            reason = reject_reason(validator, item, evidence, cot)
            if reason:
                raise Rejected(reason)


def _named(validator: Validator, name: str) -> Validator:
    """``validator``, named by its registration when it names itself nowhere (its rejects file under it)."""
    if not getattr(validator, "name", ""):
        validator.name = name
    return validator


def _mean(values: list[int]) -> float:
    return round(sum(values) / len(values), 2) if values else 0.0
