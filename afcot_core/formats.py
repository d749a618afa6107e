"""The training-data formats of the Audio Flamingo family, read and written without heavy imports.

- **AF-Think / AF3 training JSON** (``nvidia/AF-Think`` ``afcot/*.json``): a JSON list of
  ``{"id", "sound", "duration", "conversations": [{"from": "human", "value": "<sound>\\n..."},
  {"from": "gpt", "value": "..."}, ...]}``; ``sound`` is relative to an audio root.
- **AF2 manifests**: ``{"split", "split_path", "flamingo_task", "total_num", "data": {"0": {"name",
  "prompt", "output", "duration"}}}``; audio at ``<root>/<split_path>/<name>`` (AF-Reasoning-Eval
  files name the folder ``dataset_path``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from afcot_core.errors import BadInput
from afcot_core.files import json_objects, read_json
from afcot_core.template import COT_SUFFIX, OPTION_LETTERS, extract_conclusion

#: the audio placeholder at the start of the first human turn
SOUND = "<sound>"


@dataclass(frozen=True)
class Conversation:
    """One training sample of either format: audio path (relative), turns of (user, assistant) text."""

    id: str
    sound: str
    turns: tuple[tuple[str, str], ...]
    duration: float = 0.0


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise BadInput(f"{where}: expected a string, got {type(value).__name__}")
    return value


def read_afthink(path: Path) -> list[Conversation]:
    """Every record of an AF-Think / AF3 training JSON file; :class:`BadInput` names the record and key."""
    out = []
    for i, rec in enumerate(json_objects(read_json(path), str(path))):
        where = f"{path}: record {i}"
        for key in ("sound", "conversations"):
            if key not in rec:
                raise BadInput(f"{where}: missing key '{key}'")
        turns = rec["conversations"]
        if not isinstance(turns, list) or not turns or len(turns) % 2:
            raise BadInput(f"{where}.conversations: expected human/gpt pairs")
        pairs = []
        for t in range(0, len(turns), 2):
            human, gpt = turns[t], turns[t + 1]
            if not isinstance(human, dict) or not isinstance(gpt, dict) or human.get("from") != "human" \
                    or gpt.get("from") != "gpt":
                raise BadInput(f"{where}.conversations[{t}]: expected a 'human' turn followed by a 'gpt' turn")
            user = _text(human.get("value"), f"{where}.conversations[{t}].value")
            if t == 0:
                user = user.removeprefix(SOUND).lstrip("\n")
            pairs.append((user, _text(gpt.get("value"), f"{where}.conversations[{t + 1}].value")))
        out.append(Conversation(id=str(rec.get("id", i)), sound=_text(rec["sound"], f"{where}.sound"),
                                turns=tuple(pairs), duration=float(rec.get("duration") or 0.0)))
    return out


def afthink_record(conv: Conversation) -> dict[str, Any]:
    """``conv`` as one AF-Think / AF3 training record (the sound placeholder opens the first human turn)."""
    turns: list[dict[str, str]] = []
    for n, (user, assistant) in enumerate(conv.turns):
        turns += [{"from": "human", "value": f"{SOUND}\n{user}" if n == 0 else user},
                  {"from": "gpt", "value": assistant}]
    return {"id": conv.id, "sound": conv.sound, "duration": conv.duration, "conversations": turns}


def read_af2_manifest(path: Path) -> tuple[str, list[Conversation]]:
    """The audio folder (``split_path`` or ``dataset_path``) and the entries of an AF2 manifest."""
    doc = read_json(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), dict):
        raise BadInput(f"{path}: expected an object with a 'data' object (an AF2 manifest)")
    folder = doc.get("split_path", doc.get("dataset_path"))
    if not isinstance(folder, str):
        raise BadInput(f"{path}: missing key 'split_path' (or 'dataset_path')")
    out = []
    for key, entry in doc["data"].items():
        where = f"{path}: data.{key}"
        if not isinstance(entry, dict):
            raise BadInput(f"{where}: expected an object")
        for name in ("name", "prompt", "output"):
            if name not in entry:
                raise BadInput(f"{where}: missing key '{name}'")
        out.append(Conversation(id=str(key), sound=_text(entry["name"], f"{where}.name"),
                                turns=((_text(entry["prompt"], f"{where}.prompt"),
                                        _text(entry["output"], f"{where}.output")),),
                                duration=float(entry.get("duration") or 0.0)))
    return folder, out


def af2_manifest(convs: list[Conversation], split: str, split_path: str, task: str) -> dict[str, Any]:
    """An AF2 manifest of single-turn ``convs``."""
    data = {str(i): {"name": c.sound, "prompt": c.turns[0][0], "output": c.turns[0][1], "duration": c.duration}
            for i, c in enumerate(convs)}
    return {"split": split, "split_path": split_path, "flamingo_task": task, "total_num": len(data), "data": data}


_OPTIONS = re.compile(r"\(([A-Z])\) (.*?)\.(?= \([A-Z]\) |$)")
_LETTER = re.compile(r"^\(([A-Z])\)\s*(.*)$", re.DOTALL)


def split_prompt(prompt: str) -> tuple[str, list[str] | None]:
    """The question and options of an inline prompt (``Q\\n(A) x. (B) y. <CoT suffix>``); no options: None."""
    text = prompt.strip().removesuffix(COT_SUFFIX).rstrip()
    question, newline, rest = text.rpartition("\n")
    found = _OPTIONS.findall(rest) if newline else []
    if not found or "".join(letter for letter, _ in found) != OPTION_LETTERS[: len(found)]:
        return text, None
    return question, [option for _, option in found]


def answer_of(target: str, choices: list[str] | None) -> str:
    """The answer a training target gives: its last CONCLUSION (or the whole text); ``(B) x`` names option B."""
    text = (extract_conclusion(target) or target).strip()
    m = _LETTER.match(text)
    if choices and m and OPTION_LETTERS.index(m.group(1)) < len(choices):
        return choices[OPTION_LETTERS.index(m.group(1))]
    return text
