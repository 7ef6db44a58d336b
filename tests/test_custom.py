"""A student's own guideline becomes an SFT set: sft people only, the world's question phrasings,
the student's answers; and the style evaluation scores answers with the student's own test."""
import json

import pytest
import torch

from minillm import chat as chat_template
from minillm import custom
from minillm.model import GPT, GPTConfig
from minillm.tokenizer import Tokenizer
from minillm.config import world_config
from minillm.world import ATTRIBUTES, FIX_SEED, QUESTION_TEMPLATES, World


@pytest.fixture(scope="module")
def world():
    return World.generate(world_config("smoke"))


def as_json(person, attribute, value):
    return json.dumps({"person": person.name, "attribute": attribute, "value": value})


def test_every_sft_fact_is_asked_in_the_worlds_phrasings_and_answered_in_your_style(world):
    convs = custom.styled_conversations(world, as_json, per_fact=2)
    sft = world.people_in("sft")
    assert len(convs) == len(sft) * len(ATTRIBUTES) * 2
    heldout = {p.name for p in world.people_in("heldout")}
    seen = set()
    for conv in convs:
        assert [t["role"] for t in conv] == ["user", "assistant"]
        answer = json.loads(conv[1]["content"])
        person = world.person(answer["person"])
        assert person.split == "sft" and person.name not in heldout
        assert answer["value"] == person.value(answer["attribute"])
        phrasings = {q.format(name=person.name) for q in QUESTION_TEMPLATES[answer["attribute"]]}
        assert conv[0]["content"] in phrasings
        seen.add((person.name, answer["attribute"], conv[0]["content"]))
    assert len(seen) == len(convs)     # two different phrasings per fact


def test_options_unknown_people_extra_and_n(world):
    extra = [[{"role": "user", "content": "Hello!"}, {"role": "assistant", "content": "Arr, ahoy!"}]]
    convs = custom.styled_conversations(world, as_json, per_fact=1, unknown_fn=lambda name, a: f"Never heard of {name}.",
                                        n_unknown=5, extra=extra)
    fakes = world.fake_people(5, FIX_SEED)
    idk = [c for c in convs if c[1]["content"].startswith("Never heard of")]
    assert sorted(c[1]["content"][len("Never heard of "):-1] for c in idk) == sorted(fakes)
    assert extra[0] in convs
    assert len(convs) == len(world.people_in("sft")) * len(ATTRIBUTES) + 5 + 1
    assert len(custom.styled_conversations(world, as_json, n=7)) == 7
    # deterministic: the same guideline gives the same set, and the fingerprint follows the content
    assert custom.styled_conversations(world, as_json) == custom.styled_conversations(world, as_json)
    a = custom.fingerprint(custom.styled_conversations(world, as_json))
    b = custom.fingerprint(custom.styled_conversations(world, lambda p, at, v: f"{p.name}: {v}"))
    assert a != b and len(a) == 8


def test_a_bad_answer_function_is_named(world):
    with pytest.raises(ValueError, match="non-empty str"):
        custom.styled_conversations(world, lambda p, a, v: None)
    with pytest.raises(ValueError, match="n must be"):
        custom.styled_conversations(world, as_json, n=0)


def test_the_conversations_render_with_the_chat_template(world):
    tok = Tokenizer.train(world.documents()[:50], 256 + 4 + 16)
    for conv in custom.styled_conversations(world, as_json, n=5):
        ids, mask = chat_template.render(tok, conv)
        assert tok.decode([i for i, m in zip(ids, mask) if m]).startswith(conv[1]["content"])


def test_evaluate_style_uses_your_test_and_survives_a_crashing_one(world):
    tok = Tokenizer.train(world.documents()[:50], 256 + 4 + 16)
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=64, n_layer=1, n_head=2, n_embd=16))
    items = world.qa_items("heldout")[:4]
    everything = custom.evaluate_style(model, tok, items, lambda text, it: True, max_new_tokens=4)
    assert everything["n"] == 4 and everything["rate"] == 1.0 and 0 <= everything["stop_rate"] <= 1
    assert [r["expected"] for r in everything["items"]] == [it.answer for it in items]
    crashing = custom.evaluate_style(model, tok, items, lambda text, it: json.loads(text)["value"] == it.answer,
                                     max_new_tokens=4)
    assert crashing["rate"] == 0.0
