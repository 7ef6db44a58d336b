"""Device and precision choice: CPU defaults, overrides, errors, and the CUDA branches with injected capabilities."""
import contextlib

import pytest
import torch

from minillm import device as dev
from minillm.device import Runtime, choose_runtime, gpu_peak_flops, measure_matmul_flops, peak_flops


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    monkeypatch.delenv("MINILLM_DEVICE", raising=False)
    monkeypatch.delenv("MINILLM_PRECISION", raising=False)


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(dev, "_mps_available", lambda: False)


def fake_cuda(monkeypatch, capability=(8, 0)):
    """A CUDA GPU of this compute capability, faked below torch's own is_bf16_supported and
    get_device_capability, so both run their real code: on every such device a bf16 tensor can be
    created, as on a real T4, so is_bf16_supported() (including_emulation=True) says yes even below 8."""
    class Properties:
        major, minor = capability
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda *a, **k: Properties())
    monkeypatch.setattr(torch.cuda, "_check_bf16_tensor_supported", lambda *a, **k: True)


def test_default_is_cpu_fp32(no_gpu):
    rt = choose_runtime()
    assert rt.device == torch.device("cpu")
    assert rt.device_type == "cpu"
    assert rt.precision == "fp32"
    assert rt.dtype == torch.float32
    line = rt.summary()
    assert "\n" not in line and "cpu" in line and "fp32" in line and "no GPU" in line
    assert rt.brief() == "cpu, fp32"


def test_fp32_autocast_is_noop_and_scaler_disabled(no_gpu):
    rt = choose_runtime()
    assert isinstance(rt.autocast(), contextlib.nullcontext)
    with rt.autocast():
        y = torch.ones(4, 4) @ torch.ones(4, 4)
    assert y.dtype == torch.float32
    assert not rt.make_scaler().is_enabled()


def test_cpu_bf16_only_when_asked(no_gpu):
    rt = choose_runtime(precision="bf16")
    assert rt.precision == "bf16" and "as asked" in rt.reason and "slower" in rt.reason
    with rt.autocast():
        y = torch.ones(4, 4) @ torch.ones(4, 4)
    assert y.dtype == torch.bfloat16
    assert not rt.make_scaler().is_enabled()


def test_env_override(no_gpu, monkeypatch):
    monkeypatch.setenv("MINILLM_PRECISION", "bf16")
    monkeypatch.setenv("MINILLM_DEVICE", "cpu")
    rt = choose_runtime()
    assert (rt.device_type, rt.precision) == ("cpu", "bf16")
    # the argument wins over the environment
    assert choose_runtime(precision="fp32").precision == "fp32"
    monkeypatch.setenv("MINILLM_DEVICE", "auto")
    assert choose_runtime().device_type == "cpu"


def test_bad_values_list_valid_ones(no_gpu, monkeypatch):
    with pytest.raises(ValueError, match=r"unknown device 'tpu'.*valid: cpu, cuda, mps, cuda:N or auto"):
        choose_runtime(device="tpu")
    with pytest.raises(ValueError, match=r"unknown precision 'fp8'.*valid: bf16, fp16, fp32 or auto"):
        choose_runtime(precision="fp8")
    monkeypatch.setenv("MINILLM_PRECISION", "half")
    with pytest.raises(ValueError, match=r"unknown precision 'half' \(from the argument or MINILLM_PRECISION\)"):
        choose_runtime()


def test_cuda_asked_without_cuda(no_gpu):
    with pytest.raises(ValueError, match=r"device 'cuda' was asked for but torch sees no CUDA GPU"):
        choose_runtime(device="cuda")
    with pytest.raises(ValueError, match=r"device 'mps' was asked for but MPS is not available"):
        choose_runtime(device="mps")


@pytest.mark.parametrize("capability", [(8, 0), (8, 6), (9, 0)])   # A100, RTX 3090 / A10, H100
def test_cuda_with_native_bf16_picks_bf16(monkeypatch, capability):
    fake_cuda(monkeypatch, capability)
    rt = choose_runtime()
    assert (rt.device_type, rt.precision, rt.dtype) == ("cuda", "bf16", torch.bfloat16)
    assert f"compute capability {capability[0]}.{capability[1]} >= 8.0" in rt.reason
    assert not rt.make_scaler().is_enabled()  # bf16 has fp32's range: no loss scaling


