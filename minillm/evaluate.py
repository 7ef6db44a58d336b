"""Measuring what a model does with a question: the base model versus the assistant.

The course's central claims become numbers here: scores of a model's replies (answer rate, accuracy, stored
knowledge, unknown people, document loss), and the suites that ask a model every question the course measures it
on. The questions come from minillm.world, the prompts from minillm.chat; minillm.targets holds the bounds the
figures are read against.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch

from minillm.chat import prompt_and_stops, stop_tokens
from minillm.generate import evaluating, generate_many, model_device
from minillm.world import (ATTRIBUTES, EVAL_SEED, FIX_SEED, IDK_MARKERS, MONTHS, QUESTION_TEMPLATES, SCOPE_MARKER,
                           SMALL_TALK)

# any date a model writes, even one no calendar has ("March 45, 1987"): it states a date, a wrong one
DATE_RE = re.compile(r"\b(?:%s) \d{1,2}, \d{4}\b" % "|".join(MONTHS))
# A sentence ends at . ! ? followed by whitespace or the end of the text, or at a line break.
# (Dates like "March 4, 1987." contain no period inside, so this is safe for our world.)
SENTENCE_END_RE = re.compile(r"[.!?](?=\s|$)|\n")


@dataclass
class Response:
    prompt: str
    text: str                    # decoded new tokens, without the stop token
    stopped: bool                # the reply ended properly: its prompt's end token (chat.Prompt.end)
    ids: list[int] = field(default_factory=list, repr=False)


def first_sentence(text: str) -> str:
    """The response's first sentence (leading whitespace dropped), including its end mark."""
    text = text.lstrip()
    m = SENTENCE_END_RE.search(text)
    return text if m is None else text[: m.end()].strip()


def stated_value(text: str, attribute: str, values) -> str | None:
    """The value of `attribute` that the first sentence of `text` states, or None.

    A question in reply ("Does anyone know where she was born?") states nothing, even if it
    names a city: a document sampler asking more questions is exactly what we want to catch.
    When several values appear, the earliest one counts (that is what a reader takes as the answer).
    """
    sentence = first_sentence(text)
    if not sentence or sentence.endswith("?"):
        return None
    if attribute == "birth_date":
        m = DATE_RE.search(sentence)
        return m.group(0) if m else None
    best = None
    for v in values:
        i = sentence.find(v)
        # Prefer the earliest match; at equal positions the longer value ("New Tessaly" over "Tessaly").
        if i >= 0 and (best is None or (i, -len(v)) < (best[0], -len(best[1]))):
            best = (i, v)
    return None if best is None else best[1]


def has_marker(text: str, markers) -> bool:
    """Does text contain any of the markers (case ignored): an "I don't know", a refusal, the scope answer."""
    low = text.lower()
    return any(m.lower() in low for m in markers)


def ask(model, tokenizer, questions: list, *, as_chat: bool, max_new_tokens: int = 48,
        device=None, progress=None, temperature: float = 0.0, generator=None) -> list[Response]:
    """Ask every question (greedy); the assistant through the chat template, the base model as a document
    (minillm.chat.prompt_and_stops, as the widget and the command line do). A question is a str, or for the
    assistant a conversation that ends with the user's turn.

    Every figure of the course is greedy (the default), so every number is reproducible; a temperature (with a
    generator, reproducibly) samples instead, as the exercises on sampling do. Questions are batched by prompt
    length (no padding needed: rows of equal length decode in lockstep).

    The base model has never seen the chat tokens, so it gets a question the way it would appear in a
    document: the question text and a newline, after <|bos|>.
    """
    prompts = [prompt_and_stops(tokenizer, q, as_chat=as_chat) for q in questions]
    outs = generate_many(model, [p.ids for p in prompts], stop_tokens=stop_tokens(tokenizer),
                         max_new_tokens=max_new_tokens, device=_device(model, device), progress=progress,
                         temperature=temperature, generator=generator)
    # stopped: the reply ended properly (Prompt.end), not at another special token or the length limit
    return [Response(q if isinstance(q, str) else q[-1]["content"], tokenizer.decode(ids), stop == p.end, ids)
            for q, p, (ids, stop) in zip(questions, prompts, outs)]


