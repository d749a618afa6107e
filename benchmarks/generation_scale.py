"""Generation at scale on the embedded world: does memory stay flat, and how much time is the framework's own?

Runs the generate stage of the quickstart recipe on 1k and 10k items, each in a fresh subprocess, and prints
for each: wall time, peak RSS, the time some teacher engine was busy (the union of all ``generate`` calls) and
the framework's share of wall time outside teacher calls (partitioning, strategies and validators, JSON, cache,
shard writes; for the embedded world this also holds its audio synthesis, which the source does). The check:
peak RSS at 10k within 15 % of 1k.

    python benchmarks/generation_scale.py [--sizes 1000 10000]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child(items: int, out: Path) -> dict[str, float]:
    """One run in this process: wall, peak RSS and teacher-busy time."""
    from afcot_core import plugins as loader
    from afcot_core import recipe as recipes
    from afcot_core import runner
    from afcot_core.teacher import Teacher

    lock = threading.Lock()
    busy: list[tuple[float, float]] = []

    def timed(cls: type[Teacher]) -> None:
        generate = cls.generate

        def wrapper(self: Teacher, requests: list) -> list[str]:
            started = time.perf_counter()
            try:
                return generate(self, requests)
            finally:
                with lock:
                    busy.append((started, time.perf_counter()))

        cls.generate = wrapper  # type: ignore[method-assign]

    plugins = loader.load()
    for role in ("teacher_alm", "teacher_llm"):
        timed(plugins.registry(role).get(f"embedded-{role[-3:]}").factory)
    recipe = recipes.load(ROOT / "recipes" / "quickstart.toml", plugins,
                          [f"generate.source.items={items}", "generate.shard_size=100"])
    started = time.perf_counter()
    result = runner.run(recipe, plugins, out, stages=["generate"], show_progress=False)
    wall = time.perf_counter() - started
    return {"items": items, "wall_s": wall, "teacher_busy_s": union(busy),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, **result["generate"]}


def union(intervals: list[tuple[float, float]]) -> float:
    """Seconds covered by at least one interval."""
    total, end = 0.0, float("-inf")
    for a, b in sorted(intervals):
        if b > end:
            total += b - max(a, end)
            end = b
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, Path(args.out))))
        return
    rows = []
    for items in args.sizes:
        with tempfile.TemporaryDirectory() as out:
            done = subprocess.run([sys.executable, __file__, "--child", str(items), "--out", out],
                                  capture_output=True, text=True, check=True)
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(f"{'items':>7} {'wall s':>8} {'items/s':>8} {'peak RSS MB':>12} {'teacher busy s':>15} "
          f"{'framework share':>16}")
    for r in rows:
        share = 1 - r["teacher_busy_s"] / r["wall_s"]
        print(f"{r['items']:>7} {r['wall_s']:>8.1f} {r['items'] / r['wall_s']:>8.1f} {r['peak_rss_mb']:>12.0f} "
              f"{r['teacher_busy_s']:>15.1f} {share:>16.0%}   ({r['accepted']} accepted, {r['failed']} failed)")
    if len(rows) > 1:
        growth = rows[-1]["peak_rss_mb"] / rows[0]["peak_rss_mb"] - 1
        print(f"peak RSS {rows[-1]['items']} vs {rows[0]['items']} items: {growth:+.1%} "
              f"({'within' if abs(growth) <= 0.15 else 'NOT within'} 15 %)")


if __name__ == "__main__":
    main()
