"""Running the generate stage: every item of a partition as a coroutine, then one committed shard per partition.

``audio check → strategy.gather → evidence validators → strategy.compose → final validators → Record``.
A shard whose every item was rejected for its audio stops the run as bad input: the source's audio is not
where it was looked for (``audio_root``).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgspec

from afcot_core import audio as audio_io
from afcot_core import stats
from afcot_core.cache import ReplayCache, scope_of
from afcot_core.errors import BadInput, Rejected, TeacherError
from afcot_core.protocols import Evidence, ItemContext, Sink, Source, Strategy, Validator, reject_reason
from afcot_core.records import Item, Record, Verdict, kept_notes
from afcot_core.shards import ShardCounts, ShardStore
from afcot_core.teacher import Teacher


class Generator:
    """Runs the generate stage into ``<run>/generate``."""

    def __init__(self, section: Any, ctx: Any) -> None:
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

        async def settle() -> None:
            """Wait for a shard to end; a failed one (the first by index) stops the stage, the others cancelled."""
            nonlocal running
            finished, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            failed = sorted((t for t in finished if t.exception() is not None), key=lambda t: int(t.get_name()))
            if failed:
                for task in running:
                    task.cancel()
                await asyncio.gather(*running, return_exceptions=True)
                raise failed[0].exception()  # type: ignore[misc]
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
                    await settle()
                running.add(asyncio.create_task(self._shard(index, list(partition), slots, bar), name=str(index)))
            while running:  # one at a time: a failed shard stops the stage without waiting for the rest
                await settle()
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
        self._refuse_missing_audio(index, records)
        if self.cache is not None:
            await self.cache.flush()  # the replies a shard rests on are durable before the shard is
        counts = await asyncio.to_thread(self.store.commit, index, records)
        self.ctx.log.info("shard written", shard=index, seconds=round(time.perf_counter() - started, 2),
                          **msgspec.to_builtins(counts))
        return counts

    def _refuse_missing_audio(self, index: int, records: list[Record]) -> None:
        """:class:`BadInput` when every item of a shard was rejected for its audio: the source looks for it in the
        wrong place. A few bad files only reject their items."""
        if not records or not all(r.verdict == "rejected" and (r.reason or "").startswith("audio: ") for r in records):
            return
        root = getattr(self.section.source.config, "audio_root", None)
        where = f"audio_root = {root!r}" if root is not None else "where it finds its audio (audio_root)"
        raise BadInput(f"[generate.source] every item of shard {index} ({len(records)}) was rejected for missing or "
                       f"unreadable audio, e.g. {records[0].item.id}: {records[0].reason}; check the source's {where}")

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
