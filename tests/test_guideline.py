"""The guideline's question composer: every family is usable, the unseen and new-word families never reach a
fine-tuning set, the evaluation sets are what they say, and out-of-scope pools are disjoint."""
import random
import re

import pytest

from minillm.data import sft_conversations
from minillm.config import world_config
from minillm.world import Person, World
from minillm.world import guideline as g


@pytest.fixture(scope="module")
def world():
    return World.generate(world_config("cpu"))


def _user_turns(conversations):
    return [m["content"] for c in conversations for m in c if m["role"] == "user"]


def test_every_clause_family_is_asked_by_several_wrappers():
    rng = random.Random(0)
    for a, families in g.CLAUSES.items():
        for name, clause in families.items():
            made = {w: g.compose("Kalin Moravo", "she", clause, w, rng) for w in g.WRAPPERS}
            usable = [w for w, q in made.items() if q is not None]
            assert len(usable) >= 3, (a, name, usable)
            for q in filter(None, made.values()):
                assert "{" not in q and "}" not in q and ("Kalin Moravo" in q), q


def test_compose_fills_pronoun_and_capitalises_sentence_starts():
    rng = random.Random(1)
    clause = g.CLAUSES["birth_city"]["where_born"]
    assert g.compose("Kalin Moravo", "she", clause, "plain", rng) == "Where was Kalin Moravo born?"
    assert g.compose("Kalin Moravo", "he", clause, "plain", rng, pronoun_subject=True) == "Where was he born?"
    named = {g.compose("Kalin Moravo", "she", clause, "name_first", random.Random(s)) for s in range(20)}
    assert named == {"Kalin Moravo: where was she born?", "About Kalin Moravo. Where was she born?",
                     "Kalin Moravo, where was she born?"}


def _unseen_forms(person):
    """Every text an unseen clause family can produce for `person` (name or pronoun), lower case."""
    forms = set()
    for a, fams in g.UNSEEN_CLAUSES.items():
        for fam in fams:
            for subj in ((person.name, person.name + "'s", person.name),
                         (person.ref("subj"), person.ref("poss"), person.ref("obj"))):
                for text in g.CLAUSES[a][fam].values():
                    forms.add(text.format(who=subj[0], whose=subj[1], whom=subj[2], poss=person.ref("poss")).lower())
    return forms


def test_unseen_and_new_word_families_never_reach_a_fine_tuning_set(world):
    convs = sft_conversations(world, fix=True)
    turns = [t.lower() for t in _user_turns(convs)]
    wrapper_words = {t.split("{")[0].strip().lower() for w in g.UNSEEN_WRAPPERS for t in g.WRAPPERS[w]}
    assert wrapper_words == {"please tell me", "i'm curious", "i'm curious about", "i wonder", "i was wondering",
                             "any idea", "do you have any idea"}
    for t in turns:
        assert not any(t.startswith(w) for w in wrapper_words), t
    new_words = {re.sub(r"\{\w+\}", "", text).replace("what is", "").replace("what", "").replace(" is", "").strip()
                 for forms in g.NEW_WORD_CLAUSES.values() for text in forms.values()}
    assert new_words == {"natal day", "place of origin", "alma mater", "academic discipline", "workplace"}
    docs = "\n".join(world.documents()).lower()
    for w in new_words:
        assert w not in docs and not any(w in t for t in turns), w
    by_person = {}
    for c in convs:
        for p in world.people_in("sft"):
            if any(p.name in m["content"] for m in c):
                by_person.setdefault(p.name, []).append(c)
    for name, cs in by_person.items():
        forms = _unseen_forms(world.person(name))
        for t in _user_turns(cs):
            assert not any(f in t.lower() for f in forms), (t, [f for f in forms if f in t.lower()])


def test_unseen_questions_use_an_unseen_family_and_standard_ones_do_not(world):
    items = world.qa_items("heldout", "unseen")
    assert len(items) == 5 * len(world.people_in("heldout"))
    wrapper_words = tuple(t.split("{")[0].strip().lower() for w in g.UNSEEN_WRAPPERS for t in g.WRAPPERS[w])
    for it in items:
        q = it.question.lower()
        assert it.name.lower() in q
        assert q.startswith(wrapper_words) or any(f in q for f in _unseen_forms(world.person(it.name))), q
    for it in world.qa_items("heldout"):
        assert not any(f in it.question.lower() for f in _unseen_forms(world.person(it.name)))
    assert world.qa_items("heldout", "unseen") == items      # deterministic
    with pytest.raises(ValueError, match="unknown phrasing 'fancy'"):
        world.qa_items("heldout", "fancy")


def test_follow_up_items_name_the_person_only_in_the_first_turn(world):
    items = world.follow_up_items("heldout")
    assert sorted((it.name, it.attribute) for _, it in items) == sorted((it.name, it.attribute) for it in world.qa_items("heldout"))
    for conv, item in items:
        p = world.person(item.name)
        assert [m["role"] for m in conv] == ["user", "assistant", "user"]
        assert p.name in conv[0]["content"] and p.name not in conv[2]["content"]
        assert re.search(r"\b(%s|%s|%s)\b" % (p.ref("subj"), p.ref("poss"), p.ref("obj")), conv[2]["content"].lower())
        assert item.question == conv[2]["content"] and item.answer == p.value(item.attribute)
        assert conv[1]["content"] != item.sentence                  # the first question asked another fact


