"""Checks of a student's own code: each compares the student's function with the package's reference.

Where a lesson builds something by hand (the loss, BPE pair counting and one merge step, one attention head,
next-token batches, sampling, the answer scorer, the learning-rate schedule, the loss mask, the monitoring
table, GPU-hours), the package holds the reference, and these functions compare the two. A right answer
prints one line starting with ✓; a wrong one raises AssertionError with a message that says *what* differs
on *which* input and, where the mistake is a common one (a forgotten causal mask, the missing 1/sqrt(d),
the tied embedding counted twice), names it. nbgrader grades a check cell by whether it raises.

Every check runs the student's function on the tricky cases (fixed) and on `n_random` fresh random
inputs drawn anew on every call, and compares each with the package's reference: a function that only
fits the cases it has seen fails. A failure shows the input it failed on. Checks take milliseconds.
"""
from __future__ import annotations

import json
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
        got = float(_call(student_fn, (logits.clone(), targets.clone()), "your cross_entropy"))
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
        got = _call(student_fn, (list(ids), pair, new_id), "your merge")
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

    This is the check to run before trusting a device (the design's MPS caveat): a broken backend
    shows up as NaN, a loss that does not move, or a start far from chance.
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
# sampling

def _sampling_cases(rng: random.Random, n_random: int):
    g = torch.Generator().manual_seed(rng.randrange(2**31))
    peaked = torch.tensor([4.0, 1.0, 0.5, 0.0, -1.0])           # the first token alone covers > 0.9
    cases = [(torch.tensor([2.0, 1.0, 0.0, -1.0]), 2, None), (peaked, None, 0.5), (peaked, None, 1.0),
             (torch.tensor([0.3, 0.1, 0.2]), None, None), (torch.tensor([0.3, 0.1, 0.2]), 10, None),
             (torch.tensor([1.0, 0.9, 0.8, -3.0, -3.5]), None, 0.6)]
    for _ in range(n_random):
        V = rng.randrange(3, 60)
        logits = torch.randn(V, generator=g) * rng.choice((0.5, 2.0, 5.0))
        top_k = rng.choice((None, rng.randrange(1, V + 3)))
        top_p = rng.choice((None, round(rng.uniform(0.05, 1.0), 3)))
        cases.append((logits, top_k, top_p))
    return cases


def check_sampling_probs(student_fn, n_random: int = 30) -> None:
    """student_fn(logits (V,), top_k, top_p) -> probabilities (V,): softmax with the tail cut by top_k and
    top_p and renormalised, compared with minillm.model.sampling_probs."""
    from minillm.model import sampling_probs
    cases = _sampling_cases(_fresh(), n_random)
    for logits, top_k, top_p in cases:
        want = sampling_probs(logits.clone(), top_k, top_p)
        got = _call(student_fn, (logits.clone(), top_k, top_p), "your sampling_probs")
        got = torch.as_tensor(got, dtype=torch.float32).detach()
        shown = f"logits={[round(x, 2) for x in logits.tolist()]}, top_k={top_k}, top_p={top_p}"
        if got.shape != want.shape:
            raise AssertionError(f"{shown}: return one probability per token, shape {tuple(want.shape)}; "
                                 f"got {tuple(got.shape)}")
        if torch.allclose(got, want, atol=1e-5):
            continue
        hint = ""
        kept, want_kept = int((got > 0).sum()), int((want > 0).sum())
        if torch.isnan(got).any():
            hint = (" Your result has NaN: nothing was kept, so renormalising divided by 0. The likeliest token is "
                    "always kept: keep a token while the likelier tokens *before* it cover less than top_p.")
        elif not math.isclose(got.sum().item(), 1.0, abs_tol=1e-4):
            hint = f" Your probabilities sum to {got.sum().item():.3f}: renormalise what you keep to sum to 1."
        elif kept == want_kept + 1:
            hint = " You keep one token too many."
        elif kept == want_kept - 1 and top_p is not None:
            hint = (" You keep one token too few: with top_p, keep a token while the likelier tokens *before* it "
                    "cover less than top_p (so the token that crosses top_p is kept, and always the first).")
        elif kept != want_kept:
            hint = f" You keep {kept} tokens; the reference keeps {want_kept}."
        raise AssertionError(f"{shown}:\n  expected {[round(x, 4) for x in want.tolist()]}\n"
                             f"  got      {[round(x, 4) for x in got.tolist()]}.{hint}")
    _ok(f"sampling probabilities match minillm.model.sampling_probs on {len(cases)} cases (6 fixed, the rest random)")


# ------------------------------------------------------------------------------------------------
# scoring an answer

_PLACES = ["Tessaly", "New Tessaly", "Redale", "Kegard", "Balawick", "Mawick"]
_STATED_CASES = [
    "He was born in Tessaly.",
    "She was born in New Tessaly.",                      # the longer value at the same position
    "He moved from Kegard to Redale.",                   # two values: the earliest counts
    "Was she born in Kegard? She was born in Redale.",   # a question states nothing
    "I don't know. He was born in Mawick.",              # only the first sentence counts
    "  She was born in Balawick",                        # no end mark: the whole text is the sentence
    "It was Redale\nor Kegard.",                         # a line break ends a sentence too
    "",
]
_FILLER = ["he", "was", "born", "in", "she", "works", "near", "the", "city", "of", "maybe", "I", "think", "3.5"]


def _random_reply(rng: random.Random) -> str:
    sentences = []
    for _ in range(rng.randrange(1, 4)):
        words = [rng.choice(_FILLER) for _ in range(rng.randrange(1, 6))]
        for _ in range(rng.randrange(0, 3)):
            words.insert(rng.randrange(len(words) + 1), rng.choice(_PLACES))
        sentences.append(" ".join(words) + rng.choice([".", "?", "!", "", "\n"]))
    return rng.choice(["", " ", "\n"]) + " ".join(sentences)


def check_stated_value(student_fn, n_random: int = 40) -> None:
    """student_fn(reply, values) -> the value its first sentence states, or None; compared with
    minillm.evaluate.stated_value (for any attribute but the birth date, which is matched as a date)."""
    from minillm.evaluate import first_sentence, stated_value
    rng = _fresh()
    cases = _STATED_CASES + [_random_reply(rng) for _ in range(n_random)]
    for reply in cases:
        want = stated_value(reply, "birth_city", _PLACES)
        got = _call(student_fn, (reply, list(_PLACES)), "your stated_value")
        if got == want:
            continue
        sentence = first_sentence(reply)
        hint = ""
        if sentence.endswith("?") and want is None:
            hint = " The first sentence is a question: a reply that asks back states nothing."
        elif got is not None and got not in sentence:
            hint = f" {got!r} is not in the first sentence ({sentence!r}); only the first sentence counts."
        elif got is not None and want is not None and want.endswith(got):
            hint = (f" {got!r} is part of {want!r}, which starts first: take the value that starts first in the "
                    "sentence (and of two starting at the same place, the longer).")
        elif got is not None and want is not None:
            hint = " Several values appear: the earliest one in the sentence is the answer a reader takes."
        raise AssertionError(f"reply {reply!r} with values {_PLACES}:\n  expected {want!r}\n  got      {got!r}.{hint}")
    _ok(f"stated values match minillm.evaluate.stated_value on {len(cases)} replies "
        f"({len(_STATED_CASES)} tricky, the rest random)")


# ------------------------------------------------------------------------------------------------
# the learning-rate schedule

def check_lr_schedule(student_fn, n_random: int = 20) -> None:
    """student_fn(step, max_steps, learning_rate, warmup, min_lr) -> the learning rate at that (0-based) step:
    linear warmup over `warmup` steps, then cosine decay to min_lr at max_steps; compared with train.lr_at."""
    from minillm.train import TrainConfig, lr_at
    rng = _fresh()
    configs = [(600, 5e-4, 30, 5e-5), (10, 1.0, 1, 0.0)]
    for _ in range(n_random):
        max_steps = rng.randrange(2, 3000)
        lr = 10 ** rng.uniform(-4, -1)
        configs.append((max_steps, lr, rng.randrange(1, max_steps), lr * rng.choice((0.0, 0.1, rng.random()))))
    for max_steps, lr, warmup, min_lr in configs:
        cfg = TrainConfig(max_steps=max_steps, batch_size=1, learning_rate=lr, warmup_steps=warmup,
                          min_lr_ratio=min_lr / lr)
        steps = sorted({0, warmup - 1, warmup, max_steps - 1, max_steps, max_steps + 5,
                        *(rng.randrange(max_steps) for _ in range(10))})
        for step in steps:
            want = lr_at(step, cfg)
            got = float(_call(student_fn, (step, max_steps, lr, warmup, min_lr), "your schedule"))
            if math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-12):
                continue
            hint = ""
            if step < warmup and math.isclose(got, lr * step / warmup, rel_tol=1e-6):
                hint = " Warmup is off by one: step 0 already takes a step, at learning_rate * (step + 1) / warmup."
            elif step < warmup:
                hint = " During warmup the rate rises linearly: learning_rate * (step + 1) / warmup."
            elif step >= max_steps:
                hint = " After max_steps the rate stays at min_lr."
            elif math.isclose(got, lr * 0.5 * (1 + math.cos(math.pi * (step - warmup) / (max_steps - warmup))),
                              rel_tol=1e-6):
                hint = " The cosine should end at min_lr, not 0: min_lr + 0.5 (1 + cos(pi t)) (learning_rate - min_lr)."
            raise AssertionError(f"step {step} of max_steps={max_steps}, learning_rate={lr:.4g}, warmup={warmup}, "
                                 f"min_lr={min_lr:.4g}: expected {want:.6g}, got {got:.6g}.{hint}")
    _ok(f"learning rates match minillm.train.lr_at for {len(configs)} schedules (2 fixed, the rest random)")


