"""Exercise feedback: small checks a notebook's check cell calls on the student's own code.

Where a lesson builds something by hand (BPE pair counting, one merge step, one attention head, the
parameter count), the package holds the reference, and these functions compare the two. A right
answer prints one line starting with ✓; a wrong one raises AssertionError with a message that says
*what* differs on *which* input and, where the mistake is a common one (a forgotten causal mask,
the missing 1/sqrt(d), the tied embedding counted twice), names it. Instructors grading
automatically get the same thing: a check cell either passes or fails with a reason.

Every check runs the student's function on a few small, fixed inputs, so a check is deterministic
and takes milliseconds.
"""
from __future__ import annotations

import math
import os
from collections import Counter

import torch
from torch.nn import functional as F

from minillm.model import CausalSelfAttention, GPT, GPTConfig
from minillm.tokenizer import merge, render_token


def _ok(msg: str) -> None:
    print(f"✓ {msg}")


def _missed(msg: str) -> None:
    """A course target (minillm.report.TARGETS) that a whole training run missed. That is a finding about the run, not
    an error in the student's code, so it is reported, not raised -- unless MINILLM_STRICT_TARGETS=1
    (an instructor grading runs against the targets)."""
    if os.environ.get("MINILLM_STRICT_TARGETS") == "1":
        raise AssertionError(msg)
    print(f"✗ below the course target: {msg}")


def _call(fn, args, what: str):
    """Call the student's function; turn an exception into a failed check that shows the input."""
    try:
        return fn(*args)
    except Exception as e:  # noqa: BLE001 - any error in student code is a failed check, with context
        shown = ", ".join(repr(a) if not isinstance(a, torch.Tensor) else f"tensor{tuple(a.shape)}" for a in args)
        raise AssertionError(f"{what}({shown}) raised {type(e).__name__}: {e}") from e


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


def _pair_counts(ids) -> Counter:
    """The reference: how often each adjacent pair (ids[i], ids[i+1]) occurs (what Tokenizer.train counts)."""
    return Counter(zip(ids, ids[1:]))


def check_pair_counts(student_fn) -> None:
    """student_fn(ids: list[int]) -> {pair: count} for adjacent pairs."""
    for ids in _ID_CASES:
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
    _ok(f"pair counts: all {len(_ID_CASES)} cases right")


def check_merge(student_fn) -> None:
    """student_fn(ids, pair, new_id) -> new ids; checked against tokenizer.merge."""
    for ids, pair, new_id in _MERGE_CASES:
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
    _ok(f"merge: all {len(_MERGE_CASES)} cases match minillm.tokenizer.merge")


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


def check_attention_head(student_fn) -> None:
    """student_fn(q, k, v) -> (out, weights) for one causal head, q/k/v of shape (T, head_size).

    Checked against the package's CausalSelfAttention ("manual" mode, one head): weights must equal
    attention_probs and out must equal the layer's output.
    """
    for T, hs, seed in ((6, 8, 0), (5, 16, 1), (1, 4, 2)):
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
    _ok("attention head: weights and output match minillm's CausalSelfAttention (manual mode) on 3 inputs")


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
    _ok(f"the loss falls: {losses[0]:.3f} -> {losses[-1]:.3f} in {len(losses) - 1} steps")


# ------------------------------------------------------------------------------------------------
# pretraining batches

def check_next_token_batch(student_fn) -> None:
    """student_fn(tokens, starts, block_size) -> (x, y): for each start a window of the token stream,
    x = tokens[s : s+block_size], y = the same window shifted by one (what data.pretrain_batch builds)."""
    tokens = torch.arange(100, 140)
    for starts, T in (([0, 5, 20], 8), ([31], 8), ([3, 3], 1)):
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
    _ok("next-token batches: y is x shifted by one, on 3 cases")


# ------------------------------------------------------------------------------------------------
# the base model

