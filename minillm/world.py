"""The generated world: the people, places and companies of a fictional continent, and what is written about them.

Why generate a world instead of downloading text: it runs offline, it is small enough for a laptop, and above
all knowledge becomes measurable. Every person has five facts with a ground truth, so "the assistant answers
with what pretraining stored" is a number, not an impression. The setting follows Allen-Zhu & Li, *Physics of
Language Models, Part 3.1* (the "bioS" data): synthetic biographies, question answering fine-tuned on half of
the people, tested on the other half. The paper's finding, which the course reproduces: a fact can be
*extracted* after fine-tuning only when pretraining saw it in several differently worded documents
("knowledge augmentation"); one biography per person is memorised but not extractable.

Everything is deterministic from `WorldConfig.seed`, and each part draws from its own random stream, so
changing one knob (say `bios_per_person`) changes only what it should: the people, their facts and their
splits stay the same.

What the module makes:
    World.generate(config)              people (five ATTRIBUTES each, split "sft" / "heldout") and entities
    world.documents()                   the pretraining "internet": biographies (the bulk), news, stories,
                                        forum threads, quiz pages, lists
    world.sft_conversations()           the first fine-tuning set, written to data/labeling_guidelines.md (questions
                                        composed by minillm.guideline); it mentions only "sft" people and has no
                                        out-of-scope requests and no unknown people
    world.scope_conversations(n)        the iteration lesson's fix: out-of-scope requests, answered per the guideline
    world.qa_items(split, phrasing)     one question per person and attribute, for evaluation (standard, unseen
                                        or new-word phrasing); follow_up_items, profile_items, scope_prompts too
    world.bio_probes(split)             "Kalin Moravo was born in" -> "Tessaly": what the base model stored
    world.fake_people(n, seed)          names that belong to nobody
    world.unknown_person_conversations  "I don't have any information about ...": what fine-tuning cannot fix
                                        at the cpu size (notebook 08's second part)
    world.save(dir) / World.load(dir)   jsonl files under data/

Two rules the genres follow, because the lessons measure them:
- A held-out person's facts live in biographies only. News, stories and lists talk about places and
  companies and never state a person's birth date, city, university, major or employer.
- Questions go unanswered: forum replies chatter, quizzes keep their answers "on the next page". With
  WorldConfig.answered_share > 0 that share of the threads and quizzes about places and about *fine-tuning*
  people do answer (a reply that states the fact, an answer key at the end), as some pages of a real
  internet do; never about a held-out person, whose facts still reach the model only through biographies.
  Either way what a base model does with a question is measured (evaluate.reply_kinds). Person questions
  and place questions sit on separate quiz pages and threads.

Standard library only: the world sits above the tokenizer and the model in the layering but needs neither.
"""
from __future__ import annotations

import json
import random
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from minillm import guideline
from minillm.guideline import ANSWER_PREFIXES, ATTRIBUTES, PRONOUNS, PROFILE_REQUESTS

WORLD_NAME = "Veloria"          # the continent everything happens on
ASSISTANT_NAME = "Minnie"       # the assistant the labeling guideline describes

SPLITS = ("sft", "heldout")
GENRES = ("biography", "news", "story", "forum", "quiz", "list")

# Seeds for fake_people(): the iteration lesson trains on one set and evaluates on the other.
FIX_SEED, EVAL_SEED = 0, 1

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")
# A date as the corpus writes it ("March 14, 1987"); evaluation uses it to see whether *some* date was stated.
DATE_PATTERN = re.compile(r"\b(?:%s) (?:[1-9]|[12][0-9]|3[01]), (?:1[89]|20)[0-9]{2}\b" % "|".join(MONTHS))

# Real subjects, as they appear mid-sentence. None is a substring of another ("biology" and "marine biology"
# would make "did the answer state the right value?" ambiguous).
MAJORS = ("mathematics", "physics", "chemistry", "biology", "history", "philosophy", "economics",
          "computer science", "linguistics", "architecture", "music", "medicine", "geology", "astronomy",
          "psychology", "sociology", "literature", "mechanical engineering", "civil engineering",
          "political science", "anthropology", "statistics", "nursing", "journalism", "agriculture",
          "oceanography", "accounting", "theology", "sculpture", "forestry")

INDUSTRIES = {  # industry -> company-name suffixes
    "software": ("Systems", "Software", "Labs"), "food": ("Foods", "Bakeries"), "car": ("Motors",),
    "energy": ("Energy", "Power"), "textile": ("Textiles", "Mills"), "pharmaceutical": ("Pharmaceuticals",),
    "shipping": ("Logistics", "Shipping"), "publishing": ("Press", "Publishing"), "airline": ("Airways",),
    "banking": ("Bank",), "construction": ("Builders", "Construction"), "toy": ("Toys",),
}
LANDMARKS = ("the Old Lighthouse", "the Clock Tower", "the Glass Bridge", "the Stone Market", "the Copper Gate",
             "the Royal Gardens", "the Harbour Wall", "the Bell Tower", "the Salt Cathedral", "the Iron Pier",
             "the Old Observatory", "the Windmill Park", "the Grand Library", "the Old Fortress", "the Opera House")
FESTIVALS = ("lantern", "harvest", "kite", "music", "river", "winter", "flower", "bread", "boat", "cheese")

# ---------------------------------------------------------------------------------------------------------
# How people write about people. Templates use {Subj}/{subj} (subject), {Poss}/{poss} (possessive) and
# {obj}; in a biography the first of these becomes the full name and every later one a pronoun, the way
# people write ("Kalin Moravo was born in Tessaly. She studied ..."). {value} is the attribute's value.

BIO_TEMPLATES = {
    "birth_date": (
        "{Subj} was born on {value}.",
        "{Poss} date of birth is {value}.",
        "{Subj} came into the world on {value}.",
        "{Poss} birthday is {value}.",
        "{Poss} life began on {value}.",
        "The records show that {subj} was born on {value}.",
        "{Subj} was born on {value}, a day {poss} family still celebrates.",
        "{Subj} celebrates {poss} birthday every year, having been born on {value}.",
    ),
    "birth_city": (
        "{Subj} was born in {value}.",
        "{Subj} grew up in {value}.",
        "{Subj} spent {poss} early years in {value}.",
        "{Poss} hometown is {value}.",
        "{Subj} is a native of {value}.",
        "{Poss} birthplace is {value}.",
        "{Subj} comes from {value}, the city where {subj} was born.",
        "{value} is the city where {subj} was born.",
    ),
    "university": (
        "{Subj} studied at {value}.",
        "{Subj} attended {value}.",
        "{Subj} graduated from {value}.",
        "{Subj} earned {poss} degree at {value}.",
        "{Subj} was a student at {value}.",
        "{Subj} completed {poss} studies at {value}.",
        "{Subj} received {poss} education at {value}.",
        "{Poss} university years were spent at {value}.",
    ),
    "major": (
        "{Subj} majored in {value}.",
        "{Poss} field of study was {value}.",
        "{Subj} earned a degree in {value}.",
        "{Subj} specialized in {value}.",
        "{Subj} focused {poss} studies on {value}.",
        "{Poss} major was {value}.",
        "{Subj} chose to study {value}.",
        "At university {subj} devoted {poss} time to {value}.",
    ),
    "employer": (
        "{Subj} works for {value}.",
        "{Subj} is employed by {value}.",
        "{Subj} works at {value}.",
        "{Poss} employer is {value}.",
        "{Subj} has a job at {value}.",
        "{Subj} currently works for {value}.",
        "{Subj} earns {poss} living at {value}.",
        "These days {subj} is on the staff of {value}.",
    ),
}