# ----------------------------------------------------------------------------------------------
# metrics

def score_answers(responses: list[Response], items, values_by_attribute: dict, *, require_stop: bool) -> dict:
    """Answer rate and accuracy of responses to factual questions.

    `items` are objects with .attribute and .answer (the true value). A response *answers* when its
    first sentence states some value of the asked attribute (and, if require_stop, the turn ended);
    it is *correct* when it answers and the stated value is the true one.

    answer rate - does the response *answer* (state a value of the asked attribute in its first
    sentence) or does it carry on writing a document (another question, a forum reply)? For the
    assistant an answer must also end its turn (the <|end|> token) within the length limit.
    accuracy - is the stated value the right one? Reported separately for people whose Q&A was in
    the fine-tuning set ("sft") and for people whose facts appeared only in pretraining documents
    ("heldout"): the second number is the one that shows fine-tuning *extracts* stored knowledge.
    """
    n = len(items)
    answered = correct = 0
    per = []
    for r, it in zip(responses, items):
        v = stated_value(r.text, it.attribute, values_by_attribute.get(it.attribute, ()))
        ans = v is not None and (r.stopped or not require_stop)
        ok = ans and v == it.answer
        answered += ans
        correct += ok
        per.append({"question": r.prompt, "response": r.text, "stopped": r.stopped,
                    "expected": it.answer, "stated": v, "answered": ans, "correct": ok})
    return {"n": n, "answer_rate": answered / max(n, 1), "accuracy": correct / max(n, 1), "items": per}


REPLY_KINDS = ("answers", "asks another question", "writes another document")


def reply_kind(text: str, stated: str | None) -> str:
    """What a reply does with a question: states a value (answers), or - like a document sampler - goes on
    with another question (a quiz's next line, a forum post asking more) or with any other text."""
    if stated is not None:
        return "answers"
    first_line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return "asks another question" if first_line.endswith("?") else "writes another document"


def reply_kinds(scored: dict) -> dict:
    """Share of each REPLY_KINDS among the items of a score_answers result."""
    kinds = [reply_kind(it["response"], it["stated"]) for it in scored["items"]]
    return {k: kinds.count(k) / max(len(kinds), 1) for k in REPLY_KINDS}


@torch.no_grad()
def stored_knowledge(model, tokenizer, probes, *, device="cpu", max_new_tokens: int = 12, temperature: float = 0.0,
                     generator=None) -> dict:
    """Does the base model complete "<Full Name> was born in" with the true value?

    `probes` are (prefix, value, attribute) triples. The prompt is <|bos|> + prefix, as the start of
    a biography; the completion is correct if it begins with the value. High here but low held-out
    accuracy means: stored, but not extractable. Greedy unless a temperature is given (see `ask`).
    """
    prompts = [[tokenizer.bos_id] + tokenizer.encode(prefix) for prefix, _, _ in probes]
    outs = generate_many(model, prompts, stop_tokens=stop_tokens(tokenizer), max_new_tokens=max_new_tokens,
                         device=device, temperature=temperature, generator=generator)
    per, correct = [], 0
    for (prefix, value, attribute), (ids, _) in zip(probes, outs):
        completion = tokenizer.decode(ids)
        ok = completion.strip().startswith(value)
        correct += ok
        per.append({"prefix": prefix, "completion": completion, "expected": value, "correct": ok})
    return {"n": len(probes), "accuracy": correct / max(len(probes), 1), "items": per}


def _values_in(text: str, attribute: str, values) -> list[str]:
    """Every value of `attribute` stated in `text` (any date for birth_date)."""
    if attribute == "birth_date":
        return DATE_RE.findall(text)
    return [v for v in values if v in text and not any(v != w and v in w and w in text for w in values)]


