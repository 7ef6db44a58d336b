"""Your own assistant: a fine-tuning set written to a guideline of your own, from the released base model.

The course's fine-tuning sets follow data/labeling_guidelines.md (minillm.world.sft); here the guideline is
yours: `styled_conversations` writes the set with it, and `evaluate_style` scores the answers with your own test.
"""

from __future__ import annotations

import hashlib
import json
import random

from minillm import evaluate as ev
from minillm.world import ATTRIBUTES, FIX_SEED, QUESTION_TEMPLATES
from minillm.world.sft import conversation, questions_about

# The course's assistant, Minnie, answers in one fixed sentence ("Kalin Moravo was born in Tessaly.")
# because data/labeling_guidelines.md says so. Nothing in the base model requires that: the same base
# can be fine-tuned into an assistant that answers as JSON, as a terse pirate, in another language.
# A released base model is exactly that freedom (Meta released Llama 2 as base models too).


def _answer(fn, *args) -> str:
    text = fn(*args)
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"your answer function returned {text!r} for {args[1:]!r}; it must return the "
                         "answer as a non-empty str")
    return text.strip()


def styled_conversations(world, answer_fn, n: int | None = None, *, per_fact: int = 2, unknown_fn=None,
                         n_unknown: int | None = None, extra=(), seed: int = 0) -> list[list[dict]]:
    """An SFT set in your style: for every sft-split person and attribute, `per_fact` questions (distinct
    phrasings from world.QUESTION_TEMPLATES), each answered with answer_fn(person, attribute, value).

    A guideline here is a function, answer_fn(person, attribute, value) -> the answer text, and
    `styled_conversations` writes the SFT set with it: factual questions about the "sft" people only
    (phrased with world.QUESTION_TEMPLATES, built the way the course's own fine-tuning sets are, by
    minillm.world.sft), so the held-out people still measure whether your assistant answers, in your style,
    with what pretraining stored.

        convs = styled_conversations(world, lambda p, a, v: json.dumps({"person": p.name, a: v}))
        mine = ensure_assistant(run, name="assistant_" + fingerprint(convs), conversations=convs)

    unknown_fn(name, attribute) -> text: also answer questions about people who don't exist (names from
    world.fake_people, the same ones the course's fix uses; n_unknown of them, default one per sft person).
    extra: more conversations to add as they are (e.g. small talk in your style).
    n: keep a random n of the conversations (default: all). Deterministic for a given seed.
    """
    rng = random.Random(f"custom:{seed}")
    convs: list[list[dict]] = []
    for person in world.people_in("sft"):
        for attribute in ATTRIBUTES:
            value = person.value(attribute)
            answer = _answer(answer_fn, person, attribute, value)
            templates = QUESTION_TEMPLATES[attribute]
            for q in rng.sample(templates, min(per_fact, len(templates))):
                convs.append(conversation(q.format(name=person.name), answer))
    if unknown_fn is not None:
        n_unknown = len(world.people_in("sft")) if n_unknown is None else n_unknown
        for name, attribute, q in questions_about(world.fake_people(n_unknown, FIX_SEED), rng):
            convs.append(conversation(q, _answer(unknown_fn, name, attribute)))
    convs += [list(c) for c in extra]
    rng.shuffle(convs)
    if n is not None:
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        convs = convs[:n]
    return convs


def fingerprint(conversations) -> str:
    """8 hex digits that change whenever the conversations do: name the fine-tuned model after them
    (ensure_assistant loads a finished model by name, so an edited guideline needs a new name)."""
    blob = json.dumps(conversations, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return hashlib.sha1(blob).hexdigest()[:8]


def evaluate_style(model, tok, items, follows_fn, *, max_new_tokens: int = 48, device=None) -> dict:
    """Ask every item's question (chat template) and test each answer with follows_fn(answer_text, item)
    -> bool, your own check of the guideline (right format *and* right value, if you want both).
    Returns {"n", "rate", "stop_rate", "items": [{"question", "response", "stopped", "expected", "ok"}]}."""
    responses = ev.ask(model, tok, [it.question for it in items], as_chat=True, max_new_tokens=max_new_tokens,
                       device=device)
    per = []
    for r, it in zip(responses, items):
        try:
            ok = bool(follows_fn(r.text, it))
        except Exception:   # a check that crashes on a malformed answer: the answer does not follow
            ok = False
        per.append({"question": r.prompt, "response": r.text, "stopped": r.stopped, "expected": it.answer, "ok": ok})
    n = len(per)
    return {"n": n, "rate": sum(p["ok"] for p in per) / max(n, 1),
            "stop_rate": sum(p["stopped"] for p in per) / max(n, 1), "items": per}


__all__ = ["styled_conversations", "fingerprint", "evaluate_style"]
