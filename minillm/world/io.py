"""The world on disk: json and jsonl files under data/, written by World.save and read by World.load.

A saved world is the configuration and the entities; everything else in the files (corpus, conversations,
questions) is derived from them and regenerated on load, so editing people.jsonl changes what follows.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from minillm.world.entities import (EVAL_SEED, FIX_SEED, SPLITS, WORLD_NAME, City, Company, Country, Person,
                                    University, WorldConfig)

if TYPE_CHECKING:
    from minillm.world import World


def save(world: World, directory, *, n_unknown: int | None = None) -> Path:
    """Write the world and every derived set as json/jsonl under `directory`; returns the directory.
    Files: world.json (config + entities), people.jsonl, corpus.jsonl, sft.jsonl, qa_sft.jsonl,
    qa_heldout.jsonl, probes_heldout.jsonl, scope_fix.jsonl, unknown_fix.jsonl (seed FIX_SEED),
    fake_people_eval.json (seed EVAL_SEED)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    n_unknown = n_unknown if n_unknown is not None else world.default_unknown_count()
    entities = {"world_name": WORLD_NAME, "config": asdict(world.config), "majors": world.majors,
                "countries": [asdict(x) for x in world.countries], "cities": [asdict(x) for x in world.cities],
                "universities": [asdict(x) for x in world.universities],
                "companies": [asdict(x) for x in world.companies]}
    (d / "world.json").write_text(json.dumps(entities, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    _write_jsonl(d / "people.jsonl", [asdict(p) for p in world.people])
    _write_jsonl(d / "corpus.jsonl", [asdict(x) for x in world.corpus()])
    first_set = world.sft_conversations()
    _write_jsonl(d / "sft.jsonl", [{"messages": c} for c in first_set])
    for split in SPLITS:
        _write_jsonl(d / f"qa_{split}.jsonl", [asdict(q) for q in world.qa_items(split)])
    _write_jsonl(d / "probes_heldout.jsonl", [{"prefix": p, "value": v, "attribute": a}
                                             for p, v, a in world.bio_probes("heldout")])
    _write_jsonl(d / "scope_fix.jsonl", [{"messages": c}
                                         for c in world.scope_conversations(world.default_scope_count(first_set))])
    _write_jsonl(d / "unknown_fix.jsonl", [{"messages": c}
                                           for c in world.unknown_person_conversations(n_unknown, FIX_SEED)])
    (d / "fake_people_eval.json").write_text(
        json.dumps(world.fake_people(n_unknown, EVAL_SEED), indent=1) + "\n", encoding="utf-8")
    return d


def read_world(directory) -> tuple:
    """(config, countries, cities, universities, companies, majors, people) of a world written by save()."""
    d = Path(directory)
    for f in ("world.json", "people.jsonl"):
        if not (d / f).exists():
            raise FileNotFoundError(f"{d / f} not found: write the world first with World.generate(...).save({str(d)!r})")
    w = json.loads((d / "world.json").read_text(encoding="utf-8"))
    return (WorldConfig(**w["config"]), [Country(**x) for x in w["countries"]],
            [City(**x) for x in w["cities"]], [University(**x) for x in w["universities"]],
            [Company(**x) for x in w["companies"]], list(w["majors"]),
            [Person(**x) for x in read_jsonl(d / "people.jsonl")])


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
