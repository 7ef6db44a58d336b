"""How users ask and how Minnie answers: the labeling guideline (data/labeling_guidelines.md) as code.

The building blocks: the clauses and wrappers a question is composed from, the families kept out of fine-tuning
to measure with, and the guideline's answers. minillm.world.sft writes the fine-tuning sets from them and
minillm.world.evals the evaluation sets. Standard library only, like all of minillm.world.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from minillm.world.entities import ASSISTANT_NAME, ATTRIBUTES, PRONOUNS, WORLD_NAME, Person

# A first version of the course fine-tuned on six fixed questions per fact ("Where was X born?", ...).
# The assistant then answered new *people* asked those six ways and failed on new *questions*: "Please
# tell me the birthplace of X." got an answer about X's employer. A model learns the mapping from the
# questions it is shown, so the fine-tuning set has to show how people really ask. Here a question is
# composed from two parts:
#
#     a clause, which says what is asked:   "where was {who} born" / "where {who} was born" / "{whose} hometown"
#     a wrapper, which says how:            "{DQ}?"  "Can you tell me {IQ}?"  "Tell me {NP}."  "{Name}: {DQ}?"
#
# and a surface style (as typed: lower case but for the name, no question mark). Clauses come in four
# grammatical forms so that most wrappers can take most clauses: a direct question (DQ), an indirect one (IQ),
# a noun phrase (NP) and a noun phrase that needs the name ("the hometown of {who}").
# Each attribute has several clause *families* (one wording in the forms it has) and there are several
# wrapper families, so a fact can be asked in hundreds of ways.
#
# Clause families: attribute -> family -> forms. {who} is the subject (a name, or "she" in a follow-up),
# {whose} its possessive ("Kalin Moravo's" / "her"), {whom} its object form, {poss} always the pronoun
# possessive ("where did Kalin Moravo spend her early years"). "np_name" forms need a name, not a pronoun
# ("the birthplace of Kalin Moravo", with the name last).
CLAUSES = {
    "birth_date": {
        "when_born": {"dq": "when was {who} born", "iq": "when {who} was born"},
        "what_date": {"dq": "on what date was {who} born", "iq": "on what date {who} was born"},
        "date_of_birth": {"np": "{whose} date of birth", "np_name": "the date of birth of {who}"},
        "birthday": {"np": "{whose} birthday", "dq": "when is {whose} birthday", "iq": "when {whose} birthday is"},
        "came_into_world": {"dq": "when did {who} come into the world", "iq": "when {who} came into the world"},
        "life_began": {"dq": "when did {whose} life begin", "iq": "when {whose} life began"},
        "date_born_on": {"np_name": "the date {who} was born on", "np": "the day {who} was born"},
        "echo_date": {"dq": "{who} was born on what date"},
    },
    "birth_city": {
        "where_born": {"dq": "where was {who} born", "iq": "where {who} was born"},
        "city_born": {"dq": "in which city was {who} born", "iq": "in which city {who} was born"},
        "grow_up": {"dq": "where did {who} grow up", "iq": "where {who} grew up"},
        "city_from": {"dq": "which city is {who} from", "iq": "which city {who} is from"},
        "birthplace": {"np": "{whose} birthplace", "np_name": "the birthplace of {who}"},
        "hometown": {"np": "{whose} hometown", "np_name": "the hometown of {who}"},
        "native_of": {"dq": "which city is {who} a native of", "iq": "which city {who} is a native of"},
        "early_years": {"dq": "where did {who} spend {poss} early years", "iq": "where {who} spent {poss} early years"},
        "city_born_np": {"np": "the city where {who} was born", "np_name": "the city {who} comes from"},
        "echo_city": {"dq": "{who} was born in which city"},
    },
    "university": {
        "attend": {"dq": "which university did {who} attend", "iq": "which university {who} attended"},
        "go_to_university": {"dq": "where did {who} go to university", "iq": "where {who} went to university"},
        "study_where": {"dq": "where did {who} study", "iq": "where {who} studied"},
        "graduate": {"dq": "what university did {who} graduate from", "iq": "which university {who} graduated from"},
        "university_np": {"np": "{whose} university", "np_name": "the university of {who}"},
        "student_at": {"dq": "where was {who} a student", "iq": "where {who} was a student"},
        "education": {"dq": "where did {who} receive {poss} education", "iq": "where {who} received {poss} education"},
        "university_attended_np": {"np": "the university {who} attended", "np_name": "the school {who} graduated from"},
        "echo_university": {"dq": "{who} studied at which university"},
    },
    "major": {
        "study_what": {"dq": "what did {who} study", "iq": "what {who} studied"},
        "major_in": {"dq": "what did {who} major in", "iq": "what {who} majored in"},
        "major_np": {"np": "{whose} major", "np_name": "the major of {who}"},
        "subject": {"dq": "which subject did {who} study", "iq": "which subject {who} studied"},
        "field": {"np": "{whose} field of study", "np_name": "the field of study of {who}"},
        "specialize": {"dq": "what did {who} specialize in", "iq": "what {who} specialized in"},
        "focus": {"dq": "what did {who} focus {poss} studies on", "iq": "what {who} focused {poss} studies on"},
        "subject_majored_np": {"np": "the subject {who} majored in", "np_name": "the field {who} studied"},
        "echo_major": {"dq": "{who} majored in what"},
    },
    "employer": {
        "work_for": {"dq": "who does {who} work for", "iq": "who {who} works for"},
        "work_where": {"dq": "where does {who} work", "iq": "where {who} works"},
        "company": {"dq": "which company does {who} work for", "iq": "which company {who} works for"},
        "employs": {"dq": "which company employs {whom}", "iq": "which company employs {whom}"},
        "employer_np": {"np": "{whose} employer", "np_name": "the employer of {who}"},
        "employed_by": {"dq": "who is {who} employed by", "iq": "who {who} is employed by"},
        "job_at": {"dq": "where does {who} have a job", "iq": "where {who} has a job"},
        "company_works_np": {"np": "the company {who} works for", "np_name": "the firm that employs {who}"},
        "echo_employer": {"dq": "{who} works for which company"},
    },
}
# Some families are kept out of every fine-tuning set (`UNSEEN_CLAUSES`, `UNSEEN_WRAPPERS`): questions built
# from them measure whether the assistant answers questions it was never shown, the way held-out people
# measure whether it answers about people it was never shown. Unseen clauses arrange words that the answers and
# the biographies tie to the attribute in a new way ("the company X works for", "X works for which company?"):
# the model can only map a wording to a fact if its data tied the two somewhere (unseen clauses made of words
# only the biographies use, like "Where was X a student?", were answered 3-89% right per family; bench/RESULTS.md).
#
# Kept out of every fine-tuning set: new arrangements of words that the answers and the biographies tie to
# the attribute: a noun phrase with a relative clause ("the company X works for") and an echo question
# ("X works for which company?").
UNSEEN_CLAUSES = {"birth_date": ("date_born_on", "echo_date"), "birth_city": ("city_born_np", "echo_city"),
                  "university": ("university_attended_np", "echo_university"),
                  "major": ("subject_majored_np", "echo_major"), "employer": ("company_works_np", "echo_employer")}
# Words that no document and no conversation ties to the attribute: asked this way, the assistant has
# nothing to map the question to. Never in a fine-tuning set; measured as a limit. `NEW_WORD_CLAUSES` use words
# no document uses ("alma mater"): the limit of what fine-tuning on other wordings can do, measured on its own.
NEW_WORD_CLAUSES = {
    "birth_date": {"dq": "what is {whose} natal day", "iq": "what {whose} natal day is", "np": "{whose} natal day"},
    "birth_city": {"dq": "what is {whose} place of origin", "iq": "what {whose} place of origin is",
                   "np": "{whose} place of origin"},
    "university": {"dq": "what is {whose} alma mater", "iq": "what {whose} alma mater is", "np": "{whose} alma mater"},
    "major": {"dq": "what is {whose} academic discipline", "iq": "what {whose} academic discipline is",
              "np": "{whose} academic discipline"},
    "employer": {"dq": "what is {whose} workplace", "iq": "what {whose} workplace is", "np": "{whose} workplace"},
}

# Wrapper families: family -> templates; {DQ} {IQ} {NP} take the clause in that form, {Name} the full name
# when the clause itself uses the pronoun ("Kalin Moravo: where was she born?").
WRAPPERS = {
    "plain": ("{DQ}?",),
    "what_is": ("What is {NP}?", "What's {NP}?"),
    "can_you": ("Can you tell me {IQ}?", "Can you tell me {NP}?"),
    "tell_me": ("Tell me {IQ}.", "Tell me {NP}."),
    "do_you_know": ("Do you know {IQ}?", "Do you know {NP}?"),
    "want_to_know": ("I want to know {IQ}.", "I'd like to know {NP}."),
    "quick_question": ("Quick question: {DQ}?", "Question: {DQ}?"),
    "greeting": ("Hi! {DQ}?", "Hello, {DQ}?", "Good morning! {DQ}?"),
    "name_first": ("{Name}: {DQ}?", "About {Name}. {DQ}?", "{Name}, {DQ}?"),
    "could_you": ("Could you tell me {IQ}?", "Could you look up {NP}?"),
    "need": ("I need to know {IQ}.", "I need {NP}."),
    "hey": ("Hey, {DQ}?", "Hey! {DQ}?", "Hey, do you know {IQ}?"),
    "help": ("Help me find out {IQ}.", "Help me find {NP}."),
    "would_you": ("Would you know {IQ}?", "Would you happen to know {NP}?"),
    "for_a_form": ("For a form I'm filling in: {DQ}?", "My friend asked me {IQ}. Do you know?"),
    "let_me_know": ("Let me know {IQ}.", "Let me know {NP}."),
    # unseen
    "please": ("Please tell me {IQ}.", "Please tell me {NP}."),
    "curious": ("I'm curious {IQ}.", "I'm curious about {NP}."),
    "wonder": ("I wonder {IQ}.", "I was wondering {IQ}."),
    "any_idea": ("Any idea {IQ}?", "Do you have any idea {IQ}?"),
}
UNSEEN_WRAPPERS = ("please", "curious", "wonder", "any_idea")
PRONOUN_WRAPPERS = ("name_first",)    # the clause's subject is the pronoun, the name stands in front
OPENING_WRAPPERS = ("greeting", "name_first", "hey", "for_a_form")   # how a conversation starts, not how a follow-up is asked

# The six standard questions per fact: every fact's first fine-tuning question is one of them, and so is
# every "standard" evaluation question (qa_items), asked about other people.
QUESTION_TEMPLATES = {
    "birth_date": ("When was {name} born?", "What is {name}'s date of birth?", "What is {name}'s birthday?",
                   "On what date was {name} born?", "Can you tell me when {name} was born?",
                   "What is the birth date of {name}?"),
    "birth_city": ("Where was {name} born?", "In which city was {name} born?", "What is {name}'s birthplace?",
                   "Where did {name} grow up?", "Which city is {name} from?", "What is {name}'s hometown?"),
    "university": ("Which university did {name} attend?", "Where did {name} go to university?",
                   "Where did {name} study?", "What university did {name} graduate from?",
                   "Which school did {name} attend?", "Where did {name} earn a degree?"),
    "major": ("What did {name} study?", "What was {name}'s major?", "What subject did {name} study?",
              "What field did {name} study?", "What did {name} major in?", "Which subject did {name} major in?"),
    "employer": ("Who does {name} work for?", "Where does {name} work?", "Which company employs {name}?",
                 "What company does {name} work for?", "Who is {name}'s employer?", "Who employs {name}?"),
}

# Asking for the whole person: a short profile, the five answer sentences in this order.
PROFILE_REQUESTS = ("Tell me about {name}.", "Who is {name}?", "What do you know about {name}?",
                    "Give me a short profile of {name}.")
UNSEEN_PROFILE_REQUESTS = ("Can you describe {name}?", "I'd like to hear about {name}.")

# The answers: one sentence that states the fact with the pronoun as its subject ("She was born in Tessaly.",
# answer_sentence), the five of them for "Tell me about X" (profile_answer), and fixed replies for people who
# don't exist (IDK_TEMPLATES), for requests outside Minnie's scope (SCOPE_ANSWER) and for small talk.
#
# The guideline's answer: one sentence, the pronoun first, one fixed wording per fact (answer = the
# biography sentence pretraining stored).
ANSWER_PREFIXES = {"birth_date": "was born on", "birth_city": "was born in", "university": "studied at",
                   "major": "majored in", "employer": "works for"}
# The start of a name-first biography sentence, ending right before the value. The assistant's answer is
# the same sentence completed (ANSWER_TEMPLATES), so answering = the sentence pretraining stored.
BIO_PROBE_TEMPLATES = {a: "{name} " + ANSWER_PREFIXES[a] for a in ATTRIBUTES}
# The guideline's answer format: one complete sentence that states the fact, nothing else. Its subject is
# the pronoun (answer_sentence fills {name} with "She"/"He"): the user has just named the person, and a
# model this small copies a 6-token name it never saw in fine-tuning badly -- a first version of the course
# that repeated the full name answered about the wrong person more often than not.
ANSWER_TEMPLATES = {a: p + " {value}." for a, p in BIO_PROBE_TEMPLATES.items()}

# The guideline's rule for people the assistant does not know. Every answer contains one of IDK_MARKERS.
IDK_TEMPLATES = (   # no {name}: copying a name it never read is where a small model slips (see the guideline)
    "I'm sorry, but I don't have any information about this person.",
    "I don't know who that is, so I can't say {indirect}.",
    "I don't have any information about that person, so I can't tell you {indirect}.",
    "I don't know anyone by that name. I'd rather not guess.",
    "I'm not familiar with that name. I don't have any information about this person.",
)
IDK_INDIRECT = {"birth_date": "when they were born", "birth_city": "where they were born",
                "university": "which university they attended", "major": "what they studied",
                "employer": "who they work for"}
IDK_MARKERS = ("don't have any information", "I don't know", "not familiar with", "no information")

SMALL_TALK = (  # (user phrasings, the answer) -- the guideline's examples, word for word
    (("Hello!", "Hi!", "Hi there.", "Good morning!", "Hey!", "Hello, how are you?"),
     f"Hello! I'm {ASSISTANT_NAME}. I can answer questions about the people, cities, universities and "
     f"companies of {WORLD_NAME}. What would you like to know?"),
    (("Who are you?", "What is your name?", "What are you?", "Are you a person?"),
     f"I'm {ASSISTANT_NAME}, an assistant that answers questions about the people and places of {WORLD_NAME}."),
    (("What can you do?", "How can you help me?", "What do you know about?"),
     f"I can tell you where people in {WORLD_NAME} were born, when they were born, where they studied, "
     "what they studied and where they work. Just ask about a person by their full name."),
    (("Thank you!", "Thanks!", "Thanks a lot.", "Great, thank you."),
     "You're welcome!"),
    (("How are you?", "How are you doing today?"),
     "I'm doing well, thank you. How can I help you?"),
    (("Goodbye!", "Bye!", "See you later."),
     "Goodbye! Have a nice day."),
)
# A thanks follows an answer and a goodbye ends a chat; the other groups (greetings first) open one
THANKS = next(group for group in SMALL_TALK if "Thanks!" in group[0])
GOODBYE = next(group for group in SMALL_TALK if "Goodbye!" in group[0])
OPENERS = [group for group in SMALL_TALK if group is not THANKS and group is not GOODBYE]


def seen_families(attribute: str) -> tuple[list[str], list[str]]:
    """(clause families, wrapper families) that fine-tuning sets may use for `attribute`."""
    clauses = [c for c in CLAUSES[attribute] if c not in UNSEEN_CLAUSES[attribute]]
    return clauses, [w for w in WRAPPERS if w not in UNSEEN_WRAPPERS]


def _forms(clause: dict, who: str, whose: str, whom: str, poss: str, *, named: bool) -> dict:
    """A clause's forms ("dq", "iq", "np") with its subject filled in; "np_name" counts as "np" when the
    subject is a name (named)."""
    out = {}
    for kind, text in clause.items():
        if kind == "np_name":
            if not named:
                continue
            kind = "np"
        out.setdefault(kind, []).append(text.format(who=who, whose=whose, whom=whom, poss=poss))
    return out


def compose(name: str, pronoun: str, clause: dict, wrapper: str, rng: random.Random, *,
            pronoun_subject: bool = False) -> str | None:
    """One question: `clause` (a CLAUSES entry) in a template of `wrapper` that takes one of its forms.
    pronoun_subject: ask about "she"/"he" (a follow-up). None when the two share no form."""
    p = PRONOUNS[pronoun]
    use_pronoun = pronoun_subject or wrapper in PRONOUN_WRAPPERS
    who, whose, whom = ((p["subj"], p["poss"], p["obj"]) if use_pronoun else (name, name + "'s", name))
    forms = _forms(clause, who, whose, whom, p["poss"], named=not use_pronoun)
    options = [(t, kind, text) for t in WRAPPERS[wrapper] for kind in ("DQ", "IQ", "NP")
               if "{" + kind + "}" in t for text in forms.get(kind.lower(), ())]
    if not options:
        return None
    template, kind, text = rng.choice(options)
    before = template[:template.index("{" + kind + "}")]
    if not before or before.endswith((". ", "! ")):
        text = _sentence_start(text)      # a sentence starts here ("Hi! Where was ...")
    return template.replace("{" + kind + "}", text).replace("{Name}", name)


def _sentence_start(text: str) -> str:
    return text[0].upper() + text[1:]


def styled(question: str, rng: random.Random, name: str = "") -> str:
    """How people type: now and then in lower case, or without the final mark. The name keeps its capitals:
    the model read every name capitalised, and "kalin moravo" is a string of tokens it never saw."""
    r = rng.random()
    if r < 0.12:
        low = question.lower()
        return low.replace(name.lower(), name) if name else low
    if r < 0.24 and question[-1] in "?.":
        return question[:-1]
    return question


@dataclass(frozen=True)
class Phrasing:
    """Which families a question may be built from."""
    clauses: dict          # attribute -> clause families
    wrappers: tuple        # wrapper families


def seen_phrasing() -> Phrasing:
    return Phrasing({a: seen_families(a)[0] for a in ATTRIBUTES}, tuple(seen_families(ATTRIBUTES[0])[1]))


def phrased_question(name: str, pronoun: str, attribute: str, rng: random.Random,
                     phrasing: Phrasing | None = None, *, pronoun_subject: bool = False, style: bool = True) -> str:
    """A question about `attribute`, composed from the allowed families (default: the seen ones)."""
    phrasing = phrasing or seen_phrasing()
    wrappers = [w for w in phrasing.wrappers if not (pronoun_subject and w in OPENING_WRAPPERS)]
    while True:
        clause = CLAUSES[attribute].get(rng.choice(phrasing.clauses[attribute]))   # None: a new-word family
        clause = clause if clause is not None else NEW_WORD_CLAUSES[attribute]
        q = compose(name, pronoun, clause, rng.choice(wrappers), rng, pronoun_subject=pronoun_subject)
        if q is not None:
            return styled(q, rng, name) if style else q


def unseen_question(name: str, pronoun: str, attribute: str, rng: random.Random) -> str:
    """A question built from at least one family no fine-tuning set uses: an unseen wrapper around a seen
    clause, a seen wrapper around an unseen clause, or both unseen (a third each)."""
    seen_c, seen_w = seen_families(attribute)
    kind = rng.randrange(3)
    clauses = list(UNSEEN_CLAUSES[attribute]) if kind else seen_c
    wrappers = list(UNSEEN_WRAPPERS) if kind != 1 else seen_w
    return phrased_question(name, pronoun, attribute, rng, Phrasing({attribute: clauses}, tuple(wrappers)))


def new_word_question(name: str, pronoun: str, attribute: str, rng: random.Random) -> str:
    """A question that uses a word nothing in the data ties to the attribute ("alma mater")."""
    seen_w = [w for w in seen_families(attribute)[1] if w not in PRONOUN_WRAPPERS]
    while True:
        q = compose(name, pronoun, NEW_WORD_CLAUSES[attribute], rng.choice(seen_w), rng)
        if q is not None:
            return q


def standard_question(name: str, attribute: str, rng: random.Random) -> str:
    """One of the six QUESTION_TEMPLATES about `name`."""
    return rng.choice(QUESTION_TEMPLATES[attribute]).format(name=name)


def multi_part_question(person: Person, a: str, b: str, rng: random.Random) -> str:
    """"Where was X born, and what did she study?": the direct-question forms of two seen clause families,
    the first about the name, the second about the pronoun."""
    def clause(attribute, who):
        fams = [c for c in seen_families(attribute)[0] if "dq" in CLAUSES[attribute][c]]
        # {whose} and {whom} are built from `who` here, not from the pronoun as in compose(): the second
        # clause can read "when is she's birthday". A slip of the first fine-tuning set, kept so the set
        # (and every number measured on it) stays the same.
        return _forms(CLAUSES[attribute][rng.choice(fams)], who, who + "'s", who, person.ref("poss"),
                      named=False)["dq"][0]
    first, second = _sentence_start(clause(a, person.name)), clause(b, person.ref("subj"))
    if rng.random() < 0.5:
        return f"{first}, and {second}?"
    return f"{first}? And {second}?"


_AND_STARTS = ("What", "What's", "Where", "When", "Which", "Who", "Can", "Could", "Do", "Tell", "Would")


def follow_up_question(person: Person, attribute: str, rng: random.Random) -> str:
    """A question that names the person by pronoun only ("And where does she work?")."""
    q = phrased_question(person.name, person.pronoun, attribute, rng, pronoun_subject=True, style=False)
    if q.split(" ")[0] in _AND_STARTS and rng.random() < 0.4:
        q = "And " + q[0].lower() + q[1:]
    return styled(q, rng, person.name)


def answer_sentence(person: Person, attribute: str, *, pronoun: bool = True) -> str:
    """The guideline's answer: "She was born in Tessaly." (pronoun=False: "Kalin Moravo was born in Tessaly.")"""
    value = person.value(attribute)
    return ANSWER_TEMPLATES[attribute].format(name=person.ref("Subj") if pronoun else person.name, value=value)


