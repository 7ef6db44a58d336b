"""Muon for the matrices, AdamW for the rest: the optimizer of the modded-nanogpt speedruns and nanochat.

One optimizer, `MuonAdamW`, that the training loop (minillm.train) runs like AdamW; which parameters get
Muon is the model's choice (GPT.configure_optimizers with optimizer="muon").
"""
from __future__ import annotations

import math

import torch

# AdamW scales each weight's step by its own gradient history. Muon (MomentUm Orthogonalized by Newton-
# Schulz; Keller Jordan, 2024) treats a weight *matrix* as one object: it keeps SGD momentum and replaces
# the update matrix by the nearest (semi-)orthogonal matrix, which has the same singular vectors and all
# singular values 1. The rare directions of the update, which AdamW's step barely moves, then move as much
# as the common ones. The orthogonalisation is five Newton-Schulz iterations of matrix products (no SVD),
# cheap next to a training step.


@torch.no_grad()
def orthogonalize(G: torch.Tensor, steps: int = 5) -> torch.Tensor:
    """An approximately orthogonal matrix with G's singular vectors (U V^T of G = U S V^T).

    Newton-Schulz iteration X <- a X + b (X X^T) X + c (X X^T)^2 X with the speedrun's quintic
    coefficients, which push every singular value of the normalised G towards 1 within 5 steps (to
    roughly 0.7-1.2, which works as well as exactly 1 for training and costs far fewer steps).
    """
    a, b, c = 3.4445, -4.7750, 2.0315
    X = G.bfloat16() if G.is_cuda else G.float()   # bf16 is fast and precise enough on GPUs
    transposed = X.size(-2) > X.size(-1)
    if transposed:                                 # iterate on the smaller Gram matrix
        X = X.mT
    X = X / (X.norm(dim=(-2, -1), keepdim=True) + 1e-7)   # singular values <= 1: inside the convergence region
    for _ in range(steps):
        A = X @ X.mT
        X = a * X + (b * A + c * A @ A) @ X
    if transposed:
        X = X.mT
    return X.to(G.dtype)


class MuonAdamW(torch.optim.Optimizer):
    """Groups with kind="muon" (2-D matrices) get Muon; kind="adamw" groups get AdamW.

    Muon is only for the 2-D weights inside the blocks (attention and MLP matrices). Embeddings (and the
    output layer, which is tied to them here), LayerNorm gains and biases keep AdamW: an embedding row is
    one token's vector, not part of a linear map whose singular values mean something.

    One torch.optim.Optimizer with both kinds of parameter group, so the training loop,
    GradScaler, gradient clipping and checkpoints treat it like AdamW. Each group has an `lr_scale`: the
    loop's schedule sets lr = schedule(step) * lr_scale, so Muon's larger rate follows the same warmup and
    cosine decay.

    Muon: momentum buffer m <- beta m + (1 - beta) g; Nesterov update g + beta (m - g); orthogonalise;
    scale by sqrt(max(1, rows / cols)) so tall and wide matrices take comparable steps; decoupled weight decay.
    """

    def __init__(self, groups, *, lr: float, betas=(0.9, 0.95), eps: float = 1e-8, momentum: float = 0.95,
                 ns_steps: int = 5):
        for g in groups:
            if g.get("kind") not in ("muon", "adamw"):
                raise ValueError("every parameter group needs kind='muon' or kind='adamw'")
            if g["kind"] == "muon" and any(p.dim() != 2 for p in g["params"]):
                raise ValueError("Muon is for 2-D weight matrices; put other parameters in an adamw group")
        defaults = dict(lr=lr, lr_scale=1.0, betas=betas, eps=eps, momentum=momentum, ns_steps=ns_steps,
                        weight_decay=0.0)
        super().__init__(groups, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, wd = group["lr"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g, state = p.grad, self.state[p]
                if group["kind"] == "muon":
                    if not state:
                        state["momentum_buffer"] = torch.zeros_like(p)
                    buf, beta = state["momentum_buffer"], group["momentum"]
                    buf.lerp_(g, 1 - beta)
                    update = orthogonalize(g.lerp(buf, beta), group["ns_steps"])
                    p.mul_(1 - lr * wd)
                    p.add_(update, alpha=-lr * math.sqrt(max(1.0, p.size(0) / p.size(1))))
                else:
                    if not state:
                        state["step"] = torch.zeros((), dtype=torch.float32)
                        state["exp_avg"] = torch.zeros_like(p)
                        state["exp_avg_sq"] = torch.zeros_like(p)
                    (b1, b2), eps = group["betas"], group["eps"]
                    state["step"] += 1
                    t = state["step"].item()
                    state["exp_avg"].lerp_(g, 1 - b1)
                    state["exp_avg_sq"].mul_(b2).addcmul_(g, g, value=1 - b2)
                    denom = (state["exp_avg_sq"] / (1 - b2 ** t)).sqrt_().add_(eps)
                    p.mul_(1 - lr * wd)
                    p.addcdiv_(state["exp_avg"], denom, value=-lr / (1 - b1 ** t))
        return loss
