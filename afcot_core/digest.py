"""One way to fingerprint configuration: the SHA-256 of its canonical JSON."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def digest(value: Any) -> str:
    """Hex SHA-256 of ``value`` as JSON with sorted keys (non-JSON values by ``str``)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()
