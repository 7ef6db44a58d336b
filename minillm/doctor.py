"""What this machine has for the course, checked before anything runs: `python -m minillm doctor`.

Each line is one check, marked "ok", "note" (worth knowing, nothing to do) or "PROBLEM" (with what to do):
Python and torch versions, which torch build (CPU or CUDA), the device and precision the course will use
and how torch's CPU threads wait (minillm.device, minillm.threads), a trial of a few training steps on
that device against the CPU (a device is trusted once its losses are the CPU's: MPS has given wrong ones
with some torch releases), free disk for a run of the preset and free memory (psutil), and the packages
the notebooks import, against the versions CI tested (constraints.txt).
Notebook 00 prints the same report. The command exits with status 1 when a check found a problem.
"""
from __future__ import annotations

import importlib.metadata
import platform
import shutil
import sys
from pathlib import Path

MIN_PYTHON = (3, 11)   # pyproject.toml says the same; tests/test_install.py resolves the pins on 3.11.0 and newer
BYTES_PER_PARAM_ON_DISK = 12 * 10   # a training checkpoint holds weights + 2 AdamW moments (12 bytes per
                                    # parameter in fp32); a run keeps about ten (stages, notebooks' extras)
MIN_FREE_MEMORY = 2 * 2**30
PACKAGES = ("tiktoken", "regex", "safetensors", "numpy", "matplotlib", "tqdm", "psutil", "packaging", "jupyterlab",
            "ipywidgets", "nbmake")
EXTRAS = {"transformers": "hf", "nbgrader": "grading"}
CONSTRAINTS = Path(__file__).resolve().parent.parent / "constraints.txt"


def tested_versions(path: Path = CONSTRAINTS) -> dict[str, str]:
    """{package: version} of constraints.txt (the versions CI installed and tested); {} without the file."""
    from packaging.requirements import Requirement

    if not path.exists():
        return {}
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            pin = Requirement(line)
            out[package_key(pin.name)] = next(s.version for s in pin.specifier if s.operator == "==")
    return out


def package_key(name: str) -> str:
    """A package's name as pip compares it (PEP 503: lower case, one '-' for any run of '-', '_' and '.')."""
    from packaging.utils import canonicalize_name
    return canonicalize_name(name)


def same_release(installed: str, pinned: str) -> bool:
    """Whether an installed version is the pinned one, a local build label aside (torch 2.13.0+cpu is 2.13.0)."""
    from packaging.version import Version
    return Version(installed).public == Version(pinned).public


def free_memory() -> int | None:
    """Bytes of memory available now (what programs can get without swapping), or None where this cannot be read."""
    try:
        import psutil
        return int(psutil.virtual_memory().available)
    except (ImportError, OSError, RuntimeError):
        return None


TRIAL_STEPS = 8
TRIAL_TOLERANCE = 0.1   # nats: the largest gap from the CPU's fp32 losses a working device shows over the
                        # trial (CPU bf16 autocast: ~0.01); a wrong kernel is off by far more, or not finite


def trial_losses(runtime, steps: int = TRIAL_STEPS, seed: int = 0) -> list[float]:
    """The losses of `steps` training steps (minillm.train, as the course trains) of a tiny GPT on 8 fixed
    random sequences, on the runtime's device and precision: the same numbers on every device, up to rounding."""
    import torch

    from minillm.model import GPT, GPTConfig
    from minillm.train import TrainConfig, train

    torch.manual_seed(seed)
    model = GPT(GPTConfig(vocab_size=64, block_size=32, n_layer=2, n_head=2, n_embd=32, dropout=0.0))
    data = torch.randint(0, 64, (8, 33), generator=torch.Generator().manual_seed(seed))
    x, y = data[:, :-1].to(runtime.device), data[:, 1:].to(runtime.device)
    cfg = TrainConfig(max_steps=steps, batch_size=8, learning_rate=1e-2, warmup_steps=0, log_interval=1,
                      compile=False, seed=seed)
    return [h["loss"] for h in train(model, lambda i: (x, y), cfg, runtime, progress=False).history]


