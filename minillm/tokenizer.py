"""
Byte-level BPE: the tokenizer that turns text into the integers a GPT reads.

`Tokenizer` learns its merges from text (`train`; `train_readable` is the textbook loop), encodes with tiktoken's
engine (`encode`) or in plain Python (`encode_readable`), and ends its vocabulary with four special tokens.
It is the course's own tokenizer: minillm.gpt2 is GPT-2's, for comparison only, and minillm.hf writes this one in
the Hugging Face format.
"""
from __future__ import annotations

import hashlib
import heapq
import json
import os
from collections import Counter, defaultdict
from pathlib import Path
from typing import Iterable

import regex
import tiktoken

# What it is. A GPT sees a sequence of integer ids, one per *token*. Byte-level BPE (byte pair encoding,
# Sennrich et al. 2016; byte-level as in GPT-2) starts from the 256 possible bytes of UTF-8, so any string
# in any language -- Chinese, emoji, code, a NUL byte -- can be encoded and nothing is ever "unknown".
# Training then glues the most frequent adjacent pair of tokens into a new token, again and again, until
# the vocabulary has the size we asked for. Frequent words become one token, rare words a few pieces.
#
# Why byte-level BPE. Characters would make sequences long (the model spends its context on letters);
# whole words would need a huge vocabulary and still fail on new words. BPE sits in between and is learned
# from the data. Working on bytes rather than Unicode characters keeps the base vocabulary at 256.

# GPT-4's (cl100k_base) pre-split pattern, read left to right as alternatives:
#   '(?i:[sdmt]|ll|ve|re)          English contractions: 's 'd 'm 't 'll 've 're
#   [^\r\n\p{L}\p{N}]?+\p{L}++     a word, with at most one leading non-letter (usually the space)
#   \p{N}{1,3}+                    numbers in groups of at most 3 digits
#    ?[^\s\p{L}\p{N}]++[\r\n]*+    punctuation runs (with an optional leading space)
#   \s++$ | \s*[\r\n] | \s+(?!\S) | \s    whitespace: trailing, newlines, runs that leave one space for the next word
SPLIT_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
# Special tokens. The last 4 ids are <|bos|> <|user|> <|assistant|> <|end|>. `encode` is for ordinary
# text: the literal string "<|end|>" in text becomes ordinary byte tokens, never the special id, so
# what a user types can never forge the chat template. Only `minillm.chat.render` inserts special ids.
SPECIAL_TOKENS = ("<|bos|>", "<|user|>", "<|assistant|>", "<|end|>")
TOKENIZER_FILE = "tokenizer.json"
FORMAT = "minillm-bpe"


