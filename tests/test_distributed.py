"""Training on 2 processes with torchrun and Gloo (the CPU backend) gives one process's result: the same loss
history (to float tolerance), also after a kill and a resume, and the whole course runs that way."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from minillm import distributed

ROOT = Path(__file__).resolve().parent.parent
WORKER = ROOT / "tests" / "ddp_train.py"
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}     # two processes on a 2-core machine: one thread each


def losses(path) -> list[float]:
    return [h["loss"] for h in json.loads(Path(path).read_text())]


def close(a, b) -> bool:
    return len(a) == len(b) and all(abs(x - y) <= 1e-5 * max(1.0, abs(x)) for x, y in zip(a, b))


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    d = tmp_path_factory.mktemp("one")
    subprocess.run([sys.executable, str(WORKER), d / "run", d / "history.json"], check=True, env=ENV, timeout=600)
    return losses(d / "history.json")


def test_two_gloo_processes_train_as_one(one_process, tmp_path):
    p = subprocess.run([*TORCHRUN, str(WORKER), tmp_path / "run", tmp_path / "history.json"], env=ENV,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    two = losses(tmp_path / "history.json")
    assert len(two) == 12 and close(two, one_process)
    assert two[-1] < two[0]


def test_a_killed_distributed_run_resumes_to_the_same_history(one_process, tmp_path):
    killed = subprocess.run([*TORCHRUN, str(WORKER), tmp_path / "run", tmp_path / "history.json", "--die-at", "6"],
                            env=ENV, capture_output=True, text=True, timeout=600)
    assert killed.returncode != 0 and not (tmp_path / "history.json").exists()
    assert json.loads((tmp_path / "run" / "config.json").read_text())["step"] == 4     # the last checkpoint
    resumed = subprocess.run([*TORCHRUN, str(WORKER), tmp_path / "run", tmp_path / "history.json", "--resume"],
                             env=ENV, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert close(losses(tmp_path / "history.json"), one_process)


def test_the_course_runs_under_torchrun_as_in_one_process(smoke_run, tmp_path):
    out = tmp_path / "ddp"
    p = subprocess.run([*TORCHRUN, "-m", "minillm", "course", "--preset", "smoke", "--out", str(out)], env=ENV,
                       capture_output=True, text=True, timeout=1200, cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout.count("report: ") == 1          # one process reports
    assert (out / "metrics.json").exists() and (out / "report.md").exists()
    for stage in ("base", "assistant_v1", "assistant"):
        two = [h["loss"] for h in json.loads((out / stage / "history.json").read_text()) if "loss" in h]
        one = [h["loss"] for h in json.loads((smoke_run / stage / "history.json").read_text()) if "loss" in h]
        assert close(two, one), stage


def test_one_process_needs_no_process_group_and_shares_cover_the_batch(monkeypatch):
    import torch
    assert not distributed.init() and distributed.world_size() == 1 and distributed.is_main()
    x, y = torch.zeros(5, 3), torch.full((5, 3), -1)
    assert distributed.shard(x, y) == (x, y) and distributed.share_weight(y, y) == 1.0
    # 3 processes: 16 rows (or a packed batch's 15) in contiguous shares that put the batch back together
    monkeypatch.setattr(distributed, "world_size", lambda: 3)
    for n in (16, 15):
        x = torch.arange(n * 4).view(n, 4)
        y = torch.where(x % 3 == 0, -1, x)
        shares = []
        for r in range(3):
            monkeypatch.setattr(distributed, "rank", lambda r=r: r)
            shares.append(distributed.shard(x, y))
        assert [len(a) for a, _ in shares] == ([6, 5, 5] if n == 16 else [5, 5, 5])
        assert torch.equal(torch.cat([a for a, _ in shares]), x) and torch.equal(torch.cat([b for _, b in shares]), y)
        # each share's loss weight is its share of the scored targets: together, the whole batch's mean
        assert abs(sum(distributed.share_weight(y, b) for _, b in shares) / 3 - 1.0) < 1e-9
    with pytest.raises(ValueError, match=r"^a batch of 2 rows cannot give each of 3 processes a row: use fewer "
                                         r"processes, a larger batch_size, or \(fine-tuning\) a smaller sft_pack"):
        distributed.shard(torch.zeros(2, 4), torch.zeros(2, 4))