"""Evaluation metrics on hand-made responses: a correct answer, a wrong one, a rambling one, a question
in reply, an "I don't know", and a turn that never ended."""
from dataclasses import dataclass

import pytest
import torch

from minillm import evaluate as ev
from minillm.generate import generate_many
from minillm.model import GPT, GPTConfig
from minillm.world import IDK_MARKERS


@dataclass
class Item:
    attribute: str
    answer: str


CITIES = ["Tessaly", "New Tessaly", "Jenkovik"]
VALUES = {"birth_city": CITIES, "birth_date": []}


def R(text, stopped=True):
    return ev.Response("q", text, stopped)


def test_first_sentence():
    assert ev.first_sentence("  Kalin Moravo was born in Tessaly. She studied law.") == "Kalin Moravo was born in Tessaly."
    assert ev.first_sentence("Where was she born?\nI wonder") == "Where was she born?"
    assert ev.first_sentence("He was born on March 4, 1987. He") == "He was born on March 4, 1987."
    assert ev.first_sentence("no end mark") == "no end mark"


def test_stated_value_prefers_earliest_and_longest():
    assert ev.stated_value("X was born in New Tessaly.", "birth_city", CITIES) == "New Tessaly"
    assert ev.stated_value("X was born in Jenkovik, not Tessaly.", "birth_city", CITIES) == "Jenkovik"
    assert ev.stated_value("Was X born in Tessaly?", "birth_city", CITIES) is None
    assert ev.stated_value("X was born on March 4, 1987.", "birth_date", []) == "March 4, 1987"
    assert ev.stated_value("X was born in 1987.", "birth_date", []) is None


def test_score_answers_on_hand_made_responses():
    items = [Item("birth_city", "Tessaly")] * 6
    responses = [
        R("Kalin Moravo was born in Tessaly."),                       # correct
        R("Kalin Moravo was born in Jenkovik."),                      # answered, wrong
        R("Does anyone know where Kalin Moravo was born? Tessaly."),  # a question in reply: no answer
        R("I was wondering the same thing. She lived in Tessaly."),   # rambling: first sentence states nothing
        R("I don't have any information about Kalin Moravo."),        # I don't know
        R("Kalin Moravo was born in Tessaly. She", stopped=False),    # right value, but the turn never ended
    ]
    s = ev.score_answers(responses, items, VALUES, require_stop=True)
    assert [x["answered"] for x in s["items"]] == [True, True, False, False, False, False]
    assert [x["correct"] for x in s["items"]] == [True, False, False, False, False, False]
    assert s["answer_rate"] == pytest.approx(2 / 6)
    assert s["accuracy"] == pytest.approx(1 / 6)
    # without the end-of-turn requirement (the base model), the last one counts
    s = ev.score_answers(responses, items, VALUES, require_stop=False)
    assert s["accuracy"] == pytest.approx(2 / 6)


def test_unknown_entities():
    rs = [R("I don't know who Makan Vakadus is, so I can't say where they were born."),
          R("Makan Vakadus was born in Tessaly.")]
    u = ev.unknown_entities(rs, IDK_MARKERS)
    assert u["idk_rate"] == 0.5 and [x["idk"] for x in u["items"]] == [True, False]


class FakeTok:
    bos_id, end_id = 0, 1

    def encode(self, s):
        return [2 + (ord(c) % 20) for c in s]

    def decode(self, ids):
        return " ".join(map(str, ids))


def test_generate_many_batches_by_length_and_matches_single_rows():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=24, block_size=32, n_layer=1, n_head=2, n_embd=16))
    prompts = [[0, 3, 4], [0, 5], [0, 6, 7], [0, 8]]
    batched = generate_many(model, prompts, stop_tokens=(1,), max_new_tokens=6)
    single = [generate_many(model, [p], stop_tokens=(1,), max_new_tokens=6)[0] for p in prompts]
    assert batched == single
    for ids, stop in batched:
        assert 1 not in ids and (stop == 1 or (stop is None and len(ids) == 6))


