import pytest
import torch


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models train faster on one thread (no thread synchronisation per op), and a busy machine
    cannot stall a step waiting for a descheduled second thread. Use: pytestmark = usefixtures("one_thread")."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """A finished `python -m minillm course --preset smoke` run folder, shared by the tests that read one."""
    from minillm.__main__ import main

    out = tmp_path_factory.mktemp("runs") / "smoke"
    assert main(["course", "--preset", "smoke", "--out", str(out)]) == 0
    return out
