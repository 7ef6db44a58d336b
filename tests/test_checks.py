"""The exercise checks: a right answer passes with a ✓, each usual mistake fails with a message naming it."""
import math
from collections import Counter

import pytest
import torch
from torch.nn import functional as F

from minillm import checks
from minillm.model import GPT, GPTConfig


@pytest.fixture(autouse=True)
def strict_targets(monkeypatch):
    """Course targets raise only for an instructor who asks (MINILLM_STRICT_TARGETS=1): these tests ask."""
    monkeypatch.setenv("MINILLM_STRICT_TARGETS", "1")


def test_the_targets_table_names_each_bound_once():
    from minillm.targets import SCOPES, TARGETS, target
    assert len({(t.key, t.scope) for t in TARGETS}) == len(TARGETS)
    assert all(t.op in (">=", "<=") and 0 <= t.bound <= 1 and t.scope in SCOPES for t in TARGETS)
    assert (target("heldout_accuracy").op, target("heldout_accuracy", "augment1").op) == (">=", "<=")
    with pytest.raises(KeyError, match="no target 'heldout_accuracy' in scope 'gpu'"):
        target("heldout_accuracy", "gpu")


def test_every_check_is_importable_from_minillm_checks():
    from minillm.checks import assistant, pretraining, runs
    names = pretraining.__all__ + assistant.__all__ + runs.__all__
    assert len(set(names)) == len(names) == len(checks.__all__)
    assert all(callable(getattr(checks, n)) for n in names)


def test_a_missed_course_target_is_reported_not_raised_by_default(monkeypatch, capsys):
    monkeypatch.delenv("MINILLM_STRICT_TARGETS")
    checks.check_base_model(0.5, 0.9, chance=0.05, preset="cpu")
    out = capsys.readouterr().out
    assert out.startswith("✗ below the course target: answer rate 50.0%") and "answers too often" in out


# ---------------------------------------------------------------- pair counts and merge

def good_counts(ids):
    counts = {}
    for pair in zip(ids, ids[1:]):
        counts[pair] = counts.get(pair, 0) + 1
    return counts


def good_merge(ids, pair, new_id):
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def test_pair_counts_right_answer_passes(capsys):
    checks.check_pair_counts(good_counts)
    checks.check_pair_counts(lambda ids: Counter(zip(ids, ids[1:])))
    assert "✓ pair counts" in capsys.readouterr().out


def test_pair_counts_missing_last_pair_is_named():
    def off_by_one(ids):
        return Counter(zip(ids[:-1], ids[1:-1]))
    with pytest.raises(AssertionError, match="last pair is missing"):
        checks.check_pair_counts(off_by_one)


def test_pair_counts_presence_instead_of_count_is_named():
    with pytest.raises(AssertionError, match="every occurrence"):
        checks.check_pair_counts(lambda ids: {p: 1 for p in zip(ids, ids[1:])})


def test_pair_counts_wrong_type_and_exceptions_are_explained():
    with pytest.raises(AssertionError, match="return a dict"):
        checks.check_pair_counts(lambda ids: list(zip(ids, ids[1:])))
    with pytest.raises(AssertionError, match="raised ZeroDivisionError"):
        checks.check_pair_counts(lambda ids: 1 / 0)


def test_merge_right_answer_passes(capsys):
    checks.check_merge(good_merge)
    assert "✓ merge" in capsys.readouterr().out


def test_merge_overlap_mistake_is_named():
    def overlapping(ids, pair, new_id):       # forgets to skip the second id of a merged pair
        out, i = [], 0
        while i < len(ids):
            if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
                out.append(new_id)
            else:
                out.append(ids[i])
            i += 1
        return out
    with pytest.raises(AssertionError, match=r"merge\(\[1, 2, 3, 1, 2\]"):
        checks.check_merge(overlapping)


def test_merge_missing_last_pair_is_named():
    def stops_early(ids, pair, new_id):
        out, i = [], 0
        while i < len(ids):
            if i + 2 < len(ids) and (ids[i], ids[i + 1]) == pair:   # off by one: never merges at the end
                out.append(new_id)
                i += 2
            else:
                out.append(ids[i])
                i += 1
        return out
    with pytest.raises(AssertionError, match="very end"):
        checks.check_merge(stops_early)


