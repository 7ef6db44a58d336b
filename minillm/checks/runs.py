"""Checks of a course run's figures against the course's targets (minillm.targets).

They grade what a whole training run did (a base model, an assistant, the fix, a student's own assistant) on
the `cpu` and `gpu` presets. A run that misses a target is a finding about the run, not an error in the
student's code: it is reported with ✗ (raised only under MINILLM_STRICT_TARGETS=1). The `smoke` model is too
small to learn anything, so with preset="smoke" a check verifies its inputs and reports the numbers.
"""
from __future__ import annotations

from minillm.checks._common import _missed, _ok, _share, _smoke_note
from minillm.targets import (FIX_TOLERANCE, SEED_SLACK, STORED_OVER_CHANCE, Target, meets, target,
                             within_seed_slack, worse_after_fix)


def _seed_note(value: float, t: Target, what: str) -> str:
    """'' when value meets t; else, for a value within_seed_slack of it, why this one run still passes."""
    if meets(value, t.op, t.bound):
        return ""
    side = "below" if t.op == ">=" else "above"
    return (f". {what} {value:.1%} is {abs(value - t.bound) * 100:.1f} points {side} the {t.bound:.0%} target, "
            f"which is for the mean of three seeds; one run may be up to {SEED_SLACK * 100:.0f} points {side} it "
            "(python bench/course.py)")


# ------------------------------------------------------------------------------------------------
# the base model

def check_base_model(answer_rate: float, stored_accuracy: float, *, chance: float, preset: str) -> None:
    """A base model is a document sampler that nevertheless stores facts: asked a question it rarely
    answers (answer_rate within the course's base_answer_rate target), but it completes biographies
    (stored_accuracy well above chance: the target of scope "base", and STORED_OVER_CHANCE x chance). The tiny
    "smoke" model knows nothing, so there the thresholds are reported, not enforced."""
    max_answer_rate = target("base_answer_rate").bound
    answer_rate, stored_accuracy, chance = float(answer_rate), float(stored_accuracy), float(chance)
    for name, v in (("answer_rate", answer_rate), ("stored_accuracy", stored_accuracy), ("chance", chance)):
        if not 0.0 <= v <= 1.0:
            raise AssertionError(f"{name} should be a share between 0 and 1, got {v}")
    need_stored = max(target("base_stored_accuracy", "base").bound, STORED_OVER_CHANCE * chance)
    summary = (f"answer rate {answer_rate:.1%} (at most {max_answer_rate:.0%} expected), stored accuracy "
               f"{stored_accuracy:.1%} (at least {need_stored:.0%} expected; chance is {chance:.1%})")
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


def check_base_vs_assistant(base_eval: dict, assistant_eval: dict, *, preset: str) -> None:
    """evaluate_base(...) and evaluate_assistant(...) results: the base model rarely answers, the assistant
    answers (in its format, ending its turn) and gets held-out people's facts right (the course's targets)."""
    max_base_answer_rate, min_answer_rate = target("base_answer_rate").bound, target("assistant_answer_rate").bound
    min_heldout = target("heldout_accuracy").bound
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
    if not within_seed_slack(heldout, ">=", min_heldout):
        return _missed(f"{summary}: the assistant does not extract enough of what pretraining stored. Check "
                      "that the base model was fully pretrained and that SFT mixed in pretraining text "
                      "(run.preset.sft_mix)")
    _ok(summary + _seed_note(heldout, target("heldout_accuracy"), "Held-out accuracy"))


def check_knowledge_augmentation(heldout_many: float, heldout_one: float, stored_one: float, *, preset: str) -> None:
    """The ablation: with several biographies per person the assistant answers held-out questions
    (heldout_many meets the course's heldout_accuracy target); with one, it cannot (heldout_one low) although
    the base model still completes those people's biographies (stored_one high; both the targets of scope
    "augment1"): stored, but not extractable."""
    min_heldout_many = target("heldout_accuracy").bound
    max_heldout_one = target("heldout_accuracy", "augment1").bound
    min_stored_one = target("base_stored_accuracy", "augment1").bound
    heldout_many = _share("held-out accuracy with several biographies", heldout_many)
    heldout_one = _share("held-out accuracy with one biography", heldout_one)
    stored_one = _share("stored accuracy with one biography", stored_one)
    summary = (f"held-out accuracy {heldout_many:.1%} with several biographies (at least {min_heldout_many:.0%}), "
               f"{heldout_one:.1%} with one (at most {max_heldout_one:.0%}), while the one-biography base model "
               f"completes {stored_one:.1%} of the biographies (at least {min_stored_one:.0%})")
    if _smoke_note(preset, summary):
        return
    if not within_seed_slack(heldout_many, ">=", min_heldout_many):
        return _missed(f"{summary}: the augmented run should extract the held-out facts. Is heldout_many the "
                      "main run's assistant (notebook_run()), and heldout_one the augment=1 run's?")
    if heldout_one > max_heldout_one:
        return _missed(f"{summary}: with a single biography the facts should not be extractable. Was the "
                      "second run made with notebook_run(augment=1)? (world.config.bios_per_person should be 1)")
    if stored_one < min_stored_one:
        return _missed(f"{summary}: the one-biography base model should still complete its biographies "
                      "(evaluate_base(...)['stored']['accuracy'] of the augment=1 run): was it fully pretrained?")
    _ok(summary + _seed_note(heldout_many, target("heldout_accuracy"), "Held-out accuracy with several biographies"))