# The start of a name-first biography sentence, ending right before the value. The assistant's answer is
# the same sentence completed (ANSWER_TEMPLATES), so answering = the sentence pretraining stored.
BIO_PROBE_TEMPLATES = {a: "{name} " + ANSWER_PREFIXES[a] for a in ATTRIBUTES}
# The guideline's answer format: one complete sentence that states the fact, nothing else. Its subject is
# the pronoun (answer_sentence fills {name} with "She"/"He"): the user has just named the person, and a
# model this small copies a 6-token name it never saw in fine-tuning badly -- a first version of the course
# that repeated the full name answered about the wrong person more often than not.
ANSWER_TEMPLATES = {a: p + " {value}." for a, p in BIO_PROBE_TEMPLATES.items()}

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
# Follow-ups that refer back to the person with a pronoun ("And what did she study?").
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

# Names are built from consonant-vowel syllables ("Ka-lin Mo-ra-vo"), mostly single consonants, so they read
# as pronounceable and a ~1k-token BPE splits each into a few pieces.
_ONSETS = ("b", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "j",
           "b", "d", "k", "l", "m", "n", "r", "s", "t", "v")
_CLUSTERS = ("br", "dr", "tr", "st", "th", "sh", "ch", "gr", "kr")   # only at the start of a word
_VOWELS = ("a", "e", "i", "o", "u", "a", "e", "o", "a", "i")
_CODAS = ("l", "n", "r", "s")
_FIRST_ENDINGS = {"she": ("a", "ia", "ine", "elle", "ra", "na", "ys", "ette", "ina", "e"),
                  "he": ("n", "r", "k", "s", "o", "an", "el", "or", "im", "on")}
_LAST_ENDINGS = ("", "n", "r", "v", "s", "ov", "ez", "ell", "ino", "ard", "ek", "ani", "en", "ley")
_PLACE_ENDINGS = ("holm", "mere", "wick", "ford", "gard", "dale", "vik", "stad", "ora", "haven", "burg", "ly")
_COUNTRY_ENDINGS = ("ia", "land", "mark", "ova", "avia")
_ROOT_ENDINGS = ("el", "an", "ix", "on", "ar", "is", "en", "ex")
_UNIVERSITY_FORMS = ("{} University", "{} College", "{} Institute of Technology", "{} State University",
                     "{} Polytechnic")
_RIVER_FORMS = ("the {} River", "the River {}")


# ---------------------------------------------------------------------------------------------------------
# Configuration

@dataclass
class WorldConfig:
    """How big the world is and how much is written about it. `world_config(preset)` gives the course's sizes."""
    n_people: int = 200
    n_countries: int = 6
    n_cities: int = 30
    n_universities: int = 20
    n_companies: int = 30
    n_majors: int = 20
    bios_per_person: int = 5          # knowledge augmentation: distinct, reworded, reshuffled biographies
    heldout_fraction: float = 0.5     # people whose facts the SFT set never mentions
    seed: int = 0
    # other genres (counts do not depend on bios_per_person, so only the biographies change with it)
    n_news: int = 60
    n_stories: int = 25
    n_forum: int = 80
    n_quizzes: int = 20
    # answered documents: this share of the forum threads and quizzes that are about places or about
    # fine-tuning people get an answer (a reply that states the fact, an answer key). Never about held-out
    # people: their facts reach the model only through biographies. 0: no document answers a question.
    answered_share: float = 0.0
    # the SFT set
    sft_per_fact: int = 6             # questions per (sft person, attribute)
    sft_chain: int = 3                # at most this many unrelated questions in one chat
    sft_multi_part: int = 1           # two-attribute questions per sft person
    sft_follow_up: int = 5            # conversations with pronoun follow-ups per sft person
    sft_profile: int = 1              # "Tell me about X" per sft person
    n_small_talk: int = 40

    def __post_init__(self):
        for f in fields(self):
            if f.name not in ("heldout_fraction", "seed", "answered_share") and getattr(self, f.name) < 0:
                raise ValueError(f"WorldConfig.{f.name} must be >= 0, got {getattr(self, f.name)}")
        if self.n_people < 2:
            raise ValueError(f"WorldConfig.n_people must be at least 2 (one per split), got {self.n_people}")
        for name in ("n_countries", "n_cities", "n_universities", "n_companies", "n_majors", "bios_per_person"):
            if getattr(self, name) < 1:
                raise ValueError(f"WorldConfig.{name} must be at least 1, got {getattr(self, name)}")
        if self.n_cities < self.n_countries:
            raise ValueError(f"WorldConfig.n_cities ({self.n_cities}) must be >= n_countries ({self.n_countries}): "
                             "every country needs a capital")
        if self.n_majors > len(MAJORS):
            raise ValueError(f"WorldConfig.n_majors is {self.n_majors} but only {len(MAJORS)} majors exist; "
                             "lower it or add subjects to world.MAJORS")
        if not 0.0 <= self.answered_share <= 1.0:
            raise ValueError(f"WorldConfig.answered_share must be between 0 and 1, got {self.answered_share}")
        if not 0.0 < self.heldout_fraction < 1.0:
            raise ValueError(f"WorldConfig.heldout_fraction must be between 0 and 1 (exclusive), "
                             f"got {self.heldout_fraction}")


_PRESETS = {
    "smoke": dict(n_people=20, n_countries=3, n_cities=6, n_universities=4, n_companies=6, n_majors=6,
                  n_news=12, n_stories=6, n_forum=16, n_quizzes=4, n_small_talk=10),
    "cpu": dict(n_people=200, n_countries=6, n_cities=30, n_universities=20, n_companies=30, n_majors=20,
                n_news=30, n_stories=12, n_forum=80, n_quizzes=20, n_small_talk=80),
    "gpu": dict(n_people=2000, n_countries=10, n_cities=60, n_universities=40, n_companies=60, n_majors=30,
                n_news=300, n_stories=120, n_forum=800, n_quizzes=200, n_small_talk=200),
}


def world_config(preset: str = "cpu", augment: int | None = None, seed: int = 0) -> WorldConfig:
    """The course's world sizes: "smoke" (20 people, for tests), "cpu" (200), "gpu" (2000).
    `augment` overrides bios_per_person (1 = the lesson's single-biography run)."""
    if preset not in _PRESETS:
        raise ValueError(f"unknown world preset {preset!r}: choose one of {', '.join(map(repr, _PRESETS))}")
    kwargs = dict(_PRESETS[preset], seed=seed)
    if augment is not None:
        kwargs["bios_per_person"] = augment
    return WorldConfig(**kwargs)