def test_merge_does_not_see_the_callers_list_mutated():
    def mutating(ids, pair, new_id):
        result = good_merge(ids, pair, new_id)
        ids.clear()
        return result
    checks.check_merge(mutating)                # the check passes copies, so its cases stay intact


# ---------------------------------------------------------------- attention

def good_head(q, k, v):
    T, hs = q.shape
    scores = (q @ k.T) / math.sqrt(hs)
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
    w = F.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
    return w @ v, w


def test_attention_head_right_answer_passes(capsys):
    checks.check_attention_head(good_head)
    assert "✓ attention head" in capsys.readouterr().out


@pytest.mark.parametrize("mistake, message", [
    (lambda q, k, v: _head(q, k, v, mask=False), "forgot the causal mask"),
    (lambda q, k, v: _head(q, k, v, scale=1.0), "sqrt"),
    (lambda q, k, v: _head(q, k, v, scale=1.0 / q.shape[1]), "divided by head_size"),
    (lambda q, k, v: _head(q, k, v, dim=0), "wrong dimension"),
    (lambda q, k, v: _head(q, k, v, zero_mask=True), "set to 0, not -inf"),
    (lambda q, k, v: _head(q, k, v, mask_after=True), "masked after the softmax"),
    (lambda q, k, v: _head(q, k, v, transpose=True), "transposed"),
])
def test_attention_head_mistakes_are_named(mistake, message):
    with pytest.raises(AssertionError, match=message):
        checks.check_attention_head(mistake)


def _head(q, k, v, *, mask=True, scale=None, dim=-1, zero_mask=False, mask_after=False, transpose=False):
    T, hs = q.shape
    scale = 1 / math.sqrt(hs) if scale is None else scale
    scores = (q @ k.T) * scale
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
    if zero_mask:
        w = F.softmax(scores * causal, dim=-1)
    elif mask_after:
        w = F.softmax(scores, dim=-1) * causal
    else:
        w = F.softmax(scores.masked_fill(~causal, float("-inf")) if mask else scores, dim=dim)
    if transpose:
        w = w.T
    return w @ v, w


def test_attention_head_wrong_output_and_shapes_are_explained():
    with pytest.raises(AssertionError, match="weights @ v"):
        checks.check_attention_head(lambda q, k, v: (good_head(q, k, v)[1].T @ v, good_head(q, k, v)[1]))
    with pytest.raises(AssertionError, match=r"return two things"):
        checks.check_attention_head(lambda q, k, v: good_head(q, k, v)[0])
    with pytest.raises(AssertionError, match=r"shape \(T, T\)"):
        checks.check_attention_head(lambda q, k, v: (good_head(q, k, v)[0], good_head(q, k, v)[1][None]))


# ---------------------------------------------------------------- parameter count, closeness, loss

CFG = GPTConfig(vocab_size=96, block_size=16, n_layer=2, n_head=2, n_embd=32)


def hand_count(c, *, tied_twice=False, no_pos=False, no_ln_f=False):
    d = c.n_embd
    block = 12 * d * d + 13 * d
    n = c.vocab_size * d + c.block_size * d + c.n_layer * block + 2 * d
    n += c.vocab_size * d if tied_twice else 0
    n -= c.block_size * d if no_pos else 0
    n -= 2 * d if no_ln_f else 0
    return n


def test_param_count_right_and_wrong(capsys):
    checks.check_param_count(hand_count(CFG), CFG)
    assert "✓ parameter count" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="count that V x d matrix once"):
        checks.check_param_count(hand_count(CFG, tied_twice=True), CFG)
    with pytest.raises(AssertionError, match="position embedding"):
        checks.check_param_count(hand_count(CFG, no_pos=True), CFG)
    with pytest.raises(AssertionError, match="final LayerNorm"):
        checks.check_param_count(hand_count(CFG, no_ln_f=True), CFG)
    with pytest.raises(AssertionError, match="per block"):
        checks.check_param_count(hand_count(CFG) + 2 * 7, CFG)


def test_check_close(capsys):
    a = torch.randn(3, 4)
    checks.check_close(a, a + 1e-7, "the block")
    assert "✓ the block: same numbers" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="largest difference"):
        checks.check_close(a, a + 1, "the block")
    with pytest.raises(AssertionError, match=r"shape \(3, 4\), expected \(4, 3\)"):
        checks.check_close(a, a.T, "the block")


