"""The course's targets: the one place each of its bounds is written, and the rules for reading a figure
against one (over seeds: SEED_SLACK; after a fix: FIX_TOLERANCE).

A run's report, the release's model card, bench/course.py and the checks (minillm.checks.runs) read them from
here, and the tests hold the README's and the notebooks' text to them.
"""
from __future__ import annotations

from typing import NamedTuple


class Target(NamedTuple):
    """A bound on one figure: `key` (the figure's name in a run's metrics.json, where it has one) `op` `bound`."""
    key: str
    op: str           # ">=" or "<="
    bound: float
    what: str         # what meeting it shows
    scope: str = "course"   # the run or the check it applies to: one of SCOPES


SCOPES = {
    "course": "every course run on the cpu and gpu presets: its report's headline table, bench/course.py, the checks",
    "gpu": "a course run on the gpu preset, besides the course's",
    "augment1": "the knowledge-augmentation ablation's second run, one biography per person (--augment 1)",
    "base": "notebook 04's check of the base model, besides base_answer_rate: it stored what it read",
    "custom": "a student's own assistant against the course's, on the same held-out questions (notebook 09)",
}

TARGETS = [
    # a course run: the rows its report and bench/course.py judge it by
    Target("heldout_accuracy", ">=", 0.90, "answers questions about people it never saw in fine-tuning"),
    Target("heldout_unseen_phrasing_accuracy", ">=", 0.80, "... asked in phrasings no fine-tuning set used"),
    Target("unseen_to_standard_ratio", ">=", 0.90, "unseen phrasings nearly as good as the standard ones"),
    Target("heldout_follow_up_accuracy", ">=", 0.80, "pronoun follow-ups about held-out people"),
    Target("heldout_after_greeting_accuracy", ">=", 0.85, "a question after a greeting, small talk or a thanks"),
    Target("scope_answer_rate", ">=", 0.90, "out-of-scope requests get the guideline's scope answer"),
    Target("heldout_refused_rate", "<=", 0.02, "real held-out people turned away"),
    Target("scope_answer_rate_before_fix", "<=", 0.50, "the class the fix is for failed before it"),
    Target("base_answer_rate", "<=", 0.20, "the base model continues the document instead of answering"),
    Target("assistant_answer_rate", ">=", 0.95, "the assistant answers in its format and ends its turn"),
    # the other scopes: no report's headline table shows these
    Target("unknown_entity_idk_rate", ">=", 0.90, "\"I don't know\" to people who don't exist", "gpu"),
    Target("heldout_accuracy", "<=", 0.30, "with one biography the facts are not extractable ...", "augment1"),
    Target("base_stored_accuracy", ">=", 0.80, "... although the base model completes the biographies", "augment1"),
    Target("base_stored_accuracy", ">=", 0.50, "the base model completes held-out people's biographies", "base"),
    Target("style_rate", ">=", 0.50, "your assistant follows your guideline (and more often than the course's)",
           "custom"),
    Target("fact_ratio", ">=", 0.80, "... and states the right fact nearly as often as the course's assistant",
           "custom"),
]
# The base model's stored accuracy is also at least this many times chance (scope "base").
STORED_OVER_CHANCE = 3
# How much worse than the first assistant the released one may be on any figure (the fix must not cost).
FIX_TOLERANCE = 0.01
# Figures where lower is better; for every other assistant figure higher is better.
LOWER_IS_BETTER = ("heldout_refused_rate",)
# bench/course.py over seeds: a target is met when the mean meets it and no seed is more than this short of it.
SEED_SLACK = 0.03


def target(key: str, scope: str = "course") -> Target:
    """The target on `key` in `scope`: target("heldout_accuracy").bound is 0.9."""
    for t in TARGETS:
        if t.key == key and t.scope == scope:
            return t
    raise KeyError(f"no target {key!r} in scope {scope!r}")


def meets(value: float, op: str, bound: float) -> bool:
    return value >= bound if op == ">=" else value <= bound


def within_seed_slack(value: float, op: str, bound: float) -> bool:
    """`value` misses `op bound` by no more than one seed may (SEED_SLACK): the rule for each seed of
    bench/course.py, and for one run checked in a notebook."""
    return meets(value, op, bound - SEED_SLACK if op == ">=" else bound + SEED_SLACK)


def target_rows(metrics: dict, scope: str = "course") -> list[dict]:
    """Each target of `scope` on a figure of this run, with the run's value and whether it is met."""
    return [{"key": t.key, "op": t.op, "bound": t.bound, "what": t.what, "value": metrics[t.key],
             "met": meets(metrics[t.key], t.op, t.bound)} for t in TARGETS if t.scope == scope and t.key in metrics]


def worse_after_fix(metrics: dict, keys) -> list[str]:
    """The figures on which the released assistant is more than FIX_TOLERANCE worse than the first."""
    out = []
    for k in keys:
        before, after = metrics[k + "_before_fix"], metrics[k]
        change = before - after if k not in LOWER_IS_BETTER else after - before
        if round(change, 9) > FIX_TOLERANCE:    # 0.736 - 0.726 is 0.01000000000000001 in floats: exactly a point
            out.append(k)
    return out
