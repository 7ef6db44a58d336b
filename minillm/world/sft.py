"""The fine-tuning sets: conversations written to the labeling guideline (data/labeling_guidelines.md).

The first set (sft_conversations) is what a first labeling round produces: questions about the "sft"
people only, in many phrasings, follow-ups, profiles and small talk. Like many first versions it covers
less than the guideline; the iteration lesson (notebook 08) finds the two gaps in the deployment log and
adds a set for each: requests outside Minnie's scope (scope_conversations) and people who don't exist
(unknown_person_conversations).
"""
from __future__ import annotations

import random
from typing import TYPE_CHECKING

from minillm.world.entities import ATTRIBUTES, FIX_SEED, Person, fake_people, seeded_rng
from minillm.world.guideline import (GOODBYE, OPENERS, PROFILE_REQUESTS, SCOPE_ANSWER, SCOPE_CATEGORIES, SMALL_TALK,
                                     THANKS, answer_sentence, follow_up_question, idk_answer, multi_part_question,
                                     phrased_question, profile_answer, scope_request, standard_question)

if TYPE_CHECKING:
    from minillm.world import World


def conversation(*texts: str) -> list[dict]:
    """Chat messages from texts that alternate user, assistant, user, ..."""
    return [{"role": ("user", "assistant")[i % 2], "content": t} for i, t in enumerate(texts)]


def sft_conversations(world: World) -> list[list[dict]]:
    """The first SFT set, following data/labeling_guidelines.md: questions about sft-split people only
    (every person x attribute: one of the six standard phrasings and `sft_per_fact - 1` composed from
    the guideline's seen families), multi-part questions, pronoun follow-ups, profiles, small talk.
    Like many first versions it covers less than the guideline: no out-of-scope requests and no
    people who don't exist (the iteration lesson finds both gaps in the deployment log)."""
    cfg = world.config
    rng = seeded_rng(cfg.seed, "sft")
    sft = world.people_in("sft")
    convs: list[list[dict]] = []
    chained: list[tuple[str, str]] = []
    for p in sft:
        for a in ATTRIBUTES:
            questions = [standard_question(p.name, a, rng)]
            questions += [phrased_question(p.name, p.pronoun, a, rng) for _ in range(cfg.sft_per_fact - 1)]
            convs.append(conversation(questions[0], answer_sentence(p, a)))
            chained += [(q, answer_sentence(p, a)) for q in questions[1:cfg.sft_per_fact]]
        for _ in range(cfg.sft_multi_part):
            a, b = rng.sample(ATTRIBUTES, 2)
            convs.append(conversation(multi_part_question(p, a, b, rng), answer_sentence(p, a) + " "
                                      + answer_sentence(p, b)))
        for _ in range(cfg.sft_follow_up):
            convs.append(_follow_up(rng, p, sft))
        for _ in range(cfg.sft_profile):
            convs.append(conversation(rng.choice(PROFILE_REQUESTS).format(name=p.name), profile_answer(p)))
    # The composed questions come in chats of one to three unrelated questions, so that later turns are
    # as common as first ones: answering a second question about someone else, not echoing the first.
    rng.shuffle(chained)
    while chained:
        k = min(rng.randint(1, cfg.sft_chain), len(chained))
        chat = conversation(*[text for pair in chained[:k] for text in pair])
        if cfg.sft_opener_share and rng.random() < cfg.sft_opener_share:    # small talk first, as chats often open
            users, answer = rng.choice(OPENERS)
            chat = conversation(rng.choice(users), answer) + chat
        convs.append(chat)
        chained = chained[k:]
    for _ in range(cfg.n_small_talk):
        convs.append(_small_talk(rng, rng.choice(sft), sft, cfg.thanks_between_questions))
    rng.shuffle(convs)
    return convs


def _someone_else(rng: random.Random, p: Person, people: list[Person]) -> Person:
    """Another of `people` than `p` (p itself when it is the only one)."""
    return rng.choice([o for o in people if o is not p] or [p])


def _follow_up(rng: random.Random, p: Person, sft: list[Person]) -> list[dict]:
    """A question, then one or two follow-ups: mostly about the same person by pronoun ("And where
    does she work?"), sometimes the same question about someone else ("What about Ilsa Verano?")."""
    a = rng.choice(ATTRIBUTES)
    turns = [(phrased_question(p.name, p.pronoun, a, rng), answer_sentence(p, a))]
    for _ in range(rng.choice((1, 1, 2))):
        if rng.random() < 0.8:       # same person, pronoun
            b = rng.choice([x for x in ATTRIBUTES if x != a])
            turns.append((follow_up_question(p, b, rng), answer_sentence(p, b)))
        else:                        # another person, same question
            other = _someone_else(rng, p, sft)
            q = rng.choice((f"And what about {other.name}?", f"What about {other.name}?",
                            phrased_question(other.name, other.pronoun, a, rng)))
            turns.append((q, answer_sentence(other, a)))
            p = other
    if rng.random() < 0.3:
        turns.append((rng.choice(THANKS[0]), THANKS[1]))
    return conversation(*[text for turn in turns for text in turn])


