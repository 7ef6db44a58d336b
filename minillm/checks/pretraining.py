"""Checks of a student's own code in the course's first part, pretraining (chapters 00-03): the loss, BPE pair
counts and merges, one attention head, the parameter count, next-token batches, one training step, and a loss
that falls.

How every exercise check works: minillm.checks.
"""
from __future__ import annotations

import math
import random
from collections import Counter

import torch
from torch.nn import functional as F

from minillm.checks._common import _call, _fresh, _ok
from minillm.model import CausalSelfAttention, GPT, GPTConfig
from minillm.tokenizer import merge, render_token


# ------------------------------------------------------------------------------------------------
# the loss

def check_cross_entropy(student_fn, n_random: int = 20) -> None:
    """student_fn(logits (N, V), targets (N,)) -> the mean cross-entropy over the targets that are not -1,
    compared with torch's F.cross_entropy(..., ignore_index=-1), the loss minillm.model.GPT computes."""
    rng = _fresh()
    g = torch.Generator().manual_seed(rng.randrange(2**31))
    cases = [(torch.zeros(3, 4), torch.tensor([0, 1, 3])),                       # uniform: ln 4
             (torch.tensor([[2.0, -1.0, 0.5], [0.0, 0.0, 9.0]]), torch.tensor([0, -1]))]   # one ignored target
    for _ in range(n_random):
        n, v = rng.randrange(1, 20), rng.randrange(2, 50)
        targets = torch.randint(v, (n,), generator=g)
        targets[torch.rand(n, generator=g) < 0.3] = -1
        targets[rng.randrange(n)] = rng.randrange(v)          # at least one scored target
        cases.append((torch.randn(n, v, generator=g) * rng.choice((0.5, 3.0, 30.0)), targets))
    for logits, targets in cases:
        want = F.cross_entropy(logits, targets, ignore_index=-1).item()
        got = float(_call(student_fn, (logits.clone(), targets.clone()), "your cross_entropy", F.cross_entropy))
        if math.isclose(got, want, rel_tol=1e-4, abs_tol=1e-5):
            continue
        scored = targets != -1
        hint = ""
        if math.isnan(got) or math.isinf(got):
            hint = (" Not a finite number: with large logits exp() overflows. Use log_softmax (or subtract each "
                    "row's max before exp).")
        elif math.isclose(got, -want, rel_tol=1e-4):
            hint = " The sign: the loss is minus the log-probability of the target."
        elif (~scored).any():
            keep = targets.clone()
            keep[~scored] = 0
            every = F.cross_entropy(logits, keep, reduction="none").mean().item()
            if math.isclose(got, every, rel_tol=1e-4):
                hint = " Targets of -1 (padding, the user's tokens) must not count, neither in the sum nor in the mean."
        raise AssertionError(f"logits of shape {tuple(logits.shape)}, targets {targets.tolist()}: expected "
                             f"{want:.6g}, got {got:.6g}.{hint}")
    _ok(f"cross-entropy matches F.cross_entropy(ignore_index=-1) on {len(cases)} cases (2 fixed, the rest random)")


# ------------------------------------------------------------------------------------------------
# tokenization

# ids with repeats, overlaps ("a a a"), a pair at the very end, one id, none at all
_ID_CASES = [
    [5, 5, 5, 5],
    [1, 2, 3, 1, 2],
    [104, 101, 108, 108, 111, 32, 104, 101],
    [7],
    [],
    [1, 2, 1, 2, 1, 2, 3],
]
_MERGE_CASES = [
    ([1, 2, 3, 1, 2], (1, 2), 256),
    ([5, 5, 5], (5, 5), 300),          # overlapping: left to right, the middle 5 is used once
    ([5, 5, 5, 5], (5, 5), 300),
    ([3, 4, 1, 2], (1, 2), 256),       # the pair at the very end
    ([1, 2, 1, 2], (2, 1), 256),
    ([9, 9], (1, 2), 256),             # not present: unchanged
    ([], (1, 2), 256),
]


def _random_ids(rng: random.Random) -> list[int]:
    # few distinct values, so pairs repeat and overlap as they do in text
    return [rng.randrange(5) for _ in range(rng.randrange(0, 30))]


def _pair_counts(ids) -> Counter:
    """The reference: how often each adjacent pair (ids[i], ids[i+1]) occurs (what Tokenizer.train counts)."""
    return Counter(zip(ids, ids[1:]))


