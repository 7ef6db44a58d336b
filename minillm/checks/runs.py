"""Checks of a course run's figures: a base model, an assistant, the fix, a student's own assistant.

These grade what a whole training run did, against the course's targets (minillm.report.TARGETS) on the
`cpu` and `gpu` presets. A run that misses a target is a finding about the run, not an error in the
student's code: it is reported with ✗ (raised only under MINILLM_STRICT_TARGETS=1). The `smoke` model is too
small to learn anything, so with preset="smoke" a check verifies its inputs and reports the numbers.
"""
from __future__ import annotations

from minillm.checks._common import _missed, _ok, _share, _smoke_note


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


def check_custom_assistant(mine: dict, original: dict, *, preset: str, mine_right: float, original_right: float,
                           min_rate: float = 0.5, min_fact_ratio: float = 0.8) -> None:
    """Your own assistant follows your guideline *and* keeps the facts: minillm.custom.evaluate_style(...)
    results for your assistant and for the course's assistant (the same test of your guideline), and the
    share of held-out questions each answers with the right fact. Yours must follow your guideline on at
    least `min_rate` of them, more often than the course's assistant, and state the right fact at least
    `min_fact_ratio` times as often as the course's assistant does."""
    try:
        r_mine, r_orig = _share("your assistant's rate", mine["rate"]), _share("the original's rate", original["rate"])
    except (KeyError, TypeError):
        raise AssertionError("pass the dicts minillm.custom.evaluate_style(...) returns: your assistant's, then the "
                             "course assistant's, on the same items with the same test") from None
    f_mine, f_orig = _share("mine_right", mine_right), _share("original_right", original_right)
    summary = (f"your guideline is followed in {r_mine:.0%} of the answers (at least {min_rate:.0%} expected; the "
               f"course's assistant: {r_orig:.0%}); the right fact in {f_mine:.0%} (the course's assistant: "
               f"{f_orig:.0%}, at least {min_fact_ratio:.0%} of that expected)")
    if _smoke_note(preset, summary):
        return
    if r_mine < min_rate or r_mine <= r_orig:
        return _missed(f"{summary}. Look at the answers in mine['items']: does your test accept what your own "
                      "answer function writes (try it on one conversation of your SFT set)? Is your format "
                      "learnable (the same shape every time)?")
    if f_mine < min_fact_ratio * f_orig:
        return _missed(f"{summary}. Your assistant keeps your format but lost the facts. Look at what it writes "
                      "before the fact: a model this size copies a held-out name badly, and once it has written a "
                      "wrong name it gives that person's facts. Put the fact before anything it must copy.")
    _ok(summary)


__all__ = ["check_base_model", "check_heldout_unseen", "check_base_vs_assistant", "check_knowledge_augmentation", "check_fix", "check_custom_assistant"]
