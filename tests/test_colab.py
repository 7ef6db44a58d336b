"""The Colab path, by simulation: CI has no Colab, so `google.colab` is a fake module and pip a recorder.
What is checked: every notebook starts with the same cell, which does nothing outside Colab and in Colab
mounts Drive and calls minillm.colab.setup; setup installs the course without replacing Colab's torch,
numpy or kernel, keeps artifacts/ where the course folder is (Drive) or where MINILLM_ARTIFACTS says,
and picks the preset it says, with the T4 estimate computed from the model."""
import json
import os
import shutil
import sys
import types
from pathlib import Path

import pytest

from minillm import colab
from minillm.config import get_preset
from minillm.course import artifacts_dir
from minillm.model import GPT

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_every_notebook_starts_with_the_colab_cell():
    for path in NOTEBOOKS:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        first = next(c for c in cells if c["cell_type"] == "code")
        assert "".join(first["source"]) == colab.CELL, f"{path.name}: its first code cell is not minillm.colab.CELL"
        assert first["outputs"] == []      # outside Colab it prints nothing


def _fake_colab(monkeypatch, mounted: list):
    google = types.ModuleType("google")
    module = types.ModuleType("google.colab")
    module.drive = types.SimpleNamespace(mount=mounted.append)
    google.colab = module
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", module)


def test_the_cell_does_nothing_outside_colab_and_in_colab_mounts_drive_then_sets_up(monkeypatch, tmp_path):
    calls, mounted = [], []
    monkeypatch.setattr(colab, "setup", lambda: calls.append("setup"))
    exec(colab.CELL, {})
    assert calls == [] and mounted == []
    _fake_colab(monkeypatch, mounted)
    with pytest.raises(FileNotFoundError) as e:         # Drive mounted, but the course was never cloned there
        exec(colab.CELL, {})
    assert mounted == ["/content/drive"] and calls == []
    assert str(e.value) == ("no course in /content/drive/MyDrive/minillm: clone it there first "
                            "(the README's Colab section)")
    real_exists = os.path.exists
    monkeypatch.setattr(os.path, "exists", lambda p: p == "/content/drive/MyDrive/minillm/pyproject.toml" or real_exists(p))
    monkeypatch.setattr(sys, "path", list(sys.path))
    exec(colab.CELL, {})
    assert calls == ["setup"] and sys.path[0] == "/content/drive/MyDrive/minillm"


@pytest.fixture
def course_on_drive(tmp_path, monkeypatch):
    """A course folder at <tmp>/drive/MyDrive/minillm, with <tmp>/drive standing for Colab's Drive mount."""
    folder = tmp_path / "drive" / "MyDrive" / "minillm"
    (folder / "notebooks").mkdir(parents=True)
    shutil.copy(ROOT / "pyproject.toml", folder)
    monkeypatch.setattr(colab, "DRIVE", tmp_path / "drive")
    monkeypatch.setattr(colab, "course_folder", lambda: folder)
    monkeypatch.chdir(tmp_path)
    return folder


def test_setup_installs_beside_colabs_torch_numpy_and_kernel(course_on_drive, monkeypatch, capsys):
    real = colab.importlib.metadata.version

    def version(name):                   # a Colab without tiktoken, and with an older safetensors than the course accepts
        if name == "tiktoken":
            raise colab.importlib.metadata.PackageNotFoundError(name)
        return "0.3.0" if name == "safetensors" else real(name)

    monkeypatch.setattr(colab.importlib.metadata, "version", version)
    commands, env = [], {}
    done = colab.setup(run=lambda cmd, check: commands.append(cmd), environ=env)
    pin_file = Path(commands[0][commands[0].index("-c") + 1])
    assert pin_file.read_text().split() == [f"{n}=={real(n)}" for n in ("torch", "numpy", "ipykernel")]
    assert commands[0][-3:] == ["--no-deps", "-e", str(course_on_drive)]     # the course, none of its requirements
    assert commands[1][-2:] == ["tiktoken>=0.7", "safetensors>=0.4"]          # only what is missing, with the pins
    assert len(commands) == 2 and all("-c" in c for c in commands)
    assert env["MINILLM_ARTIFACTS"] == str(course_on_drive / "artifacts") and env["MINILLM_PRESET"] == "cpu"
    assert "on Google Drive, which keeps what was trained across sessions" in done[1]
    assert Path.cwd() == course_on_drive / "notebooks"
    low, high = colab.t4_training_minutes("gpu")
    assert done[2] == (f"preset 'cpu': the 'gpu' preset would train an estimated {low:.0f}-{high:.0f} min on a T4 "
                       "(6·N·D at 15%-25% of its fp16 peak); set MINILLM_PRESET=gpu before this cell to run it")
    assert capsys.readouterr().out.splitlines() == [f"Colab: {line}" for line in done]
    assert colab.setup(run=lambda cmd, check: None, environ=env)[2] == done[2]     # a re-run decides again


