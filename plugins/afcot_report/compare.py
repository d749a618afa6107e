"""The variants of a recipe side by side: ``compare.json`` and ``compare.md`` in the folder that holds them.

``afcot recipe run R --out OUT`` runs each ``[variants.NAME]`` of R into ``OUT/NAME`` and then calls the
``variants_finished`` hook, which this module implements. One row per variant (per run folder):

- generation: items, accepted, the yield, teacher calls and tokens (estimated) per accepted sample, from the
  shards the variant trained on (its own ``generate/``, or the one its ``train.data`` names);
- training: steps, train time (the steps' own time), the final loss and tokens per sample, from
  ``train/metrics.jsonl`` (a perception stage's steps, ``train/perception/metrics.jsonl``, shown first: ``100 + 400``);
- evaluation, per benchmark (``evaluate/<label>/report.json``): accuracy overall and per breakdown (embedded-eval's
  subsets), and, where the benchmark's prediction file lists each item's choices (embedded-eval's does), chance
  (the mean of 1 / options) and the question prior: the expected score of answering each question with the answer
  the training items gave it most often (ties shared; 1 / options for a question never trained on).

``python -m afcot_report.compare RUN [RUN ...] [--out DIR]`` builds the same table for any run folders.
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from afcot_core.api import BadInput, atomic_write, collect_stats, iter_samples

SKIPPED = ("overall", "diagnostics")  # the keys of report.json that are no breakdown


def _lock(run: Path) -> dict[str, Any]:
    path = run / "recipe.lock.toml"
    if not path.is_file():
        raise BadInput(f"{run}: not a run folder (no recipe.lock.toml)")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8")).get("recipe", {})
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"{path}: not valid TOML: {exc}") from None


def items_folder(run: Path, recipe: dict[str, Any]) -> Path:
    """The shards the run trained on: ``train.data`` (``{run}`` being ``run``), else its own ``generate/``."""
    data = recipe.get("train", {}).get("data") or "{run}/generate"
    return Path(str(data).replace("{run}", str(run)))


def train_answers(data: Path) -> dict[str, Counter[str]]:
    """Answers (lower-cased) per question text in the training shards of ``data``."""
    answers: dict[str, Counter[str]] = defaultdict(Counter)
    for shard in sorted(data.glob("shard-*.tar")):
        for _, parts in iter_samples(shard):
            item = json.loads(parts["json"])["item"]
            answers[item["question"].strip()][item["answer"].strip().lower()] += 1
    return answers


def generation(folder: Path) -> dict[str, Any] | None:
    if not any(folder.glob("shard-*.tar")) and not any(folder.glob("rejects-*.jsonl")):
        return None
    total = collect_stats(folder)["total"]
    return {"items": total["items"], "accepted": total["accepted"], "yield": total["yield"],
            "calls_per_sample": total["calls_per_accepted"]["all"], "tokens_per_sample": total["tokens_per_accepted"]}


def _steps(path: Path) -> list[dict[str, Any]]:
    """The optimiser steps of a ``metrics.jsonl`` (a resumed run writes its steps again: the last one counts)."""
    by_step: dict[int, dict[str, Any]] = {}
    for line in path.read_text(encoding="utf-8").splitlines() if path.is_file() else []:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            break  # a torn last line of a killed run
        if "samples_per_s" in row:
            by_step[int(row["step"])] = row
    return [by_step[s] for s in sorted(by_step)]


def _seconds(steps: list[dict[str, Any]]) -> float:
    return sum(s["samples"] / s["samples_per_s"] for s in steps if s["samples_per_s"])


def training(run: Path) -> dict[str, Any] | None:
    """Steps, train time (a perception stage's included), final loss and tokens per sample of ``run/train``."""
    path = run / "train" / "metrics.jsonl"
    if not path.is_file():
        return None
    steps, perception = _steps(path), _steps(run / "train" / "perception" / "metrics.jsonl")
    samples = sum(s["samples"] for s in steps)
    return {"steps": len(steps), "perception_steps": len(perception),
            "train_s": round(_seconds(steps) + _seconds(perception), 1),
            "final_loss": steps[-1]["loss"] if steps else None,
            "tokens_per_sample": round(sum(s["tokens"] for s in steps) / samples, 1) if samples else None}


def _priors(predictions: list[dict[str, Any]], answers: dict[str, Counter[str]]) -> tuple[float, float | None]:
    """Chance and the question prior of the items of a prediction file (the prior None without training items)."""
    chance = prior = 0.0
    for it in predictions:
        options = [str(c).lower() for c in it["choices"]]
        chance += 1 / len(options)
        seen = Counter({a: n for a, n in answers.get(str(it.get("question", "")).strip(), Counter()).items()
                        if a in options})
        tied = [a for a, n in seen.items() if n == max(seen.values())] or options  # a tie: its expected score
        prior += (str(it["answer"]).lower() in tied) / len(tied)
    n = len(predictions)
    return chance / n, (prior / n if answers else None)


def evaluation(run: Path, answers: dict[str, Counter[str]]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for folder in sorted(p for p in (run / "evaluate").glob("*") if (p / "report.json").is_file()):
        report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
        row: dict[str, Any] = {"accuracy": report["overall"]["accuracy"], "total": report["overall"]["total"],
                               "groups": {f"{value}": stats["accuracy"] for name, groups in report.items()
                                          if name not in SKIPPED and isinstance(groups, dict)
                                          for value, stats in groups.items()}}
        for path in sorted(folder.glob("*-predictions.jsonl")):
            rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
            if rows and all(isinstance(r.get("choices"), list) and r["choices"] and "answer" in r for r in rows):
                row["chance"], row["question_prior"] = _priors(rows, answers)
        found[folder.name] = row
    return found


def targets(recipe: dict[str, Any]) -> str:
    """What the student was trained on: CoT, plain, or CoT blended with plain (a source with ``cot = false``)."""
    train = recipe.get("train")
    if not train:
        return "-"
    cot = bool(train.get("cot", True))
    kinds = {bool(s["cot"]) if "cot" in s else cot for s in train.get("sources", [])} or {cot}
    return "CoT + plain" if len(kinds) == 2 else ("CoT" if kinds == {True} else "plain")


def summary(name: str, run: Path) -> dict[str, Any]:
    """The figures of one run folder."""
    recipe = _lock(run)
    folder = items_folder(run, recipe)
    answers = train_answers(folder) if recipe.get("train") else {}
    return {"variant": name, "run": str(run), "targets": targets(recipe), "generate": generation(folder),
            "train": training(run), "benchmarks": evaluation(run, answers)}


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 60 else f"{seconds / 60:.1f} min"


def _markdown(head: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table without the columns that hold nothing ("-") in any row (the first is always kept)."""
    keep = [i for i in range(len(head)) if i == 0 or any(r[i] != "-" for r in rows)]
    return ["| " + " | ".join(head[i] for i in keep) + " |", "|---" * len(keep) + "|",
            *("| " + " | ".join(r[i] for i in keep) + " |" for r in rows)]


def _step_count(t: dict[str, Any]) -> str:
    """A training's steps, a perception stage's first: ``400`` or ``100 + 400``."""
    if not t:
        return "-"
    return f"{t['perception_steps']} + {t['steps']}" if t.get("perception_steps") else str(t["steps"])


def table(rows: list[dict[str, Any]]) -> str:
    """The variants as Markdown: generation and training figures, then accuracy per benchmark and subset."""
    head = ["variant", "targets", "items", "yield", "calls / sample", "tokens / sample", "steps", "train time",
            "final loss", "train tokens / sample"]
    cells = []
    for r in rows:
        g, t = r["generate"] or {}, r["train"] or {}
        cells.append([r["variant"], r["targets"], f"{g['accepted']} / {g['items']}" if g else "-",
                      _pct(g.get("yield")), _num(g.get("calls_per_sample"), 2), _num(g.get("tokens_per_sample"), 0),
                      _step_count(t), _duration(t["train_s"]) if t else "-", _num(t.get("final_loss"), 3),
                      _num(t.get("tokens_per_sample"), 0)])
    lines = ["## Generation and training", "", *_markdown(head, cells)]
    benches = list(dict.fromkeys(b for r in rows for b in r["benchmarks"]))
    for bench in benches:
        groups = list(dict.fromkeys(k for r in rows for k in r["benchmarks"].get(bench, {}).get("groups", {})))
        head = ["variant", "accuracy", *groups, "chance", "question prior"]
        cells = []
        for r in rows:
            b = r["benchmarks"].get(bench)
            cells.append([r["variant"], *([f"{b['accuracy']:.1%} of {b['total']}",
                                           *(_pct(b["groups"].get(k)) for k in groups), _pct(b.get("chance")),
                                           _pct(b.get("question_prior"))] if b else ["-"] * (len(head) - 1))])
        lines += ["", f"## {bench}", "", *_markdown(head, cells)]
    if not benches:
        lines += ["", "No variant was evaluated."]
    return "\n".join(lines) + "\n"


def write(out_dir: Path, runs: dict[str, Path]) -> dict[str, Any]:
    """``compare.json`` and ``compare.md`` of ``runs`` (name → run folder) in ``out_dir``."""
    rows = [summary(name, run) for name, run in runs.items() if (run / "recipe.lock.toml").is_file()]
    doc = {"variants": rows}
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(out_dir / "compare.json", lambda tmp: tmp.write_text(json.dumps(doc, indent=2) + "\n"))
    atomic_write(out_dir / "compare.md", lambda tmp: tmp.write_text(f"# Variants of {out_dir}\n\n{table(rows)}"))
    return doc


def variants_finished(out_dir: Any, variants: list[str], log: Any) -> None:
    """The ``variants_finished`` hook (registered in ``afcot_report.plugin``): the comparison of ``variants``."""
    write(Path(out_dir), {name: Path(out_dir) / name for name in variants})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m afcot_report.compare", description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders (with recipe.lock.toml)")
    parser.add_argument("--out", type=Path, help="write compare.json and compare.md here (default: print)")
    args = parser.parse_args(argv)
    runs = {run.name: run for run in args.runs}
    if args.out:
        write(args.out, runs)
    else:
        sys.stdout.write(table([summary(name, run) for name, run in runs.items()]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
