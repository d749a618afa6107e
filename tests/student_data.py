"""Small training data for the student tests: tone clips whose pitch answers the question, written as shards."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from afcot_core.audio import audio_ref_from_wave
from afcot_core.records import CoT, Item, Record

RATE = 16000


def tone_item(i: int) -> Item:
    """Item ``i``: a 1 s tone, high (1760 Hz) for even ``i``, low (220 Hz) for odd."""
    high = i % 2 == 0
    t = np.arange(RATE) / RATE
    wave = (0.3 * np.sin(2 * np.pi * (1760 if high else 220) * t)).astype(np.float32)
    choices = ["high", "low"] if i % 4 < 2 else ["low", "high"]
    return Item(id=f"tone-{i:03d}", audio=audio_ref_from_wave(wave, RATE), question="Is the tone high or low?",
                answer="high" if high else "low", kind="aqa", choices=choices)


def tone_record(i: int) -> Record:
    item = tone_item(i)
    cot = CoT(summary="I listen to the pitch.", caption=f"A steady {item.answer} tone.",
              reasoning=f"The pitch is {item.answer}.", conclusion=item.answer)
    return Record(item=item, strategy="test", verdict="accepted", cot=cot)


def write_shards(folder: Path, n: int, per_shard: int, start: int = 0) -> Path:
    """``n`` tone records in shards of ``per_shard`` under ``folder`` (``shard-00000i.tar``)."""
    from afcot_core.plugins import default

    registration = default().registry("sink").get("webdataset", where="test")
    sink = registration.build(registration.config())
    folder.mkdir(parents=True, exist_ok=True)
    for s, first in enumerate(range(start, start + n, per_shard)):
        records = [tone_record(i) for i in range(first, min(start + n, first + per_shard))]
        sink.write(folder / f"shard-{s:06d}.tar", records)
    return folder
