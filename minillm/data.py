"""The data of both training phases: the corpus as token streams, pretraining windows, masked SFT
conversations, and the mix of the two that fine-tuning trains on.

Both phases train the same thing, next-token prediction; only the data differs. Here text and conversations
become batches of ids: minillm.world writes the documents and the conversations, minillm.chat renders a
conversation, and the training loop (minillm.train) calls the `get_batch` functions made here.
"""
from __future__ import annotations

import torch

from minillm.chat import render

VAL_EVERY = 20   # every 20th non-biography document is held out for the document loss


# ----------------------------------------------------------------------------------------------
# the corpus as token streams: the world's documents, a held-out share of the non-biographies set aside for the
# validation loss, each split tokenised once into one stream of ids with <|bos|> before every document

def split_documents(world) -> tuple[list[str], list[str]]:
    """Pretraining documents and held-out validation documents (never biographies, so every fact
    keeps all its biographies even with one per person)."""
    train_docs, val_docs = [], []
    k = 0
    for doc in world.corpus():
        if doc.genre != "biography":
            k += 1
            if k % VAL_EVERY == 0:
                val_docs.append(doc.text)
                continue
        train_docs.append(doc.text)
    return train_docs, val_docs


def token_stream(tok, docs: list[str]) -> torch.Tensor:
    """Documents as one stream of ids, each opened by <|bos|> (so the model learns where documents start)."""
    ids: list[int] = []
    for d in docs:
        ids.append(tok.bos_id)
        ids.extend(tok.encode(d))
    ids.append(tok.bos_id)
    return torch.tensor(ids, dtype=torch.long)


_STREAMS: dict = {}   # (id(world), id(tok)) -> (world, tok, streams); holding both keeps their ids unique


def corpus_tokens(world, tok) -> tuple[torch.Tensor, torch.Tensor]:
    """(training stream, validation stream) of the world's corpus. Tokenising is the slow part of loading a
    run, and every stage needs the streams, so they are made once per (world, tokenizer) and kept."""
    key = (id(world), id(tok))
    if key not in _STREAMS:
        if len(_STREAMS) >= 4:
            _STREAMS.pop(next(iter(_STREAMS)))
        train_docs, val_docs = split_documents(world)
        _STREAMS[key] = (world, tok, (token_stream(tok, train_docs), token_stream(tok, val_docs)))
    return _STREAMS[key][2]


# ----------------------------------------------------------------------------------------------
# batches
# The batch functions draw only from the `torch.Generator` they are given, and `pretrain_batches` /
# `sft_batches` seed one per batch index, so batch i is a pure function of (seed, i); the training loop
# relies on that for exact resume.


def pretrain_batch(tokens: torch.Tensor, batch_size: int, block_size: int, generator: torch.Generator):
    """Random windows of the token stream -> (x, y), both (batch_size, block_size) int64, y = x shifted by one.

    Pretraining: the corpus is one long stream of token ids. A batch is `batch_size` random windows
    of `block_size + 1` tokens; x is the window without its last token, y without its first, so the
    model learns to predict every token from the ones before it."""
    tokens = torch.as_tensor(tokens)  # a numpy array of ids works too
    if tokens.ndim != 1:
        raise ValueError(f"tokens must be a 1-D stream of ids, got shape {tuple(tokens.shape)}")
    if len(tokens) <= block_size:
        raise ValueError(
            f"the token stream has {len(tokens)} tokens but a window needs block_size + 1 = {block_size + 1}; "
            "use more text or a smaller block_size"
        )
    starts = torch.randint(len(tokens) - block_size, (batch_size,), generator=generator)
    # unfold is a view of every window; indexing it copies only the chosen ones
    windows = tokens.unfold(0, block_size + 1, 1)[starts].long()
    return windows[:, :-1].contiguous(), windows[:, 1:].contiguous()


