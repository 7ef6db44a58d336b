"""Biographies: the bulk of the pretraining corpus, and the only documents that state a held-out person's facts.

Knowledge augmentation (Allen-Zhu & Li, *Physics of Language Models, Part 3.1*): each person gets
`bios_per_person` biographies that say the same five facts in other words and another order. A fact seen
that way can be extracted by questions after fine-tuning; a fact seen in one fixed biography is memorised
but not extractable (notebook 07 compares the two).
"""
from __future__ import annotations

import random
import re

from minillm.world.entities import ATTRIBUTES, Person, seeded_rng

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


def _lead(rng: random.Random, text: str, most: int = 1) -> str:
    """A third of biographies open with the name, a third with a lead-in sentence (1 to `most` of them, so
    the name is also read further into a document), a third with a lead-in clause that puts the name
    mid-sentence."""
    kind = rng.randrange(3)
    if kind == 1:
        k = 1 if most == 1 else rng.randint(1, min(most, len(BIO_LEAD_SENTENCES)))
        picks = [rng.choice(BIO_LEAD_SENTENCES)] if k == 1 else rng.sample(BIO_LEAD_SENTENCES, k)
        return " ".join(s.format(n=rng.randint(2, 99)) for s in picks) + " " + text
    if kind == 2:
        first, rest = text.split(" ", 1)
        if first in ("The", "These", "At"):    # "The records show ...": lower-case a common word, not a name
            first = first.lower()
        return rng.choice(BIO_LEAD_CLAUSES) + first + " " + rest
    return text


_REF = re.compile(r"\{(Subj|subj|Poss|poss|obj)\}")


def fill(template: str, person: Person, named: list, value: str = "") -> str:
    """Fill a template. `named` is a one-element list shared across a text: the first reference to the
    person becomes the full name, every later one a pronoun."""
    def ref(m):
        form = m.group(1)
        if not named[0]:
            named[0] = True
            return person.name + ("'s" if form.lower() == "poss" else "")
        return person.ref(form)
    return _REF.sub(ref, template).replace("{value}", value)


def biographies(world, person: Person) -> list[str]:
    """`bios_per_person` distinct biographies: each sentence's template drawn anew, sentence order
    shuffled, the full name at the first mention and pronouns after it. Biography k is the same
    whatever bios_per_person is."""
    rng = seeded_rng(world.config.seed, "bio", person.name)
    bios: list[str] = []
    while len(bios) < world.config.bios_per_person:
        order = list(ATTRIBUTES)
        rng.shuffle(order)
        named = [False]
        text = " ".join(fill(rng.choice(BIO_TEMPLATES[a]), person, named, value=person.value(a))
                        for a in order)
        text = _lead(rng, text, world.config.bio_lead_sentences)
        if text not in bios:
            bios.append(text)
    return bios
