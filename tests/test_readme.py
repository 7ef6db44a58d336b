"""The README's commands work as written: every `python -m minillm ...` line of its ```bash blocks runs,
in order, in a fresh folder (MINILLM_PRESET=smoke, so `course` builds runs/smoke in about a minute); the
install and test lines are the ones CI runs (.ci/run), and `jupyter lab` is installed."""
import os
import re
import shlex
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    """The commands of README.md's ```bash blocks, in order: one per line or per `&&`, as written."""
    blocks = re.findall(r"^```bash\n(.*?)^```", (ROOT / "README.md").read_text(), flags=re.S | re.M)
    lines = [line.strip() for block in blocks for line in block.splitlines()]
    return [cmd.strip() for line in lines if line and not line.startswith("#") for cmd in line.split("&&")]


def words(cmd: str) -> list[str]:
    """A command's words, without its comment; `python -m pip` is `pip` (CI runs the module form)."""
    w = shlex.split(cmd, comments=True)
    return w[2:] if w[:2] == ["python", "-m"] and w[2:3] != ["minillm"] else w


def ci_commands() -> list[list[str]]:
    """What .ci/run runs, besides its shell setup."""
    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    return [words(line) for line in lines if line and not line.startswith(("#", "set ", "cd "))]


def test_install_and_test_lines_are_what_ci_runs():
    installs = [words(c) for c in readme_commands() if words(c)[0] == "pip"]
    assert ["pytest"] in [words(c) for c in readme_commands()]
    # CI installs what the README installs (the instructor's extra too, so the grading tests run), then tests
    assert ci_commands() == installs + [["pytest"]] == [["pip", "install", "torch==2.13.0"],
                                                         ["pip", "install", "-r", "requirements.txt", "-e", "."],
                                                         ["pip", "install", "-e", ".[grading]"], ["pytest"]]


def test_jupyter_line_opens_the_notebooks():
    jupyter = [c for c in readme_commands() if words(c)[0] == "jupyter"]
    assert jupyter == ["jupyter lab notebooks/"] and (ROOT / "notebooks").is_dir()
    p = subprocess.run("jupyter lab --version", shell=True, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr


def test_every_minillm_and_bench_command_runs_as_written(tmp_path):
    commands = [c for c in readme_commands()
                if words(c)[:3] == ["python", "-m", "minillm"] or words(c)[:2] == ["python", "bench/course.py"]]
    assert [words(c)[3] if words(c)[1] == "-m" else words(c)[1] for c in commands] == [
        "course", "chat", "chat", "chat", "bench/course.py", "course"]
    (tmp_path / "bench").symlink_to(ROOT / "bench")      # the bench scripts, as in a checkout
    env = {**os.environ, "MINILLM_PRESET": "smoke"}
    for cmd in commands:   # in order: the chats talk to what `course` made
        p = subprocess.run(cmd, shell=True, cwd=tmp_path, env=env, input="Hello!\n\n", capture_output=True,
                           text=True, timeout=1800)
        assert p.returncode == 0, f"{cmd}\n{p.stderr[-2000:]}"
        if words(cmd)[3:4] == ["chat"]:
            reply = p.stdout.replace("you> ", "").replace("assistant> ", "").strip()
            assert reply and "<|" not in p.stdout, f"{cmd}\n{p.stdout}\n{p.stderr}"
        if "bench/course.py" in cmd:    # the three-seed table: every target with its verdict
            assert "seed 0   seed 1   seed 2" in p.stdout and "heldout_unseen_phrasing_accuracy" in p.stdout
    assert (tmp_path / "runs" / "smoke" / "assistant" / "config.json").exists()
    assert (tmp_path / "runs" / "smoke-augment1" / "metrics.json").exists()