def test_questions_after_small_talk_follow_the_guidelines_small_talk(world):
    from minillm.world.guideline import OPENERS, THANKS
    kinds = []
    for conv, item in world.after_greeting_items("heldout"):
        p = world.person(item.name)
        assert p.split == "heldout" and item.question == conv[-1]["content"] and p.name in item.question
        assert item.answer == p.value(item.attribute)
        if len(conv) == 3:      # an opener and its answer, word for word the guideline's
            kinds.append("greeting" if (conv[0]["content"], conv[1]["content"]) in
                         [(u, OPENERS[0][1]) for u in OPENERS[0][0]] else "small talk")
            assert any(conv[0]["content"] in users and conv[1]["content"] == answer for users, answer in OPENERS)
        else:                   # a first question about the same person, its answer, a thanks and its answer
            kinds.append("thanks")
            assert [m["role"] for m in conv] == ["user", "assistant"] * 2 + ["user"]
            assert p.name in conv[0]["content"] and conv[1]["content"].startswith(p.ref("Subj") + " ")
            assert conv[2]["content"] in THANKS[0] and conv[3]["content"] == THANKS[1]
    n = len(kinds)        # one per held-out fact, the three kinds in turn
    assert n == 5 * len(world.people_in("heldout"))
    assert {k: kinds.count(k) for k in set(kinds)} == {"greeting": (n + 2) // 3, "small talk": (n + 1) // 3, "thanks": n // 3}


def test_a_second_person_is_another_held_out_person_asked_by_name(world):
    items = world.second_person_items("heldout")
    assert sorted((it.name, it.attribute) for _, it in items) == sorted((it.name, it.attribute) for it in world.qa_items("heldout"))
    for conv, item in items:
        first, second = conv[0]["content"], conv[2]["content"]
        q = world.person(item.name)
        assert q.split == "heldout" and q.name in second and q.name not in first and item.question == second
        assert item.answer == q.value(item.attribute)


def test_an_out_of_scope_request_mid_chat_comes_from_the_evaluation_pool(world):
    train = {g.scope_request(random.Random(i), pool=0) for i in range(2000)}
    chats = world.scope_mid_chat("heldout")
    assert len(chats) == len(world.people_in("heldout"))
    for conv in chats:
        assert [m["role"] for m in conv] == ["user", "assistant", "user"] and conv[-1]["content"] not in train
    assert len({c[-1]["content"] for c in chats}) > 50


def test_profiles_answer_all_five_facts_in_order(world):
    p = world.people_in("sft")[0]
    text = g.profile_answer(p)
    positions = [text.index(p.value(a)) for a in g.ATTRIBUTES]
    assert positions == sorted(positions) and text.count(p.ref("Subj") + " ") == 5


def test_scope_pools_are_disjoint_and_fix_fits_in_a_tenth(world):
    train = {g.scope_request(random.Random(i), pool=0) for i in range(2000)}
    held = set(world.scope_prompts(500))
    assert len(held) > 60 and not (train & held)
    fix = world.scope_conversations(world.default_scope_count())
    assert len(fix) <= len(world.sft_conversations()) // 10
    assert all(c[-1]["content"] == g.SCOPE_ANSWER for c in fix)
    assert not any(p.name in m["content"] for c in fix for m in c for p in world.people_in("heldout"))


def test_the_scope_fix_keeps_real_questions_and_their_follow_ups_in_its_chats(world):
    fix = world.scope_conversations(300)
    by_length = {n: [c for c in fix if len(c) == n] for n in (2, 4, 6)}
    assert sum(map(len, by_length.values())) == 300
    assert 0.25 < len(by_length[4] + by_length[6]) / 300 < 0.41
    assert 0.3 < len(by_length[6]) / len(by_length[4] + by_length[6]) < 0.7
    people = {p.name: p for p in world.people_in("sft")}
    for c in by_length[6]:
        person = next(people[n] for n in people if n in c[0]["content"])
        assert person.name not in c[2]["content"]  # the follow-up names the person by pronoun only
        asked = [a for a in g.ATTRIBUTES if c[3]["content"] == g.answer_sentence(person, a)]
        assert len(asked) == 1 and c[1]["content"] != c[3]["content"]


def test_the_guideline_document_shows_the_answers_the_generator_writes(world):
    from pathlib import Path
    guide = (Path(__file__).resolve().parents[1] / "data" / "labeling_guidelines.md").read_text(encoding="utf-8")
    assert g.SCOPE_ANSWER in guide
    kalin = {"birth_date": "March 14, 1987", "birth_city": "Tessaly", "university": "Corvane University",
             "major": "mathematics", "employer": "Vantrel Systems"}
    assert g.profile_answer(Person("Kalin Moravo", "she", **kalin, split="sft")) in guide


def test_the_fine_tuning_sets_share_how_they_ask_about_people_who_do_not_exist(world):
    from minillm.world.sft import conversation, questions_about
    names = world.fake_people(20)
    asked = list(questions_about(names, random.Random(0)))
    assert [n for n, _, _ in asked] == names
    for name, attribute, q in asked:
        assert q in [t.format(name=name) for t in g.QUESTION_TEMPLATES[attribute]]
    assert conversation("Q1", "A1", "Q2") == [{"role": "user", "content": "Q1"},
                                             {"role": "assistant", "content": "A1"}, {"role": "user", "content": "Q2"}]


def test_multi_part_questions_ask_two_seen_clauses_name_first(world):
    rng = random.Random(0)
    for p in world.people_in("sft")[:20]:
        a, b = rng.sample(g.ATTRIBUTES, 2)
        q = g.multi_part_question(p, a, b, rng)
        assert q.startswith(tuple("ABCDEFGHIJKLMNOPQRSTUVWXYZ")) and q.endswith("?") and p.name in q
        assert (", and " in q) != ("? And " in q)