def test_check_loss_falls(capsys):
    checks.check_loss_falls([math.log(96), 3.0, 2.0, 1.0], vocab_size=96)
    assert "✓ the loss falls" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="not finite"):
        checks.check_loss_falls([4.5, float("nan"), 1.0])
    with pytest.raises(AssertionError, match="should fall"):
        checks.check_loss_falls([4.5, 4.5, 4.4, 4.5])
    with pytest.raises(AssertionError, match="ln\\(96\\)"):
        checks.check_loss_falls([9.0, 2.0, 1.0], vocab_size=96)


def test_param_count_matches_a_real_model():
    assert GPT(CFG).num_params() == hand_count(CFG)


def test_check_bpe_merges(capsys):
    from minillm.tokenizer import Tokenizer
    text = "the cat and the hat sat on the mat with the bat " * 5
    tok = Tokenizer.train(text, 256 + 4 + 8)
    checks.check_bpe_merges(list(tok.merges)[:5], tok)
    assert "✓ your first 5 merges" in capsys.readouterr().out
    wrong = list(tok.merges)[:3] + [(1, 2)]
    with pytest.raises(AssertionError, match="merge 259 differs"):
        checks.check_bpe_merges(wrong, tok)
    with pytest.raises(AssertionError, match="very first merge"):
        checks.check_bpe_merges([(1, 2)], tok)
    with pytest.raises(AssertionError, match="empty"):
        checks.check_bpe_merges([], tok)


# ---------------------------------------------------------------- next-token batches, base model, SFT data

def test_next_token_batch_right_and_wrong(capsys):
    def good(tokens, starts, T):
        w = torch.stack([tokens[s:s + T + 1] for s in starts])
        return w[:, :-1], w[:, 1:]
    checks.check_next_token_batch(good)
    assert "✓ next-token batches" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="swapped"):
        checks.check_next_token_batch(lambda t, s, T: good(t, s, T)[::-1])
    with pytest.raises(AssertionError, match="copy its input"):
        checks.check_next_token_batch(lambda t, s, T: (good(t, s, T)[0], good(t, s, T)[0]))
    with pytest.raises(AssertionError, match="shape"):
        checks.check_next_token_batch(lambda t, s, T: (torch.stack([t[i:i + T] for i in s]),
                                                       torch.stack([t[i + 1:i + T] for i in s])))


def test_base_model_thresholds(capsys):
    checks.check_base_model(0.02, 0.9, chance=0.05, preset="cpu")
    assert "✓ answer rate 2.0%" in capsys.readouterr().out
    checks.check_base_model(0.5, 0.0, chance=0.05, preset="smoke")          # reported, not enforced
    assert "not enforced" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="answers too often"):
        checks.check_base_model(0.4, 0.9, chance=0.05, preset="cpu")
    with pytest.raises(AssertionError, match="too few biographies"):
        checks.check_base_model(0.0, 0.3, chance=0.05, preset="cpu")
    with pytest.raises(AssertionError, match="between 0 and 1"):
        checks.check_base_model(40, 0.9, chance=0.05, preset="cpu")


@pytest.fixture(scope="module")
def chat_tok():
    from minillm.tokenizer import Tokenizer
    return Tokenizer.train("Where was Kalin Moravo born? Kalin Moravo was born in Tessaly. " * 20, 256 + 4 + 16)


def test_loss_mask_right_answer_and_named_mistakes(chat_tok, capsys):
    from minillm.chat import render
    checks.check_loss_mask(lambda conv: render(chat_tok, conv)[1], chat_tok)
    assert "✓ loss mask" in capsys.readouterr().out

    def mask(conv, *, end=1, user=0, role=0):
        m = [0]
        for turn in conv:
            n = len(chat_tok.encode(turn["content"]))
            if turn["role"] == "user":
                m += [role] + [user] * n + [0]
            else:
                m += [role] + [1] * n + [end]
        return m

    with pytest.raises(AssertionError, match="learns to stop"):
        checks.check_loss_mask(lambda c: mask(c, end=0), chat_tok)
    with pytest.raises(AssertionError, match="user's words get mask 0"):
        checks.check_loss_mask(lambda c: mask(c, user=1), chat_tok)
    with pytest.raises(AssertionError, match="<\\|assistant\\|> gets mask 0"):
        checks.check_loss_mask(lambda c: mask(c, role=1), chat_tok)
    with pytest.raises(AssertionError, match="entries"):
        checks.check_loss_mask(lambda c: [0, 1], chat_tok)


