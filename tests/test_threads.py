"""The CPU thread policy: how torch's threads wait is chosen from the load before torch loads, and overrides win.

The speed behind each choice is measured by bench/thread_policy.py (bench/RESULTS.md, "Threads under load").
"""
import os
import subprocess
import sys

import pytest
import torch

from minillm import threads
from minillm.device import choose_runtime
from minillm.threads import BUSY_CORES, choose_wait, measure_busy, requested_threads


@pytest.mark.parametrize("used, cpus, env, passive", [
    (0.2, 2, {}, False),                                   # quiet: OpenMP's default (spinning) is fastest
    (BUSY_CORES - 0.01, 2, {}, False),
    (BUSY_CORES, 2, {}, True),                             # half a core taken from torch's two threads: sleep
    (1.3, 2, {"MINILLM_THREADS": "1"}, False),             # one thread leaves a core free for the other program
    (1 + BUSY_CORES, 2, {"MINILLM_THREADS": "1"}, True),
    (1.3, 8, {"MINILLM_THREADS": "4"}, False),
    (4.6, 8, {"MINILLM_THREADS": "4"}, True),
])
def test_waiting_threads_sleep_only_when_other_programs_use_the_cores_torch_needs(used, cpus, env, passive):
    policy = choose_wait(env, (used, "in the last 0.2 s"), cpus, torch_loaded=False)
    assert policy.passive is passive
    threads = env.get("MINILLM_THREADS", cpus)
    assert policy.reason.startswith(f"other programs used {used:.2f} of {cpus} CPUs in the last 0.2 s, torch uses "
                                    f"{threads}, so ")


def test_the_users_wait_policy_is_kept_and_minillms_own_is_decided_again():
    assert choose_wait({"OMP_WAIT_POLICY": "active"}, (5.0, "load average"), 2, False) == threads.WaitPolicy(False, "OMP_WAIT_POLICY=ACTIVE as set")
    assert choose_wait({"OMP_WAIT_POLICY": "PASSIVE"}, (0.0, "load average"), 2, False).passive
    # a PASSIVE that minillm set in a parent process (a notebook kernel inherits it) is not the user's
    assert not choose_wait({"OMP_WAIT_POLICY": "PASSIVE", "MINILLM_WAIT_CHOSEN": "1"}, (0.1, "load average"), 2,
                           False).passive


def test_too_late_or_no_load_average_keeps_openmps_default_and_says_why():
    late = choose_wait({}, (5.0, "load average"), 2, torch_loaded=True)
    assert not late.passive and late.reason.startswith("torch was imported before minillm, too late to choose")
    windows = choose_wait({}, None, 2, torch_loaded=False)
    assert not windows.passive and windows.reason.startswith("this system does not say how busy its CPUs are")


def test_a_bad_thread_count_is_one_line():
    assert requested_threads({}) is None and requested_threads({"MINILLM_THREADS": " 3 "}) == 3
    for bad in ("0", "two", "-1", "1.5"):
        with pytest.raises(ValueError) as e:
            requested_threads({"MINILLM_THREADS": bad})
        assert str(e.value) == (f"MINILLM_THREADS={bad!r} is not a positive whole number: set it to a thread "
                                "count, e.g. 1 or 2, or unset it")


def test_a_busy_core_is_measured_and_what_ended_before_is_not():
    cpus = os.cpu_count()
    quiet, how = measure_busy(cpus)
    assert how == "in the last 0.2 s" and 0 <= quiet <= cpus
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        import time
        time.sleep(0.5)
        used, _ = measure_busy(cpus)
    finally:
        busy.kill()
        busy.wait()
    assert used >= 0.8  # one process spinning is one core (what else runs here only adds)


def _fresh(code: str, used: float, **env) -> str:
    """Run code in a new interpreter where other programs seem to use `used` cores; its stdout, stripped."""
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "MINILLM_WAIT_CHOSEN", "MINILLM_THREADS")}
    fake = (f"import minillm.threads as t; t.measure_busy = lambda cpus: ({used}, 'test'); "
            "import os; t.choose_at_import(); ")
    p = subprocess.run([sys.executable, "-c", fake + code], env={**base, **env}, capture_output=True, text=True,
                       check=True)
    return p.stdout.strip()


def test_importing_minillm_sets_the_policy_before_torch_loads_and_only_then():
    show = "import sys; print('torch' in sys.modules, os.environ.get('OMP_WAIT_POLICY'))"
    assert _fresh(show, used=1.5) == "False PASSIVE"
    assert _fresh(show, used=0.1) == "False None"
    assert _fresh(show, used=1.5, OMP_WAIT_POLICY="ACTIVE") == "False ACTIVE"
    assert _fresh(show, used=0.1, OMP_WAIT_POLICY="PASSIVE", MINILLM_WAIT_CHOSEN="1") == "False None"
    late = "import sys, torch, minillm.threads as t; t.measure_busy = lambda cpus: (1.5, 'test'); t.choose_at_import(); "
    p = subprocess.run([sys.executable, "-c", late + "import os; " + show], capture_output=True, text=True, check=True,
                       env={k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "MINILLM_WAIT_CHOSEN")})
    assert p.stdout.strip() == "True None"


def test_the_choice_is_printed_with_the_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(threads, "CHOICE", choose_wait({}, (1.0, "on average in the last minute (load average)"), 2,
                                                       False))
    monkeypatch.setenv("MINILLM_DEVICE", "cpu")
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("MINILLM_THREADS", "2")
        line = choose_runtime().summary()
        assert torch.get_num_threads() == 2 and "\n" not in line
        assert line.endswith("; 2 CPU threads that sleep (OMP_WAIT_POLICY=PASSIVE) while they wait: other programs "
                             "used 1.00 of 2 CPUs on average in the last minute (load average), torch uses 2, so "
                             "other programs are using cores torch needs (OMP_WAIT_POLICY=ACTIVE makes them spin)")
        monkeypatch.setenv("MINILLM_THREADS", "1")
        assert choose_runtime().summary().endswith("; 1 CPU thread") and torch.get_num_threads() == 1
        monkeypatch.setenv("MINILLM_THREADS", "zero")
        with pytest.raises(ValueError, match="MINILLM_THREADS='zero' is not a positive whole number"):
            choose_runtime()
    finally:
        torch.set_num_threads(before)


def test_a_bad_thread_count_stops_the_command_line_before_anything_is_written(tmp_path):
    env = {"MINILLM_THREADS": "0"}
    for args in (["course", "--preset", "smoke", "--out", str(tmp_path / "r")], ["chat", "hi"]):
        p = subprocess.run([sys.executable, "-m", "minillm", *args], cwd=tmp_path, capture_output=True, text=True,
                           env={**os.environ, **env})
        assert (p.returncode, p.stdout, p.stderr) == (
            2, "", "MINILLM_THREADS='0' is not a positive whole number: set it to a thread count, e.g. 1 or 2, or "
                   "unset it\n")
    assert list(tmp_path.iterdir()) == []
