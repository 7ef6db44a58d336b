"""Batches: pretraining windows shift by one; SFT targets are -1 exactly where the mask is 0 or padding."""
import pytest
import torch

from minillm.data import packed_sft_batch, pretrain_batch, sft_batch, sft_batches


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_pretrain_y_is_x_shifted():
    tokens = torch.arange(1000)
    x, y = pretrain_batch(tokens, 8, 16, gen())
    assert x.shape == y.shape == (8, 16)
    assert x.dtype == y.dtype == torch.long
    assert torch.equal(y[:, :-1], x[:, 1:])
    assert torch.equal(y[:, -1], x[:, -1] + 1)  # the token after the window (arange stream)
    assert torch.equal(x[:, 1:] - x[:, :-1], torch.ones(8, 15, dtype=torch.long))  # contiguous windows


def test_pretrain_deterministic_and_uses_whole_stream():
    tokens = torch.randint(50, (300,), generator=gen(1)).to(torch.int32)  # compact dtypes are accepted
    a = pretrain_batch(tokens, 4, 8, gen(5))
    b = pretrain_batch(tokens, 4, 8, gen(5))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], pretrain_batch(tokens, 4, 8, gen(6))[0])
    # the last window may end on the last token, and no window runs past it
    x, y = pretrain_batch(torch.arange(9), 64, 8, gen())
    assert torch.equal(x, torch.arange(8).expand(64, 8)) and int(y.max()) == 8


def test_pretrain_too_short():
    with pytest.raises(ValueError, match=r"has 8 tokens but a window needs block_size \+ 1 = 9"):
        pretrain_batch(torch.arange(8), 2, 8, gen())


def check_sft_rows(examples, x, y, block_size, pad_id):
    """Every row must be one example: x = ids[:-1], y = ids[1:] where mask[1:] == 1, else -1; padding after."""
    for row_x, row_y in zip(x.tolist(), y.tolist()):
        matches = []
        for ids, mask in examples:
            ids, mask = ids[: block_size + 1], mask[: block_size + 1]
            n = len(ids) - 1
            want_y = [t if m else -1 for t, m in zip(ids[1:], mask[1:])]
            if row_x[:n] == ids[:-1] and row_y[:n] == want_y:
                matches.append(n)
        assert matches, (row_x, row_y)
        n = matches[0]
        assert all(t == pad_id for t in row_x[n:])
        assert all(t == -1 for t in row_y[n:])


def test_sft_mask_and_padding():
    examples = [
        ([1, 2, 3, 4, 5, 6], [0, 0, 0, 1, 1, 1]),
        ([7, 8, 9], [0, 1, 1]),
        ([10, 11, 12, 13], [0, 0, 1, 0]),
    ]
    x, y = sft_batch(examples, 16, 32, gen(), pad_id=99)
    assert x.shape == y.shape == (16, 5)  # longest example (6 tokens) minus one
    check_sft_rows(examples, x, y, 32, 99)
    # exact values for the first example: targets 2,3 are masked, 4,5,6 are trained on
    x, y = sft_batch(examples[:1], 1, 32, gen())
    assert x.tolist() == [[1, 2, 3, 4, 5]]
    assert y.tolist() == [[-1, -1, 4, 5, 6]]
    # y is -1 exactly where the mask is 0 or there is padding
    x, y = sft_batch(examples[1:2] + examples[:1], 8, 32, gen(3))
    for row in range(8):
        if x[row, 2] == 0:  # the short example, padded
            assert y[row].tolist() == [8, 9, -1, -1, -1]


def test_sft_truncates_to_block_size():
    ids = list(range(100, 120))
    examples = [(ids, [1] * 20), ([1, 2, 3], [1, 1, 1])]
    x, y = sft_batch(examples, 8, 6, gen())
    assert x.shape == (8, 6)
    check_sft_rows(examples, x, y, 6, 0)
    row = [r for r in range(8) if x[r, 0] == 100][0]
    assert x[row].tolist() == ids[:6] and y[row].tolist() == ids[1:7]


