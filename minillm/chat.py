"""
The chat template and the loss mask: how a conversation becomes training data for an assistant, and the
same template at inference (a prompt, where a reply ends, the reply as it streams in).

Conversations and special tokens live here: minillm.generate below knows token ids only, minillm.data batches
what `render` returns, and the widget and the command line talk to a model through this module.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Iterator

import torch

from minillm.generate import model_device

ROLES = ("user", "assistant")


def _validate(conversation) -> None:
    if not isinstance(conversation, (list, tuple)):
        raise TypeError(f"a conversation is a list of {{'role': ..., 'content': ...}} dicts, got {type(conversation).__name__}")
    for i, turn in enumerate(conversation):
        if not isinstance(turn, dict) or "role" not in turn or "content" not in turn:
            raise ValueError(f"turn {i} must be a dict with keys 'role' and 'content', got {turn!r}")
        if turn["role"] not in ROLES:
            raise ValueError(f"turn {i} has role {turn['role']!r}; a role must be 'user' or 'assistant'")
        if not isinstance(turn["content"], str):
            raise TypeError(f"turn {i} content must be a str, got {type(turn['content']).__name__}")


def render(tokenizer, conversation) -> tuple[list[int], list[int]]:
    """Conversation -> (ids, mask): the template below, mask 1 exactly on what the assistant must learn to say.

    A GPT only ever sees one stream of token ids. To turn a conversation into such a stream we wrap each
    turn in special tokens that ordinary text can never produce (see minillm.tokenizer):

        <|bos|> <|user|> How tall is Mount Aro? <|end|> <|assistant|> It is 3,120 metres. <|end|>

    `render` returns those ids and, beside them, a mask with one 0/1 per id:

        mask = 1 on the assistant's content tokens and on the assistant's <|end|>
        mask = 0 on <|bos|>, the role tokens, and everything the user wrote

    Why only the assistant's tokens are trained on. Fine-tuning keeps next-token prediction; the mask only
    says *which* predictions count in the loss. We want the model to learn to produce answers, not to
    produce questions: the user's text is the condition, the assistant's reply is the target. Training on
    the user's tokens too would spend the model's capacity on imitating users (and on predicting a prompt
    it is always given anyway); in a small model this visibly hurts answer quality. The assistant's <|end|>
    is trained on because predicting it is how the model learns to *stop* -- without it, generation runs on
    into an invented next user turn. The <|assistant|> token itself is not a target: at inference time we
    put it there ourselves (`prompt_ids`), so the model never has to predict it.
    """
    _validate(conversation)
    ids, mask = [tokenizer.bos_id], [0]
    for turn in conversation:
        # User text is encoded with `tokenizer.encode`, which treats "<|end|>" typed by a user as plain text.
        # If it did not, a user could close their own turn and write the assistant's reply for it (a template
        # injection); the tests check that such text produces no special ids at all.
        content = tokenizer.encode(turn["content"])
        if turn["role"] == "user":
            ids += [tokenizer.user_id] + content + [tokenizer.end_id]
            mask += [0] * (len(content) + 2)
        else:
            ids += [tokenizer.assistant_id] + content + [tokenizer.end_id]
            mask += [0] + [1] * (len(content) + 1)      # the <|end|> too: that is how it learns to stop
    return ids, mask


def prompt_ids(tokenizer, conversation) -> list[int]:
    """The ids to feed the model to get the next assistant reply: render(...) + <|assistant|>."""
    _validate(conversation)
    if not conversation or conversation[-1]["role"] != "user":
        raise ValueError("prompt_ids needs a conversation that ends with a user turn (the question to answer)")
    ids, _ = render(tokenizer, conversation)
    return ids + [tokenizer.assistant_id]


BASE_MODEL = "base"     # a run's pretrained model; the others (assistant_v1, assistant, ...) were fine-tuned on chats


def is_chat_model(name: str) -> bool:
    """Does the run's model `name` read the chat template? Every model of a run but the base one does."""
    return name != BASE_MODEL


def end_token(as_chat: bool) -> str:
    """Where a reply ends properly: the assistant's <|end|>, or for the base model <|bos|> (a document ends
    where the next one starts)."""
    return "<|end|>" if as_chat else "<|bos|>"


def base_prompt(tokenizer, question: str) -> list[int]:
    """A question as document text: <|bos|> question newline (the base model knows no chat tokens)."""
    return [tokenizer.bos_id] + tokenizer.encode(question + "\n")


def stop_tokens(tokenizer) -> tuple[int, ...]:
    """Every special token: any of them ends a reply (see prompt_and_stops)."""
    return tuple(sorted(tokenizer.special_tokens.values()))


@dataclass(frozen=True)
class Prompt:
    ids: list[int]             # what the model reads
    stops: tuple[int, ...]     # any of these ends the reply; it is never shown as text
    dropped_turns: int = 0     # how many of the oldest turns did not fit the context
    max_new_tokens: int = 0    # the reply's length limit, after reply_room
    end: int | None = None     # the stop that ends a reply properly: <|end|> (a turn), <|bos|> (a document)


def reply_room(block_size: int, max_new_tokens: int) -> int:
    """max_new_tokens, or half the context when it would leave no room at all for the prompt."""
    return block_size // 2 if max_new_tokens >= block_size else max_new_tokens


