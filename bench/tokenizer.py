"""
Benchmark the tokenizer: BPE training time, and encode throughput of tiktoken vs the readable encoder.

    python bench/tokenizer.py                 # ~10 MB of generated multilingual text, vocab 4096
    python bench/tokenizer.py path/to/txts    # every .txt file under a folder instead
    python bench/tokenizer.py --mb 2 --vocab 1024

The generated text is deterministic (seeded): Zipf-distributed English-like words made of syllables,
Chinese sentences, numbers and dates, Python snippets with indentation, emoji, and whitespace runs,
so the chunk statistics look roughly like real mixed web text (many repeated words, a long tail).
"""
import argparse
import itertools
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from minillm.tokenizer import Tokenizer  # noqa: E402


def synthetic_text(n_bytes: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    syllables = ["ka", "to", "ri", "mon", "shi", "el", "an", "ter", "qu", "is", "or", "ben", "lo", "st", "ra",
                 "ne", "th", "ing", "ed", "ou", "pre", "de", "al", "ion", "us", "ver", "mi", "sa", "co", "ly"]
    words = ["".join(rng.choice(syllables) for _ in range(rng.choice([1, 1, 2, 2, 2, 3, 3, 4])))
             for _ in range(20000)]
    cum = list(itertools.accumulate(1.0 / (r + 1) for r in range(len(words))))      # Zipf's law
    hanzi = [chr(rng.randint(0x4E00, 0x4E00 + 2500)) for _ in range(1500)]
    hz_cum = list(itertools.accumulate(1.0 / (r + 1) ** 0.8 for r in range(len(hanzi))))
    emoji = ["😀", "🎉", "👍", "🚀", "❤️", "🤖", "🌍", "📚"]
    code_names = ["x", "i", "data", "result", "model", "tokens", "self", "value", "count", "items"]

    def english():
        n = rng.randint(5, 25)
        ws = rng.choices(words, cum_weights=cum, k=n)
        ws[0] = ws[0].capitalize()
        s = " ".join(ws)
        if rng.random() < 0.2:
            s += f" {rng.randint(0, 99999)}"
        if rng.random() < 0.05:
            s += " " + rng.choice(emoji)
        return s + rng.choice([".", ".", ".", "?", "!", ","])

    def chinese():
        return "".join(rng.choices(hanzi, cum_weights=hz_cum, k=rng.randint(8, 30))) + rng.choice(["。", "，", "？", "！"])

    def code():
        a, b = rng.sample(code_names, 2)
        lines = [f"def {rng.choice(words)}_{a}({b}):",
                 f"    for {a} in range({rng.randint(1, 100)}):",
                 f"        {b} = {b} + {a} * {rng.randint(0, 9)}",
                 f"    return {b}"]
        return "\n".join(lines) + "\n\n"

    parts, size = [], 0
    while size < n_bytes:
        kind = rng.random()
        if kind < 0.70:
            para = " ".join(english() for _ in range(rng.randint(2, 8))) + "\n\n"
        elif kind < 0.88:
            para = "".join(chinese() for _ in range(rng.randint(2, 6))) + "\n\n"
        elif kind < 0.97:
            para = code()
        else:
            para = f"{rng.randint(1990, 2030)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}" + " " * rng.randint(1, 8) + "\t\n"
        parts.append(para)
        size += len(para.encode("utf-8"))
    return "".join(parts)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", nargs="?", help="folder of .txt files (default: generated text)")
    ap.add_argument("--mb", type=float, default=10.0, help="MB of generated text (default 10)")
    ap.add_argument("--vocab", type=int, default=4096, help="vocab size incl. 4 special tokens (default 4096)")
    ap.add_argument("--readable-mb", type=float, default=0.2, help="MB to encode with the readable encoder")
    args = ap.parse_args()

    t0 = time.perf_counter()
    if args.corpus:
        files = sorted(Path(args.corpus).rglob("*.txt"))
        if not files:
            sys.exit(f"no .txt files under {args.corpus}")
        text = "".join(f.read_text(encoding="utf-8", errors="replace") for f in files)
        source = f"{len(files)} .txt files from {args.corpus}"
    else:
        text = synthetic_text(int(args.mb * 1e6))
        source = "generated multilingual text"
    n_mb = len(text.encode("utf-8")) / 1e6
    print(f"corpus: {source}, {n_mb:.1f} MB (prepared in {time.perf_counter() - t0:.1f} s)")

    t0 = time.perf_counter()
    tok = Tokenizer.train(text, args.vocab)
    t_train = time.perf_counter() - t0
    print(f"BPE training, vocab {tok.vocab_size}: {t_train:.1f} s")

    t0 = time.perf_counter()
    ids = tok.encode(text)
    t_fast = time.perf_counter() - t0
    print(f"encode (tiktoken engine): {n_mb / t_fast:.1f} MB/s  ({len(ids):,} tokens, "
          f"{len(text.encode('utf-8')) / len(ids):.2f} bytes/token)")

    cut = int(args.readable_mb * 1e6)
    piece = text[:cut]
    piece_mb = len(piece.encode("utf-8")) / 1e6
    t0 = time.perf_counter()
    slow = tok.encode_readable(piece)
    t_slow = time.perf_counter() - t0
    t0 = time.perf_counter()
    fast = tok.encode(piece)
    t_fast_piece = time.perf_counter() - t0
    assert slow == fast, "encode_readable and encode disagree"
    print(f"encode_readable (pure Python): {piece_mb / t_slow:.3f} MB/s on {piece_mb:.1f} MB "
          f"-> tiktoken is {t_slow / t_fast_piece:.0f}x faster on the same slice (ids identical)")


if __name__ == "__main__":
    main()