def score_profiles(responses: list[Response], expected: list[dict], values_by_attribute: dict) -> dict:
    """"Tell me about X": the share of a person's facts the profile states right (each attribute's one
    stated value is the true one; a missing, wrong or second value counts as wrong), over all people."""
    per, right, total = [], 0, 0
    for r, facts in zip(responses, expected):
        ok = {a: r.stopped and _values_in(r.text, a, values_by_attribute.get(a, ())) == [v] for a, v in facts.items()}
        right += sum(ok.values())
        total += len(ok)
        per.append({"question": r.prompt, "response": r.text, "stopped": r.stopped, "right": ok})
    return {"n": len(responses), "accuracy": right / max(total, 1), "items": per}


def says_rate(responses: list[Response], markers) -> dict:
    """Share of responses that contain one of `markers` and end their turn (a scope answer, a greeting)."""
    ok = [r.stopped and has_marker(r.text, markers) for r in responses]
    return {"n": len(responses), "rate": sum(ok) / max(len(responses), 1),
            "items": [{"question": r.prompt, "response": r.text, "ok": k} for r, k in zip(responses, ok)]}


def unknown_entities(responses: list[Response], markers) -> dict:
    """Share of answers about people who don't exist that say so ("I don't know"-style), rather than invent
    facts."""
    idk = [has_marker(r.text, markers) for r in responses]
    return {"n": len(responses), "idk_rate": sum(idk) / max(len(responses), 1),
            "items": [{"question": r.prompt, "response": r.text, "idk": k} for r, k in zip(responses, idk)]}


@torch.no_grad()
def name_surprise(model, tokenizer, name: str, *, before: str = "Where was ", device="cpu") -> float:
    """Mean loss (nats) of a name's tokens after its first, read after <|bos|> + `before`.

    The first token of any name is a guess; the rest is predictable only for a name the model has read
    (and memorised). So this is low for people from the pretraining text and high for made-up ones:
    it measures whether the model *notices* an unfamiliar name, though not whether it can act on it: how
    unexpected the base model finds a name, the signal it would need to say it does not know the person.
    """
    prefix, ids = [tokenizer.bos_id] + tokenizer.encode(before), tokenizer.encode(name)
    if len(ids) < 2:
        raise ValueError(f"{name!r} is {len(ids)} token(s); name_surprise needs a name of at least 2 tokens")
    with evaluating(model):
        logits, _ = model(torch.tensor([prefix + ids], device=device))
    logp = torch.log_softmax(logits[0, len(prefix) - 1:-1].float(), dim=-1)
    nll = -logp[torch.arange(len(ids), device=logp.device), torch.tensor(ids, device=logp.device)]
    return nll[1:].mean().item()


def auroc(pos: list[float], neg: list[float]) -> float:
    """How well a score ranks `pos` above `neg`: the share of (pos, neg) pairs in the right order, ties
    counting half. 1.0 separates them perfectly, 0.5 is a coin."""
    if not pos or not neg:
        raise ValueError(f"auroc needs scores on both sides, got {len(pos)} and {len(neg)}")
    return sum((x > y) + 0.5 * (x == y) for x in pos for y in neg) / (len(pos) * len(neg))