@pytest.mark.parametrize("capability", [(7, 5), (7, 0), (6, 1)])   # T4, V100, P4 / GTX 1080
def test_cuda_below_capability_8_picks_fp16_with_scaler(monkeypatch, capability):
    fake_cuda(monkeypatch, capability)
    assert torch.cuda.is_bf16_supported()  # torch's own answer counts emulation: the trap this choice avoids
    assert not torch.cuda.is_bf16_supported(including_emulation=False)
    rt = choose_runtime()
    assert (rt.device_type, rt.precision, rt.dtype) == ("cuda", "fp16", torch.float16)
    have = f"{capability[0]}.{capability[1]}"
    assert f"fp16 autocast + GradScaler (compute capability {have} < 8.0: bf16 would only be emulated" in rt.reason
    assert rt.make_scaler().is_enabled()  # fp16 needs loss scaling
    with pytest.raises(ValueError, match=rf"precision 'bf16' was asked for but this GPU has no native bf16 "
                                         rf"\(compute capability {have} < 8.0"):
        choose_runtime(precision="bf16")
    assert choose_runtime(precision="fp32").precision == "fp32"


def test_rocm_has_bf16(monkeypatch):
    fake_cuda(monkeypatch, (7, 0))
    monkeypatch.setattr(torch.version, "hip", "6.2")
    rt = choose_runtime()
    assert rt.precision == "bf16" and "ROCm" in rt.reason


def test_cuda_index_and_mps(monkeypatch):
    fake_cuda(monkeypatch)
    assert choose_runtime(device="cuda:1").device == torch.device("cuda", 1)
    with pytest.raises(ValueError, match="unknown device 'cuda:x'"):
        choose_runtime(device="cuda:x")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(dev, "_mps_available", lambda: True)
    rt = choose_runtime()
    assert (rt.device_type, rt.precision) == ("mps", "fp32")
    assert "loss is seen to fall" in rt.reason


def test_peak_flops_table():
    assert gpu_peak_flops("NVIDIA A100-SXM4-80GB", "bf16") == 312e12
    assert gpu_peak_flops("NVIDIA A100-PCIE-40GB", "fp32") == 156e12  # TF32
    assert gpu_peak_flops("NVIDIA A10G", "bf16") == 70e12  # not mistaken for A100 or A10
    assert gpu_peak_flops("NVIDIA H100 80GB HBM3", "bf16") == 989e12
    assert gpu_peak_flops("NVIDIA H100 PCIe", "bf16") == 756e12
    assert gpu_peak_flops("NVIDIA H200", "bf16") == 989e12
    assert gpu_peak_flops("Tesla T4", "fp16") == 65e12
    assert gpu_peak_flops("Tesla T4", "bf16") is None
    assert gpu_peak_flops("Tesla V100-SXM2-16GB", "fp16") == 125e12
    assert gpu_peak_flops("NVIDIA L4", "bf16") == 121e12
    assert gpu_peak_flops("NVIDIA GeForce RTX 4090", "bf16") == 165e12
    assert gpu_peak_flops("NVIDIA GeForce RTX 3090", "fp16") == 71e12
    assert gpu_peak_flops("Some Future GPU", "bf16") is None


def test_peak_flops_runtime(no_gpu, monkeypatch):
    assert peak_flops(choose_runtime()) is None  # CPU: no datasheet number
    fake_cuda(monkeypatch)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "NVIDIA A100-SXM4-40GB")
    assert peak_flops(Runtime(torch.device("cuda"), "bf16", "test")) == 312e12


def test_measure_matmul_flops_is_two_n_cubed_over_the_best_time(monkeypatch):
    products = []
    monkeypatch.setattr(dev, "best_seconds", lambda fn, device, repeats: (products.append(fn()), 0.25)[1])
    assert measure_matmul_flops(n=64, repeats=3) == 2 * 64**3 / 0.25
    assert products[0].shape == (64, 64)


def test_best_seconds_is_the_fastest_call_after_a_warm_up(monkeypatch):
    ticks = iter([0.0, 3.0, 10.0, 11.0, 20.0, 22.0])      # three timed calls: 3, 1 and 2 seconds
    monkeypatch.setattr(dev.time, "perf_counter", lambda: next(ticks))
    calls = []
    assert dev.best_seconds(lambda: calls.append(1), "cpu", repeats=3) == 1.0
    assert len(calls) == 4                                  # one warm-up, untimed, then the three


def test_under_torchrun_each_process_takes_its_own_gpu(monkeypatch):
    fake_cuda(monkeypatch)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    for asked in (None, "cuda"):
        rt = choose_runtime(device=asked)
        assert rt.device == torch.device("cuda:1") and "cuda:1 for process 1 of 2" in rt.reason
    assert choose_runtime(device="cuda:0").device == torch.device("cuda:0")     # asked by index: as asked
