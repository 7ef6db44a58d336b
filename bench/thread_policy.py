"""
Pretraining speed on a CPU when another program wants a core too: which thread policy degrades least.

PyTorch runs a CPU step on a team of OpenMP threads, one per core by default, that wait for each other
at the end of every operation. When another program takes one of the cores (a browser, a second
notebook), the thread that lost its core holds up the whole team, and with OpenMP's default waiting
(spinning, which burns the core it is waiting on) a 2-thread step can become many times slower, not twice.
This measures the `cpu` preset's pretraining step (batch 16 x 256 tokens, AdamW) for each policy, quiet
and beside one busy process, each in a fresh interpreter (the wait policy is read when torch loads):

    threads      one per core, or 1
    wait policy  OpenMP's default, or OMP_WAIT_POLICY=PASSIVE (a waiting thread sleeps), or minillm's
                 choice (minillm/threads.py: imported before torch, it looks at how busy the CPUs are;
                 the row shows which wait it chose, quiet/loaded)

    python bench/thread_policy.py                      # every policy, quiet and loaded (~10 min on 2 cores)
    python bench/thread_policy.py --steps 5            # quicker, noisier

Run it with nothing else running: the "quiet" rows need the machine to themselves.
"""
import argparse
import json
import os
import subprocess
import sys
import time

BUSY = "while True: pass"


def worker(steps: int, warmup: int, threads: int, minillm_first: bool) -> None:
    """One policy, in this process: seconds per pretraining step (median), printed as JSON."""
    if minillm_first:
        import minillm  # noqa: F401  (chooses the wait policy before torch loads)
    import torch

    from minillm import threads as policy
    torch.set_num_threads(threads)
    from minillm.config import get_preset
    from minillm.data import pretrain_batch
    from minillm.model import GPT

    torch.manual_seed(0)
    cfg = get_preset("cpu").model
    model = GPT(cfg)
    opt = model.configure_optimizers(0.1, 1e-3, (0.9, 0.95), "cpu")
    tokens = torch.randint(cfg.vocab_size, (100_000,), generator=torch.Generator().manual_seed(0))
    times = []
    for i in range(warmup + steps):
        x, y = pretrain_batch(tokens, 16, cfg.block_size, torch.Generator().manual_seed(i))
        t0 = time.perf_counter()
        _, loss = model(x, y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    times.sort()
    print(json.dumps({"threads": torch.get_num_threads(), "step_s": times[len(times) // 2],
                      "passive": policy.CHOICE.passive if minillm_first else None}))


def measure(threads: int, wait: str, loaded: bool, steps: int, warmup: int) -> tuple[float, str]:
    """Steps/s for one policy ("default", "PASSIVE" or "minillm"), and the wait the run used."""
    env = dict(os.environ)
    for name in ("OMP_WAIT_POLICY", "MINILLM_WAIT_CHOSEN", "MINILLM_THREADS"):
        env.pop(name, None)
    if wait == "PASSIVE":
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    busy = subprocess.Popen([sys.executable, "-c", BUSY]) if loaded else None
    try:
        if loaded:
            time.sleep(1)  # the busy process is running before the worker looks at the CPUs
        cmd = [sys.executable, __file__, "--worker", "--steps", str(steps), "--warmup", str(warmup),
               "--threads", str(threads)] + (["--minillm-first"] if wait == "minillm" else [])
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()
    result = json.loads(out.stdout.splitlines()[-1])
    used = wait if result["passive"] is None else ("PASSIVE" if result["passive"] else "default")
    return 1 / result["step_s"], used


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--minillm-first", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.steps, args.warmup, args.threads, args.minillm_first)
        return
    cores = os.cpu_count()
    print(f"{cores} cores; the cpu preset's pretraining step, median of {args.steps} steps")
    print(f"  {'threads':>7s}  {'wait policy':26s} {'quiet':>12s} {'1 busy core':>13s}  {'loaded / quiet':>14s}")
    rows = [(cores, "default"), (cores, "PASSIVE"), (cores, "minillm"), (1, "default"), (1, "PASSIVE")]
    for threads, wait in rows if cores > 1 else rows[:3]:
        quiet, used_quiet = measure(threads, wait, False, args.steps, args.warmup)
        loaded, used_loaded = measure(threads, wait, True, args.steps, args.warmup)
        name = f"minillm ({used_quiet}/{used_loaded})" if wait == "minillm" else wait
        print(f"  {threads:7d}  {name:26s} {quiet:7.2f} st/s {loaded:8.2f} st/s  {loaded / quiet:14.0%}", flush=True)


if __name__ == "__main__":
    main()