def check_pair_counts(student_fn, n_random: int = 20) -> None:
    """student_fn(ids: list[int]) -> {pair: count} for adjacent pairs."""
    rng = _fresh()
    for ids in _ID_CASES + [_random_ids(rng) for _ in range(n_random)]:
        got = _call(student_fn, (list(ids),), "your pair counter")
        want = _pair_counts(ids)
        if not hasattr(got, "items"):
            raise AssertionError(f"on ids={ids} your function returned a {type(got).__name__}; "
                                 "return a dict (or Counter) mapping each pair (a, b) to its count")
        got = {tuple(k) if isinstance(k, list) else k: v for k, v in got.items() if v != 0}
        if got != dict(want):
            extra = {p: c for p, c in got.items() if p not in want}
            hint = ""
            if got == {p: 1 for p in want}:
                hint = " Count every occurrence, not just whether the pair occurs."
            elif got == dict(_pair_counts(ids[:-1])):
                hint = " The last pair is missing: zip(ids, ids[1:]) reaches the end of the list."
            elif extra:
                hint = " Only *adjacent* pairs (ids[i], ids[i+1]) count."
            raise AssertionError(f"pair counts differ on ids={ids}:\n  expected {dict(want)}\n  got      {got}.{hint}")
    _ok(f"pair counts: all {len(_ID_CASES)} tricky cases and {n_random} random lists right")


def check_merge(student_fn, n_random: int = 20) -> None:
    """student_fn(ids, pair, new_id) -> new ids; checked against tokenizer.merge."""
    rng = _fresh()
    cases = list(_MERGE_CASES)
    for _ in range(n_random):
        ids = _random_ids(rng)
        if len(ids) > 1 and rng.random() < 0.8:      # mostly a pair that occurs, sometimes one that may not
            i = rng.randrange(len(ids) - 1)
            pair = (ids[i], ids[i + 1])
        else:
            pair = (rng.randrange(5), rng.randrange(5))
        cases.append((ids, pair, 256 + rng.randrange(100)))
    for ids, pair, new_id in cases:
        original = list(ids)
        got = _call(student_fn, (list(ids), pair, new_id), "your merge", merge)
        want = merge(ids, pair, new_id)
        if not isinstance(got, (list, tuple)):
            raise AssertionError(f"merge({ids}, {pair}, {new_id}) returned a {type(got).__name__}; return a list of ids")
        got = list(got)
        if got != want:
            hint = ""
            if len(got) > len(want) and pair[0] == pair[1]:
                hint = (" With a pair like (5, 5) the occurrences overlap: after replacing one, jump past"
                        " both ids (i += 2) so the same id is not used twice.")
            elif len(got) < len(want):
                hint = " Replace the pair only where ids[i] == a AND ids[i+1] == b."
            elif ids and ids[-2:] == list(pair) and got[-1] != new_id:
                hint = " The pair at the very end of the list was missed: check the loop's last index."
            raise AssertionError(f"merge({original}, {pair}, {new_id}):\n  expected {want}\n  got      {got}.{hint}")
    _ok(f"merge: all {len(cases)} cases ({len(_MERGE_CASES)} tricky, the rest random) match minillm.tokenizer.merge")


def check_bpe_merges(my_merges, tokenizer) -> None:
    """The student's first merges (a list of pairs, learned by hand) against a trained Tokenizer's first merges."""
    my_merges = [tuple(p) for p in my_merges]
    theirs = list(tokenizer.merges)[:len(my_merges)]
    if not my_merges:
        raise AssertionError("your list of merges is empty: run the merge loop first")
    if len(theirs) < len(my_merges):
        raise AssertionError(f"the tokenizer has only {len(theirs)} merges; compare at most that many")

    def show(pair, vocab):
        return " + ".join(repr(render_token(vocab.get(i, b"?"))) for i in pair)

    vocab = {i: tokenizer.token_bytes(i) for i in range(256 + len(theirs))}
    for k, (mine, want) in enumerate(zip(my_merges, theirs)):
        if mine != want:
            hint = ""
            if k == 0:
                hint = (" The very first merge already differs: count pairs over the pre-split chunks, each chunk "
                        "weighted by how often it occurs, and pick the largest count (ties: the smallest pair).")
            raise AssertionError(f"merge {256 + k} differs: yours is {mine} ({show(mine, vocab)}), "
                                 f"Tokenizer.train learned {want} ({show(want, vocab)}).{hint}")
    _ok(f"your first {len(my_merges)} merges are exactly the ones Tokenizer.train learned")


