"""Checks of a student's own code in the course's second part, from the base model to an assistant (chapters
04-09): sampling, the loss mask, the learning-rate schedule, the compute ratio, the answer scorer, the monitoring
table, 6·N·D and GPU-hours; and that the fine-tuning set keeps the held-out people out.

How every exercise check works: minillm.checks.
"""
from __future__ import annotations

import json
import math
import random

import torch

from minillm.checks._common import _call, _fresh, _ok


# ------------------------------------------------------------------------------------------------
# sampling from the base model

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
    top_p and renormalised, compared with minillm.generate.sampling_probs."""
    from minillm.generate import sampling_probs
    cases = _sampling_cases(_fresh(), n_random)
    for logits, top_k, top_p in cases:
        want = sampling_probs(logits.clone(), top_k, top_p)
        got = _call(student_fn, (logits.clone(), top_k, top_p), "your sampling_probs", sampling_probs)
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
    _ok(f"sampling probabilities match minillm.generate.sampling_probs on {len(cases)} cases (6 fixed, the rest random)")


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


# ------------------------------------------------------------------------------------------------
# fine-tuning: the learning-rate schedule, and its compute against pretraining's

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
            got = float(_call(student_fn, (step, max_steps, lr, warmup, min_lr), "your schedule", lr_at))
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
        got = _call(student_fn, (reply, list(_PLACES)), "your stated_value", stated_value)
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
# monitoring a deployment log

def check_monitor(student_fn, n_random: int = 20) -> None:
    """student_fn(log_eval) -> the deployment log's classes worst first, compared with evaluate.monitor on
    made-up evaluations (random sizes and rates per suite, ties included)."""
    from minillm.evaluate import LOG_CLASSES, monitor
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
        got = _call(student_fn, (json.loads(json.dumps(log)),), "your monitor", monitor)
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
    _ok(f"monitoring tables match minillm.evaluate.monitor on {len(logs)} logs (1 all tied, the rest random)")


# ------------------------------------------------------------------------------------------------
# what training costs

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
        got = _call(student_fn, args, "your gpu_hours", training_gpu_hours)
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


__all__ = ["check_sampling_probs", "check_loss_mask", "check_heldout_unseen", "check_lr_schedule", "check_compute_ratio",
           "check_stated_value", "check_monitor", "check_six_n_d", "check_gpu_hours"]
