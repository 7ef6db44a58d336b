"""The course in Google Colab: called by the first cell of every notebook, and only there.

`setup` installs the course beside the torch, numpy and ipykernel that Colab preloads, keeps `artifacts/` on
Google Drive and picks the preset for Colab's GPU. Elsewhere the course is installed the usual way, and
minillm.doctor says what a machine has.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import os
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

# Imported, this module needs nothing the course installs (it runs before they are there); only
# `t4_training_minutes` and `_gpu_name`, called once they are, import torch.

# The first code cell of every notebook, word for word (tests/test_colab.py checks each notebook has it).
CELL = """\
# In Google Colab only (elsewhere this cell does nothing): the course from your Drive, installed beside
# Colab's own torch and numpy (the README's Colab section; minillm/colab.py says what it does)
import os, sys
if "google.colab" in sys.modules:
    from google.colab import drive
    drive.mount("/content/drive")
    COURSE = "/content/drive/MyDrive/minillm"
    if not os.path.exists(f"{COURSE}/pyproject.toml"):
        raise FileNotFoundError(f"no course in {COURSE}: clone it there first (the README's Colab section)")
    sys.path.insert(0, COURSE)
    import minillm.colab
    minillm.colab.setup()"""
KEEP = ("torch", "numpy", "ipykernel")
_CHOSEN = "MINILLM_COLAB_PRESET"   # marks a MINILLM_PRESET that setup chose (a re-run decides again)   # what Colab preloads and the course must not replace
DRIVE = Path("/content/drive")
# The preset: on Colab's free T4 the `gpu` preset would train for an estimated quarter hour
# (`t4_training_minutes`: 6·N·D against the T4's fp16 peak) before its world, tokenizer and evaluation,
# longer than the course's other presets take; so on a T4 (or without a GPU), unless MINILLM_PRESET is
# set, Colab runs the `cpu` preset (on the T4 it trains in fp16 + GradScaler). A faster GPU keeps `gpu`.
COLAB_PRESET = "cpu"
T4_MFU = (0.15, 0.25)                     # the share of that peak a model this small reaches: an assumption


def course_folder() -> Path:
    """The checkout this package was imported from (the folder with pyproject.toml)."""
    return Path(__file__).resolve().parent.parent


def missing_requirements(folder: Path) -> list[str]:
    """The course's requirements (pyproject.toml) that are not installed at a version they accept,
    Colab's preloaded packages aside."""
    from packaging.requirements import Requirement   # packaging comes with pip, so it is there before anything

    project = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
    missing = []
    for line in project["dependencies"]:
        req = Requirement(line)
        if req.name in KEEP:
            continue
        try:
            if req.specifier.contains(importlib.metadata.version(req.name), prereleases=True):
                continue
        except importlib.metadata.PackageNotFoundError:
            pass
        missing.append(line)
    return missing


def training_tokens(p) -> int:
    """Tokens a preset trains on: pretraining, then both fine-tunings (first and released) at full rows."""
    return p.model.block_size * (p.pretrain.max_steps * p.pretrain.batch_size + 2 * p.sft.max_steps * p.sft.batch_size)


def t4_training_minutes(preset: str = "gpu") -> tuple[float, float]:
    """Estimated minutes of training (pretraining, then both fine-tunings at full rows) on a T4 in fp16,
    from 6·N·D (model.flops_per_token) at the `T4_MFU` range: an estimate, not a measurement."""
    from minillm.config import get_preset
    from minillm.device import gpu_peak_flops
    from minillm.model import GPT

    p = get_preset(preset)
    flops = GPT(p.model).flops_per_token() * training_tokens(p)
    peak = gpu_peak_flops("Tesla T4", "fp16")
    return tuple(flops / (peak * mfu) / 60 for mfu in reversed(T4_MFU))


def _gpu_name() -> str | None:
    import torch
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def setup(run=subprocess.run, environ=os.environ) -> list[str]:
    """Install the course into this Colab runtime and choose where its artifacts and preset come from.
    Prints and returns what it did, one line each.

    Colab preloads torch (a CUDA build), numpy and the Jupyter kernel; installing the course the usual way
    (`-r requirements.txt -c constraints.txt`) would replace all three. `setup` instead installs the course
    itself without its dependencies, then only the requirements Colab lacks, with Colab's torch, numpy and
    ipykernel pinned at the versions it has so pip can never swap them. The course folder (and so
    `artifacts/`, where each stage's models are kept) is on Google Drive when the README's Colab steps were
    followed, so a disconnect loses nothing already trained; MINILLM_ARTIFACTS puts `artifacts/` elsewhere."""
    folder = course_folder()
    done = []
    pins = [f"{name}=={importlib.metadata.version(name)}" for name in KEEP]
    pinned = Path(tempfile.gettempdir()) / "minillm-colab-keep.txt"   # a constraints file: these versions, or fail
    pinned.write_text("\n".join(pins) + "\n")
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "-c", str(pinned)]
    run(pip + ["--no-deps", "-e", str(folder)], check=True)
    missing = missing_requirements(folder)
    if missing:
        run(pip + missing, check=True)
    importlib.invalidate_caches()   # this kernel's import system looked at site-packages before pip wrote to it
    done.append(f"installed the course from {folder}" + (f" and {', '.join(missing)}" if missing else "")
                + f"; kept Colab's {', '.join(pins)}")
    on_drive = DRIVE in folder.parents
    artifacts = environ.get("MINILLM_ARTIFACTS") or str(folder / "artifacts")
    environ["MINILLM_ARTIFACTS"] = artifacts
    done.append(f"artifacts in {artifacts}: " + ("on Google Drive, which keeps what was trained across sessions "
                                                 "(Colab writes to Drive in the background: let a stage's last "
                                                 "message print before you close the runtime)"
                                                 if DRIVE in Path(artifacts).resolve().parents else
                                                 "this runtime's disk, lost when it disconnects (mount Drive and "
                                                 "clone the course there, as the README's Colab section says)"))
    if environ.get("MINILLM_PRESET") and not environ.get(_CHOSEN):
        done.append(f"preset {environ['MINILLM_PRESET']!r}, as MINILLM_PRESET says")
    else:
        gpu = _gpu_name()
        if gpu and "T4" not in gpu:
            environ.pop("MINILLM_PRESET", None)
            environ.pop(_CHOSEN, None)
            done.append(f"preset 'gpu', as the hardware says ({gpu})")
        else:
            environ["MINILLM_PRESET"], environ[_CHOSEN] = COLAB_PRESET, "1"
            low, high = t4_training_minutes("gpu")
            done.append(f"preset {COLAB_PRESET!r}: the 'gpu' preset would train an estimated {low:.0f}-{high:.0f} "
                        f"min on a T4 (6·N·D at {T4_MFU[0]:.0%}-{T4_MFU[1]:.0%} of its fp16 peak); set "
                        "MINILLM_PRESET=gpu before this cell to run it")
    os.chdir(folder / "notebooks")
    done.append(f"working folder {folder / 'notebooks'}" + ("" if on_drive else " (not on Drive)"))
    for line in done:
        print("Colab:", line)
    return done
