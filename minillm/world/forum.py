"""Forum threads and quiz pages: where the internet asks about people and places.

Questions here mostly go unanswered: forum replies chatter, quizzes keep their answers "on the next page".
With WorldConfig.answered_share > 0 that share of the threads and quizzes about places and about
*fine-tuning* people do answer (a reply that states the fact, an answer key at the end), as some pages of
a real internet do; never about a held-out person, whose facts reach the model only through biographies.
Either way what a base model does with a question is measured (evaluate.reply_kinds). Person questions and
place questions sit on separate quiz pages and threads.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from minillm.world.biographies import fill
from minillm.world.entities import ATTRIBUTES, WORLD_NAME, Person, seeded_rng
from minillm.world.guideline import (CLAUSES, OPENING_WRAPPERS, WRAPPERS, Phrasing, answer_sentence,
                                     phrased_question, standard_question)

if TYPE_CHECKING:
    from minillm.world import World

# Questions that refer back to the person with a pronoun ("And what did she study?"), asked in replies.
FOLLOW_UP_TEMPLATES = {
    "birth_date": ("And when was {subj} born?", "When was {subj} born?", "What is {poss} date of birth?"),
    "birth_city": ("And where was {subj} born?", "Where did {subj} grow up?", "Which city is {subj} from?"),
    "university": ("Which university did {subj} attend?", "And where did {subj} go to university?",
                   "Where did {subj} study?"),
    "major": ("What did {subj} study?", "And what was {poss} major?", "What subject did {subj} major in?"),
    "employer": ("Who does {subj} work for?", "And where does {subj} work?", "Which company employs {obj}?"),
}
# Indirect questions for forum chatter ("I'd also like to know where she was born.").
INDIRECT = {
    "birth_date": "when {subj} was born",
    "birth_city": "where {subj} was born",
    "university": "which university {subj} attended",
    "major": "what {subj} studied",
    "employer": "who {subj} works for",
}

_USER_WORDS = ("blue", "quiet", "river", "old", "tall", "mossy", "lucky", "night", "paper", "copper", "green",
               "amber", "silver", "sleepy")
_USER_NOUNS = ("fox", "heron", "lantern", "owl", "pine", "reader", "walker", "finch", "otter", "cloud",
               "teapot", "badger", "sparrow")

_OPENERS = (
    "I've been trying to find this out for a while. Does anyone here know?",
    "Quick question for the forum. Someone asked me this and I had no idea.",
    "My friend and I were arguing about this yesterday. Any ideas?",
    "Asking for a school project.",
    "I read about {obj} somewhere but I can't remember the details.",
    "Sorry if this has been asked before.",
)
_REPLIES = (
    "I was wondering the same thing.",
    "No idea, sorry.",
    "Good question. I'd also like to know {indirect}.",
    "Have you tried searching for it?",
    "Why do you want to know?",
    "Following this thread.",
    "Does anyone know {indirect}? That's what I'm after.",
    "Off topic, but does anyone know a good place to buy a bicycle?",
    "Bump. Still looking for an answer.",
    "I think I read something about {obj} once, but I can't remember where.",
    "Same here. My search didn't turn up anything.",
    "Also, {question}",
    "Try asking at the library. They keep old records.",
    "Not sure. Maybe someone who knows {obj} personally can help.",
    "Is this for the quiz on the other board?",
    "Let us know if you find out!",
)
# Questions about places, each with its answer: (question, reply that answers, answer-key entry).
_PLACE_QUESTIONS = (
    (("Which country is {city} in?", "{city} is in {country}.", "{country}"),
     ("What river runs through {city}?", "{river_cap} runs through {city}.", "{river}"),
     ("When was {city} founded?", "{city} was founded in {city_founded}.", "{city_founded}"),
     ("What is there to see in {city}?", "Go and see {landmark}. Everyone does.", "{landmark}")),
    (("Where is {company} based?", "{company} is based in {company_city}.", "{company_city}"),
     ("When was {company} founded?", "{company} was founded in {company_founded}.", "{company_founded}"),
     ("What does {company} make?", "{company} is a {industry} company.", "{industry}")),
    (("Which city is {university} in?", "{university} is in {university_city}.", "{university_city}"),
     ("When was {university} founded?", "{university} was founded in {university_founded}.", "{university_founded}"),
     ("What is {university} known for?", "{university} is best known for its department of {known_for}.",
      "{known_for}")),
)
# A reply that states a person's fact: the guideline's answer sentence ("She was born in Tessaly.") in a post.
_ANSWER_REPLIES = ("{answer}", "I know this one. {answer}", "{answer} I read it in {poss} biography.",
                   "{answer} A friend of mine knows {obj}.", "{answer} Hope that helps!")
# A thread that opens with small talk before its question (WorldConfig.qa_thread_lead_in): a title, the
# asker's greeting, a welcome, then the asker's question, sometimes after a thanks.
_LEAD_IN_TITLES = ("Hello from a new member", "First post", "Hi all", "New here", "Hello everyone!")
_GREETINGS = ("Hi everyone! First time posting here.", "Hello! I just joined this forum.",
              "Hey all, long time reader, first time poster.", "Good morning, everyone!", "Hi! Nice to be here.")
_WELCOMES = ("Welcome to the forum!", "Welcome! Glad to have you here.", "Hi, and welcome!",
             "Welcome aboard. Feel free to ask anything.", "Hello and welcome!")
_THANKS = ("Thanks! I have a question, actually.", "Thank you! Happy to be here.", "Thanks for the welcome!")
_PLACE_REPLIES = (
    "I was wondering the same thing.", "No idea, sorry.", "Have you tried searching for it?",
    "Following this thread.", "Bump. Still looking for an answer.", "Why do you ask?",
    "I've never been there, so I can't help.", "Good question. I'd like to know too.",
    "Is there a map somewhere on this forum?", "Let us know if you find out!",
)


def _user(rng) -> str:
    return rng.choice(_USER_WORDS) + rng.choice(_USER_NOUNS) + (str(rng.randint(1, 99)) if rng.random() < 0.5 else "")


def _thread(rng, title: str, opener: str, replies: list[str], answer: str | None = None, answer_rng=None) -> str:
    """A forum thread. An answering reply goes in at a random place, drawn (with its poster) from answer_rng,
    so the rest of the thread is the one that would have been written without it."""
    posts = [[f"posted by {_user(rng)}", opener]] + [[f"{_user(rng)} replied:", r] for r in replies]
    if answer is not None:
        posts.insert(answer_rng.randint(1, len(posts)), [f"{_user(answer_rng)} replied:", answer])
    return "\n".join([title] + posts[0] + [line for post in posts[1:] for line in [""] + post])


def _person_thread(rng, p: Person, w: World, answer_rng=None) -> str:
    """A thread asking one of p's facts. Replies ask other things about p. With answer_rng (only ever for a
    fine-tuning person: see WorldConfig.answered_share) one more reply states the fact."""
    a = rng.choice(ATTRIBUTES)
    title = standard_question(p.name, a, rng)
    others = [x for x in ATTRIBUTES if x != a]
    replies = []
    for r in rng.sample(_REPLIES, rng.randint(2, 5)):
        b = rng.choice(others)
        q = fill(rng.choice(FOLLOW_UP_TEMPLATES[b]), p, [True])
        q = q[len("And "):] if q.startswith("And ") else q
        q = q[0].lower() + q[1:]            # "Also, when was she born?"
        replies.append(fill(r.replace("{indirect}", INDIRECT[b]).replace("{question}", q), p, [True]))
    opener = fill(rng.choice(_OPENERS), p, [True])
    answer = None
    if answer_rng is not None:
        answer = fill(answer_rng.choice(_ANSWER_REPLIES).replace("{answer}", answer_sentence(p, a)), p, [True])
    return _thread(rng, title, opener, replies, answer, answer_rng)


def _place_question(rng, w: World, group: int) -> tuple[str, str, str]:
    """(question, answering reply, answer-key entry) about a random city, company or university."""
    templates = rng.choice(_PLACE_QUESTIONS[group])
    c, co, u = rng.choice(w.cities), rng.choice(w.companies), rng.choice(w.universities)
    fill = dict(city=c.name, country=c.country, river=c.river, river_cap=c.river[0].upper() + c.river[1:],
                city_founded=c.founded, landmark=c.landmark, company=co.name, company_city=co.city,
                company_founded=co.founded, industry=co.industry, university=u.name, university_city=u.city,
                university_founded=u.founded, known_for=u.known_for)
    return tuple(t.format(**fill) for t in templates)


def _place_thread(rng, w: World, answer_rng=None) -> str:
    title, answer, _ = _place_question(rng, w, rng.randrange(3))
    opener = rng.choice(_OPENERS[:4])
    replies = rng.sample(_PLACE_REPLIES, rng.randint(2, 4))
    return _thread(rng, title, opener, replies, answer if answer_rng is not None else None, answer_rng)


def _quiz(title: str, questions: list[str], key: list[str] | None, end: str) -> str:
    lines = [title, ""] + [f"{i}. {q}" for i, q in enumerate(questions, 1)]
    if key is not None:
        return "\n".join(lines + ["", "Answers: " + "; ".join(f"{i}. {k}" for i, k in enumerate(key, 1))])
    return "\n".join(lines + (["", end] if end else []))


def _person_quiz(rng, w: World, key_rng=None) -> str:
    """Questions about several people. With key_rng the quiz asks about fine-tuning people only (drawn from
    key_rng) and ends with its answer key instead of "answers on the next page"."""
    title = rng.choice((f"Quiz: How well do you know the people of {WORLD_NAME}?", "Trivia night: people round",
                        "Pub quiz, round {}: famous faces".format(rng.randint(1, 6)), "Test yourself: who's who"))
    people = rng.sample(w.people, min(len(w.people), rng.randint(5, 10)))
    if key_rng is not None:
        sft = w.people_in("sft")
        people = key_rng.sample(sft, min(len(sft), len(people)))
    qs, key = [], []
    for p in people:
        a = rng.choice(ATTRIBUTES)
        qs.append(standard_question(p.name, a, rng))
        key.append(p.value(a))
    end = rng.choice(("Answers on the next page.", "Write your answers on the sheet. No phones!",
                      "Answers will be posted next week.", ""))
    return _quiz(title, qs, key if key_rng is not None else None, end)


def _place_quiz(rng, w: World, key_rng=None) -> str:
    title = rng.choice((f"Geography quiz: {WORLD_NAME}", "Trivia night: places round", "Know your cities?"))
    qs, key = [], []
    for _ in range(rng.randint(5, 8)):
        q, _, k = _place_question(rng, w, rng.randrange(3))
        qs.append(q)
        key.append(k)
    return _quiz(title, qs, key if key_rng is not None else None, "Answers on the next page.")


def forum_threads(world: World) -> list[tuple[str, bool]]:
    """(thread, answered): three in four threads ask about a person, the rest about a place. Whether and
    how a thread is answered is drawn from its own random stream, so answered_share=0 gives exactly the
    threads of a corpus without answers, and a share only adds answers to some of them."""
    rng, answers = seeded_rng(world.config.seed, "forum"), seeded_rng(world.config.seed, "forum answers")
    out = []
    for _ in range(world.config.n_forum):
        if rng.random() < 0.75:
            p = rng.choice(world.people)
            answered = p.split == "sft" and answers.random() < world.config.answered_share
            out.append((_person_thread(rng, p, world, answers if answered else None), answered))
        else:
            answered = answers.random() < world.config.answered_share
            out.append((_place_thread(rng, world, answers if answered else None), answered))
    return out


def quizzes(world: World) -> list[tuple[str, bool]]:
    """(quiz, answered): an answered quiz about people asks about fine-tuning people only (own random
    stream for the answers, as in forum_threads)."""
    rng, answers = seeded_rng(world.config.seed, "quiz"), seeded_rng(world.config.seed, "quiz answers")
    out = []
    for _ in range(world.config.n_quizzes):
        answered = answers.random() < world.config.answered_share
        key_rng = answers if answered else None
        quiz = _person_quiz(rng, world, key_rng) if rng.random() < 0.7 else _place_quiz(rng, world, key_rng)
        out.append((quiz, answered))
    return out


def qa_threads(world: World) -> list[str]:
    """WorldConfig.n_qa_threads answered threads, each about a fine-tuning person: a question in any of the
    guideline's clause and wrapper families (those fine-tuning never shows included, the new-word ones never),
    the answer in the guideline's sentence, then up to two pronoun follow-ups by the asker, each answered:
    a conversation as the internet shows one. With WorldConfig.qa_thread_switch, that share of the follow-ups
    asks about another fine-tuning person by name instead. With WorldConfig.qa_thread_lead_in, that share of
    the threads opens with small talk (a greeting, a welcome) and asks in a reply. Never about a held-out person."""
    rng = seeded_rng(world.config.seed, "qa threads")
    every = Phrasing({a: list(CLAUSES[a]) for a in ATTRIBUTES}, tuple(WRAPPERS))
    moving = Phrasing(every.clauses, tuple(w for w in WRAPPERS if w not in OPENING_WRAPPERS))   # not "Hi! ..." mid-thread
    lead = seeded_rng(world.config.seed, "qa thread lead-ins")     # its own stream: the threads stay what they were
    sft = world.people_in("sft")
    out = []
    for _ in range(world.config.n_qa_threads):
        p = rng.choice(sft)
        asker, answerer = _user(rng), _user(rng)
        order = rng.sample(ATTRIBUTES, 1 + rng.randrange(3))
        posts = [phrased_question(p.name, p.pronoun, order[0], rng, every), f"posted by {asker}",
                 rng.choice(_OPENERS[:4])]
        if lead.random() < world.config.qa_thread_lead_in:    # small talk first, the question in a reply
            intro = [lead.choice(_LEAD_IN_TITLES), f"posted by {asker}", lead.choice(_GREETINGS),
                     "", f"{_user(lead)} replied:", lead.choice(_WELCOMES)]
            thanks = lead.choice(_THANKS) + " " if lead.random() < 0.5 else ""
            posts = intro + ["", f"{asker} replied:", thanks + posts[0] + " " + posts[2]]
        for i, a in enumerate(order):
            if i and world.config.qa_thread_switch and len(sft) > 1 and rng.random() < world.config.qa_thread_switch:
                p = rng.choice([o for o in sft if o is not p])      # the thread moves on to someone else
                q = phrased_question(p.name, p.pronoun, a, rng, moving, style=False)
                if q.split(" ")[0] in ("What", "Where", "When", "Which", "Who", "Can", "Could", "Do", "Tell", "Would"):
                    q = "And " + q[0].lower() + q[1:]                  # "And where does Ilsa Verano work?"
                posts += ["", f"{asker} replied:", q]
            elif i:
                posts += ["", f"{asker} replied:",
                          phrased_question(p.name, p.pronoun, a, rng, every, pronoun_subject=True)]
            answer = answer_sentence(p, a)
            if not i:       # the first answer as a forum reply says it ("I know this one. ..."), the rest plainly
                answer = fill(rng.choice(_ANSWER_REPLIES).replace("{answer}", answer), p, [True])
            posts += ["", f"{answerer} replied:", answer]
        out.append("\n".join(posts))
    return out
