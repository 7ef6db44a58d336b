"""The environment check (`python -m minillm doctor`, notebook 00) and constraints.txt, the versions CI tested."""
import importlib.metadata
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from minillm import doctor

ROOT = Path(__file__).resolve().parent.parent


def test_every_check_has_a_status_and_a_healthy_machine_is_ready():
    rows = doctor.checks("smoke")
    assert [what for _, what, _ in rows[:5]] == ["python", "torch", "device", "trial", "disk"]
    assert {status for status, _, _ in rows} <= {"ok", "note", "PROBLEM"}
    names = {what for _, what, _ in rows}
    assert set(doctor.PACKAGES) <= names and set(doctor.EXTRAS) <= names
    text, ready = doctor.report("smoke")
    assert ready and "PROBLEM" not in text and len(text.splitlines()) == len(rows)


def test_too_little_disk_is_a_problem_that_says_what_to_do(monkeypatch):
    usage = shutil.disk_usage(".")._replace(free=10 * 2**20)     # 10 MiB left
    monkeypatch.setattr(doctor.shutil, "disk_usage", lambda path: usage)
    rows = {what: (status, detail) for status, what, detail in doctor.checks("cpu")}
    status, detail = rows["disk"]
    assert status == "PROBLEM" and detail.startswith("0.0 GiB free; a 'cpu' run needs about 0.2")
    assert detail.endswith(": free some space or pass --out on another disk")
    assert doctor.report("cpu")[1] is False


def test_a_missing_package_is_a_problem_and_a_missing_extra_a_note(monkeypatch):
    real = importlib.metadata.version

    def version(name):
        if name in ("ipywidgets", "transformers"):
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(doctor.importlib.metadata, "version", version)
    rows = {what: (status, detail) for status, what, detail in doctor.checks("smoke")}
    assert rows["ipywidgets"] == ("PROBLEM", "not installed: pip install -r requirements.txt -e .")
    assert rows["transformers"] == ("note", 'not installed (optional: pip install -e ".[hf]")')


def test_the_command_exits_0_when_ready():
    p = subprocess.run([sys.executable, "-m", "minillm", "doctor", "--preset", "smoke"], capture_output=True,
                       text=True, cwd=ROOT)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.endswith("\nready for the course\n") and p.stdout.startswith("ok      python ")


def _direct_requirements() -> list[Requirement]:
    tomllib = pytest.importorskip("tomllib")     # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = [line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    extras = [r for group in project["optional-dependencies"].values() for r in group]
    return [Requirement(r) for r in [*filter(None, lines), *project["dependencies"], *extras]]


def test_constraints_pin_every_direct_requirement_within_its_range():
    pins = doctor.tested_versions(ROOT / "constraints.txt")
    for req in _direct_requirements():
        name = doctor.package_key(req.name)
        assert name in pins, f"constraints.txt does not pin {req.name}"
        assert req.specifier.contains(pins[name], prereleases=True), f"{req.name}=={pins[name]} is outside {req}"
    assert "minillm" not in pins and not any("+" in v for v in pins.values())   # no local builds (torch +cpu)


def _installed_closure() -> dict[str, str]:
    """{package: installed version} for everything `pip install -r requirements.txt -e ".[grading,hf]"` needs,
    followed through each package's own requirements (with their markers and extras) as installed here."""
    todo = [(r, frozenset(r.extras)) for r in _direct_requirements()]
    todo.append((Requirement("minillm"), frozenset({"grading", "hf"})))
    seen, out = set(), {}
    while todo:
        req, extras = todo.pop()
        name = doctor.package_key(req.name)
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        try:
            dist = importlib.metadata.distribution(req.name)
        except importlib.metadata.PackageNotFoundError:
            continue      # not needed on this platform (its marker was false) or not installed: pip's concern
        out[name] = dist.version.split("+")[0]
        for line in dist.requires or []:
            dep = Requirement(line)
            if dep.marker is None or any(dep.marker.evaluate({"extra": e}) for e in extras | {""}):
                todo.append((dep, frozenset(dep.extras)))
    for name in ("minillm", "pip", "setuptools", "wheel"):    # the course itself, and the installer's own
        out.pop(name, None)
    return out


