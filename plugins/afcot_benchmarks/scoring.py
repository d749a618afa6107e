"""Scoring any benchmark the same way and writing its reports.

:func:`score` gives micro accuracy overall and per breakdown; :func:`write_reports` writes JSON, Markdown and
one bar plot PNG per breakdown.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from afcot_benchmarks.protocol import Benchmark, EvalItem, Judgement

#: The key under which per-item decision diagnostics appear in a report (shaped like a breakdown).
DIAGNOSTICS = "diagnostics"


@dataclass
class Stats:
    """Micro accuracy of a group: ``missing`` items had no prediction and count as wrong."""

    correct: int = 0
    total: int = 0
    missing: int = 0

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0

    def add(self, correct: bool, missing: bool = False) -> None:
        self.correct += int(correct)
        self.total += 1
        self.missing += int(missing)

    def to_dict(self) -> dict[str, Any]:
        return {"correct": self.correct, "total": self.total, "accuracy": self.accuracy,
                "missing": self.missing}


@dataclass
class Report:
    """A scored benchmark: overall, per breakdown value, diagnostics, and what had no prediction."""

    benchmark: str
    overall: Stats
    breakdowns: dict[str, dict[str, Stats]]
    diagnostics: dict[str, Stats] = field(default_factory=dict)
    missing_ids: list[str] = field(default_factory=list)
    skipped_ids: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """``{"overall": {...}, "<breakdown>": {"<value>": {...}}}``, accuracy as a fraction."""
        doc: dict[str, Any] = {"overall": self.overall.to_dict()}
        for name, groups in self.breakdowns.items():
            doc[name] = {value: stats.to_dict() for value, stats in groups.items()}
        if self.diagnostics:
            doc[DIAGNOSTICS] = {name: stats.to_dict() for name, stats in self.diagnostics.items()}
        return doc

    def to_markdown(self, title: str = "") -> str:
        """Markdown tables: overall, then one per breakdown, accuracy in percent to 2 decimals."""
        lines = [f"# {title or self.benchmark}", ""]
        tables = {"overall": {"all": self.overall}, **self.breakdowns}
        if self.diagnostics:
            tables[DIAGNOSTICS] = self.diagnostics
        for name, groups in tables.items():
            lines += [f"## {name}", "", f"| {name} | correct | total | accuracy (%) | missing |",
                      "|---|---:|---:|---:|---:|"]
            lines += [f"| {value} | {s.correct} | {s.total} | {100 * s.accuracy:.2f} | {s.missing} |"
                      for value, s in groups.items()]
            lines.append("")
        if self.missing_ids:
            n = len(self.missing_ids)
            lines.append(f"**Warning:** {n} item(s) had no prediction; they count as wrong.")
        if self.skipped_ids:
            lines.append(f"**Warning:** {len(self.skipped_ids)} item(s) had no prediction and were left out "
                         "of every denominator (as the official local scripts do).")
        return "\n".join(lines).rstrip() + "\n"


def score(benchmark: Benchmark, pairs: Iterable[tuple[EvalItem, str | None]], extract: bool = True,
          skip_missing: bool = False) -> Report:
    """Micro accuracy of ``pairs`` (item, raw prediction or None).

    A missing prediction counts as wrong and is listed in ``missing_ids``; with ``skip_missing`` it
    is left out of every denominator instead and listed in ``skipped_ids``.
    """
    overall = Stats()
    breakdowns: dict[str, dict[str, Stats]] = {
        b: {v: Stats() for v in benchmark.group_order(b)} for b in benchmark.breakdowns
    }
    diagnostics: dict[str, Stats] = {name: Stats() for name in benchmark.diagnostics}
    missing: list[str] = []
    skipped: list[str] = []
    for item, prediction in pairs:
        if prediction is None and skip_missing:
            skipped.append(item.id)
            continue
        if prediction is None:
            missing.append(item.id)
            verdict = Judgement(False, {name: False for name in benchmark.diagnostics})
        else:
            verdict = benchmark.judge(item, benchmark.extract(item, prediction) if extract else prediction)
        is_missing = prediction is None
        overall.add(verdict.correct, is_missing)
        for name in benchmark.breakdowns:
            breakdowns[name].setdefault(item.groups[name], Stats()).add(verdict.correct, is_missing)
        for name, ok in verdict.diagnostics.items():
            diagnostics.setdefault(name, Stats()).add(ok, is_missing)
    return Report(benchmark.name, overall, breakdowns, diagnostics, missing, skipped)


def plot(report: Report, out_dir: Path) -> list[Path]:
    """One horizontal bar chart PNG of accuracy per breakdown value; matplotlib is imported here."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, groups in report.breakdowns.items():
        labels = [f"{value} (n={s.total})" for value, s in groups.items()]
        values = [100 * s.accuracy for s in groups.values()]
        fig, ax = plt.subplots(figsize=(8, 0.4 * len(labels) + 1.5))
        ax.barh(labels[::-1], values[::-1], color="tab:blue")
        ax.axvline(100 * report.overall.accuracy, color="tab:red", linestyle="--",
                   label=f"overall {100 * report.overall.accuracy:.2f}%")
        ax.set_xlim(0, 100)
        ax.set_xlabel("accuracy (%)")
        ax.set_title(f"{report.benchmark}: accuracy by {name}")
        ax.legend(loc="lower right")
        fig.tight_layout()
        path = out_dir / f"{_safe(name)}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written


def write_reports(report: Report, out_dir: Path, title: str = "", plots: bool = True) -> dict[str, Any]:
    """Write ``report.json``, ``report.md`` and ``plots/<breakdown>.png`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / "report.json", out_dir / "report.md"
    json_path.write_text(json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    md_path.write_text(report.to_markdown(title), encoding="utf-8")
    written: dict[str, Any] = {"json": json_path, "markdown": md_path, "plots": []}
    if plots:
        written["plots"] = plot(report, out_dir / "plots")
    return written


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
