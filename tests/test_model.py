"""Tests of minillm.model: the two attention paths agree, the KV cache changes nothing but speed,
batching changes nothing, the loss mask works, and generation handles long prompts and stop tokens."""

import math

import pytest
import torch
import torch.nn.functional as F

from minillm.generate import KVCache, sample_next_token
from minillm.model import GPT, POSITIONS, GPTConfig, apply_rotary, rotary_tables

TINY = dict(vocab_size=64, block_size=16, n_layer=2, n_head=2, n_embd=32)


def tiny_model(seed=0, weight_std=0.5, **overrides):
    """A random tiny GPT. Its 2D weights are drawn large (std 0.5, not GPT-2's 0.02) so that
    greedy decoding does not collapse onto one repeated token and the tests see varied outputs."""
    torch.manual_seed(seed)
    model = GPT(GPTConfig(**{**TINY, **overrides}))
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0.0, weight_std)
    return model.eval()


def prompts(batch, length, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, TINY["vocab_size"], (batch, length), generator=g)


# ---------------------------------------------------------------- config


def test_config_rejects_bad_values_with_clear_message():
    with pytest.raises(ValueError, match=r"n_embd \(30\) must be divisible by n_head \(4\)"):
        GPTConfig(n_embd=30, n_head=4)
    with pytest.raises(ValueError, match=r"attn_impl must be one of \('sdpa', 'manual'\), got 'flash'"):
        GPTConfig(attn_impl="flash")
    with pytest.raises(ValueError, match="dropout must be in"):
        GPTConfig(dropout=1.0)
    with pytest.raises(ValueError, match=r"position must be one of \('learned', 'rope'\), got 'alibi'"):
        GPTConfig(position="alibi")
    with pytest.raises(ValueError, match=r"n_embd // n_head \(3\) must be even"):
        GPTConfig(n_embd=6, n_head=2, position="rope")


# ---------------------------------------------------------------- attention


@pytest.mark.parametrize("position", POSITIONS)
def test_sdpa_matches_manual_outputs_and_gradients(position):
    sdpa = GPT(GPTConfig(**TINY, attn_impl="sdpa", position=position))
    manual = GPT(GPTConfig(**TINY, attn_impl="manual", position=position))
    manual.load_state_dict(sdpa.state_dict())
    x, y = prompts(3, 16, seed=2), prompts(3, 16, seed=3)
    logits_s, loss_s = sdpa(x, y)
    logits_m, loss_m = manual(x, y)
    torch.testing.assert_close(logits_s, logits_m, atol=1e-5, rtol=1e-5)
    loss_s.backward()
    loss_m.backward()
    for (name, p_s), p_m in zip(sdpa.named_parameters(), manual.parameters()):
        torch.testing.assert_close(p_s.grad, p_m.grad, atol=1e-5, rtol=1e-4, msg=name)


@pytest.mark.parametrize("position", POSITIONS)
@pytest.mark.parametrize("attn_impl", ["sdpa", "manual"])
def test_cache_in_chunks_matches_one_forward(attn_impl, position):
    # covers the three masking cases: prefill, one new token, several new tokens after a cache
    # (with rope, the cached chunks must also be rotated by their own positions)
    model = tiny_model(attn_impl=attn_impl, position=position)
    x = prompts(2, 14)
    full, _ = model(x)
    cache = KVCache(model.config, batch_size=2)
    parts = [model(x[:, a:b], kv_cache=cache)[0] for a, b in [(0, 5), (5, 6), (6, 14)]]
    assert cache.length == 14
    torch.testing.assert_close(torch.cat(parts, dim=1), full, atol=1e-5, rtol=1e-5)


def test_last_only_is_the_last_position_of_the_full_logits():
    model = tiny_model()
    x = prompts(2, 9)
    full, _ = model(x)
    last, _ = model(x, last_only=True)
    assert last.shape == (2, 1, TINY["vocab_size"])
    torch.testing.assert_close(last, full[:, -1:], atol=1e-6, rtol=1e-6)
    with pytest.raises(ValueError, match="pass targets or last_only, not both"):
        model(x, x, last_only=True)


def test_rotary_scores_depend_only_on_the_distance():
    cos, sin = rotary_tables(8, 16)
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(1, 1, 1, 8, generator=g), torch.randn(1, 1, 1, 8, generator=g)

    def score(m, n):    # q at position m against k at position n
        return (apply_rotary(q, cos[m:m + 1], sin[m:m + 1]) * apply_rotary(k, cos[n:n + 1], sin[n:n + 1])).sum()
    torch.testing.assert_close(score(5, 2), score(12, 9))
    torch.testing.assert_close(score(3, 3), (q * k).sum())     # no distance, no rotation of the score
    assert not torch.isclose(score(5, 2), score(5, 4))