def test_sft_deterministic_and_errors():
    examples = [([1, 2, 3], [0, 1, 1]), ([4, 5], [1, 1]), ([6, 7, 8, 9], [0, 0, 1, 1])]
    a, b = sft_batch(examples, 5, 8, gen(2)), sft_batch(examples, 5, 8, gen(2))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    with pytest.raises(ValueError, match="ids has 3 tokens but mask has 2"):
        sft_batch([([1, 2, 3], [0, 1])], 1, 8, gen())
    with pytest.raises(ValueError, match="needs at least 2"):
        sft_batch([([1], [1])], 1, 8, gen())
    with pytest.raises(ValueError, match="no examples"):
        sft_batch([], 1, 8, gen())


def test_sft_batches_mixes_conversations_and_text_in_the_stated_share():
    from minillm.data import sft_batches
    from minillm.train import TrainConfig

    examples = [([0, 1, 2, 3, 4], [0, 0, 1, 1, 1])]          # a user token, then the assistant's three
    text = torch.arange(10, 100)
    get_batch = sft_batches(examples, text, TrainConfig(max_steps=1, batch_size=4), 0.5, block_size=16)
    x, y = get_batch(3)
    assert x.tolist()[:2] == [[0, 1, 2, 3]] * 2 and y.tolist()[:2] == [[-1, 2, 3, 4]] * 2
    assert (y[2:] == x[2:] + 1).all() and (x[2:] >= 10).all()   # plain text windows, every token a target
    x2, y2 = get_batch(3)
    assert torch.equal(x, x2) and torch.equal(y, y2)            # batch i is a pure function of (seed, i)
    x0, y0 = sft_batches(examples, text, TrainConfig(max_steps=1, batch_size=4), 0.0, block_size=16)(3)
    assert x0.tolist() == [[0, 1, 2, 3]] * 4 and (y0[:, 0] == -1).all()


def test_sft_length_pool_groups_lengths_draws_every_example_and_is_deterministic():
    # 400 examples of lengths 3..102: a random batch spans most lengths, a grouped one a narrow band
    examples = [(list(range(1000 * i + 1, 1000 * i + 4 + i % 100)), [1] * (3 + i % 100)) for i in range(400)]
    lengths = lambda x, y: [(int((r != -1).sum()) + 1) for r in y]               # each row's own length
    spread = {}
    for pool in (0, 32):
        widths = []
        for seed in range(50):
            x, y = sft_batch(examples, 8, 128, gen(seed), length_pool=pool)
            check_sft_rows(examples, x, y, 128, 0)
            widths.append(max(lengths(x, y)) - min(lengths(x, y)))
        spread[pool] = sum(widths) / len(widths)
    assert spread[32] <= 8 < 50 < spread[0]         # 32 neighbours in length order span 8 lengths (4 per length)
    # the anchor is uniform: over many batches every length band is drawn
    seen = set()
    for seed in range(300):
        x, y = sft_batch(examples, 8, 128, gen(seed), length_pool=32)
        seen.update(lengths(x, y))
    assert len(seen) >= 95
    a, b = sft_batch(examples, 8, 128, gen(7), length_pool=32), sft_batch(examples, 8, 128, gen(7), length_pool=32)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    # fewer examples than the batch (or than the pool): still a full batch
    x, y = sft_batch(examples[:3], 8, 128, gen(), length_pool=256)
    assert x.shape[0] == 8


