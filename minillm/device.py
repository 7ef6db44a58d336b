"""Where the model runs and in which precision, chosen once and explained in one line.

The same notebooks run on a laptop CPU, an Apple laptop (MPS), a Colab T4 and an A100/H100: `choose_runtime()`
picks the device and precision, and the Runtime it returns is what the training loop (minillm.train) computes
with; `peak_flops` gives the peak that training's MFU is measured against. How torch's CPU threads wait is
minillm.threads' choice; which GPU each of several processes takes comes from minillm.distributed.
"""
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass

import torch

from minillm import threads
from minillm.distributed import launched

PRECISIONS = ("bf16", "fp16", "fp32")
DEVICES = ("cpu", "cuda", "mps")  # "cuda:N" is accepted too; "auto" means choose
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


@dataclass
class Runtime:
    device: torch.device
    precision: str  # "bf16" | "fp16" | "fp32"
    reason: str  # why this device and precision were picked, in words

    @property
    def device_type(self) -> str:
        return self.device.type

    @property
    def dtype(self) -> torch.dtype:
        return _DTYPES[self.precision]

    def autocast(self):
        """Context for forward passes: mixed precision where chosen, a no-op for fp32."""
        if self.precision == "fp32":
            return nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=self.dtype)

    def make_scaler(self) -> torch.amp.GradScaler:
        """Loss scaler: only fp16 needs one (bf16 and fp32 have fp32's exponent range)."""
        enabled = self.precision == "fp16"
        return torch.amp.GradScaler(self.device_type if enabled else "cpu", enabled=enabled)

    def _name(self) -> str:
        if self.device_type == "cuda" and torch.cuda.is_available():
            return f"cuda ({torch.cuda.get_device_name(self.device)})"
        return self.device_type

    def brief(self) -> str:
        """"cpu, fp32": the device and precision, for a line that only needs to say where a model runs."""
        return f"{self._name()}, {self.precision}"

    def summary(self) -> str:
        """The device and precision with why they were chosen, and how the CPU threads wait (notebook 00, the doctor)."""
        line = f"device={self._name()}, precision={self.precision}: {self.reason}"
        if self.device_type == "cpu" and threads.CHOICE is not None:  # on a GPU the CPU threads barely matter
            n = torch.get_num_threads()
            line += f"; {n} CPU threads {threads.CHOICE.describe()}" if n > 1 else "; 1 CPU thread"
        return line


def apply_thread_count() -> None:
    """MINILLM_THREADS, when set, as torch's CPU thread count (a ValueError names a bad value); threads.py says how
    the threads wait."""
    n = threads.requested_threads()
    if n is not None:
        torch.set_num_threads(n)


NATIVE_BF16_CAPABILITY = (8, 0)  # Ampere: the first NVIDIA GPUs whose tensor cores compute bf16


def _cuda_capability(device: torch.device) -> tuple[int, int] | None:
    try:
        return tuple(torch.cuda.get_device_capability(device))
    except Exception:  # some builds raise instead of answering on odd drivers
        return None


def _cuda_native_bf16(device: torch.device) -> tuple[bool, str]:
    """Whether this GPU computes bf16 natively, and why, in words.

    Not torch.cuda.is_bf16_supported(): by default (including_emulation=True) it also says yes below
    compute capability 8 whenever a bf16 tensor can be created there, and a T4 or V100 then runs bf16
    matmuls emulated, slower than fp16 on its tensor cores. ROCm GPUs all have bf16."""
    if torch.version.hip:
        return True, "a ROCm GPU: bf16 is native"
    cap = _cuda_capability(device)
    if cap is None:
        return False, "torch could not read this GPU's compute capability"
    have = ".".join(map(str, cap))
    if cap >= NATIVE_BF16_CAPABILITY:
        return True, f"compute capability {have} >= 8.0: the tensor cores compute bf16"
    return False, f"compute capability {have} < 8.0: bf16 would only be emulated, slowly"


def _mps_available() -> bool:
    return hasattr(torch.backends, "mps") and torch.backends.mps.is_available()


