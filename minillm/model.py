"""
A GPT-2-style decoder-only transformer, small enough to read in one sitting.

The file reads top to bottom like the paper: config, attention, MLP, block, the GPT itself, then
what belongs beside the model (parameter count, FLOPs per token, optimizer groups). Turning logits into
text (the KV cache, sampling, the decoding loop) is minillm.generate's job; GPT.generate and GPT.stream
only hand the model to it.
"""

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

import torch
import torch.nn as nn
from torch.nn import functional as F

if TYPE_CHECKING:   # only named in annotations: generation uses the model, not the other way round
    from minillm.generate import KVCache

# Three things go beyond nanoGPT's model.py, all for the course: attention has two implementations side by
# side, attention and the blocks take an optional KV cache (both: CausalSelfAttention), and positions can be
# rotary instead of GPT-2's learned table (GPTConfig.position).

ATTN_IMPLS = ("sdpa", "manual")
POSITIONS = ("learned", "rope")


@dataclass
class GPTConfig:
    vocab_size: int = 1024
    block_size: int = 256     # longest sequence the model sees (its number of positions)
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = True         # biases in Linear layers and LayerNorms, as in GPT-2
    attn_impl: str = "sdpa"   # "sdpa" (fused kernel) or "manual" (readable, returns the same numbers)
    gelu_approximate: str = "none"  # exact GELU; "tanh" is GPT-2's approximation (to load GPT-2's own weights)
    # "learned": GPT-2's table of block_size position vectors added to the tokens (the default); "rope": rotary
    # position embeddings (Su et al. 2021, as in Llama and nanochat), which rotate queries and keys by their
    # position so that attention scores depend only on how far apart two tokens are (on the cpu preset it
    # recalls held-out facts worse: bench/RESULTS.md)
    position: str = "learned"

    def __post_init__(self):
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"GPTConfig.{name} must be a positive integer, got {value!r}")
        if self.n_embd % self.n_head != 0:
            raise ValueError(
                f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head}): "
                f"each head gets n_embd // n_head dimensions; pick n_embd a multiple of n_head")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.attn_impl not in ATTN_IMPLS:
            raise ValueError(f"attn_impl must be one of {ATTN_IMPLS}, got {self.attn_impl!r}")
        if self.position not in POSITIONS:
            raise ValueError(f"position must be one of {POSITIONS}, got {self.position!r}")
        if self.position == "rope" and (self.n_embd // self.n_head) % 2:
            raise ValueError(f"position='rope' rotates pairs of dimensions: n_embd // n_head "
                             f"({self.n_embd // self.n_head}) must be even")
        if self.gelu_approximate not in ("none", "tanh"):
            raise ValueError(f"gelu_approximate must be 'none' or 'tanh', got {self.gelu_approximate!r}")


def rotary_tables(head_dim: int, n_positions: int, base: float = 10000.0):
    """cos and sin (n_positions, head_dim // 2) of the rotary angles: position t turns the dimension pair
    (i, i + head_dim/2) by t * base^(-2i/head_dim), fast for the first pairs and slow for the last."""
    inv_freq = 1.0 / base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    angles = torch.outer(torch.arange(n_positions, dtype=torch.float32), inv_freq)
    return angles.cos(), angles.sin()


def apply_rotary(x, cos, sin):
    """Rotate x (B, nh, T, hs) pair by pair: the first half of each head against its second half (the
    layout of GPT-NeoX and Hugging Face's Llama). q.k of two rotated vectors depends on their positions'
    difference only."""
    x1, x2 = x.chunk(2, dim=-1)
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class CausalSelfAttention(nn.Module):
    """
    Attention has two implementations side by side. "sdpa" calls PyTorch's fused
    scaled_dot_product_attention (FlashAttention kernels on supported CUDA GPUs, the default);
    "manual" writes out softmax(q k^T / sqrt(d)) v with an explicit causal mask, so the lesson can
    read it and plot the attention weights. A test proves the two agree (outputs and gradients).

    Attention and the blocks take an optional KV cache (minillm.generate.KVCache): the keys and values
    of the tokens already seen, so that generation computes only the new token's position.
    """

    def __init__(self, config: GPTConfig, layer_idx: int):
        super().__init__()
        self.layer_idx = layer_idx  # which slot of the KV cache is ours
        self.n_head = config.n_head
        self.n_embd = config.n_embd
        self.dropout = config.dropout
        self.attn_impl = config.attn_impl
        # query, key and value projections for all heads, in one matmul
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.attn_dropout = nn.Dropout(config.dropout)
        self.resid_dropout = nn.Dropout(config.dropout)
        # causal_mask[i, j] is True when position i may look at position j (j <= i).
        # Not persistent: it is derived from block_size, so it stays out of checkpoints.
        mask = torch.tril(torch.ones(config.block_size, config.block_size, dtype=torch.bool))
        self.register_buffer("causal_mask", mask, persistent=False)
        self.rope = config.position == "rope"
        if self.rope:   # derived from the config too, so also out of checkpoints
            cos, sin = rotary_tables(config.n_embd // config.n_head, config.block_size)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)

    def _qkv(self, x, past=0):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        # (B, T, C) -> (B, nh, T, hs): every head attends independently
        q, k, v = [t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v)]
        if self.rope:   # the new tokens sit at positions past..past+T-1
            cos, sin = self.rope_cos[past:past + T], self.rope_sin[past:past + T]
            q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        return q, k, v

    def _probs(self, q, k, past):
        """The readable attention: softmax of scaled dot products, future positions masked out."""
        T, S = q.size(2), k.size(2)
        scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))  # (B, nh, T, S)
        # queries sit at positions past..past+T-1, keys at 0..S-1
        scores = scores.masked_fill(~self.causal_mask[past:past + T, :S], float("-inf"))
        return F.softmax(scores, dim=-1)

    def forward(self, x, kv_cache: "KVCache | None" = None):
        B, T, C = x.size()
        past = 0 if kv_cache is None else kv_cache.length
        q, k, v = self._qkv(x, past)
        if kv_cache is not None:
            k, v = kv_cache.update(self.layer_idx, k, v)
        if self.attn_impl == "manual":
            att = self.attn_dropout(self._probs(q, k, past))
            y = att @ v  # (B, nh, T, S) x (B, nh, S, hs) -> (B, nh, T, hs)
        else:
            # is_causal assumes queries and keys start at the same position, true without a cache
            # (and harmless for a single new token, which may see every key). A chunk of several
            # tokens after cached ones needs the mask shifted by `past`.
            if past == 0 or T == 1:
                mask, is_causal = None, past == 0
            else:
                mask, is_causal = self.causal_mask[past:past + T, :past + T], False
            y = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, is_causal=is_causal,
                dropout_p=self.dropout if self.training else 0.0)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # heads side by side again
        return self.resid_dropout(self.c_proj(y))

    @torch.no_grad()
    def attention_probs(self, x) -> torch.Tensor:
        """Attention weights (B, n_head, T, T) for input x (B, T, C); each row sums to 1."""
        q, k, _ = self._qkv(x)
        return self._probs(q, k, past=0)


