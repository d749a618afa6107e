"""Generation throughput on the embedded world, and what the micro-batcher buys on a batch-friendly engine.

Prints ratios against a baseline measured in the same run:
  1. the generate stage, items/s: one item at a time and unbatched teachers (baseline) vs the defaults;
  2. a latency-model engine (fixed cost per call + small cost per request, like a GPU forward):
     sequential requests (baseline) vs concurrent requests coalesced by the micro-batcher;
  3. the generate stage with a slow LLM (40 ms per engine call): one partition at a time (baseline) vs two in
     flight, so the next partition starts while the last items of the previous one finish.

    python benchmarks/bench_generate.py [--items 400]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import tempfile
import time
from pathlib import Path

from afcot_embedded.llm import EmbeddedLlm, EmbeddedLlmConfig

from afcot_core import plugins as loader
from afcot_core import recipe as recipes
from afcot_core import runner
from afcot_core.hookspecs import hookimpl
from afcot_core.teacher import Batching, Request, Teacher

ROOT = Path(__file__).resolve().parents[1]


class SlowLlm(EmbeddedLlm):
    """The scripted LLM behind an engine that costs 40 ms per call, like a GPU forward."""

    offload = True

    def generate(self, requests: list[Request]) -> list[str]:
        time.sleep(0.04)
        return super().generate(requests)


class SlowPlugin:
    @hookimpl
    def register_teacher_llms(self, register):
        register("slow-llm", SlowLlm, EmbeddedLlmConfig, "scripted LLM with 40 ms per engine call")


def generate_rate(items: int, overrides: list[str]) -> tuple[float, dict]:
    plugins = loader.load(extra={"slow": SlowPlugin()})
    recipe = recipes.load(ROOT / "recipes" / "quickstart.toml", plugins, [f"generate.source.items={items}",
                                                                          *overrides])
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        result = runner.run(recipe, plugins, Path(out), stages=["generate"], show_progress=False)
        return items / (time.perf_counter() - started), result["generate"]


class LatencyEngine(Teacher):
    """Each call costs ``per_call`` seconds plus ``per_request`` per request in it."""

    role = "llm"
    model = "latency-model"

    def __init__(self, batching: Batching, per_call: float = 0.02, per_request: float = 0.0005) -> None:
        super().__init__(batching)
        self.per_call, self.per_request = per_call, per_request

    def generate(self, requests: list[Request]) -> list[str]:
        time.sleep(self.per_call + self.per_request * len(requests))
        return [r.prompt for r in requests]


async def _concurrent(engine: Teacher, n: int) -> None:
    await asyncio.gather(*(engine.ask(str(i)) for i in range(n)))


async def _sequential(engine: Teacher, n: int) -> None:
    for i in range(n):
        await engine.ask(str(i))


def engine_rate(n: int, concurrent: bool) -> float:
    engine = LatencyEngine(Batching(max_batch=32, max_wait_ms=5))
    started = time.perf_counter()
    asyncio.run((_concurrent if concurrent else _sequential)(engine, n))
    return n / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=400)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {platform.processor() or 'cpu'}, python {platform.python_version()}")
    base, base_counts = generate_rate(args.items, ["generate.concurrency=1", 'generate.alm.batching={max_batch=1}',
                                                   'generate.llm.batching={max_batch=1}'])
    fast, counts = generate_rate(args.items, [])
    assert base_counts == counts, "batching must not change the data"
    print(f"generate, {args.items} embedded items: baseline {base:.1f} items/s, default {fast:.1f} items/s, "
          f"ratio {fast / base:.2f}x (accepted {counts['accepted']}, rejected {counts['rejected']})")
    seq, conc = engine_rate(256, False), engine_rate(256, True)
    print(f"latency-model engine, 256 requests: sequential {seq:.0f} req/s, micro-batched {conc:.0f} req/s, "
          f"ratio {conc / seq:.1f}x")
    slow = ["generate.llm.use=slow-llm", "generate.shard_size=32", "generate.concurrency=32"]
    one, _ = generate_rate(args.items, [*slow, "generate.shards_in_flight=1"])
    two, _ = generate_rate(args.items, [*slow, "generate.shards_in_flight=2"])
    print(f"generate with a slow LLM, {args.items} items: one partition at a time {one:.1f} items/s, "
          f"two in flight {two:.1f} items/s, ratio {two / one:.2f}x")


if __name__ == "__main__":
    main()
