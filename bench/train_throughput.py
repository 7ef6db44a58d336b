"""Training throughput: tokens/s and MFU for each attention, compile and precision choice.

Two modes. On a CPU (the default there) the `cpu` preset's model, for each attention and compile choice.
With --device cuda (the default where CUDA is), a GPT-2-small shape (12 layers, 768 wide, context 1024,
vocabulary 50,304) in one run, three ways: bf16 autocast + fused attention + torch.compile (what the course
does on an Ampere-or-newer GPU), fp32 + the readable attention, and fp16 + GradScaler + fused + compile
(what a T4 gets). MFU is against the GPU's datasheet bf16 peak for every row, so the rows compare; the
table also says whether compile worked and what the fp16 loss scale did (a falling scale means
overflowing steps were skipped).

MFU (model FLOPs utilisation) = model FLOPs per token (6N + 12·L·d·T) x tokens/s / peak FLOP/s.
On a CPU there is no datasheet peak, so the peak is measured in the same run: a 2048x2048 fp32
matmul, the best this machine's BLAS does with the threads torch uses. Every configuration runs
through minillm.train.train (the loop the course uses), on the same random-token batches.

    python -m bench.train_throughput                 # all four: sdpa/manual x eager/compile
    python -m bench.train_throughput --no-compile    # skip torch.compile (slow to compile on CPU)
    python -m bench.train_throughput --batch 16 --threads 2 --steps 10
    python bench/train_throughput.py --device cuda        # GPT-2 small: bf16+fused+compile vs fp32+readable

Figures on a shared machine drift with the load; rerun for a second sample.
"""
import argparse
import dataclasses
import os
import statistics
import time
import warnings

import minillm  # noqa: F401  (before torch: the thread policy)
import torch

from minillm.config import get_preset
from minillm.data import pretrain_batch
from minillm.device import choose_runtime, measure_matmul_flops, peak_flops
from minillm.model import GPT, GPTConfig
from minillm.train import TrainConfig, train


def model_config() -> GPTConfig:
    return get_preset("cpu").model


GPT2_SMALL = GPTConfig(vocab_size=50304, block_size=1024, n_layer=12, n_head=12, n_embd=768)
TINY = GPTConfig(vocab_size=256, block_size=64, n_layer=2, n_head=2, n_embd=32)   # the GPU mode's code path, on a CPU
COMPARE = (("bf16", "sdpa", True), ("fp32", "manual", False), ("fp16", "sdpa", True))


def run(cfg: GPTConfig, attn: str, compile_: bool, batch: int, steps: int, warmup: int, threads: int | None,
        device: str = "cpu", precision: str = "fp32"):
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
        result = train(model, get_batch, tcfg, choose_runtime(device, precision), progress=False)
    per_step = sorted(h["tokens_per_s"] for h in result.history[warmup:])
    note = "; ".join(str(w.message)[:70] for w in caught if "torch.compile" in str(w.message) and "training eagerly" in str(w.message))
    scales = [h["loss_scale"] for h in result.history if "loss_scale" in h]
    return {"median": statistics.median(per_step), "best": per_step[-1], "wall": time.perf_counter() - t0,
            "note": note, "flops_per_token": model.flops_per_token(seq_len=cfg.block_size),
            "loss": [result.history[0]["loss"], result.history[-1]["loss"]], "scales": scales}


def compare(args) -> None:
    """The GPU mode: GPT-2 small three ways in one run, MFU against the bf16 datasheet peak."""
    cfg = TINY if args.model == "tiny" else GPT2_SMALL
    runtime = choose_runtime(args.device, "bf16" if args.device != "cpu" else "fp32")
    peak = peak_flops(choose_runtime(args.device, "bf16")) if runtime.device_type == "cuda" else None
    name = torch.cuda.get_device_name(runtime.device) if runtime.device_type == "cuda" else "CPU"
    print(f"{name}, torch {torch.__version__}; {GPT(cfg).num_params() / 1e6:.1f}M parameters, batch {args.batch} x "
          f"{cfg.block_size} tokens; MFU against the bf16 peak "
          + (f"{peak / 1e12:.0f} TFLOP/s" if peak else "(unknown here: MFU not shown)"))
    print(f"{'precision':9s} {'attention':9s} {'compile':7s} {'tok/s':>10s} {'MFU':>6s}  {'loss first -> last':18s}  notes")
    for precision, attn, compile_ in COMPARE:
        compile_ = compile_ and not args.no_compile
        r = run(cfg, attn, compile_, args.batch, args.steps, args.warmup, args.threads, args.device, precision)
        mfu = f"{r['flops_per_token'] * r['median'] / peak:6.1%}" if peak else "     -"
        notes = [r["note"] or ("compiled" if compile_ else "eager")]
        if precision == "fp16":
            drops = sum(b < a for a, b in zip(r["scales"], r["scales"][1:]))
            notes.append(f"loss scale {r['scales'][0]:g} -> {r['scales'][-1]:g}, fell {drops}x (each fall: an "
                         "overflowing step skipped)" if r["scales"] else "no loss scaler")
        elif precision == "bf16":
            notes.append("no loss scaler" if not r["scales"] else "a loss scaler?")
        print(f"{precision:9s} {attn:9s} {str(compile_):7s} {r['median']:10.0f} {mfu}  "
              f"{r['loss'][0]:7.3f} -> {r['loss'][1]:7.3f}  {'; '.join(notes)}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=8, help="timed steps per configuration")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first (compiling happens here)")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--attn", default="sdpa,manual")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                    help="cuda: the GPU mode (GPT-2 small, three ways); cpu: the cpu preset's model")
    ap.add_argument("--model", choices=("gpt2-small", "tiny"), default="gpt2-small",
                    help="the GPU mode's model (tiny: its code path on a CPU, for the tests)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device != "cpu" or args.model == "tiny":
        args.batch = args.batch if args.batch != 32 else 8
        compare(args)
        return

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