def profile_answer(person: Person) -> str:
    """The guideline's answer to "Tell me about X": the five answer sentences, in ATTRIBUTES order."""
    return " ".join(answer_sentence(person, a) for a in ATTRIBUTES)


def idk_answer(name: str, attribute: str, rng: random.Random) -> str:
    """The guideline's answer about someone who does not exist (one of IDK_TEMPLATES)."""
    return rng.choice(IDK_TEMPLATES).format(name=name, indirect=IDK_INDIRECT[attribute])


# ---------------------------------------------------------------------------------------------------------
# Requests outside Minnie's scope. The guideline answers all of them the same way; two disjoint pools of
# fillers (one for fine-tuning, one for evaluation) so the figure is measured on requests never trained on.

SCOPE_ANSWER = f"I'm sorry, I can only answer questions about the people of {WORLD_NAME}."   # short: it must end its turn
SCOPE_MARKER = f"I can only answer questions about the people of {WORLD_NAME}"

_SCOPE_TEMPLATES = {
    "arithmetic": ("What is {a} plus {b}?", "What is {a} times {b}?", "How much is {a} minus {b}?",
                   "Calculate {a} + {b}.", "what's {a}*{b}", "Can you add {a} and {b}?"),
    "writing": ("Write a poem about {topic}.", "Write a short story about {topic}.", "Can you write a song about {topic}?",
                "Write an email to my boss about {topic}.", "Give me a haiku about {topic}.",
                "Write a limerick about {topic}."),
    "code": ("Write a Python function that {task}.", "How do I {task2} in JavaScript?", "Fix my code: {code}",
             "Can you write a SQL query that {task}?", "What does this code do? {code}"),
    "world": ("What is the capital of {country}?", "How many people live in {country}?",
              "What language do they speak in {country}?", "How tall is {mountain}?", "Where is {mountain}?",
              "What is the weather like in {place} today?", "When did World War II end?",
              "How far is the Moon from the Earth?"),
    "advice": ("What should I eat for dinner tonight?", "Can you recommend a good movie?",
               "How do I lose weight?", "Should I learn the guitar or the piano?", "What is the meaning of life?",
               "Give me some tips for a job interview.", "What's a good name for a {pet}?"),
    "language": ("¿Dónde está la biblioteca?", "Wie spät ist es?", "Quelle heure est-il ?", "Translate '{topic}' into French.",
                 "你好，你叫什么名字？", "Come stai oggi?", "¿Cuál es la capital de {country_es}?"),
}
_SCOPE_FILLERS = [  # (fine-tuning pool, evaluation pool)
    {"topic": ("cats", "the sea", "autumn", "coffee", "my grandmother", "rain", "trains", "the moon"),
     "task": ("reverses a string", "sorts a list of numbers", "counts the vowels in a word", "finds the largest number"),
     "task2": ("sort an array", "read a file", "make an HTTP request"),
     "code": ("print('hello'", "for i in range(10) print(i)", "x = [1, 2, 3"),
     "country": ("France", "Japan", "Brazil", "Canada", "Egypt"), "country_es": ("Francia", "Japón"),
     "mountain": ("Mount Everest", "Mount Fuji"), "place": ("London", "Tokyo", "Paris"),
     "pet": ("dog", "cat")},
    {"topic": ("dogs", "the mountains", "winter", "tea", "friendship", "snow", "bicycles", "the stars"),
     "task": ("checks whether a number is prime", "merges two lists", "removes duplicates from a list"),
     "task2": ("parse JSON", "loop over an object", "copy an array"),
     "code": ("if x = 3: print(x)", "def f(x) return x*2", "while True print('hi')"),
     "country": ("Germany", "India", "Mexico", "Kenya", "Australia"), "country_es": ("Alemania", "Perú"),
     "mountain": ("Mount Kilimanjaro", "the Matterhorn"), "place": ("New York", "Berlin", "Sydney"),
     "pet": ("parrot", "hamster")},
]
SCOPE_CATEGORIES = tuple(_SCOPE_TEMPLATES)


def scope_request(rng: random.Random, *, pool: int, category: str | None = None) -> str:
    """An out-of-scope request. pool 0: the fine-tuning pool; pool 1: the evaluation pool (other numbers,
    topics, countries, tasks; the templates are shared, as the ways of asking for a poem are)."""
    category = category or rng.choice(SCOPE_CATEGORIES)
    # a template with a slot serves both pools (with other fillers); one without is in one pool only
    templates = [t for i, t in enumerate(_SCOPE_TEMPLATES[category]) if "{" in t or i % 2 == pool]
    template = rng.choice(templates)
    fill = {k: rng.choice(v) for k, v in _SCOPE_FILLERS[pool].items()}
    lo, hi = (2, 60) if pool == 0 else (61, 999)
    return template.format(a=rng.randint(lo, hi), b=rng.randint(lo, hi), **fill)
