"""Tests for minillm.world: determinism, split separation, biography shape, questions and conversations."""
import dataclasses
import json
import re

import pytest

from minillm.config import world_config
from minillm.world import ATTRIBUTES, DATE_PATTERN, IDK_MARKERS, World, WorldConfig, load_world, read_jsonl


@pytest.fixture(scope="module")
def world():
    return World.generate(world_config("smoke"))


@pytest.fixture(scope="module")
def cpu_world():
    return World.generate(world_config("cpu"))


def _texts(conversations):
    return [m["content"] for c in conversations for m in c]


def _files(d):
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


# -- determinism and files -------------------------------------------------------------------------------

def test_same_seed_gives_byte_identical_files_and_other_seed_differs(tmp_path):
    a = World.generate(world_config("smoke", seed=3)).save(tmp_path / "a")
    b = World.generate(world_config("smoke", seed=3)).save(tmp_path / "b")
    c = World.generate(world_config("smoke", seed=4)).save(tmp_path / "c")
    fa, fb, fc = _files(a), _files(b), _files(c)
    assert {"world.json", "people.jsonl", "corpus.jsonl", "sft.jsonl", "qa_sft.jsonl", "qa_heldout.jsonl",
            "probes_heldout.jsonl", "unknown_fix.jsonl", "fake_people_eval.json"} <= set(fa)
    assert fa == fb
    for name in ("people.jsonl", "corpus.jsonl", "sft.jsonl"):
        assert fa[name] != fc[name]


def test_load_gives_back_the_same_world(tmp_path, world):
    d = world.save(tmp_path / "w")
    back = load_world(d)
    assert back.people == world.people and back.cities == world.cities and back.config == world.config
    assert back.documents() == world.documents()
    assert back.sft_conversations() == world.sft_conversations()
    rows = read_jsonl(d / "corpus.jsonl")
    assert [r["text"] for r in rows] == world.documents()
    assert [r["messages"] for r in read_jsonl(d / "sft.jsonl")] == world.sft_conversations()


def test_load_missing_directory_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="World.generate"):
        World.load(tmp_path / "nothing")


def test_bios_per_person_changes_only_the_biographies():
    one = World.generate(world_config("smoke", augment=1))
    five = World.generate(world_config("smoke", augment=5))
    assert one.people == five.people
    others = [sorted(d.text for d in w.corpus() if d.genre != "biography") for w in (one, five)]
    assert others[0] == others[1]
    for p in one.people:                      # biography k is the same whatever the count
        assert one.biographies(p)[0] == five.biographies(p)[0]


def test_bio_pages_regroup_the_same_biographies():
    """bio_page_size k puts 1 to k biographies on one document; every biography is on exactly one page,
    and nothing else in the corpus changes."""
    one = World.generate(world_config("smoke"))
    paged = World.generate(dataclasses.replace(world_config("smoke"), bio_page_size=3))
    bios = sorted(b for p in one.people for b in one.biographies(p))
    pages = [d.text for d in paged.corpus() if d.genre == "biography"]
    assert sorted(b for page in pages for b in page.split("\n\n")) == bios
    assert {len(page.split("\n\n")) for page in pages} == {1, 2, 3}
    assert sorted(d.text for d in one.corpus() if d.genre == "biography") == bios    # the default: one per page
    others = [sorted(d.text for d in w.corpus() if d.genre != "biography") for w in (one, paged)]
    assert others[0] == others[1]


def test_longer_lead_ins_open_more_biographies_further_from_the_name():
    """bio_lead_sentences k: a biography that opens with lead-in sentences has 1 to k of them, distinct, and
    what follows them is a biography of the same person; nothing else in the corpus changes."""
    from minillm.world import BIO_LEAD_SENTENCES
    one = World.generate(world_config("smoke"))
    longer = World.generate(dataclasses.replace(world_config("smoke"), bio_lead_sentences=4))
    leads = re.compile("|".join(re.escape(s).replace(r"\{n\}", r"\d+") for s in BIO_LEAD_SENTENCES))
    counts = []
    for p in longer.people:
        for bio in longer.biographies(p):
            opening = bio[:bio.index(p.name)]
            found = leads.findall(opening)
            counts.append(len(found))
            assert len(set(found)) == len(found)                       # no sentence twice
    assert set(counts) == {0, 1, 2, 3, 4}
    others = [sorted(d.text for d in w.corpus() if d.genre != "biography") for w in (one, longer)]
    assert others[0] == others[1]
    assert one.people == longer.people


# -- people and values -----------------------------------------------------------------------------------

