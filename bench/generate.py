"""
Generation speed with and without the KV cache.

Without a cache every new token re-runs the model over the whole sequence so far; with it, each new
token costs one position of work (plus attention over the cached keys). Prints tokens/s for both and
the ratio. Random weights are enough: speed does not depend on what the model has learned.

    python bench/generate.py                 # ~2M params, 256 new tokens, CPU fp32
    python bench/generate.py --batch-size 8 --device cuda
"""

import argparse
import time

import torch

from minillm.model import GPT, GPTConfig


def tokens_per_s(model, idx, new_tokens, use_cache, repeats):
    best = float("inf")
    for _ in range(repeats):
        if idx.device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = model.generate(idx, new_tokens, temperature=0, use_cache=use_cache)
        if idx.device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    assert all(len(row) == new_tokens for row in out)
    return idx.size(0) * new_tokens / best, out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--new-tokens", type=int, default=256)
    p.add_argument("--prompt-len", type=int, default=16)
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3, help="best of this many runs")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    config = GPTConfig(vocab_size=1024, block_size=512, n_layer=4, n_head=4, n_embd=192)
    model = GPT(config).to(args.device).eval()
    idx = torch.randint(0, config.vocab_size, (args.batch_size, args.prompt_len), device=args.device)
    print(f"model: {model.num_params() / 1e6:.2f}M params, {config}")
    print(f"device {args.device}, fp32, {torch.get_num_threads()} threads, batch {args.batch_size}, "
          f"prompt {args.prompt_len} tokens, {args.new_tokens} new tokens (greedy), best of {args.repeats}")

    model.generate(idx, 8, temperature=0)  # warm-up
    cached, out_cached = tokens_per_s(model, idx, args.new_tokens, True, args.repeats)
    plain, out_plain = tokens_per_s(model, idx, args.new_tokens, False, args.repeats)
    print(f"KV cache:    {cached:10.1f} tokens/s")
    print(f"no cache:    {plain:10.1f} tokens/s")
    print(f"speed-up:    {cached / plain:10.2f}x   (same tokens: {out_cached == out_plain})")


if __name__ == "__main__":
    main()