def test_rope_model_has_no_position_table():
    learned, rope = GPT(GPTConfig(**TINY)), GPT(GPTConfig(**TINY, position="rope"))
    assert "transformer.wpe.weight" not in rope.state_dict()
    assert learned.num_params() - rope.num_params() == TINY["block_size"] * TINY["n_embd"]
    assert rope.num_params(non_embedding=True) == learned.num_params(non_embedding=True)


def test_attention_maps_are_causal_distributions():
    model = tiny_model(attn_impl="sdpa")
    maps = model.attention_maps(prompts(2, 10))
    assert len(maps) == 2 and maps[0].shape == (2, 2, 10, 10)
    for att in maps:
        torch.testing.assert_close(att.sum(-1), torch.ones(2, 2, 10))
        assert torch.all(att.triu(diagonal=1) == 0)  # nothing attends to the future


# ---------------------------------------------------------------- loss


def test_targets_minus_one_are_ignored():
    model = tiny_model(weight_std=0.02)
    x, y = prompts(2, 12, seed=4), prompts(2, 12, seed=5)
    keep = torch.rand(2, 12, generator=torch.Generator().manual_seed(6)) < 0.5
    masked = torch.where(keep, y, torch.full_like(y, -1))
    logits, loss = model(x, masked)
    expected = F.cross_entropy(logits[keep], y[keep])
    torch.testing.assert_close(loss, expected)
    # a batch with nothing to score gives 0, not NaN
    _, empty = model(x, torch.full_like(y, -1))
    assert empty.item() == 0.0


def test_sequence_longer_than_block_size_is_a_clear_error():
    model = tiny_model()
    with pytest.raises(ValueError, match="sequence length 17 exceeds block_size 16"):
        model(prompts(1, 17))


def test_tiny_model_overfits_a_fixed_batch():
    torch.manual_seed(0)
    model = GPT(GPTConfig(**TINY))
    x, y = prompts(4, 16, seed=7), prompts(4, 16, seed=8)
    opt = model.configure_optimizers(0.0, 3e-3, (0.9, 0.95), "cpu")
    for _ in range(200):
        _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    assert loss.item() < 0.1


# ---------------------------------------------------------------- generation


@pytest.mark.parametrize("position", POSITIONS)
def test_kv_cache_matches_no_cache_greedy(position):
    model = tiny_model(position=position)
    cases = [prompts(1, 1, seed=10), prompts(1, 5, seed=11), prompts(2, 12, seed=12)]
    for idx in cases:
        # 30 new tokens run every prompt past block_size=16 (the cache's fallback path)
        with_cache = model.generate(idx, 30, temperature=0, use_cache=True)
        without = model.generate(idx, 30, temperature=0, use_cache=False)
        assert with_cache == without
        assert len(set(with_cache[0])) > 3  # the model is not stuck on one token
        assert all(len(row) == 30 for row in with_cache)


def test_kv_cache_matches_no_cache_sampling_with_same_seed():
    model = tiny_model()
    idx = prompts(2, 4)
    runs = [model.generate(idx, 25, temperature=1.0, top_k=20, top_p=0.9, use_cache=c,
                           generator=torch.Generator().manual_seed(0)) for c in (True, False)]
    assert runs[0] == runs[1]


def test_batched_greedy_matches_each_row_alone():
    model = tiny_model()
    idx = prompts(4, 6)
    batched = model.generate(idx, 20, temperature=0)
    alone = [model.generate(idx[i:i + 1], 20, temperature=0)[0] for i in range(4)]
    assert batched == alone
    assert len({tuple(r) for r in batched}) == 4


def test_long_prompt_is_truncated_with_a_warning():
    model = tiny_model()
    idx = prompts(1, 40)
    with pytest.warns(UserWarning, match="prompt has 40 tokens, more than block_size=16; keeping only the last 16"):
        out = model.generate(idx, 5, temperature=0)
    assert out == model.generate(idx[:, -16:], 5, temperature=0)
    with pytest.warns(UserWarning, match="keeping only the last 16"):
        assert list(model.stream(idx, 5, temperature=0)) == out[0]


def test_stop_tokens_cut_each_row_after_its_first_stop():
    model = tiny_model()
    idx = prompts(2, 3)
    free = model.generate(idx, 20, temperature=0)
    stop = free[0][4]
    cut = model.generate(idx, 20, temperature=0, stop_tokens=[stop])
    for row_free, row_cut in zip(free, cut):
        end = row_free.index(stop) + 1 if stop in row_free else len(row_free)
        assert row_cut == row_free[:end]
    assert cut[0][-1] == stop
    # when every row has stopped, generation ends early
    both = {free[0][2], free[1][2]}
    assert all(len(row) <= 3 for row in model.generate(idx, 20, temperature=0, stop_tokens=both))


