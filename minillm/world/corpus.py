"""The pretraining corpus: the "internet" of the world, in six genres.

Biographies are the bulk (minillm.world.biographies); news, stories, forum threads, quiz pages
(minillm.world.forum) and lists talk about the places and companies around the people, and keep the
corpus from being one kind of text. Two rules the genres follow, because the lessons measure them:
- A held-out person's facts live in biographies only. News, stories and lists talk about places and
  companies and never state a person's birth date, city, university, major or employer.
- Questions go mostly unanswered (see minillm.world.forum; WorldConfig.answered_share).
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

from minillm.world.biographies import biographies
from minillm.world.entities import PRONOUNS, WORLD_NAME, City, Company, Document, University, _Names, seeded_rng
from minillm.world.forum import forum_threads, qa_threads, quizzes

if TYPE_CHECKING:
    from minillm.world import World

GENRES = ("biography", "news", "story", "forum", "quiz", "list")
FESTIVALS = ("lantern", "harvest", "kite", "music", "river", "winter", "flower", "bread", "boat", "cheese")


def corpus(world: World) -> list[Document]:
    """Every pretraining document with its genre, in a fixed shuffled order."""
    docs = [Document("biography", t) for t in _pages(world, [b for p in world.people for b in biographies(world, p)])]
    docs += [Document("news", t) for t in _news(world)]
    docs += [Document("story", t) for t in _stories(world)]
    docs += [Document("forum", t, answered) for t, answered in forum_threads(world)]
    docs += [Document("quiz", t, answered) for t, answered in quizzes(world)]
    docs += [Document("forum", t, True) for t in qa_threads(world)]
    docs += [Document("list", t) for t in _lists(seeded_rng(world.config.seed, "lists"), world)]
    seeded_rng(world.config.seed, "order").shuffle(docs)
    return docs


def _pages(world: World, bios: list[str]) -> list[str]:
    """Biographies as documents: one each, or (bio_page_size k > 1) pages of 1 to k biographies in a random
    order, so that a name is also read after another person's text, as a question in a chat reads it after
    earlier turns, and not only right after <|bos|>."""
    k = world.config.bio_page_size
    if k == 1:
        return bios
    rng = seeded_rng(world.config.seed, "bio-pages")
    bios = bios[:]
    rng.shuffle(bios)
    pages = []
    while bios:
        n = rng.randint(1, k)
        pages.append("\n\n".join(bios[:n]))
        bios = bios[n:]
    return pages


def corpus_stats(docs: list[Document]) -> dict[str, dict]:
    """Per genre: documents, characters, and share of all characters."""
    total = sum(len(d.text) for d in docs) or 1
    stats = {}
    for g in GENRES:
        chars = sum(len(d.text) for d in docs if d.genre == g)
        stats[g] = {"documents": sum(d.genre == g for d in docs), "characters": chars,
                    "share": round(chars / total, 4), "answered": sum(d.genre == g and d.answered for d in docs)}
    return stats


def _news(world: World) -> list[str]:
    rng = seeded_rng(world.config.seed, "news")
    out = []
    for _ in range(world.config.n_news):
        kind = rng.choice(("company", "company", "city", "city", "university"))
        if kind == "company":
            out.append(_company_news(rng, rng.choice(world.companies), world))
        elif kind == "city":
            out.append(_city_news(rng, rng.choice(world.cities), world))
        else:
            out.append(_university_news(rng, rng.choice(world.universities), world))
    return out


def _stories(world: World) -> list[str]:
    rng = seeded_rng(world.config.seed, "stories")
    names = _Names()
    return [_story(rng, world, names) for _ in range(world.config.n_stories)]


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

