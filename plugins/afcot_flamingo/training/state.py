"""Resumable training checkpoints with ``torch.distributed.checkpoint``: each rank writes its own part.

``checkpoints/step-N/``: the model and optimiser state (sharded under fsdp, one copy under ddp), and per rank
``rank-R.pt`` with the scheduler and every random generator; ``progress.json`` (step, settings, processes) is
written last, under a temporary folder name that is renamed when every rank is done.
"""

from __future__ import annotations

import contextlib
import json
import random
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from afcot_flamingo.training.parallel import Group

PROGRESS = "progress.json"


def _rng() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng(state: dict[str, Any]) -> None:
    """Put every random generator back as :func:`save` found it."""
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def latest(out_dir: Path) -> Path | None:
    """The newest complete checkpoint under ``out_dir/checkpoints``, or None."""
    done = [p for p in (out_dir / "checkpoints").glob("step-*") if (p / PROGRESS).exists()]
    return max(done, key=lambda p: int(p.name.split("-")[1]), default=None)


def progress(folder: Path) -> dict[str, Any]:
    return json.loads((folder / PROGRESS).read_text(encoding="utf-8"))


def save(model: Any, optimizer: Any, scheduler: Any, group: Group, out_dir: Path, step: int, keep: int,
         settings: str) -> None:
    """A resumable checkpoint at ``step``; only the ``keep`` newest are kept."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict

    target = out_dir / "checkpoints" / f"step-{step:08d}"
    tmp = target.with_name(target.name + ".tmp")
    if group.main:
        shutil.rmtree(tmp, ignore_errors=True)
    group.barrier()
    model_state, optim_state = get_state_dict(model, optimizer)
    with _alone():
        dcp.save({"model": model_state, "optim": optim_state}, checkpoint_id=str(tmp))
    torch.save({"scheduler": scheduler.state_dict(), "rng": _rng()}, tmp / f"rank-{group.rank}.pt")
    group.barrier()
    if group.main:
        doc = {"step": step, "settings": settings, "processes": group.world}
        (tmp / PROGRESS).write_text(json.dumps(doc), encoding="utf-8")
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
        done = sorted((p for p in target.parent.glob("step-*") if not p.name.endswith(".tmp")),
                      key=lambda p: int(p.name.split("-")[1]))
        for old in done[: -max(1, keep)]:
            shutil.rmtree(old, ignore_errors=True)
    group.barrier()


def load(model: Any, optimizer: Any, scheduler: Any, group: Group, folder: Path) -> dict[str, Any]:
    """Restore a :func:`save` checkpoint into this rank's model, optimiser and scheduler; the random generators'
    states to :func:`set_rng` once the data stream has started (starting it draws a seed)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    model_state, optim_state = get_state_dict(model, optimizer)
    state = {"model": model_state, "optim": optim_state}
    with _alone():
        dcp.load(state, checkpoint_id=str(folder))
    set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"])
    mine = torch.load(folder / f"rank-{group.rank}.pt", weights_only=False)
    scheduler.load_state_dict(mine["scheduler"])
    return mine["rng"]


@contextlib.contextmanager
def _alone() -> Iterator[None]:
    """Without a process group ``torch.distributed.checkpoint`` warns that it assumes one process: it is one."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.distributed is disabled", category=UserWarning)
        yield
