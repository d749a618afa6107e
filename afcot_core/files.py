"""Reading users' files with errors that name the file (exit 2), never a traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from afcot_core.errors import BadInput


def read_json(path: str | Path) -> Any:
    """A JSON document; :class:`BadInput` naming the file when it is missing, unreadable or invalid."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadInput(f"{path}: not a readable JSON file ({exc})") from None


def json_objects(doc: Any, where: str, what: str = "records") -> list[dict[str, Any]]:
    """``doc`` (decoded JSON) as a list of objects; :class:`BadInput` naming ``where`` and the entry otherwise."""
    if not isinstance(doc, list):
        raise BadInput(f"{where}: expected a JSON list of {what}, got {type(doc).__name__}")
    for i, rec in enumerate(doc):
        if not isinstance(rec, dict):
            raise BadInput(f"{where}: entry {i}: expected an object, got {type(rec).__name__}")
    return doc