def test_document_loss_needs_enough_tokens():
    model = GPT(GPTConfig(vocab_size=24, block_size=8, n_layer=1, n_head=2, n_embd=16))
    with pytest.raises(ValueError, match="need more than 8 validation tokens"):
        ev.document_loss(model, torch.arange(8) % 24, block_size=8)
    loss = ev.document_loss(model, torch.arange(100) % 24, block_size=8)
    assert 2.0 < loss < 4.5   # about ln(24) = 3.18 for an untrained model


def test_name_surprise_is_the_models_loss_on_the_name_after_its_first_token():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=24, block_size=32, n_layer=1, n_head=2, n_embd=16))
    tok = FakeTok()
    prefix, name = [tok.bos_id] + tok.encode("Who is "), tok.encode("Kalin")
    # the reference: the model's own masked loss, every target ignored (-1) but the name's 2nd..last token
    x = torch.tensor([prefix + name[:-1]])
    y = torch.tensor([[-1] * len(prefix) + name[1:]])
    _, loss = model(x, y)
    assert ev.name_surprise(model, tok, "Kalin", before="Who is ") == pytest.approx(loss.item(), rel=1e-5)
    with pytest.raises(ValueError, match=r"'K' is 1 token\(s\); name_surprise needs a name of at least 2 tokens"):
        ev.name_surprise(model, tok, "K")


def test_auroc_counts_pairs_ranked_right_and_ties_as_half():
    assert ev.auroc([2.0, 3.0], [1.0]) == 1.0
    assert ev.auroc([0.0], [1.0, 2.0]) == 0.0
    assert ev.auroc([1.0, 3.0], [1.0, 2.0]) == pytest.approx((0.5 + 0 + 1 + 1) / 4)
    with pytest.raises(ValueError, match="auroc needs scores on both sides, got 0 and 1"):
        ev.auroc([], [1.0])


def test_reply_kinds_tell_answers_from_more_questions_and_other_text():
    assert ev.reply_kind("She was born in Tessaly.", "Tessaly") == "answers"
    assert ev.reply_kind("\n2. When was Kalin Moravo born?\n3. ...", None) == "asks another question"
    assert ev.reply_kind("posted by bluefox12\nDoes anyone know?", None) == "writes another document"
    assert ev.reply_kind("", None) == "writes another document"
    scored = {"items": [{"response": "She was born in Tessaly.", "stated": "Tessaly"},
                        {"response": "Where did she study?", "stated": None},
                        {"response": "posted by owl", "stated": None},
                        {"response": "Also, where?", "stated": None}]}
    assert ev.reply_kinds(scored) == {"answers": 0.25, "asks another question": 0.5, "writes another document": 0.25}


def test_a_reply_ends_properly_only_at_its_own_end_token(monkeypatch):
    """Generation stops at any special token (nothing after it is the reply), but only <|end|> (the
    assistant) or <|bos|> (a document) counts as the model ending its reply: an assistant that runs into
    <|bos|> has not learned to stop."""
    from minillm.tokenizer import Tokenizer
    tok = Tokenizer.train("Where was Kalin Moravo born? She was born in Tessaly. " * 10, 256 + 4 + 8)
    ids = tok.encode("She was born in Tessaly.")
    canned = [(ids, tok.end_id), (ids, tok.bos_id), (ids, tok.user_id), (ids, None)]
    monkeypatch.setattr(ev, "generate_many", lambda model, prompts, **kw: canned[:len(prompts)])
    chat = ev.ask(None, tok, ["Where was Kalin Moravo born?"] * 4, as_chat=True, device="cpu")   # no model: canned replies
    assert [r.stopped for r in chat] == [True, False, False, False]
    assert {r.text for r in chat} == {"She was born in Tessaly."}
    document = ev.ask(None, tok, ["Where was Kalin Moravo born?"] * 4, as_chat=False, device="cpu")
    assert [r.stopped for r in document] == [False, True, False, False]
