"""Shards as the unit of resume: written under a temporary name, fsynced, renamed, then marked done.

For partition ``i`` the store holds ``shard-i.tar`` (accepted records, written by the sink),
``rejects-i.jsonl`` (rejected and failed records with their reasons) and ``shard-i.done.json``
(the counts and the recipe fingerprint). A restart skips shards with a marker and redoes the rest.
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec

from afcot_core.errors import BadInput
from afcot_core.protocols import Sink
from afcot_core.records import Record, item_without_audio_bytes


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


class DoneMarker(msgspec.Struct):
    shard: int
    counts: ShardCounts
    fingerprint: str
    files: list[str]


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp)`` then fsync and rename ``tmp`` to ``path``; a crash leaves only a ``.tmp``."""
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    with tmp.open("rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def shard_name(index: int) -> str:
    return f"shard-{index:06d}"


class ShardStore:
    def __init__(self, root: Path, sink: Sink, fingerprint: str) -> None:
        self.root = root
        self.sink = sink
        self.fingerprint = fingerprint
        root.mkdir(parents=True, exist_ok=True)

    def done(self, index: int) -> ShardCounts | None:
        """The counts of a finished shard, or None when it must be (re)done."""
        marker = self.root / f"{shard_name(index)}.done.json"
        if not marker.exists():
            for stale in self.root.glob(f"*{index:06d}*.tmp"):
                stale.unlink()
            return None
        done = msgspec.json.decode(marker.read_bytes(), type=DoneMarker)
        if done.fingerprint != self.fingerprint:
            raise BadInput(
                f"{marker}: written by a different recipe (fingerprint {done.fingerprint[:12]} vs "
                f"{self.fingerprint[:12]}); use a new --out directory to avoid mixing data"
            )
        return done.counts

    def commit(self, index: int, records: list[Record]) -> ShardCounts:
        name = shard_name(index)
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
        marker = DoneMarker(index, counts, self.fingerprint, [shard.name, rejects.name])
        atomic_write(self.root / f"{name}.done.json", lambda tmp: tmp.write_bytes(msgspec.json.encode(marker)))
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
    return [msgspec.json.decode(p.read_bytes(), type=DoneMarker) for p in sorted(root.glob("shard-*.done.json"))]
