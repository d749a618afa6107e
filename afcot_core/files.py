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
