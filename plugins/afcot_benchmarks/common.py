"""Helpers shared by the benchmarks: reading official files, audio paths, option letters."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from afcot_benchmarks.protocol import EvalItem
from afcot_core.api import (
    OPTION_LETTERS,
    AudioRef,
    BadInput,
    audio_ref_from_path,
    extract_conclusion,
    inline_prompt,
    json_objects,
    read_json,
)

#: The choice list as MMAR's authors prompt it (MMAR issue #3); used for MMAU too.
SELECT_ONE = "Select one option from the provided choices:"

_ANY_PAREN_LETTER = re.compile(r"\(\s*([a-z])\s*\)")
_PUNCT_LETTER = re.compile(r"^([a-z])[.):](?:\s+(.*))?$", re.DOTALL)


def read_records(path: Path) -> list[dict[str, Any]]:
    """A JSON list of objects, or JSON Lines when the name ends in ``.jsonl`` (blank lines ignored)."""
    if path.suffix == ".jsonl":
        if not path.is_file():
            raise BadInput(f"{path}: file not found")
        records = []
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise BadInput(f"{path}:{n}: not valid JSON: {exc}") from None
    else:
        records = read_json(path)
    return json_objects(records, str(path), "items")


def field(record: Mapping[str, Any], key: str, where: str, kind: type = str) -> Any:
    """``record[key]``, which must exist and be of ``kind``."""
    if key not in record:
        raise BadInput(f"{where}: missing key '{key}'")
    value = record[key]
    if not isinstance(value, kind):
        raise BadInput(f"{where}.{key}: expected {kind.__name__}, got {type(value).__name__}")
    return value


def choices_of(record: Mapping[str, Any], where: str) -> tuple[str, ...]:
    """The ``choices`` list; a JSON-encoded string (as in the lmms-lab mirror) is decoded first."""
    value = record.get("choices")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise BadInput(f"{where}.choices: a string that is not a JSON list") from None
    if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
        raise BadInput(f"{where}.choices: expected a list of strings")
    return tuple(value)


def one_of(value: str, allowed: Sequence[str], where: str) -> str:
    if value not in allowed:
        raise BadInput(f"{where}: unknown value {value!r}; expected one of {', '.join(allowed)}")
    return value


def prediction_of(record: Mapping[str, Any], keys: Sequence[str], where: str) -> str | None:
    """The first of ``keys`` present; None when none is present or the value is null."""
    for key in keys:
        if key in record:
            value = record[key]
            if value is None or isinstance(value, str):
                return value
            raise BadInput(f"{where}.{key}: expected a string, got {type(value).__name__}")
    return None


def audio_at(root: Path, relative: str) -> tuple[AudioRef | None, str]:
    """A reference to ``root/relative`` (None when the file is missing) and the path looked at."""
    path = root / relative
    if not path.is_file():
        return None, str(path)
    return audio_ref_from_path(path), str(path)


def answer_index(answer: str, choices: Sequence[str]) -> int | None:
    return choices.index(answer) if answer in choices else None


def final_answer(output: str) -> str:
    """The last CONCLUSION of ``output`` (core template), or the whole output when it has none."""
    conclusion = extract_conclusion(output)
    return output if conclusion is None else conclusion


def split_letter(text: str, n_options: int, allow_bare: bool) -> tuple[int | None, str]:
    """The option letter ``text`` names, as an index below ``n_options``, and the text without it.

    One rule wherever the letter stands: a parenthesised ``(b)`` anywhere (when exactly one option
    letter is named that way), else a leading ``b) x``, ``b. x`` or ``b: x``, else a bare ``b`` (only
    when ``allow_bare``). No letter, or several different ones: ``(None, text)``.
    """
    t = text.strip().lower()
    named = {m.group(1) for m in _ANY_PAREN_LETTER.finditer(t) if _index(m.group(1), n_options) is not None}
    if len(named) == 1:
        letter = named.pop()
        rest = _ANY_PAREN_LETTER.sub(lambda m: "" if m.group(1) == letter else m.group(0), t)
        return _index(letter, n_options), " ".join(rest.split())
    if named:
        return None, text.strip()
    m = _PUNCT_LETTER.match(t)
    if m is not None and (index := _index(m.group(1), n_options)) is not None:
        return index, (m.group(2) or "").strip()
    if allow_bare and len(t) == 1 and (index := _index(t, n_options)) is not None:
        return index, ""
    return None, text.strip()


def _index(letter: str, n_options: int) -> int | None:
    index = OPTION_LETTERS.lower().find(letter)
    return index if 0 <= index < n_options else None


def bare_letters_ok(choices: Sequence[str]) -> bool:
    """Whether a bare letter can only mean an option letter (no choice is itself a single letter)."""
    return not any(len(c.strip()) == 1 and c.strip().isalpha() for c in choices)


def option_prompt(question: str, choices: Sequence[str], lettered: bool) -> str:
    """The question with its choices: lettered inline ``(A) x. (B) y.``, or MMAR's plain "select one" list."""
    if lettered:
        return inline_prompt(question, choices, cot=False)
    return f"{question}\n{SELECT_ONE}\n" + "\n".join(choices)


def lettered_answer(text: str, choices: Sequence[str]) -> str:
    """For a prompt with lettered options: a leading letter selects that option's text."""
    index, _ = split_letter(text, len(choices), bare_letters_ok(choices))
    return text if index is None else choices[index]


def resolve(folder: str, name: str) -> Path:
    return Path(folder).expanduser() / name if name else Path(folder).expanduser()


def option_item(record: dict[str, Any], where: str, groups: dict[str, str], audio_root: Path | None,
                audio_key: str) -> EvalItem:
    """An MMAU/MMAR-style record (id, question, choices, answer) as an item.

    Its audio is looked up at ``audio_root / record[audio_key]`` (skipped when ``audio_root`` is None).
    """
    choices = choices_of(record, where)
    answer = field(record, "answer", where)
    audio, looked = audio_at(audio_root, field(record, audio_key, where)) if audio_root else (None, "")
    return EvalItem(id=field(record, "id", where), question=field(record, "question", where), choices=choices,
                    answer=answer, answer_index=answer_index(answer, choices), groups=groups, audio=audio,
                    audio_path=looked, record=record)
