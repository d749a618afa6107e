"""What the micro-batcher buys on the real teachers (tiny random-weight transformers Qwen3 and Omni thinker).

The same N requests per teacher, answered three ways:
  1. one at a time: each request its own ``generate`` call, in sequence (the official structure);
  2. through the micro-batcher: N concurrent ``ask`` calls, coalesced into batches;
  3. the engine called directly with the very batches the micro-batcher formed (no framework around it).
Prints requests/s of each, the mean batch size, the framework's overhead as (2) / (3), and as its last
line ``ratio: <(2) / (1)>`` over all teachers.

    python benchmarks/teacher_batching.py [--requests 64] [--tokens 16] [--threads 1]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import sys
import tempfile
import time
from pathlib import Path

import msgspec
import numpy as np

from afcot_core import plugins as loader
from afcot_core.audio import audio_ref_from_wave
from afcot_core.teacher import Request, Teacher

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.tiny_models import save_omni_thinker, save_qwen3


def build(plugins, role: str, name: str, folder: Path, tokens: int) -> Teacher:
    reg = plugins.registry(role).get(name)
    table = {"model": str(folder), "device": "cpu", "dtype": "float32", "max_new_tokens": tokens,
             "batching": {"max_batch": 16, "max_wait_ms": 5.0}}
    return reg.build(msgspec.convert(table, reg.config))


def requests_for(role: str, n: int) -> list[Request]:
    rng = np.random.default_rng(0)
    if role == "teacher_llm":
        return [Request(f"Question {i}: what could make a sound like {'abcdefgh'[i % 8] * (1 + i % 5)}?", seed=i)
                for i in range(n)]
    clips = [audio_ref_from_wave((0.3 * rng.standard_normal(int(16000 * rng.uniform(1, 5)))).astype(np.float32),
                                 16000) for _ in range(n)]
    return [Request("Describe the sound.", clip) for clip in clips]


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(teacher: Teacher, requests: list[Request]) -> tuple[float, float, float, float]:
    teacher.generate(requests[:2])  # warm-up
    sequential = timed(lambda: [teacher.generate([r]) for r in requests])

    async def concurrent() -> None:
        await asyncio.gather(*(teacher.ask(r.prompt, r.audio, seed=r.seed) for r in requests))

    batched = timed(lambda: asyncio.run(concurrent()))
    sizes = list(teacher.batch_sizes)
    batches, at = [], 0
    for size in sizes:
        batches.append(requests[at:at + size])
        at += size
    direct = timed(lambda: [teacher.generate(b) for b in batches])
    return sequential, batched, direct, sum(sizes) / len(sizes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: steady figures on a shared machine)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    plugins = loader.load()
    n = args.requests
    print(f"machine: {platform.machine()}, {platform.processor() or 'cpu'}, torch threads {args.threads}; "
          f"{n} requests per teacher, {args.tokens} new tokens")
    totals = [0.0, 0.0, 0.0]
    with tempfile.TemporaryDirectory() as tmp:
        teachers = [("qwen3", build(plugins, "teacher_llm", "qwen3", save_qwen3(Path(tmp) / "q"), args.tokens),
                     "teacher_llm"),
                    ("qwen2.5-omni", build(plugins, "teacher_alm", "qwen2.5-omni",
                                           save_omni_thinker(Path(tmp) / "o"), args.tokens), "teacher_alm")]
        for name, teacher, role in teachers:
            sequential, batched, direct, mean = measure(teacher, requests_for(role, n))
            for i, t in enumerate((sequential, batched, direct)):
                totals[i] += t
            print(f"{name}: one at a time {n / sequential:.1f} req/s; micro-batched {n / batched:.1f} req/s "
                  f"(mean batch {mean:.1f}); engine on the same batches {n / direct:.1f} req/s; "
                  f"framework overhead: micro-batched / direct = {direct / batched:.2f}")
    print(f"all teachers: micro-batched / direct = {totals[2] / totals[1]:.2f}")
    print(f"ratio: {totals[0] / totals[1]:.2f}")


if __name__ == "__main__":
    main()
