"""Tests for minillm.tokenizer: training, the two encoders agreeing, special tokens, save/load, errors."""
import json
import random

import pytest

from minillm.gpt2 import gpt2_encoding
from minillm.tokenizer import SPECIAL_TOKENS, Tokenizer, describe_merges


def mixed_corpus(n_paragraphs=400, seed=0) -> str:
    """English-like text, Chinese, emoji, code, digits and whitespace runs, deterministic."""
    rng = random.Random(seed)
    words = ["the", "model", "token", "learns", "a", "river", "city", "of", "in", "and", "is", "was",
             "Mount", "Aro", "born", "famous", "teacher", "don't", "it's", "they're"]
    hanzi = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经"
    emoji = ["😀", "🎉", "👍🏽", "🚀", "❤️", "👨‍👩‍👧"]
    paras = []
    for _ in range(n_paragraphs):
        k = rng.random()
        if k < 0.55:
            p = " ".join(rng.choice(words) for _ in range(rng.randint(4, 14))).capitalize() + rng.choice(".?!")
            if rng.random() < 0.3:
                p += f" In {rng.randint(1000, 2099)} it had {rng.randint(0, 10**7)} people."
        elif k < 0.75:
            p = "".join(rng.choice(hanzi) for _ in range(rng.randint(5, 20))) + "。"
        elif k < 0.85:
            p = f"def f(x):\n    return x * {rng.randint(0, 99)}  # {rng.choice(words)}\n\tpass"
        elif k < 0.93:
            p = " ".join(rng.choice(emoji) + rng.choice(words) for _ in range(3))
        else:
            p = " " * rng.randint(1, 9) + rng.choice(words) + "\n" * rng.randint(1, 4) + "\t \t" + "1234567890"[: rng.randint(1, 10)]
        paras.append(p)
    return "\n\n".join(paras)


TRICKY = [
    "", " ", "  ", "\n", "\n\n\n", "\t\t x", "a\r\nb", "hello world", "Hello, World!!!", "don't STOP it's",
    "1", "12", "123", "1234567", "3.14159 2,000,000", "中文分词是一个问题。", "你好，世界！", "😀😀😀 🚀",
    "👨‍👩‍👧 family", "def f(x):\n    return x  # comment\n", "    indented\n        more", "trailing   ",
    "\x00nul\x00", "\x01\x1f\x7f control", "é è ê ë", "mixed中文and English123😀", "<|end|>", "<|bos|><|user|>",
]


@pytest.fixture(scope="module")
def corpus():
    return mixed_corpus()


@pytest.fixture(scope="module")
def tok(corpus):
    return Tokenizer.train(corpus, 512)


def test_vocab_layout(tok):
    assert tok.vocab_size == 512
    assert len(tok.merges) == 512 - 256 - 4
    assert sorted(tok.merges.values()) == list(range(256, 508))
    assert [tok.bos_id, tok.user_id, tok.assistant_id, tok.end_id] == [508, 509, 510, 511]
    assert tok.special_tokens == {s: 508 + i for i, s in enumerate(SPECIAL_TOKENS)}
    assert tok.encoding.n_vocab == 512


def test_fast_training_matches_textbook_loop():
    text = mixed_corpus(60, seed=3)
    assert Tokenizer.train(text, 330).merges == Tokenizer.train_readable(text, 330).merges
    assert list(Tokenizer.train("cd ab", 256 + 3 + 4).merges) == list(Tokenizer.train_readable("cd ab", 256 + 3 + 4).merges)
    for trainer in (Tokenizer.train, Tokenizer.train_readable):
        with pytest.raises(ValueError, match=r"the text is too small for vocab_size=300: only 1 merges"):
            trainer("ab", 300)


def test_tie_break_highest_count_then_smallest_pair():
    # chunks "cd" and " ab": all three pairs have count 1, so the smallest pair wins: (' ', 'a') = (32, 97);
    # then (c, d) = (99, 100) beats (256, 98)
    tok = Tokenizer.train("cd ab", 256 + 3 + 4)
    assert list(tok.merges) == [(32, 97), (99, 100), (256, 98)]
    # a count beats a smaller pair
    tok = Tokenizer.train("zz zz zz ab", 256 + 1 + 4)
    assert list(tok.merges) == [(122, 122)]


def test_training_is_deterministic(corpus):
    a = Tokenizer.train(corpus, 400)
    b = Tokenizer.train([corpus], 400)                  # an iterable of documents works too
    assert a.merges == b.merges and a.fingerprint == b.fingerprint
    assert len(a.fingerprint) == 16
    assert Tokenizer.train(corpus, 401).fingerprint != a.fingerprint


def test_encode_matches_readable_on_mixed_corpus(tok, corpus):
    for text in TRICKY + corpus.split("\n\n")[:300] + [corpus[:20000]]:
        assert tok.encode(text) == tok.encode_readable(text), repr(text)


def test_encode_matches_readable_on_random_strings():
    # hypothesis-style: small vocabularies trained on text from a tiny alphabet create long, overlapping
    # tokens (the case where tiktoken's bytes-rank rule and the merge-replay loop could differ)
    rng = random.Random(1234)
    alphabets = ["ab", "abc ", "aab\n", "a1 ", "中文a ", "😀a ", "ab \t\n12", "xyz.,'s"]
    for trial in range(200):
        alphabet = rng.choice(alphabets)
        words = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 10))) for _ in range(rng.randint(5, 60))]
        text = " ".join(rng.choice(words) for _ in range(600))
        try:
            tok = Tokenizer.train(text, 256 + 4 + rng.randint(5, 120))
        except ValueError:                          # text too small for that many merges: fine, next
            continue
        for _ in range(100):
            s = "".join(rng.choice(alphabet + "x中😀 ") for _ in range(rng.randint(0, 30)))
            assert tok.encode(s) == tok.encode_readable(s), (trial, s)
            assert tok.decode(tok.encode(s)) == s