def test_packed_sft_rows_are_whole_conversations_one_after_another():
    # examples of lengths 4..23 whose ids name them: 1000*i + position, <|bos|> = 7 first
    examples = [([7] + [1000 * i + j for j in range(1, 4 + i % 20)], [0, 0] + [1] * (2 + i % 20)) for i in range(60)]
    x, y = packed_sft_batch(examples, 200, 64, gen(3), pad_id=0)
    assert x.shape[1] == y.shape[1] == 64
    drawn, rows = [], []
    for row_x, row_y in zip(x.tolist(), y.tolist()):
        n = max(i for i, t in enumerate(row_x) if t != 0) + 1          # padding only at the end
        assert all(t == 0 for t in row_x[n:]) and all(t == -1 for t in row_y[n:])
        starts = [i for i, t in enumerate(row_x[:n]) if t == 7] + [n + 1]
        assert starts[0] == 0                                            # a row opens with a conversation
        stream = row_x[:n] + [row_y[n - 1]]
        for a, b in zip(starts, starts[1:]):
            k = stream[a + 1] // 1000
            ids, mask = examples[k]
            assert stream[a:b] == ids                                    # whole, in order, never cut
            for j in range(a, min(b, n)):                                # y: the next token where the mask is 1
                assert row_y[j] == (ids[j - a + 1] if j - a + 1 < len(ids) and mask[j - a + 1] else -1)
            drawn.append(k)
        rows.append((n + 1, len(examples[stream[1] // 1000][0])))        # (tokens in the row, its first one's)
    assert len(drawn) == 200                                             # exactly n conversations, none dropped
    for (used, _), (_, first_of_next) in zip(rows, rows[1:]):
        assert used + first_of_next > 65                                 # full: the next one would not fit
    short = sum(len(examples[k][0]) < 14 for k in drawn) / len(drawn)   # long ones drawn as often as short
    assert 0.4 < short < 0.6
    a, b = packed_sft_batch(examples, 5, 64, gen(9)), packed_sft_batch(examples, 5, 64, gen(9))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    # one longer than a row is cut, as in sft_batch; a mask of another length is refused
    x, y = packed_sft_batch([(list(range(1, 101)), [1] * 100)], 2, 64, gen())
    assert x.tolist() == [list(range(1, 65))] * 2 and y.tolist() == [list(range(2, 66))] * 2
    with pytest.raises(ValueError, match="example 0: ids has 3 tokens but mask has 2; they must match"):
        packed_sft_batch([([7, 8, 9], [0, 1])], 1, 64, gen())


def test_packed_sft_batches_hold_the_batchs_conversations_and_as_many_rows_of_text():
    from minillm.train import TrainConfig
    examples = [([7] + list(range(100, 100 + n)), [0] + [1] * n) for n in (15, 31, 47)]
    text = torch.arange(1000, 5000)
    get_batch = sft_batches(examples, text, TrainConfig(max_steps=1, batch_size=32), 0.5, block_size=256, pack=64)
    for i in range(5):
        x, y = get_batch(i)
        conv = x < 1000
        rows = int(conv.any(dim=1).sum())
        assert x.shape == (2 * rows, 64) and conv[:rows].any(dim=1).all() and (x[rows:] >= 1000).all()
        assert int((x == 7).sum()) == 16                                 # the unpacked batch's 16 conversations
        assert (y[rows:] == x[rows:] + 1).all()                          # text rows: every token a target
    x0, _ = sft_batches(examples, text, TrainConfig(max_steps=1, batch_size=32), 0.0, block_size=256, pack=64)(0)
    assert int((x0 == 7).sum()) == 32 and (x0 < 1000).all()


def test_packed_rows_longer_than_the_context_are_refused():
    from minillm.train import TrainConfig
    examples = [([7, 8, 9], [0, 1, 1])]
    with pytest.raises(ValueError, match=r"pack=300: a packed row holds 2 to block_size=256 tokens \(0: one conversation per row\)"):
        sft_batches(examples, torch.arange(1000), TrainConfig(max_steps=1, batch_size=4), 0.5, block_size=256, pack=300)


def test_a_share_of_packed_steps_is_every_other_step_packed_and_the_rest_unpacked():
    from minillm.train import TrainConfig
    examples = [([7] + list(range(100, 100 + n)), [0] + [1] * n) for n in (15, 31, 47, 20, 9)]
    text, cfg = torch.arange(1000, 5000), TrainConfig(max_steps=1, batch_size=16)
    half = sft_batches(examples, text, cfg, 0.5, block_size=128, length_pool=4, pack=64, pack_share=0.5)
    packed = sft_batches(examples, text, cfg, 0.5, block_size=128, length_pool=4, pack=64)
    unpacked = sft_batches(examples, text, cfg, 0.5, block_size=128, length_pool=4)
    for i in range(8):            # odd steps packed, even steps as without packing: batch for batch equal
        want = packed(i) if i % 2 else unpacked(i)
        assert all(torch.equal(a, b) for a, b in zip(half(i), want))
    quarter = sft_batches(examples, text, cfg, 0.5, block_size=128, pack=64, pack_share=0.25)
    assert [i for i in range(12) if quarter(i)[0].shape[1] == 64] == [3, 7, 11]
    for share in (0.0, 1.5):
        with pytest.raises(ValueError, match=rf"pack_share={share}: the share of packed steps is above 0 and at most 1"):
            sft_batches(examples, text, cfg, 0.5, block_size=128, pack=64, pack_share=share)
