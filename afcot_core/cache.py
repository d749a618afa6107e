"""A replay cache of teacher replies (SQLite), so re-runs and resumes never pay for a call twice.

The key covers the teacher (its registered name and resolved config), the prompt, the attempt and
the request's seed, the answer prefix and the audio (content hash, or path + size + mtime for files).
Only replies the run accepted are stored (see :meth:`afcot_core.teacher.Teacher.remember`).

Every SQLite call runs on one worker thread of its own, never on the event loop. The file is
checked when it is opened: a file that is not a readable database is set aside as
``<name>.corrupt`` with a warning naming it, and a fresh cache takes its place. A read that fails
later is a miss; a write that fails turns the cache off for the rest of the run (with a warning).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from afcot_core.digest import digest
from afcot_core.records import AudioRef

T = TypeVar("T")

_WAL = "PRAGMA journal_mode=WAL"
_CHECK = "PRAGMA quick_check"
_SCHEMA = "CREATE TABLE IF NOT EXISTS replies (key TEXT PRIMARY KEY, reply TEXT NOT NULL)"
_GET = "SELECT reply FROM replies WHERE key = ?"
_PUT = "INSERT OR REPLACE INTO replies VALUES (?, ?)"
#: the files SQLite keeps beside a database in WAL mode
_SIDECARS = ("-wal", "-shm")


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
    """``key → reply`` in one SQLite file, served by a single worker thread."""

    def __init__(self, path: Path, warn: Callable[[str], None] = lambda message: None) -> None:
        self.path = path
        self._warn = warn
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="afcot-cache")
        self._db: sqlite3.Connection | None = self._thread.submit(self._open).result()

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return self._connect()
        except sqlite3.DatabaseError as exc:
            aside = self.path.with_name(self.path.name + ".corrupt")
            self._warn(f"{self.path}: the replay cache is unreadable ({exc}); moved to {aside.name}, starting a "
                       "new one")
            os.replace(self.path, aside)
            for suffix in _SIDECARS:
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            return self._connect()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path)
        try:
            db.execute(_WAL)
            db.execute(_SCHEMA)
            (verdict,) = db.execute(_CHECK).fetchone()
            if verdict != "ok":
                raise sqlite3.DatabaseError(f"quick_check: {verdict}")
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    @staticmethod
    def key(scope: str, prompt: str, prefix: str, audio: AudioRef | None) -> str:
        return digest([scope, prompt, prefix, audio_identity(audio)])

    async def _call(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn)

    def _get(self, key: str) -> str | None:
        if self._db is None:
            return None
        try:
            row = self._db.execute(_GET, (key,)).fetchone()
        except sqlite3.DatabaseError as exc:
            self._warn(f"{self.path}: read failed ({exc}); asking the teacher instead")
            return None
        return row[0] if row else None

    def _put_many(self, entries: list[tuple[str, str]]) -> None:
        if self._db is None:
            return
        try:
            self._db.executemany(_PUT, entries)
        except sqlite3.DatabaseError as exc:
            self._warn(f"{self.path}: write failed ({exc}); the replay cache is off for the rest of this run")
            self._db = None

    def _flush(self) -> None:
        if self._db is None:
            return
        try:
            self._db.commit()
        except sqlite3.DatabaseError as exc:
            self._warn(f"{self.path}: commit failed ({exc}); the replay cache is off for the rest of this run")
            self._db = None

    async def get(self, key: str) -> str | None:
        return await self._call(lambda: self._get(key))

    async def put_many(self, entries: list[tuple[str, str]]) -> None:
        await self._call(lambda: self._put_many(entries))

    async def flush(self) -> None:
        """Commit what was stored (before a shard is committed)."""
        await self._call(self._flush)

    def close(self) -> None:
        def close() -> None:
            self._flush()
            if self._db is not None:
                self._db.close()

        self._thread.submit(close).result()
        self._thread.shutdown()