@pytest.mark.skipif(not os.environ.get("CI"), reason="CI installs with -c constraints.txt; elsewhere other versions may be installed")
def test_in_ci_what_is_installed_is_what_constraints_pin():
    pins = doctor.tested_versions(ROOT / "constraints.txt")
    installed = _installed_closure()
    unpinned = sorted(n for n in installed if n not in pins)
    differ = sorted(f"{n} {installed[n]} (pinned {pins[n]})" for n in installed if n in pins and installed[n] != pins[n])
    assert not unpinned and not differ, (
        f"constraints.txt is out of date: not pinned {unpinned}, other versions {differ}; regenerate it as "
        "tools/freeze_constraints.py says")


def _runtime(precision):
    import torch
    from minillm.device import Runtime
    return Runtime(torch.device("cpu"), precision, "test")


def test_the_device_trial_passes_a_device_whose_losses_are_the_cpus():
    """CPU bf16 autocast stands for an accelerator: its rounding is a real difference from fp32, within tolerance."""
    import torch
    fp32, bf16 = doctor.trial_losses(_runtime("fp32")), doctor.trial_losses(_runtime("bf16"))
    assert len(fp32) == doctor.TRIAL_STEPS and fp32[-1] < fp32[0] - 0.3            # it learns the 8 sequences
    assert 0 < max(abs(a - b) for a, b in zip(fp32, bf16)) < doctor.TRIAL_TOLERANCE / 2
    assert doctor.trial_losses(_runtime("fp32")) == fp32                           # same seed, same numbers
    assert doctor.device_trial(_runtime("fp32")) == (       # the CPU in fp32 is the reference itself
        "ok", "trial", f"8 training steps on cpu in fp32: loss {fp32[0]:.3f} -> {fp32[-1]:.3f}, falling (the CPU in "
        "fp32 is the reference other devices are checked against)")
    assert doctor.device_trial(_runtime("fp16"))[0] == "ok"      # fp16 autocast with its GradScaler, on the CPU
    torch.manual_seed(5)
    draw = torch.rand(3)
    torch.manual_seed(5)
    doctor.device_trial(_runtime("bf16"))
    assert torch.equal(torch.rand(3), draw)                        # the trial leaves the caller's random state alone
    status, what, detail = doctor.device_trial(_runtime("bf16"))
    assert (status, what) == ("ok", "trial")
    assert detail.startswith(f"8 training steps on cpu in bf16: loss {fp32[0]:.3f} -> ")
    assert detail.endswith(f"of the CPU's fp32 losses (tolerance {doctor.TRIAL_TOLERANCE:g})")


def test_the_device_trial_flags_wrong_losses_and_a_nan(monkeypatch):
    def wrong(runtime):                  # a device whose kernels compute something else
        losses = doctor.trial_losses(runtime)
        return losses if runtime.precision == "fp32" else [x + 0.5 for x in losses]

    status, _, detail = doctor.device_trial(_runtime("bf16"), trial=wrong)
    assert status == "PROBLEM" and ", off by 0.5" in detail
    assert detail.endswith("(more than 0.1): train with --device cpu (or MINILLM_DEVICE=cpu), or MINILLM_PRECISION=fp32")

    def no_kernel(runtime):              # a GPU the installed torch was not built for
        if runtime.precision != "fp32":
            raise RuntimeError("CUDA error: no kernel image is available for execution on the device\nmore")
        return doctor.trial_losses(runtime)

    assert doctor.device_trial(_runtime("fp16"), trial=no_kernel) == (
        "PROBLEM", "trial", "8 training steps on cpu in fp16 failed (RuntimeError: CUDA error: no kernel image is "
        "available for execution on the device): train with --device cpu (or MINILLM_DEVICE=cpu), or MINILLM_PRECISION=fp32")

    from minillm.model import GPT
    forward = GPT.forward

    def nan_under_autocast(self, idx, targets=None, **kw):      # a kernel that overflows in low precision
        logits, loss = forward(self, idx, targets, **kw)
        import torch
        if loss is not None and torch.is_autocast_enabled("cpu"):
            loss = loss * float("nan")
        return logits, loss

    monkeypatch.setattr(GPT, "forward", nan_under_autocast)
    assert doctor.device_trial(_runtime("bf16")) == (
        "PROBLEM", "trial", "the loss was not a finite number within 8 training steps on cpu in bf16: train with "
        "--device cpu (or MINILLM_DEVICE=cpu), or MINILLM_PRECISION=fp32")


def test_the_readme_states_the_trial_the_doctor_runs():
    text = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    assert (f"a trial of {doctor.TRIAL_STEPS} training steps of a tiny model on that device against the same steps "
            f"on the CPU (its losses must be the CPU's to within {doctor.TRIAL_TOLERANCE:g})") in text