# ------------------------------------------------------------------------------------------------
# fine-tuning data

_MASK_WORDS = ["Where", "was", "Kalin", "Moravo", "born?", "He", "works", "for", "Pofix", "Software.",
               "Thanks!", "<|end|>", "<|user|>", "Hello", "what", "did", "she", "study?", "2+2"]


def _random_conversation(rng: random.Random) -> list[dict]:
    turns = []
    for _ in range(rng.randrange(1, 4)):
        for role in ("user", "assistant"):
            turns.append({"role": role, "content": " ".join(rng.choice(_MASK_WORDS) for _ in range(rng.randrange(1, 8)))})
    return turns


def _mask_cases():
    return [
        [{"role": "user", "content": "Where was Kalin Moravo born?"},
         {"role": "assistant", "content": "Kalin Moravo was born in Tessaly."}],
        [{"role": "user", "content": "Hi!"}, {"role": "assistant", "content": "Hello!"},
         {"role": "user", "content": "Thanks!"}, {"role": "assistant", "content": "You're welcome!"}],
        [{"role": "user", "content": "Say <|end|> please"}, {"role": "assistant", "content": "No."}],
    ]


def check_loss_mask(student_fn, tokenizer, n_random: int = 10) -> None:
    """student_fn(conversation) -> list of 0/1, one per token of chat.render(tokenizer, conversation):
    1 exactly where the loss is computed (the assistant's words and its closing <|end|>)."""
    from minillm.chat import render
    names = {v: k for k, v in tokenizer.special_tokens.items()}
    rng = _fresh()
    cases = _mask_cases() + [_random_conversation(rng) for _ in range(n_random)]
    for conv in cases:
        ids, want = render(tokenizer, conv)
        got = _call(student_fn, ([dict(t) for t in conv],), "your mask function")
        try:
            got = [int(m) for m in got]
        except Exception as e:  # noqa: BLE001
            raise AssertionError(f"return a list of 0/1 values, got {type(got).__name__}") from e
        if len(got) != len(want):
            raise AssertionError(f"your mask has {len(got)} entries but the conversation renders to {len(ids)} tokens "
                                 "(<|bos|>, then per turn: role token, content tokens, <|end|>)")
        if got == want:
            continue
        wrong = [i for i, (g, w) in enumerate(zip(got, want)) if g != w]
        kinds = set()
        role = None
        for i, t in enumerate(ids):
            if t in (tokenizer.user_id, tokenizer.assistant_id):
                role = "user" if t == tokenizer.user_id else "assistant"
            if i in wrong:
                if t == tokenizer.bos_id:
                    kinds.add("<|bos|> is context, never a target: mask 0.")
                elif t == tokenizer.assistant_id:
                    kinds.add("<|assistant|> gets mask 0: at inference we put it there ourselves, the model never has to predict it.")
                elif t == tokenizer.user_id:
                    kinds.add("<|user|> gets mask 0: the assistant must not learn to write the user's turn.")
                elif t == tokenizer.end_id and role == "assistant":
                    kinds.add("The assistant's <|end|> gets mask 1: predicting it is how the model learns to stop.")
                elif t == tokenizer.end_id:
                    kinds.add("The user's <|end|> gets mask 0: it belongs to the user's turn.")
                elif role == "user":
                    kinds.add("The user's words get mask 0: they are the condition, not the target.")
                else:
                    kinds.add("The assistant's words get mask 1: they are what the model must learn to say.")
        shown = " ".join(f"{names.get(t, repr(tokenizer.decode([t])))}:{g}" for t, g in zip(ids, got))
        raise AssertionError(f"mask differs from chat.render at {len(wrong)} position(s) of {conv!r}.\n"
                             f"  yours (token:mask): {shown}\n  " + "\n  ".join(sorted(kinds)))
    _ok(f"loss mask: same as chat.render on {len(cases)} conversations ({len(_mask_cases())} fixed, the rest random)")