def test_heldout_unseen():
    convs = [[{"role": "user", "content": "Where was Ana Bel born?"}, {"role": "assistant", "content": "Ana Bel was born in X."}]]
    checks.check_heldout_unseen(convs, ["Kalin Moravo"])
    with pytest.raises(AssertionError, match="held-out person 'Ana Bel'"):
        checks.check_heldout_unseen(convs, ["Ana Bel"])


# ---------------------------------------------------------------- notebooks 06-09: runs, fixes, cost

def _stage(flops, tokens, seconds):
    return {"flops": flops, "tokens": tokens, "seconds": seconds, "step": 1, "history": []}


def test_compute_ratio_right_and_named_mistakes(capsys):
    pre, sft = _stage(8e12, 1_000_000, 300.0), _stage(1e12, 200_000, 20.0)
    checks.check_compute_ratio(8.0, pre, sft)
    assert "✓ pretraining used 8.0x" in capsys.readouterr().out
    for wrong, message in ((1 / 8, "upside down"), (15.0, "ratio of seconds"), (5.0, "ratio of tokens")):
        with pytest.raises(AssertionError, match=message):
            checks.check_compute_ratio(wrong, pre, sft)
    with pytest.raises(AssertionError, match="should cost more"):
        checks.check_compute_ratio(0.5, _stage(1e12, 1, 1.0), _stage(2e12, 1, 1.0))
    with pytest.raises(AssertionError, match="stage_summary"):
        checks.check_compute_ratio(1.0, {}, sft)


def test_six_n_d(capsys):
    checks.check_six_n_d(6 * 7e9 * 2e12, 7e9, 2e12)
    assert "8.4e+22" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="forward pass only"):
        checks.check_six_n_d(2 * 7e9 * 2e12, 7e9, 2e12)
    with pytest.raises(AssertionError, match="6 FLOPs per parameter"):
        checks.check_six_n_d(7e9 * 2e12, 7e9, 2e12)


def _assistant_eval(heldout_acc=0.95, answer_rate=0.98, scope=0.95, refused=0.0, unseen=0.9):
    """An evaluate_assistant(...) result with the given figures (every suite the course reads)."""
    from minillm.evaluate import ASSISTANT_FIGURES
    figures = {"standard": {"accuracy": heldout_acc, "answer_rate": answer_rate, "refused": refused},
               "unseen": {"accuracy": unseen}, "new_word": {"accuracy": 0.3}, "follow_up": {"accuracy": 0.85},
               "after_greeting": {"accuracy": 0.9}, "second_person": {"accuracy": 0.9}, "scope_mid_chat": {"rate": 0.8},
               "profile": {"accuracy": 0.8}, "scope": {"rate": scope}, "small_talk": {"rate": 1.0},
               "unknown": {"idk_rate": 0.0}}
    assert {suite for suite, _ in ASSISTANT_FIGURES.values()} == set(figures)
    return figures


def test_base_vs_assistant_thresholds_only_outside_smoke(capsys):
    base = {"answer_rate": 0.02, "stored": {"accuracy": 0.9}}
    checks.check_base_vs_assistant(base, _assistant_eval(), preset="cpu")
    assert "✓ base answers 2%" in capsys.readouterr().out
    chatty = {"answer_rate": 0.5}
    with pytest.raises(AssertionError, match="answers too often"):
        checks.check_base_vs_assistant(chatty, _assistant_eval(), preset="cpu")
    with pytest.raises(AssertionError, match="does not end its"):
        checks.check_base_vs_assistant(base, _assistant_eval(answer_rate=0.5), preset="cpu")
    with pytest.raises(AssertionError, match="extract"):
        checks.check_base_vs_assistant(base, _assistant_eval(heldout_acc=0.3), preset="cpu")
    checks.check_base_vs_assistant(chatty, _assistant_eval(heldout_acc=0.0, answer_rate=0.0), preset="smoke")
    assert "not enforced" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="evaluate_base"):
        checks.check_base_vs_assistant({}, _assistant_eval(), preset="smoke")