def test_setup_keeps_what_the_user_chose(course_on_drive, tmp_path):
    env = {"MINILLM_ARTIFACTS": str(tmp_path / "elsewhere"), "MINILLM_PRESET": "gpu"}
    done = colab.setup(run=lambda cmd, check: None, environ=env)
    assert env == {"MINILLM_ARTIFACTS": str(tmp_path / "elsewhere"), "MINILLM_PRESET": "gpu"}
    assert done[1].endswith("this runtime's disk, lost when it disconnects (mount Drive and clone the course "
                            "there, as the README's Colab section says)")
    assert done[2] == "preset 'gpu', as MINILLM_PRESET says"


def test_a_gpu_faster_than_a_t4_keeps_the_gpu_preset(course_on_drive, monkeypatch):
    monkeypatch.setattr(colab, "_gpu_name", lambda: "NVIDIA A100-SXM4-40GB")
    env = {}
    done = colab.setup(run=lambda cmd, check: None, environ=env)
    assert "MINILLM_PRESET" not in env and done[2] == "preset 'gpu', as the hardware says (NVIDIA A100-SXM4-40GB)"
    monkeypatch.setattr(colab, "_gpu_name", lambda: "Tesla T4")
    assert colab.setup(run=lambda cmd, check: None, environ=env)[2].startswith("preset 'cpu': the 'gpu' preset")


def test_artifacts_go_where_minillm_artifacts_says(monkeypatch, tmp_path):
    monkeypatch.setenv("MINILLM_ARTIFACTS", str(tmp_path / "kept"))
    monkeypatch.chdir(tmp_path)
    assert artifacts_dir() == Path("kept")
    monkeypatch.delenv("MINILLM_ARTIFACTS")
    assert artifacts_dir().resolve() == ROOT / "artifacts"


def test_the_t4_estimate_is_6ND_at_the_stated_share_of_the_fp16_peak():
    p = get_preset("gpu")
    tokens = 256 * (3000 * 64 + 2 * 500 * 64)               # pretraining, then both fine-tunings at full rows
    assert colab.training_tokens(p) == tokens
    flops = GPT(p.model).flops_per_token() * tokens
    assert flops == pytest.approx(6 * GPT(p.model).num_params() * tokens, rel=0.1)   # 6·N·D, attention aside
    assert colab.t4_training_minutes("gpu") == pytest.approx((flops / (65e12 * 0.25) / 60, flops / (65e12 * 0.15) / 60))


def test_the_readme_states_the_estimate_the_code_computes():
    import re
    text = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    found = re.search(r"would take an estimated (\d+)-(\d+) min of training alone on a T4 \(6·N·D for its (\d+)M "
                      r"tokens of pretraining and fine-tuning, at (\d+)-(\d+)% of the T4's 65 TFLOP/s fp16 peak", text)
    assert found, "README: the Colab paragraph's T4 estimate is not where the test looks"
    tokens = colab.training_tokens(get_preset("gpu"))
    low, high = colab.t4_training_minutes("gpu")
    assert found.groups() == (f"{low:.0f}", f"{high:.0f}", f"{tokens / 1e6:.0f}",
                              f"{colab.T4_MFU[0]:.0%}"[:-1], f"{colab.T4_MFU[1]:.0%}"[:-1])
    assert f"On a T4 it runs the `{colab.COLAB_PRESET}` preset, whose figures below were measured" in text
