"""The generated world: the people, places and companies of a fictional continent, and what is written about them.

`World` is what the notebooks use: the pretraining documents, the fine-tuning sets and the evaluation sets, each
method one call into the submodule that does the job. Standard library only: it needs neither the tokenizer nor
the model, and sits in the package's first layer with them (the README's layout).
"""
from __future__ import annotations

import re
from pathlib import Path

# Each of World's methods is one call into the module that does the job:
#     entities      the things and their names, and WorldConfig (each preset's sizes: minillm.config)
#     biographies   the bulk of the corpus, the only place a held-out person's facts are written
#     corpus        the pretraining "internet" in six genres; forum: its threads and quiz pages
#     guideline     how users ask and how Minnie answers (data/labeling_guidelines.md as code)
#     sft           the fine-tuning sets written to the guideline
#     evals         the evaluation sets: questions, follow-ups, profiles, out-of-scope requests, probes
#     io            the files under data/
from minillm.world import biographies, corpus, entities, evals, guideline, io, sft
# The names the world class uses, and the ones notebooks, benchmarks and tests import from `minillm.world`
# (the rest are imported from the submodule that defines them).
from minillm.world.biographies import BIO_LEAD_SENTENCES
from minillm.world.entities import (ASSISTANT_NAME, ATTRIBUTES, DATE_PATTERN, EVAL_SEED, FIX_SEED, MONTHS, SPLITS,
                                    WORLD_NAME, City, Company, Country, Document, Person, QAItem, University,
                                    WorldConfig)
from minillm.world.guideline import (ANSWER_TEMPLATES, BIO_PROBE_TEMPLATES, IDK_MARKERS, IDK_TEMPLATES,
                                     NEW_WORD_CLAUSES, PROFILE_REQUESTS, QUESTION_TEMPLATES, SCOPE_MARKER, SMALL_TALK,
                                     UNSEEN_WRAPPERS, WRAPPERS, answer_sentence)
from minillm.world.io import read_jsonl

# Why generate a world instead of downloading text: it runs offline, it is small enough for a laptop, and above
# all knowledge becomes measurable. Every person has five facts with a ground truth, so "the assistant answers
# with what pretraining stored" is a number, not an impression. The setting follows Allen-Zhu & Li, *Physics of
# Language Models, Part 3.1* (the "bioS" data): synthetic biographies, question answering fine-tuned on half of
# the people, tested on the other half. The paper's finding, which the course reproduces: a fact can be
# *extracted* after fine-tuning only when pretraining saw it in several differently worded documents
# ("knowledge augmentation"); one biography per person is memorised but not extractable.


