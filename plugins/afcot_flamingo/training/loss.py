"""The training loss: next-token cross-entropy over the assistant tokens, a chunk of logits at a time.

Only the labelled positions reach the output layer, ``chunk`` of them at once, each chunk recomputed in the
backward pass: the full-vocabulary fp32 logits of every token never exist together. The value equals the
model's own ``labels=`` loss (the mean over labelled next tokens).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from afcot_flamingo.training.student import IGNORE


def _summed(head: nn.Module, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(head(hidden).float(), targets, reduction="sum")


def cross_entropy(hidden: torch.Tensor, labels: torch.Tensor, head: nn.Module, chunk: int) -> torch.Tensor:
    """Mean cross-entropy of the tokens ``labels`` marks (``IGNORE`` elsewhere), predicted from the position
    before each; ``hidden (B, T, H)`` are the model's last hidden states, ``head`` its output layer; ``chunk``
    labelled positions per output-layer call (0: all at once)."""
    from torch.utils.checkpoint import checkpoint

    targets = labels[:, 1:]
    keep = targets != IGNORE
    states, wanted = hidden[:, :-1][keep], targets[keep]
    count = wanted.numel()
    if count == 0:
        return hidden.sum() * 0.0
    if chunk <= 0 or chunk >= count:
        return _summed(head, states, wanted) / count
    total = hidden.new_zeros((), dtype=torch.float32)
    for start in range(0, count, chunk):
        total = total + checkpoint(_summed, head, states[start:start + chunk], wanted[start:start + chunk],
                                   use_reentrant=False)
    return total / count


class Objective(nn.Module):
    """The student's model and its loss, as one module: ``forward(**batch)`` is the micro-batch's loss.

    Sharding and DDP wrap this module, so the output layer runs inside the root's forward."""

    def __init__(self, net: nn.Module, student: Any, chunk: int) -> None:
        super().__init__()
        self.net = net
        self.student, self.chunk = student, chunk

    def forward(self, **batch: torch.Tensor) -> torch.Tensor:
        labels = batch.pop("labels")
        return cross_entropy(self.student.hidden(batch), labels, self.student.head(), self.chunk)
