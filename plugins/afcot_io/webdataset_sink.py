"""WebDataset tar shards: ``{key}.flac`` audio, ``{key}.json`` the Record, ``{key}.txt`` the CoT target."""

from __future__ import annotations

import io
import re
import tarfile
from pathlib import Path

import msgspec

from afcot_core.audio import flac_bytes
from afcot_core.protocols import Sink
from afcot_core.records import Record, item_without_audio_bytes
from afcot_core.template import render


class WebDatasetConfig(msgspec.Struct, forbid_unknown_fields=True):
    """Options of the WebDataset sink."""

    audio: bool = True
    #: keep every teacher call (prompt, reply, latency) in the record; off saves space at scale
    trace: bool = True


def sample_key(item_id: str) -> str:
    """A WebDataset key for an item id: no dots (they separate the extension) and no slashes."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", item_id)


class WebDatasetSink(Sink):
    suffix = ".tar"

    def __init__(self, config: WebDatasetConfig) -> None:
        self.config = config

    def write(self, path: Path, records: list[Record]) -> None:
        seen: set[str] = set()
        with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
            for record in records:
                assert record.cot is not None, "only accepted records are written to shards"
                key = sample_key(record.item.id)
                if key in seen:
                    raise ValueError(f"duplicate sample key '{key}' (item id '{record.item.id}')")
                seen.add(key)
                slim = msgspec.structs.replace(record, item=item_without_audio_bytes(record.item),
                                               trace=record.trace if self.config.trace else [])
                parts = {"json": msgspec.json.encode(slim), "txt": render(record.cot).encode()}
                if self.config.audio:
                    parts = {"flac": flac_bytes(record.item.audio), **parts}
                for ext, data in parts.items():
                    info = tarfile.TarInfo(f"{key}.{ext}")
                    info.size, info.mtime, info.mode = len(data), 0, 0o644
                    tar.addfile(info, io.BytesIO(data))