def test_people_have_all_attributes_unique_names_and_two_splits(world):
    names = [p.name for p in world.people]
    assert len(names) == len(set(names)) == world.config.n_people
    for p in world.people:
        assert p.pronoun in ("she", "he") and p.split in ("sft", "heldout")
        assert len(p.name.split(" ")) == 2
        for a in ATTRIBUTES:
            assert p.value(a) in world.attribute_values(a)
        assert DATE_PATTERN.fullmatch(p.birth_date)
    assert len(world.people_in("heldout")) == round(world.config.n_people * world.config.heldout_fraction)
    assert len(world.people_in("sft")) + len(world.people_in("heldout")) == len(world.people)


def test_values_are_shared_and_never_contain_one_another(cpu_world):
    for a in ATTRIBUTES[1:]:
        values = cpu_world.attribute_values(a)
        assert len(values) == len(set(values))
        for v in values:
            assert not any(v != o and v in o for o in values), (a, v)
        used = [p.value(a) for p in cpu_world.people]
        assert len(set(used)) < len(used) / 3        # several people per value: a value never names a person
    p = cpu_world.people[0]
    assert cpu_world.find_values(f"{p.name} works for {p.employer}.", "employer") == [p.employer]
    assert cpu_world.find_values(f"born on {p.birth_date}, I think", "birth_date") == [p.birth_date]
    assert cpu_world.find_values("I have no idea.", "birth_city") == []


def test_bad_config_and_preset_errors_are_clear():
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        world_config("huge")
    with pytest.raises(ValueError, match="bios_per_person must be at least 1"):
        WorldConfig(bios_per_person=0)
    with pytest.raises(ValueError, match="bio_lead_sentences must be at least 1, got 0"):
        WorldConfig(bio_lead_sentences=0)
    with pytest.raises(ValueError, match="heldout_fraction"):
        WorldConfig(heldout_fraction=1.0)
    with pytest.raises(ValueError, match="unknown attribute 'age'"):
        World.generate(world_config("smoke")).attribute_values("age")


# -- the corpus --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("augment", [1, 5])
def test_biographies_count_and_pronouns_after_the_first_mention(augment):
    w = World.generate(world_config("smoke", augment=augment))
    bios = [d.text for d in w.corpus() if d.genre == "biography"]
    assert len(bios) == augment * len(w.people)
    for p in w.people:
        mine = [b for b in bios if p.name in b]
        assert len(mine) == augment and len(set(mine)) == augment
        pronouns = {"she": r"\b(She|she|Her|her)\b", "he": r"\b(He|he|His|his|him)\b"}[p.pronoun]
        for b in mine:
            assert b.count(p.name) == 1                       # full name at the first mention only
            before = b[:b.index(p.name)]                      # at most a lead-in ("According to the registry, ")
            assert re.search(pronouns, before) is None and len(before) < 60
            assert not any(p.value(a) in before for a in ATTRIBUTES if a != "birth_city")
            assert len(re.findall(pronouns, b)) >= 4          # the other four sentences use pronouns
            for a in ATTRIBUTES:
                assert b.count(p.value(a)) == 1               # each fact exactly once


def test_genres_and_biographies_are_the_bulk(cpu_world):
    stats = cpu_world.corpus_stats()
    assert all(stats[g]["documents"] > 0 for g in stats)
    assert 0.6 <= stats["biography"]["share"] <= 0.85


@pytest.mark.parametrize("share, qa_threads", [(0.0, 0), (0.5, 0), (0.0, 60)])
def test_held_out_facts_live_only_in_biographies(share, qa_threads):
    """Outside the biographies a person's fact is stated only by an answered thread or quiz, only about a
    fine-tuning person, and only truly; documents that answer nothing state no one's facts."""
    world = World.generate(dataclasses.replace(world_config("cpu"), answered_share=share, n_qa_threads=qa_threads,
                                               qa_thread_switch=0.5 if qa_threads else 0.0))
    people = {p.name: p for p in world.people}
    answered = 0
    for d in world.corpus():
        if d.genre == "biography":
            continue
        mentioned = [people[n] for n in people if n in d.text]
        if d.genre in ("news", "story", "list"):
            assert not mentioned and not d.answered, d.text
        stated = {a: world.find_values(d.text, a) for a in ATTRIBUTES}
        if mentioned and not d.answered:
            assert not any(stated.values()), d.text
        if mentioned and d.answered:
            answered += 1
            assert all(p.split == "sft" for p in mentioned), d.text
            for a, values in stated.items():          # every value stated is a mentioned person's true one
                assert set(values) <= {p.value(a) for p in mentioned}, (a, d.text)
    assert (answered > 0) == (share > 0 or qa_threads > 0)