def choose_runtime(device: str | None = None, precision: str | None = None) -> Runtime:
    """Pick device and precision: argument, else MINILLM_DEVICE / MINILLM_PRECISION, else automatic.

    Automatic is the best device present (cuda > mps > cpu) and the precision that is fast *and* safe on it
    (_choose_precision). Anything can be overridden by argument or by the environment variables MINILLM_DEVICE
    and MINILLM_PRECISION (argument wins); MINILLM_THREADS sets torch's CPU thread count (apply_thread_count).
    """
    apply_thread_count()
    device, why_device = _choose_device(_setting(device, "MINILLM_DEVICE"))
    dev = torch.device(device)
    precision, why_precision = _choose_precision(dev, _setting(precision, "MINILLM_PRECISION"))
    return Runtime(dev, precision, f"{why_device}; {why_precision}")


def _setting(value: str | None, variable: str) -> str | None:
    """The argument, else the environment variable; lower-cased, None for unset or "auto"."""
    value = value or os.environ.get(variable) or None
    value = value.strip().lower() if value else None
    return None if value == "auto" else value


def _choose_device(device: str | None) -> tuple[str, str]:
    """(device, why): the one asked for, checked to exist here, else the best one found; under torchrun, one GPU
    per process."""
    if device is not None:
        kind = device.split(":")[0]
        if kind not in DEVICES or (":" in device and (kind != "cuda" or not device.split(":")[1].isdigit())):
            raise ValueError(
                f"unknown device {device!r} (from the argument or MINILLM_DEVICE); "
                f"valid: {', '.join(DEVICES)}, cuda:N or auto"
            )
        if kind == "cuda" and not torch.cuda.is_available():
            raise ValueError(
                f"device {device!r} was asked for but torch sees no CUDA GPU "
                f"(torch {torch.__version__}, CUDA build: {torch.version.cuda}); "
                "install a CUDA build of torch, or unset MINILLM_DEVICE / pass device='auto' to use what is here"
            )
        if kind == "mps" and not _mps_available():
            raise ValueError(
                "device 'mps' was asked for but MPS is not available on this machine; "
                "unset MINILLM_DEVICE or pass device='auto'"
            )
        why_device = f"{kind} as asked"
    elif torch.cuda.is_available():
        device, why_device = "cuda", "CUDA GPU found"
    elif _mps_available():
        device, why_device = "mps", "Apple GPU (MPS) found, no CUDA"
    else:
        device, why_device = "cpu", "no GPU found"
    processes, rank, local_rank = launched()
    if device == "cuda" and processes > 1:   # torchrun: one GPU per process
        device = f"cuda:{local_rank}"
        why_device += f", {device} for process {rank} of {processes}"
    return device, why_device


def _choose_precision(dev: torch.device, precision: str | None) -> tuple[str, str]:
    """(precision, why): the one asked for, checked against the device, else the device's best:

        CUDA, compute capability >= 8       bf16 autocast        same exponent range as fp32: no loss scaling
          (Ampere and newer), or ROCm
        CUDA below 8 (T4 7.5, V100 7.0)     fp16 autocast + GradScaler   bf16 is only emulated there (slow); fp16
                                                                   overflows/underflows, so the scaler multiplies
                                                                   the loss and small gradients survive
        MPS                                  fp32                 older torch releases gave wrong losses on MPS:
                                                                   trust it only once the loss is seen to fall
        CPU                                  fp32                 bf16 autocast on a CPU without native bf16 is
                                                                   ~9x slower here; ask for it explicitly if
                                                                   yours has it
    """
    if precision is not None:
        if precision not in PRECISIONS:
            raise ValueError(
                f"unknown precision {precision!r} (from the argument or MINILLM_PRECISION); "
                f"valid: {', '.join(PRECISIONS)} or auto"
            )
        if dev.type == "cuda" and precision == "bf16":
            native, why = _cuda_native_bf16(dev)
            if not native:
                raise ValueError(f"precision 'bf16' was asked for but this GPU has no native bf16 ({why}); "
                                 "use 'fp16' (with loss scaling) or 'fp32'")
        why_precision = f"{precision} as asked"
        if dev.type == "cpu" and precision != "fp32":
            why_precision += " (on a CPU without native bf16/fp16 this is much slower than fp32)"
        if dev.type == "mps":
            why_precision += "; check the loss falls before trusting MPS"
        return precision, why_precision
    if dev.type == "cuda":
        native, why = _cuda_native_bf16(dev)
        if native:
            return "bf16", f"bf16 autocast ({why}; fp32's range, so no loss scaling)"
        return "fp16", f"fp16 autocast + GradScaler ({why}; the scaler keeps fp16's small gradients from vanishing)"
    if dev.type == "mps":
        return "fp32", "fp32; MPS has given wrong losses with some torch releases, so trust it only once the loss is seen to fall"
    return "fp32", "fp32 (bf16 autocast on a CPU without native bf16 is ~9x slower; ask for it if yours has it)"


