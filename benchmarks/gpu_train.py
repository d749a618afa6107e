"""Helpers of ``scripts/gpu_check.sh`` for training: a mid-size random AF3, and figures from a run's metrics.

``python benchmarks/gpu_train.py prepare FOLDER`` saves the model; ``report RUN LABEL [--plan PLAN.json] [--doc
FILE]`` prints the steady-state figures of ``RUN/train/metrics.jsonl`` (the first steps are warm-up and left out),
with ``--plan`` (``afcot recipe plan --json``) the measured peak against the plan's estimate (its total less the
fixed overhead, which ``torch.cuda.max_memory_allocated`` does not see), and with ``--doc`` writes them as a row of
the "GPU check: training" table in that Markdown file.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

BEGIN, END = "<!-- gpu-check:train -->", "<!-- /gpu-check:train -->"
HEADER = ["| check | GPU | tokens/s | samples/s | peak memory (GiB) | steps | plan (GiB) | peak / plan |",
          "|---|---|---:|---:|---:|---:|---:|---:|"]


def figures(run: Path, warmup: int = 3) -> dict[str, float]:
    rows = [json.loads(line) for line in (run / "train" / "metrics.jsonl").read_text().splitlines()]
    steady = rows[warmup:] or rows
    return {"tokens_per_s": statistics.median(r["tokens_per_s"] for r in steady),
            "samples_per_s": statistics.median(r["samples_per_s"] for r in steady),
            "peak_gb": max(r.get("gpu_peak_gb", 0.0) for r in rows), "steps": len(rows)}


def write_row(doc: Path, label: str, gpu: str, f: dict[str, float]) -> None:
    """Put ``label``'s row into the marked table of ``doc`` (the table is added at the end when absent)."""
    text = doc.read_text(encoding="utf-8") if doc.exists() else ""
    if BEGIN not in text:
        text = text.rstrip() + f"\n\n## GPU check: training\n\nWritten by `scripts/gpu_check.sh`.\n\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    table, tail = rest.split(END, 1)
    rows = [r for r in table.strip().splitlines()[2:] if not r.startswith(f"| {label} |")]
    planned = f.get("plan_gb")
    versus = f"| {planned:.2f} | {f['peak_gb'] / planned:.2f} |" if planned else "| | |"
    rows.append(f"| {label} | {gpu} | {f['tokens_per_s']:.0f} | {f['samples_per_s']:.2f} | {f['peak_gb']:.2f} "
                f"| {f['steps']:.0f} {versus}")
    doc.write_text(head + BEGIN + "\n" + "\n".join(HEADER + rows) + "\n" + END + tail, encoding="utf-8")


def planned_gib(plan: Path) -> float:
    """The train stage's estimated bytes per GPU, in GiB, that the allocator can see (total less overhead)."""
    (memory,) = [e for e in json.loads(plan.read_text())["estimates"] if "gib" in e.get("figures", {})]
    gib = memory["figures"]["gib"]
    return gib["total"] - gib["overhead"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="action", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("folder", type=Path)
    r = sub.add_parser("report")
    r.add_argument("run", type=Path)
    r.add_argument("label")
    r.add_argument("--doc", type=Path)
    r.add_argument("--plan", type=Path, help="the output of `afcot recipe plan --json` for the same training")
    args = parser.parse_args()
    if args.action == "prepare":
        from afcot_flamingo.tiny import save_af3

        save_af3(args.folder, size="mid")
        return
    f = figures(args.run)
    if args.plan:
        f["plan_gb"] = planned_gib(args.plan)
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    print(f"{args.label}: {f['tokens_per_s']:.0f} tokens/s, {f['samples_per_s']:.2f} samples/s, "
          f"peak {f['peak_gb']:.2f} GiB, {f['steps']:.0f} steps on {gpu}"
          + (f"; plan {f['plan_gb']:.2f} GiB, peak / plan {f['peak_gb'] / f['plan_gb']:.2f}" if args.plan else ""))
    if args.doc:
        write_row(args.doc, args.label, gpu, f)


if __name__ == "__main__":
    main()
