"""Batches for the two training phases: pretraining windows and masked SFT conversations.

Both phases train the same thing, next-token prediction; only the data differs.

- Pretraining: the corpus is one long stream of token ids. A batch is `batch_size` random windows
  of `block_size + 1` tokens; x is the window without its last token, y without its first, so the
  model learns to predict every token from the ones before it.
- SFT: each example is a rendered conversation (ids, mask) from `chat.render`, mask = 1 on the
  assistant's tokens. Targets where the mask is 0 (the user's words, role tokens) and padding
  become -1, which the model's cross-entropy ignores: the model still *reads* the question but is
  only trained to *write* the answer.

Both functions draw only from the `torch.Generator` they are given, so a batch is a pure function
of the generator's seed; the training loop relies on that for exact resume.
"""
import torch


def pretrain_batch(tokens: torch.Tensor, batch_size: int, block_size: int, generator: torch.Generator):
    """Random windows of the token stream -> (x, y), both (batch_size, block_size) int64, y = x shifted by one."""
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
              length_pool: int = 0):
    """Sample `batch_size` (ids, mask) examples -> (x, y) right-padded to the longest one.

    Examples longer than block_size + 1 tokens are truncated (the end is cut). y is -1 wherever the
    target token is not the assistant's (mask 0) or is padding.

    length_pool > 0 groups by length: one example drawn at random, the rest from the `length_pool`
    examples nearest to it in length. Every padded position is compute spent on nothing; with
    conversations of 20 to 120 tokens a random batch is about a fifth padding, a grouped one almost none,
    and it is only as long as its examples, so a fine-tuning step costs less.
    """
    if len(examples) == 0:
        raise ValueError("sft_batch got no examples")
    if length_pool > 0:
        picks = _length_grouped(examples, batch_size, length_pool, generator)
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
        n = len(ids) - 1
        ids = torch.tensor(ids, dtype=torch.long)
        keep = torch.tensor(mask[1:], dtype=torch.bool)
        x[b, :n] = ids[:-1]
        y[b, :n] = torch.where(keep, ids[1:], -1)
    return x, y


def _length_grouped(examples, batch_size: int, pool: int, generator: torch.Generator) -> list[int]:
    """batch_size indices of examples close in length: a random anchor (so every example is drawn about
    equally often) and the rest from the `pool` examples around it in length order."""
    order = sorted(range(len(examples)), key=lambda i: (len(examples[i][0]), i))
    pool = min(max(pool, batch_size), len(order))
    at = order.index(int(torch.randint(len(order), (1,), generator=generator)))
    start = min(max(0, at - pool // 2), len(order) - pool)
    window = order[start:start + pool]
    if pool >= batch_size:
        return [window[j] for j in torch.randperm(pool, generator=generator)[:batch_size].tolist()]
    return [window[j] for j in torch.randint(pool, (batch_size,), generator=generator).tolist()]
