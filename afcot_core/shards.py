"""Shards as the unit of resume: written under a temporary name, fsynced, renamed, then marked done.

For partition ``i`` the store holds ``shard-i.tar`` (accepted records, written by the sink),
``rejects-i.jsonl`` (rejected and failed records with their reasons) and ``shard-i.done.json``
(the counts, the recipe fingerprint, and the size and SHA-256 of both files). A restart skips a
shard only when its marker says it is complete (no ``failed`` item) and both files still match
their size and digest; any other shard is redone from its partition.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec

from afcot_core.errors import BadInput
from afcot_core.protocols import Sink
from afcot_core.records import Record, canonical, item_without_audio_bytes


class ShardCounts(msgspec.Struct):
    accepted: int = 0
    rejected: int = 0
    failed: int = 0

    @property
    def items(self) -> int:
        return self.accepted + self.rejected + self.failed

    def add(self, other: ShardCounts) -> None:
        self.accepted += other.accepted
        self.rejected += other.rejected
        self.failed += other.failed


class FileDigest(msgspec.Struct, frozen=True):
    name: str
    size: int
    sha256: str


class DoneMarker(msgspec.Struct):
    shard: int
    counts: ShardCounts
    fingerprint: str
    files: list[FileDigest]

    @property
    def complete(self) -> bool:
        """False when some items failed: the shard is redone by the next run."""
        return self.counts.failed == 0


def file_digest(path: Path) -> FileDigest:
    sha = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            sha.update(chunk)
    return FileDigest(path.name, path.stat().st_size, sha.hexdigest())


def atomic_write(path: Path, write: Callable[[Path], object], tmp_suffix: str = ".tmp") -> None:
    """Call ``write(tmp)`` then fsync and rename ``tmp`` to ``path``; a crash leaves at most a ``.tmp``."""
    tmp = path.with_name(path.name + tmp_suffix)
    try:
        write(tmp)
        with tmp.open("rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def shard_name(index: int) -> str:
    return f"shard-{index:06d}"


def read_marker(path: Path) -> DoneMarker | None:
    """The marker at ``path``, or None when it is unreadable (then its shard is redone)."""
    try:
        return msgspec.json.decode(path.read_bytes(), type=DoneMarker)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError):
        return None


def _refuse_foreign(path: Path, marker: DoneMarker, fingerprint: str) -> None:
    """:class:`BadInput` when ``marker`` (at ``path``) was written by a recipe with another fingerprint."""
    if marker.fingerprint != fingerprint:
        raise BadInput(
            f"{path}: written by a different recipe (fingerprint {marker.fingerprint[:12]} vs "
            f"{fingerprint[:12]}); use a new --out directory to avoid mixing data"
        )


def check_fingerprint(root: Path, fingerprint: str) -> None:
    """Refuse (:class:`BadInput`) a folder whose shards were made by a recipe with another fingerprint."""
    for path in sorted(root.glob("shard-*.done.json")):
        marker = read_marker(path)
        if marker is not None:
            _refuse_foreign(path, marker, fingerprint)


class ShardStore:
    def __init__(self, root: Path, sink: Sink, fingerprint: str,
                 warn: Callable[[str], None] = lambda message: None) -> None:
        self.root = root
        self.sink = sink
        self.fingerprint = fingerprint
        self._warn = warn
        root.mkdir(parents=True, exist_ok=True)

    def _marker_path(self, index: int) -> Path:
        return self.root / f"{shard_name(index)}.done.json"

    def done(self, index: int) -> ShardCounts | None:
        """The counts of a finished, intact shard, or None when it must be (re)done."""
        path = self._marker_path(index)
        for stale in self.root.glob(f"*-{index:06d}*.tmp"):
            stale.unlink()
        if not path.exists():
            return None
        marker = read_marker(path)
        if marker is None:
            self._warn(f"{path}: unreadable done marker; shard {index} is redone")
            return None
        _refuse_foreign(path, marker, self.fingerprint)
        if not marker.complete:
            return None
        for expected in marker.files:
            file = self.root / expected.name
            if not file.exists() or file.stat().st_size != expected.size or file_digest(file) != expected:
                self._warn(f"{file}: missing or changed since shard {index} was marked done; the shard is redone")
                return None
        return marker.counts

    def commit(self, index: int, records: list[Record]) -> ShardCounts:
        """Write the shard and its rejects, then the marker; a shard with failed items is marked incomplete."""
        name = shard_name(index)
        self._marker_path(index).unlink(missing_ok=True)  # the old marker must never describe new files
        records = [canonical(r) for r in records]
        accepted = [r for r in records if r.verdict == "accepted"]
        others = [r for r in records if r.verdict != "accepted"]
        counts = ShardCounts(len(accepted), sum(r.verdict == "rejected" for r in others),
                             sum(r.verdict == "failed" for r in others))
        shard = self.root / f"{name}{self.sink.suffix}"
        rejects = self.root / f"rejects-{index:06d}.jsonl"
        atomic_write(shard, lambda tmp: self.sink.write(tmp, accepted))
        atomic_write(rejects, lambda tmp: tmp.write_bytes(b"".join(
            msgspec.json.encode(msgspec.structs.replace(r, item=item_without_audio_bytes(r.item))) + b"\n"
            for r in others)))
        marker = DoneMarker(index, counts, self.fingerprint, [file_digest(shard), file_digest(rejects)])
        atomic_write(self._marker_path(index), lambda tmp: tmp.write_bytes(msgspec.json.encode(marker)))
        return counts


def iter_samples(path: Path) -> Iterator[tuple[str, dict[str, bytes]]]:
    """The samples of a WebDataset tar, streamed: ``(key, {extension: bytes})`` in file order."""
    key: str | None = None
    parts: dict[str, bytes] = {}
    with tarfile.open(path, mode="r|") as tar:
        for member in tar:
            if not member.isfile():
                continue
            name, _, ext = member.name.partition(".")
            if key is not None and name != key:
                yield key, parts
                parts = {}
            key = name
            fh = tar.extractfile(member)
            parts[ext] = fh.read() if fh else b""
    if key is not None:
        yield key, parts


def read_markers(root: Path) -> list[DoneMarker]:
    """The readable done markers of a folder (complete or not), in shard order."""
    return [m for p in sorted(root.glob("shard-*.done.json")) if (m := read_marker(p)) is not None]