# Dense (no sparsity) peak FLOP/s from the vendors' datasheets, per precision. "fp32" on tensor-core
# GPUs is the TF32 figure, which is what torch uses for fp32 matmuls when TF32 is allowed.
# Matched on torch.cuda.get_device_name(); the more specific names come first ("A100" before "A10").
_GPU_PEAKS = [
    # name substring     bf16      fp16      tf32      fp32 (no TF32)
    ("H100 PCIe", (756e12, 756e12, 378e12, 51e12)),
    ("H100", (989e12, 989e12, 495e12, 67e12)),  # SXM
    ("H200", (989e12, 989e12, 495e12, 67e12)),
    ("A100", (312e12, 312e12, 156e12, 19.5e12)),
    ("A10G", (70e12, 70e12, 35e12, 31.2e12)),
    ("A10", (125e12, 125e12, 62.5e12, 31.2e12)),
    ("L4", (121e12, 121e12, 60e12, 30.3e12)),
    ("T4", (None, 65e12, None, 8.1e12)),
    ("V100", (None, 125e12, None, 15.7e12)),
    ("RTX 4090", (165e12, 165e12, 82.6e12, 82.6e12)),  # fp32-accumulate tensor rate
    ("RTX 3090", (71e12, 71e12, 35.6e12, 35.6e12)),
]


def gpu_peak_flops(device_name: str, precision: str, tf32: bool = True) -> float | None:
    """Datasheet peak for a GPU name (as torch.cuda.get_device_name returns it), or None if unknown."""
    for key, (bf16, fp16, tf32_peak, fp32) in _GPU_PEAKS:
        if key.lower() in device_name.lower():
            if precision == "bf16":
                return bf16
            if precision == "fp16":
                return fp16
            return tf32_peak if tf32 and tf32_peak else fp32
    return None


def training_gpu_hours(n_params: float, n_tokens: float, peak_flops: float, mfu: float) -> float:
    """GPU-hours to train N parameters on D tokens: 6·N·D FLOPs, done at `mfu` (the share of the peak that
    does useful work) of one GPU's `peak_flops` per second."""
    return 6 * n_params * n_tokens / (peak_flops * mfu) / 3600


def peak_flops(runtime: Runtime) -> float | None:
    """Peak FLOP/s of the runtime's device at its precision; None when unknown (CPU, MPS, unlisted GPUs).

    It knows the dense tensor-core peaks of common GPUs, so training can report MFU (model FLOPs utilisation);
    on a CPU there is no honest datasheet number, so `measure_matmul_flops` times a large matmul instead and
    that serves as the peak."""
    if runtime.device_type != "cuda" or not torch.cuda.is_available():
        return None
    tf32 = torch.backends.cuda.matmul.allow_tf32
    return gpu_peak_flops(torch.cuda.get_device_name(runtime.device), runtime.precision, tf32)


def _sync(device: torch.device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def measure_matmul_flops(device="cpu", n: int = 2048, dtype=torch.float32, repeats: int = 5) -> float:
    """FLOP/s of an n x n by n x n matmul (2·n³ FLOPs), best of `repeats` after a warm-up.

    On a CPU this is the honest "peak" to measure MFU against: what this machine's BLAS reaches on a
    large, well-shaped matmul with the threads torch uses.
    """
    device = torch.device(device)
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=g).to(device, dtype)
    b = torch.randn(n, n, generator=g).to(device, dtype)
    return 2 * n**3 / best_seconds(lambda: a @ b, device, repeats)


def best_seconds(fn, device="cpu", repeats: int = 5) -> float:
    """The fastest of `repeats` calls of fn(), after one warm-up call (thread pools, kernel selection, GPU
    clocks), each timed to the moment the device has finished its work (CUDA and MPS run asynchronously).
    The fastest, not the mean: on a shared machine the slow calls measure the neighbours."""
    device = torch.device(device)
    fn()
    _sync(device)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return best
