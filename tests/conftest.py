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
