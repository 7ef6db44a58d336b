"""What this machine has for the course, checked before anything runs: `python -m minillm doctor`.

Each line is one check, marked "ok", "note" (worth knowing, nothing to do) or "PROBLEM" (with what to do):
Python and torch versions, which torch build (CPU or CUDA), the device and precision the course will use
and how torch's CPU threads wait (minillm.device, minillm.threads), free disk for a run of the preset and
free memory, and the packages the notebooks import, against the versions CI tested (constraints.txt).
Notebook 00 prints the same report. The command exits with status 1 when a check found a problem.
"""
from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import sys
from pathlib import Path

MIN_PYTHON = (3, 10)
BYTES_PER_PARAM_ON_DISK = 12 * 10   # a training checkpoint holds weights + 2 AdamW moments (12 bytes per
                                    # parameter in fp32); a run keeps about ten (stages, notebooks' extras)
MIN_FREE_MEMORY = 2 * 2**30
PACKAGES = ("tiktoken", "regex", "safetensors", "numpy", "matplotlib", "tqdm", "jupyterlab",
            "ipywidgets", "nbmake")
EXTRAS = {"transformers": "hf", "nbgrader": "grading"}
CONSTRAINTS = Path(__file__).resolve().parent.parent / "constraints.txt"


def tested_versions(path: Path = CONSTRAINTS) -> dict[str, str]:
    """{package: version} of constraints.txt (the versions CI installed and tested); {} without the file."""
    if not path.exists():
        return {}
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            out[package_key(name)] = version.strip()
    return out


def package_key(name: str) -> str:
    """A package's name as pip compares it: lower case, '-' for '_' and '.'."""
    return name.strip().lower().replace("_", "-").replace(".", "-")


def free_memory() -> int | None:
    """Bytes of memory available now, or None where this cannot be read."""
    try:
        if hasattr(os, "sysconf") and "SC_AVPHYS_PAGES" in os.sysconf_names:
            return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        if sys.platform == "win32":
            import ctypes

            class MemoryStatus(ctypes.Structure):
                _fields_ = [("dwLength", ctypes.c_ulong), ("dwMemoryLoad", ctypes.c_ulong),
                            ("ullTotalPhys", ctypes.c_ulonglong), ("ullAvailPhys", ctypes.c_ulonglong),
                            ("ullTotalPageFile", ctypes.c_ulonglong), ("ullAvailPageFile", ctypes.c_ulonglong),
                            ("ullTotalVirtual", ctypes.c_ulonglong), ("ullAvailVirtual", ctypes.c_ulonglong),
                            ("ullAvailExtendedVirtual", ctypes.c_ulonglong)]
            status = MemoryStatus()
            status.dwLength = ctypes.sizeof(MemoryStatus)
            if ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status)):
                return int(status.ullAvailPhys)
    except (OSError, ValueError, AttributeError):
        pass
    return None   # macOS has no SC_AVPHYS_PAGES


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
        return rows + [("PROBLEM", "torch", "not installed: pip install torch==2.13.0 (the CPU build), then "
                                           "pip install -r requirements.txt -e .")]
    from minillm.config import get_preset
    from minillm.device import choose_runtime
    from minillm.model import GPT

    build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "CPU-only build"
    rows.append(("ok", "torch", f"{torch.__version__} ({build})"))
    try:
        runtime = choose_runtime()
        rows.append(("ok", "device", runtime.summary()))
    except ValueError as e:
        rows.append(("PROBLEM", "device", str(e)))
        runtime = None
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
        base = version.split("+")[0]
        if want is None or base == want.split("+")[0]:
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