def test_knowledge_augmentation(capsys):
    checks.check_knowledge_augmentation(0.95, 0.1, 0.9, preset="cpu")
    assert "✓" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="not be extractable"):
        checks.check_knowledge_augmentation(0.95, 0.6, 0.9, preset="cpu")
    with pytest.raises(AssertionError, match="still complete"):
        checks.check_knowledge_augmentation(0.95, 0.1, 0.3, preset="cpu")
    with pytest.raises(AssertionError, match="augmented run"):
        checks.check_knowledge_augmentation(0.5, 0.1, 0.9, preset="cpu")
    checks.check_knowledge_augmentation(0.0, 0.0, 0.0, preset="smoke")
    with pytest.raises(AssertionError, match="between 0 and 1"):
        checks.check_knowledge_augmentation(95, 0.1, 0.9, preset="smoke")


def test_fix_measured_against_every_regression(capsys):
    before = _assistant_eval(scope=0.0)
    checks.check_fix(before, _assistant_eval(scope=0.97), preset="cpu")
    assert "out-of-scope requests answered per the guideline 0% -> 97%; held-out accuracy 95% -> 95%" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="Before the fix the class should fail"):
        checks.check_fix(_assistant_eval(scope=0.8), _assistant_eval(scope=0.97), preset="cpu")
    with pytest.raises(AssertionError, match=r"Missed: the fixed class reached 50% \(at least 90%\) .*not a mistake in running the notebook"):
        checks.check_fix(before, _assistant_eval(scope=0.5), preset="cpu")
    with pytest.raises(AssertionError, match=r"Missed: heldout_accuracy 95.0% -> 93.0% \(a fix must"):
        checks.check_fix(before, _assistant_eval(scope=0.97, heldout_acc=0.93), preset="cpu")
    with pytest.raises(AssertionError, match=r"Missed: heldout_refused_rate 0.0% -> 5.0% \("):
        checks.check_fix(before, _assistant_eval(scope=0.97, refused=0.05), preset="cpu")
    with pytest.raises(AssertionError, match=r"Missed: real held-out people turned away 5.5% \(at most 2%\)"):
        checks.check_fix(_assistant_eval(scope=0.0, refused=0.055), _assistant_eval(scope=0.97, refused=0.055), preset="cpu")
    # exactly one point worse is within the tolerance, though 0.736 - 0.726 exceeds 0.01 in floats
    checks.check_fix(_assistant_eval(scope=0.0, heldout_acc=0.736), _assistant_eval(scope=0.97, heldout_acc=0.726),
                     preset="cpu")
    assert capsys.readouterr().out.startswith("✓ ")
    # one run may miss a target by up to 3 points (the targets are for the mean of three seeds), and says so
    checks.check_fix(_assistant_eval(scope=0.0, refused=0.03), _assistant_eval(scope=0.89, refused=0.03), preset="cpu")
    out = capsys.readouterr().out
    assert out.startswith("✓ ") and "The fixed class 89.0% is 1.0 points below the 90% target" in out
    assert "Real held-out people turned away 3.0% is 1.0 points above the 2% target" in out
    with pytest.raises(AssertionError, match=r"Missed: the fixed class reached 86% \(at least 90%\)"):
        checks.check_fix(before, _assistant_eval(scope=0.86), preset="cpu")
    # every figure that missed is named in one message, and a class that did not move asks about fix=True
    with pytest.raises(AssertionError, match=r"Missed: the fixed class reached 0% \(at least 90%\); heldout_accuracy "
                                             r"95.0% -> 93.0%; heldout_refused_rate 0.0% -> 5.0% .* \(fix=True\)\?"):
        checks.check_fix(before, _assistant_eval(scope=0.0, heldout_acc=0.93, refused=0.05), preset="cpu")
    checks.check_fix(before, _assistant_eval(scope=0.0, heldout_acc=0.0), preset="smoke")
    assert "not enforced" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="evaluate_assistant"):
        checks.check_fix({}, before, preset="smoke")