# ------------------------------------------------------------------------------------------------
# attention

def _reference_head(T: int = 6, hs: int = 8, seed: int = 0):
    """q, k, v for one head and the package's output and weights for them (manual attention, 1 head)."""
    g = torch.Generator().manual_seed(seed)
    cfg = GPTConfig(vocab_size=16, block_size=T, n_layer=1, n_head=1, n_embd=hs, bias=False, attn_impl="manual")
    attn = CausalSelfAttention(cfg, 0)
    with torch.no_grad():
        attn.c_attn.weight.copy_(torch.randn(3 * hs, hs, generator=g) / math.sqrt(hs))
        attn.c_proj.weight.copy_(torch.eye(hs))      # identity output projection: attn(x) is the head's output
        x = torch.randn(1, T, hs, generator=g)
        q, k, v = attn.c_attn(x).split(hs, dim=2)
        out = attn(x)[0]
        probs = attn.attention_probs(x)[0, 0]
    return q[0], k[0], v[0], out, probs


def _diagnose_probs(probs, q, k) -> str:
    """Name the usual mistake when the attention weights are wrong."""
    T, hs = q.shape
    scores = q @ k.T
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
    variants = {
        "You forgot the causal mask: position i must not see positions j > i (set those scores to -inf before softmax).":
            F.softmax(scores / math.sqrt(hs), dim=-1),
        "You forgot to divide the scores by sqrt(head_size) before the softmax.":
            F.softmax(scores.masked_fill(~causal, float("-inf")), dim=-1),
        "You divided by head_size; divide by sqrt(head_size).":
            F.softmax((scores / hs).masked_fill(~causal, float("-inf")), dim=-1),
        "The softmax ran over the wrong dimension: each row (one query) must sum to 1, so use dim=-1.":
            F.softmax((scores / math.sqrt(hs)).masked_fill(~causal, float("-inf")), dim=0),
        "The masked scores were set to 0, not -inf: softmax(0) is not 0, so future positions still get weight.":
            F.softmax((scores / math.sqrt(hs)) * causal, dim=-1),
        "You masked after the softmax: the rows then no longer sum to 1. Mask the scores with -inf, then softmax.":
            F.softmax(scores / math.sqrt(hs), dim=-1) * causal,
        "Your weights are transposed: row i should be query i, column j key j (scores = q @ k.T).":
            F.softmax((scores / math.sqrt(hs)).masked_fill(~causal, float("-inf")), dim=-1).T,
    }
    for hint, candidate in variants.items():
        if probs.shape == candidate.shape and torch.allclose(probs, candidate, atol=1e-5):
            return " " + hint
    if probs.shape == (T, T):
        if torch.triu(probs, diagonal=1).abs().max() > 1e-6:
            return " Weights above the diagonal are not 0: the future is not masked."
        if not torch.allclose(probs.sum(-1), torch.ones(T), atol=1e-4):
            return " A row of weights does not sum to 1: apply softmax over the last dimension."
    return ""


def check_attention_head(student_fn, n_random: int = 5) -> None:
    """student_fn(q, k, v) -> (out, weights) for one causal head, q/k/v of shape (T, head_size).

    Checked against the package's CausalSelfAttention ("manual" mode, one head): weights must equal
    attention_probs and out must equal the layer's output.
    """
    rng = _fresh()
    cases = [(6, 8, 0), (5, 16, 1), (1, 4, 2)]
    cases += [(rng.randrange(1, 12), rng.choice((4, 8, 16, 32)), rng.randrange(2**31)) for _ in range(n_random)]
    for T, hs, seed in cases:
        q, k, v, want_out, want_probs = _reference_head(T, hs, seed)
        result = _call(student_fn, (q.clone(), k.clone(), v.clone()), "your attention head")
        if not (isinstance(result, (tuple, list)) and len(result) == 2):
            raise AssertionError("return two things: (out, weights), out of shape (T, head_size) and weights (T, T)")
        out, probs = (torch.as_tensor(r, dtype=torch.float32).detach() for r in result)
        if probs.shape != (T, T):
            raise AssertionError(f"weights should have shape (T, T) = {(T, T)} for q of shape {tuple(q.shape)}, "
                                 f"got {tuple(probs.shape)}")
        if not torch.allclose(probs, want_probs, atol=1e-5):
            err = (probs - want_probs).abs().max().item()
            raise AssertionError(f"attention weights differ from CausalSelfAttention.attention_probs "
                                 f"(T={T}, head_size={hs}; largest difference {err:.3g})."
                                 + _diagnose_probs(probs, q, k))
        if out.shape != (T, hs):
            raise AssertionError(f"out should have shape (T, head_size) = {(T, hs)}, got {tuple(out.shape)}")
        if not torch.allclose(out, want_out, atol=1e-5):
            hint = ""
            if torch.allclose(out, probs.T @ v, atol=1e-5):
                hint = " Use weights @ v (row i mixes the values position i attends to), not weights.T @ v."
            raise AssertionError(f"the weights are right but the output differs (T={T}, head_size={hs}): "
                                 f"out = weights @ v.{hint}")
    _ok(f"attention head: weights and output match minillm's CausalSelfAttention (manual mode) on {len(cases)} inputs")


