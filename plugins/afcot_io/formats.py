"""The training-data formats of the Audio Flamingo family, read and written without heavy imports.

- **AF-Think / AF3 training JSON** (``nvidia/AF-Think`` ``afcot/*.json``): a JSON list (or JSON lines) of
  ``{"id", "sound", "duration", "conversations": [{"from": "human", "value": "<sound>\\n..."},
  {"from": "gpt", "value": "..."}, ...]}``. ``sound`` is a path the loader opens as given (relative to the
  training job's working directory); a list of paths is the multi-turn / multi-audio form, whose turns name
  file k with ``<sound-k>``. docs/interop.md is the full specification.
- **AF2 manifests**: ``{"split", "split_path", "flamingo_task", "total_num", "data": {"0": {"name",
  "prompt", "output", "duration"}}}``; audio at ``<root>/<split_path>/<name>`` (AF-Reasoning-Eval
  files name the folder ``dataset_path``).

``afcot export`` and the ``afthink`` source write and read them here; the AF trainers (``afcot_flamingo``) read
their training files with :func:`read_afthink` and :func:`read_af2_manifest`: one module for the formats that both
built-in plugins of the afcot distribution share.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from afcot_core.api import COT_SUFFIX, OPTION_LETTERS, BadInput, extract_conclusion, json_objects, read_json

#: the audio placeholder of a record whose ``sound`` is one path
SOUND = "<sound>"
#: the placeholders the official AF3 loader removes from the first human turn of a one-path record, in its order
LOADER_STRIPS = ("<speech>", "<sound>", "<en><asr>", "<eng><asr>")
#: ``<sound-k>``: the k-th path (from 1) of a record whose ``sound`` is a list
SOUND_TAG = re.compile(r"<sound-(\d+)>")
#: what the official loader assumes for a record without ``duration`` (seconds)
DEFAULT_DURATION = 10.0


@dataclass(frozen=True)
class Conversation:
    """One training sample of either format: its audio path, turns of (user, assistant) text, its duration.

    ``sound`` is the path as written (relative to a root or absolute). A multi-turn record is written in the
    list form (``sound`` a one-path list, ``<sound-1>`` in its first human turn), as the official loader reads
    every turn only of that form.
    """

    id: str
    sound: str
    turns: tuple[tuple[str, str], ...]
    duration: float = DEFAULT_DURATION


@dataclass
class AfThinkFile:
    """What :func:`load_afthink` read: the records with one clip, and the ids of the others by reason."""

    records: list[Conversation]
    skipped: dict[str, list[str]] = field(default_factory=dict)

    def summary(self, path: Path) -> str | None:
        """One line naming what was skipped or cut (None when nothing was)."""
        if not self.skipped:
            return None
        parts = [f"{len(ids)} {reason} (first: {ids[0]})" for reason, ids in sorted(self.skipped.items())]
        return f"{path}: " + "; ".join(parts)


#: why a record is left out or cut, as :attr:`AfThinkFile.skipped` keys
TEXT_ONLY = "text-only record(s) skipped"
MULTI_AUDIO = "multi-audio record(s) skipped"
PAST_SECOND = "record(s) with a string 'sound' and more than two turns, read to their second turn as the loader does"


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise BadInput(f"{where}: expected a string, got {type(value).__name__}")
    return value


def _records(path: Path) -> list[dict[str, Any]]:
    """A JSON list of objects, else JSON lines (the loader's fallback); :class:`BadInput` names the line."""
    try:
        return json_objects(read_json(path), str(path))
    except BadInput as exc:
        if "not a readable JSON file" not in str(exc):
            raise
        error = exc
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        raise error from None
    out = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as line_error:
            raise BadInput(f"{path}: neither a JSON list nor JSON lines (line {n}: {line_error})") from None
    return json_objects(out, str(path))


def _turns(rec: dict[str, Any], where: str) -> list[tuple[str, str]]:
    turns = rec["conversations"]
    if not isinstance(turns, list) or not turns or len(turns) % 2:
        raise BadInput(f"{where}.conversations: expected human/gpt pairs")
    pairs = []
    for t in range(0, len(turns), 2):
        human, gpt = turns[t], turns[t + 1]
        if not isinstance(human, dict) or not isinstance(gpt, dict) or human.get("from") != "human" \
                or gpt.get("from") != "gpt":
            raise BadInput(f"{where}.conversations[{t}]: expected a 'human' turn followed by a 'gpt' turn")
        pairs.append((_text(human.get("value"), f"{where}.conversations[{t}].value"),
                      _text(gpt.get("value"), f"{where}.conversations[{t + 1}].value")))
    return pairs


def strip_placeholders(user: str) -> str:
    """The first human turn of a one-path record as the loader reads it: every placeholder of
    :data:`LOADER_STRIPS` removed wherever it is (with a newline on either side), trailing space dropped."""
    text = user.rstrip()
    for token in LOADER_STRIPS:
        text = text.replace(f"{token}\n", "").replace(f"\n{token}", "").replace(token, "")
    return text


def _duration(rec: dict[str, Any], where: str) -> float:
    value = rec.get("duration", DEFAULT_DURATION)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise BadInput(f"{where}.duration: expected a number of seconds >= 0, got {value!r}")
    return float(value)


def load_afthink(path: Path) -> AfThinkFile:
    """An AF-Think / AF3 training file as the official AF3 loader reads it (docs/interop.md).

    A record whose ``sound`` is one path gives its first two turns (the loader reads no further); one whose
    ``sound`` is a list gives all its turns when every ``<sound-k>`` names its first path (the tags removed).
    Records without audio and records with several clips are skipped and listed by reason.
    :class:`BadInput` names the file, the record and the key of a malformed record.
    """
    out = AfThinkFile([])
    for i, rec in enumerate(_records(path)):
        where = f"{path}: record {i}"
        if "conversations" not in rec:
            raise BadInput(f"{where}: missing key 'conversations'")
        rec_id = str(rec.get("id", i))
        pairs, sound = _turns(rec, where), rec.get("sound")
        if isinstance(sound, str):
            if len(pairs) > 1:
                out.skipped.setdefault(PAST_SECOND, []).append(rec_id)
            user, assistant = pairs[0]
            pairs = [(strip_placeholders(user), assistant.rstrip())]
        elif isinstance(sound, list) and sound:
            paths = [_text(p, f"{where}.sound[{k}]") for k, p in enumerate(sound)]
            named = {int(k) for user, assistant in pairs for k in SOUND_TAG.findall(user + assistant)}
            if not named:
                out.skipped.setdefault(TEXT_ONLY, []).append(rec_id)
                continue
            if bad := sorted(k for k in named if not 1 <= k <= len(paths)):
                raise BadInput(f"{where}: <sound-{bad[0]}> names no entry of 'sound' ({len(paths)} given)")
            if len({paths[k - 1] for k in named}) > 1:
                out.skipped.setdefault(MULTI_AUDIO, []).append(rec_id)
                continue
            sound = paths[min(named) - 1]
            pairs = [(_untag(user).rstrip(), _untag(assistant).rstrip()) for user, assistant in pairs]
        elif sound is None or sound == []:
            out.skipped.setdefault(TEXT_ONLY, []).append(rec_id)
            continue
        else:
            raise BadInput(f"{where}.sound: expected a path or a list of paths, got {type(sound).__name__}")
        out.records.append(Conversation(id=rec_id, sound=sound, turns=tuple(pairs), duration=_duration(rec, where)))
    return out


def _untag(text: str) -> str:
    for pattern in (r"<sound-\d+>\n", r"\n<sound-\d+>", r"<sound-\d+>"):
        text = re.sub(pattern, "", text)
    return text


def read_afthink(path: Path) -> list[Conversation]:
    """The records of an AF-Think / AF3 training file that hold one clip (see :func:`load_afthink`)."""
    return load_afthink(path).records


def afthink_record(conv: Conversation, sound: str | None = None) -> dict[str, Any]:
    """``conv`` as one record the official AF3 loader reads as written (``sound``: the path to write, default
    ``conv.sound``). One turn: ``sound`` a string and ``<sound>\\n`` opening the human turn; more turns: the
    list form, ``<sound-1>\\n`` opening the first human turn (the loader reads only two turns of the other)."""
    path = conv.sound if sound is None else sound
    listed = len(conv.turns) > 1
    tag = "<sound-1>" if listed else SOUND
    turns: list[dict[str, str]] = []
    for n, (user, assistant) in enumerate(conv.turns):
        turns += [{"from": "human", "value": f"{tag}\n{user}" if n == 0 else user},
                  {"from": "gpt", "value": assistant}]
    return {"id": conv.id, "sound": [path] if listed else path, "duration": conv.duration, "conversations": turns}


def multi_audio_record(rec_id: str, sounds: Sequence[str], turns: Sequence[tuple[str, str]],
                       duration: float) -> dict[str, Any]:
    """A multi-audio record in the official list form: ``sound`` the paths, each turn naming its clips with
    ``<sound-k>`` (k from 1) in its text; :class:`ValueError` when a tag names no path or a path goes unnamed."""
    named = {int(k) for user, assistant in turns for k in SOUND_TAG.findall(user + assistant)}
    if not named or min(named) < 1 or max(named) > len(sounds) or len(named) != len(sounds):
        raise ValueError(f"record {rec_id}: the <sound-k> tags must name each of the {len(sounds)} paths")
    conversations = [m for user, assistant in turns
                     for m in ({"from": "human", "value": user}, {"from": "gpt", "value": assistant})]
    return {"id": rec_id, "sound": list(sounds), "duration": duration, "conversations": conversations}


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
                                duration=0.0 if entry.get("duration") is None else _duration(entry, where)))
    return folder, out


