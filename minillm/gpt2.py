"""GPT-2's tokenizer, for comparison with ours: tiktoken's "gpt2" encoding, when this machine has it.

Notebook 01 compares how many tokens each tokenizer spends on the world's text. tiktoken downloads the
encoding's files once and caches them; offline, the comparison is skipped with a one-line note instead of
a long wait or a traceback. The course's default path never needs the network.
"""
from __future__ import annotations

import hashlib
import os
import sys
import threading

import tiktoken

_GPT2_FILES = (
    "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/vocab.bpe",
    "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/encoder.json",
)


def _tiktoken_cache_dir() -> str:
    import tempfile
    for var in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        if var in os.environ:
            return os.environ[var]
    return os.path.join(tempfile.gettempdir(), "data-gym-cache")


def gpt2_encoding(timeout: float = 20.0):
    """tiktoken's GPT-2 encoding if it is cached or downloadable now, else None (with a one-line message).

    Never raises and never waits longer than about `timeout` seconds: when the files are not in tiktoken's
    cache, we first check in 2 seconds that the download host is reachable at all (offline machines stop here).
    """
    def unavailable(why: str):
        print(f"GPT-2 tokenizer unavailable ({why}); skipping the GPT-2 comparison.", file=sys.stderr)
        return None

    try:
        cache = _tiktoken_cache_dir()
        cached = cache != "" and all(
            os.path.exists(os.path.join(cache, hashlib.sha1(url.encode()).hexdigest())) for url in _GPT2_FILES)
        if not cached:
            import socket
            reach = {}

            def probe():
                try:
                    socket.create_connection(("openaipublic.blob.core.windows.net", 443), timeout=2).close()
                    reach["ok"] = True
                except OSError:
                    pass
            t = threading.Thread(target=probe, daemon=True)   # a thread also bounds a slow DNS lookup
            t.start()
            t.join(2.5)
            if not reach.get("ok"):
                return unavailable("not in tiktoken's cache and no network")
        result = {}

        def load():
            try:
                result["enc"] = tiktoken.get_encoding("gpt2")
            except Exception as e:  # noqa: BLE001 - any failure means "unavailable"
                result["err"] = f"{type(e).__name__}: {e}"
        t = threading.Thread(target=load, daemon=True)
        t.start()
        t.join(timeout)
        if "enc" in result:
            return result["enc"]
        return unavailable(result.get("err", f"download took longer than {timeout:.0f} s"))
    except Exception as e:  # noqa: BLE001 - never raise
        return unavailable(f"{type(e).__name__}: {e}")