# ------------------------------------------------------------------------------------------------
# the model

def check_param_count(count: int, config: GPTConfig) -> None:
    """The student's hand count of a GPT's parameters, checked against GPT(config).num_params()."""
    model = GPT(config)
    want = model.num_params()
    if int(count) == want:
        _ok(f"parameter count: {want:,} = GPT(config).num_params()")
        return
    d, V, L, T = config.n_embd, config.vocab_size, config.n_layer, config.block_size
    diff = int(count) - want
    n_ln = 2 * L + 1                                   # two LayerNorms per block and ln_f
    hints = {
        V * d: "The token embedding is tied to the output layer (lm_head): count that V x d matrix once.",
        -V * d: "The token embedding (vocab_size x n_embd) is missing.",
        -T * d: "The position embedding (block_size x n_embd) is missing.",
        -n_ln * 2 * d: "The LayerNorms are missing: each has a gain and a bias of n_embd values (two per block, one at the end).",
        -n_ln * d: "Half of the LayerNorm parameters are missing: each has a gain AND a bias of n_embd values.",
        -2 * d: "The final LayerNorm (ln_f: gain and bias) is missing.",
        -L * 9 * d: "The Linear layers' biases are missing (per block: c_attn 3d, attn c_proj d, c_fc 4d, mlp c_proj d).",
        -(L * 9 * d + n_ln * d): "All biases are missing (the Linear layers' and the LayerNorms').",
    }
    hint = hints.get(diff, "")
    if not hint and diff % L == 0:
        hint = f"Off by {diff // L:+,} per block: recount one block (attention 4d² + 4d, MLP 8d² + 5d, two LayerNorms 4d)."
    raise AssertionError(f"your count is {int(count):,}, GPT(config).num_params() says {want:,} "
                         f"(difference {diff:+,}). {hint}".rstrip())


def check_close(mine, reference, what: str = "your result", *, atol: float = 1e-5, rtol: float = 1e-4) -> None:
    """mine == reference up to float rounding (torch.allclose); the message gives shapes and the largest error."""
    a = torch.as_tensor(mine).detach().float().cpu()
    b = torch.as_tensor(reference).detach().float().cpu()
    if a.shape != b.shape:
        raise AssertionError(f"{what}: shape {tuple(a.shape)}, expected {tuple(b.shape)}")
    if not torch.allclose(a, b, atol=atol, rtol=rtol):
        err = (a - b).abs().max().item()
        raise AssertionError(f"{what} differs from the package's result: largest difference {err:.3g} "
                             f"(allowed: {atol} + {rtol} x |reference|)")
    err = (a - b).abs().max().item() if a.numel() else 0.0
    _ok(f"{what}: same numbers as the package (largest difference {err:.1e})")


