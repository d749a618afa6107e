"""The benchmark protocol: evaluation items, the per-benchmark rules, and the prompt layout students learn.

A benchmark plugin registers a factory returning a :class:`Benchmark`. The benchmark owns its
loader (official files → :class:`EvalItem`), its prompt, its answer extraction and its judge; the
evaluate stage (plugin ``afcot_benchmarks``) scores any benchmark the same way.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from afcot_core.records import AudioRef
from afcot_core.template import COT_SUFFIX, OPTION_LETTERS

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