def test_decode_roundtrip(tok):
    for text in TRICKY + ["\U0010ffff", "\ud7ff\ue000", "a\u200bb", "\x00" * 5]:
        assert tok.decode(tok.encode(text)) == text


def test_special_token_strings_are_plain_text(tok):
    specials = set(tok.special_tokens.values())
    for s in SPECIAL_TOKENS:
        text = f"before {s} after{s}{s}"
        for ids in (tok.encode(text), tok.encode_readable(text)):
            assert not specials & set(ids), s
            assert tok.decode(ids) == text


def test_decode_special_ids_and_bad_bytes(tok):
    assert tok.decode([tok.bos_id, tok.user_id, tok.assistant_id, tok.end_id]) == "".join(SPECIAL_TOKENS)
    assert tok.decode([0xFF]) == "\ufffd"                        # invalid UTF-8 -> replacement character
    assert tok.decode(tok.encode("中")[:1]) == "\ufffd" or len(tok.encode("中")) == 1
    for bad in ([tok.vocab_size], [-1], [1.5]):
        with pytest.raises(ValueError, match=r"token id .* is not in this tokenizer's vocabulary \(ints 0\.\.511\)"):
            tok.decode([65] + bad)
    with pytest.raises(ValueError, match="not in this tokenizer's vocabulary"):
        tok.token_bytes(-1)


def test_lone_surrogate_is_a_clear_error(tok):
    for fn in (tok.encode, tok.encode_readable):
        with pytest.raises(ValueError, match=r"lone surrogate .* cannot be encoded as UTF-8; clean the text, "
                                             r"e\.g\. s\.encode\('utf-8', 'replace'\)\.decode\(\)"):
            fn("ok \ud800 not ok")
    with pytest.raises(ValueError, match="lone surrogate"):
        Tokenizer.train(["fine", "bad \udfff"], 300)


def test_token_bytes_and_describe_merges(tok):
    assert tok.token_bytes(65) == b"A"
    assert tok.token_bytes(tok.end_id) == b"<|end|>"
    a, b = next(iter(tok.merges))
    assert tok.token_bytes(256) == tok.token_bytes(a) + tok.token_bytes(b)
    lines = describe_merges(tok, 5)
    assert len(lines) == 5 and lines[0].startswith("256: ")
    assert b"".join(tok.token_bytes(i) for i in tok.encode("中文 😀")) == "中文 😀".encode()


def test_save_load_roundtrip(tok, tmp_path):
    path = tok.save(tmp_path / "tok")
    assert path.name == "tokenizer.json" and path.stat().st_size < 50_000
    tok2 = Tokenizer.load(tmp_path / "tok")
    assert tok2.merges == tok.merges and tok2.fingerprint == tok.fingerprint
    assert tok2.special_tokens == tok.special_tokens and tok2.pattern == tok.pattern
    for text in TRICKY:
        assert tok2.encode(text) == tok.encode(text)
        assert tok2.decode(tok2.encode(text)) == text


def test_load_errors_name_the_file(tok, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no tokenizer at .*tokenizer\.json: train one with Tokenizer\.train"):
        Tokenizer.load(tmp_path / "nothing")
    path = tok.save(tmp_path / "t")
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match=r"tokenizer\.json is not valid JSON .* corrupt"):
        Tokenizer.load(tmp_path / "t")
    path.write_text(json.dumps({"hello": 1}), encoding="utf-8")
    with pytest.raises(ValueError, match="is not a minillm tokenizer file"):
        Tokenizer.load(tmp_path / "t")
    state = json.loads(tok.save(tmp_path / "u").read_text())
    state["merges"][3] = [state["merges"][3][1], state["merges"][3][0]]   # a tampered merge
    (tmp_path / "u" / "tokenizer.json").write_text(json.dumps(state))
    with pytest.raises(ValueError, match="fingerprint"):
        Tokenizer.load(tmp_path / "u")
    state["merges"][3] = [9999, 1]
    (tmp_path / "u" / "tokenizer.json").write_text(json.dumps(state))
    with pytest.raises(ValueError, match="is corrupt"):
        Tokenizer.load(tmp_path / "u")


def test_bad_training_requests():
    with pytest.raises(ValueError, match="vocab_size must be at least 260"):
        Tokenizer.train("hello", 100)
    with pytest.raises(ValueError, match="the text is too small for vocab_size=1000"):
        Tokenizer.train("hello world", 1000)
    with pytest.raises(TypeError, match="str or an iterable of str"):
        Tokenizer.train(["ok", 3], 300)


def test_merge_lists_must_have_unique_bytes():
    # "abc" twice: (ab, c) and (a, bc) -- tiktoken cannot represent that
    with pytest.raises(ValueError, match="both stand for the bytes b'abc'"):
        Tokenizer([(97, 98), (256, 99), (98, 99), (97, 258)])


def test_hand_written_merges_can_disagree():
    # Why the equality is a property of *trained* merges: (b,c), (a,b), (ab,c). Replaying merges stops at
    # [a, bc]; tiktoken, which ranks by bytes, finds "abc" is a token. Training never yields this list.
    tok = Tokenizer([(98, 99), (97, 98), (257, 99)])
    assert tok.encode_readable("abc") == [97, 256]
    assert tok.encode("abc") == [258]


def test_gpt2_encoding_never_raises():
    enc = gpt2_encoding()
    if enc is None:
        pytest.skip("GPT-2 tokenizer not cached and no network")
    assert enc.encode("hello world") == [31373, 995]
    text = mixed_corpus(20)
    assert enc.decode(enc.encode(text)) == text
