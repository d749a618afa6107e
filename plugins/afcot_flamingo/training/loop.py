"""The model-agnostic training loop: any :class:`Student` on the blended data path.

One process on CPU or a GPU, or several under ``torchrun`` / ``accelerate launch``, as ``ddp`` or ``fsdp``
(:mod:`.parallel`); bf16 on GPUs; optional activation checkpointing per block; the chunked loss of
:mod:`.loss`; gradient accumulation up to ``global_batch``; every rank takes the same number of optimiser
steps (computed from the global sample count and checked across ranks). Into ``out_dir``:
``checkpoints/step-N`` (:mod:`.state`: model, optimiser, scheduler, RNG; the data position is the step),
``metrics.jsonl``, ``loss_curve.png`` and ``final/`` (a ``save_pretrained`` folder with ``checkpoint.json``:
its digest and the run's figures).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

import msgspec
from torch.utils.data import IterableDataset, get_worker_info

from afcot_core.api import AfcotError, BadInput, expand
from afcot_flamingo.config import LoraConfig, TrainSettings
from afcot_flamingo.training import state
from afcot_flamingo.training.data import StreamPlan, open_sources, rank_share, share, worker_batches
from afcot_flamingo.training.loss import Objective
from afcot_flamingo.training.parallel import (
    Group,
    accumulating,
    bare,
    checkpoint_blocks,
    clip_gradients,
    full_state,
    join,
    spread,
)
from afcot_flamingo.training.student import Student

#: written into ``final/`` last: its presence means the training finished
CHECKPOINT_FILE = "checkpoint.json"


class BatchStream(IterableDataset):
    """One rank's batches; each DataLoader worker yields its own share (see :mod:`.data`)."""

    def __init__(self, plan: StreamPlan) -> None:
        self.plan = plan

    def __iter__(self) -> Any:
        info = get_worker_info()
        return worker_batches(self.plan, info.id if info else 0)


def one_thread(_: int) -> None:
    import torch

    torch.set_num_threads(1)


def folder_digest(folder: Path) -> str:
    """sha256 over the names and bytes of the weight files of a ``save_pretrained`` folder."""
    h = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix in (".safetensors", ".bin", ".json") and path.name != CHECKPOINT_FILE:
            h.update(path.name.encode())
            with path.open("rb") as fh:
                while chunk := fh.read(1 << 20):
                    h.update(chunk)
    return h.hexdigest()


def apply_lora(module: Any, lora: LoraConfig, targets: str | list[str]) -> Any:
    try:
        from peft import LoraConfig as PeftLora
        from peft import get_peft_model
    except ImportError:
        raise BadInput("[train] train.lora needs peft: pip install 'afcot[lora]'") from None
    config = PeftLora(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                      target_modules=lora.targets or targets)
    return get_peft_model(module, config)


#: settings that do not change what is trained (they may differ between a run and its resumption)
_NOT_DECISIVE = ("resume", "plot", "checkpoint_every", "keep_checkpoints", "cpu_threads", "activation_checkpointing",
                 "cpu_offload", "loss_chunk", "gpus", "gpu_memory_gb", "plan_audio_s")


def settings_key(c: TrainSettings, world: int) -> str:
    """The digest of what decides the training (settings and process count): a resumed or kept training must match."""
    from afcot_core.api import digest

    table = {k: v for k, v in msgspec.to_builtins(c).items() if k not in _NOT_DECISIVE}
    return digest({**table, "processes": world})


def _same_settings(doc: dict[str, Any], key: str, where: Path) -> None:
    if doc.get("settings", key) != key:
        raise BadInput(f"{where}: made by a training with other settings (or another number of processes); "
                       "use another --out, or delete its train/ folder to train again")


def _agree(group: Group, steps: int, mine: int) -> None:
    """Every rank plans ``steps`` and has samples; otherwise every rank fails with the same message."""
    import torch

    table = group.gather(torch.tensor([steps, mine]))
    if len({row[0] for row in table}) > 1:
        raise AfcotError(f"[train] ranks disagree on the step count: {[int(row[0]) for row in table]}")
    empty = [r for r, row in enumerate(table) if row[1] == 0]
    if empty:
        raise BadInput(f"[train] rank(s) {empty} of {len(table)} have no training sample; use fewer processes "
                       "or more data")


def _resumable(out_dir: Path, key: str, world: int) -> Path | None:
    """The newest checkpoint to resume from; :class:`BadInput` when it was made under other settings."""
    found = state.latest(out_dir)
    if found is None:
        return None
    doc = state.progress(found)
    made = doc.get("processes", world)
    if made != world:
        raise BadInput(f"{found}: made by a training with {made} processes, this one has {world}; resume it with "
                       f"{made} processes, or use another --out (or delete its train/ folder) to train again")
    _same_settings(doc, key, found)
    return found


