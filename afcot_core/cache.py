"""A replay cache of teacher replies (SQLite), so re-runs and resumes never pay for a call twice.

The key covers the teacher (its registered name and resolved config), the prompt, the answer prefix
and the audio (content hash, or path + size + mtime for files).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

from afcot_core.digest import digest
from afcot_core.records import AudioRef


def audio_identity(audio: AudioRef | None) -> str:
    if audio is None:
        return ""
    if audio.sha256:
        return audio.sha256
    try:
        stat = os.stat(audio.path or "")
        return f"{audio.path}:{stat.st_size}:{stat.st_mtime_ns}"
    except OSError:
        return f"{audio.path}:missing"


def scope_of(name: str, config: Any) -> str:
    """The cache scope of a teacher: its registered name and resolved config."""
    return digest([name, config])


class ReplayCache:
    """``key → reply`` in one SQLite file; used from the event loop's thread only."""

    def __init__(self, path: Path, commit_every: int = 64) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS replies (key TEXT PRIMARY KEY, reply TEXT NOT NULL)")
        self._pending = 0
        self._commit_every = commit_every

    @staticmethod
    def key(scope: str, prompt: str, prefix: str, audio: AudioRef | None) -> str:
        return digest([scope, prompt, prefix, audio_identity(audio)])

    def get(self, key: str) -> str | None:
        row = self._db.execute("SELECT reply FROM replies WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def put(self, key: str, reply: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO replies VALUES (?, ?)", (key, reply))
        self._pending += 1
        if self._pending >= self._commit_every:
            self.flush()

    def flush(self) -> None:
        self._db.commit()
        self._pending = 0

    def close(self) -> None:
        self.flush()
        self._db.close()