class MLP(nn.Module):

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU(approximate=config.gelu_approximate)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    """Pre-LayerNorm transformer block: attention then MLP, each added to the residual stream."""

    def __init__(self, config: GPTConfig, layer_idx: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config, layer_idx)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x, kv_cache: "KVCache | None" = None):
        x = x + self.attn(self.ln_1(x), kv_cache)
        x = x + self.mlp(self.ln_2(x))
        return x


class GPT(nn.Module):

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        # learned position embeddings (GPT-2), or none: rope rotates queries and keys inside attention
        wpe = dict(wpe=nn.Embedding(config.block_size, config.n_embd)) if config.position == "learned" else {}
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),   # token embeddings
            **wpe,
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config, i) for i in range(config.n_layer)]),
            ln_f=nn.LayerNorm(config.n_embd, bias=config.bias),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        # Weight tying (Press & Wolf 2017, used by GPT-2): the output layer scores each token by its
        # similarity to that token's input embedding. One matrix instead of two saves V*d params
        # (most of a small model) and tends to help small models.
        self.transformer.wte.weight = self.lm_head.weight
        self.apply(self._init_weights)
        # GPT-2 init: every block adds two outputs (attention and MLP) to the residual stream, so at
        # init its variance would grow with the 2*n_layer additions. Scaling the projections that
        # write into the stream by 1/sqrt(2*n_layer) keeps the stream's scale independent of depth.
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    def _init_weights(self, module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def _embed(self, idx, past=0):
        """Token + position embeddings for idx (B, T) placed after `past` earlier positions (with rope, the
        token embeddings alone: attention rotates by position)."""
        if idx.dim() != 2:
            raise ValueError(f"idx must have shape (B, T), got {tuple(idx.shape)}; "
                             f"for one sequence use idx[None]")
        T = idx.size(1)
        if past + T > self.config.block_size:
            raise ValueError(
                f"sequence length {past + T} exceeds block_size {self.config.block_size}: "
                f"crop the input to its last {self.config.block_size} tokens "
                f"(generate() and stream() do this for you)")
        if "wpe" not in self.transformer:
            return self.transformer.wte(idx)
        pos = torch.arange(past, past + T, dtype=torch.long, device=idx.device)
        return self.transformer.wte(idx) + self.transformer.wpe(pos)

    def _hidden(self, idx, kv_cache: "KVCache | None" = None):
        """Final hidden states (B, T, n_embd): everything but the output layer."""
        x = self.transformer.drop(self._embed(idx, 0 if kv_cache is None else kv_cache.length))
        for block in self.transformer.h:
            x = block(x, kv_cache)
        if kv_cache is not None:
            kv_cache.length += idx.size(1)
        return self.transformer.ln_f(x)

    def forward(self, idx, targets=None, *, kv_cache: "KVCache | None" = None, last_only: bool = False):
        """
        idx (B, T) token ids -> (logits (B, T, vocab_size), loss or None).
        targets (B, T): the next token at each position; positions with -1 are ignored, which is
        how the SFT loss mask arrives (only assistant tokens are scored).
        kv_cache: continue after the tokens already in the cache (used by generation).
        last_only: logits (B, 1, vocab_size) of the last position only, all that sampling needs
        (the output layer is skipped on the rest of a prompt, as nanoGPT does at inference).
        """
        if last_only and targets is not None:
            raise ValueError("last_only gives one position's logits, and a loss needs every position's: "
                             "pass targets or last_only, not both")
        hidden = self._hidden(idx, kv_cache)
        logits = self.lm_head(hidden[:, -1:, :] if last_only else hidden)
        loss = None
        if targets is not None:
            # Mean over the scored positions. Dividing the sum ourselves (instead of reduction=
            # "mean") gives 0 rather than NaN for a batch where every target is masked.
            flat = targets.reshape(-1)
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), flat,
                                   ignore_index=-1, reduction="sum")
            loss = loss / (flat != -1).sum().clamp(min=1)
        return logits, loss

    @torch.no_grad()
    def attention_maps(self, idx) -> list[torch.Tensor]:
        """Attention weights of every layer for idx (B, T): a list of (B, n_head, T, T) tensors."""
        maps = []
        x = self._embed(idx)
        for block in self.transformer.h:
            maps.append(block.attn.attention_probs(block.ln_1(x)))
            x = block(x)
        return maps

    # ---------------------------------------------------------------- size, cost, optimizer

    def num_params(self, non_embedding=False) -> int:
        """
        Number of parameters (the tied embedding counted once). non_embedding=True leaves out the
        position embeddings, as nanoGPT does: the token embedding stays in because, tied, it is
        also the output layer's weight and does a real matmul per token.
        """
        n = sum(p.numel() for p in self.parameters())
        if non_embedding and "wpe" in self.transformer:
            n -= self.transformer.wpe.weight.numel()
        return n

    def flops_per_token(self, training=True, *, seq_len: int | None = None) -> float:
        """
        Estimated FLOPs to process one token (PaLM appendix B; nanoGPT's estimate_mfu).

        Each parameter does one multiply-add (2 FLOPs) per token in the forward pass and twice that
        in the backward pass (gradients w.r.t. inputs and w.r.t. weights): 6N for training.
        Attention adds the q.k^T and att.v matmuls, which have no parameters: 2 * 2*T*d per layer
        forward, so 12*L*d*T for training. Forward only (generation, evaluation) is one third.
        N leaves out the position embeddings (a lookup, no matmul); T defaults to block_size.
        """
        cfg = self.config
        T = cfg.block_size if seq_len is None else seq_len
        flops = 6 * self.num_params(non_embedding=True) + 12 * cfg.n_layer * cfg.n_embd * T
        return float(flops if training else flops / 3)

    def configure_optimizers(self, weight_decay, learning_rate, betas, device_type, *, optimizer="adamw",
                             muon_lr=0.02):
        """
        AdamW with weight decay on the 2D tensors (matmul weights, embeddings) only: decaying
        biases and LayerNorm gains only pulls them toward 0 for no benefit.
        The fused kernel (one launch for all parameters) is used on CUDA only.
        optimizer="muon": the blocks' matrices get Muon at muon_lr (minillm.optim), the rest AdamW as above.
        """
        if optimizer not in ("adamw", "muon"):
            raise ValueError(f"optimizer must be 'adamw' or 'muon', got {optimizer!r}")
        params = [p for p in self.parameters() if p.requires_grad]
        matrices = {id(p) for p in self.transformer.h.parameters() if p.dim() == 2} if optimizer == "muon" else set()
        decay = [p for p in params if p.dim() >= 2 and id(p) not in matrices]
        no_decay = [p for p in params if p.dim() < 2]
        groups = [
            {"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        if optimizer == "adamw":
            return torch.optim.AdamW(groups, lr=learning_rate, betas=betas, fused=device_type == "cuda")
        from minillm.optim import MuonAdamW
        muon = [p for p in params if id(p) in matrices]
        # Muon's rate is its own scale (an orthogonal update has a fixed size); the schedule multiplies lr_scale
        groups = [dict(g, kind="adamw") for g in groups] + [
            {"params": muon, "kind": "muon", "weight_decay": 0.0, "lr_scale": muon_lr / learning_rate}]
        return MuonAdamW(groups, lr=learning_rate, betas=betas)

    # ---------------------------------------------------------------- generation (minillm.generate)
    # minillm.generate reads the model only through forward(); these two hand the model to it, importing
    # it here rather than at the top so that the model does not depend on what uses it.

    def generate(self, idx, max_new_tokens, **kwargs) -> list[list[int]]:
        """New tokens for each row of idx (B, T): minillm.generate.generate(self, ...), which documents the options."""
        from minillm import generate
        return generate.generate(self, idx, max_new_tokens, **kwargs)

    def stream(self, idx, max_new_tokens, **kwargs) -> Iterator[int]:
        """One prompt's new token ids as they come: minillm.generate.stream(self, ...)."""
        from minillm import generate
        return generate.stream(self, idx, max_new_tokens, **kwargs)