def starting(c: TrainSettings, init: Path | None) -> TrainSettings:
    """The settings a student is built from: ``c``, its model the folder ``init`` when set."""
    return c if init is None else msgspec.structs.replace(c, model=str(init))  # type: ignore[call-arg]


def _build(student: Student, c: TrainSettings, out_dir: Path, group: Group, init: Path | None) -> Any:
    """The student's model: read by rank 0 alone, a meta-device skeleton on the other ranks; frozen, LoRA."""
    import torch

    if not group.main:
        group.barrier()  # rank 0 first: it may write the tiny random model the others read
    module = student.build(starting(c, init), out_dir, "cpu" if group.main else "meta", torch.float32)
    if group.main:
        group.barrier()
    student.freeze(c.freeze_audio_tower, c.freeze_llm)
    if c.lora:
        module = apply_lora(module, c.lora, student.lora_targets())
    return module


def train(student: Student, c: TrainSettings, data_dir: Path, out_dir: Path, log: Any,
          progress: Any = None) -> dict[str, Any]:
    """Train ``student`` with settings ``c`` on the configured sources; the summary of the run."""

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    group = join(c.device, c.strategy == "fsdp")
    try:
        init = None
        if c.perception_steps:
            first = msgspec.structs.replace(c, cot=False, plain_target="caption", max_steps=c.perception_steps,
                                            perception_steps=0, sources=[s for s in c.sources if s.kind == "shards"])
            if c.sources and not first.sources:
                raise BadInput("[train] perception_steps trains on shard sources' captions; train.sources has none")
            log.info("perception stage: audio to caption", steps=c.perception_steps)
            _train(type(student)(first), first, data_dir, out_dir / "perception", log, progress, group)
            init = out_dir / "perception" / "final"
        return _train(student, c, data_dir, out_dir, log, progress, group, init)
    finally:
        group.close()


