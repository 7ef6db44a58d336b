"""The README's commands work as written: every `python -m minillm ...` line of its ```bash blocks runs,
in order, in a fresh folder (MINILLM_PRESET=smoke, so `course` builds runs/smoke in about a minute); the
install and test lines are the ones CI runs (.ci/run), and `jupyter lab` is installed. The targets it states
are the course's table's (minillm.targets)."""
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

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
    installs = []                       # each install line once, in order; the CPU-index line has its own test
    for c in readme_commands():
        if words(c)[0] == "pip" and "--index-url" not in words(c) and words(c) not in installs:
            installs.append(words(c))
    assert ["pytest"] in [words(c) for c in readme_commands()]
    # CI installs what the README installs (the instructor's extra too, so the grading tests run), then tests
    pinned = ["-c", "constraints.txt"]      # the versions CI tested (tests/test_doctor.py keeps the file current)
    assert ci_commands() == installs + [["pytest"]] == [["pip", "install", "torch==2.13.0"],
                                                         ["pip", "install", "-r", "requirements.txt", *pinned, "-e", "."],
                                                         ["pip", "install", "-e", ".[grading]", *pinned],
                                                         ["pip", "install", "-e", ".[hf]", *pinned], ["pytest"]]


CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def test_the_cpu_only_linux_line_installs_the_tested_torch_from_pytorchs_cpu_index():
    """Run as written but as a dry run (it never replaces the torch installed here; with CI's torch pip has
    nothing to do); then, where PyTorch's index can be reached (not from CI), that it serves this torch's
    CPU wheel for every supported Python on Linux."""
    import urllib.request
    from minillm import doctor

    lines = [c for c in readme_commands() if "--index-url" in words(c)]
    torch = doctor.tested_versions(ROOT / "constraints.txt")["torch"]
    assert [words(c) for c in lines] == [["pip", "install", f"torch=={torch}", "--index-url", CPU_INDEX]]
    p = subprocess.run([sys.executable, "-m", *words(lines[0]), "--dry-run", "--no-deps"], capture_output=True,
                       text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    try:
        page = urllib.request.urlopen(f"{CPU_INDEX}/torch/", timeout=20).read().decode()
    except OSError:
        pytest.skip(f"{CPU_INDEX} cannot be reached from here: which wheels it serves is not checked")
    for py in ("311", "312", "313", "314"):
        assert re.search(rf"torch-{re.escape(torch)}%2Bcpu-cp{py}-cp{py}-manylinux[^\"]*x86_64\.whl|"
                         rf"torch-{re.escape(torch)}\+cpu-cp{py}-cp{py}-manylinux[^\"]*x86_64\.whl", page), py


def test_jupyter_line_opens_the_notebooks():
    jupyter = [c for c in readme_commands() if words(c)[0] == "jupyter"]
    assert jupyter == ["jupyter lab notebooks/"] and (ROOT / "notebooks").is_dir()
    p = subprocess.run("jupyter lab --version", shell=True, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr


def test_every_minillm_and_bench_command_runs_as_written(tmp_path):
    commands = [c for c in readme_commands()
                if words(c)[:3] == ["python", "-m", "minillm"] or words(c)[:2] == ["python", "bench/course.py"]]
    assert [words(c)[3] if words(c)[1] == "-m" else words(c)[1] for c in commands] == [
        "doctor", "course", "chat", "chat", "chat", "bench/course.py", "export", "export", "course"]
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
    for name in ("base", "assistant"):   # the exports, with their model cards
        assert (tmp_path / "release" / name / "model.safetensors").exists()
        assert (tmp_path / "release" / name / "README.md").exists()


def test_the_targets_it_states_are_the_course_table():
    from minillm.targets import SEED_SLACK, target
    from minillm.config import get_preset

    def bound(key, scope="course"):
        t = target(key, scope)
        return f"{'≥' if t.op == '>=' else '≤'} {t.bound:.0%}"

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in readme.splitlines() if line.startswith("| ")]

    def target_cell(first_words):          # the last cell of the one table row that starts with these words
        found = [r[-1] for r in rows if r[0].startswith(first_words)]
        assert len(found) == 1, f"README: {len(found)} table rows start with {first_words!r}"
        return found[0]

    assert target_cell("answers a factual question") == (f"base {bound('base_answer_rate')}, "
                                                         f"assistant {bound('assistant_answer_rate')}")
    assert target_cell("right about held-out people") == bound("heldout_accuracy")
    assert target_cell("the same people asked in phrasing families") == bound("heldout_unseen_phrasing_accuracy")
    assert target_cell("the same people, pronoun follow-ups") == bound("heldout_follow_up_accuracy")
    assert target_cell("the same people, a standard question after small talk") == bound("heldout_after_greeting_accuracy")
    assert target_cell("out-of-scope requests get the guideline's answer") == bound("scope_answer_rate")
    assert target_cell("real held-out people turned away") == bound("heldout_refused_rate")
    assert target_cell("\"I don't know\" to people who don't exist") == "the `gpu` preset's target"
    assert target("unknown_entity_idk_rate", "gpu").bound          # the table has the target that row names
    assert target_cell("one biography per person") == (f"{bound('heldout_accuracy', 'augment1')} while "
                                                       f"{bound('base_stored_accuracy', 'augment1')} stored")
    assert target_cell("whole course") == f"≤ {get_preset('cpu').expected_minutes:g} min"
    assert target_cell("`gpu`") == f"target ≤ {get_preset('gpu').expected_minutes:g} min (not yet measured)"
    text = " ".join(readme.split())
    assert f"no seed is more than {round(100 * SEED_SLACK)} points short" in text
    not_reached = {"held-out accuracy": "heldout_accuracy", "unseen phrasings": "heldout_unseen_phrasing_accuracy",
                   "pronoun follow-ups": "heldout_follow_up_accuracy",
                   "questions after small talk": "heldout_after_greeting_accuracy",
                   "the out-of-scope fix": "scope_answer_rate"}
    sentence = re.search(r"Targets not reached yet: (.*?)\. [A-Z]", text).group(1)
    stated = re.findall(r"(%s) \([\d.]+%%, target (\d+%%)" % "|".join(not_reached), sentence)
    assert len(stated) == sentence.count("target"), sentence
    assert all(f"{target(not_reached[name]).bound:.0%}" == bound_ for name, bound_ in stated), stated


def test_the_layout_names_every_module_of_the_package():
    """The Layout section lists each module with one line, so a newcomer finds every idea's owner."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    layout = text[text.index("## Layout"):]
    layout = layout[:layout.index("\n## ") if "\n## " in layout else len(layout)]
    modules = {p.name for p in (ROOT / "minillm").rglob("*.py") if not p.name.startswith("_") or p.name == "__main__.py"}
    missing = sorted(m for m in modules if not re.search(rf"\b{re.escape(m)}\b", layout))
    assert not missing, f"README's Layout section does not name {missing}"


def test_the_torchrun_commands_run_as_written(tmp_path):
    """The single-machine line, then the two-machine lines, both at once on this machine (MASTER=localhost):
    each a smoke course on 2 processes that writes one report."""
    commands = [c for c in readme_commands() if words(c)[0] == "torchrun"]
    assert len(commands) == 3 and "--standalone" in commands[0]
    env = {**os.environ, "MINILLM_PRESET": "smoke", "MASTER": "localhost", "OMP_NUM_THREADS": "1"}
    p = subprocess.run(commands[0], shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1200)
    assert p.returncode == 0 and p.stdout.count("report: ") == 1, p.stderr[-3000:]
    assert (tmp_path / "runs" / "smoke" / "metrics.json").exists()
    nodes = [subprocess.Popen(c, shell=True, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for c in commands[1:]]
    outs = [node.communicate(timeout=1200) for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], [err[-2000:] for _, err in outs]
    assert sum(out.count("report: ") for out, _ in outs) == 1
    assert (tmp_path / "runs" / "two-nodes" / "metrics.json").exists()