def af2_manifest(convs: list[Conversation], split: str, split_path: str, task: str) -> dict[str, Any]:
    """An AF2 manifest of single-turn ``convs``."""
    data = {str(i): {"name": c.sound, "prompt": c.turns[0][0], "output": c.turns[0][1], "duration": c.duration}
            for i, c in enumerate(convs)}
    return {"split": split, "split_path": split_path, "flamingo_task": task, "total_num": len(data), "data": data}


_OPTIONS = re.compile(r"\(([A-Z])\) (.*?)\.(?= \([A-Z]\) |$)")
_LISTED = re.compile(r"^\(([A-Z])\) (.*)$")
_LETTER = re.compile(r"^\(([A-Z])\)\s*(.*)$", re.DOTALL)
CHOOSE = " Choose the correct option from the following options:"


def split_prompt(prompt: str) -> tuple[str, list[str] | None]:
    """The question and options of a prompt in either layout of :data:`afcot_core.api.LAYOUTS`
    (``Q\\n(A) x. (B) y. <CoT suffix>``, or ``Q Choose the correct option from the following
    options:\\n(A) x\\n(B) y.``, the final full stop optional); no options: None."""
    text = prompt.strip().removesuffix(COT_SUFFIX).rstrip()
    question, choose, listed = text.partition(CHOOSE + "\n")
    if choose:
        lines = listed.removesuffix(".").split("\n")
        found = [m.groups() for line in lines if (m := _LISTED.match(line))]
        if len(found) == len(lines) and "".join(letter for letter, _ in found) == OPTION_LETTERS[: len(found)]:
            return question.strip(), [option.strip() for _, option in found]
        return text, None
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