def check_compute_ratio(ratio: float, pretrain: dict, sft: dict) -> None:
    """The student's ratio of pretraining to fine-tuning compute, from two stage_summary dicts
    (keys flops, tokens, seconds): it must be pretrain FLOPs / SFT FLOPs, and pretraining must cost more."""
    for name, s in (("pretrain", pretrain), ("sft", sft)):
        if not isinstance(s, dict) or not s.get("flops"):
            raise AssertionError(f"{name} should be stage_summary(run.path(...)) of a finished stage, with 'flops' > 0")
    want = pretrain["flops"] / sft["flops"]
    ratio = float(ratio)
    if not math.isclose(ratio, want, rel_tol=1e-3):
        hint = ""
        if math.isclose(ratio, 1 / want, rel_tol=1e-3):
            hint = " It is upside down: pretraining FLOPs divided by fine-tuning FLOPs."
        elif sft.get("seconds") and math.isclose(ratio, pretrain["seconds"] / sft["seconds"], rel_tol=1e-3):
            hint = " That is the ratio of seconds; the question asks for FLOPs (time depends on the machine, FLOPs do not)."
        elif sft.get("tokens") and math.isclose(ratio, pretrain["tokens"] / sft["tokens"], rel_tol=1e-3):
            hint = (" That is the ratio of tokens; FLOPs per token differ a little too (attention costs more "
                    "on pretraining's longer sequences), so use the 'flops' entries.")
        raise AssertionError(f"your ratio is {ratio:.4g}, pretrain['flops'] / sft['flops'] is {want:.4g}.{hint}")
    if want <= 1:
        raise AssertionError(f"pretraining used {want:.2f}x the compute of fine-tuning: it should cost more. "
                             "Were both stages trained to the end with the same preset?")
    _ok(f"pretraining used {want:.1f}x the compute of fine-tuning")


