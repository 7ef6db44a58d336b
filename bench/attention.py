"""
Attention, readable against fused: forward + backward time and peak memory per sequence length, and
which kernel PyTorch's scaled_dot_product_attention (SDPA) ran.

The readable attention (model.py's attn_impl="manual") computes softmax(q k^T / sqrt(d)) v as written:
it stores the (T x T) score matrix of every head, and its backward keeps it, so its memory grows with T².
SDPA hands the same computation to a fused kernel: FlashAttention computes the softmax in tiles and
never stores the scores (memory grows with T), the memory-efficient kernel does the same another way,
and the "math" fallback is the readable computation in C++. Which one runs depends on the device, the
dtype and the shapes; this script asks the profiler which one ran instead of guessing.

Each row is one CausalSelfAttention layer of the model (projections included, so the two differ only in
attention itself), batch x T tokens, forward and backward, median of --repeats after warm-up.

    python bench/attention.py                                  # CUDA if present (bf16), else CPU (fp32)
    python bench/attention.py --device cpu --lengths 256 512 1024
    python bench/attention.py --n-embd 768 --n-head 12 --batch 8    # GPT-2 small's attention (the default on CUDA)
"""
import argparse
import statistics
import time

import minillm  # noqa: F401  (before torch: the thread policy)
import torch

from minillm.device import choose_runtime
from minillm.model import CausalSelfAttention, GPTConfig

# the profiler's name for each SDPA kernel -> what it is
KERNELS = (("flash", "flash"), ("efficient", "memory-efficient"), ("cudnn", "cuDNN"), ("math", "math"))


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def sdpa_kernel_used(layer, x) -> str:
    """Which SDPA kernel a forward + backward of `layer` on x runs, from the profiler's op names."""
    from torch.profiler import ProfilerActivity, profile
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if x.device.type == "cuda" else [])
    with profile(activities=acts) as prof:
        layer(x).sum().backward()
        _sync(x.device)
    names = {e.key for e in prof.key_averages() if "scaled_dot_product" in e.key}
    found = [what for key, what in KERNELS if any(key in n for n in names)]
    return ", ".join(found) or "none seen: " + ", ".join(sorted(names))


def measure(impl: str, T: int, args, device, dtype) -> dict:
    """Median seconds of forward + backward, and peak memory (CUDA), for one layer at length T."""
    cfg = GPTConfig(vocab_size=256, block_size=T, n_layer=1, n_head=args.n_head, n_embd=args.n_embd,
                    attn_impl=impl)
    torch.manual_seed(0)
    layer = CausalSelfAttention(cfg, 0).to(device)
    x = torch.randn(args.batch, T, args.n_embd, device=device, requires_grad=True)
    autocast = torch.autocast(device.type, dtype=dtype) if dtype != torch.float32 else torch.autocast(device.type, enabled=False)
    times = []
    try:
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device) if device.type == "cuda" else 0
        for i in range(args.warmup + args.repeats):
            _sync(device)
            t0 = time.perf_counter()
            with autocast:
                y = layer(x)
            y.float().sum().backward()
            _sync(device)
            if i >= args.warmup:
                times.append(time.perf_counter() - t0)
            layer.zero_grad(set_to_none=True)
            x.grad = None
        peak = torch.cuda.max_memory_allocated(device) - base if device.type == "cuda" else None
        kernel = None
        if impl == "sdpa":
            with autocast:
                kernel = sdpa_kernel_used(layer, x)
        return {"seconds": statistics.median(times), "peak": peak, "kernel": kernel}
    except torch.cuda.OutOfMemoryError:
        return {"seconds": None, "peak": None, "kernel": "out of memory"}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--lengths", type=int, nargs="+", default=None,
                    help="sequence lengths (default 256 ... 4096 on CUDA, 256 ... 1024 on CPU)")
    ap.add_argument("--n-embd", type=int, default=None, help="default 768 on CUDA, 192 on CPU")
    ap.add_argument("--n-head", type=int, default=None, help="default 12 on CUDA, 4 on CPU")
    ap.add_argument("--batch", type=int, default=None, help="default 8 on CUDA, 2 on CPU")
    ap.add_argument("--precision", choices=("bf16", "fp16", "fp32"), default=None,
                    help="default bf16 on CUDA (fp16 where bf16 is missing), fp32 on CPU")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    args.lengths = args.lengths or ([256, 512, 1024, 2048, 4096] if gpu else [256, 512, 1024])
    args.n_embd = args.n_embd or (768 if gpu else 192)
    args.n_head = args.n_head or (12 if gpu else 4)
    args.batch = args.batch or (8 if gpu else 2)
    precision = args.precision or choose_runtime(args.device).precision   # what training would use here
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[precision]
    name = torch.cuda.get_device_name(device) if gpu else f"CPU, {torch.get_num_threads()} threads"
    print(f"{name}; {precision}; one attention layer (n_embd {args.n_embd}, {args.n_head} heads), batch "
          f"{args.batch}, forward + backward, median of {args.repeats}")
    print(f"{'T':>6s}  {'readable':>10s} {'fused':>10s} {'speed-up':>9s}  {'readable mem':>12s} {'fused mem':>10s}  "
          f"SDPA kernel")
    for T in args.lengths:
        r, f = measure("manual", T, args, device, dtype), measure("sdpa", T, args, device, dtype)
        ms = lambda m: f"{m['seconds'] * 1e3:8.2f}ms" if m["seconds"] else "       OOM"  # noqa: E731
        mb = lambda m: f"{m['peak'] / 2**20:9.0f}MiB" if m["peak"] is not None else "        -"  # noqa: E731
        up = f"{r['seconds'] / f['seconds']:8.2f}x" if r["seconds"] and f["seconds"] else "        -"
        print(f"{T:6d}  {ms(r):>10s} {ms(f):>10s} {up}  {mb(r):>12s} {mb(f):>10s}  {f['kernel']}", flush=True)
    if not gpu:
        print("(peak memory is measured on CUDA only)")


if __name__ == "__main__":
    main()