def merge(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace every occurrence of `pair` in ids (left to right, non-overlapping) by new_id."""
    out, i, n = [], 0, len(ids)
    a, b = pair
    while i < n:
        if i < n - 1 and ids[i] == a and ids[i + 1] == b:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def _unique_chunks(text: str | Iterable[str], pattern: str) -> tuple[list[list[int]], list[int]]:
    """The text split by the pattern into chunks, each unique chunk once as its bytes, with how often it occurs."""
    compiled = regex.compile(pattern)
    chunk_counts: Counter = Counter()
    for doc in ([text] if isinstance(text, str) else text):
        if not isinstance(doc, str):
            raise TypeError(f"train() wants a str or an iterable of str, got an item of type {type(doc).__name__}")
        _check_utf8(doc)
        chunk_counts.update(compiled.findall(doc))
    return [list(c.encode("utf-8")) for c in chunk_counts], list(chunk_counts.values())


def _pair_counts(chunks: list[list[int]], weights: list[int]):
    """(counts, where): each adjacent pair's count weighted by its chunk's, and the chunks it occurs in."""
    counts: Counter = Counter()
    where: dict[tuple[int, int], set[int]] = defaultdict(set)
    for i, (ids, w) in enumerate(zip(chunks, weights)):
        for pair in zip(ids, ids[1:]):
            counts[pair] += w
            where[pair].add(i)
    return counts, where


def _replace_pair(chunks, weights, where, pair, new_id) -> Counter:
    """Merge `pair` into new_id in every chunk that holds it (in place); returns how each pair's count changed."""
    delta: Counter = Counter()
    for i in where.pop(pair):
        result = _merge_tracking(chunks[i], pair, new_id, weights[i], delta)
        if result is not None:        # None: a stale index entry, the pair left this chunk earlier
            chunks[i], born = result
            for p in born:
                where[p].add(i)
    return delta


def _update_counts(counts: Counter, heap: list, delta: Counter, merged, forbidden: set) -> None:
    """Apply the changes of one merge to the counts, pushing each changed pair's new count on the heap."""
    counts.pop(merged, None)
    for p, d in delta.items():
        if d == 0 or p == merged:
            continue
        c = counts[p] + d
        if c > 0:
            counts[p] = c
            if p not in forbidden:
                heapq.heappush(heap, (-c, p))
        else:
            del counts[p]


def _merge_tracking(ids, pair, new_id, weight, delta):
    """merge() for training: also records in `delta` how the counts of the neighbouring pairs change.

    Replacing (a, b) by N at one spot turns the pairs (prev, a) and (b, next) into (prev, N) and
    (N, next); every other pair of the chunk is untouched. Returns (new ids, the new pairs that
    contain N), or None if the pair is not in ids. list.index jumps to the next `a` in C, which
    matters for long chunks (a Chinese sentence is one chunk).
    """
    a, b = pair
    out, born, i, n = [], [], 0, len(ids)
    while True:
        try:
            j = ids.index(a, i)
        except ValueError:
            break
        if j + 1 < n and ids[j + 1] == b:
            out.extend(ids[i:j])
            if out:
                prev = out[-1]                  # may be N itself when occurrences touch ("abab")
                delta[(prev, a)] -= weight
                delta[(prev, new_id)] += weight
                born.append((prev, new_id))
            if j + 2 < n:
                nxt = ids[j + 2]
                delta[(b, nxt)] -= weight
                delta[(new_id, nxt)] += weight
                born.append((new_id, nxt))
            out.append(new_id)
            i = j + 2
        else:
            out.extend(ids[i:j + 1])
            i = j + 1
    if i == 0:
        return None
    out.extend(ids[i:])
    if len(out) == n:
        return None
    return out, born


def _check_utf8(text: str) -> bytes:
    """UTF-8 bytes of text; a clear error for lone surrogates (which UTF-8 cannot represent)."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as e:
        bad = text[e.start:e.end]
        raise ValueError(
            f"text contains a lone surrogate {bad!r} at position {e.start}, which cannot be encoded as UTF-8; "
            "clean the text, e.g. s.encode('utf-8', 'replace').decode()"
        ) from None


class Tokenizer:
    """A trained byte-level BPE: merges (pair -> new id) + split pattern + 4 special tokens."""

    def __init__(self, merges, pattern: str = SPLIT_PATTERN):
        # merges: dict {(id_a, id_b): new_id} or a list of pairs in the order they were learned.
        if isinstance(merges, dict):
            items = sorted(merges.items(), key=lambda kv: kv[1])
            pairs = [tuple(p) for p, _ in items]
            if [i for _, i in items] != list(range(256, 256 + len(items))):
                raise ValueError("merges must give the new ids 256, 257, ... in order")
        else:
            pairs = [tuple(p) for p in merges]
        self.pattern = pattern
        self._compiled = regex.compile(pattern)
        self.merges: dict[tuple[int, int], int] = {}
        vocab = [bytes([i]) for i in range(256)]
        for new_id, (a, b) in enumerate(pairs, start=256):
            if not (0 <= a < new_id and 0 <= b < new_id):
                raise ValueError(f"merge {new_id} = ({a}, {b}) refers to an id that does not exist yet")
            vocab.append(vocab[a] + vocab[b])
            self.merges[(a, b)] = new_id
        n_ordinary = len(vocab)
        self.special_tokens: dict[str, int] = {s: n_ordinary + i for i, s in enumerate(SPECIAL_TOKENS)}
        self._vocab = vocab + [s.encode("utf-8") for s in SPECIAL_TOKENS]
        self.vocab_size = len(self._vocab)
        ranks: dict[bytes, int] = {}
        for i, tok in enumerate(vocab):
            if tok in ranks:
                # tiktoken needs one rank per distinct byte string (see the rule above Tokenizer.train)
                raise ValueError(f"tokens {ranks[tok]} and {i} both stand for the bytes {tok!r}; tiktoken needs "
                                 "every token's bytes to be unique: train the merges with Tokenizer.train")
            ranks[tok] = i
        self.encoding = tiktoken.Encoding(
            name=f"minillm-bpe-{self.vocab_size}-{self.fingerprint[:8]}",
            pat_str=pattern,
            mergeable_ranks=ranks,
            special_tokens=dict(self.special_tokens),
            explicit_n_vocab=self.vocab_size,
        )

    # ------------------------------------------------------------------ training
    # How training works:
    #   1. Pre-split the text with a regex (SPLIT_PATTERN, the one GPT-4 uses) into chunks: words with their
    #      leading space, runs of up to 3 digits, punctuation, whitespace. Merges never cross a chunk boundary,
    #      so " dog" and " dog." share the token " dog" and no token glues a word to its full stop.
    #   2. Count each *unique* chunk once, with its frequency as a weight. Natural text repeats its words a lot,
    #      so 10 MB of text becomes tens of thousands (at most a few hundred thousand) of unique chunks.
    #   3. Count adjacent pairs over the unique chunks (weighted). Pick the most frequent pair, give it the next
    #      id, and replace it in every chunk that contains it. An index pair -> chunks lets us touch only
    #      those chunks and update the pair counts by the difference, so one merge costs what it changes,
    #      not a pass over the whole corpus (this is what makes a 4k vocabulary take seconds, not hours).
    #   4. Ties are broken deterministically: highest count first, then the smallest pair (id_a, id_b).
    #      The same text and vocab_size always give the same merges, hence the same fingerprint.
    # `Tokenizer.train_readable` is the textbook version of the same loop (recount every pair at every merge):
    # read it first; `train` is what it becomes once the counts are updated instead of recounted.
    #
    # One rule beyond textbook BPE: never create a token whose bytes already exist as a token.
    # tiktoken, the fast Rust engine we hand the merges to, does not store "merge (a, b)"; it stores the bytes
    # each merge produces, with a rank, and encodes by repeatedly merging "the adjacent pair whose concatenated
    # bytes has the lowest rank" (and returns a whole chunk as one token if its bytes are a token). If two
    # merges produced the same bytes ((ab, c) and (a, bc) both give "abc"), tiktoken could not tell them apart
    # and its ids would differ from the readable encoder's. So when the best pair's bytes already exist, that
    # pair is skipped for good and the next best pair is merged. With merges applied left to right inside
    # fixed chunks this situation is rare (random-text fuzzing did not hit it), but the rule makes it
    # impossible by construction, and the constructor refuses a merge list with duplicate bytes.
    @classmethod
    def train(cls, text: str | Iterable[str], vocab_size: int, *, pattern: str = SPLIT_PATTERN,
              progress: bool = False) -> "Tokenizer":
        """Learn vocab_size - 256 - 4 merges from text (a string or an iterable of documents): the steps and
        the one rule beyond textbook BPE are in the comment above."""
        n_merges = vocab_size - 256 - len(SPECIAL_TOKENS)
        if n_merges < 0:
            raise ValueError(f"vocab_size must be at least {256 + len(SPECIAL_TOKENS)} "
                             f"(256 bytes + {len(SPECIAL_TOKENS)} special tokens), got {vocab_size}")
        # 1-2. pre-split into chunks and count each unique chunk once
        chunks, weights = _unique_chunks(text, pattern)
        # 3. weighted pair counts and which chunks contain each pair; a max-heap by (count, then smallest pair)
        # via negated counts, whose stale entries are skipped on pop
        counts, where = _pair_counts(chunks, weights)
        heap = [(-c, p) for p, c in counts.items()]
        heapq.heapify(heap)

        vocab = [bytes([i]) for i in range(256)]
        known = set(vocab)            # bytes of every token so far
        forbidden = set()             # pairs whose bytes already existed as a token: never merged
        merges: list[tuple[int, int]] = []
        from tqdm.auto import tqdm
        bar = tqdm(total=n_merges, desc="BPE merges", disable=not progress)
        while len(merges) < n_merges:
            if not heap:
                raise ValueError(
                    f"the text is too small for vocab_size={vocab_size}: only {len(merges)} merges were possible "
                    f"(need {n_merges}); give more text or a smaller vocab_size")
            negc, pair = heapq.heappop(heap)
            if counts.get(pair, 0) != -negc or pair in forbidden:
                continue                      # stale heap entry (the count changed since it was pushed)
            new_bytes = vocab[pair[0]] + vocab[pair[1]]
            if new_bytes in known:
                forbidden.add(pair)           # the rule above: never merge it
                continue
            vocab.append(new_bytes)
            known.add(new_bytes)
            merges.append(pair)
            # 4. replace the pair where it occurs; only the neighbours of each replaced occurrence change, so
            # the pair counts move by those local differences
            delta = _replace_pair(chunks, weights, where, pair, len(vocab) - 1)
            _update_counts(counts, heap, delta, pair, forbidden)
            bar.update(1)
        bar.close()
        return cls(merges, pattern=pattern)

    @classmethod
    def train_readable(cls, text: str, vocab_size: int, *, pattern: str = SPLIT_PATTERN) -> "Tokenizer":
        """The same merges as train(), by the textbook loop: recount every pair, merge the most frequent,
        repeat. Each merge costs a pass over all the chunks, so it is for reading and for small texts;
        train() gets the same answer by updating the counts (tests/test_tokenizer.py checks they agree)."""
        chunks = Counter(regex.findall(pattern, text))               # 1-2. unique chunks, with their counts
        seqs = {c: list(c.encode("utf-8")) for c in chunks}
        vocab = [bytes([i]) for i in range(256)]
        merges = []
        while len(merges) < vocab_size - 256 - len(SPECIAL_TOKENS):
            counts: Counter = Counter()                              # 3. every adjacent pair, weighted
            for c, weight in chunks.items():
                for pair in zip(seqs[c], seqs[c][1:]):
                    counts[pair] += weight
            allowed = [p for p in counts if vocab[p[0]] + vocab[p[1]] not in vocab]   # the rule above
            if not allowed:
                raise ValueError(f"the text is too small for vocab_size={vocab_size}: only {len(merges)} merges "
                                 "were possible; give more text or a smaller vocab_size")
            best = min(allowed, key=lambda p: (-counts[p], p))       # 4. highest count, then smallest pair
            vocab.append(vocab[best[0]] + vocab[best[1]])
            merges.append(best)
            seqs = {c: merge(ids, best, len(vocab) - 1) for c, ids in seqs.items()}
        return cls(merges, pattern=pattern)

    # ------------------------------------------------------------------ encoding
    def encode(self, text: str) -> list[int]:
        """Ordinary text -> ids with the tiktoken engine. Special-token strings stay plain text."""
        _check_utf8(text)
        return self.encoding.encode_ordinary(text)

    def encode_readable(self, text: str) -> list[int]:
        """The same ids as encode(), in plain Python: split, then replay the merges in the order learned.

        `encode` (tiktoken) and `encode_readable` (the loop a student writes) give identical ids for
        trained merges; the tests check this on Chinese, emoji, code, whitespace runs and digits, and on many
        random strings. (A hand-written merge list can still disagree, e.g. (b,c), (a,b), (ab,c): the readable
        encoder stops at [a, bc] on "abc" while tiktoken returns the token "abc"; training never produces
        such a list, because once bc is merged before ab, no "ab" is ever followed by a lone "c".)
        """
        _check_utf8(text)
        ids_out = []
        for chunk in self._compiled.findall(text):
            ids = list(chunk.encode("utf-8"))
            while len(ids) >= 2:
                # the adjacent pair that was learned earliest (lowest new id) is merged first
                pair = min(zip(ids, ids[1:]), key=lambda p: self.merges.get(p, float("inf")))
                if pair not in self.merges:
                    break                     # nothing left to merge in this chunk
                ids = merge(ids, pair, self.merges[pair])
            ids_out.extend(ids)
        return ids_out

    def decode(self, ids) -> str:
        """ids (a list, numpy array or tensor) -> text. Special ids decode to their strings; invalid UTF-8 -> U+FFFD."""
        ids = ids.tolist() if hasattr(ids, "tolist") else list(ids)
        try:
            return self.encoding.decode(ids, errors="replace")
        except (KeyError, OverflowError, TypeError):
            bad = next((i for i in ids if not (isinstance(i, int) and 0 <= i < self.vocab_size)), None)
            raise ValueError(f"token id {bad!r} is not in this tokenizer's vocabulary (ints 0..{self.vocab_size - 1}); "
                             "were these ids made by a different tokenizer?") from None

    def token_bytes(self, id: int) -> bytes:
        """The bytes a token stands for (a special token: its string's bytes)."""
        if not 0 <= id < self.vocab_size:
            raise ValueError(f"token id {id!r} is not in this tokenizer's vocabulary (ints 0..{self.vocab_size - 1})")
        return self._vocab[id]

    # ------------------------------------------------------------------ special ids
    bos_id = property(lambda self: self.special_tokens["<|bos|>"], doc="<|bos|>: a document (or a chat) starts")
    user_id = property(lambda self: self.special_tokens["<|user|>"], doc="<|user|>: the user's turn starts")
    assistant_id = property(lambda self: self.special_tokens["<|assistant|>"], doc="<|assistant|>: the reply starts")
    end_id = property(lambda self: self.special_tokens["<|end|>"], doc="<|end|>: a turn ends")

    # ------------------------------------------------------------------ identity, save, load
    def _state(self) -> dict:
        return {
            "format": FORMAT,
            "version": 1,
            "vocab_size": self.vocab_size,
            "pattern": self.pattern,
            "special_tokens": self.special_tokens,
            "merges": [list(p) for p in self.merges],   # in order: merges[k] creates id 256 + k
        }

    @property
    def fingerprint(self) -> str:
        """Short sha256 of merges + pattern + special tokens: checkpoints record it to catch a tokenizer mix-up."""
        s = self._state()
        key = json.dumps([s["merges"], s["pattern"], s["special_tokens"]], separators=(",", ":"))
        return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]

    def save(self, dirpath) -> Path:
        """Write dirpath/tokenizer.json (merges as id pairs, pattern, specials, vocab size)."""
        d = Path(dirpath)
        d.mkdir(parents=True, exist_ok=True)
        path = d / TOKENIZER_FILE
        state = self._state()
        state["fingerprint"] = self.fingerprint
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(state, indent=1), encoding="utf-8")
        os.replace(tmp, path)                     # atomic: a crash never leaves half a file
        return path

    @classmethod
    def load(cls, dirpath) -> "Tokenizer":
        """Read a tokenizer saved with save(); errors name the file and what to do."""
        p = Path(dirpath)
        path = p / TOKENIZER_FILE if p.is_dir() or p.suffix != ".json" else p
        if not path.exists():
            raise FileNotFoundError(
                f"no tokenizer at {path}: train one with Tokenizer.train(text, vocab_size) and save it "
                f"with tok.save({str(p)!r})")
        redo = "delete it and train/save the tokenizer again"
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise ValueError(f"{path} is not valid JSON ({e}); the file is corrupt: {redo}") from None
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            raise ValueError(f"{path} is not a minillm tokenizer file (format {FORMAT!r} expected); {redo}")
        try:
            tok = cls([tuple(m) for m in state["merges"]], pattern=state["pattern"])
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{path} is corrupt ({type(e).__name__}: {e}); {redo}") from None
        if tok.vocab_size != state.get("vocab_size") or tok.special_tokens != state.get("special_tokens"):
            raise ValueError(f"{path} is inconsistent (vocab size or special tokens do not match the merges); {redo}")
        if "fingerprint" in state and state["fingerprint"] != tok.fingerprint:
            raise ValueError(f"{path} has fingerprint {state['fingerprint']} but its contents give "
                             f"{tok.fingerprint}; the file was edited or damaged: {redo}")
        return tok

    def __repr__(self) -> str:
        return f"Tokenizer(vocab_size={self.vocab_size}, fingerprint={self.fingerprint!r})"


def render_token(b: bytes) -> str:
    """Bytes as readable text: valid UTF-8 shown as is (control characters escaped), the rest as \\xNN."""
    s = b.decode("utf-8", errors="backslashreplace")
    return "".join(ch if ch.isprintable() or ch == " " else ch.encode("unicode_escape").decode("ascii") for ch in s)


def describe_merges(tok: Tokenizer, n: int = 20, start: int = 0) -> list[str]:
    """The merges start..start+n as readable lines, e.g. "256: 't' + 'h' -> 'th'"."""
    out = []
    for (a, b), new_id in list(tok.merges.items())[start:start + n]:
        a_, b_, ab = (render_token(tok.token_bytes(i)) for i in (a, b, new_id))
        out.append(f"{new_id}: '{a_}' + '{b_}' -> '{ab}'")
    return out