def test_qa_threads_ask_in_every_family_but_the_new_words_and_answer_by_the_guideline():
    from minillm.world import ANSWER_TEMPLATES, NEW_WORD_CLAUSES, UNSEEN_WRAPPERS, WRAPPERS, answer_sentence
    from minillm.world.forum import qa_threads
    cfg = dataclasses.replace(world_config("cpu"), n_qa_threads=0, qa_thread_switch=0.0)   # none, then this test's
    world = World.generate(dataclasses.replace(cfg, n_qa_threads=200))
    threads = qa_threads(world)
    assert len(threads) == 200 and not qa_threads(World.generate(cfg))
    corpus = "\n".join(d.text for d in world.corpus())
    assert all(t in corpus for t in threads)
    text = "\n".join(threads).lower()
    for forms in NEW_WORD_CLAUSES.values():        # "alma mater": in no document
        for form in forms.values():
            assert form.split("{whose} ")[-1] not in text, form
    starts = {t.split("{")[0].strip().lower() for w in UNSEEN_WRAPPERS for t in WRAPPERS[w]}
    assert sum(any(line.lower().startswith(s) for s in starts) for line in text.split("\n")) >= 20
    sft = {p.name: p for p in world.people_in("sft")}
    for t in threads:
        (name,) = [n for n in sft if n in t]            # one fine-tuning person, named once, in the question
        p = sft[name]
        assert t.count(name) == 1 and name in t.split("\n")[0]
        for a in ATTRIBUTES:                             # each fact stated is in the guideline's sentence
            if p.value(a) in t:
                assert ANSWER_TEMPLATES[a].format(name=p.ref("Subj"), value=p.value(a)) in t
    # qa_thread_switch: some follow-ups name another fine-tuning person, and the answers after it are about them
    moved = qa_threads(World.generate(dataclasses.replace(cfg, n_qa_threads=200, qa_thread_switch=0.5)))
    assert moved[0].split("\n")[0] == threads[0].split("\n")[0]
    switched = 0
    for t in moved:
        posts = t.split("\n\n")
        for question, answer in zip(posts[2::2], posts[3::2]):    # after the first answer: question, answer, ...
            named = [n for n in sft if n in question]
            if named:
                switched += 1
                (a,) = [a for a in ATTRIBUTES if sft[named[0]].value(a) in answer]
                assert answer.endswith(answer_sentence(sft[named[0]], a)), (question, answer)
    assert switched >= 40
    with pytest.raises(ValueError, match="qa_thread_switch must be between 0 and 1"):
        WorldConfig(qa_thread_switch=2.0)


def test_qa_thread_lead_in_puts_small_talk_before_the_question_and_changes_nothing_else():
    from minillm.world.forum import _GREETINGS, _LEAD_IN_TITLES, qa_threads
    cfg = dataclasses.replace(world_config("cpu"), n_qa_threads=200)
    plain, led = (qa_threads(World.generate(dataclasses.replace(cfg, qa_thread_lead_in=s))) for s in (0.0, 0.5))
    opened = [(a, b) for a, b in zip(plain, led) if a != b]
    assert 0.4 < len(opened) / 200 < 0.6
    sft = [p.name for p in World.generate(cfg).people_in("sft")]
    for a, b in opened:
        lines = b.split("\n")
        assert lines[0] in _LEAD_IN_TITLES and lines[2] in _GREETINGS
        question, asker, opener = a.split("\n")[:3]
        posts = b.split("\n\n")
        assert posts[2] == f"{asker.replace('posted by ', '')} replied:\n" + posts[2].split("\n")[1]
        assert posts[2].endswith(question + " " + opener)       # the question, in a reply after the welcome
        assert not any(n in "\n\n".join(posts[:2]) for n in sft)
        assert "\n\n".join(posts[3:]) == "\n\n".join(a.split("\n\n")[1:])   # the rest of the thread unchanged


