"""The generate stage: items → strategy (one coroutine per item) → validators → resumable shards.

Outcomes of an item: ``accepted`` and ``rejected`` (the data's verdict), or ``failed`` (a teacher kept
failing after its retries). A shard with failed items is written but marked incomplete, the stage
raises :class:`RunIncomplete` naming them, and the next run redoes that shard. Any other exception
is a bug and stops the run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from afcot_core.errors import BadInput, RunIncomplete
from afcot_core.plugins import Plugins
from afcot_core.recipe import Component, component, convert
from afcot_core.teacher import RetryPolicy

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
        if self.teacher_timeout_s <= 0 or min(self.teacher_retries, self.retry_backoff_s, self.outage_timeout_s) < 0:
            raise ValueError("teacher_timeout_s must be > 0; teacher_retries, retry_backoff_s, outage_timeout_s >= 0")

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
        from afcot_core.stages.generator import Generator

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
        settings = convert({k: v for k, v in table.items() if k not in _COMPONENT_KEYS}, GenerateSettings, "generate",
                           _COMPONENT_KEYS)
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