def check_fix(before: dict, after: dict, *, preset: str) -> None:
    """The iteration lesson: evaluate_assistant(...) of the assistant before the fix and after it. The fixed
    class (out-of-scope requests) goes from at most 50% to at least 90% handled, no other figure gets more
    than 1 point worse, and real held-out people are not turned away (the course's targets; one run may miss
    the class and the people turned away by SEED_SLACK, as in the other checks)."""
    from minillm.evaluate import assistant_figures
    try:
        b, a = assistant_figures(before), assistant_figures(after)
    except (KeyError, TypeError):
        raise AssertionError("pass two dicts returned by evaluate_assistant(run, model, world, tok): the assistant "
                             "before the fix, then after it") from None
    for k in a:
        _share(f"{k} (before)", b[k]), _share(f"{k} (after)", a[k])
    most_before, least_after = target("scope_answer_rate_before_fix").bound, target("scope_answer_rate").bound
    max_refused = target("heldout_refused_rate").bound
    summary = (f"out-of-scope requests answered per the guideline {b['scope_answer_rate']:.0%} -> "
               f"{a['scope_answer_rate']:.0%}; held-out accuracy {b['heldout_accuracy']:.0%} -> "
               f"{a['heldout_accuracy']:.0%}; real held-out people turned away {a['heldout_refused_rate']:.0%}")
    if _smoke_note(preset, summary):
        return
    if b["scope_answer_rate"] > most_before:
        return _missed(f"{summary}. Before the fix the class should fail (at most {most_before:.0%} handled): is "
                      "`before` the first assistant (fix=False)?")
    missed = []
    # the class and the people turned away have course targets, for the mean of three seeds: one run may
    # miss them by SEED_SLACK, as in every other check; "within 1 point of the first assistant" is per run
    if not within_seed_slack(a["scope_answer_rate"], ">=", least_after):
        missed.append(f"the fixed class reached {a['scope_answer_rate']:.0%} (at least {least_after:.0%})")
    worse = worse_after_fix({**a, **{k + "_before_fix": v for k, v in b.items()}}, a)
    missed += [f"{k} {b[k]:.1%} -> {a[k]:.1%}" for k in worse]
    if (not within_seed_slack(a["heldout_refused_rate"], "<=", max_refused)
            and "heldout_refused_rate" not in worse):
        missed.append(f"real held-out people turned away {a['heldout_refused_rate']:.1%} (at most {max_refused:.0%})")
    if not missed:
        return _ok(summary + _seed_note(a["scope_answer_rate"], target("scope_answer_rate"), "The fixed class")
                   + _seed_note(a["heldout_refused_rate"], target("heldout_refused_rate"),
                                "Real held-out people turned away"))
    if a["scope_answer_rate"] <= b["scope_answer_rate"] + FIX_TOLERANCE:   # not moved: `after` is not the fixed one
        hint = "The class did not move at all: is `after` the assistant fine-tuned with the fix (fix=True)?"
    else:
        hint = ("The fix did its job in part: what it missed is a finding about the data and the training "
                "(bench/course.py measures it over three seeds), not a mistake in running the notebook.")
    _missed(f"{summary}. Missed: {'; '.join(missed)} (a fix must reach its class and leave every other figure within "
            f"{FIX_TOLERANCE * 100:.0f} point of the first assistant). {hint}")


def check_custom_assistant(mine: dict, original: dict, *, preset: str, mine_right: float, original_right: float) -> None:
    """Your own assistant follows your guideline *and* keeps the facts: minillm.custom.evaluate_style(...)
    results for your assistant and for the course's assistant (the same test of your guideline), and the
    share of held-out questions each answers with the right fact. Yours must follow your guideline on at
    least the style_rate target's share of them, more often than the course's assistant, and state the right
    fact at least fact_ratio times as often as the course's assistant does (the targets of scope "custom")."""
    min_rate, min_fact_ratio = target("style_rate", "custom").bound, target("fact_ratio", "custom").bound
    try:
        r_mine, r_orig = _share("your assistant's rate", mine["rate"]), _share("the original's rate", original["rate"])
    except (KeyError, TypeError):
        raise AssertionError("pass the dicts minillm.custom.evaluate_style(...) returns: your assistant's, then the "
                             "course assistant's, on the same items with the same test") from None
    f_mine, f_orig = _share("mine_right", mine_right), _share("original_right", original_right)
    summary = (f"your guideline is followed in {r_mine:.1%} of the answers (at least {min_rate:.0%} expected; the "
               f"course's assistant: {r_orig:.1%}); the right fact in {f_mine:.1%} (the course's assistant: "
               f"{f_orig:.1%}, at least {min_fact_ratio:.0%} of that expected)")
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


__all__ = ["check_base_model", "check_base_vs_assistant", "check_knowledge_augmentation", "check_fix",
           "check_custom_assistant"]
