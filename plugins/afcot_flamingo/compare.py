"""One table for trained-and-evaluated runs side by side (``recipes/learn.toml``: a CoT and a plain student).

    python -m afcot_flamingo.compare runs/learn runs/learn-plain [--json out.json]

Per run: embedded-eval accuracy overall and per subset, chance (the mean of 1/options), the question prior (the
training items' most frequent answer to the same question text, ties shared; 1/options for a question never trained
on), train steps and time, and tokens per sample (audio, prompt and target).
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from afcot_core.api import iter_samples

BENCHMARK = "embedded-eval"


def train_answers(data: Path) -> dict[str, Counter[str]]:
    """Answers (lower-cased) per question text in the training shards of ``data``."""
    answers: dict[str, Counter[str]] = defaultdict(Counter)
    for shard in sorted(data.glob("shard-*.tar")):
        for _, parts in iter_samples(shard):
            item = json.loads(parts["json"])["item"]
            answers[item["question"].strip()][item["answer"].strip().lower()] += 1
    return answers


def summary(run: Path) -> dict[str, Any]:
    """The figures of one run folder."""
    lock = tomllib.loads((run / "recipe.lock.toml").read_text(encoding="utf-8"))
    data = Path(str(lock.get("recipe", {}).get("train", {}).get("data") or run / "generate").replace("{run}", str(run)))
    evaluated = run / "evaluate" / BENCHMARK
    report = json.loads((evaluated / "report.json").read_text(encoding="utf-8"))
    items = [json.loads(line) for line in (evaluated / f"{BENCHMARK}-predictions.jsonl").open(encoding="utf-8")]
    answers = train_answers(data)
    chance = prior = 0.0
    for it in items:
        options = [c.lower() for c in it["choices"]]
        chance += 1 / len(options)
        seen = Counter({a: n for a, n in answers.get(it["question"].strip(), Counter()).items() if a in options})
        tied = [a for a, n in seen.items() if n == max(seen.values())] or options  # a tie: its expected score
        prior += (it["answer"].lower() in tied) / len(tied)
    steps = [json.loads(line) for line in (run / "train" / "metrics.jsonl").open(encoding="utf-8")]
    steps = [s for s in steps if "samples_per_s" in s]
    samples = sum(s["samples"] for s in steps)
    return {"run": run.name, "cot": bool(lock.get("recipe", {}).get("train", {}).get("cot", True)),
            "accuracy": report["overall"]["accuracy"], "total": report["overall"]["total"],
            "subsets": {k: v["accuracy"] for k, v in report.get("subset", {}).items()},
            "chance": chance / len(items), "question_prior": prior / len(items), "steps": len(steps),
            "train_s": sum(s["samples"] / s["samples_per_s"] for s in steps if s["samples_per_s"]),
            "tokens_per_sample": sum(s["tokens"] for s in steps) / max(1, samples)}


def table(rows: list[dict[str, Any]]) -> str:
    """The runs as one Markdown table."""
    subsets = sorted({k for r in rows for k in r["subsets"]})
    head = ["run", "targets", "held-out", *subsets, "chance", "question prior", "steps", "train time",
            "tokens/sample"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["run"], "CoT" if r["cot"] else "plain", f"{r['accuracy']:.1%} of {r['total']}",
                 *(f"{r['subsets'][k]:.1%}" if k in r["subsets"] else "-" for k in subsets),
                 f"{r['chance']:.1%}", f"{r['question_prior']:.1%}", str(r["steps"]), f"{r['train_s'] / 60:.1f} min",
                 f"{r['tokens_per_sample']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m afcot_flamingo.compare", description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders with train/ and evaluate/embedded-eval/")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    rows = [summary(run) for run in args.runs]
    sys.stdout.write(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
