"""Sampling for the embedded teachers: a seeded choice among candidate phrasings, like a model's decoder.

Candidates come best first; their logits fall by one per rank. ``temperature`` 0 is greedy (always
the first), ``top_k`` and ``top_p`` cut the tail as in model sampling, and the request's seed drives
the draw, so a seed reproduces a reply and another seed may change it.
"""

from __future__ import annotations

import msgspec
import numpy as np


class Sampling(msgspec.Struct, forbid_unknown_fields=True):
    """How an embedded teacher samples among its phrasings (the same options as the model teachers)."""

    #: softmax temperature over the candidates (0: greedy, always the first candidate)
    temperature: float = 0.0
    #: nucleus sampling: keep the smallest set of candidates whose probability reaches top_p
    top_p: float = 1.0
    #: keep at most this many best candidates (0: all)
    top_k: int = 0
    #: seed used when a request carries none
    seed: int = 0

    def __post_init__(self) -> None:
        if self.temperature < 0 or not 0 < self.top_p <= 1 or self.top_k < 0:
            raise ValueError("temperature must be >= 0, top_p in (0, 1] and top_k >= 0")


def choose(candidates: list[str], sampling: Sampling, seed: int | None) -> str:
    """One of ``candidates`` (best first), drawn with ``sampling`` and ``seed``."""
    if len(candidates) == 1 or sampling.temperature == 0:
        return candidates[0]
    logits = -np.arange(len(candidates), dtype=float) / sampling.temperature
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    if sampling.top_k:
        probs[sampling.top_k:] = 0.0
    keep = int(np.searchsorted(np.cumsum(probs / probs.sum()), sampling.top_p) + 1)
    probs[keep:] = 0.0
    rng = np.random.default_rng(sampling.seed if seed is None else seed)
    return candidates[int(rng.choice(len(candidates), p=probs / probs.sum()))]
