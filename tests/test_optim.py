"""Muon: the orthogonalisation, which parameters it takes, and that it trains the GPT like AdamW does."""
import pytest
import torch

from minillm.device import choose_runtime
from minillm.model import GPT, GPTConfig
from minillm.optim import MuonAdamW, orthogonalize
from minillm.train import TrainConfig, train
from minillm.data import pretrain_batch

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("shape", [(64, 32), (32, 64), (48, 48)])
def test_orthogonalize_keeps_singular_vectors_and_flattens_singular_values(shape):
    g = torch.Generator().manual_seed(0)
    k = min(shape)
    U = torch.linalg.qr(torch.randn(shape[0], k, generator=g))[0]
    Vh = torch.linalg.qr(torch.randn(shape[1], k, generator=g))[0].T
    S = torch.logspace(-1, 1, k)                       # singular values spread over two decades
    G = U @ torch.diag(S) @ Vh
    X = orthogonalize(G)
    assert X.shape == G.shape and X.dtype == G.dtype
    s = torch.linalg.svdvals(X)
    assert s.min() > 0.5 and s.max() < 1.3            # all near 1 (the quintic trades exactness for speed)
    # the same singular vectors: X is close to U V^T, not to some other orthogonal matrix
    assert torch.nn.functional.cosine_similarity(X.flatten(), (U @ Vh).flatten(), dim=0) > 0.95


CFG = GPTConfig(vocab_size=32, block_size=16, n_layer=2, n_head=2, n_embd=32, dropout=0.0)


def test_muon_takes_the_block_matrices_and_adamw_the_rest():
    model = GPT(CFG)
    opt = model.configure_optimizers(0.1, 1e-3, (0.9, 0.95), "cpu", optimizer="muon", muon_lr=0.02)
    kinds = {id(p): g["kind"] for g in opt.param_groups for p in g["params"]}
    assert len(kinds) == sum(1 for _ in model.parameters())        # every parameter exactly once
    for name, p in model.named_parameters():
        want = "muon" if name.startswith("transformer.h.") and p.dim() == 2 else "adamw"
        assert kinds[id(p)] == want, name
    assert model.transformer.wte.weight is model.lm_head.weight and kinds[id(model.lm_head.weight)] == "adamw"
    muon = next(g for g in opt.param_groups if g["kind"] == "muon")
    assert muon["lr_scale"] == pytest.approx(20.0)
    with pytest.raises(ValueError, match="optimizer must be 'adamw' or 'muon', got 'sgd'"):
        model.configure_optimizers(0.1, 1e-3, (0.9, 0.95), "cpu", optimizer="sgd")
    with pytest.raises(ValueError, match="Muon is for 2-D weight matrices"):
        MuonAdamW([{"params": [torch.zeros(3, requires_grad=True)], "kind": "muon"}], lr=0.01)


def test_adamw_groups_match_torch_adamw():
    """MuonAdamW's AdamW groups take the same steps as torch.optim.AdamW."""
    torch.manual_seed(0)
    w1 = torch.randn(5, 3, requires_grad=True)
    w2 = w1.detach().clone().requires_grad_(True)
    ours = MuonAdamW([{"params": [w1], "kind": "adamw", "weight_decay": 0.1}], lr=1e-2)
    ref = torch.optim.AdamW([{"params": [w2], "weight_decay": 0.1}], lr=1e-2, betas=(0.9, 0.95))
    for i in range(5):
        g = torch.randn(5, 3, generator=torch.Generator().manual_seed(i))
        w1.grad, w2.grad = g.clone(), g.clone()
        ours.step()
        ref.step()
    torch.testing.assert_close(w1, w2)


def test_muon_trains_the_gpt():
    stream = torch.arange(4000) % 32
    get_batch = lambda i: pretrain_batch(stream, 8, 16, torch.Generator().manual_seed(i))  # noqa: E731
    runtime = choose_runtime("cpu", "fp32")
    losses = {}
    for opt in ("adamw", "muon"):
        torch.manual_seed(0)
        cfg = TrainConfig(max_steps=60, batch_size=8, learning_rate=3e-3, log_interval=10, optimizer=opt)
        losses[opt] = train(GPT(CFG), get_batch, cfg, runtime, progress=False).history[-1]["loss"]
    # counting mod 32 is being learned (the loss starts at ln 32 = 3.47), Muon at least as fast as AdamW
    assert losses["adamw"] < 1.2 and losses["muon"] < losses["adamw"]
