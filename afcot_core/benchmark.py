"""The benchmark protocol: evaluation items, the per-benchmark rules, scoring and reports.

A benchmark plugin registers a factory returning a :class:`Benchmark`. The benchmark owns its
loader (official files → :class:`EvalItem`), its prompt, its answer extraction and its judge; the
core scores any benchmark the same way (:func:`score`: micro accuracy overall and per breakdown)
and writes the same reports (:func:`write_reports`: JSON, Markdown, one bar plot PNG per breakdown).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from afcot_core.records import AudioRef
from afcot_core.template import COT_SUFFIX, OPTION_LETTERS

#: The key under which per-item decision diagnostics appear in a report (shaped like a breakdown).
DIAGNOSTICS = "diagnostics"


#: the human-turn layouts a student can be trained and evaluated with (docs/interop.md, "The human turn"):
#: ``inline`` is AF-Reasoning-Eval's (``Q\n(A) x. (B) y. <suffix>``), ``model-card`` the AF2-Sound-CoT model
#: card's and the released inference example's (``Q Choose the correct option from the following
#: options:\n(A) x\n(B) y. <suffix>``, the options as the generation pipelines list them)
LAYOUTS = ("inline", "model-card")
#: what the model-card layout puts between the question and its options
CHOOSE = " Choose the correct option from the following options:"


def inline_prompt(question: str, choices: Iterable[str] | None, cot: bool, layout: str = "inline") -> str:
    """The prompt a student is trained on and evaluated with, in ``layout`` (one of :data:`LAYOUTS`); the CoT
    suffix only with ``cot``. ``inline``: ``"{question}\n(A) x. (B) y. Output the answer with <SUMMARY>, ...
    tags."``; ``model-card``: ``"{question} Choose the correct option from the following options:\n(A) x\n(B) y.
    Output the answer ..."``."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown prompt layout '{layout}'; layouts: {', '.join(LAYOUTS)}")
    options = list(choices or [])
    if len(options) > len(OPTION_LETTERS):
        raise ValueError(f"at most {len(OPTION_LETTERS)} choices can be lettered, got {len(options)}")
    text = question.strip()
    if options and layout == "inline":
        text += "\n" + " ".join(f"({OPTION_LETTERS[i]}) {c}." for i, c in enumerate(options))
    elif options:
        text += CHOOSE + "".join(f"\n({OPTION_LETTERS[i]}) {c}" for i, c in enumerate(options)) + "."
    return f"{text} {COT_SUFFIX}" if cot else text


#: the options a yes/no question without choices is given, as in AF-Reasoning-Eval's AQA-Yes/No
YES_NO = ("yes", "no")


def options_of(choices: Iterable[str] | None, answer: str) -> tuple[str, ...]:
    """The options a student sees: the item's choices, or (yes, no) for a yes/no question without choices."""
    options = tuple(choices or ())
    return options or (YES_NO if answer.strip().lower() in YES_NO else ())


def plain_answer(choices: Iterable[str] | None, answer: str) -> str:
    """The non-CoT target: ``(B) text`` when the answer is one of the options a student sees (as AF-Reasoning-Eval's
    gold outputs), else the answer."""
    options = options_of(choices, answer)
    key = answer.strip().lower() if options == YES_NO else answer
    return f"({OPTION_LETTERS[options.index(key)]}) {key}" if key in options else answer


@dataclass(frozen=True)
class EvalItem:
    """One benchmark question, as loaded from the benchmark's official files.

    ``answer_index`` is the gold option's position in ``choices`` when known; ``groups`` maps each
    breakdown name to this item's value; ``audio`` is None when the file is missing (``audio_path``
    says where it was looked for); ``record`` is the original record, kept for writing prediction
    files in the official format; ``prompt`` is a native prompt if the benchmark ships one.
    """

    id: str
    question: str
    choices: tuple[str, ...]
    answer: str
    answer_index: int | None = None
    groups: Mapping[str, str] = field(default_factory=dict)
    audio: AudioRef | None = None
    audio_path: str = ""
    prompt: str = ""
    record: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Judgement:
    """Whether an extracted answer is right, plus optional named diagnostic decisions."""

    correct: bool
    diagnostics: Mapping[str, bool] = field(default_factory=dict)


@dataclass
class Loaded:
    """A benchmark's items and the audio files it could not find (item ids)."""

    items: list[EvalItem]
    missing_audio: list[str] = field(default_factory=list)


class Benchmark(ABC):
    """What a benchmark plugin provides; see the module docstring."""

    name: str = ""
    #: breakdown names, in report order
    breakdowns: tuple[str, ...] = ()
    #: whether ``bench score`` runs :meth:`extract` on predictions read from an official file
    extract_on_score: bool = False
    #: names of the diagnostic decisions :meth:`judge` returns (reported over every item, missing ones as wrong)
    diagnostics: tuple[str, ...] = ()

    @abstractmethod
    def load(self) -> Loaded:
        """The items of the configured benchmark files (missing audio is reported, never raised)."""

    @abstractmethod
    def read_predictions(self, path: Path) -> list[tuple[EvalItem, str | None]]:
        """Items and raw predictions from an official prediction file; None where an item has none."""

    @abstractmethod
    def prompt(self, item: EvalItem, cot: bool) -> str:
        """The text prompt for ``item``; ``cot`` asks for the tagged chain-of-thought format."""

    @abstractmethod
    def extract(self, item: EvalItem, output: str) -> str:
        """The final answer in a model's raw output (last CONCLUSION, then the benchmark's rule)."""

    @abstractmethod
    def judge(self, item: EvalItem, answer: str) -> Judgement:
        """Whether the extracted ``answer`` is correct for ``item``."""

    def group_order(self, breakdown: str) -> tuple[str, ...]:
        """Values always reported for ``breakdown``, in order; others follow in first-seen order."""
        return ()

    def trained_prompt(self, item: EvalItem, cot: bool, layout: str = "inline") -> str:
        """The prompt in the layout students are trained on (:data:`LAYOUTS`, the CoT suffix when ``cot``)."""
        return inline_prompt(item.question, item.choices, cot, layout)

    def trained_extract(self, item: EvalItem, output: str) -> str:
        """The final answer of an output to :meth:`trained_prompt` (by default as :meth:`extract`)."""
        return self.extract(item, output)

    def export(self, pairs: Iterable[tuple[EvalItem, str | None]]) -> dict[str, str]:
        """File names and texts holding answers in the official prediction format ("" for none)."""
        raise NotImplementedError(f"{self.name}: no official prediction format")


def with_cot(prompt: str, cot: bool) -> str:
    """``prompt`` ending with the CoT suffix when ``cot`` is on, and without it otherwise."""
    base = prompt.removesuffix(COT_SUFFIX).rstrip()
    return f"{base}\n{COT_SUFFIX}" if cot else base


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