def test_stream_yields_the_same_tokens_as_generate():
    model = tiny_model()
    idx = prompts(1, 5)
    stop = model.generate(idx, 20, temperature=0)[0][7]
    kwargs = dict(temperature=0, stop_tokens=(stop,))
    assert list(model.stream(idx, 20, **kwargs)) == model.generate(idx, 20, **kwargs)[0]
    with pytest.raises(ValueError, match="stream\\(\\) takes one prompt"):
        next(model.stream(prompts(2, 5), 3))


def test_sampling_controls():
    logits = torch.randn(3, 64, generator=torch.Generator().manual_seed(0))
    greedy = logits.argmax(-1)
    assert torch.equal(sample_next_token(logits, 0), greedy)
    assert torch.equal(sample_next_token(logits, 1.0, top_k=1), greedy)
    assert torch.equal(sample_next_token(logits, 1.0, top_p=1e-6), greedy)
    # top_k / top_p only ever pick from the allowed set
    top5 = logits.topk(5).indices
    for seed in range(20):
        tok = sample_next_token(logits, 2.0, top_k=5, generator=torch.Generator().manual_seed(seed))
        assert all(tok[i] in top5[i] for i in range(3))
    model = tiny_model()
    a, b = (model.generate(prompts(1, 3), 10, generator=torch.Generator().manual_seed(1)) for _ in range(2))
    assert a == b
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        model.generate(prompts(1, 3), 5, temperature=-1)
    with pytest.raises(ValueError, match=r"top_p must be in \(0, 1\]"):
        model.generate(prompts(1, 3), 5, top_p=0)
    with pytest.raises(ValueError, match="top_k must be >= 1"):
        model.generate(prompts(1, 3), 5, top_k=0)
    with pytest.raises(ValueError, match="LongTensor of shape \\(B, T\\)"):
        model.generate(torch.tensor([1, 2, 3]), 5)


def test_generate_restores_training_mode():
    model = tiny_model(dropout=0.1).train()
    model.generate(prompts(1, 3), 3)
    assert model.training


# ---------------------------------------------------------------- size, cost, optimizer


@pytest.mark.parametrize("bias", [True, False])
def test_num_params_matches_hand_count(bias):
    V, T, L, d = 64, 16, 2, 32
    model = GPT(GPTConfig(vocab_size=V, block_size=T, n_layer=L, n_head=2, n_embd=d, bias=bias))
    if bias:
        per_block = (2 * d) + (d * 3 * d + 3 * d) + (d * d + d) + (2 * d) + (d * 4 * d + 4 * d) + (4 * d * d + d)
        ln_f = 2 * d
    else:
        per_block = d + 3 * d * d + d * d + d + 4 * d * d + 4 * d * d
        ln_f = d
    expected = V * d + T * d + L * per_block + ln_f  # lm_head is tied to wte: no extra params
    assert model.num_params() == expected
    assert model.num_params(non_embedding=True) == expected - T * d
    assert model.lm_head.weight is model.transformer.wte.weight


@pytest.mark.parametrize("seq_len", [16, 64])
def test_flops_per_token_is_what_the_matmuls_do(seq_len):
    """The estimate against torch's own count of every matmul in a forward and backward pass (the manual
    attention's two matmuls included); what it leaves out (biases, layer norms, softmax) is a few percent."""
    from torch.utils.flop_counter import FlopCounterMode
    model = GPT(GPTConfig(vocab_size=256, block_size=64, n_layer=2, n_head=2, n_embd=64, attn_impl="manual"))
    x = torch.randint(256, (2, seq_len), generator=torch.Generator().manual_seed(0))
    with FlopCounterMode(display=False) as forward:
        _, loss = model(x, x)
    with FlopCounterMode(display=False) as backward:
        loss.backward()
    counted = forward.get_total_flops() / x.numel()
    assert model.flops_per_token(training=False, seq_len=seq_len) == pytest.approx(counted, rel=0.03)
    counted += backward.get_total_flops() / x.numel()
    assert model.flops_per_token(seq_len=seq_len) == pytest.approx(counted, rel=0.03)
    assert model.flops_per_token() == model.flops_per_token(seq_len=64)      # T defaults to block_size


def test_residual_projections_get_scaled_init():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=64, block_size=16, n_layer=8, n_head=4, n_embd=128))
    std = model.transformer.h[0].mlp.c_proj.weight.std().item()
    assert std == pytest.approx(0.02 / math.sqrt(16), rel=0.05)
    assert model.transformer.h[0].mlp.c_fc.weight.std().item() == pytest.approx(0.02, rel=0.05)


@pytest.mark.parametrize("device_type, fused", [("cpu", False), ("cuda", True)])
def test_configure_optimizers_decays_only_matrices(device_type, fused):
    # the CUDA branch only sets fused=True; AdamW accepts that flag for CPU tensors too (torch >= 2.4)
    model = GPT(GPTConfig(**TINY))
    opt = model.configure_optimizers(0.1, 1e-3, (0.9, 0.95), device_type)
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() == 2 for p in decay["params"]) and all(p.dim() == 1 for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))
    assert opt.defaults["fused"] is fused
