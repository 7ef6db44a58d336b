"""The world's things and their names: countries, cities, universities, companies and people, and the
configuration that says how many of each there are.

Everything is deterministic from `WorldConfig.seed`, and each part of the world draws from its own random
stream (`seeded_rng`), so changing one knob (say `bios_per_person`) changes only what it should: the people,
their facts and their splits stay the same.

Names are made up, pronounceable and never contain one another (`_Names`), so "does this text mention X?"
has one answer and a name is a few tokens of a small BPE.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass, fields

WORLD_NAME = "Veloria"          # the continent everything happens on
ASSISTANT_NAME = "Minnie"       # the assistant the labeling guideline describes

SPLITS = ("sft", "heldout")

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

# The five facts every person has, in the order a biography or a profile lists them when it does not shuffle.
ATTRIBUTES = ("birth_date", "birth_city", "university", "major", "employer")

PRONOUNS = {
    "she": {"Subj": "She", "subj": "she", "Poss": "Her", "poss": "her", "obj": "her"},
    "he": {"Subj": "He", "subj": "he", "Poss": "His", "poss": "his", "obj": "him"},
}

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

_SHARES = ("answered_share", "qa_thread_switch", "qa_thread_lead_in", "sft_opener_share")     # WorldConfig fields between 0 and 1


@dataclass
class WorldConfig:
    """How big the world is and how much is written about it. The defaults are the `cpu` preset's world;
    minillm.config holds every preset's (`world_config(preset)`)."""
    n_people: int = 200
    n_countries: int = 6
    n_cities: int = 30
    n_universities: int = 20
    n_companies: int = 30
    n_majors: int = 20
    bios_per_person: int = 5          # knowledge augmentation: distinct, reworded, reshuffled biographies
    bio_page_size: int = 1            # biographies per document: pages of 1 to this many, one after another
    bio_lead_sentences: int = 1       # a biography that opens with lead-in sentences has 1 to this many of them
    heldout_fraction: float = 0.5     # people whose facts the SFT set never mentions
    seed: int = 0
    # other genres (counts do not depend on bios_per_person, so only the biographies change with it)
    n_news: int = 30
    n_stories: int = 12
    n_forum: int = 80
    n_quizzes: int = 20
    # answered documents: this share of the forum threads and quizzes that are about places or about
    # fine-tuning people get an answer (a reply that states the fact, an answer key). Never about held-out
    # people: their facts reach the model only through biographies. 0: no document answers a question.
    answered_share: float = 0.0
    # answered Q&A threads about fine-tuning people: a question composed from every clause and wrapper family
    # of the guideline (the ones fine-tuning never shows included, the new-word ones never), answered in the
    # guideline's sentence, then 0-2 pronoun follow-ups, each answered. 0: none (bench/RESULTS.md measures it)
    n_qa_threads: int = 0
    # the share of those threads' follow-ups that ask about another fine-tuning person, by name (the next
    # pronoun follow-ups are about that person): a conversation moves on, as in the second-person suite
    qa_thread_switch: float = 0.0
    # the share of those threads that open with small talk (a greeting, a welcome) and ask in a reply, so
    # a question is also read after a chat has begun (0: every thread opens with its question)
    qa_thread_lead_in: float = 0.0
    # the SFT set
    sft_per_fact: int = 6             # questions per (sft person, attribute)
    sft_chain: int = 3                # at most this many unrelated questions in one chat
    sft_multi_part: int = 1           # two-attribute questions per sft person
    sft_follow_up: int = 5            # conversations with pronoun follow-ups per sft person
    sft_profile: int = 1              # "Tell me about X" per sft person
    n_small_talk: int = 80
    # a thanks sits between two questions (an answer about one sft person, "Thanks!", then a question about
    # another) instead of opening a chat; measured with n_small_talk 300, not adopted (bench/RESULTS.md)
    thanks_between_questions: bool = False
    # this share of the chats of composed questions opens with small talk (a greeting, "What can you do?")
    # and its answer, so questions are also learned after it without adding a conversation (0: none)
    sft_opener_share: float = 0.0

    def __post_init__(self):
        for f in fields(self):
            if f.name not in _SHARES + ("heldout_fraction", "seed") and getattr(self, f.name) < 0:
                raise ValueError(f"WorldConfig.{f.name} must be >= 0, got {getattr(self, f.name)}")
        if self.n_people < 2:
            raise ValueError(f"WorldConfig.n_people must be at least 2 (one per split), got {self.n_people}")
        for name in ("n_countries", "n_cities", "n_universities", "n_companies", "n_majors", "bios_per_person",
                     "bio_page_size", "bio_lead_sentences"):
            if getattr(self, name) < 1:
                raise ValueError(f"WorldConfig.{name} must be at least 1, got {getattr(self, name)}")
        if self.n_cities < self.n_countries:
            raise ValueError(f"WorldConfig.n_cities ({self.n_cities}) must be >= n_countries ({self.n_countries}): "
                             "every country needs a capital")
        if self.n_majors > len(MAJORS):
            raise ValueError(f"WorldConfig.n_majors is {self.n_majors} but only {len(MAJORS)} majors exist; "
                             "lower it or add subjects to world.MAJORS")
        for name in _SHARES:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"WorldConfig.{name} must be between 0 and 1, got {getattr(self, name)}")
        if not 0.0 < self.heldout_fraction < 1.0:
            raise ValueError(f"WorldConfig.heldout_fraction must be between 0 and 1 (exclusive), "
                             f"got {self.heldout_fraction}")


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
# A new world

def seeded_rng(*parts) -> random.Random:
    """A random stream of its own for one part of the world: seeded_rng(seed, "bio", name)."""
    # A string seed is hashed with SHA-512 by `random`, so streams are stable across runs and machines.
    return random.Random(":".join(map(str, parts)))


def generate(config: WorldConfig) -> tuple[list, list, list, list, list, list]:
    """(countries, cities, universities, companies, majors, people) of a new world."""
    rng = seeded_rng(config.seed, "entities")
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

    rng = seeded_rng(config.seed, "people")
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
    for i in seeded_rng(config.seed, "split").sample(range(config.n_people), n_heldout):
        people[i].split = "heldout"
    return countries, cities, universities, companies, majors, people


# ---------------------------------------------------------------------------------------------------------
# People who don't exist

def fake_people(world, n: int, seed: int = FIX_SEED) -> list[str]:
    """`n` names built like the real ones that belong to nobody in this world; distinct, deterministic,
    and (for practical purposes: a space of ~10^9 names) disjoint between seeds."""
    rng = seeded_rng(world.config.seed, "fake", seed)
    names = _Names(reserved=[e for e in _entity_words(world)])
    for p in world.people:
        first, last = p.name.split(" ")
        names.people.setdefault(first, []).append(last)
    return [names.person(rng, rng.choice(("she", "he"))) for _ in range(n)]


def _entity_words(w) -> list[str]:
    words = [WORLD_NAME, ASSISTANT_NAME] + [c.name for c in w.countries] + [c.name for c in w.cities]
    words += [u.name.split(" ")[0] for u in w.universities] + [c.name.split(" ")[0] for c in w.companies]
    words += [c.river.replace("the River ", "").replace("the ", "").replace(" River", "") for c in w.cities]
    return words
