"""Sampling for the embedded teachers: a seeded choice among candidate phrasings, like a model's decoder.

Candidates come best first; their logits fall by one per rank. ``temperature`` 0 is greedy (always
the first), ``top_k`` and ``top_p`` cut the tail as in model sampling, and the request's seed drives
the draw, so a seed reproduces a reply and another seed may change it.
"""

from __future__ import annotations

import numpy as np

from afcot_core.api import Sampling


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