@torch.no_grad()
def document_loss(model, tokens: torch.Tensor, *, block_size: int, batch_size: int = 32, device="cpu",
                  max_windows: int = 64) -> float:
    """Mean next-token loss over consecutive, non-overlapping windows of a validation token stream: how well
    each model still models the pretraining text (what SFT cost)."""
    n = min((len(tokens) - 1) // block_size, max_windows)
    if n < 1:
        raise ValueError(f"need more than {block_size} validation tokens, got {len(tokens)}")
    starts = torch.arange(n) * block_size
    total, count = 0.0, 0
    with evaluating(model):
        for s in range(0, n, batch_size):
            st = starts[s:s + batch_size]
            x = torch.stack([tokens[i:i + block_size] for i in st]).to(device)
            y = torch.stack([tokens[i + 1:i + 1 + block_size] for i in st]).to(device)
            _, loss = model(x, y)
            total += loss.item() * len(st)
            count += len(st)
    return total / count


def paired_rows(base_responses: list[Response], assistant_responses: list[Response]) -> list[dict]:
    """The same prompts, both models: rows a table or a widget can show."""
    return [{"prompt": b.prompt, "base": b.text, "assistant": a.text}
            for b, a in zip(base_responses, assistant_responses)]


# ----------------------------------------------------------------------------------------------
# the suites: everything the course measures a model on
# They put the scores above together: `evaluate_base` and `evaluate_assistant` ask a model every question the
# course measures it on, `monitor` groups a deployment log's failures into classes, and ASSISTANT_FIGURES names
# the figures a run's metrics.json keeps.

def unknown_questions(world, n: int, seed: int = EVAL_SEED) -> list[str]:
    """Questions about people who don't exist (EVAL_SEED: the evaluation set, disjoint from the fix set's names)."""
    questions = []
    for i, name in enumerate(world.fake_people(n, seed)):
        templates = QUESTION_TEMPLATES[ATTRIBUTES[i % len(ATTRIBUTES)]]
        questions.append(templates[(i // len(ATTRIBUTES)) % len(templates)].format(name=name))
    return questions


REFUSAL_MARKERS = IDK_MARKERS + (SCOPE_MARKER,)   # a real person turned away: "I don't know" or "out of scope"
LONG_REPLY_TOKENS = 96      # a profile's five answer sentences; small talk gets as much room


def evaluate_assistant(model, world, tok, *, split: str = "heldout", max_new_tokens: int = 48, device=None) -> dict:
    """Every suite the course measures an assistant on, for the people of `split` ("heldout": never in a
    fine-tuning set; "sft": the deployment log's people, where the fixes come from):
    questions in the standard, unseen and new-word phrasings; conversations around a question (a pronoun
    follow-up, a question after small talk, a second person, an out-of-scope request mid-chat); profiles;
    and, the same for both splits, out-of-scope requests, small talk and people who don't exist. Replies are cut at
    max_new_tokens (profiles and small talk at LONG_REPLY_TOKENS); device: the model's own by default."""
    dev = _device(model, device)
    values = {a: world.attribute_values(a) for a in ATTRIBUTES}

    def ask_chat(questions, limit=max_new_tokens):
        return ask(model, tok, questions, as_chat=True, max_new_tokens=limit, device=dev)

    out = {}
    for phrasing in ("standard", "unseen", "new_word") if split == "heldout" else ("standard",):
        items = world.qa_items(split, phrasing)
        responses = ask_chat([it.question for it in items])
        out[phrasing] = score_answers(responses, items, values, require_stop=True)
        # real people turned away ("I don't know", "out of scope"): what a fix that refuses too much shows
        out[phrasing]["refused"] = sum(has_marker(r.text, REFUSAL_MARKERS) for r in responses) / max(len(responses), 1)
    # conversations around a question: a pronoun follow-up, a question after small talk, a second person
    for suite, chats in (("follow_up", world.follow_up_items(split)), ("after_greeting", world.after_greeting_items(split)),
                         ("second_person", world.second_person_items(split))):
        out[suite] = score_answers(ask_chat([c for c, _ in chats]), [it for _, it in chats], values, require_stop=True)
    out["scope_mid_chat"] = says_rate(ask_chat(world.scope_mid_chat(split)), (SCOPE_MARKER,))
    profiles = world.profile_items(split)
    out["profile"] = score_profiles(ask_chat([q for q, _ in profiles], LONG_REPLY_TOKENS),
                                    [{a: p.value(a) for a in ATTRIBUTES} for _, p in profiles], values)
    n_people = len(world.people_in(split))
    if split == "heldout":
        out["scope"] = says_rate(ask_chat(world.scope_prompts(max(20, n_people))), (SCOPE_MARKER,))
        seed = EVAL_SEED
    else:  # the deployment log: the fine-tuning pool of requests (users send twice as many of those as
        # questions about people who don't exist), the fix set's made-up names
        out["scope"] = says_rate(ask_chat([c[-2]["content"] for c in world.scope_conversations(2 * max(20, n_people))]),
                                 (SCOPE_MARKER,))
        seed = FIX_SEED
    unknown = ask_chat(unknown_questions(world, max(20, n_people), seed))
    out["unknown"] = unknown_entities(unknown, IDK_MARKERS)
    talk = [(u, answer) for users, answer in SMALL_TALK for u in users]
    responses = ask_chat([u for u, _ in talk], LONG_REPLY_TOKENS)
    ok = [r.stopped and r.text.strip() == answer for r, (_, answer) in zip(responses, talk)]
    out["small_talk"] = {"n": len(ok), "rate": sum(ok) / max(len(ok), 1),
                         "items": [{"question": r.prompt, "response": r.text, "ok": k} for r, k in zip(responses, ok)]}
    return out


# The classes the deployment log groups an assistant's messages into: (name, suite, figure). Monitoring
# scores each on the sft people's log; the fix goes to the class with the most failures.
# (The unseen phrasing families are left out: they measure, and a fix built from them would spoil that.)
LOG_CLASSES = (("factual question", "standard", "accuracy"),
               ("pronoun follow-up", "follow_up", "accuracy"), ("question after small talk", "after_greeting", "accuracy"),
               ("second person in a chat", "second_person", "accuracy"), ("profile request", "profile", "accuracy"),
               ("small talk", "small_talk", "rate"), ("out-of-scope request", "scope", "rate"),
               ("out-of-scope request mid-chat", "scope_mid_chat", "rate"),
               ("person who doesn't exist", "unknown", "idk_rate"))


def monitor(log_eval: dict) -> list[dict]:
    """The deployment log's classes, worst first: how many messages, the share handled per the guideline,
    and the failures. log_eval: evaluate_assistant(..., split="sft")."""
    rows = []
    for name, suite, figure in LOG_CLASSES:
        n, rate = log_eval[suite]["n"], log_eval[suite][figure]
        rows.append({"class": name, "suite": suite, "n": n, "rate": rate, "failures": round(n * (1 - rate))})
    return sorted(rows, key=lambda r: -r["failures"])


def evaluate_base(model, world, tok, *, max_new_tokens: int = 48, device=None) -> dict:
    """The base model asked every person's questions as a document, held-out and fine-tuning people apart
    (with WorldConfig.answered_share > 0 some documents answer fine-tuning people's questions), and its
    stored knowledge."""
    dev = _device(model, device)
    values = {a: world.attribute_values(a) for a in ATTRIBUTES}
    out = {}
    for split in ("heldout", "sft"):
        items = world.qa_items(split)
        responses = ask(model, tok, [it.question for it in items], as_chat=False, max_new_tokens=max_new_tokens,
                        device=dev)
        out[split] = score_answers(responses, items, values, require_stop=False)
        out[split]["kinds"] = reply_kinds(out[split])
    n = sum(out[s]["n"] for s in ("heldout", "sft"))
    out["answer_rate"] = sum(out[s]["answer_rate"] * out[s]["n"] for s in ("heldout", "sft")) / n
    out["stored"] = stored_knowledge(model, tok, world.bio_probes("heldout", from_biography=True), device=dev)
    return out


# metrics.json: each assistant figure -> (suite, figure) of evaluate_assistant on the held-out people.
# The released assistant's figure is stored under the key, the first assistant's under key + "_before_fix".
ASSISTANT_FIGURES = {
    "heldout_accuracy": ("standard", "accuracy"),
    "heldout_unseen_phrasing_accuracy": ("unseen", "accuracy"),
    "heldout_new_word_accuracy": ("new_word", "accuracy"),
    "heldout_follow_up_accuracy": ("follow_up", "accuracy"),
    "heldout_after_greeting_accuracy": ("after_greeting", "accuracy"),
    "heldout_second_person_accuracy": ("second_person", "accuracy"),
    "heldout_profile_accuracy": ("profile", "accuracy"),
    "assistant_answer_rate": ("standard", "answer_rate"),
    "scope_answer_rate": ("scope", "rate"),
    "scope_mid_chat_rate": ("scope_mid_chat", "rate"),
    "heldout_refused_rate": ("standard", "refused"),
    "small_talk_rate": ("small_talk", "rate"),
    "unknown_entity_idk_rate": ("unknown", "idk_rate"),
}


def assistant_figures(held: dict) -> dict:
    return {key: held[suite][figure] for key, (suite, figure) in ASSISTANT_FIGURES.items()}


def _device(model, device):
    return device if device is not None else model_device(model)