def test_custom_assistant(capsys):
    facts = dict(mine_right=0.85, original_right=0.9)
    checks.check_custom_assistant({"rate": 0.9}, {"rate": 0.0}, preset="cpu", **facts)
    assert capsys.readouterr().out == ("✓ your guideline is followed in 90.0% of the answers (at least 50% expected; the "
                                       "course's assistant: 0.0%); the right fact in 85.0% (the course's assistant: "
                                       "90.0%, at least 80% of that expected)\n")
    with pytest.raises(AssertionError, match="your test accept"):
        checks.check_custom_assistant({"rate": 0.2}, {"rate": 0.0}, preset="cpu", **facts)
    with pytest.raises(AssertionError, match="your test accept"):
        checks.check_custom_assistant({"rate": 0.6}, {"rate": 0.7}, preset="cpu", **facts)
    # the format kept, the facts lost (a name-first format: 1.8% right against 89.6%) is not a pass
    with pytest.raises(AssertionError, match="keeps your format but lost the facts"):
        checks.check_custom_assistant({"rate": 0.86}, {"rate": 0.0}, preset="cpu", mine_right=0.018, original_right=0.896)
    checks.check_custom_assistant({"rate": 0.0}, {"rate": 0.0}, preset="smoke", mine_right=0.0, original_right=0.0)
    with pytest.raises(AssertionError, match="evaluate_style"):
        checks.check_custom_assistant({}, {"rate": 0.0}, preset="smoke", **facts)


# ---- the exercises' checks: the reference passes, each common mistake fails with its hint, and a function that
# only fits the fixed cases fails on the fresh random ones


def own_copy(fn):
    """A right answer that is not the reference itself: a new function object with the reference's code, as a
    student who wrote the same lines would have (the checks make the reference object unavailable, not its code)."""
    import types
    copy = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)
    copy.__kwdefaults__ = fn.__kwdefaults__
    return copy


def test_a_solution_that_calls_the_reference_gets_no_points():
    from torch.nn import functional as F
    from minillm.device import training_gpu_hours
    from minillm.evaluate import monitor
    from minillm.generate import sampling_probs
    from minillm.tokenizer import merge
    from minillm.train import TrainConfig, lr_at
    said = "your function calls {}'s own {}, the answer it is checked against; write it yourself"
    calls = [
        (checks.check_merge, lambda ids, pair, i: merge(ids, pair, i), "minillm", "minillm.tokenizer.merge"),
        (checks.check_sampling_probs, sampling_probs, "minillm", "minillm.generate.sampling_probs"),
        (checks.check_monitor, monitor, "minillm", "minillm.evaluate.monitor"),
        (checks.check_gpu_hours, training_gpu_hours, "minillm", "minillm.device.training_gpu_hours"),
        (checks.check_lr_schedule, lambda s, m, lr, w, mn: lr_at(s, TrainConfig(m, 1, lr, mn / lr, w)),
         "minillm", "minillm.train.lr_at"),
        (checks.check_cross_entropy, lambda lg, t: torch.nn.CrossEntropyLoss(ignore_index=-1)(lg, t),
         "torch", "torch.nn.functional.cross_entropy"),
    ]
    for check, solution, owner, name in calls:
        with pytest.raises(AssertionError) as e:
            check(solution)
        assert str(e.value) == said.format(owner, name)
    assert merge([1, 2, 3], (1, 2), 9) == [9, 3]                  # and the reference is back afterwards
    assert F.cross_entropy(torch.zeros(1, 4), torch.tensor([0])).item() == pytest.approx(math.log(4))

def test_pair_counts_catch_a_function_that_only_knows_the_fixed_cases():
    from minillm.checks import pretraining
    known = {tuple(ids): dict(pretraining._pair_counts(ids)) for ids in pretraining._ID_CASES}
    with pytest.raises(AssertionError, match="pair counts differ"):
        checks.check_pair_counts(lambda ids: known.get(tuple(ids), {}), n_random=50)


def test_sampling_probs(capsys):
    from minillm.generate import sampling_probs
    sampling_probs = own_copy(sampling_probs)
    checks.check_sampling_probs(sampling_probs, n_random=100)
    assert "✓ sampling probabilities" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="renormalise"):
        checks.check_sampling_probs(lambda lg, k, p: sampling_probs(lg, k, p) * 0.5)
    with pytest.raises(AssertionError, match="keeps 2|keep 4 tokens"):
        checks.check_sampling_probs(lambda lg, k, p: torch.softmax(lg, -1))      # ignores top_k and top_p