def check_loss_falls(losses, *, vocab_size: int | None = None, min_drop: float = 0.5) -> None:
    """A short training run's losses: finite, starting near ln(vocab_size) when given, and falling.

    This is the check to run before trusting a device (older torch releases gave wrong losses on MPS, see
    minillm.device): a broken backend shows up as NaN, a loss that does not move, or a start far from chance.
    """
    losses = [float(x) for x in losses]
    if len(losses) < 2:
        raise AssertionError("give the losses of at least two steps")
    bad = [i for i, x in enumerate(losses) if not math.isfinite(x)]
    if bad:
        raise AssertionError(f"the loss is not finite at step {bad[0]} ({losses[bad[0]]}): this device/precision is "
                             "not computing correctly; try MINILLM_PRECISION=fp32 or MINILLM_DEVICE=cpu")
    if vocab_size is not None:
        chance = math.log(vocab_size)
        if abs(losses[0] - chance) > 0.5:
            raise AssertionError(f"the first loss is {losses[0]:.3f} but a fresh model should score about "
                                 f"ln({vocab_size}) = {chance:.3f} (it guesses uniformly); something is off "
                                 "with the model's initialisation or the device")
    drop = losses[0] - min(losses[-3:])
    if drop < min_drop:
        raise AssertionError(f"the loss went from {losses[0]:.3f} to {losses[-1]:.3f}; it should fall by at least "
                             f"{min_drop} on a batch the model sees again and again. Check the learning rate, that "
                             "optimizer.step() is called, and that gradients are zeroed each step")
    _ok(f"the loss falls: {losses[0]:.3f} -> {losses[-1]:.3f} over {len(losses)} logged values")


# ------------------------------------------------------------------------------------------------
# pretraining batches

def check_next_token_batch(student_fn, n_random: int = 10) -> None:
    """student_fn(tokens, starts, block_size) -> (x, y): for each start a window of the token stream,
    x = tokens[s : s+block_size], y = the same window shifted by one (what data.pretrain_batch builds)."""
    rng = _fresh()
    tokens = torch.arange(100, 140)
    cases = [([0, 5, 20], 8), ([31], 8), ([3, 3], 1)]
    for _ in range(n_random):
        T = rng.randrange(1, 12)
        cases.append(([rng.randrange(len(tokens) - T) for _ in range(rng.randrange(1, 6))], T))
    for starts, T in cases:
        got = _call(student_fn, (tokens.clone(), list(starts), T), "your batch function")
        if not (isinstance(got, (tuple, list)) and len(got) == 2):
            raise AssertionError("return two things: (x, y), each of shape (len(starts), block_size)")
        x, y = (torch.as_tensor(t).long() for t in got)
        want_x = torch.stack([tokens[s:s + T] for s in starts])
        want_y = torch.stack([tokens[s + 1:s + 1 + T] for s in starts])
        if x.shape != want_x.shape or y.shape != want_y.shape:
            raise AssertionError(f"starts={starts}, block_size={T}: x and y should both have shape {tuple(want_x.shape)}, "
                                 f"got {tuple(x.shape)} and {tuple(y.shape)}. Cut a window of block_size + 1 tokens; "
                                 "x drops its last token, y its first")
        if torch.equal(x, want_x) and torch.equal(y, want_y):
            continue
        hint = ""
        if torch.equal(y, want_x) and torch.equal(x, want_y):
            hint = " x and y are swapped: x is the input (earlier tokens), y the targets (one later)."
        elif torch.equal(x, y):
            hint = " y equals x: the model would learn to copy its input. Shift y one token to the right."
        elif torch.equal(x, want_x) and T > 1 and torch.equal(y[:, :-1], want_y[:, :-1]):
            hint = " Only the last target is wrong: the window needs block_size + 1 tokens."
        elif torch.equal(x, want_x):
            hint = " x is right; y must be tokens[s+1 : s+1+block_size] (the next token at every position)."
        raise AssertionError(f"starts={starts}, block_size={T} on tokens 100..139:\n  expected x {want_x.tolist()}\n"
                             f"           y {want_y.tolist()}\n  got      x {x.tolist()}\n           y {y.tolist()}.{hint}")
    _ok(f"next-token batches: y is x shifted by one, on {len(cases)} cases (3 fixed, the rest random)")


# ------------------------------------------------------------------------------------------------
# one training step

# a GPT of about 4,000 parameters: a step takes a millisecond on a CPU. Without biases: the attention's key bias
# gets a gradient of pure rounding noise (softmax ignores it), which Adam scales up to full-size steps, so two right
# training steps that round differently (a clip written by hand) would end visibly apart
_STEP_MODEL = GPTConfig(vocab_size=32, block_size=8, n_layer=1, n_head=2, n_embd=16, dropout=0.0, bias=False)

