"""A small training run for tests/test_distributed.py: the same run with one process or under torchrun.

    python tests/ddp_train.py OUT HISTORY [--resume] [--die-at STEP]
    python -m torch.distributed.run --standalone --nproc_per_node=2 tests/ddp_train.py OUT HISTORY

The batches carry loss masks that keep a different share of each row (as SFT's do), so the loss
weighting across processes is exercised. Rank 0 writes the loss history to HISTORY as JSON.
"""
import argparse
import json
import os

import minillm  # noqa: F401  (before torch: the thread policy)
import torch

from minillm import distributed
from minillm.device import choose_runtime
from minillm.model import GPT, GPTConfig
from minillm.train import TrainConfig, train

VOCAB, T, ROWS = 64, 32, 8


def get_batch(i):
    """Batch i: the next token is the current one plus one (learnable), rows keep 20%...100% of their targets."""
    g = torch.Generator().manual_seed(1000 + i)
    x = torch.randint(VOCAB, (ROWS, T), generator=g)
    y = (x + 1) % VOCAB
    keep = torch.rand(ROWS, T, generator=g) < torch.linspace(0.2, 1.0, ROWS)[:, None]
    return x, torch.where(keep, y, torch.full_like(y, -1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("history")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--die-at", type=int, default=0)
    args = ap.parse_args()
    distributed.init()
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=VOCAB, block_size=T, n_layer=2, n_head=2, n_embd=32))
    cfg = TrainConfig(max_steps=12, batch_size=ROWS, learning_rate=3e-3, log_interval=1, checkpoint_interval=4)

    def on_log(history):
        if history[-1]["step"] == args.die_at:
            os._exit(3)            # killed: no cleanup, as a closed laptop or a lost node

    result = train(model, get_batch, cfg, choose_runtime("cpu"), out_dir=args.out, resume=args.resume,
                   progress=False, on_log=on_log)
    if distributed.is_main():
        with open(args.history, "w") as f:
            json.dump([{"step": h["step"], "loss": h["loss"]} for h in result.history], f)


if __name__ == "__main__":
    main()