def check_base_model(answer_rate: float, stored_accuracy: float, *, chance: float, preset: str,
                     max_answer_rate: float | None = None, min_stored: float = 0.5) -> None:
    """A base model is a document sampler that nevertheless stores facts: asked a question it rarely
    answers (answer_rate <= max_answer_rate, by default the course's base_answer_rate target), but it
    completes biographies (stored_accuracy well above chance: >= min_stored and >= 3 x chance). The tiny
    "smoke" model knows nothing, so there the thresholds are reported, not enforced."""
    max_answer_rate = _target("base_answer_rate") if max_answer_rate is None else max_answer_rate
    answer_rate, stored_accuracy, chance = float(answer_rate), float(stored_accuracy), float(chance)
    for name, v in (("answer_rate", answer_rate), ("stored_accuracy", stored_accuracy), ("chance", chance)):
        if not 0.0 <= v <= 1.0:
            raise AssertionError(f"{name} should be a share between 0 and 1, got {v}")
    need_stored = max(min_stored, 3 * chance)
    summary = (f"answer rate {answer_rate:.0%} (at most {max_answer_rate:.0%} expected), stored accuracy "
               f"{stored_accuracy:.0%} (at least {need_stored:.0%} expected; chance is {chance:.1%})")
    if preset == "smoke":
        _ok(f"smoke preset: {summary} -- not enforced, the smoke model is too small to know anything")
        return
    if answer_rate > max_answer_rate:
        return _missed(f"{summary}: the base model answers too often. Did you ask it through the chat "
                      "template (as_chat=True)? A base model gets the question as document text "
                      "(evaluate.ask(..., as_chat=False)), and is scored with require_stop=False")
    if stored_accuracy < need_stored:
        return _missed(f"{summary}: the base model completes too few biographies. Was it trained to the "
                      "end (is_trained(run, 'base'))? Are the probes the heldout people's "
                      "(world.bio_probes('heldout', from_biography=True))?")
    _ok(summary)


# ------------------------------------------------------------------------------------------------
# fine-tuning data

def _mask_cases():
    return [
        [{"role": "user", "content": "Where was Kalin Moravo born?"},
         {"role": "assistant", "content": "Kalin Moravo was born in Tessaly."}],
        [{"role": "user", "content": "Hi!"}, {"role": "assistant", "content": "Hello!"},
         {"role": "user", "content": "Thanks!"}, {"role": "assistant", "content": "You're welcome!"}],
        [{"role": "user", "content": "Say <|end|> please"}, {"role": "assistant", "content": "No."}],
    ]


def check_loss_mask(student_fn, tokenizer) -> None:
    """student_fn(conversation) -> list of 0/1, one per token of chat.render(tokenizer, conversation):
    1 exactly where the loss is computed (the assistant's words and its closing <|end|>)."""
    from minillm.chat import render
    names = {v: k for k, v in tokenizer.special_tokens.items()}
    for conv in _mask_cases():
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
    _ok(f"loss mask: same as chat.render on {len(_mask_cases())} conversations")


def check_heldout_unseen(conversations, heldout_names) -> None:
    """No held-out person's name appears anywhere in the fine-tuning conversations (else the held-out
    accuracy would measure memorised answers, not extracted knowledge)."""
    heldout_names = list(heldout_names)
    if not heldout_names:
        raise AssertionError("heldout_names is empty: pass [p.name for p in world.people_in('heldout')]")
    for k, conv in enumerate(conversations):
        for turn in conv:
            for name in heldout_names:
                if name in turn["content"]:
                    raise AssertionError(f"conversation {k} mentions the held-out person {name!r} "
                                         f"({turn['role']}: {turn['content']!r}); held-out people must appear only "
                                         "in pretraining documents")
    _ok(f"none of the {len(heldout_names)} held-out people appears in the {len(conversations):,} conversations")


__all__ = ["check_pair_counts", "check_merge", "check_bpe_merges", "check_attention_head", "check_param_count", "check_close",
           "check_loss_falls", "check_next_token_batch", "check_base_model", "check_loss_mask", "check_heldout_unseen"]


# ------------------------------------------------------------------------------------------------
# fine-tuning, base vs assistant, iterating, cost (notebooks 06-09)
#
# These check results of whole training runs. The course's thresholds (minillm.report.TARGETS) hold for the `cpu`
# and `gpu` presets; the `smoke` model is too small to learn anything, so with preset="smoke" a check
# verifies the inputs' shape and reports the numbers without enforcing the thresholds.

