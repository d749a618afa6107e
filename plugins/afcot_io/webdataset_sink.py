"""WebDataset tar shards: ``{key}.flac`` audio, ``{key}.json`` the Record, ``{key}.txt`` the CoT target."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import msgspec

from afcot_core.api import BadInput, Record, Sink, flac_bytes, item_without_audio_bytes, render, sample_key


class WebDatasetConfig(msgspec.Struct, forbid_unknown_fields=True):
    """Options of the WebDataset sink."""

    #: store each item's audio as ``{key}.flac`` in the shard
    audio: bool = True
    #: keep every teacher call (prompt, reply, latency) in the record; off saves space at scale
    trace: bool = True


class WebDatasetSink(Sink):
    suffix = ".tar"

    def __init__(self, config: WebDatasetConfig) -> None:
        self.config = config

    def write(self, path: Path, records: list[Record]) -> None:
        seen: dict[str, str] = {}  # sample key → item id
        with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
            for record in records:
                assert record.cot is not None, "only accepted records are written to shards"
                key = sample_key(record.item.id)
                if key in seen:
                    raise BadInput(f"item ids '{seen[key]}' and '{record.item.id}' would both be stored as sample "
                                   f"'{key}'; the source must give ids that stay distinct")
                seen[key] = record.item.id
                slim = msgspec.structs.replace(record, item=item_without_audio_bytes(record.item),
                                               trace=record.trace if self.config.trace else [])
                parts = {"json": msgspec.json.encode(slim), "txt": render(record.cot).encode()}
                if self.config.audio:
                    parts = {"flac": flac_bytes(record.item.audio), **parts}
                for ext, data in parts.items():
                    info = tarfile.TarInfo(f"{key}.{ext}")
                    info.size, info.mtime, info.mode = len(data), 0, 0o644
                    tar.addfile(info, io.BytesIO(data))