def sft_batch(examples, batch_size: int, block_size: int, generator: torch.Generator, pad_id: int = 0,
              length_pool: int = 0, order: list[int] | None = None):
    """Sample `batch_size` (ids, mask) examples -> (x, y) right-padded to the longest one.

    Examples longer than block_size + 1 tokens are truncated (the end is cut). y is -1 wherever the
    target token is not the assistant's (mask 0) or is padding.

    Each example is a rendered conversation (ids, mask) from `chat.render`, mask = 1 on the
    assistant's tokens. Targets where the mask is 0 (the user's words, role tokens) and padding
    become -1, which the model's cross-entropy ignores: the model still *reads* the question but is
    only trained to *write* the answer. A row holds one conversation (here), or several packed one
    after another (`packed_sft_batch`).

    length_pool > 0 groups by length: one example drawn at random, the rest from the `length_pool`
    examples nearest to it in length. Every padded position is compute spent on nothing; with
    conversations of 20 to 120 tokens a random batch is about a fifth padding, a grouped one almost none,
    and it is only as long as its examples, so a fine-tuning step costs less. `order`: length_order(examples),
    when the caller keeps it (sft_batches does, so the sort is not repeated every step).
    """
    if len(examples) == 0:
        raise ValueError("sft_batch got no examples")
    if length_pool > 0:
        picks = _length_grouped(length_order(examples) if order is None else order, batch_size, length_pool, generator)
    else:
        picks = torch.randint(len(examples), (batch_size,), generator=generator).tolist()
    rows = []
    for i in picks:
        ids, mask = examples[i]
        if len(ids) != len(mask):
            raise ValueError(f"example {i}: ids has {len(ids)} tokens but mask has {len(mask)}; they must match")
        if len(ids) < 2:
            raise ValueError(f"example {i} has {len(ids)} token(s); an example needs at least 2 (an input and a target)")
        rows.append((list(ids[: block_size + 1]), list(mask[: block_size + 1])))
    T = max(len(ids) for ids, _ in rows) - 1
    x = torch.full((batch_size, T), pad_id, dtype=torch.long)
    y = torch.full((batch_size, T), -1, dtype=torch.long)
    for b, (ids, mask) in enumerate(rows):
        _put_row(x, y, b, ids, mask)
    return x, y


def _put_row(x, y, b, ids, mask):
    """Row b of (x, y) from a token sequence and its mask: x = ids[:-1], y = ids[1:] where mask[1:] is 1,
    else -1; the rest of the row stays as it was (padding)."""
    n = len(ids) - 1
    ids = torch.tensor(ids, dtype=torch.long)
    x[b, :n] = ids[:-1]
    y[b, :n] = torch.where(torch.tensor(mask[1:], dtype=torch.bool), ids[1:], -1)


def packed_sft_batch(examples, n: int, block_size: int, generator: torch.Generator, pad_id: int = 0):
    """`n` (ids, mask) examples drawn at random, packed whole into rows of block_size tokens one after
    another: one that does not fit opens the next row, the rest of a row is padding -> (x, y), with as many
    rows as the n examples need. An example longer than block_size + 1 tokens is cut, as in sft_batch.

    Every conversation starts with <|bos|>, so a row reads like a stretch of the pretraining stream:
    conversation after conversation, each at whatever position it lands and read after the ones before it,
    as Llama 2's fine-tuning concatenated its conversations. Unpacked, every question sits right after
    <|bos|> at the start of the context. (Measured, bench/RESULTS.md: packed on every step, more right after
    small talk and fewer as a first question; on every other step, about half that gain and, on average, no cost.)"""
    if len(examples) == 0 or n < 1:
        raise ValueError(f"packed_sft_batch needs examples and n >= 1, got {len(examples)} examples and n={n}")
    rows, ids, mask = [], [], []
    for _ in range(n):
        i = int(torch.randint(len(examples), (1,), generator=generator))
        e_ids, e_mask = examples[i]
        if len(e_ids) != len(e_mask):
            raise ValueError(f"example {i}: ids has {len(e_ids)} tokens but mask has {len(e_mask)}; they must match")
        if ids and len(ids) + len(e_ids) > block_size + 1:
            rows.append((ids, mask))
            ids, mask = [], []
        ids, mask = ids + list(e_ids), mask + list(e_mask)
    rows.append((ids, mask))
    x = torch.full((len(rows), block_size), pad_id, dtype=torch.long)
    y = torch.full((len(rows), block_size), -1, dtype=torch.long)
    for b, (ids, mask) in enumerate(rows):
        _put_row(x, y, b, ids[: block_size + 1], mask[: block_size + 1])
    return x, y


def length_order(examples) -> list[int]:
    """Indices of the (ids, mask) examples from shortest to longest (ties by index)."""
    return sorted(range(len(examples)), key=lambda i: (len(examples[i][0]), i))