def prompt_and_stops(tokenizer, prompt, *, as_chat: bool, block_size: int | None = None,
                     max_new_tokens: int = 0) -> Prompt:
    """A str or a conversation (ending with the user's turn) -> the Prompt one model reads.

    At inference time this builds what a model reads -- the chat template for the assistant, `base_prompt`
    (a document) for the base model -- and the tokens that end its reply.

    Both formats stop at every special token: the assistant's turn ends at <|end|>, and a <|user|>,
    <|assistant|> or <|bos|> means it ran on past its turn; the base model's documents are separated
    by <|bos|> and it never learned the chat tokens. Prompt.end is the one stop that ends a reply
    properly (<|end|>, <|bos|>): the evaluation counts only that one as the model ending its reply, so an
    assistant whose turn runs into <|bos|> has not learned to stop. With block_size, the prompt plus the reply must
    fit the context: the oldest whole turns are dropped (the <|bos|> and the newest user turn always
    stay; a turn cut in half would make the model answer a question nobody asked), and a newest message
    that alone does not fit is a ValueError.
    """
    stops, end = stop_tokens(tokenizer), tokenizer.special_tokens[end_token(as_chat)]
    if not as_chat:   # a document sampler has no conversation: it reads the last message
        text = prompt if isinstance(prompt, str) else prompt[-1]["content"]
        turns, ids = [], base_prompt(tokenizer, text)
        overhead = 1                                        # <|bos|>
    else:
        turns = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
        ids = prompt_ids(tokenizer, turns)
        overhead = 4                                        # <|bos|> <|user|> ... <|end|> <|assistant|>
    if block_size is None:
        return Prompt(ids, stops, 0, max_new_tokens, end)
    max_new_tokens = reply_room(block_size, max_new_tokens)
    budget = block_size - max_new_tokens
    # A turn costs its content plus <|role|> and <|end|>; render is a plain concatenation of turns.
    sizes = [len(tokenizer.encode(t["content"])) + 2 for t in turns]
    total, start = len(ids), 0
    while total > budget and start < len(turns) - 1:
        start += 1                                          # drop one more of the oldest turns
        total -= sizes[start - 1]
        while start < len(turns) - 1 and turns[start]["role"] != "user":
            start += 1                                      # ... and the rest of its exchange
            total -= sizes[start - 1]
    if total > budget:
        raise ValueError(f"your message is {total - overhead} tokens; this model reads at most "
                         f"{max(budget - overhead, 0)}: shorten it")
    ids = prompt_ids(tokenizer, turns[start:]) if start else ids
    return Prompt(ids, stops, start, max_new_tokens, end)


def show_mask(tokenizer, ids, mask) -> str:
    """Tokens as text with the trained-on ones (mask 1) in [brackets] (minillm.plots.chat_template draws them)."""
    if len(ids) != len(mask):
        raise ValueError(f"ids and mask must have the same length, got {len(ids)} and {len(mask)}")
    specials = set(tokenizer.special_tokens.values())
    pieces = []
    for i, m in zip(ids, mask):
        text = tokenizer.decode([i]) if i in specials else tokenizer.token_bytes(i).decode("utf-8", "replace")
        pieces.append(f"[{text}]" if m else text)
    return "".join(pieces)


# ----------------------------------------------------------------------------------------------
# talking to a model: a reply as it streams in
# `stream_reply` and `reply` talk to a model with the prompt of prompt_and_stops (the widget and the command
# line do), `print_stream` shows a reply in a terminal as it grows.

def stream_prompt(model, tok, prompt: Prompt, *, temperature: float = 0.0, top_k: int | None = None,
                  seed: int | None = 0) -> Iterator[tuple[str, bool]]:
    """Yield (text so far, stopped) after every new token of the reply to a ready Prompt; the last item
    says whether the model stopped by itself (a stop token, never part of the text) rather than at
    prompt.max_new_tokens. Greedy when temperature == 0."""
    device = model_device(model)
    idx = torch.tensor([prompt.ids], dtype=torch.long, device=device)
    generator = None
    if temperature > 0 and seed is not None:
        generator = torch.Generator(device=device).manual_seed(seed)
    new: list[int] = []
    for t in model.stream(idx, prompt.max_new_tokens, temperature=temperature, top_k=top_k,
                          stop_tokens=prompt.stops, generator=generator):
        if t in prompt.stops:
            yield tok.decode(new), True
            return
        new.append(t)
        yield tok.decode(new), False
    if not new:
        yield "", False


def stream_reply(model, tok, prompt, *, as_chat: bool, max_new_tokens: int = 48, temperature: float = 0.0,
                 top_k: int | None = None, seed: int | None = 0) -> Iterator[tuple[str, bool]]:
    """Yield (text so far, stopped) after every new token (see stream_prompt). `prompt` is a str or a
    conversation; one longer than the model's context loses its oldest turns (prompt_and_stops)."""
    block_size = getattr(getattr(model, "config", None), "block_size", None)
    p = prompt_and_stops(tok, prompt, as_chat=as_chat, block_size=block_size, max_new_tokens=max_new_tokens)
    yield from stream_prompt(model, tok, p, temperature=temperature, top_k=top_k, seed=seed)


def print_stream(steps, file=None) -> tuple[str, bool]:
    """Print a stream_reply/stream_prompt stream as it grows, and a newline at the end -> (text, stopped).
    A character of several UTF-8 bytes can span tokens: until its last byte arrives the text ends in
    U+FFFD, so that part waits for the next token instead of printing a stray replacement mark."""
    file = file or sys.stdout
    text, stopped, printed = "", False, ""
    for text, stopped in steps:
        if not text.endswith("\ufffd"):
            print(text[len(printed):], end="", flush=True, file=file)
            printed = text
    print(text[len(printed):], flush=True, file=file)
    return text, stopped


def reply(model, tok, prompt, *, as_chat: bool = True, **kwargs) -> str:
    """The whole reply as text (see stream_reply for the arguments)."""
    text = ""
    for text, _ in stream_reply(model, tok, prompt, as_chat=as_chat, **kwargs):
        pass
    return text
