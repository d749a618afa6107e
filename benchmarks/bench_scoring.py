"""Scoring speed: the per-item cached matcher against a plain per-call restatement of the official rule.

Both are timed in the same run on the same predictions (MMAU test-mini when ../shared/data has it,
else synthetic items); the script checks they agree and prints the speed ratio.
Run: ``python benchmarks/bench_scoring.py [--repeat N]``.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import time
from pathlib import Path

from afcot_benchmarks.matching import Matcher

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mmau" / "mmau-test-mini.json"


def baseline(answer: str, prediction: str, choices: list[str]) -> bool:
    """The rule of spec/BENCHMARKS.md §1, recomputing every token set on each call."""
    def tok(s: str) -> set[str]:
        return set(re.findall(r"\b\w+\b", s.lower()))

    p, a = tok(prediction), tok(answer)
    if not p:
        return False
    wrong: set[str] = set()
    for c in choices:
        if tok(c) != a:
            wrong |= tok(c) - a
    return a <= p and not (p & wrong)


def items() -> list[tuple[str, list[str]]]:
    if DATA.is_file():
        return [(r["answer"], r["choices"]) for r in json.loads(DATA.read_text(encoding="utf-8"))]
    rng = random.Random(0)
    words = [f"w{i}" for i in range(300)]
    out = []
    for _ in range(1000):
        choices = [" ".join(rng.sample(words, rng.randint(1, 3))) for _ in range(4)]
        out.append((choices[0], choices))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=20, help="predictions per item")
    args = parser.parse_args()
    rng = random.Random(1)
    data = items()
    work = [(a, c, [rng.choice([a, *c, f"The answer is {rng.choice(c)}.", ""]) for _ in range(args.repeat)])
            for a, c in data]

    start = time.perf_counter()
    slow = [baseline(a, p, c) for a, c, preds in work for p in preds]
    t_base = time.perf_counter() - start

    start = time.perf_counter()
    fast = []
    for a, c, preds in work:
        match = Matcher(a, c)
        fast += [match(p) for p in preds]
    t_fast = time.perf_counter() - start

    assert fast == slow, "the cached matcher disagrees with the baseline"
    n = len(fast)
    print(f"{n} predictions over {len(data)} items ({'MMAU test-mini' if DATA.is_file() else 'synthetic'})")
    print(f"baseline  {t_base * 1e3:8.1f} ms  ({n / t_base:,.0f}/s)")
    print(f"cached    {t_fast * 1e3:8.1f} ms  ({n / t_fast:,.0f}/s)")
    print(f"speed-up  {t_base / t_fast:.2f}x")


if __name__ == "__main__":
    main()