def check_six_n_d(flops: float, n_params: float, tokens: float) -> None:
    """The 6·N·D estimate of training compute: 6 FLOPs per parameter per token (2 forward, 4 backward)."""
    want = 6 * float(n_params) * float(tokens)
    flops = float(flops)
    if math.isclose(flops, want, rel_tol=1e-6):
        _ok(f"6·N·D = 6 x {float(n_params):.3g} x {float(tokens):.3g} = {want:.3g} FLOPs")
        return
    hints = {2: " That is the forward pass only (2·N·D): training also runs the backward pass, which costs "
                "about twice the forward, so 6·N·D.",
             1: " That is N·D: each parameter costs one multiply and one add (2 FLOPs) per token forward, and "
                "the backward pass twice that, so 6 FLOPs per parameter per token.",
             4: " That is the backward pass only: add the forward pass (2·N·D)."}
    hint = next((h for k, h in hints.items() if math.isclose(flops, k * float(n_params) * float(tokens), rel_tol=1e-6)), "")
    raise AssertionError(f"your estimate is {flops:.4g}, 6·N·D with N = {float(n_params):.4g} and D = "
                         f"{float(tokens):.4g} is {want:.4g}.{hint}")


def check_gpu_hours(student_fn, n_random: int = 20) -> None:
    """student_fn(n_params, n_tokens, peak_flops, mfu) -> GPU-hours, compared with
    minillm.device.training_gpu_hours on Llama 2 7B's figures and on fresh random ones."""
    from minillm.device import training_gpu_hours
    rng = _fresh()
    cases = [(7e9, 2e12, 312e12, 0.4)]
    cases += [(10 ** rng.uniform(6, 12), 10 ** rng.uniform(6, 13), 10 ** rng.uniform(13, 15.5),
               round(rng.uniform(0.05, 0.7), 3)) for _ in range(n_random)]
    for args in cases:
        want = training_gpu_hours(*args)
        got = _call(student_fn, args, "your gpu_hours")
        try:
            got = float(got)
        except (TypeError, ValueError):
            raise AssertionError(f"return one number (GPU-hours), got {type(got).__name__}") from None
        if math.isclose(got, want, rel_tol=1e-6):
            continue
        n, d, peak, mfu = args
        ratios = {3600: " That is GPU-seconds: divide by 3600 for hours.",
                  1 / 6: " 6·N·D: the 6 is missing.",
                  1 / 3: " That is the forward pass only (2·N·D); training costs 6·N·D.",
                  mfu ** 2: " Divide by the MFU (only that share of the peak does useful work), don't multiply."}
        hint = next((h for r, h in ratios.items() if math.isclose(got / want, r, rel_tol=1e-6)), "")
        raise AssertionError(f"N={n:.3g}, D={d:.3g}, peak={peak:.3g} FLOP/s, mfu={mfu}: expected {want:.6g} "
                             f"GPU-hours, got {got:.6g}.{hint}")
    _ok(f"GPU-hours match minillm.device.training_gpu_hours on {len(cases)} cases (Llama 2 7B and random ones)")