def _share(name: str, v) -> float:
    try:
        v = float(v)
    except (TypeError, ValueError):
        raise AssertionError(f"{name} should be a number between 0 and 1, got {v!r}") from None
    if not 0.0 <= v <= 1.0:
        raise AssertionError(f"{name} should be a share between 0 and 1, got {v}")
    return v


def _smoke_note(preset: str, summary: str) -> bool:
    if preset == "smoke":
        _ok(f"smoke preset: {summary} -- not enforced, the smoke model is too small to learn anything")
        return True
    return False


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


def check_base_vs_assistant(base_eval: dict, assistant_eval: dict, *, preset: str) -> None:
    """evaluate_base(...) and evaluate_assistant(...) results: the base model rarely answers, the assistant
    answers (in its format, ending its turn) and gets held-out people's facts right (the course's targets)."""
    max_base_answer_rate, min_answer_rate = _target("base_answer_rate"), _target("assistant_answer_rate")
    min_heldout = _target("heldout_accuracy")
    try:
        base_rate = _share("the base model's answer rate", base_eval["answer_rate"])
        asst_rate = _share("the assistant's answer rate", assistant_eval["standard"]["answer_rate"])
        heldout = _share("held-out accuracy", assistant_eval["standard"]["accuracy"])
    except (KeyError, TypeError):
        raise AssertionError("pass the dicts that evaluate_base(run, base, world, tok) and "
                             "evaluate_assistant(run, assistant, world, tok) return") from None
    summary = (f"base answers {base_rate:.0%} (at most {max_base_answer_rate:.0%} expected), assistant answers "
               f"{asst_rate:.0%} (at least {min_answer_rate:.0%}), held-out accuracy {heldout:.0%} (at least {min_heldout:.0%})")
    if _smoke_note(preset, summary):
        return
    if base_rate > max_base_answer_rate:
        return _missed(f"{summary}: the base model answers too often. It should get the question as document "
                      "text (as_chat=False) and be scored with require_stop=False, as evaluate_base does")
    if asst_rate < min_answer_rate:
        return _missed(f"{summary}: the assistant too often does not answer in its format or does not end its "
                      "turn. Was fine-tuning run to the end (is_trained(run, ...))? Look at the responses in "
                      "assistant_eval['standard']['items'] that have answered == False")
    if heldout < min_heldout:
        return _missed(f"{summary}: the assistant does not extract enough of what pretraining stored. Check "
                      "that the base model was fully pretrained and that SFT mixed in pretraining text "
                      "(run.preset.sft_mix)")
    _ok(summary)


def check_knowledge_augmentation(heldout_many: float, heldout_one: float, stored_one: float, *, preset: str,
                                 max_heldout_one: float = 0.30, min_stored_one: float = 0.80,
                                 min_heldout_many: float = 0.90) -> None:
    """The ablation: with several biographies per person the assistant answers held-out questions
    (heldout_many high); with one, it cannot (heldout_one low) although the base model still completes
    those people's biographies (stored_one high): stored, but not extractable."""
    heldout_many = _share("held-out accuracy with several biographies", heldout_many)
    heldout_one = _share("held-out accuracy with one biography", heldout_one)
    stored_one = _share("stored accuracy with one biography", stored_one)
    summary = (f"held-out accuracy {heldout_many:.0%} with several biographies (at least {min_heldout_many:.0%}), "
               f"{heldout_one:.0%} with one (at most {max_heldout_one:.0%}), while the one-biography base model "
               f"completes {stored_one:.0%} of the biographies (at least {min_stored_one:.0%})")
    if _smoke_note(preset, summary):
        return
    if heldout_many < min_heldout_many:
        return _missed(f"{summary}: the augmented run should extract the held-out facts. Is heldout_many the "
                      "main run's assistant (notebook_run()), and heldout_one the augment=1 run's?")
    if heldout_one > max_heldout_one:
        return _missed(f"{summary}: with a single biography the facts should not be extractable. Was the "
                      "second run made with notebook_run(augment=1)? (world.config.bios_per_person should be 1)")
    if stored_one < min_stored_one:
        return _missed(f"{summary}: the one-biography base model should still complete its biographies "
                      "(evaluate_base(...)['stored']['accuracy'] of the augment=1 run): was it fully pretrained?")
    _ok(summary)


