"""The AF-Reasoning-Eval manifest format (AF2 schema), read and written.

``{"dataset_path", "flamingo_task", "total_num", "data": {"0": {"name", "prompt", "output"}}}`` with
prompt ``"{question}\\n(A) x. (B) y. (C) z. (D) w. {COT_SUFFIX}"`` and output ``"(B) y"``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from afcot_core.api import COT_SUFFIX, OPTION_LETTERS, BadInput, read_json

_OPTION = re.compile(r"\(([A-Z])\) ")
_FIELDS = ("name", "prompt", "output")
_OUTPUT = re.compile(r"^\(([A-Z])\) (.*)$", re.DOTALL)


@dataclass(frozen=True)
class McqEntry:
    """One multiple-choice item of an AF-Reasoning-Eval file."""

    key: str
    name: str
    question: str
    choices: tuple[str, ...]
    answer_index: int

    @property
    def answer(self) -> str:
        return self.choices[self.answer_index]

    @property
    def distractors(self) -> list[str]:
        return [c for i, c in enumerate(self.choices) if i != self.answer_index]


def format_prompt(question: str, choices: list[str] | tuple[str, ...]) -> str:
    """The AF-Reasoning-Eval prompt for ``question`` and its options."""
    options = " ".join(f"({OPTION_LETTERS[i]}) {c}." for i, c in enumerate(choices))
    return f"{question}\n{options} {COT_SUFFIX}"


def format_output(choices: list[str] | tuple[str, ...], answer_index: int) -> str:
    return f"({OPTION_LETTERS[answer_index]}) {choices[answer_index]}"


def parse_entry(key: str, entry: Any, where: str) -> McqEntry:
    """One ``data`` entry; :class:`BadInput` says what is malformed."""
    if not isinstance(entry, dict) or not all(isinstance(entry.get(f), str) for f in _FIELDS):
        raise BadInput(f"{where}: expected an object with string 'name', 'prompt' and 'output'")
    prompt = entry["prompt"]
    if "\n" not in prompt:
        raise BadInput(f"{where}.prompt: no line break between the question and the options")
    question, body = prompt.split("\n", 1)
    body = body.removesuffix(COT_SUFFIX).strip()
    parts = _OPTION.split(body)
    letters = parts[1::2]
    if parts[0].strip() or not letters or "".join(letters) != OPTION_LETTERS[: len(letters)]:
        raise BadInput(f"{where}.prompt: options are not '(A) x. (B) y. ...'")
    choices = tuple(p.strip().removesuffix(".").strip() for p in parts[2::2])
    m = _OUTPUT.match(entry["output"].strip())
    if m is None or m.group(1) not in letters:
        raise BadInput(f"{where}.output: expected '(X) option' with X one of {', '.join(letters)}")
    index = OPTION_LETTERS.index(m.group(1))
    if m.group(2).strip() != choices[index]:
        raise BadInput(f"{where}.output: '{m.group(2)}' is not option ({m.group(1)}) '{choices[index]}'")
    return McqEntry(key=key, name=entry["name"], question=question.strip(), choices=choices,
                    answer_index=index)


def read_eval_file(path: str | Path) -> tuple[dict[str, Any], list[McqEntry]]:
    """The header fields and the entries of an AF-Reasoning-Eval file, in key order."""
    path = Path(path)
    doc = read_json(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), dict):
        raise BadInput(f"{path}: expected an object with a 'data' object")
    keys = sorted(doc["data"], key=lambda k: (not k.isdigit(), int(k) if k.isdigit() else 0, k))
    entries = [parse_entry(k, doc["data"][k], f"{path}: data.{k}") for k in keys]
    header = {k: v for k, v in doc.items() if k != "data"}
    return header, entries


def eval_document(entries: list[McqEntry], dataset_path: str, flamingo_task: str) -> dict[str, Any]:
    """An AF-Reasoning-Eval document holding ``entries`` (numbered from 0 in order)."""
    data = {str(i): {"name": e.name, "prompt": format_prompt(e.question, e.choices),
                     "output": format_output(e.choices, e.answer_index)} for i, e in enumerate(entries)}
    return {"dataset_path": dataset_path, "flamingo_task": flamingo_task, "total_num": len(data),
            "data": data}


def write_eval_file(path: str | Path, entries: list[McqEntry], dataset_path: str, flamingo_task: str) -> None:
    Path(path).write_text(json.dumps(eval_document(entries, dataset_path, flamingo_task), indent=2,
                                     ensure_ascii=False) + "\n", encoding="utf-8")