def test_stated_value():
    from minillm.evaluate import stated_value
    stated_value = own_copy(stated_value)
    checks.check_stated_value(lambda text, values: stated_value(text, "birth_city", values), n_random=300)
    with pytest.raises(AssertionError, match="which starts first"):
        checks.check_stated_value(lambda text, values: next((v for v in values if v in text), None))
    with pytest.raises(AssertionError, match="a reply that asks back states nothing"):
        checks.check_stated_value(lambda text, values: stated_value(text.replace("?", "."), "birth_city", values))


def test_lr_schedule():
    from minillm.train import TrainConfig, lr_at
    lr_at = own_copy(lr_at)

    def reference(step, max_steps, lr, warmup, min_lr):
        return lr_at(step, TrainConfig(max_steps=max_steps, batch_size=1, learning_rate=lr, warmup_steps=warmup,
                                       min_lr_ratio=min_lr / lr))
    checks.check_lr_schedule(reference, n_random=50)
    with pytest.raises(AssertionError, match="Warmup is off by one"):
        checks.check_lr_schedule(lambda s, m, lr, w, mn: lr * s / w if s < w else reference(s, m, lr, w, mn))
    with pytest.raises(AssertionError, match="should end at min_lr"):
        checks.check_lr_schedule(lambda s, m, lr, w, mn: reference(s, m, lr, w, 0.0) if s < m else mn)


def test_monitor():
    from minillm.evaluate import monitor
    monitor = own_copy(monitor)
    checks.check_monitor(monitor, n_random=50)
    with pytest.raises(AssertionError, match="another order"):
        checks.check_monitor(lambda log: monitor(log)[::-1])


def test_cross_entropy():
    from torch.nn import functional as F
    cross_entropy = own_copy(F.cross_entropy)
    checks.check_cross_entropy(lambda lg, t: cross_entropy(lg, t, ignore_index=-1), n_random=50)
    with pytest.raises(AssertionError, match="must not count"):
        checks.check_cross_entropy(lambda lg, t: cross_entropy(lg, t.clamp_min(0)))
    with pytest.raises(AssertionError, match="The sign"):
        checks.check_cross_entropy(lambda lg, t: -cross_entropy(lg, t, ignore_index=-1))


def test_gpu_hours():
    from minillm.device import training_gpu_hours
    training_gpu_hours = own_copy(training_gpu_hours)
    checks.check_gpu_hours(training_gpu_hours, n_random=50)
    with pytest.raises(AssertionError, match="GPU-seconds"):
        checks.check_gpu_hours(lambda n, d, p, m: 6 * n * d / (p * m))
    with pytest.raises(AssertionError, match="forward pass only"):
        checks.check_gpu_hours(lambda n, d, p, m: 2 * n * d / (p * m) / 3600)


def test_one_run_a_few_points_short_passes_as_one_seed_of_three_may(capsys):
    """A target holds the mean of three seeds, and each seed may be SEED_SLACK short (bench/course.py): one run
    checked in a notebook is judged by that per-seed rule, and the check says how short it is."""
    from minillm.targets import SEED_SLACK, target, within_seed_slack
    bound = target("heldout_accuracy").bound
    base = {"answer_rate": 0.0, "stored": {"accuracy": 0.9}}
    checks.check_base_vs_assistant(base, _assistant_eval(heldout_acc=bound - 0.008), preset="cpu")
    out = capsys.readouterr().out
    assert out.startswith("✓") and ("Held-out accuracy 89.2% is 0.8 points below the 90% target, which is for the "
                                    f"mean of three seeds; one run may be up to {SEED_SLACK * 100:.0f} points below it") in out
    checks.check_knowledge_augmentation(bound - 0.02, 0.1, 0.9, preset="cpu")
    assert capsys.readouterr().out.startswith("✓")
    with pytest.raises(AssertionError, match="extract"):
        checks.check_base_vs_assistant(base, _assistant_eval(heldout_acc=bound - SEED_SLACK - 0.005), preset="cpu")
    checks.check_base_vs_assistant(base, _assistant_eval(heldout_acc=bound), preset="cpu")
    assert "short" not in capsys.readouterr().out                     # met: no note
    assert within_seed_slack(0.025, "<=", 0.02) and not within_seed_slack(0.055, "<=", 0.02)