def _target(key: str) -> float:
    from minillm.report import TARGETS
    return next(b for k, _, b, _ in TARGETS if k == key)


def check_fix(before: dict, after: dict, *, preset: str) -> None:
    """The iteration lesson: evaluate_assistant(...) of the assistant before the fix and after it. The fixed
    class (out-of-scope requests) goes from at most 50% to at least 90% handled, no other figure gets more
    than 1 point worse, and real held-out people are not turned away (the course's targets)."""
    from minillm.course import assistant_figures
    from minillm.report import FIX_TOLERANCE, worse_after_fix
    try:
        b, a = assistant_figures(before), assistant_figures(after)
    except (KeyError, TypeError):
        raise AssertionError("pass two dicts returned by evaluate_assistant(run, model, world, tok): the assistant "
                             "before the fix, then after it") from None
    for k in a:
        _share(f"{k} (before)", b[k]), _share(f"{k} (after)", a[k])
    most_before, least_after = _target("scope_answer_rate_before_fix"), _target("scope_answer_rate")
    max_refused = _target("heldout_refused_rate")
    summary = (f"out-of-scope requests answered per the guideline {b['scope_answer_rate']:.0%} -> "
               f"{a['scope_answer_rate']:.0%}; held-out accuracy {b['heldout_accuracy']:.0%} -> "
               f"{a['heldout_accuracy']:.0%}; real held-out people turned away {a['heldout_refused_rate']:.0%}")
    if _smoke_note(preset, summary):
        return
    if b["scope_answer_rate"] > most_before:
        return _missed(f"{summary}. Before the fix the class should fail (at most {most_before:.0%} handled): is "
                      "`before` the first assistant (fix=False)?")
    if a["scope_answer_rate"] < least_after:
        return _missed(f"{summary}. After the fix at least {least_after:.0%} of the out-of-scope requests should get "
                      "the guideline's scope answer. Were the scope conversations in its SFT set (fix=True)?")
    worse = worse_after_fix({**a, **{k + "_before_fix": v for k, v in b.items()}}, a)
    if worse:
        return _missed(f"{summary}. The fix cost more than {FIX_TOLERANCE:.0%} on: {', '.join(worse)}. A fix must "
                      "not break what worked: did the SFT set lose conversations, or the pretraining text mixed "
                      "into each batch?")
    if a["heldout_refused_rate"] > max_refused:
        return _missed(f"{summary}. The fixed assistant turns real people away (more than {max_refused:.0%}): the "
                      "scope conversations should teach it to tell a request about a person from one that is not")
    _ok(summary)


def check_custom_assistant(mine: dict, original: dict, *, preset: str, min_rate: float = 0.5) -> None:
    """Your own assistant follows your guideline: minillm.custom.evaluate_style(...) results for your
    assistant and for the course's assistant, with the same test of your guideline. Yours must follow
    it on at least `min_rate` of the held-out questions, and more often than the course's assistant."""
    try:
        r_mine, r_orig = _share("your assistant's rate", mine["rate"]), _share("the original's rate", original["rate"])
    except (KeyError, TypeError):
        raise AssertionError("pass the dicts minillm.custom.evaluate_style(...) returns: your assistant's, then the "
                             "course assistant's, on the same items with the same test") from None
    summary = (f"your guideline is followed in {r_mine:.0%} of the answers (at least {min_rate:.0%} expected), "
               f"the course's assistant follows it in {r_orig:.0%}")
    if _smoke_note(preset, summary):
        return
    if r_mine < min_rate or r_mine <= r_orig:
        return _missed(f"{summary}. Look at the answers in mine['items']: does your test accept what your own "
                      "answer function writes (try it on one conversation of your SFT set)? Is your format "
                      "learnable (the same shape every time)?")
    _ok(summary)


__all__ += ["check_compute_ratio", "check_six_n_d", "check_base_vs_assistant", "check_knowledge_augmentation",
            "check_fix", "check_custom_assistant"]
