"""The embedded corpus as an item source: deterministic under ``seed``, generated lazily per partition."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Literal

import msgspec
import numpy as np

from afcot_core.api import Item, Source, audio_ref_from_wave
from afcot_embedded.world import SAMPLE_RATE, aqa_question, classification_question, leaf_classes, synthesize


class EmbeddedSourceConfig(msgspec.Struct, forbid_unknown_fields=True):
    """Options of the embedded corpus."""

    #: how many items the corpus holds
    items: int = 200
    #: seed of the synthesised clips and questions (the same seed gives the same corpus)
    seed: int = 0
    #: share of classification items; the rest are AQA questions
    classification_fraction: float = 0.5
    #: the wrong options of classification items: "ontology" (close: siblings, then cousins, as the paper draws
    #: them) or "random" (uniform over the world's classes, the paper's control), by the registered sampler
    negatives: Literal["ontology", "random"] = "ontology"

    def __post_init__(self) -> None:
        if self.items < 0:
            raise ValueError("items must be >= 0")
        if not 0.0 <= self.classification_fraction <= 1.0:
            raise ValueError("classification_fraction must be between 0 and 1")


def make_item(index: int, seed: int, classification_fraction: float, negatives: str = "ontology") -> Item:
    """Item ``index`` of the corpus with ``seed``: the same arguments always give the same item."""
    rng = np.random.default_rng([seed, index])
    labels = sorted(leaf_classes())
    label = labels[int(rng.integers(len(labels)))]
    clip = synthesize(label, rng)
    classification = rng.random() < classification_fraction
    q = classification_question(clip, rng, negatives) if classification else aqa_question(clip, rng)
    return Item(
        id=f"embedded-{seed}-{index:06d}",
        audio=audio_ref_from_wave(clip.wave, SAMPLE_RATE),
        question=q.question,
        answer=q.answer,
        kind="classification" if classification else "aqa",
        choices=q.choices,
        source="embedded",
        labels=[label],
    )


class EmbeddedSource(Source):
    def __init__(self, config: EmbeddedSourceConfig) -> None:
        self.config = config

    def count(self) -> int:
        return self.config.items

    def partitions(self, size: int) -> Iterator[Iterable[Item]]:
        c = self.config
        for start in range(0, c.items, size):
            stop = min(c.items, start + size)
            yield (make_item(i, c.seed, c.classification_fraction, c.negatives) for i in range(start, stop))
