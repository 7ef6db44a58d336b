"""How torch's CPU threads wait for each other, chosen when minillm is imported, before torch loads.

Whether a waiting thread spins or sleeps (OMP_WAIT_POLICY), from how busy the machine is; minillm.device applies
the thread count (MINILLM_THREADS) and prints what was chosen. This module must not import torch.
"""
import os
import sys
from dataclasses import dataclass

# A CPU step runs on a team of OpenMP threads, one per core, that meet at the end of every operation.
# By default a thread that arrives first spins (keeps its core busy checking) rather than sleeping: on a
# quiet machine that saves the cost of waking up, but when another program holds one of the cores the
# thread that lost it holds up the whole team while the others burn their cores spinning. Measured on
# 2 cores (bench/thread_policy.py, pretraining steps/s, quiet -> one busy core):
#
#     2 threads, spinning (OpenMP's default)     2.17 -> 0.82
#     2 threads, OMP_WAIT_POLICY=PASSIVE          2.09 -> 1.22   (a waiting thread sleeps)
#     1 thread                                    1.14 -> 1.20

BUSY_CORES = 0.5  # others using at least half a core that torch's threads need: sleep instead of spinning
WINDOW_S = 0.2  # how long the measurement looks (psutil.cpu_percent over this many seconds)
_AUTO = "MINILLM_WAIT_CHOSEN"  # marks an OMP_WAIT_POLICY set by minillm (children re-decide; a user's is kept)


@dataclass(frozen=True)
class WaitPolicy:
    passive: bool  # True: waiting threads sleep (OMP_WAIT_POLICY=PASSIVE)
    reason: str  # why, in words

    def describe(self) -> str:
        """How the threads wait and why, to follow "2 CPU threads" in one line."""
        return f"that {'sleep (OMP_WAIT_POLICY=PASSIVE)' if self.passive else 'spin'} while they wait: {self.reason}"


def requested_threads(env=os.environ) -> int | None:
    """MINILLM_THREADS as a positive int, None when unset; a one-line ValueError for anything else.

    MINILLM_THREADS=N is torch's CPU thread count (applied by device.choose_runtime); it always wins."""
    value = env.get("MINILLM_THREADS", "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"MINILLM_THREADS={value!r} is not a positive whole number: set it to a thread count, e.g. 1 or 2, or unset it")
    return int(value)


def choose_wait(env, busy: tuple[float, str] | None, cpus: int, torch_loaded: bool) -> WaitPolicy:
    """The wait policy for a machine state: `busy` is (cores others use, over which time), or None where
    the system cannot tell. Pure: the caller reads the environment and the machine.

    Neither wait wins in both columns of the measurement above, so minillm looks at the machine when it is
    imported: if other programs are using at least `BUSY_CORES` of the cores torch's threads need, waiting
    threads sleep (PASSIVE); otherwise OpenMP's default stays. OMP_WAIT_POLICY=ACTIVE|PASSIVE, OpenMP's own
    variable, read when torch loads, always wins."""
    asked = env.get("OMP_WAIT_POLICY", "").strip().upper()
    if asked and not env.get(_AUTO):
        return WaitPolicy(asked == "PASSIVE", f"OMP_WAIT_POLICY={asked} as set")
    if torch_loaded:
        return WaitPolicy(asked == "PASSIVE", "torch was imported before minillm, too late to choose "
                                              "(import minillm first, or set OMP_WAIT_POLICY)")
    if busy is None:
        return WaitPolicy(False, "this system does not say how busy its CPUs are (set OMP_WAIT_POLICY=PASSIVE "
                                 "if other programs keep them busy)")
    try:
        threads = requested_threads(env) or cpus
    except ValueError:
        threads = cpus  # choose_runtime reports the bad value; here it only sizes the free cores
    used, when = busy
    what = f"other programs used {used:.2f} of {cpus} CPUs {when}, torch uses {threads}"
    if used >= max(cpus - threads, 0) + BUSY_CORES:
        return WaitPolicy(True, f"{what}, so other programs are using cores torch needs "
                                "(OMP_WAIT_POLICY=ACTIVE makes them spin)")
    return WaitPolicy(False, f"{what}, so the cores are free (OMP_WAIT_POLICY=PASSIVE makes them sleep)")


def measure_busy(cpus: int) -> tuple[float, str] | None:
    """How many cores other programs use now: (cores, over which time), or None where the system cannot say.

    How busy the machine is: the CPU time others used over the `WINDOW_S` just before the choice (psutil, on
    Linux, macOS and Windows alike), so a job that has just ended (the install before a course, the previous
    notebook's kernel) does not count. A program started after the choice is not seen, and in a container the
    figure may be the host's."""
    try:
        import psutil
        percent = psutil.cpu_percent(interval=WINDOW_S)  # this process sleeps meanwhile: what is used is others'
    except (ImportError, OSError, RuntimeError):  # psutil missing, or a system it cannot read
        return None
    return cpus * percent / 100, f"in the last {WINDOW_S:g} s"


CHOICE: WaitPolicy | None = None  # what choose_at_import chose; device.Runtime.summary prints it


def choose_at_import() -> WaitPolicy:
    """Read the machine and set OMP_WAIT_POLICY for torch to read when it loads (called by minillm/__init__).

    OpenMP reads OMP_WAIT_POLICY once, when torch loads, so the choice is made here, before `import torch`, and
    is left alone if torch was loaded first. What was chosen, and why, is printed once with the device
    (`Runtime.summary()`)."""
    global CHOICE
    cpus, torch_loaded = os.cpu_count() or 1, "torch" in sys.modules
    mine = os.environ.get(_AUTO) or not os.environ.get("OMP_WAIT_POLICY")  # nothing the user set
    busy = measure_busy(cpus) if mine and not torch_loaded else None
    CHOICE = choose_wait(os.environ, busy, cpus, torch_loaded)
    if mine and not torch_loaded:
        if CHOICE.passive:
            os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
            os.environ[_AUTO] = "1"
        else:
            os.environ.pop("OMP_WAIT_POLICY", None)
            os.environ.pop(_AUTO, None)
    return CHOICE
