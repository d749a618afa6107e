"""AF-Reasoning-Eval (Audio Flamingo Sound-CoT): AQA-MCQ, AQA-Yes/No, Classification-mini/-full.

No official scorer exists; this plugin's rule (docs/benchmarks.md) follows spec/BENCHMARKS.md §4.2:
take the last CONCLUSION (else the whole output), lower-case it and strip whitespace and trailing
dots; a leading option letter decides; otherwise the text must equal the gold option text or pass
the MMAU matcher against the options. Letter-only and text-only decisions are kept as diagnostics.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgspec

from afcot_benchmarks.common import (
    audio_at,
    field,
    final_answer,
    prediction_of,
    read_json,
    resolve,
    split_letter,
)
from afcot_benchmarks.matching import Matcher
from afcot_benchmarks.protocol import Benchmark, EvalItem, Judgement, Loaded
from afcot_core.api import COT_SUFFIX, OPTION_LETTERS, BadInput, inline_prompt

#: subset name → official file name, in report order
FILES = {
    "AQA-MCQ": "AQA_MCQ.json",
    "AQA-Yes/No": "AQA_Yes_No.json",
    "Classification-mini": "Classification_mini.json",
    "Classification-full": "Classification_full.json",
}
#: the subset of each official ``flamingo_task``
SUBSET_OF_TASK = {
    "AF-Reasoning-Eval-AQA-MCQ": "AQA-MCQ",
    "AF-Reasoning-Eval-AQA-Yes_No": "AQA-Yes/No",
    "AF-Reasoning-Eval-Classification-mini": "Classification-mini",
    "AF-Reasoning-Eval-Classification-full": "Classification-full",
}
DEFAULT_SUBSETS = ("AQA-MCQ", "AQA-Yes/No", "Classification-mini")
_OPTION = re.compile(r"\(([A-Z])\) (.*?)\.(?= \([A-Z]\) |$)")
_GOLD = re.compile(r"^\(([A-Z])\) (.*)$", re.DOTALL)


class AfEvalConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The official JSON files under ``data_dir``; audio under ``audio_root/<dataset_path>/<name>``."""

    #: folder with the official JSON files (AQA_MCQ.json, ...)
    data_dir: str = "data/af_reasoning_eval"
    #: subsets to load: AQA-MCQ, AQA-Yes/No, Classification-mini, Classification-full
    subsets: list[str] = msgspec.field(default_factory=lambda: list(DEFAULT_SUBSETS))
    #: folder holding <dataset_path>/<name> audio (default: data_dir)
    audio_root: str = ""

    def __post_init__(self) -> None:
        for name in self.subsets:
            if name not in FILES:
                close = difflib.get_close_matches(name, list(FILES), n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise ValueError(f"unknown subset '{name}'{hint}; subsets: {', '.join(FILES)}")
        if not self.subsets:
            raise ValueError("subsets: name at least one subset")

    def audio_dir(self) -> Path:
        return Path(self.audio_root or self.data_dir).expanduser()


def parse_options(prompt: str, where: str) -> tuple[str, tuple[str, ...]]:
    """The question and option texts of an official prompt (``Q\\n(A) x. (B) y. <suffix>``)."""
    question, newline, rest = prompt.partition("\n")
    rest = rest.removesuffix(COT_SUFFIX).rstrip()
    found = _OPTION.findall(rest)
    letters = "".join(letter for letter, _ in found)
    if not newline or not found or letters != OPTION_LETTERS[: len(found)]:
        raise BadInput(f"{where}.prompt: expected 'question\\n(A) option. (B) option. ...'")
    return question, tuple(text for _, text in found)


def parse_manifest(doc: Any, where: str, audio_root: Path | None) -> list[tuple[EvalItem, dict[str, Any]]]:
    """The items of one official file, each with its raw ``data`` entry."""
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), dict):
        raise BadInput(f"{where}: expected an object with a 'data' object")
    task = field(doc, "flamingo_task", where)
    subset = SUBSET_OF_TASK.get(task)
    if subset is None:
        known = ", ".join(SUBSET_OF_TASK)
        raise BadInput(f"{where}.flamingo_task: unknown task {task!r}; expected one of {known}")
    folder = field(doc, "dataset_path", where)
    out = []
    for key, entry in doc["data"].items():
        at = f"{where}: data.{key}"
        if not isinstance(entry, dict):
            raise BadInput(f"{at}: expected an object")
        prompt = field(entry, "prompt", at)
        question, options = parse_options(prompt, at)
        gold = _GOLD.match(field(entry, "output", at).strip())
        index = OPTION_LETTERS.find(gold.group(1)) if gold else -1
        if gold is None or not 0 <= index < len(options) or options[index] != gold.group(2).strip():
            raise BadInput(f"{at}.output: expected '(<letter>) <text>' naming one of the prompt's options")
        name = field(entry, "name", at)
        audio, looked = audio_at(audio_root / folder, name) if audio_root else (None, "")
        item = EvalItem(id=f"{subset}/{key}", question=question, choices=options, answer=options[index],
                        answer_index=index, audio=audio, audio_path=looked, prompt=prompt,
                        groups={"subset": subset, "task": subset.split("-")[0]}, record=entry)
        out.append((item, entry))
    return out


