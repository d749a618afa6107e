"""Audio Flamingo 3 (transformers ``AudioFlamingo3ForConditionalGeneration``) as a student of the shared loop.

The loss covers only the assistant's tokens: every assistant turn's text and its ``<|im_end|>``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from afcot_core.api import AfcotError, expand, resolve
from afcot_flamingo.config import TINY, Af3TrainConfig
from afcot_flamingo.training.student import IGNORE, Example

#: the language model's projections a LoRA adapter attaches to (AF3 stage 3.5 adapts the LLM)
LORA_TARGETS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"


def conversation(turns: Any, target: str | None = None) -> list[dict[str, Any]]:
    """Chat messages: audio + text in the first user turn. ``turns`` is a prompt (with an optional
    ``target``) or a sequence of (user, assistant) pairs."""
    pairs = [(turns, target)] if isinstance(turns, str) else list(turns)
    messages: list[dict[str, Any]] = []
    for n, (user, assistant) in enumerate(pairs):
        content = [{"type": "audio"}] if n == 0 else []
        messages.append({"role": "user", "content": [*content, {"type": "text", "text": user}]})
        if assistant is not None:
            messages.append({"role": "assistant", "content": [{"type": "text", "text": assistant}]})
    return messages


def assistant_labels(input_ids: Any, header: list[int], end: int) -> Any:
    """Labels for one 1-D sequence: the tokens after each assistant header up to and including its end token."""
    ids = input_ids.tolist()
    labels = input_ids.new_full(input_ids.shape, IGNORE)
    n, i, found = len(header), 0, False
    while i <= len(ids) - n:
        if ids[i : i + n] != header:
            i += 1
            continue
        start = i + n
        stop = ids.index(end, start) if end in ids[start:] else len(ids) - 1
        labels[start : stop + 1] = input_ids[start : stop + 1]
        found, i = True, stop + 1
    if not found:
        raise AfcotError("the chat template produced no assistant turn")
    return labels


class Af3Student:
    """The AF3 adapter: chat template + processor encode, right-padded batches, ``save_pretrained`` folders."""

    def __init__(self, config: Af3TrainConfig) -> None:
        self.config = config
        self.processor: Any = None
        self.model: Any = None

    def build(self, config: Af3TrainConfig, workdir: Path, device: str, dtype: Any) -> Any:
        from transformers import AudioFlamingo3ForConditionalGeneration, AutoProcessor

        path = resolve(config.model)
        if config.model == TINY:
            from afcot_flamingo.tiny import builtin_student

            path = builtin_student(config, workdir)
        if path is None:
            raise AfcotError(f"weights for '{expand(config.model)}' are not on this machine")
        self.processor = AutoProcessor.from_pretrained(path)
        if device == "meta":
            from transformers import AutoConfig

            from afcot_flamingo.training.parallel import empty_weights

            with empty_weights():
                self.model = AudioFlamingo3ForConditionalGeneration._from_config(AutoConfig.from_pretrained(path),
                                                                                 dtype=dtype)
            self.model.tie_weights()  # tied inside the meta context, a tied output layer got its own parameter
        else:
            self.model = AudioFlamingo3ForConditionalGeneration.from_pretrained(path, dtype=dtype)
        tok = self.processor.tokenizer
        self._header = tok.encode("<|im_start|>assistant\n", add_special_tokens=False)
        self._end = tok.convert_tokens_to_ids("<|im_end|>")
        return self.model

    def encode(self, example: Example) -> dict[str, Any]:
        text = self.processor.apply_chat_template(conversation(example.turns), tokenize=False)
        enc = self.processor(text=[text], audio=[example.wave], return_tensors="pt")
        ids = enc["input_ids"][0]
        return {"input_ids": ids, "attention_mask": enc["attention_mask"][0],
                "labels": assistant_labels(ids, self._header, self._end),
                "input_features": enc["input_features"], "input_features_mask": enc["input_features_mask"]}

    def collate(self, encoded: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        width = max(int(e["input_ids"].shape[0]) for e in encoded)
        pad = {"input_ids": self.processor.tokenizer.pad_token_id, "attention_mask": 0, "labels": IGNORE}

        def padded(key: str) -> Any:
            return torch.stack([torch.nn.functional.pad(e[key], (0, width - e[key].shape[0]), value=pad[key])
                                for e in encoded])

        return {**{k: padded(k) for k in pad},
                "input_features": torch.cat([e["input_features"] for e in encoded]),
                "input_features_mask": torch.cat([e["input_features_mask"] for e in encoded])}

    def blocks(self) -> list[Any]:
        inner = self.model.model
        return [*inner.audio_tower.layers, *inner.language_model.layers]

    def hidden(self, batch: dict[str, Any]) -> Any:
        return self.model.model(**batch, use_cache=False).last_hidden_state

    def head(self) -> Any:
        return self.model.lm_head

    def after_backward(self) -> None:
        pass

    def freeze(self, audio: bool, llm: bool) -> None:
        inner = self.model.model
        inner.audio_tower.embed_positions.requires_grad_(False)  # fixed sinusoids, as the encoder made them
        if audio:
            inner.audio_tower.requires_grad_(False)
            inner.multi_modal_projector.requires_grad_(False)
        if llm:
            inner.language_model.requires_grad_(False)
            self.model.lm_head.requires_grad_(False)

    def lora_targets(self) -> str | list[str]:
        return LORA_TARGETS

    def save(self, module: Any, path: Path) -> None:
        module.save_pretrained(path)
        self.processor.save_pretrained(path)

    def load(self, path: Path) -> Any:
        from transformers import AudioFlamingo3ForConditionalGeneration

        return AudioFlamingo3ForConditionalGeneration.from_pretrained(path)


class Af3Trainer:
    """The ``af3`` trainer: the shared loop with the AF3 student."""

    def __init__(self, config: Af3TrainConfig) -> None:
        self.config = config

    def train(self, data_dir: Path, out_dir: Path, log: Any, progress: Any = None) -> dict[str, Any]:
        from afcot_flamingo.training.loop import train

        return train(Af3Student(self.config), self.config, data_dir, out_dir, log, progress)
