"""Per-request seeded sampling inside one batched transformers ``generate``.

``generate`` draws all rows of a batch from one random stream, so a row's sample would depend on
its batch neighbours. :class:`SeededSampling` instead samples each row's next token itself, with the
row's own ``torch.Generator`` (seeded by the request), after temperature, top-k and top-p; it then
masks every other token, so the greedy decode that runs on top picks exactly that sample. A reply
thus depends on its request and seed only, never on how the micro-batcher grouped it.
"""

from __future__ import annotations

from typing import Any

import torch


def sampling_kwargs(temperature: float, top_p: float, top_k: int, seeds: list[int], device: Any) -> dict[str, Any]:
    """Keyword arguments for ``generate``: greedy, plus the seeded sampler when ``temperature`` > 0."""
    kwargs: dict[str, Any] = {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
    if temperature > 0:
        from transformers import LogitsProcessorList

        kwargs["logits_processor"] = LogitsProcessorList([SeededSampling(temperature, top_p, top_k, seeds, device)])
    return kwargs


class SeededSampling:
    """A logits processor that samples row ``i`` with a generator seeded by ``seeds[i]``."""

    def __init__(self, temperature: float, top_p: float, top_k: int, seeds: list[int], device: Any) -> None:
        self.temperature, self.top_p, self.top_k = temperature, top_p, top_k
        self.generators = [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        logits = scores.float() / self.temperature
        if self.top_k > 0:
            kth = torch.topk(logits, min(self.top_k, logits.shape[-1]), dim=-1).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if self.top_p < 1.0:
            ordered, order = torch.sort(logits, descending=True, dim=-1)
            probs = ordered.softmax(-1)
            drop = probs.cumsum(-1) - probs >= self.top_p  # tokens after the nucleus is complete
            logits = logits.scatter(-1, order, ordered.masked_fill(drop, float("-inf")))
        probs = logits.softmax(-1)
        picked = torch.stack([torch.multinomial(p, 1, generator=g) for p, g in zip(probs, self.generators,
                                                                                   strict=True)])
        out = torch.full_like(scores, float("-inf"))
        return out.scatter(-1, picked, 0.0)