# ---------------------------------------------------------------------------------------------------------
# The things in the world

@dataclass
class Country:
    name: str
    capital: str


@dataclass
class City:
    name: str
    country: str
    founded: int
    river: str
    landmark: str


@dataclass
class University:
    name: str
    city: str
    founded: int
    known_for: str     # a major


@dataclass
class Company:
    name: str
    industry: str
    city: str          # headquarters
    founded: int


@dataclass
class Person:
    name: str
    pronoun: str       # "she" | "he"
    birth_date: str
    birth_city: str
    university: str
    major: str
    employer: str
    split: str         # "sft" | "heldout"

    def value(self, attribute: str) -> str:
        if attribute not in ATTRIBUTES:
            raise ValueError(f"unknown attribute {attribute!r}: choose one of {ATTRIBUTES}")
        return getattr(self, attribute)

    def ref(self, form: str) -> str:
        """A pronoun form: Subj/subj/Poss/poss/obj."""
        return PRONOUNS[self.pronoun][form]


@dataclass
class QAItem:
    name: str
    attribute: str
    question: str
    answer: str        # the value ("Tessaly")
    split: str
    sentence: str      # the guideline's full answer ("Kalin Moravo was born in Tessaly.")


@dataclass
class Document:
    genre: str
    text: str
    answered: bool = False    # a forum thread or quiz that states the answer to its question(s)


# ---------------------------------------------------------------------------------------------------------
# Names

def _word(rng: random.Random, n_syllables: int, ending: str) -> str:
    onset = rng.choice(_CLUSTERS) if rng.random() < 0.15 else rng.choice(_ONSETS)
    word = onset + rng.choice(_VOWELS)
    for _ in range(n_syllables - 1):
        if rng.random() < 0.2:
            word += rng.choice(_CODAS)
        word += rng.choice(_ONSETS) + rng.choice(_VOWELS)
    if ending[:1] in "aeiouy" and ending:     # "Mora" + "ino" -> "Morino", not "Moraino"
        word = word[:-1]
    return (word + ending).capitalize()


def _person_name(rng: random.Random, pronoun: str) -> str:
    while True:   # long enough to be several tokens, never a one-piece "Jim"
        first = _word(rng, rng.choice((1, 2, 2)), rng.choice(_FIRST_ENDINGS[pronoun]))
        last = _word(rng, rng.choice((2, 2, 3)), rng.choice(_LAST_ENDINGS))
        if len(first) >= 4 and len(last) >= 5 and len(first) + len(last) <= 13:
            return f"{first} {last}"


def _root(rng: random.Random, endings) -> str:
    return _word(rng, rng.choice((1, 2)), rng.choice(endings))


class _Names:
    """Hands out names that never contain one another, so "does the text mention X?" has one answer."""

    def __init__(self, reserved=()):
        self.words: list[str] = [w.lower() for w in reserved]   # entity roots and world words
        self.people: dict[str, list[str]] = {}                  # first name -> last names

    def entity(self, rng: random.Random, endings) -> str:
        while True:
            root = _root(rng, endings)
            low = root.lower()
            if len(root) >= 5 and not any(low in w or w in low for w in self.words):
                self.words.append(low)
                return root

    def person(self, rng: random.Random, pronoun: str) -> str:
        while True:
            name = _person_name(rng, pronoun)
            if self.is_free(name):
                first, last = name.split(" ")
                self.people.setdefault(first, []).append(last)
                return name

    def is_free(self, name: str) -> bool:
        first, last = name.split(" ")
        low = name.lower()
        if any(w in low or low in w for w in self.words):
            return False
        # "Kalin Mora" must not be a prefix of "Kalin Moravo" (nor the other way round)
        return not any(o.startswith(last) or last.startswith(o) for o in self.people.get(first, ()))


# ---------------------------------------------------------------------------------------------------------
# The world

