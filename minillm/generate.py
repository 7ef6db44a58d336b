"""
Generation: turning a trained GPT into text, one token at a time (the KV cache, sampling, the decoding loop).
It reads the model only through its forward (logits, with a KV cache; minillm.model computes them and never
imports this module at the top); nanochat splits its model and its engine the same way. It works on token ids
only: the chat template, the prompts and the tokens that end a reply are minillm.chat's.
"""
from __future__ import annotations

import contextlib
import warnings
from collections import defaultdict
from typing import Iterator

import torch
from torch.nn import functional as F


class KVCache:
    """
    Keys and values of every layer for the tokens processed so far, for generation, so that
    each new token costs one position of work instead of re-running the whole sequence.

    Storage is allocated once for block_size positions, shape (n_layer, B, n_head, block_size,
    head_size), on the first update (so it takes the dtype autocast gives the keys). `length` is
    the number of positions filled; GPT.forward advances it after all layers have written.
    """

    def __init__(self, config, batch_size: int):
        self.config = config
        self.batch_size = batch_size
        self.k = None
        self.v = None
        self.length = 0

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor):
        """Store this layer's new keys/values (B, nh, T, hs); return all keys/values so far."""
        if self.k is None:
            c = self.config
            shape = (c.n_layer, self.batch_size, c.n_head, c.block_size, c.n_embd // c.n_head)
            self.k = torch.empty(shape, dtype=k.dtype, device=k.device)
            self.v = torch.empty(shape, dtype=v.dtype, device=v.device)
        start, end = self.length, self.length + k.size(2)
        self.k[layer, :, :, start:end] = k
        self.v[layer, :, :, start:end] = v
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]


def model_device(model) -> torch.device:
    """Where a model's weights are: its inputs go there."""
    return next(model.parameters()).device