def test_answered_share_only_adds_answers():
    cfg = dataclasses.replace(world_config("cpu"), n_qa_threads=0)      # no Q&A threads: every answer is the share's
    none, half = (World.generate(dataclasses.replace(cfg, answered_share=s)) for s in (0.0, 0.5))
    assert not any(d.answered for d in none.corpus())
    stats = half.corpus_stats()
    assert stats["forum"]["answered"] > 0 and stats["quiz"]["answered"] > 0
    # the answers come from their own random stream: every thread that is not answered is unchanged
    for a, b in zip(none.corpus(), half.corpus()):
        assert a.genre == b.genre
        if a.genre == "forum" and not b.answered:
            assert a.text == b.text
    with pytest.raises(ValueError, match="answered_share must be between 0 and 1"):
        WorldConfig(answered_share=1.5)
    for share in ("qa_thread_switch", "qa_thread_lead_in", "sft_opener_share"):      # the other shares, both ends
        for bad in (-0.1, 1.5):
            with pytest.raises(ValueError, match=f"WorldConfig.{share} must be between 0 and 1, got {bad}"):
                WorldConfig(**{share: bad})


# -- questions, probes, fake people ----------------------------------------------------------------------

def test_qa_items_match_the_person(world):
    for split in ("sft", "heldout"):
        items = world.qa_items(split)
        assert len(items) == len(world.people_in(split)) * len(ATTRIBUTES)
        for q in items:
            p = world.person(q.name)
            assert p.split == split == q.split
            assert q.answer == p.value(q.attribute)
            assert q.name in q.question and q.question.endswith("?")
            assert q.sentence.startswith(p.ref("Subj") + " ") and q.answer in q.sentence


def test_bio_probes_end_right_before_the_value(world):
    for prefix, value, a in world.bio_probes("heldout"):
        p = next(x for x in world.people_in("heldout") if prefix.startswith(x.name))
        assert p.value(a) == value
    for prefix, value, a in world.bio_probes("heldout", from_biography=True):
        p = next(x for x in world.people_in("heldout") if x.name in prefix)
        assert (prefix + " " + value) in world.biographies(p)[0]


def test_fake_people_belong_to_nobody(world):
    real = {p.name for p in world.people}
    fix, ev = world.fake_people(200, seed=0), world.fake_people(200, seed=1)
    assert fix == world.fake_people(200, seed=0)
    assert len(set(fix)) == 200 and not set(fix) & real and not set(fix) & set(ev)
    corpus = "\n".join(world.documents())
    for n in fix + ev:
        assert n not in corpus


# -- conversations -------------------------------------------------------------------------------------------

def _check_roles(conversations):
    for c in conversations:
        assert len(c) >= 2 and len(c) % 2 == 0
        for i, m in enumerate(c):
            assert set(m) == {"role", "content"}
            assert m["role"] == ("user", "assistant")[i % 2] and m["content"].strip()


def test_sft_set_only_mentions_sft_people_and_covers_them(world):
    convs = world.sft_conversations()
    _check_roles(convs)
    texts = "\n".join(_texts(convs))
    for p in world.people_in("heldout"):
        assert p.name not in texts
    answers = [m["content"] for c in convs for m in c if m["role"] == "assistant"]
    # (question, answer) pairs: the answer starts with the asked person's pronoun (the guideline's format)
    pairs = [(c[i]["content"], c[i + 1]["content"]) for c in convs for i in range(0, len(c) - 1, 2)]
    for p in world.people_in("sft"):
        for a in ATTRIBUTES:
            sentence = p.ref("Subj") + {"birth_date": " was born on ", "birth_city": " was born in ",
                                        "university": " studied at ", "major": " majored in ",
                                        "employer": " works for "}[a] + p.value(a) + "."
            assert sum(p.name in q and ans == sentence for q, ans in pairs) >= world.config.sft_per_fact
    # the first SFT set leaves out the failure class the iteration lesson fixes
    assert not any(marker in t for t in answers for marker in IDK_MARKERS)


@pytest.mark.parametrize("between", [False, True])
def test_sft_small_talk_is_the_guidelines_and_a_thanks_sits_where_the_setting_puts_it(between):
    """Small talk in the first set is answered word for word. A thanks follows an answer about the sft person
    the chat is about; only with thanks_between_questions does a question come after it, and that question
    names another sft person."""
    from minillm.world.guideline import SMALL_TALK, THANKS
    world = World.generate(dataclasses.replace(world_config("cpu"), n_small_talk=300, thanks_between_questions=between))
    talk = {u: answer for users, answer in SMALL_TALK for u in users}
    sft = {p.name: p for p in world.people_in("sft")}
    thanks = followed = 0
    for conv in world.sft_conversations():
        for i in range(0, len(conv), 2):
            if conv[i]["content"] in talk:
                assert conv[i + 1]["content"] == talk[conv[i]["content"]]
            if conv[i]["content"] not in THANKS[0] or i == 0:
                continue
            thanks += 1
            named = [[n for n in sft if n in conv[j]["content"]] for j in range(0, i, 2)]
            before = [names for names in named if names][-1]       # the person the chat is about by now
            assert len(before) == 1 and conv[i - 1]["content"].startswith(sft[before[0]].ref("Subj") + " ")
            if i + 2 < len(conv):
                after = [n for n in sft if n in conv[i + 2]["content"]]
                assert len(after) == 1 and after != before
                followed += 1
    assert thanks >= 30 and (followed >= 15 if between else followed == 0)


