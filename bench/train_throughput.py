"""Training throughput of the `cpu` preset's model: tokens/s and MFU for each attention and compile choice.

MFU (model FLOPs utilisation) = model FLOPs per token (6N + 12·L·d·T) x tokens/s / peak FLOP/s.
On a CPU there is no datasheet peak, so the peak is measured in the same run: a 2048x2048 fp32
matmul, the best this machine's BLAS does with the threads torch uses. Every configuration runs
through minillm.train.train (the loop the course uses), on the same random-token batches.

    python -m bench.train_throughput                 # all four: sdpa/manual x eager/compile
    python -m bench.train_throughput --no-compile    # skip torch.compile (slow to compile on CPU)
    python -m bench.train_throughput --batch 16 --threads 2 --steps 10

Figures on a shared machine drift with the load; rerun for a second sample.
"""
import argparse
import dataclasses
import os
import statistics
import time
import warnings

import torch

from minillm.config import get_preset
from minillm.data import pretrain_batch
from minillm.device import choose_runtime, measure_matmul_flops
from minillm.model import GPT, GPTConfig
from minillm.train import TrainConfig, train


def model_config() -> GPTConfig:
    return get_preset("cpu").model


def run(cfg: GPTConfig, attn: str, compile_: bool, batch: int, steps: int, warmup: int, threads: int | None):
    """Train warmup + steps steps through train(); tokens/s of each timed step (after compiling and warm-up)."""
    torch.manual_seed(0)
    model = GPT(dataclasses.replace(cfg, attn_impl=attn))
    tokens = torch.randint(cfg.vocab_size, (200_000,), generator=torch.Generator().manual_seed(0))

    def get_batch(i):
        return pretrain_batch(tokens, batch, cfg.block_size, torch.Generator().manual_seed(i))

    # log_interval=1: every step reports its own tokens/s (a log is one .item(), free on a CPU)
    tcfg = TrainConfig(max_steps=warmup + steps, batch_size=batch, warmup_steps=2, log_interval=1, compile=compile_)
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = train(model, get_batch, tcfg, choose_runtime("cpu", "fp32"), progress=False)
    per_step = sorted(h["tokens_per_s"] for h in result.history[warmup:])
    note = "; ".join(str(w.message)[:70] for w in caught if "torch.compile" in str(w.message) and "training eagerly" in str(w.message))
    return {"median": statistics.median(per_step), "best": per_step[-1], "wall": time.perf_counter() - t0,
            "note": note, "flops_per_token": model.flops_per_token(seq_len=cfg.block_size)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=8, help="timed steps per configuration")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first (compiling happens here)")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--attn", default="sdpa,manual")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    cfg = model_config()
    peaks = [measure_matmul_flops("cpu", 2048, repeats=15)]
    n_params = GPT(cfg).num_params()
    print(f"model: {n_params / 1e6:.2f}M params, {cfg}")
    print(f"batch {args.batch} x {cfg.block_size} tokens, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print(f"peak: 2048x2048 fp32 matmul = {peaks[0] / 1e9:.1f} GFLOP/s")

    rows = []
    for compile_ in ([False] if args.no_compile else [False, True]):
        for attn in args.attn.split(","):
            # the matmul is re-timed beside every configuration: on a shared machine the load drifts
            peaks.append(measure_matmul_flops("cpu", 2048, repeats=15))
            r = run(cfg, attn, compile_, args.batch, args.steps, args.warmup, args.threads)
            r.update(attn=attn, compile=compile_)
            rows.append(r)
            print(f"  {attn:6s} compile={compile_!s:5s}: median {r['median']:6.0f} tok/s, best {r['best']:6.0f} "
                  f"({r['wall']:.0f} s wall) {r['note']}", flush=True)
    peaks.append(measure_matmul_flops("cpu", 2048, repeats=15))
    peak = max(peaks)

    base = rows[0]["best"]
    print()
    print(f"peak = best of {len(peaks)} timings of a 2048x2048 fp32 matmul: {peak / 1e9:.1f} GFLOP/s "
          f"(all: {', '.join(f'{p / 1e9:.0f}' for p in peaks)})")
    print(f"training FLOPs per token (6N + 12LdT): {rows[0]['flops_per_token'] / 1e6:.2f}M")
    print(f"{'attention':10s} {'compile':8s} {'tok/s best':>10s} {'median':>7s} {'x base':>7s} {'GFLOP/s':>8s} {'MFU best':>9s} {'median':>7s}")
    for r in rows:
        fpt = r["flops_per_token"]
        print(f"{r['attn']:10s} {str(r['compile']):8s} {r['best']:10.0f} {r['median']:7.0f} {r['best'] / base:7.2f} "
              f"{fpt * r['best'] / 1e9:8.1f} {fpt * r['best'] / peak:9.1%} {fpt * r['median'] / peak:7.1%}")


if __name__ == "__main__":
    main()
