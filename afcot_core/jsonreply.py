"""Reading JSON replies from LLM teachers: strict first, then repaired, then typed."""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

import msgspec

T = TypeVar("T")

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)


class ReplyError(ValueError):
    """A reply that holds no JSON object of the expected shape."""


def _last_object(text: str) -> Any:
    """The last complete JSON object in ``text`` (scanning back from each ``{``)."""
    decoder = json.JSONDecoder()
    for start in range(len(text) - 1, -1, -1):
        if text[start] != "{":
            continue
        try:
            obj, _ = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            return obj
    raise ReplyError("no JSON object in the reply")


def parse_json_reply(text: str, schema: type[T]) -> T:
    """Parse ``text`` into ``schema``: as is, else inside a code fence, else the last JSON object."""
    candidates = [text.strip()]
    candidates += [m.group(1).strip() for m in _FENCE.finditer(text)]
    obj: Any = None
    for candidate in candidates:
        try:
            obj = json.loads(candidate)
            break
        except json.JSONDecodeError:
            continue
    if not isinstance(obj, dict):
        obj = _last_object(text)
    try:
        return msgspec.convert(obj, schema, strict=False)
    except msgspec.ValidationError as exc:
        raise ReplyError(f"reply JSON does not match {schema.__name__}: {exc}") from None
