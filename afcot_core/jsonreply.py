"""Reading JSON replies from LLM teachers: strict first, then repaired, then typed.

A schema with ``json_parse = "release"`` (a class variable) is read as the released soundCoT pipelines read
every reply instead: the text after the last ``</think>``, one ``json.loads``, no repair (:func:`parse_release`).
"""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

import msgspec

T = TypeVar("T")

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)
_TOKEN = re.compile(r'\\.|[{}"]', re.DOTALL)  # an escape pair, a brace or a quote
_OBJECT_START = re.compile(r'\{\s*["}]')  # what a JSON object can start with
_MAX_TRIES = 1000  # spans decoded at most: a reply with more broken objects after its last good one is garbage


class ReplyError(ValueError):
    """A reply that holds no JSON object of the expected shape."""


def _object_spans(text: str, skip_strings: bool) -> list[tuple[int, int]]:
    """``(start, end)`` of every balanced ``{...}`` in ``text``, in one pass; with ``skip_strings``, braces
    inside JSON strings (between quotes, once a ``{`` is open) do not count."""
    spans: list[tuple[int, int]] = []
    opened: list[int] = []
    in_string = False
    for token in _TOKEN.finditer(text):
        char = token.group()
        if in_string:
            in_string = char != '"'
        elif char == "{":
            opened.append(token.start())
        elif char == "}" and opened:
            spans.append((opened.pop(), token.end()))
        elif char == '"' and skip_strings and opened:
            in_string = True
    return spans


def _last_object(text: str) -> Any:
    """The last complete JSON object in ``text``: of the balanced ``{...}`` spans, the one starting last that
    decodes. The work stays linear in the reply's length, however many braces it holds."""
    budget = 4 * len(text) + 65536  # characters decoded in all
    tried: set[tuple[int, int]] = set()
    for skip_strings in (True, False):  # the second pass copes with a stray quote in prose before the object
        for start, end in sorted(_object_spans(text, skip_strings), reverse=True):
            if (start, end) in tried or not _OBJECT_START.match(text, start):
                continue
            tried.add((start, end))
            budget -= end - start
            if budget < 0 or len(tried) > _MAX_TRIES:
                raise ReplyError("no JSON object in the reply (gave up on a reply with too many braces)")
            try:
                obj = json.loads(text[start:end])
            except (json.JSONDecodeError, RecursionError):  # RecursionError: absurdly deep nesting
                continue
            if isinstance(obj, dict):
                return obj
    raise ReplyError("no JSON object in the reply")


THINK_END = "</think>"


def parse_release(text: str, schema: type[T]) -> T:
    """``text`` as the release reads a Qwen3 reply: the part after the last ``</think>`` (newlines around it
    dropped), one strict ``json.loads``, which must give an object; no code fences, no search for an object."""
    body = text.rpartition(THINK_END)[2].strip("\n")
    try:
        obj = json.loads(body)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ReplyError(f"not JSON (strict json.loads, as released: {exc})") from None
    if not isinstance(obj, dict):
        raise ReplyError(f"the reply is JSON but not an object ({type(obj).__name__})")
    try:
        return msgspec.convert(obj, schema, strict=False)
    except msgspec.ValidationError as exc:
        raise ReplyError(f"reply JSON does not match {schema.__name__}: {exc}") from None


def parse_json_reply(text: str, schema: type[T]) -> T:
    """Parse ``text`` into ``schema``: as is, else inside a code fence, else the last JSON object
    (or, for a schema whose ``json_parse`` is ``"release"``, with :func:`parse_release`)."""
    if getattr(schema, "json_parse", None) == "release":
        return parse_release(text, schema)
    candidates = [text.strip()]
    candidates += [m.group(1).strip() for m in _FENCE.finditer(text)]
    obj: Any = None
    for candidate in candidates:
        try:
            obj = json.loads(candidate)
            break
        except (json.JSONDecodeError, RecursionError):  # RecursionError: absurdly deep nesting
            continue
    if not isinstance(obj, dict):
        obj = _last_object(text)
    try:
        return msgspec.convert(obj, schema, strict=False)
    except msgspec.ValidationError as exc:
        raise ReplyError(f"reply JSON does not match {schema.__name__}: {exc}") from None