# what a wrong training step usually does instead, each with what to fix; the student's weights are compared
# with each of these (run from the same start), and the first one they match names the mistake
_STEP_MISTAKES = {
    "no_update": " The weights did not change at all: call optimizer.step() after loss.backward(), and zero the "
                 "gradients only after the step (zeroing them between the two throws them away).",
    "no_clip": " They match a step without gradient clipping: after loss.backward() and before optimizer.step(), "
               "call torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip).",
    "clip_one": " They match clipping the norm to 1.0: clip it to grad_clip, the argument.",
    "no_lr": " They match a step that never sets the learning rate (the optimizer keeps the one it was built with): "
             "set group['lr'] = lr for every group in optimizer.param_groups before optimizer.step().",
    "first_group_lr": " They match setting the learning rate of the first parameter group only: the optimizer has two "
                      "(the weights with weight decay and those without); set it in every group of "
                      "optimizer.param_groups.",
    "no_zero": " They match a step that never zeroes the gradients: backward() adds to the .grad already there, so "
               "call optimizer.zero_grad() after optimizer.step().",
}
_STEP_ORDER = (" Each step: set every group's lr, loss from model(x, y), loss.backward(), "
               "clip_grad_norm_(model.parameters(), grad_clip), optimizer.step(), optimizer.zero_grad().")


def _step_run(seed: int, cfg, get_batch, step_fn):
    """A fresh tiny GPT (initialised from `seed`) and its optimizer, built as minillm.train.train builds it, trained
    cfg.max_steps steps with step_fn(model, optimizer, x, y, lr, grad_clip); returns the model and step_fn's results."""
    from minillm.train import lr_at
    torch.manual_seed(seed)
    model = GPT(_STEP_MODEL)
    model.train()
    optimizer = model.configure_optimizers(cfg.weight_decay, cfg.learning_rate, (cfg.beta1, cfg.beta2), "cpu",
                                           optimizer=cfg.optimizer, muon_lr=cfg.muon_lr)
    results = []
    for step in range(cfg.max_steps):
        x, y = get_batch(step)
        results.append(step_fn(model, optimizer, x.clone(), y.clone(), lr_at(step, cfg), cfg.grad_clip))
    return model, results


def _mistaken_step(mistake: str):
    """A training step with one usual mistake (the keys of _STEP_MISTAKES), for naming what a student's step did."""
    def step(model, optimizer, x, y, lr, grad_clip):
        groups = optimizer.param_groups[:1] if mistake == "first_group_lr" else optimizer.param_groups
        if mistake != "no_lr":
            for group in groups:
                group["lr"] = lr
        _, loss = model(x, y)
        loss.backward()
        if mistake != "no_clip":
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0 if mistake == "clip_one" else grad_clip)
        if mistake != "no_update":
            optimizer.step()
        if mistake != "no_zero":
            optimizer.zero_grad(set_to_none=True)
        return loss.item()
    return step


def _largest_difference(model, reference) -> tuple[float, str]:
    """The largest absolute difference between two models' weights, and the name of the tensor it is in."""
    diffs = [((a - b).abs().max().item(), name)
             for (name, a), b in zip(model.named_parameters(), reference.parameters())]
    return max(diffs)


def _step_cases(n_random: int) -> list[dict]:
    """The training runs the step is checked on: one fixed, then n_random with fresh seeds, rates, lengths and
    clip norms."""
    rng = _fresh()
    cases = [dict(seed=0, max_steps=6, batch_size=4, learning_rate=1e-2, warmup_steps=2, grad_clip=0.5)]
    for _ in range(n_random):
        max_steps = rng.randrange(3, 8)
        cases.append(dict(seed=rng.randrange(2**31), max_steps=max_steps, batch_size=rng.randrange(1, 5),
                          learning_rate=10 ** rng.uniform(-3, -2), warmup_steps=rng.randrange(1, max_steps),
                          grad_clip=round(rng.uniform(0.1, 2.0), 2)))
    return cases


def _same_weights(a, b) -> bool:
    return all(torch.allclose(p, q, atol=1e-5, rtol=1e-5) for p, q in zip(a.parameters(), b.parameters()))


def _step_hint(model, seed: int, cfg, get_batch) -> str:
    """The usual mistake whose weights the student's match, else the order of a step."""
    for mistake, text in _STEP_MISTAKES.items():
        if mistake == "clip_one" and cfg.grad_clip == 1.0:
            continue
        wrong, _ = _step_run(seed, cfg, get_batch, _mistaken_step(mistake))
        if _same_weights(model, wrong):
            return text
    return _STEP_ORDER