def _train(student: Student, c: TrainSettings, data_dir: Path, out_dir: Path, log: Any, progress: Any,
           group: Group, init: Path | None = None) -> dict[str, Any]:
    """One training into ``out_dir``; from the ``save_pretrained`` folder ``init`` instead of ``c.model`` when set."""
    import torch
    from torch.utils.data import DataLoader
    from transformers import get_scheduler, set_seed

    on_gpu = group.device.type == "cuda"
    bf16 = on_gpu and c.dtype == "bfloat16"
    if not on_gpu and c.cpu_threads:
        torch.set_num_threads(c.cpu_threads)
    world, rank, main = group.world, group.rank, group.main
    accum, rest = divmod(c.global_batch, c.per_device_batch * world)
    if accum < 1 or rest:
        raise BadInput(f"[train] global_batch {c.global_batch} is not a multiple of per_device_batch "
                       f"{c.per_device_batch} x {world} processes")
    final = out_dir / "final"
    key = settings_key(c, world)
    if c.resume and (final / CHECKPOINT_FILE).exists():
        done = json.loads((final / CHECKPOINT_FILE).read_text(encoding="utf-8"))
        _same_settings(done, key, final)
        log.info("training already finished; keeping it", checkpoint=str(final))
        return done
    resumed = _resumable(out_dir, key, world) if c.resume else None
    set_seed(c.seed)
    sources = open_sources(c.sources, Path(expand(c.data)) if c.data else data_dir, c.cot, c.plain_target)
    sizes = [len(s) for s, w in sources if w > 0]
    steps = c.max_steps or max(1, math.ceil(c.epochs * sum(sizes) / c.global_batch))
    _agree(group, steps, rank_share(sources, rank, world))
    workers = min(c.num_workers, min(share(n, world - 1, world) for n in sizes))

    log.info("loading the student", strategy=c.strategy, processes=world, checkpointing=c.activation_checkpointing)
    module = _build(student, c, out_dir, group, init)
    blocks = student.blocks()
    if c.activation_checkpointing:
        checkpoint_blocks(blocks)
    model = spread(Objective(module, student, c.loss_chunk), blocks, c.strategy, bf16, c.cpu_offload, group)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise BadInput("[train] nothing to train: every parameter is frozen (freeze_audio_tower, freeze_llm)")
    optimizer = torch.optim.AdamW(param_groups(bare(model).net, params, c.weight_decay), lr=c.learning_rate)
    scheduler = get_scheduler(c.schedule, optimizer, num_warmup_steps=warmup_steps(c, steps),
                              num_training_steps=steps)
    start, generators = 0, None
    if resumed is not None:
        generators = state.load(model, optimizer, scheduler, group, resumed)
        start = state.progress(resumed)["step"]
        log.info("resuming training", checkpoint=str(resumed), step=start, of=steps)
    metrics = Metrics(out_dir / "metrics.jsonl", start, main)
    plan = StreamPlan(sources=sources, encode=student.encode, collate=student.collate,
                      batch_size=c.per_device_batch, max_length=c.max_length, overlong=c.overlong, seed=c.seed,
                      rank=rank, world=world, workers=workers, shuffle_buffer=c.shuffle_buffer, skip=start * accum)
    loader = DataLoader(BatchStream(plan), batch_size=None, num_workers=workers, worker_init_fn=one_thread,
                        prefetch_factor=4 if workers else None)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if bf16 and c.strategy == "ddp" else None
    model.train()
    step, micro, window = start, 0, _Window()
    bar = progress("train", steps) if progress is not None and main else None
    if step < steps:
        log.info("waiting for the first batch", workers=workers)
    waited = time.perf_counter()
    with bar if bar is not None else contextlib.nullcontext():
        if bar is not None and start:
            from afcot_core.api import ShardCounts

            bar.advance(ShardCounts(accepted=start), shards=0)
        batches = iter(loader) if step < steps else iter(())
        if generators is not None:  # after the loader's own seed was drawn, as in an uninterrupted run
            state.set_rng(generators)
        for batch, stats in batches:
            window.add(stats)
            micro += 1
            if micro == 1:
                log.info("first batch", seconds=round(time.perf_counter() - waited, 2), samples=stats.samples)
            sync = micro % accum == 0
            with accumulating(model, sync):
                with autocast if autocast is not None else contextlib.nullcontext():
                    loss = model(**{k: v.to(group.device) for k, v in batch.items()})
                (loss / accum).backward()
            window.loss += float(loss.detach())
            window.micro += 1
            if not sync:
                continue
            student.after_backward()
            grad_norm = clip_gradients(params, c.max_grad_norm or math.inf)
            optimizer.step()
            optimizer.zero_grad()
            scheduler.step()
            step += 1
            row = window.close(group, step, scheduler.get_last_lr()[0], grad_norm)
            metrics.write(row)
            log.info("train step", step=step, of=steps, loss=round(row["loss"], 4), lr=row["lr"])
            if bar is not None:
                bar.record("accepted")
            if step >= steps:
                break
            if c.checkpoint_every and step % c.checkpoint_every == 0:
                state.save(model, optimizer, scheduler, group, out_dir, step, c.keep_checkpoints, key)
    if c.checkpoint_every and step % c.checkpoint_every:
        state.save(model, optimizer, scheduler, group, out_dir, step, c.keep_checkpoints, key)
    group.barrier()
    if c.strategy == "ddp":
        _same_weights(group, model, log)
    summary = {**metrics.summary(steps, final), "settings": key}
    weights = full_state(model, group)
    del optimizer, model
    if main:
        _write_final(student, starting(c, init), out_dir, weights, summary)
        if c.plot:
            metrics.plot(out_dir / "loss_curve.png", log)
    group.barrier()
    return json.loads((final / CHECKPOINT_FILE).read_text(encoding="utf-8"))


def _write_final(student: Student, c: TrainSettings, out_dir: Path, weights: dict[str, Any],
                 summary: dict[str, Any]) -> None:
    """``final/``: a ``save_pretrained`` folder of the trained weights (a LoRA adapter merged; the adapter itself
    in ``adapter/``), with ``checkpoint.json`` written last."""
    import torch

    plain = {k.removeprefix("net."): v for k, v in weights.items()}
    fresh = type(student)(student.config).build(c, out_dir, "meta", torch.float32)
    if c.lora:
        fresh = apply_lora(fresh, c.lora, student.lora_targets())
    missing, unexpected = fresh.load_state_dict(plain, strict=False, assign=True)
    if unexpected or any(p.is_meta for p in fresh.parameters()):
        raise AfcotError(f"[train] the trained weights do not fit the model: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}")
    if hasattr(fresh, "tie_weights"):
        fresh.tie_weights()
    if c.lora:
        fresh.save_pretrained(out_dir / "adapter")
        fresh = fresh.merge_and_unload()
    final = out_dir / "final"
    tmp = final.with_name("final.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    student.save(fresh, tmp)
    summary["digest"] = folder_digest(tmp)
    (tmp / CHECKPOINT_FILE).write_text(json.dumps(summary, indent=2), encoding="utf-8")
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)