def normalise(text: str) -> str:
    return text.strip().lower().rstrip(".").strip()


class AfReasoningEval(Benchmark):
    name = "af-reasoning-eval"
    breakdowns = ("subset", "task")
    extract_on_score = True
    diagnostics = ("letter-only", "text-only")

    def __init__(self, config: AfEvalConfig) -> None:
        self.config = config
        self._docs: dict[str, dict[str, Any]] = {}

    def group_order(self, breakdown: str) -> tuple[str, ...]:
        """Subsets in the official order: those read (a one-subset predictions file), else those configured."""
        if breakdown == "subset":
            present = self._docs.keys() or self.config.subsets
            return tuple(s for s in FILES if s in present)
        return ()

    def load(self) -> Loaded:
        items: list[EvalItem] = []
        for subset in self.config.subsets:
            path = resolve(self.config.data_dir, FILES[subset])
            doc = read_json(path)
            self._docs[subset] = doc
            items += [item for item, _ in parse_manifest(doc, str(path), self.config.audio_dir())]
        return Loaded(items, [it.id for it in items if it.audio is None])

    def read_predictions(self, path: Path) -> list[tuple[EvalItem, str | None]]:
        doc = read_json(path)
        pairs = parse_manifest(doc, str(path), None)
        if pairs:
            self._docs[pairs[0][0].groups["subset"]] = doc
        return [(item, prediction_of(entry, ("prediction",), f"{path}: {item.id}")) for item, entry in pairs]

    def prompt(self, item: EvalItem, cot: bool) -> str:
        if cot:
            return item.prompt
        return item.prompt.removesuffix(COT_SUFFIX).rstrip()

    def trained_prompt(self, item: EvalItem, cot: bool, layout: str = "inline") -> str:
        """The native prompts already are the ``inline`` layout; another layout is built from their question and
        options."""
        if layout == "inline":
            return self.prompt(item, cot)
        return inline_prompt(item.question, item.choices, cot, layout)

    def extract(self, item: EvalItem, output: str) -> str:
        return final_answer(output)

    def judge(self, item: EvalItem, answer: str) -> Judgement:
        text = normalise(answer)
        index, rest = split_letter(text, len(item.choices), allow_bare=True)
        letter_ok = index is not None and index == item.answer_index
        remainder = rest if index is not None else text
        text_ok = remainder == item.answer.lower() or Matcher(item.answer, item.choices)(remainder)
        return Judgement(letter_ok if index is not None else text_ok,
                         {"letter-only": letter_ok, "text-only": text_ok})

    def export(self, pairs: Iterable[tuple[EvalItem, str | None]]) -> dict[str, str]:
        by_subset: dict[str, dict[str, Any]] = {}
        for item, answer in pairs:
            subset, key = item.groups["subset"], item.id.rsplit("/", 1)[1]
            doc = by_subset.setdefault(subset, {**self._docs.get(subset, {}), "data": {}})
            doc["data"][key] = {**item.record, "prediction": answer or ""}
        return {f"{Path(FILES[s]).stem}.predictions.json": json.dumps(d, indent=2, ensure_ascii=False) + "\n"
                for s, d in by_subset.items()}


def preflight(config: AfEvalConfig) -> list[str]:
    problems = []
    for subset in config.subsets:
        path = resolve(config.data_dir, FILES[subset])
        if not path.is_file():
            problems.append(f"AF-Reasoning-Eval file not found: {path} (set data_dir)")
    if not config.audio_dir().is_dir():
        problems.append(f"AF-Reasoning-Eval audio root not found: {config.audio_dir()} (set audio_root)")
    return problems
