"""What every check shares: the ✓ line, a course target missed, calling the student's code, fresh random inputs."""
from __future__ import annotations

import os
import random
from contextlib import contextmanager

import torch


def _ok(msg: str) -> None:
    print(f"✓ {msg}")


def _missed(msg: str) -> None:
    """A course target (minillm.targets.TARGETS) that a whole training run missed. That is a finding about the
    run, not an error in the student's code, so it is reported, not raised -- unless MINILLM_STRICT_TARGETS=1
    (an instructor grading runs against the targets)."""
    if os.environ.get("MINILLM_STRICT_TARGETS") == "1":
        raise AssertionError(msg)
    print(f"✗ below the course target: {msg}")


def _fresh() -> random.Random:
    """A generator seeded from the OS: new random inputs every time a check runs."""
    return random.Random(int.from_bytes(os.urandom(8), "little"))


BLOCKED = "your function calls {owner}'s own {name}, the answer it is checked against; write it yourself"


@contextmanager
def _unavailable(references):
    """While the student's code runs, each reference function raises instead of answering.

    Its code object is swapped, not its module attribute, so the reference is unavailable however the student
    reached it (`minillm.tokenizer.merge`, `from minillm.tokenizer import merge as m`, torch's loss classes
    that call F.cross_entropy). The check computes its expected values outside this block."""
    saved = []
    try:
        for ref in references:
            owner = ref.__module__.split(".")[0]
            message = BLOCKED.format(owner=owner, name=f"{ref.__module__}.{ref.__qualname__}")
            scope = {}
            exec(f"def blocked(*args, **kwargs):\n    raise RuntimeError({message!r})", scope)
            saved.append((ref, ref.__code__))
            ref.__code__ = scope["blocked"].__code__   # the reference has no closure, so any code object fits
        yield
    finally:
        for ref, code in saved:
            ref.__code__ = code


def _call(fn, args, what: str, reference=()):
    """Call the student's function, with `reference` (a function or a tuple of them: what the check compares
    with) unavailable to it; turn an exception into a failed check that shows the input."""
    references = reference if isinstance(reference, tuple) else (reference,)
    try:
        with _unavailable(references):
            return fn(*args)
    except Exception as e:  # noqa: BLE001 - any error in student code is a failed check, with context
        if isinstance(e, RuntimeError) and str(e).startswith(BLOCKED.split("{")[0]):   # a reference was called
            raise AssertionError(str(e)) from None
        shown = ", ".join(repr(a) if not isinstance(a, torch.Tensor) else f"tensor{tuple(a.shape)}" for a in args)
        raise AssertionError(f"{what}({shown}) raised {type(e).__name__}: {e}") from e


def _share(name: str, v) -> float:
    try:
        v = float(v)
    except (TypeError, ValueError):
        raise AssertionError(f"{name} should be a number between 0 and 1, got {v!r}") from None
    if not 0.0 <= v <= 1.0:
        raise AssertionError(f"{name} should be a share between 0 and 1, got {v}")
    return v


def _smoke_note(preset: str, summary: str) -> bool:
    if preset == "smoke":
        _ok(f"smoke preset: {summary} -- not enforced, the smoke model is too small to learn anything")
        return True
    return False