def check_monitor(student_fn, n_random: int = 20) -> None:
    """student_fn(log_eval) -> the deployment log's classes worst first, compared with course.monitor on
    made-up evaluations (random sizes and rates per suite, ties included)."""
    from minillm.course import LOG_CLASSES, monitor
    rng = _fresh()
    logs = [{suite: {"n": 100, figure: 0.5} for _, suite, figure in LOG_CLASSES}]      # all tied
    for _ in range(n_random):
        log = {}
        for _, suite, figure in LOG_CLASSES:
            n = rng.randrange(1, 300)
            log[suite] = {"n": n, figure: rng.choice((0.0, 1.0, round(rng.random(), 3), 0.5))}
        logs.append(log)
    for log in logs:
        want = monitor(log)
        got = _call(student_fn, (json.loads(json.dumps(log)),), "your monitor")
        try:
            got = [{k: r[k] for k in ("class", "n", "rate", "failures")} for r in got]
        except (TypeError, KeyError) as e:
            raise AssertionError(f"return a list of dicts with keys class, n, rate, failures (got {got!r:.200})") from e
        want = [{k: r[k] for k in ("class", "n", "rate", "failures")} for r in want]
        if got == want:
            continue
        hint = ""
        if sorted(map(str, got)) == sorted(map(str, want)):
            hint = (" The rows are right but in another order: most failures first, and classes with equal failures "
                    "in LOG_CLASSES order (a stable sort keeps it).")
        elif [r["class"] for r in got] == [r["class"] for r in want]:
            hint = " failures = round(n * (1 - rate)): the share *not* handled, as a count."
        raise AssertionError(f"for the log {log}:\n  expected {want}\n  got      {got}.{hint}")
    _ok(f"monitoring tables match minillm.course.monitor on {len(logs)} logs (1 all tied, the rest random)")


__all__ = ["check_cross_entropy", "check_pair_counts", "check_merge", "check_bpe_merges", "check_attention_head", "check_param_count", "check_close", "check_loss_falls", "check_next_token_batch", "check_sampling_probs", "check_stated_value", "check_lr_schedule", "check_loss_mask", "check_compute_ratio", "check_six_n_d", "check_gpu_hours", "check_monitor"]
