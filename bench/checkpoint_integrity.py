"""
What verifying a checkpoint costs: SHA-256 of its tensor files at save and at load.

save_checkpoint records the SHA-256 of model.safetensors and optimizer.safetensors in config.json, and
every load checks it (minillm.checkpoint). This builds each preset's model with AdamW state (one step,
random data: the sizes are what matter), saves a training checkpoint, and prints per preset: the file
sizes, the time to hash them, and a whole save and load for comparison (best of several repeats).

    python bench/checkpoint_integrity.py                 # the cpu and gpu presets' models, on this CPU
"""

import argparse
import tempfile
import time
from pathlib import Path

import torch

from minillm.checkpoint import _sha256, load_checkpoint, load_training_state, save_checkpoint
from minillm.config import get_preset
from minillm.model import GPT


def best_of(fn, repeats):
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", nargs="+", default=["cpu", "gpu"])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print(f"{'preset':7s} {'params':>8s} {'files':>9s} {'hash':>8s} {'save':>8s} {'load':>8s}  hash / (save + load)")
    for name in args.presets:
        torch.manual_seed(0)
        model = GPT(get_preset(name).model)
        opt = model.configure_optimizers(0.1, 1e-3, (0.9, 0.95), "cpu")
        x = torch.randint(model.config.vocab_size, (2, 32))
        model(x, x)[1].backward()
        opt.step()
        with tempfile.TemporaryDirectory() as d:
            out = Path(d) / "ckpt"
            save = best_of(lambda: save_checkpoint(out, model, optimizer=opt), args.repeats)
            files = sorted(out.glob("*.safetensors"))
            size = sum(f.stat().st_size for f in files)
            hashing = best_of(lambda: [_sha256(f) for f in files], args.repeats)

            def load():
                m, _ = load_checkpoint(out)
                load_training_state(out, m.configure_optimizers(0.1, 1e-3, (0.9, 0.95), "cpu"))
            loading = best_of(load, args.repeats)
        # a save hashes each file once and a load once more
        print(f"{name:7s} {model.num_params() / 1e6:7.1f}M {size / 2**20:7.1f}MB {hashing * 1e3:6.0f}ms "
              f"{save * 1e3:6.0f}ms {loading * 1e3:6.0f}ms  {2 * hashing / (save + loading):.0%}")


if __name__ == "__main__":
    main()