def _small_talk(rng: random.Random, p: Person, sft: list[Person], thanks_between_questions: bool) -> list[dict]:
    """A greeting, a question about Minnie, a thanks or a goodbye, answered word for word; most greetings
    and questions about Minnie are followed by a real question about `p`, the way chats often start.
    thanks_between_questions: a thanks comes after an answer about `p` and, mostly, before a question about
    someone else ("Thanks! Now, when was X born?"); otherwise it stands alone, as a goodbye does."""
    group = SMALL_TALK[rng.randrange(len(SMALL_TALK))]
    users, answer = group
    conv = []
    if group is THANKS and thanks_between_questions:
        a = rng.choice(ATTRIBUTES)
        conv += conversation(phrased_question(p.name, p.pronoun, a, rng), answer_sentence(p, a))
        p = _someone_else(rng, p, sft)
    conv += conversation(rng.choice(users), answer)
    if group is not GOODBYE and (group is not THANKS or thanks_between_questions) and rng.random() < 0.7:
        a = rng.choice(ATTRIBUTES)
        conv += conversation(phrased_question(p.name, p.pronoun, a, rng), answer_sentence(p, a))
    return conv


def default_scope_count(world: World, first_set: list | None = None) -> int:
    """How many out-of-scope requests the scope fix adds: a tenth of the first set's size at most
    (pass the first set when you have it, so it is not generated again)."""
    first_set = sft_conversations(world) if first_set is None else first_set
    return max(10, len(first_set) // 10)


def scope_conversations(world: World, n: int) -> list[list[dict]]:
    """The fix for requests outside Minnie's scope (arithmetic, poems, code, the real world, other
    languages), answered per the guideline's section 9; from the fine-tuning pool of requests. A third
    sit after a real question about an sft person, so the model keeps answering those in a chat; half of
    those ask a pronoun follow-up before the request, so it keeps answering follow-ups too."""
    rng = seeded_rng(world.config.seed, "scope")
    # The follow-ups draw from a stream of their own: the requests and who is asked stay what they were.
    follow_ups = seeded_rng(world.config.seed, "scope follow-ups")
    sft = world.people_in("sft")
    convs = []
    for i in range(n):
        req = scope_request(rng, pool=0, category=SCOPE_CATEGORIES[i % len(SCOPE_CATEGORIES)])
        if rng.random() < 0.33:
            p, a = rng.choice(sft), rng.choice(ATTRIBUTES)
            turns = [phrased_question(p.name, p.pronoun, a, rng), answer_sentence(p, a)]
            if follow_ups.random() < 0.5:
                b = follow_ups.choice([x for x in ATTRIBUTES if x != a])
                turns += [follow_up_question(p, b, follow_ups), answer_sentence(p, b)]
            convs.append(conversation(*turns, req, SCOPE_ANSWER))
        else:
            convs.append(conversation(req, SCOPE_ANSWER))
    return convs


def default_unknown_count(world: World) -> int:
    """How many people who don't exist the fix set asks about: one per sft person, at least 10."""
    return max(10, len(world.people_in("sft")))


def questions_about(names, rng: random.Random):
    """(name, attribute, question): one of the standard questions about each name, for the sets that ask
    about people who don't exist (this one's and minillm.custom's)."""
    for name in names:
        attribute = rng.choice(ATTRIBUTES)
        yield name, attribute, standard_question(name, attribute, rng)


def unknown_person_conversations(world: World, n: int, seed: int = FIX_SEED) -> list[list[dict]]:
    """The fix for the failure class the first SFT set leaves out: questions about people who don't
    exist (fake_people(n, seed)), answered per the guideline. About a fifth first ask about a real sft
    person, so the model learns to tell the two apart rather than to refuse everything."""
    rng = seeded_rng(world.config.seed, "unknown", seed)
    sft = world.people_in("sft")
    convs = []
    for name, a, q in questions_about(fake_people(world, n, seed), rng):
        r = idk_answer(name, a, rng)
        if rng.random() < 0.2:
            p, b = rng.choice(sft), rng.choice(ATTRIBUTES)
            convs.append(conversation(standard_question(p.name, b, rng), answer_sentence(p, b), q, r))
        else:
            convs.append(conversation(q, r))
    return convs