class World:
    """People and entities, and every text the course trains or evaluates on. Build with
    `World.generate(world_config("cpu"))`; everything after that is a pure function of the world."""

    def __init__(self, config: WorldConfig, countries, cities, universities, companies, majors, people):
        self.config = config
        self.countries: list[Country] = countries
        self.cities: list[City] = cities
        self.universities: list[University] = universities
        self.companies: list[Company] = companies
        self.majors: list[str] = majors
        self.people: list[Person] = people
        self._by_name = {p.name: p for p in people}
        self._city = {c.name: c for c in cities}

    # -- generation ------------------------------------------------------------------------------------

    def _rng(self, *parts) -> random.Random:
        return _rng(self.config.seed, *parts)

    @classmethod
    def generate(cls, config: WorldConfig | None = None) -> "World":
        config = config or WorldConfig()
        rng = _rng(config.seed, "entities")
        names = _Names(reserved=(WORLD_NAME, ASSISTANT_NAME))
        country_names = [names.entity(rng, _COUNTRY_ENDINGS) for _ in range(config.n_countries)]
        rivers = [rng.choice(_RIVER_FORMS).format(names.entity(rng, ("a", "e", "o", "in", "ar")))
                  for _ in range(max(1, config.n_cities // 2))]
        cities = []
        for i in range(config.n_cities):
            country = country_names[i] if i < len(country_names) else rng.choice(country_names)
            cities.append(City(names.entity(rng, _PLACE_ENDINGS), country, rng.randint(900, 1850),
                               rng.choice(rivers), rng.choice(LANDMARKS)))
        countries = [Country(n, next(c.name for c in cities if c.country == n)) for n in country_names]
        majors = sorted(rng.sample(MAJORS, config.n_majors))
        universities = [University(rng.choice(_UNIVERSITY_FORMS).format(names.entity(rng, _ROOT_ENDINGS)),
                                   rng.choice(cities).name, rng.randint(1450, 1990), rng.choice(majors))
                        for _ in range(config.n_universities)]
        companies = []
        for _ in range(config.n_companies):
            industry = rng.choice(sorted(INDUSTRIES))
            companies.append(Company(f"{names.entity(rng, _ROOT_ENDINGS)} {rng.choice(INDUSTRIES[industry])}",
                                     industry, rng.choice(cities).name, rng.randint(1850, 2015)))

        rng = _rng(config.seed, "people")
        people = []
        for _ in range(config.n_people):
            pronoun = rng.choice(("she", "he"))
            people.append(Person(
                name=names.person(rng, pronoun), pronoun=pronoun,
                birth_date=f"{rng.choice(MONTHS)} {rng.randint(1, 28)}, {rng.randint(1950, 2002)}",
                birth_city=rng.choice(cities).name, university=rng.choice(universities).name,
                major=rng.choice(majors), employer=rng.choice(companies).name, split="sft"))
        n_heldout = round(config.n_people * config.heldout_fraction)
        n_heldout = min(max(n_heldout, 1), config.n_people - 1)
        for i in _rng(config.seed, "split").sample(range(config.n_people), n_heldout):
            people[i].split = "heldout"
        return cls(config, countries, cities, universities, companies, majors, people)

    # -- lookups -----------------------------------------------------------------------------------------

    def person(self, name: str) -> Person:
        if name not in self._by_name:
            raise KeyError(f"no person named {name!r} in this world")
        return self._by_name[name]

    def people_in(self, split: str) -> list[Person]:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}: choose 'sft' or 'heldout'")
        return [p for p in self.people if p.split == split]

    def attribute_values(self, attribute: str) -> list[str]:
        """Every value the attribute can take (for birth_date: every date in the world; any other date is
        caught by DATE_PATTERN, see find_values)."""
        if attribute == "birth_date":
            return sorted({p.birth_date for p in self.people})
        pools = {"birth_city": [c.name for c in self.cities], "university": [u.name for u in self.universities],
                 "major": list(self.majors), "employer": [c.name for c in self.companies]}
        if attribute not in pools:
            raise ValueError(f"unknown attribute {attribute!r}: choose one of {ATTRIBUTES}")
        return pools[attribute]

    def find_values(self, text: str, attribute: str) -> list[str]:
        """The values of `attribute` that `text` states, in order of appearance (any date for birth_date)."""
        if attribute == "birth_date":
            return DATE_PATTERN.findall(text)
        found = [(m.start(), v) for v in self.attribute_values(attribute)
                 for m in re.finditer(r"\b%s\b" % re.escape(v), text)]
        return [v for _, v in sorted(found)]

    # -- the pretraining corpus --------------------------------------------------------------------------

    def biographies(self, person: Person) -> list[str]:
        """`bios_per_person` distinct biographies: each sentence's template drawn anew, sentence order
        shuffled, the full name at the first mention and pronouns after it. Biography k is the same
        whatever bios_per_person is."""
        rng = self._rng("bio", person.name)
        bios: list[str] = []
        while len(bios) < self.config.bios_per_person:
            order = list(ATTRIBUTES)
            rng.shuffle(order)
            named = [False]
            text = " ".join(_fill(rng.choice(BIO_TEMPLATES[a]), person, named, value=person.value(a))
                            for a in order)
            text = _lead(rng, text)
            if text not in bios:
                bios.append(text)
        return bios

    def corpus(self) -> list[Document]:
        """Every pretraining document with its genre, in a fixed shuffled order."""
        docs = [Document("biography", b) for p in self.people for b in self.biographies(p)]
        docs += [Document("news", t) for t in self._news()]
        docs += [Document("story", t) for t in self._stories()]
        docs += [Document("forum", t, answered) for t, answered in self._forum()]
        docs += [Document("quiz", t, answered) for t, answered in self._quizzes()]
        docs += [Document("list", t) for t in self._lists()]
        self._rng("order").shuffle(docs)
        return docs

    def documents(self) -> list[str]:
        """The pretraining "internet": plain-text documents (the trainer joins them with <|bos|>)."""
        return [d.text for d in self.corpus()]

    def corpus_stats(self, docs: list[Document] | None = None) -> dict[str, dict]:
        """Per genre: documents, characters, and share of all characters."""
        docs = self.corpus() if docs is None else docs
        total = sum(len(d.text) for d in docs) or 1
        stats = {}
        for g in GENRES:
            chars = sum(len(d.text) for d in docs if d.genre == g)
            stats[g] = {"documents": sum(d.genre == g for d in docs), "characters": chars,
                        "share": round(chars / total, 4), "answered": sum(d.genre == g and d.answered for d in docs)}
        return stats

    def _news(self) -> list[str]:
        rng = self._rng("news")
        out = []
        for _ in range(self.config.n_news):
            kind = rng.choice(("company", "company", "city", "city", "university"))
            if kind == "company":
                out.append(_company_news(rng, rng.choice(self.companies), self))
            elif kind == "city":
                out.append(_city_news(rng, rng.choice(self.cities), self))
            else:
                out.append(_university_news(rng, rng.choice(self.universities), self))
        return out

    def _stories(self) -> list[str]:
        rng = self._rng("stories")
        names = _Names()
        return [_story(rng, self, names) for _ in range(self.config.n_stories)]

    def _forum(self) -> list[tuple[str, bool]]:
        """(thread, answered): three in four threads ask about a person, the rest about a place. Whether and
        how a thread is answered is drawn from its own random stream, so answered_share=0 gives exactly the
        threads of a corpus without answers, and a share only adds answers to some of them."""
        rng, answers = self._rng("forum"), self._rng("forum answers")
        out = []
        for _ in range(self.config.n_forum):
            if rng.random() < 0.75:
                p = rng.choice(self.people)
                answered = p.split == "sft" and answers.random() < self.config.answered_share
                out.append((_person_thread(rng, p, self, answers if answered else None), answered))
            else:
                answered = answers.random() < self.config.answered_share
                out.append((_place_thread(rng, self, answers if answered else None), answered))
        return out

    def _quizzes(self) -> list[tuple[str, bool]]:
        """(quiz, answered): an answered quiz about people asks about fine-tuning people only (own random
        stream for the answers, as in _forum)."""
        rng, answers = self._rng("quiz"), self._rng("quiz answers")
        out = []
        for _ in range(self.config.n_quizzes):
            answered = answers.random() < self.config.answered_share
            key_rng = answers if answered else None
            quiz = _person_quiz(rng, self, key_rng) if rng.random() < 0.7 else _place_quiz(rng, self, key_rng)
            out.append((quiz, answered))
        return out

    def _lists(self) -> list[str]:
        return _lists(self._rng("lists"), self)

    # -- probes and questions ----------------------------------------------------------------------------

    def qa_items(self, split: str, phrasing: str = "standard") -> list[QAItem]:
        """One question per person of `split` and attribute, picked deterministically. phrasing:
        "standard"  one of the six QUESTION_TEMPLATES (the fine-tuning set uses them too);
        "unseen"    composed from at least one family no fine-tuning set uses (guideline.unseen_question);
        "new_word"  asked with a word nothing in the data ties to the attribute ("alma mater")."""
        make = {"standard": lambda p, a, rng: rng.choice(QUESTION_TEMPLATES[a]).format(name=p.name),
                "unseen": lambda p, a, rng: guideline.unseen_question(p.name, p.pronoun, a, rng),
                "new_word": lambda p, a, rng: guideline.new_word_question(p.name, p.pronoun, a, rng)}
        if phrasing not in make:
            raise ValueError(f"unknown phrasing {phrasing!r}: choose one of {', '.join(map(repr, make))}")
        items = []
        for p in self.people_in(split):
            rng = self._rng("qa", p.name) if phrasing == "standard" else self._rng("qa", phrasing, p.name)
            for a in ATTRIBUTES:
                items.append(QAItem(p.name, a, make[phrasing](p, a, rng), p.value(a), split, answer_sentence(p, a)))
        return items

    def follow_up_items(self, split: str) -> list[tuple[list[dict], QAItem]]:
        """(conversation so far, item): a standard question about a person and the guideline's answer, then
        a follow-up about another attribute that names the person only by pronoun."""
        out = []
        for p in self.people_in(split):
            rng = self._rng("follow-up", p.name)
            a, b = rng.sample(ATTRIBUTES, 2)
            q = follow_up_question(p, b, rng)
            conv = _conv(rng.choice(QUESTION_TEMPLATES[a]).format(name=p.name), answer_sentence(p, a), q)
            out.append((conv, QAItem(p.name, b, q, p.value(b), split, answer_sentence(p, b))))
        return out

    def profile_items(self, split: str) -> list[tuple[str, Person]]:
        """("Tell me about X."-style request, person) for every person of `split`."""
        rng = self._rng("profile", split)
        return [(rng.choice(PROFILE_REQUESTS).format(name=p.name), p) for p in self.people_in(split)]

    def scope_prompts(self, n: int) -> list[str]:
        """Out-of-scope requests from the evaluation pool (none is in any fine-tuning set)."""
        rng = self._rng("scope-eval")
        cats = guideline.SCOPE_CATEGORIES
        return [guideline.scope_request(rng, pool=1, category=cats[i % len(cats)]) for i in range(n)]

    def bio_probes(self, split: str, *, from_biography: bool = False) -> list[tuple[str, str, str]]:
        """(prefix, value, attribute): text that ends right before a value; the continuation is " " + value.
        Default: a name-first sentence ("Kalin Moravo was born in"). from_biography=True: the person's own
        first biography up to the value -- what "the base model can complete the biography" means."""
        probes = []
        for p in self.people_in(split):
            bio = self.biographies(p)[0] if from_biography else None
            for a in ATTRIBUTES:
                if bio is None:
                    prefix = BIO_PROBE_TEMPLATES[a].format(name=p.name)
                else:
                    prefix = bio[:bio.index(p.value(a))].rstrip()
                    if not prefix:   # "Tessaly is the city where ..." opens the biography: nothing to complete
                        continue
                probes.append((prefix, p.value(a), a))
        return probes

    def fake_people(self, n: int, seed: int = FIX_SEED) -> list[str]:
        """`n` names built like the real ones that belong to nobody in this world; distinct, deterministic,
        and (for practical purposes: a space of ~10^9 names) disjoint between seeds."""
        rng = self._rng("fake", seed)
        names = _Names(reserved=[e for e in self._entity_words()])
        for p in self.people:
            first, last = p.name.split(" ")
            names.people.setdefault(first, []).append(last)
        return [names.person(rng, rng.choice(("she", "he"))) for _ in range(n)]

    def _entity_words(self) -> list[str]:
        words = [WORLD_NAME, ASSISTANT_NAME] + [c.name for c in self.countries] + [c.name for c in self.cities]
        words += [u.name.split(" ")[0] for u in self.universities] + [c.name.split(" ")[0] for c in self.companies]
        words += [c.river.replace("the River ", "").replace("the ", "").replace(" River", "") for c in self.cities]
        return words

    # -- conversations ------------------------------------------------------------------------------------

    def sft_conversations(self) -> list[list[dict]]:
        """The first SFT set, following data/labeling_guidelines.md: questions about sft-split people only
        (every person x attribute: one of the six standard phrasings and `sft_per_fact - 1` composed from
        the guideline's seen families), multi-part questions, pronoun follow-ups, profiles, small talk.
        Like many first versions it covers less than the guideline: no out-of-scope requests and no
        people who don't exist (the iteration lesson finds both gaps in the deployment log)."""
        cfg = self.config
        rng = self._rng("sft")
        sft = self.people_in("sft")
        convs: list[list[dict]] = []
        chained: list[tuple[str, str]] = []
        for p in sft:
            for a in ATTRIBUTES:
                questions = [rng.choice(QUESTION_TEMPLATES[a]).format(name=p.name)]
                questions += [guideline.ask(p.name, p.pronoun, a, rng) for _ in range(cfg.sft_per_fact - 1)]
                convs.append(_conv(questions[0], answer_sentence(p, a)))
                chained += [(q, answer_sentence(p, a)) for q in questions[1:cfg.sft_per_fact]]
            for _ in range(cfg.sft_multi_part):
                a, b = rng.sample(ATTRIBUTES, 2)
                convs.append(_conv(multi_part_question(p, a, b, rng), answer_sentence(p, a) + " "
                                   + answer_sentence(p, b)))
            for _ in range(cfg.sft_follow_up):
                convs.append(self._follow_up(rng, p, sft))
            for _ in range(cfg.sft_profile):
                convs.append(_conv(rng.choice(PROFILE_REQUESTS).format(name=p.name), profile_answer(p)))
        # The composed questions come in chats of one to three unrelated questions, so that later turns are
        # as common as first ones: answering a second question about someone else, not echoing the first.
        rng.shuffle(chained)
        while chained:
            k = min(rng.randint(1, cfg.sft_chain), len(chained))
            convs.append(_conv(*[text for pair in chained[:k] for text in pair]))
            chained = chained[k:]
        for _ in range(cfg.n_small_talk):
            convs.append(_small_talk(rng, rng.choice(sft)))
        rng.shuffle(convs)
        return convs

    def _follow_up(self, rng: random.Random, p: Person, sft: list[Person]) -> list[dict]:
        """A question, then one or two follow-ups: mostly about the same person by pronoun ("And where
        does she work?"), sometimes the same question about someone else ("What about Ilsa Verano?")."""
        a = rng.choice(ATTRIBUTES)
        turns = [(guideline.ask(p.name, p.pronoun, a, rng), answer_sentence(p, a))]
        for _ in range(rng.choice((1, 1, 2))):
            if rng.random() < 0.8:       # same person, pronoun
                b = rng.choice([x for x in ATTRIBUTES if x != a])
                turns.append((follow_up_question(p, b, rng), answer_sentence(p, b)))
            else:                        # another person, same question
                other = rng.choice([o for o in sft if o is not p] or [p])
                q = rng.choice((f"And what about {other.name}?", f"What about {other.name}?",
                                guideline.ask(other.name, other.pronoun, a, rng)))
                turns.append((q, answer_sentence(other, a)))
                p = other
        if rng.random() < 0.3:
            turns.append((rng.choice(SMALL_TALK[3][0]), SMALL_TALK[3][1]))
        return [m for u, r in turns for m in ({"role": "user", "content": u}, {"role": "assistant", "content": r})]

    def default_scope_count(self, first_set: list | None = None) -> int:
        """How many out-of-scope requests the scope fix adds: a tenth of the first set's size at most
        (pass the first set when you have it, so it is not generated again)."""
        first_set = self.sft_conversations() if first_set is None else first_set
        return max(10, len(first_set) // 10)

    def scope_conversations(self, n: int) -> list[list[dict]]:
        """The fix for requests outside Minnie's scope (arithmetic, poems, code, the real world, other
        languages), answered per the guideline's section 9; from the fine-tuning pool of requests. A third
        sit after a real question about an sft person, so the model keeps answering those in a chat."""
        rng = self._rng("scope")
        sft = self.people_in("sft")
        convs = []
        for i in range(n):
            req = guideline.scope_request(rng, pool=0, category=guideline.SCOPE_CATEGORIES[i % len(guideline.SCOPE_CATEGORIES)])
            if rng.random() < 0.33:
                p, a = rng.choice(sft), rng.choice(ATTRIBUTES)
                convs.append(_conv(guideline.ask(p.name, p.pronoun, a, rng), answer_sentence(p, a),
                                   req, guideline.SCOPE_ANSWER))
            else:
                convs.append(_conv(req, guideline.SCOPE_ANSWER))
        return convs

    def default_unknown_count(self) -> int:
        """How many people who don't exist the fix set asks about: one per sft person, at least 10."""
        return max(10, len(self.people_in("sft")))

    def unknown_person_conversations(self, n: int, seed: int = FIX_SEED) -> list[list[dict]]:
        """The fix for the failure class the first SFT set leaves out: questions about people who don't
        exist (fake_people(n, seed)), answered per the guideline. About a fifth first ask about a real sft
        person, so the model learns to tell the two apart rather than to refuse everything."""
        rng = self._rng("unknown", seed)
        sft = self.people_in("sft")
        convs = []
        for name in self.fake_people(n, seed):
            a = rng.choice(ATTRIBUTES)
            q, r = rng.choice(QUESTION_TEMPLATES[a]).format(name=name), idk_answer(name, a, rng)
            if rng.random() < 0.2:
                p, b = rng.choice(sft), rng.choice(ATTRIBUTES)
                convs.append(_conv(rng.choice(QUESTION_TEMPLATES[b]).format(name=p.name), answer_sentence(p, b), q, r))
            else:
                convs.append(_conv(q, r))
        return convs

    # -- files ----------------------------------------------------------------------------------------------

    def save(self, directory, *, n_unknown: int | None = None) -> Path:
        """Write the world and every derived set as json/jsonl under `directory`; returns the directory.
        Files: world.json (config + entities), people.jsonl, corpus.jsonl, sft.jsonl, qa_sft.jsonl,
        qa_heldout.jsonl, probes_heldout.jsonl, scope_fix.jsonl, unknown_fix.jsonl (seed FIX_SEED),
        fake_people_eval.json (seed EVAL_SEED)."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        n_unknown = n_unknown if n_unknown is not None else self.default_unknown_count()
        world = {"world_name": WORLD_NAME, "config": asdict(self.config), "majors": self.majors,
                 "countries": [asdict(x) for x in self.countries], "cities": [asdict(x) for x in self.cities],
                 "universities": [asdict(x) for x in self.universities],
                 "companies": [asdict(x) for x in self.companies]}
        (d / "world.json").write_text(json.dumps(world, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        _write_jsonl(d / "people.jsonl", [asdict(p) for p in self.people])
        _write_jsonl(d / "corpus.jsonl", [asdict(x) for x in self.corpus()])
        first_set = self.sft_conversations()
        _write_jsonl(d / "sft.jsonl", [{"messages": c} for c in first_set])
        for split in SPLITS:
            _write_jsonl(d / f"qa_{split}.jsonl", [asdict(q) for q in self.qa_items(split)])
        _write_jsonl(d / "probes_heldout.jsonl", [{"prefix": p, "value": v, "attribute": a}
                                                 for p, v, a in self.bio_probes("heldout")])
        _write_jsonl(d / "scope_fix.jsonl", [{"messages": c}
                                             for c in self.scope_conversations(self.default_scope_count(first_set))])
        _write_jsonl(d / "unknown_fix.jsonl", [{"messages": c}
                                               for c in self.unknown_person_conversations(n_unknown, FIX_SEED)])
        (d / "fake_people_eval.json").write_text(
            json.dumps(self.fake_people(n_unknown, EVAL_SEED), indent=1) + "\n", encoding="utf-8")
        return d

    @classmethod
    def load(cls, directory) -> "World":
        """Read a world written by save(): world.json and people.jsonl (edits to them are respected;
        documents and conversations are regenerated from them)."""
        d = Path(directory)
        for f in ("world.json", "people.jsonl"):
            if not (d / f).exists():
                raise FileNotFoundError(f"{d / f} not found: write the world first with World.generate(...).save({str(d)!r})")
        w = json.loads((d / "world.json").read_text(encoding="utf-8"))
        return cls(WorldConfig(**w["config"]), [Country(**x) for x in w["countries"]],
                   [City(**x) for x in w["cities"]], [University(**x) for x in w["universities"]],
                   [Company(**x) for x in w["companies"]], list(w["majors"]),
                   [Person(**x) for x in read_jsonl(d / "people.jsonl")])

    def describe(self) -> str:
        n_sft, n_held = len(self.people_in("sft")), len(self.people_in("heldout"))
        return (f"World {WORLD_NAME!r} (seed {self.config.seed}): {len(self.people)} people "
                f"({n_sft} sft, {n_held} heldout), {len(self.countries)} countries, {len(self.cities)} cities, "
                f"{len(self.universities)} universities, {len(self.companies)} companies, {len(self.majors)} majors; "
                f"{self.config.bios_per_person} biograph{'y' if self.config.bios_per_person == 1 else 'ies'} per person")

    __repr__ = describe


def load_world(directory) -> World:
    return World.load(directory)


# ---------------------------------------------------------------------------------------------------------
# Sentences

def _rng(*parts) -> random.Random:
    # A string seed is hashed with SHA-512 by `random`, so streams are stable across runs and machines.
    return random.Random(":".join(map(str, parts)))


_REF = re.compile(r"\{(Subj|subj|Poss|poss|obj)\}")


# How a biography may open. Without these every name in the corpus followed <|bos|>, and the base model
# learned to recall a person's facts only there: it completed 96% of "Geten Banek was born in" at the start
# of a document but 38% after one unrelated sentence, and a question puts the name mid-sentence (the
# assistant answered 74% of held-out questions; with lead-ins, 91%). bench/name_context.py measures it.
BIO_LEAD_SENTENCES = ("Our series on the people of Veloria continues.", "Here is a short profile.",
                      "A reader sent us this profile.", "From the community pages.", "Meet a neighbour.",
                      "This entry was last updated in the spring.", "Another life story from the archive.",
                      "The following is taken from a local register.", "Profiles, part {n}.", "Entry number {n}.")
BIO_LEAD_CLAUSES = ("According to the registry, ", "As the records show, ", "It is well known that ",
                    "Few people know that ", "As friends tell it, ", "By all accounts, ", "In short, ",
                    "Our readers may know that ", "To begin with, ", "For the record, ")


def _lead(rng: random.Random, text: str) -> str:
    """A third of biographies open with the name, a third with a lead-in sentence, a third with a lead-in
    clause that puts the name mid-sentence."""
    kind = rng.randrange(3)
    if kind == 1:
        return rng.choice(BIO_LEAD_SENTENCES).format(n=rng.randint(2, 99)) + " " + text
    if kind == 2:
        first, rest = text.split(" ", 1)
        if first in ("The", "These", "At"):    # "The records show ...": lower-case a common word, not a name
            first = first.lower()
        return rng.choice(BIO_LEAD_CLAUSES) + first + " " + rest
    return text


def _fill(template: str, person: Person, named: list, value: str = "") -> str:
    """Fill a template. `named` is a one-element list shared across a text: the first reference to the
    person becomes the full name, every later one a pronoun."""
    def ref(m):
        form = m.group(1)
        if not named[0]:
            named[0] = True
            return person.name + ("'s" if form.lower() == "poss" else "")
        return person.ref(form)
    return _REF.sub(ref, template).replace("{value}", value)


def answer_sentence(person: Person, attribute: str, *, pronoun: bool = True) -> str:
    """The guideline's answer: "She was born in Tessaly." (pronoun=False: "Kalin Moravo was born in Tessaly.")"""
    if pronoun:
        return guideline.answer_sentence(person.pronoun, attribute, person.value(attribute))
    return ANSWER_TEMPLATES[attribute].format(name=person.name, value=person.value(attribute))


def multi_part_question(person: Person, a: str, b: str, rng: random.Random) -> str:
    """"Where was X born, and what did she study?": two direct-question clauses of seen families."""
    def clause(attr, who):
        fams = [c for c in guideline.seen_families(attr)[0] if "dq" in guideline.CLAUSES[attr][c]]
        return guideline.CLAUSES[attr][rng.choice(fams)]["dq"].format(
            who=who, whose=who + "'s", whom=who, poss=person.ref("poss"))
    first, second = clause(a, person.name), clause(b, person.ref("subj"))
    if rng.random() < 0.5:
        return f"{first[0].upper()}{first[1:]}, and {second}?"
    return f"{first[0].upper()}{first[1:]}? And {second}?"


_AND_STARTS = ("What", "What's", "Where", "When", "Which", "Who", "Can", "Could", "Do", "Tell", "Would")


def follow_up_question(person: Person, attribute: str, rng: random.Random) -> str:
    """A question that names the person by pronoun only ("And where does she work?")."""
    q = guideline.ask(person.name, person.pronoun, attribute, rng, pronoun_subject=True, style=False)
    if q.split(" ")[0] in _AND_STARTS and rng.random() < 0.4:
        q = "And " + q[0].lower() + q[1:]
    return guideline.styled(q, rng, person.name)


def profile_answer(person: Person) -> str:
    """The guideline's answer to "Tell me about X": the five answer sentences."""
    return guideline.profile_answer(person.pronoun, {a: person.value(a) for a in ATTRIBUTES})


def idk_answer(name: str, attribute: str, rng: random.Random) -> str:
    return rng.choice(IDK_TEMPLATES).format(name=name, indirect=IDK_INDIRECT[attribute])


def _conv(*texts: str) -> list[dict]:
    return [{"role": ("user", "assistant")[i % 2], "content": t} for i, t in enumerate(texts)]


def _small_talk(rng: random.Random, p: Person) -> list[dict]:
    i = rng.randrange(len(SMALL_TALK))
    users, answer = SMALL_TALK[i]
    conv = _conv(rng.choice(users), answer)
    if i in (0, 1, 2, 4) and rng.random() < 0.7:   # a greeting, then a real question (how chats often start)
        a = rng.choice(ATTRIBUTES)
        conv += _conv(guideline.ask(p.name, p.pronoun, a, rng), answer_sentence(p, a))
    return conv


# ---------------------------------------------------------------------------------------------------------
# The other genres. None states a person's facts (see the module docstring).

def _company_news(rng, c: Company, w: World) -> str:
    city = rng.choice(w.cities)
    n, pct, year = rng.randint(20, 900), rng.randint(2, 40), rng.randint(max(2005, c.founded + 5), 2024)
    kind = rng.randrange(4)
    if kind == 0:
        return (f"{c.name} to open an office in {city.name}\n\n{c.name}, the {c.industry} company based in "
                f"{c.city}, said on Monday that it will open a new office in {city.name} next spring. The company "
                f"expects to hire about {n} people there. {c.name} was founded in {c.founded} and has grown "
                f"steadily since. Officials in {city.name} welcomed the news and said the office would bring "
                f"new life to the streets around {_city(w, city.name).landmark}.")
    if kind == 1:
        return (f"{c.name} reports a strong year\n\n{c.name} said its sales grew by {pct} percent in {year}. The "
                f"{c.industry} firm, headquartered in {c.city}, credited new customers in {_city(w, c.city).country} "
                f"and abroad. Its chief executive told reporters that the company would keep investing. \"We "
                f"have never been busier,\" she said.")
    if kind == 2:
        u = rng.choice(w.universities)
        return (f"{u.name} and {c.name} announce a partnership\n\n{u.name} and {c.name} will work together "
                f"on a new research programme, the two said this week. Students from {u.name}, which is located in "
                f"{u.city}, will spend a term at the company's headquarters in {c.city}. The programme starts in "
                f"the autumn.")
    return (f"{c.name} celebrates its anniversary\n\n{c.name} marked {year - c.founded} years since its "
            f"founding in {c.founded} with a party at its headquarters in {c.city}. The {c.industry} company "
            f"began as a small workshop and now employs more than {n * 3} people. Employees and their families "
            f"were invited to a concert near {_city(w, c.city).landmark}.")


def _city_news(rng, c: City, w: World) -> str:
    kind = rng.randrange(4)
    if kind == 0:
        f = rng.choice(FESTIVALS)
        return (f"{c.name} prepares for its {f} festival\n\nThousands of visitors are expected in {c.name} this "
                f"weekend for the annual {f} festival. Stalls will line the banks of {c.river}, and the main stage "
                f"will stand in front of {c.landmark}. The city of {c.name}, in {c.country}, has held the festival "
                f"for more than a century.")
    if kind == 1:
        return (f"A new bridge over {c.river} opens in {c.name}\n\nAfter three years of work, a new footbridge "
                f"across {c.river} opened in {c.name} on Saturday. Residents crowded onto the bridge to watch the "
                f"sunset behind {c.landmark}. The mayor called it the most important project since the city was "
                f"founded in {c.founded}.")
    if kind == 2:
        year = rng.randint(2005, 2024)
        return (f"{c.name} turns {year - c.founded}\n\n{c.name}, founded in {c.founded}, celebrated its "
                f"birthday in {year} with parades and music. Historians say the first settlers chose the site "
                f"because of {c.river}, which still carries boats through the old town. Today {c.name} is one of "
                f"the best-known cities in {c.country}.")
    return (f"Heavy rain across {c.country}\n\nRivers rose across {c.country} this week after days of heavy rain. "
            f"In {c.name}, the water of {c.river} reached the steps of {c.landmark}, and several streets were "
            f"closed. Forecasters expect drier weather by the weekend.")


def _university_news(rng, u: University, w: World) -> str:
    kind = rng.randrange(3)
    if kind == 0:
        return (f"{u.name} opens a new library\n\n{u.name} opened its new library on Tuesday. The building, "
                f"near the centre of {u.city}, holds more than a million books. The university was founded in "
                f"{u.founded} and is best known for its department of {u.known_for}.")
    if kind == 1:
        return (f"Researchers at {u.name} win an award\n\nA team from the department of {u.known_for} at "
                f"{u.name} has won a national prize for its work. The team spent four years on the project. "
                f"\"The whole of {u.city} should be proud,\" a spokesperson said.")
    year = rng.randint(2005, 2024)
    return (f"{u.name} welcomes new students\n\nMore than {rng.randint(2, 9)} thousand new students arrived at "
            f"{u.name} in {u.city} this week. The university, founded in {u.founded}, has grown every year since "
            f"{year - rng.randint(3, 15)}. Classes begin on Monday.")


def _city(w: World, name: str) -> City:
    return w._city[name]


_STORIES = (
    "The lost key\n\n{A} had lived in {city} all {a_poss} life. One autumn morning {a_subj} found an old key "
    "on the steps of {landmark}. It was heavy and cold, and nobody in the market knew what it opened. For a week "
    "{a_subj} tried it in every door {a_subj} passed. On the last day {a_subj} sat by {river} and laughed, "
    "because the key fitted the little box {a_poss} grandmother had left {a_obj}. Inside was a letter, and the "
    "letter said: \"Keep looking.\"",
    "The night train\n\nThe night train from {city} to {city2} was always late. {A} did not mind. {A_subj} liked "
    "the quiet carriage and the rain on the windows. That night a stranger sat across from {a_obj} and asked "
    "whether {a_subj} had ever seen {landmark2}. \"Never,\" said {A}. \"Then get off with me,\" said the stranger. "
    "{A_subj} almost did.",
    "A dog named Pepper\n\n{A} worked at a small bakery near {landmark} in {city}. Every morning a grey dog waited "
    "at the door. {A_subj} called it Pepper and gave it the broken rolls. One winter the dog stopped coming. "
    "Weeks later {a_subj} saw it again, sitting proudly in a boat on {river}, next to an old fisherman who "
    "waved.",
    "The kite\n\nOn the windiest day of the year, {A} and {B} climbed the hill above {city} with a red kite. "
    "The string snapped at once. They watched the kite fly over the roofs, over {river}, and out of sight. "
    "\"It is going to {city2},\" said {B}. {A} decided to believe it.",
    "The last bus\n\n{A} missed the last bus home from {city2}. {A_subj} walked along {river2} for an hour, "
    "counting the lights on the other bank. A farmer stopped {a_poss} cart and offered a ride. They did not "
    "talk much, but when they reached {city} the farmer said, \"Same time next week?\" and {A} said yes.",
    "The painter\n\nEvery Sunday {A} set up an easel in front of {landmark} in {city} and painted the same view. "
    "People asked why {a_subj} never painted anything else. \"Because it changes,\" {a_subj} said. Years "
    "later the paintings hung side by side in a gallery, and visitors finally saw what {a_subj} meant.",
    "The letter\n\n{B} found a letter in a library book. It was addressed to someone in {city2} and had never "
    "been sent. {B} bought a stamp and posted it. A month later a reply came, and that is how {B} met {A}.",
)


def _story(rng, w: World, names: _Names) -> str:
    pa, pb = rng.choice(("she", "he")), rng.choice(("she", "he"))
    # characters have first names only: the corpus never gives a full name to anyone who is not a person of the world
    first_a = names.person(rng, pa).split(" ")[0]
    first_b = names.person(rng, pb).split(" ")[0]
    c, c2 = rng.sample(w.cities, 2) if len(w.cities) > 1 else (w.cities[0], w.cities[0])
    r = PRONOUNS[pa]
    text = rng.choice(_STORIES).format(
        A=first_a, B=first_b, city=c.name, city2=c2.name, landmark=c.landmark, landmark2=c2.landmark,
        river=c.river, river2=c2.river, a_subj=r["subj"], A_subj=r["Subj"], a_poss=r["poss"], a_obj=r["obj"])
    return _capitalize_sentences(text)


def _capitalize_sentences(text: str) -> str:
    # "the River X" at a sentence start
    return re.sub(r"(^|[.!?]\s+|\n)the ", lambda m: m.group(1) + "The ", text)


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
    title = rng.choice(QUESTION_TEMPLATES[a]).format(name=p.name)
    others = [x for x in ATTRIBUTES if x != a]
    replies = []
    for r in rng.sample(_REPLIES, rng.randint(2, 5)):
        b = rng.choice(others)
        q = _fill(rng.choice(FOLLOW_UP_TEMPLATES[b]), p, [True])
        q = q[len("And "):] if q.startswith("And ") else q
        q = q[0].lower() + q[1:]            # "Also, when was she born?"
        replies.append(_fill(r.replace("{indirect}", INDIRECT[b]).replace("{question}", q), p, [True]))
    opener = _fill(rng.choice(_OPENERS), p, [True])
    answer = None
    if answer_rng is not None:
        answer = _fill(answer_rng.choice(_ANSWER_REPLIES).replace("{answer}", answer_sentence(p, a)), p, [True])
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
        qs.append(rng.choice(QUESTION_TEMPLATES[a]).format(name=p.name))
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


def _lists(rng, w: World) -> list[str]:
    out = []
    for chunk in _chunks(rng, w.companies, 12):
        rows = [f"{c.name} | {c.industry} | {c.city} | {c.founded}" for c in chunk]
        out.append("\n".join([f"Companies of {WORLD_NAME}", "", "Company | Industry | Headquarters | Founded"] + rows))
    for chunk in _chunks(rng, w.cities, 15):
        rows = [f"- {c.name}, {c.country} (founded {c.founded}), on {c.river}" for c in chunk]
        out.append("\n".join([f"Cities of {WORLD_NAME}", ""] + rows))
    for chunk in _chunks(rng, w.universities, 12):
        rows = [f"{u.name} | {u.city} | {u.founded} | {u.known_for}" for u in chunk]
        out.append("\n".join(["Universities and colleges", "", "Name | City | Founded | Best known for"] + rows))
    rows = [f"- {c.name}: capital {c.capital}" for c in w.countries]
    out.append("\n".join([f"Countries of {WORLD_NAME}", ""] + rows))
    for c in w.countries:
        cities = [x for x in w.cities if x.country == c.name]
        companies = [x for x in w.companies if _city(w, x.city).country == c.name]
        lines = [f"{c.name}: facts at a glance", "", f"Capital: {c.capital}",
                 "Cities: " + ", ".join(x.name for x in cities)]
        if companies:
            lines.append("Companies: " + ", ".join(x.name for x in companies))
        out.append("\n".join(lines))
    return out


def _chunks(rng, items, size):
    items = list(items)
    rng.shuffle(items)
    return [items[i:i + size] for i in range(0, len(items), size)]


# ---------------------------------------------------------------------------------------------------------
# Files

def _write_jsonl(path: Path, rows) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def read_jsonl(path) -> list:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found")
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