@contextlib.contextmanager
def evaluating(model):
    """Eval mode (no dropout) inside the block, the model's own mode again after it."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


# ----------------------------------------------------------------------------------------------
# sampling: greedy (temperature 0), or a draw from the softmax cut by top-k / top-p

def sample_next_token(logits, temperature=1.0, top_k=None, top_p=None, generator=None):
    """Pick one token per row from logits (B, V): greedy when temperature == 0, else sample."""
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0 (0 = greedy), got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    if temperature == 0:
        return logits.argmax(dim=-1)
    probs = sampling_probs(logits.float() / temperature, top_k, top_p)
    return torch.multinomial(probs, num_samples=1, generator=generator)[:, 0]


def sampling_probs(logits, top_k=None, top_p=None):
    """The distribution a token is sampled from: softmax of logits (..., V), with the tail cut by top_k (keep
    the k likeliest) and top_p (keep the likeliest tokens until they cover top_p), renormalised to sum to 1."""
    if top_k is not None:
        kth = torch.topk(logits, min(top_k, logits.size(-1))).values[..., [-1]]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = F.softmax(logits, dim=-1)
    if top_p is not None and top_p < 1.0:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        # keep a token while the likelier tokens before it cover less than top_p (the first is kept)
        drop = sorted_probs.cumsum(dim=-1) - sorted_probs >= top_p
        sorted_probs = sorted_probs.masked_fill(drop, 0.0)
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
        probs = probs / probs.sum(dim=-1, keepdim=True)
    return probs


# ----------------------------------------------------------------------------------------------
# the decoding loop: prompt -> logits of the last position -> next token -> append, until a stop token or the
# length limit; `generate` returns a batch's new tokens, `stream` yields one prompt's tokens as they come

def _prepare_prompt(model, idx):
    """Check the prompt before any work; left-truncate one longer than block_size."""
    if not isinstance(idx, torch.Tensor) or idx.dim() != 2 or idx.dtype != torch.long:
        raise ValueError("idx must be a LongTensor of shape (B, T); for one prompt use "
                         "torch.tensor([ids], dtype=torch.long)")
    if idx.size(1) == 0:
        raise ValueError("the prompt is empty: give at least one token (e.g. the bos token)")
    block_size = model.config.block_size
    if idx.size(1) > block_size:
        warnings.warn(f"prompt has {idx.size(1)} tokens, more than block_size={block_size}; "
                      f"keeping only the last {block_size}", stacklevel=3)
        idx = idx[:, -block_size:]
    return idx.to(model_device(model))



@torch.no_grad()
def _decode(model, idx, max_new_tokens, temperature, top_k, top_p, stop_tokens, use_cache,
            generator) -> Iterator[list[int | None]]:
    """
    The one decoding loop behind generate() and stream(), for a prompt idx (B, T) that fits
    block_size (see _prepare_prompt). Yields, for every step, the new token of each row, or
    None for a row that already produced a stop token; ends when every row has stopped or
    max_new_tokens steps are done.

    The model has positions 0..block_size-1 only (a learned table, or rotary tables of that length), and every
    cached key was computed at its own position, so once prompt + generated tokens no longer fit in block_size
    the cache cannot slide: generation then falls back to re-running the model on the last block_size tokens
    for every new token (exactly what generation without a cache does).
    """
    stop_tokens = set(stop_tokens)
    block_size = model.config.block_size
    B = idx.size(0)
    done = [False] * B
    kv_cache = KVCache(model.config, B) if use_cache else None
    tokens, new = idx, idx  # all tokens so far; those not yet in the cache
    with evaluating(model):  # no dropout while sampling
        for _ in range(max_new_tokens):
            if kv_cache is not None and tokens.size(1) <= block_size:
                logits, _ = model(new, kv_cache=kv_cache, last_only=True)
            else:
                # No cache, or the sequence outgrew the model's positions. The cache cannot slide:
                # its keys were computed at each token's position, and dropping the oldest token
                # moves every other token to a new one. So run the model on the last block_size
                # tokens, as generation without a cache always does.
                logits, _ = model(tokens[:, -block_size:], last_only=True)
            # only the last position predicts the next token
            next_token = sample_next_token(logits[:, -1, :], temperature, top_k, top_p, generator)
            tokens = torch.cat([tokens, next_token[:, None]], dim=1)
            new = next_token[:, None]
            step = []
            for row, tok in enumerate(next_token.tolist()):
                step.append(None if done[row] else tok)
                done[row] = done[row] or tok in stop_tokens
            yield step
            if all(done):
                break


def generate(model, idx, max_new_tokens, *, temperature=1.0, top_k=None, top_p=None, stop_tokens=(),
             use_cache=True, generator: torch.Generator | None = None) -> list[list[int]]:
    """
    Continue each row of idx (B, T) by up to max_new_tokens tokens; return the new tokens per
    row. A row ends after its first token in stop_tokens (included). temperature=0 is greedy
    decoding; top_k keeps the k likeliest tokens; top_p keeps the smallest set of tokens whose
    probability adds up to top_p (nucleus sampling). Rows share one batch, so they must have
    equal length (no padding): generate_many batches prompts of equal token length.
    generator: a torch.Generator on the model's device, for reproducible sampling.
    """
    idx = _prepare_prompt(model, idx)
    out = [[] for _ in range(idx.size(0))]
    for step in _decode(model, idx, max_new_tokens, temperature, top_k, top_p, stop_tokens, use_cache, generator):
        for row, tok in enumerate(step):
            if tok is not None:
                out[row].append(tok)
    return out


def stream(model, idx, max_new_tokens, *, temperature=1.0, top_k=None, top_p=None, stop_tokens=(),
           use_cache=True, generator: torch.Generator | None = None) -> Iterator[int]:
    """Like generate() for one prompt (1, T), yielding each new token id as soon as it exists."""
    if isinstance(idx, torch.Tensor) and idx.dim() == 2 and idx.size(0) != 1:
        raise ValueError(f"stream() takes one prompt of shape (1, T), got {tuple(idx.shape)}; "
                         f"use generate() for a batch")
    idx = _prepare_prompt(model, idx)
    for step in _decode(model, idx, max_new_tokens, temperature, top_k, top_p, stop_tokens, use_cache, generator):
        yield step[0]


def generate_many(model, prompts: list[list[int]], *, stop_tokens, max_new_tokens: int, batch_size: int = 64,
                  device="cpu", progress=None, temperature: float = 0.0,
                  generator: torch.Generator | None = None) -> list[tuple[list[int], int | None]]:
    """Continuations of many prompts (lists of ids), batched by equal length so no row is padded (the evaluator
    asks hundreds of questions this way); greedy unless a temperature is given (with a generator, reproducibly).
    Returns, per prompt, (the new ids without the stop token, the stop token that ended it or None)."""
    by_len = defaultdict(list)
    for i, p in enumerate(prompts):
        by_len[len(p)].append(i)
    out: list = [None] * len(prompts)
    stop = set(stop_tokens)
    for _, idxs in sorted(by_len.items()):
        for s in range(0, len(idxs), batch_size):
            chunk = idxs[s:s + batch_size]
            x = torch.tensor([prompts[i] for i in chunk], dtype=torch.long, device=device)
            rows = generate(model, x, max_new_tokens, temperature=temperature, stop_tokens=tuple(stop_tokens),
                            generator=generator)
            for i, row in zip(chunk, rows):
                stopped = bool(row) and row[-1] in stop
                out[i] = (row[:-1], row[-1]) if stopped else (row, None)
            if progress is not None:
                progress.update(len(chunk))
    return out