def _length_grouped(order: list[int], batch_size: int, pool: int, generator: torch.Generator) -> list[int]:
    """batch_size indices of examples close in length: a random anchor (so every example is drawn about
    equally often) and the rest from the `pool` examples around it in length `order`."""
    pool = min(max(pool, batch_size), len(order))
    at = order.index(int(torch.randint(len(order), (1,), generator=generator)))
    start = min(max(0, at - pool // 2), len(order) - pool)
    window = order[start:start + pool]
    if pool >= batch_size:
        return [window[j] for j in torch.randperm(pool, generator=generator)[:batch_size].tolist()]
    return [window[j] for j in torch.randint(pool, (batch_size,), generator=generator).tolist()]


def batch_generator(cfg, i: int) -> torch.Generator:
    """The random stream of batch i: a pure function of (cfg.seed, i), so a resumed run draws the same batches."""
    return torch.Generator().manual_seed(cfg.seed * 1_000_003 + i)


def pretrain_batches(tokens: torch.Tensor, cfg, block_size: int):
    """get_batch(i) for pretraining: cfg.batch_size random windows from batch_generator(cfg, i)."""
    def get_batch(i):
        return pretrain_batch(tokens, cfg.batch_size, block_size, batch_generator(cfg, i))
    return get_batch


# ----------------------------------------------------------------------------------------------
# fine-tuning: the conversations and the mix. Each SFT batch also carries some pretraining text (`sft_batches`),
# because fine-tuning on conversations alone erodes the facts the base model stored.

def sft_conversations(world, *, fix: bool) -> list:
    """The fine-tuning set: the first version, or with the fix the deployment log called for (the
    out-of-scope requests the first guideline left out, answered the guideline's way)."""
    convs = list(world.sft_conversations())
    if fix:
        convs += world.scope_conversations(world.default_scope_count(convs))
    return convs


def sft_examples(tok, conversations) -> list[tuple[list[int], list[int]]]:
    """Conversations rendered with the chat template: (ids, loss mask) pairs."""
    return [render(tok, c) for c in conversations]


def sft_batches(examples, train_tokens: torch.Tensor, cfg, mix: float, block_size: int, length_pool: int = 0,
                pack: int = 0, pack_share: float = 1.0):
    """get_batch(i) for fine-tuning: (1 - mix) of each batch conversations, `mix` pretraining text cut to
    the conversations' length. SFT alone erodes stored facts (the model drifts towards the SFT people);
    replaying the documents keeps them. length_pool > 0 draws conversations of similar length together
    (less padding, shorter rows). Batch i draws from batch_generator(cfg, i) (exact resume).

    pack > 0: the same number of conversations, packed into rows of `pack` tokens (packed_sft_batch), and
    rows of text in the same share (length_pool does not apply to them). pack_share < 1 packs only that
    share of the steps, evenly spread (0.5: the odd steps); the others are unpacked batches. The `cpu` preset
    packs every other step."""
    B = cfg.batch_size
    n_text = int(round(B * mix))
    if pack and not 2 <= pack <= block_size:
        raise ValueError(f"pack={pack}: a packed row holds 2 to block_size={block_size} tokens (0: one "
                         "conversation per row)")
    if pack and not 0 < pack_share <= 1:
        raise ValueError(f"pack_share={pack_share}: the share of packed steps is above 0 and at most 1")
    order = length_order(examples) if length_pool > 0 else None

    def get_batch(i):
        g = batch_generator(cfg, i)
        if pack and int((i + 1) * pack_share) > int(i * pack_share):     # step i is one of the packed share
            x, y = packed_sft_batch(examples, B - n_text, pack, g)
            return _with_text(x, y, train_tokens, round(len(x) * n_text / (B - n_text)), g)
        x, y = sft_batch(examples, B - n_text, block_size, g, length_pool=length_pool, order=order)
        return _with_text(x, y, train_tokens, n_text, g)

    return get_batch


def _with_text(x, y, train_tokens, rows: int, generator):
    """The conversation rows (x, y) and `rows` windows of pretraining text as wide as them, below."""
    if rows == 0:
        return x, y
    xt, yt = pretrain_batch(train_tokens, rows, x.shape[1], generator)
    return torch.cat([x, xt]), torch.cat([y, yt])
