"""The student adapter interface: what a model must provide to be trained by :mod:`afcot_flamingo.training.loop`.

The data path yields :class:`Example` objects (audio + conversation + source name); a :class:`Student`
turns one into tensors (``encode``), pads a list of those into a batch (``collate``), and owns building,
saving and loading its model. The loop does everything else: data order, DDP or sharding, activation
checkpointing, the loss, accumulation, LoRA, checkpoints, metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

#: every example's audio is 16 kHz mono float32
SAMPLE_RATE = 16000
#: the per-example tensors the loop may truncate to ``max_length`` (1-D, same length)
SEQUENCE_KEYS = ("input_ids", "labels", "attention_mask")
#: the label value the loss ignores
IGNORE = -100


@dataclass(frozen=True)
class Example:
    """One training conversation about one clip.

    ``turns`` are (user text, assistant text) pairs; the audio belongs to the first user turn and the
    loss covers every assistant text. ``source`` names the data source it came from (for metrics).
    """

    wave: np.ndarray
    turns: tuple[tuple[str, str], ...]
    source: str
    key: str = ""

    @property
    def prompt(self) -> str:
        return self.turns[0][0]

    @property
    def target(self) -> str:
        return self.turns[-1][1]


class Student(Protocol):
    """A trainable model. ``encode`` runs in DataLoader workers; everything else in the main process.

    - ``build(config, workdir, device, dtype)``: load the model (``config.model``; a random tiny one may be
      written under ``workdir``) and its processor; return the ``torch.nn.Module`` to train. With device
      ``"meta"``: the same module with its parameters on the meta device (no weights read; buffers real), or
      the loaded model when the student cannot build one without its weights.
    - ``blocks()``: the model's transformer blocks (each is a sharding unit and an activation checkpoint).
    - ``hidden(batch)``: the last hidden states ``(B, T, H)`` of a batch without its labels; ``head()``: the
      output layer that turns them into logits.
    - ``encode(example)``: 1-D ``input_ids``, ``labels`` (``IGNORE`` outside the assistant turns) and
      ``attention_mask``, plus the model's audio tensors.
    - ``collate(encoded)``: one padded batch of several ``encode`` results.
    - ``freeze(audio, llm)``: stop gradients into the audio side and/or the language model.
    - ``lora_targets()``: peft ``target_modules`` for a LoRA adapter (a regex or names; the LLM's projections).
    - ``after_backward()``: adjust the gradients before they are clipped and applied (nothing for most models).
    - ``save(path)``: a ``save_pretrained``-style folder (model + processor) of the given module.
    - ``load(path)``: the module from such a folder.
    """

    def build(self, config: Any, workdir: Path, device: str, dtype: Any) -> Any: ...

    def encode(self, example: Example) -> dict[str, Any]: ...

    def collate(self, encoded: list[dict[str, Any]]) -> dict[str, Any]: ...

    def blocks(self) -> list[Any]: ...

    def hidden(self, batch: dict[str, Any]) -> Any: ...

    def head(self) -> Any: ...

    def after_backward(self) -> None: ...

    def freeze(self, audio: bool, llm: bool) -> None: ...

    def lora_targets(self) -> str | list[str]: ...

    def save(self, module: Any, path: Path) -> None: ...

    def load(self, path: Path) -> Any: ...
