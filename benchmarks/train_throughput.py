"""Training input pipeline vs training step: can the data loader keep the step busy?

Times, in one run on the tiny random AF3: (1) the data loader alone (shards → decode → shuffle → encode →
collate, with prefetching workers) in samples/s, and (2) the training step alone (forward, backward,
AdamW) on batches prepared beforehand, in samples/s. The last line is ``ratio: <loader / step>``; above 1
the step never waits for data (the target is 3, so the loader keeps up on a busier machine too).
Run: ``python benchmarks/train_throughput.py [--data GENERATE_DIR] [--workers 2] [--batches 12]``.
Without ``--data`` it writes 64 embedded-world samples of the quickstart first.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def quickstart_shards(folder: Path) -> Path:
    subprocess.run([sys.executable, "-m", "afcot_core.cli", "recipe", "run", str(ROOT / "recipes" / "quickstart.toml"),
                    "--out", str(folder), "--stages", "generate", "--quiet", "--set", "generate.source.items=80"],
                   check=True, capture_output=True)
    return folder / "generate"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="a folder of shard-*.tar (default: generate 80 quickstart items)")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers")
    parser.add_argument("--batch", type=int, default=4, help="samples per batch")
    parser.add_argument("--batches", type=int, default=12, help="batches timed for each side")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the step")
    args = parser.parse_args()

    import torch
    from afcot_flamingo.af3 import Af3Student
    from afcot_flamingo.config import TINY, Af3TrainConfig
    from afcot_flamingo.training.data import StreamPlan, open_sources
    from afcot_flamingo.training.loop import BatchStream, one_thread
    from torch.utils.data import DataLoader

    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="afcot-throughput-"))
    data = args.data or quickstart_shards(work / "run")
    config = Af3TrainConfig(model=TINY, device="cpu", dtype="float32", per_device_batch=args.batch,
                            global_batch=args.batch)
    student = Af3Student(config)
    model = student.build(config, work, "cpu", torch.float32)
    plan = StreamPlan(sources=open_sources([], data, cot=True), encode=student.encode, collate=student.collate,
                      batch_size=args.batch, max_length=config.max_length, overlong="drop", seed=0, rank=0, world=1,
                      workers=args.workers, shuffle_buffer=64)
    loader = iter(DataLoader(BatchStream(plan), batch_size=None, num_workers=args.workers,
                             worker_init_fn=one_thread, prefetch_factor=4 if args.workers else None))
    batches = [next(loader)[0] for _ in range(2)]  # workers started, queues primed
    started = time.perf_counter()
    for _ in range(args.batches):
        batches.append(next(loader)[0])
    loader_rate = args.batches * args.batch / (time.perf_counter() - started)

    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.train()

    def step(batch: dict) -> None:
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    step(batches[0])  # warm-up
    started = time.perf_counter()
    for batch in batches[2:]:
        step(batch)
    step_rate = args.batches * args.batch / (time.perf_counter() - started)
    tokens = sum(int(b["attention_mask"].sum()) for b in batches[2:]) / (args.batches * args.batch)
    print(f"data: {data} ({tokens:.0f} tokens per sample), batch {args.batch}, {args.workers} workers, "
          f"{args.threads} step thread(s)")
    print(f"loader alone: {loader_rate:.1f} samples/s")
    print(f"step alone:   {step_rate:.1f} samples/s")
    print(f"ratio: {loader_rate / step_rate:.2f}")


if __name__ == "__main__":
    main()
