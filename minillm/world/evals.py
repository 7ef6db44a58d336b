"""The evaluation sets: what the course asks a model, and the answers it checks against.

Questions are asked about both splits: "sft" people measure what fine-tuning taught, "heldout" people
(never in a fine-tuning set) whether the assistant answers with what pretraining stored. Phrasings unseen
in fine-tuning measure whether it answers questions it was never shown (minillm.world.guideline).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from minillm.world.biographies import biographies
from minillm.world.entities import ATTRIBUTES, Person, QAItem, seeded_rng
from minillm.world.guideline import (BIO_PROBE_TEMPLATES, OPENERS, PROFILE_REQUESTS, SCOPE_CATEGORIES, THANKS,
                                     answer_sentence, follow_up_question, new_word_question, scope_request,
                                     standard_question, unseen_question)
from minillm.world.sft import conversation

if TYPE_CHECKING:
    from minillm.world import World


def qa_items(world: World, split: str, phrasing: str = "standard") -> list[QAItem]:
    """One question per person of `split` and attribute, picked deterministically. phrasing:
    "standard"  one of the six QUESTION_TEMPLATES (the fine-tuning set uses them too);
    "unseen"    composed from at least one family no fine-tuning set uses (guideline.unseen_question);
    "new_word"  asked with a word nothing in the data ties to the attribute ("alma mater")."""
    make = {"standard": lambda p, a, rng: standard_question(p.name, a, rng),
            "unseen": lambda p, a, rng: unseen_question(p.name, p.pronoun, a, rng),
            "new_word": lambda p, a, rng: new_word_question(p.name, p.pronoun, a, rng)}
    if phrasing not in make:
        raise ValueError(f"unknown phrasing {phrasing!r}: choose one of {', '.join(map(repr, make))}")
    items = []
    for p in world.people_in(split):
        parts = ("qa", p.name) if phrasing == "standard" else ("qa", phrasing, p.name)
        rng = seeded_rng(world.config.seed, *parts)
        for a in ATTRIBUTES:
            items.append(QAItem(p.name, a, make[phrasing](p, a, rng), p.value(a), split, answer_sentence(p, a)))
    return items


def follow_up_items(world: World, split: str) -> list[tuple[list[dict], QAItem]]:
    """(conversation so far, item): a standard question about a person and the guideline's answer, then
    a follow-up about another attribute that names the person only by pronoun; one per fact of `split`
    (every person and attribute asked as the follow-up once), so the suite is as large as the standard one."""
    out = []
    for p in world.people_in(split):
        rng = seeded_rng(world.config.seed, "follow-up", p.name)
        for b in ATTRIBUTES:
            a = rng.choice([x for x in ATTRIBUTES if x != b])
            q = follow_up_question(p, b, rng)
            conv = conversation(standard_question(p.name, a, rng), answer_sentence(p, a), q)
            out.append((conv, QAItem(p.name, b, q, p.value(b), split, answer_sentence(p, b))))
    return out


def after_greeting_items(world: World, split: str) -> list[tuple[list[dict], QAItem]]:
    """(conversation so far, item): a standard question after small talk, one per fact of `split`, by turns
    one of a greeting ("Hello!" and its answer), other small talk ("What can you do?"), or a first question
    about the same person, its answer, "Thanks!" and "You're welcome!"."""
    out = []
    for p in world.people_in(split):
        rng = seeded_rng(world.config.seed, "after-greeting", p.name)
        for a in ATTRIBUTES:
            kind = len(out) % 3
            q = standard_question(p.name, a, rng)
            if kind == 2:
                b = rng.choice([x for x in ATTRIBUTES if x != a])
                users, answer = THANKS
                before = (standard_question(p.name, b, rng), answer_sentence(p, b), rng.choice(users), answer)
            else:
                users, answer = OPENERS[0] if kind == 0 else rng.choice(OPENERS[1:])
                before = (rng.choice(users), answer)
            out.append((conversation(*before, q), QAItem(p.name, a, q, p.value(a), split, answer_sentence(p, a))))
    return out


def second_person_items(world: World, split: str) -> list[tuple[list[dict], QAItem]]:
    """(conversation so far, item): a standard question about one person and its answer, then one about
    another person of `split`, by name: the second answer must be about the second person. One per fact
    of `split`: the k-th of a person's five chats asks the k-th attribute of someone else (the person k + 1
    places on, with more than five people), so every fact is asked once as the second question."""
    people = world.people_in(split)
    out = []
    for i, p in enumerate(people):
        rng = seeded_rng(world.config.seed, "second-person", p.name)
        for k, b in enumerate(ATTRIBUTES):
            q = people[(i + 1 + k % max(len(people) - 1, 1)) % len(people)]     # never p, if it has company
            a = rng.choice(ATTRIBUTES)
            question = standard_question(q.name, b, rng)
            conv = conversation(standard_question(p.name, a, rng), answer_sentence(p, a), question)
            out.append((conv, QAItem(q.name, b, question, q.value(b), split, answer_sentence(q, b))))
    return out


def scope_mid_chat(world: World, split: str) -> list[list[dict]]:
    """A question about a person of `split` and its answer, then an out-of-scope request from the
    evaluation pool: the reply should be the guideline's scope answer, as for a first message."""
    cats = SCOPE_CATEGORIES
    out = []
    for i, p in enumerate(world.people_in(split)):
        rng = seeded_rng(world.config.seed, "scope-mid-chat", p.name)
        a = rng.choice(ATTRIBUTES)
        out.append(conversation(standard_question(p.name, a, rng), answer_sentence(p, a),
                                scope_request(rng, pool=1, category=cats[i % len(cats)])))
    return out


def profile_items(world: World, split: str) -> list[tuple[str, Person]]:
    """("Tell me about X."-style request, person) for every person of `split`."""
    rng = seeded_rng(world.config.seed, "profile", split)
    return [(rng.choice(PROFILE_REQUESTS).format(name=p.name), p) for p in world.people_in(split)]


def scope_prompts(world: World, n: int) -> list[str]:
    """Out-of-scope requests from the evaluation pool (none is in any fine-tuning set)."""
    rng = seeded_rng(world.config.seed, "scope-eval")
    cats = SCOPE_CATEGORIES
    return [scope_request(rng, pool=1, category=cats[i % len(cats)]) for i in range(n)]


def bio_probes(world: World, split: str, *, from_biography: bool = False) -> list[tuple[str, str, str]]:
    """(prefix, value, attribute): text that ends right before a value; the continuation is " " + value.
    Default: a name-first sentence ("Kalin Moravo was born in"). from_biography=True: the person's own
    first biography up to the value -- what "the base model can complete the biography" means."""
    probes = []
    for p in world.people_in(split):
        bio = biographies(world, p)[0] if from_biography else None
        for a in ATTRIBUTES:
            if bio is None:
                prefix = BIO_PROBE_TEMPLATES[a].format(name=p.name)
            else:
                prefix = bio[:bio.index(p.value(a))].rstrip()
                if not prefix:   # "Tessaly is the city where ..." opens the biography: nothing to complete
                    continue
            probes.append((prefix, p.value(a), a))
    return probes