class World:
    """People and entities, and every text the course trains or evaluates on. Build with
    `World.generate(WorldConfig())`; everything after that is a pure function of the world.

    What World makes:
        World.generate(config)              people (five ATTRIBUTES each, split "sft" / "heldout") and entities
        world.documents()                   the pretraining "internet": biographies (the bulk), news, stories,
                                            forum threads, quiz pages, lists
        world.sft_conversations()           the first fine-tuning set, written to data/labeling_guidelines.md;
                                            it mentions only "sft" people and has no out-of-scope requests and
                                            no unknown people
        world.scope_conversations(n)        the iteration lesson's fix: out-of-scope requests, answered per the
                                            guideline
        world.qa_items(split, phrasing)     one question per person and attribute, for evaluation (standard, unseen
                                            or new-word phrasing); follow_up_items, profile_items, scope_prompts too
        world.bio_probes(split)             "Kalin Moravo was born in" -> "Tessaly": what the base model stored
        world.fake_people(n, seed)          names that belong to nobody
        world.unknown_person_conversations  "I don't have any information about ...": what fine-tuning cannot fix
                                            at the cpu size (notebook 08's second part)
        world.save(dir) / World.load(dir)   jsonl files under data/
    """

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

    @classmethod
    def generate(cls, config: WorldConfig | None = None) -> World:
        config = config or WorldConfig()
        return cls(config, *entities.generate(config))

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

    def fake_people(self, n: int, seed: int = FIX_SEED) -> list[str]:
        """`n` names built like the real ones that belong to nobody in this world (entities.fake_people)."""
        return entities.fake_people(self, n, seed)

    # -- the pretraining corpus --------------------------------------------------------------------------

    def biographies(self, person: Person) -> list[str]:
        """`bios_per_person` distinct biographies of `person` (biographies.biographies)."""
        return biographies.biographies(self, person)

    def corpus(self) -> list[Document]:
        """Every pretraining document with its genre, in a fixed shuffled order."""
        return corpus.corpus(self)

    def documents(self) -> list[str]:
        """The pretraining "internet": plain-text documents (the trainer joins them with <|bos|>)."""
        return [d.text for d in self.corpus()]

    def corpus_stats(self, docs: list[Document] | None = None) -> dict[str, dict]:
        """Per genre: documents, characters, share of all characters, and answered documents."""
        return corpus.corpus_stats(self.corpus() if docs is None else docs)

    # -- evaluation ----------------------------------------------------------------------------------------

    def qa_items(self, split: str, phrasing: str = "standard") -> list[QAItem]:
        """One question per person of `split` and attribute: "standard", "unseen" or "new_word" phrasing."""
        return evals.qa_items(self, split, phrasing)

    def follow_up_items(self, split: str) -> list[tuple[list[dict], QAItem]]:
        """(conversation so far, item): the item's question names the person only by pronoun."""
        return evals.follow_up_items(self, split)

    def after_greeting_items(self, split: str) -> list[tuple[list[dict], QAItem]]:
        """(conversation so far, item): a question after a greeting, other small talk or a thanks."""
        return evals.after_greeting_items(self, split)

    def second_person_items(self, split: str) -> list[tuple[list[dict], QAItem]]:
        """(conversation so far, item): a question about a second person, after one about a first."""
        return evals.second_person_items(self, split)

    def scope_mid_chat(self, split: str) -> list[list[dict]]:
        """Conversations whose last message, after a question and its answer, is out of scope."""
        return evals.scope_mid_chat(self, split)

    def profile_items(self, split: str) -> list[tuple[str, Person]]:
        """("Tell me about X."-style request, person) for every person of `split`."""
        return evals.profile_items(self, split)

    def scope_prompts(self, n: int) -> list[str]:
        """Out-of-scope requests from the evaluation pool (none is in any fine-tuning set)."""
        return evals.scope_prompts(self, n)

    def bio_probes(self, split: str, *, from_biography: bool = False) -> list[tuple[str, str, str]]:
        """(prefix, value, attribute): text that ends right before a value (evals.bio_probes)."""
        return evals.bio_probes(self, split, from_biography=from_biography)

    # -- fine-tuning sets ------------------------------------------------------------------------------------

    def sft_conversations(self) -> list[list[dict]]:
        """The first SFT set, following data/labeling_guidelines.md (sft.sft_conversations)."""
        return sft.sft_conversations(self)

    def default_scope_count(self, first_set: list | None = None) -> int:
        """How many out-of-scope requests the scope fix adds: a tenth of the first set's size at most
        (pass the first set when you have it, so it is not generated again)."""
        return sft.default_scope_count(self, first_set)

    def scope_conversations(self, n: int) -> list[list[dict]]:
        """The fix for requests outside Minnie's scope (sft.scope_conversations)."""
        return sft.scope_conversations(self, n)

    def default_unknown_count(self) -> int:
        """How many people who don't exist the fix set asks about: one per sft person, at least 10."""
        return sft.default_unknown_count(self)

    def unknown_person_conversations(self, n: int, seed: int = FIX_SEED) -> list[list[dict]]:
        """The fix for questions about people who don't exist (sft.unknown_person_conversations)."""
        return sft.unknown_person_conversations(self, n, seed)

    # -- files ----------------------------------------------------------------------------------------------

    def save(self, directory, *, n_unknown: int | None = None) -> Path:
        """Write the world and every derived set as json/jsonl under `directory` (io.save); returns it."""
        return io.save(self, directory, n_unknown=n_unknown)

    @classmethod
    def load(cls, directory) -> World:
        """Read a world written by save(): world.json and people.jsonl (edits to them are respected;
        documents and conversations are regenerated from them)."""
        return cls(*io.read_world(directory))

    def describe(self) -> str:
        n_sft, n_held = len(self.people_in("sft")), len(self.people_in("heldout"))
        return (f"World {WORLD_NAME!r} (seed {self.config.seed}): {len(self.people)} people "
                f"({n_sft} sft, {n_held} heldout), {len(self.countries)} countries, {len(self.cities)} cities, "
                f"{len(self.universities)} universities, {len(self.companies)} companies, {len(self.majors)} majors; "
                f"{self.config.bios_per_person} biograph{'y' if self.config.bios_per_person == 1 else 'ies'} per person")

    __repr__ = describe


def load_world(directory) -> World:
    return World.load(directory)
