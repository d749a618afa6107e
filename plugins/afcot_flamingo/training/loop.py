"""The model-agnostic training loop (accelerate): any :class:`Student` on the blended data path.

One process on CPU or a GPU, DDP under ``accelerate launch`` / ``torchrun``; bf16 on GPUs; gradient
accumulation up to ``global_batch``; every rank takes the same number of optimiser steps (computed from
the global sample count and checked across ranks). Into ``out_dir``: ``checkpoints/step-N`` (model,
optimiser, scheduler, RNG; the data position is the step), ``metrics.jsonl``, ``loss_curve.png`` and
``final/`` (a ``save_pretrained`` folder with ``checkpoint.json``: its digest and the run's figures).
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

from torch.utils.data import IterableDataset, get_worker_info

from afcot_core.errors import AfcotError, BadInput
from afcot_core.weights import expand
from afcot_flamingo.config import LoraConfig, TrainSettings
from afcot_flamingo.training.data import StreamPlan, open_sources, rank_share, share, worker_batches
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


def latest_checkpoint(out_dir: Path) -> Path | None:
    done = [p for p in (out_dir / "checkpoints").glob("step-*") if (p / "progress.json").exists()]
    return max(done, key=lambda p: int(p.name.split("-")[1]), default=None)


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
_NOT_DECISIVE = ("resume", "plot", "checkpoint_every", "keep_checkpoints", "cpu_threads")


def settings_key(c: TrainSettings, world: int) -> str:
    """The digest of what decides the training (settings and process count): a resumed or kept training must match."""
    import msgspec

    from afcot_core.digest import digest

    table = {k: v for k, v in msgspec.to_builtins(c).items() if k not in _NOT_DECISIVE}
    return digest({**table, "processes": world})


def _same_settings(doc: dict[str, Any], key: str, where: Path) -> None:
    if doc.get("settings", key) != key:
        raise BadInput(f"{where}: made by a training with other settings (or another number of processes); "
                       "use another --out, or delete its train/ folder to train again")


def _agree(accelerator: Any, steps: int, mine: int) -> None:
    """Every rank plans ``steps`` and has samples; otherwise every rank fails with the same message."""
    import torch

    table = accelerator.gather(torch.tensor([[steps, mine]], device=accelerator.device)).tolist()
    if len({row[0] for row in table}) > 1:
        raise AfcotError(f"[train] ranks disagree on the step count: {[row[0] for row in table]}")
    empty = [r for r, row in enumerate(table) if row[1] == 0]
    if empty:
        raise BadInput(f"[train] rank(s) {empty} of {len(table)} have no training sample; use fewer processes "
                       "or more data")


def train(student: Student, c: TrainSettings, data_dir: Path, out_dir: Path, log: Any,
          progress: Any = None) -> dict[str, Any]:
    """Train ``student`` with settings ``c`` on the configured sources; the summary of the run."""
    import torch
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from torch.utils.data import DataLoader
    from transformers import get_scheduler

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    on_cpu = c.device == "cpu" or not torch.cuda.is_available()
    accelerator = Accelerator(cpu=on_cpu, mixed_precision="no" if on_cpu or c.dtype == "float32" else "bf16")
    if on_cpu and c.cpu_threads:
        torch.set_num_threads(c.cpu_threads)
    world, rank, main = accelerator.num_processes, accelerator.process_index, accelerator.is_main_process
    accum, rest = divmod(c.global_batch, c.per_device_batch * world)
    if accum < 1 or rest:
        raise BadInput(f"[train] global_batch {c.global_batch} is not a multiple of per_device_batch "
                       f"{c.per_device_batch} x {world} processes")
    accelerator.gradient_accumulation_steps = accum
    final = out_dir / "final"
    key = settings_key(c, world)
    if c.resume and (final / CHECKPOINT_FILE).exists():
        done = json.loads((final / CHECKPOINT_FILE).read_text(encoding="utf-8"))
        _same_settings(done, key, final)
        log.info("training already finished; keeping it", checkpoint=str(final))
        return done
    set_seed(c.seed)
    sources = open_sources(c.sources, Path(expand(c.data)) if c.data else data_dir, c.cot)
    sizes = [len(s) for s, w in sources if w > 0]
    steps = c.max_steps or max(1, math.ceil(c.epochs * sum(sizes) / c.global_batch))
    _agree(accelerator, steps, rank_share(sources, rank, world))
    workers = min(c.num_workers, min(share(n, world - 1, world) for n in sizes))

    with accelerator.main_process_first():  # a tiny random model is written once, then read by the others
        module = student.build(c, out_dir, str(accelerator.device), torch.float32)
    student.freeze(c.freeze_audio_tower, c.freeze_llm)
    if c.lora:
        module = apply_lora(module, c.lora, student.lora_targets())
    params = [p for p in module.parameters() if p.requires_grad]
    if not params:
        raise BadInput("[train] nothing to train: every parameter is frozen (freeze_audio_tower, freeze_llm)")
    optimizer = torch.optim.AdamW(param_groups(module, params, c.weight_decay), lr=c.learning_rate)
    scheduler = get_scheduler(c.schedule, optimizer, num_warmup_steps=warmup_steps(c, steps),
                              num_training_steps=steps)
    model, optimizer = accelerator.prepare(module, optimizer)
    accelerator.register_for_checkpointing(scheduler)  # stepped here once per optimiser step, on every rank

    start, resumed = 0, latest_checkpoint(out_dir) if c.resume else None
    if resumed is not None:
        progress_doc = json.loads((resumed / "progress.json").read_text(encoding="utf-8"))
        _same_settings(progress_doc, key, resumed)
        accelerator.load_state(str(resumed))
        start = progress_doc["step"]
        log.info("resuming training", checkpoint=str(resumed), step=start, of=steps)
    metrics = Metrics(out_dir / "metrics.jsonl", start, main)
    plan = StreamPlan(sources=sources, encode=student.encode, collate=student.collate,
                      batch_size=c.per_device_batch, max_length=c.max_length, overlong=c.overlong, seed=c.seed,
                      rank=rank, world=world, workers=workers, shuffle_buffer=c.shuffle_buffer, skip=start * accum)
    loader = DataLoader(BatchStream(plan), batch_size=None, num_workers=workers, worker_init_fn=one_thread,
                        prefetch_factor=4 if workers else None)
    model.train()
    step, window = start, _Window()
    bar = progress("train", steps) if progress is not None and main else None
    with bar if bar is not None else contextlib.nullcontext():
        if bar is not None and start:
            from afcot_core.shards import ShardCounts

            bar.advance(ShardCounts(accepted=start), shards=0)
        for batch, stats in loader if step < steps else ():
            window.add(stats)
            with accelerator.accumulate(model):
                loss = model(**{k: v.to(accelerator.device) for k, v in batch.items()}).loss
                accelerator.backward(loss)
                window.loss += float(loss.detach())
                window.micro += 1
                grad_norm = None
                if accelerator.sync_gradients:
                    grad_norm = accelerator.clip_grad_norm_(params, c.max_grad_norm or math.inf)
                optimizer.step()
                optimizer.zero_grad()
            if not accelerator.sync_gradients:
                continue
            scheduler.step()
            step += 1
            row = window.close(accelerator, step, scheduler.get_last_lr()[0], grad_norm)
            metrics.write(row)
            log.info("train step", step=step, of=steps, loss=round(row["loss"], 4), lr=row["lr"])
            if bar is not None:
                bar.record("accepted")
            if step >= steps:
                break
            if c.checkpoint_every and step % c.checkpoint_every == 0:
                save_checkpoint(accelerator, out_dir, step, c.keep_checkpoints, key)
    if c.checkpoint_every and step % c.checkpoint_every:
        save_checkpoint(accelerator, out_dir, step, c.keep_checkpoints, key)
    accelerator.wait_for_everyone()
    _same_weights(accelerator, model, log)
    summary = {**metrics.summary(steps, final), "settings": key}
    if main:
        unwrapped = accelerator.unwrap_model(model)
        if c.lora:
            unwrapped.save_pretrained(out_dir / "adapter")
            unwrapped = unwrapped.merge_and_unload()
        tmp = final.with_name("final.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        student.save(unwrapped, tmp)
        summary["digest"] = folder_digest(tmp)
        (tmp / CHECKPOINT_FILE).write_text(json.dumps(summary, indent=2), encoding="utf-8")
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        if c.plot:
            metrics.plot(out_dir / "loss_curve.png", log)
    accelerator.wait_for_everyone()
    return json.loads((final / CHECKPOINT_FILE).read_text(encoding="utf-8"))


def _same_weights(accelerator: Any, model: Any, log: Any) -> None:
    """Every rank ends with the same parameters (a DDP job whose gradients were not synchronised fails here)."""
    import torch

    with torch.no_grad():
        total = sum((p.detach().double().sum() for p in model.parameters()), torch.zeros((), dtype=torch.float64))
        norm = sum((p.detach().double().abs().sum() for p in model.parameters()), torch.zeros((), dtype=torch.float64))
    local = torch.stack([total, norm]).to(accelerator.device)
    log.info("final weights", checksum=[float(v) for v in local.tolist()])
    table = accelerator.gather(local.unsqueeze(0)).tolist()
    if any(row != table[0] for row in table):
        raise AfcotError(f"[train] the ranks ended with different weights (checksums {table}): gradients were not "
                         "synchronised")


def save_checkpoint(accelerator: Any, out_dir: Path, step: int, keep: int, key: str) -> None:
    """A resumable checkpoint at ``step`` (written under a temporary name, then renamed); older ones pruned."""
    target = out_dir / "checkpoints" / f"step-{step:08d}"
    tmp = target.with_name(target.name + ".tmp")
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (tmp / "progress.json").write_text(json.dumps({"step": step, "settings": key}), encoding="utf-8")
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
        done = sorted((p for p in target.parent.glob("step-*") if not p.name.endswith(".tmp")),
                      key=lambda p: int(p.name.split("-")[1]))
        for old in done[: -max(1, keep)]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()


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

    def close(self, accelerator: Any, step: int, lr: float, grad_norm: Any) -> dict[str, Any]:
        """The step's metrics summed over ranks (loss: the mean of every rank's micro-batch losses)."""
        import torch

        local = torch.tensor([self.loss, self.micro, self.samples, self.tokens, self.truncated, self.dropped],
                             dtype=torch.float64, device=accelerator.device)
        loss, micro, samples, tokens, truncated, dropped = accelerator.reduce(local, "sum").tolist()
        seconds = max(time.perf_counter() - self.started, 1e-9)
        row = {"step": step, "loss": loss / micro, "lr": lr,
               "grad_norm": None if grad_norm is None else float(grad_norm), "samples": int(samples),
               "tokens": int(tokens), "samples_per_s": round(samples / seconds, 3),
               "tokens_per_s": round(tokens / seconds, 1), "truncated": int(truncated), "dropped": int(dropped),
               "sources": self.sources}
        if torch.cuda.is_available() and accelerator.device.type == "cuda":
            row["gpu_peak_gb"] = round(torch.cuda.max_memory_allocated(accelerator.device) / 2**30, 3)
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