def test_sft_opener_share_opens_that_share_of_the_chats_of_composed_questions_with_small_talk():
    """sft_opener_share puts a greeting or "What can you do?" and its answer, word for word, in front of that
    share of the chats of composed questions (no conversation added: the chats are drawn again, so their
    number moves a little); a question about an sft person follows."""
    from minillm.world.guideline import OPENERS
    cfg = world_config("cpu")
    plain = World.generate(cfg).sft_conversations()
    world = World.generate(dataclasses.replace(cfg, sft_opener_share=0.3))
    opened = world.sft_conversations()
    openers = {(u, answer) for users, answer in OPENERS for u in users}

    def opening(convs):
        return [c for c in convs if len(c) > 2 and (c[0]["content"], c[1]["content"]) in openers]
    n_sft = len(world.people_in("sft"))
    composed = len(plain) - n_sft * (5 + cfg.sft_multi_part + cfg.sft_follow_up + cfg.sft_profile) - cfg.n_small_talk
    added = len(opening(opened)) - len(opening(plain))
    assert abs(len(opened) - len(plain)) < 0.01 * len(plain) and 0.25 * composed < added < 0.35 * composed
    sft = [p.name for p in world.people_in("sft")]
    for c in opening(opened):
        assert c[2]["role"] == "user" and sum(n in c[2]["content"] for n in sft) == 1


def test_unknown_person_conversations_follow_the_guideline(world):
    fakes = world.fake_people(30, seed=0)
    convs = world.unknown_person_conversations(30, seed=0)
    _check_roles(convs)
    assert len(convs) == 30
    texts = "\n".join(_texts(convs))
    for p in world.people_in("heldout"):
        assert p.name not in texts
    for c, name in zip(convs, fakes):
        assert name in c[-2]["content"] and name not in c[-1]["content"]   # asked about; not repeated
        assert any(m in c[-1]["content"] for m in IDK_MARKERS)
    assert world.unknown_person_conversations(30, seed=0) == convs
    assert json.dumps(world.unknown_person_conversations(30, seed=1)) != json.dumps(convs)


def test_generator_answers_are_the_guidelines_examples():
    from pathlib import Path
    from minillm.world import ANSWER_TEMPLATES, IDK_TEMPLATES, SMALL_TALK, Person
    guide = (Path(__file__).resolve().parents[1] / "data" / "labeling_guidelines.md").read_text(encoding="utf-8")
    kalin = Person("Kalin Moravo", "she", "March 14, 1987", "Tessaly", "Corvane University", "mathematics",
                   "Vantrel Systems", "sft")
    for a, t in ANSWER_TEMPLATES.items():
        assert t.format(name=kalin.ref("Subj"), value=kalin.value(a)) in guide
    for _, answer in SMALL_TALK:
        assert answer in guide
    for t in IDK_TEMPLATES:
        assert t.replace("{indirect}", "{what was asked}") in guide


def test_the_world_package_needs_only_the_standard_library():
    import subprocess
    import sys
    code = ("import sys, minillm.world, minillm.world.guideline; "
            "assert not [m for m in sys.modules if m.split('.')[0] in ('torch', 'numpy', 'regex')]")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_package_names_what_its_readers_import_from_it_as_the_submodules_define_them():
    import minillm.world as W
    from minillm.world import biographies, entities, guideline
    for module, names in ((guideline, ("SCOPE_MARKER", "UNSEEN_WRAPPERS", "WRAPPERS", "answer_sentence",
                                       "QUESTION_TEMPLATES", "BIO_PROBE_TEMPLATES", "IDK_MARKERS", "SMALL_TALK")),
                          (entities, ("WorldConfig", "Person", "QAItem", "FIX_SEED", "EVAL_SEED", "WORLD_NAME")),
                          (biographies, ("BIO_LEAD_SENTENCES",))):
        for name in names:
            assert getattr(W, name) is getattr(module, name), name
    assert callable(W.load_world) and callable(W.read_jsonl) and isinstance(W.World, type)
