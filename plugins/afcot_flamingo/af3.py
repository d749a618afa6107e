"""Finetuning Audio Flamingo 3 (transformers ``AudioFlamingo3ForConditionalGeneration``) on CoT shards.

Accelerate runs the loop: one process on CPU or a GPU, DDP under ``accelerate launch``/``torchrun``
(shards split by rank), bf16 on GPUs, gradient accumulation up to ``global_batch``. The loss covers
only the assistant's tokens (the CoT target and its end-of-turn).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from afcot_core.audio import resample
from afcot_core.errors import AfcotError, BadInput
from afcot_core.shards import iter_samples, read_markers
from afcot_core.template import student_prompt
from afcot_core.weights import expand, resolve
from afcot_flamingo.config import TINY, Af3TrainConfig

SAMPLE_RATE = 16000
Sample = tuple[np.ndarray, str, str]


def read_samples(shards: list[Path], cot: bool) -> Iterator[Sample]:
    """(16 kHz mono wave, student prompt, CoT target) for every sample of ``shards``, streamed."""
    for shard in shards:
        for key, parts in iter_samples(shard):
            try:
                item = json.loads(parts["json"])["item"]
                wave, sr = sf.read(io.BytesIO(parts["flac"]), dtype="float32", always_2d=True)
                target = parts["txt"].decode("utf-8")
            except (KeyError, ValueError, RuntimeError) as exc:
                raise BadInput(f"{shard}: sample '{key}' is unreadable ({exc})") from None
            wave = resample(wave.mean(axis=1), sr, SAMPLE_RATE)
            yield wave, student_prompt(item["question"], item.get("choices"), cot), target


def conversation(prompt: str, target: str | None) -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = [{"role": "user", "content": [{"type": "audio"}, {"type": "text", "text": prompt}]}]
    if target is not None:
        turns.append({"role": "assistant", "content": [{"type": "text", "text": target}]})
    return turns


def mask_to_assistant(input_ids: Any, header: list[int], pad_id: int) -> Any:
    """Labels: a copy of ``input_ids`` with everything up to the last assistant header (and pads) at -100."""
    labels = input_ids.clone()
    n = len(header)
    for row in range(labels.shape[0]):
        ids = input_ids[row].tolist()
        starts = [i for i in range(len(ids) - n + 1) if ids[i : i + n] == header]
        if not starts:
            raise AfcotError("the chat template produced no assistant turn")
        labels[row, : starts[-1] + n] = -100
    labels[input_ids == pad_id] = -100
    return labels


def collate(processor: Any, samples: list[Sample], max_length: int) -> dict[str, Any] | None:
    """A training batch, or None when every sample is longer than ``max_length`` tokens."""
    texts = [processor.apply_chat_template(conversation(p, t), tokenize=False) for _, p, t in samples]
    batch = processor(text=texts, audio=[w for w, _, _ in samples], return_tensors="pt")
    keep = [i for i, n in enumerate(batch["attention_mask"].sum(-1).tolist()) if n <= max_length]
    if not keep:
        return None
    if len(keep) < len(samples):
        return collate(processor, [samples[i] for i in keep], max_length)
    tok = processor.tokenizer
    header = tok.encode("<|im_start|>assistant\n", add_special_tokens=False)
    batch = dict(batch)
    batch.pop("num_audio_tokens", None)
    batch["labels"] = mask_to_assistant(batch["input_ids"], header, tok.pad_token_id)
    return batch


def _batches(samples: Iterator[Sample], size: int) -> Iterator[list[Sample]]:
    batch: list[Sample] = []
    for sample in samples:
        batch.append(sample)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class Af3Trainer:
    def __init__(self, config: Af3TrainConfig) -> None:
        self.config = config

    def train(self, data_dir: Path, out_dir: Path, log: Any) -> dict[str, Any]:
        import torch
        from accelerate import Accelerator
        from accelerate.utils import set_seed
        from transformers import AudioFlamingo3ForConditionalGeneration, AutoProcessor, get_scheduler

        c = self.config
        data = Path(expand(c.data)) if c.data else data_dir
        on_cpu = c.device == "cpu" or not torch.cuda.is_available()
        accelerator = Accelerator(cpu=on_cpu, mixed_precision="no" if on_cpu or c.dtype == "float32" else "bf16")
        world, rank = accelerator.num_processes, accelerator.process_index
        accum, rest = divmod(c.global_batch, c.per_device_batch * world)
        if accum < 1 or rest:
            raise BadInput(f"[train] global_batch {c.global_batch} is not a multiple of per_device_batch "
                           f"{c.per_device_batch} x {world} processes")
        accelerator.gradient_accumulation_steps = accum
        path: Path | None = resolve(c.model)
        if c.model == TINY:
            from afcot_flamingo.tiny import save_af3

            path = out_dir / "init"
            with accelerator.main_process_first():  # one process writes it, the others read it
                if accelerator.is_main_process:
                    save_af3(path)
        if path is None:
            raise AfcotError(f"weights for '{c.model}' are not on this machine")
        set_seed(c.seed)
        shards = sorted(data.glob("shard-*.tar"))
        if not shards:
            raise BadInput(f"[train] no shards in {data} (run the generate stage first, or set train.data)")
        mine = shards[rank::world]
        counts = {m.shard: m.counts.accepted for m in read_markers(data)}
        samples = sum(counts.get(int(s.stem.split("-")[1]), 0) for s in mine)
        steps = c.max_steps or max(1, c.epochs * samples // (c.per_device_batch * accum))

        processor = AutoProcessor.from_pretrained(path)
        model = AudioFlamingo3ForConditionalGeneration.from_pretrained(path)
        if c.freeze_audio_tower:
            model.audio_tower.requires_grad_(False)
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=c.learning_rate, weight_decay=c.weight_decay)
        scheduler = get_scheduler(c.schedule, optimizer, num_warmup_steps=int(c.warmup_ratio * steps),
                                  num_training_steps=steps)
        model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
        model.train()
        step, losses = 0, []
        while step < steps:
            batches = 0
            for raw in _batches(read_samples(mine, c.cot), c.per_device_batch):
                batch = collate(processor, raw, c.max_length)
                if batch is None:
                    continue
                batches += 1
                with accelerator.accumulate(model):
                    loss = model(**{k: v.to(accelerator.device) for k, v in batch.items()}).loss
                    accelerator.backward(loss)
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad()
                if accelerator.sync_gradients:
                    step += 1
                    losses.append(float(loss.detach()))
                    log.info("train step", step=step, of=steps, loss=round(losses[-1], 4),
                             lr=scheduler.get_last_lr()[0])
                    if step >= steps:
                        break
            if batches == 0:
                raise BadInput(f"[train] no usable training samples in {data} (none accepted, or all longer than "
                               f"max_length {c.max_length})")
        final = out_dir / "final"
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            accelerator.unwrap_model(model).save_pretrained(final)
            processor.save_pretrained(final)
        return {"steps": step, "first_loss": losses[0] if losses else None,
                "last_loss": losses[-1] if losses else None, "checkpoint": str(final)}
