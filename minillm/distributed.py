"""Training on several processes with PyTorch's own engine: torchrun + DistributedDataParallel.

    torchrun --standalone --nproc_per_node=2 -m minillm course --preset cpu        # 2 processes, one machine

Which process this is, and the few steps the processes take together; without torchrun every call here is a
no-op. The training loop (minillm.train) wraps the model in DDP; minillm.device gives each process its GPU.
"""
from __future__ import annotations

import os
from contextlib import contextmanager

import torch
import torch.distributed as dist

# torchrun starts one process per GPU (or per share of a CPU) and tells each its RANK, LOCAL_RANK and
# WORLD_SIZE. Every process holds the whole model; each step every process computes the gradient of its
# own rows of the batch, and DistributedDataParallel (DDP) averages the gradients across processes while
# the backward pass runs (NCCL on GPUs, Gloo on CPUs), so every process takes the same optimizer step and
# the copies stay identical. How the course keeps one process's result: the same global batch (`shard`),
# the same loss (`share_weight`), one writer (`main_first`).
# Dropout draws differ from one process's draws (each process draws for its own rows), so with dropout > 0
# the result is equal in distribution, not bit for bit; the course's presets use no dropout.


def launched() -> tuple[int, int, int]:
    """(processes, this one's rank, its rank on this machine) as torchrun set them; (1, 0, 0) without torchrun.
    Readable before the process group exists (device.choose_runtime picks this process's GPU from it)."""
    env = os.environ
    return int(env.get("WORLD_SIZE", "1")), int(env.get("RANK", "0")), int(env.get("LOCAL_RANK", "0"))


def init() -> bool:
    """Join the process group torchrun describes (NCCL on CUDA, Gloo otherwise). False when not launched
    by torchrun with more than one process: then everything here is a no-op. Several machines:

        torchrun --nnodes=2 --nproc_per_node=8 --rdzv-backend=c10d --rdzv-endpoint=HOST:29500 -m minillm course
    """
    processes, _, local_rank = launched()
    if processes <= 1 or not dist.is_available():
        return False
    if not dist.is_initialized():
        cuda = torch.cuda.is_available()
        if cuda:
            torch.cuda.set_device(local_rank)
        dist.init_process_group("nccl" if cuda else "gloo")
    return True


def close() -> None:
    """Leave the process group (torchrun's processes end cleanly, without a warning about it)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main() -> bool:
    return rank() == 0


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


@contextmanager
def main_first():
    """Rank 0 runs the block first (it may write files); the others run it after, and read them.

    One writer: only rank 0 logs, evaluates and writes files; the others wait where they would read them."""
    if not is_main():
        barrier()
    yield
    if is_main():
        barrier()


def shard(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """This process's rows of a global batch: contiguous shares, as equal as the row count allows (a packed
    fine-tuning batch has as many rows as its conversations fill, 15 say); share_weight makes the gradient
    the whole batch's either way.

    The same global batch: batch i is still a pure function of i (minillm.data), every process builds
    it and keeps its share of the rows, so a run resumed from a checkpoint continues exactly,
    whatever the number of processes."""
    n = world_size()
    if n == 1:
        return x, y
    if x.size(0) < n:
        raise ValueError(f"a batch of {x.size(0)} rows cannot give each of {n} processes a row: use fewer "
                         f"processes, a larger batch_size, or (fine-tuning) a smaller sft_pack, whose rows hold "
                         f"several conversations each")
    return torch.tensor_split(x, n)[rank()], torch.tensor_split(y, n)[rank()]


def share_weight(y_all: torch.Tensor, y_mine: torch.Tensor) -> float:
    """What to multiply this process's mean loss by so that DDP's average of the gradients is the gradient
    of the whole batch's mean: world_size x (my scored targets / all scored targets).

    The same loss: each share's loss is weighted by the share of the batch's scored targets it holds, so the
    averaged gradient is the gradient of the whole batch's mean, also when SFT masks make rows count
    differently."""
    n = world_size()
    if n == 1:
        return 1.0
    return n * int((y_mine != -1).sum()) / max(int((y_all != -1).sum()), 1)


def all_sum(value: torch.Tensor) -> torch.Tensor:
    """The sum of a tensor over every process (the value itself when there is one)."""
    if world_size() > 1:
        value = value.clone()
        dist.all_reduce(value)
    return value