def device_trial(runtime, trial=trial_losses) -> tuple[str, str, str]:
    """A few training steps on the chosen device against the same steps on the CPU in fp32: (status, what, detail).
    The trial runs on its own copy of torch's random state, so it changes nothing a notebook draws next."""
    import torch

    from minillm.device import Runtime
    from minillm.train import NonFiniteLoss

    where = f"{runtime.device_type} in {runtime.precision}"
    fix = "train with --device cpu (or MINILLM_DEVICE=cpu), or MINILLM_PRECISION=fp32"
    is_reference = runtime.device_type == "cpu" and runtime.precision == "fp32"
    try:
        with torch.random.fork_rng(devices=[]):
            reference = None if is_reference else trial(Runtime(torch.device("cpu"), "fp32", "the reference"))
            losses = trial(runtime)
    except NonFiniteLoss:
        return "PROBLEM", "trial", f"the loss was not a finite number within {TRIAL_STEPS} training steps on {where}: {fix}"
    except Exception as e:      # what a device that cannot run the course raises: no kernel image, out of memory, ...
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        return "PROBLEM", "trial", f"{TRIAL_STEPS} training steps on {where} failed ({type(e).__name__}: {first}): {fix}"
    falling = losses[-1] < losses[0]
    detail = f"{len(losses)} training steps on {where}: loss {losses[0]:.3f} -> {losses[-1]:.3f}"
    if is_reference:        # what other devices are compared with: here only whether it learns
        return ("ok" if falling else "PROBLEM", "trial", detail + (", falling (the CPU in fp32 is the reference "
                "other devices are checked against)" if falling else ", not falling: reinstall torch"))
    gap = max(abs(a - b) for a, b in zip(losses, reference))
    if gap <= TRIAL_TOLERANCE and falling:
        return "ok", "trial", f"{detail}, within {gap:.3f} of the CPU's fp32 losses (tolerance {TRIAL_TOLERANCE:g})"
    return "PROBLEM", "trial", (f"{detail}, off by {gap:.3f} from the CPU's fp32 losses (more than "
                                f"{TRIAL_TOLERANCE:g}){'' if falling else ', not falling'}: {fix}")


def checks(preset: str | None = None, folder=".") -> list[tuple[str, str, str]]:
    """(status, what, detail) for every check: status is "ok", "note" or "PROBLEM"."""
    rows = []
    py = sys.version_info
    rows.append(("ok" if py[:2] >= MIN_PYTHON else "PROBLEM", "python",
                 f"{platform.python_version()} on {platform.system()} {platform.machine()}"
                 + ("" if py[:2] >= MIN_PYTHON else f": the course needs {'.'.join(map(str, MIN_PYTHON))} or newer")))
    try:
        import torch
    except ImportError:
        return rows + [("PROBLEM", "torch", "not installed: install it with the line for your machine (the README's "
                                           "\"Installing\"), then pip install -r requirements.txt -c constraints.txt -e .")]
    from minillm.config import get_preset
    from minillm.device import choose_runtime
    from minillm.model import GPT

    build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "CPU-only build"
    rows.append(("ok", "torch", f"{torch.__version__} ({build})"))
    try:
        runtime = choose_runtime()
        rows.append(("ok", "device", runtime.summary()))
        rows.append(device_trial(runtime))
    except ValueError as e:
        rows.append(("PROBLEM", "device", str(e)))
    p = get_preset(preset)
    params = GPT(p.model).num_params()
    need = params * BYTES_PER_PARAM_ON_DISK
    free = shutil.disk_usage(Path(folder).resolve()).free
    rows.append(("ok" if free >= need else "PROBLEM", "disk",
                 f"{free / 2**30:.1f} GiB free; a {p.name!r} run needs about {need / 2**30:.2f} GiB"
                 + ("" if free >= need else ": free some space or pass --out on another disk")))
    mem = free_memory()
    if mem is None:
        rows.append(("note", "memory", "this system does not say how much memory is free"))
    else:
        rows.append(("ok" if mem >= MIN_FREE_MEMORY else "note", "memory", f"{mem / 2**30:.1f} GiB available"
                     + ("" if mem >= MIN_FREE_MEMORY else ": close other programs if training is slow or stops")))
    rows.append(("ok", "preset", f"{p.name!r}: {params / 1e6:.2f}M parameters, the whole course about "
                                 f"{p.expected_minutes:g} min on {p.hardware}"))
    tested = tested_versions()
    for name in PACKAGES + tuple(EXTRAS):
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            if name in EXTRAS:
                rows.append(("note", name, f"not installed (optional: pip install -e \".[{EXTRAS[name]}]\")"))
            else:
                rows.append(("PROBLEM", name, "not installed: pip install -r requirements.txt -e ."))
            continue
        want = tested.get(package_key(name))
        if want is None or same_release(version, want):
            rows.append(("ok", name, version))
        else:
            rows.append(("note", name, f"{version}; CI tested {want} (pip install -r requirements.txt "
                                       "-c constraints.txt gives the tested versions)"))
    return rows


def report(preset: str | None = None, folder=".") -> tuple[str, bool]:
    """The checks as lines of text, and whether none found a problem."""
    rows = checks(preset, folder)
    width = max(len(what) for _, what, _ in rows)
    text = "\n".join(f"{status:7s} {what:{width}s}  {detail}" for status, what, detail in rows)
    return text, all(status != "PROBLEM" for status, _, _ in rows)
