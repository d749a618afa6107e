"""The processes of a training and how the model is spread over them.

``ddp``: a full copy per process, gradients averaged (DistributedDataParallel). ``fsdp``: PyTorch's FSDP2
(``fully_shard``): one unit per transformer block plus the rest, parameters, gradients and optimiser state
sharded, bf16 compute with fp32 reductions and fp32 optimiser state. The same code runs on CPU (gloo) and GPUs
(nccl). Rank 0 alone reads the weights; the others build the model on the meta device and receive theirs
(DDP's broadcast at wrap time, or a sharded broadcast under fsdp), so a node holds one host copy.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn


@dataclass
class Group:
    """This process's place in the job: rank, world size, device; collective helpers that also work alone."""

    rank: int
    world: int
    device: torch.device
    owned: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return dist.is_available() and dist.is_initialized()

    def barrier(self) -> None:
        if self.active and self.world > 1:
            dist.barrier()

    def gather(self, row: torch.Tensor) -> list[list[float]]:
        """Every rank's ``row`` (1-D), in rank order, on every rank."""
        row = row.to(self.device)
        if not self.active or self.world == 1:
            return [row.tolist()]
        rows = [torch.empty_like(row) for _ in range(self.world)]
        dist.all_gather(rows, row)
        return [r.tolist() for r in rows]

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        values = values.to(self.device)
        if self.active and self.world > 1:
            dist.all_reduce(values)
        return values

    def close(self) -> None:
        if self.owned and self.active:
            dist.destroy_process_group()
            self.owned = False


def join(device: str, sharded: bool) -> Group:
    """This process's :class:`Group` from torchrun's / accelerate's environment (RANK, WORLD_SIZE, LOCAL_RANK);
    a process group is started when there are several processes, or for ``sharded`` training alone."""
    world, rank = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0"))
    cuda = device != "cpu" and torch.cuda.is_available()
    where = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank))) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(where)
    group = Group(rank, world, where)
    if (world > 1 or sharded) and not group.active:
        backend = "nccl" if cuda else "gloo"
        if world > 1:
            dist.init_process_group(backend)
        else:  # a one-process group: FSDP needs a device mesh even alone
            dist.init_process_group(backend, store=dist.HashStore(), rank=0, world_size=1)
        group.owned = True
    return group


def empty_weights() -> Any:
    """Parameters made inside are on the meta device (no memory); buffers stay real (rotary tables and the like)."""
    from accelerate import init_empty_weights

    return init_empty_weights(include_buffers=False)


def is_skeleton(module: nn.Module) -> bool:
    return any(p.is_meta for p in module.parameters())


def materialise(module: nn.Module, device: torch.device) -> None:
    """Give a meta-device module real (uninitialised) storage on ``device``, keeping its buffers' values and its
    shared (tied) parameters shared."""
    kept = {name: b.detach().clone() for name, b in module.named_buffers() if not b.is_meta}
    owners: dict[int, list[tuple[nn.Module, str]]] = {}
    for sub in module.modules():
        for name, p in sub._parameters.items():
            if p is not None:
                owners.setdefault(id(p), []).append((sub, name))
    module.to_empty(device=device)
    for (first, first_name), *others in owners.values():
        for sub, name in others:  # to_empty gives every module a new parameter: tie them again
            setattr(sub, name, getattr(first, first_name))
    with torch.no_grad():
        for name, b in module.named_buffers():
            if name in kept:
                b.copy_(kept[name])


def checkpoint_blocks(blocks: list[nn.Module]) -> None:
    """Activation checkpointing: each block keeps only its inputs and recomputes the rest in the backward pass.
    Hooks around a block (FSDP's, AF2's cross-attention) run outside the recomputed part."""
    from torch.utils.checkpoint import checkpoint

    for block in blocks:
        block.forward = functools.partial(checkpoint, block.forward, use_reentrant=False)  # type: ignore[method-assign]


def spread(objective: nn.Module, blocks: list[nn.Module], strategy: str, bf16: bool, cpu_offload: bool,
           group: Group) -> nn.Module:
    """``objective`` placed on the group's devices by ``strategy``; rank 0's weights reach every rank."""
    skeleton = is_skeleton(objective)
    if strategy == "fsdp":
        return _shard(objective, blocks, bf16, cpu_offload, group, skeleton)
    if skeleton:
        materialise(objective, group.device)
    else:
        objective.to(group.device)
    if group.world == 1:
        return objective
    from torch.nn.parallel import DistributedDataParallel

    ids = [group.device.index] if group.device.type == "cuda" else None
    return DistributedDataParallel(objective, device_ids=ids)  # broadcasts rank 0's parameters and buffers


def _shard(objective: nn.Module, blocks: list[nn.Module], bf16: bool, cpu_offload: bool, group: Group,
           skeleton: bool) -> nn.Module:
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import CPUOffloadPolicy, MixedPrecisionPolicy, OffloadPolicy, fully_shard

    full = objective.state_dict() if group.main and group.world > 1 else {}
    mesh = init_device_mesh(group.device.type, (group.world,))
    options = dict(mesh=mesh, mp_policy=MixedPrecisionPolicy(param_dtype=torch.bfloat16 if bf16 else None,
                                                             reduce_dtype=torch.float32),
                   offload_policy=CPUOffloadPolicy() if cpu_offload else OffloadPolicy())
    for block in blocks:
        fully_shard(block, **options)
    fully_shard(objective, **options)
    if skeleton:
        materialise(objective, torch.device("cpu") if cpu_offload else group.device)
    if group.world > 1:
        set_model_state_dict(objective, full, options=StateDictOptions(full_state_dict=True,
                                                                       broadcast_from_rank0=True))
    return objective


def sharded(model: nn.Module) -> bool:
    """Whether ``model`` was placed by FSDP2 (else one process, or DDP)."""
    return hasattr(model, "set_requires_gradient_sync")


def bare(model: nn.Module) -> nn.Module:
    """The module inside a DDP wrapper (FSDP2 keeps the module itself)."""
    return model.module if hasattr(model, "module") and hasattr(model, "no_sync") else model


@contextlib.contextmanager
def accumulating(model: nn.Module, sync: bool) -> Iterator[None]:
    """A micro-batch whose gradients are reduced across ranks only when ``sync`` (the last before a step)."""
    if sharded(model):
        model.set_requires_gradient_sync(sync)
        yield
    elif not sync and hasattr(model, "no_sync"):  # DDP
        with model.no_sync():
            yield
    else:
        yield


def clip_gradients(params: list[nn.Parameter], max_norm: float) -> float:
    """Clip the global gradient norm to ``max_norm`` (inf: measure only); the norm before clipping."""
    norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
    if hasattr(norm, "full_tensor"):  # a DTensor under FSDP
        norm = norm.full_tensor()
    return float(norm)


def full_state(model: nn.Module, group: Group) -> dict[str, torch.Tensor]:
    """The whole model's state on rank 0's CPU (empty on the other ranks)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    if not sharded(model):
        state = bare(model).state_dict()
        return {k: v.detach().cpu() for k, v in state.items()} if group.main else {}
    state = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    return {k: v if v.untyped_storage().nbytes() == v.numel() * v.element_size() else v.clone()  # own storage
            for k, v in state.items()}