def _check_step_losses(got_losses: list, want_losses: list[float]) -> None:
    """Right weights: each step must also have returned its batch's loss, as a number."""
    for step, (got, want) in enumerate(zip(got_losses, want_losses)):
        try:
            got = float(got.detach() if isinstance(got, torch.Tensor) else got)
        except (TypeError, ValueError, RuntimeError):
            raise AssertionError(f"the weights are right, but training_step returned {got!r}: return the "
                                 "batch's loss as a number (loss.item())") from None
        if not math.isclose(got, want, rel_tol=1e-5, abs_tol=1e-6):
            raise AssertionError(f"the weights are right, but at step {step} training_step returned {got:.6g} "
                                 f"where the batch's loss was {want:.6g}: return loss.item() of this step's "
                                 "forward pass")


def check_training_step(student_fn, n_random: int = 3) -> None:
    """student_fn(model, optimizer, x, y, lr, grad_clip) -> the batch's loss (a number): one optimizer step, i.e.
    set every parameter group's learning rate to lr, compute the loss with model(x, y), backpropagate, clip the
    gradients' total norm to grad_clip, step the optimizer, zero the gradients.

    Checked by training: a tiny GPT (fp32, on the CPU) trains a few steps with minillm.train.train, with warmup,
    cosine decay and clipping on, and an identical copy (same initial weights, same optimizer, same batches) trains
    with student_fn at the rates minillm.train.lr_at gives; the weights must end equal, and the returned losses must
    be the ones train() logged. A fixed run, then n_random runs with fresh seeds, rates, lengths and clip norms."""
    from minillm.device import Runtime
    from minillm.train import TrainConfig, train
    cases = _step_cases(n_random)
    runtime = Runtime(torch.device("cpu"), "fp32", "the check's reference")
    largest = 0.0
    # train() seeds torch's generator: forked, the notebook's own random draws stay as they were
    with torch.random.fork_rng(devices=list(range(torch.cuda.device_count()))):   # no GPU: none
        for case in cases:
            seed = case.pop("seed")
            cfg = TrainConfig(**case, min_lr_ratio=0.1, weight_decay=0.1, grad_accum=1, eval_interval=0,
                              log_interval=1, compile=False, seed=seed)

            def get_batch(i, seed=seed, B=cfg.batch_size):
                g = torch.Generator().manual_seed(seed * 1000 + i)
                T, V = _STEP_MODEL.block_size, _STEP_MODEL.vocab_size
                return torch.randint(V, (B, T), generator=g), torch.randint(V, (B, T), generator=g)

            torch.manual_seed(seed)
            reference = train(GPT(_STEP_MODEL), get_batch, cfg, runtime, progress=False)
            setting = (f"max_steps={cfg.max_steps}, learning_rate={cfg.learning_rate:.3g}, "
                       f"warmup_steps={cfg.warmup_steps}, grad_clip={cfg.grad_clip:g}")

            def call(model, optimizer, x, y, lr, grad_clip):
                try:
                    return student_fn(model, optimizer, x, y, lr, grad_clip)
                except Exception as e:  # noqa: BLE001 - any error in student code is a failed check, with context
                    raise AssertionError(f"training_step(model, optimizer, x {tuple(x.shape)}, y {tuple(y.shape)}, "
                                         f"lr={lr:.3g}, grad_clip={grad_clip:g}) raised {type(e).__name__}: {e}") from e

            model, got_losses = _step_run(seed, cfg, get_batch, call)
            err, name = _largest_difference(model, reference.model)
            if not _same_weights(model, reference.model):
                raise AssertionError(f"after training with {setting}, your model's weights differ from "
                                     f"minillm.train.train's: largest difference {err:.3g} (in {name})."
                                     + _step_hint(model, seed, cfg, get_batch))
            _check_step_losses(got_losses, [h["loss"] for h in reference.history])
            largest = max(largest, err)
    _ok(f"training step: {len(cases)} short runs ({len(cases) - n_random} fixed, the rest random) end with the same "
        f"weights and losses as minillm.train.train (largest difference {largest:.1e})")


__all__ = ["check_cross_entropy", "check_pair_counts", "check_merge", "check_bpe_merges", "check_attention_head",
           "check_param_count", "check_close", "check_loss_falls", "check_next_token_batch",
           "check_training_step"]