def _same_weights(group: Group, model: Any, log: Any) -> None:
    """Every rank ends with the same parameters (a DDP job whose gradients were not synchronised fails here)."""
    import torch

    with torch.no_grad():
        total = sum((p.detach().double().sum() for p in model.parameters()), torch.zeros((), dtype=torch.float64))
        norm = sum((p.detach().double().abs().sum() for p in model.parameters()), torch.zeros((), dtype=torch.float64))
    local = torch.stack([total, norm])
    log.info("final weights", checksum=[float(v) for v in local.tolist()])
    table = group.gather(local)
    if any(row != table[0] for row in table):
        raise AfcotError(f"[train] the ranks ended with different weights (checksums {table}): gradients were not "
                         "synchronised")


class _Window:
    """What happened since the last optimiser step, on this rank."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.loss, self.micro, self.samples, self.tokens, self.truncated, self.dropped = 0.0, 0, 0, 0, 0, 0
        self.sources: dict[str, int] = {}

    def add(self, stats: Any) -> None:
        self.samples += stats.samples
        self.tokens += stats.tokens
        self.truncated += stats.truncated
        self.dropped += stats.dropped
        for name, n in stats.sources.items():
            self.sources[name] = self.sources.get(name, 0) + n

    def close(self, group: Group, step: int, lr: float, grad_norm: float) -> dict[str, Any]:
        """The step's metrics summed over ranks (loss: the mean of every rank's micro-batch losses)."""
        import torch

        local = torch.tensor([self.loss, self.micro, self.samples, self.tokens, self.truncated, self.dropped],
                             dtype=torch.float64)
        loss, micro, samples, tokens, truncated, dropped = group.sum(local).tolist()
        seconds = max(time.perf_counter() - self.started, 1e-9)
        row = {"step": step, "loss": loss / micro, "lr": lr,
               "grad_norm": grad_norm, "samples": int(samples),
               "tokens": int(tokens), "samples_per_s": round(samples / seconds, 3),
               "tokens_per_s": round(tokens / seconds, 1), "truncated": int(truncated), "dropped": int(dropped),
               "sources": self.sources}
        if group.device.type == "cuda":
            row["gpu_peak_gb"] = round(torch.cuda.max_memory_allocated(group.device) / 2**30, 3)
        self.__init__()  # type: ignore[misc]
        return row


class Metrics:
    """``metrics.jsonl``: one line per optimiser step (rank 0 writes); a resumed run drops lines after its step."""

    def __init__(self, path: Path, start: int, main: bool) -> None:
        self.path, self.main = path, main
        self.rows = [r for r in self._read() if r["step"] <= start]
        if main:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(json.dumps(r) + "\n" for r in self.rows), encoding="utf-8")

    def _read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        rows = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a torn last line from a killed run
        return rows

    def write(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if self.main:
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(row) + "\n")

    def summary(self, steps: int, final: Path) -> dict[str, Any]:
        losses = [r["loss"] for r in self.rows]
        return {"steps": len(self.rows), "planned_steps": steps, "first_loss": losses[0] if losses else None,
                "last_loss": losses[-1] if losses else None, "samples": sum(r["samples"] for r in self.rows),
                "truncated": sum(r["truncated"] for r in self.rows), "dropped": sum(r["dropped"] for r in self.rows),
                "checkpoint": str(final)}

    def plot(self, path: Path, log: Any) -> None:
        try:
            import matplotlib
        except ImportError:
            log.warning("matplotlib is not installed (pip install 'afcot[plot]'); no loss curve written")
            return
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4))
        ax.plot([r["step"] for r in self.rows], [r["loss"] for r in self.rows], color="tab:blue")
        ax.set_xlabel("optimiser step")
        ax.set_ylabel("training loss")
        ax.set_title("training loss")
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)


def warmup_steps(settings: TrainSettings, steps: int) -> int:
    """Optimiser steps of learning-rate warm-up: ``warmup_steps`` when set, else ``warmup_ratio`` of ``steps``."""
    if settings.warmup_steps is not None:
        return settings.warmup_steps
    return int(settings.warmup_ratio * steps)


def param_groups(module: Any, params: list[Any], weight_decay: float) -> list[dict[str, Any]]:
    """The optimiser's parameter groups: the model's own ``param_groups(weight_decay)`` when it has one (AF2 keeps
    weight decay off its partly frozen embeddings), else one group of every trainable parameter."""
    own = getattr(module, "param_groups", None)
    return own(weight_decay) if callable(own) else [{"params": params, "weight_decay": weight_decay}]
