"""The command line: the whole course headless, and a chat with what it made.

    python -m minillm course [--preset cpu] [--out runs/cpu] [--seed 0] [--augment 1] [--fresh]
    python -m minillm chat [--run runs/cpu] [--model assistant|base] ["a prompt"]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from minillm.config import PRESETS


def cmd_course(args) -> int:
    from minillm.course import make_run, run_course

    run = make_run(args.preset, args.out, augment=args.augment, seed=args.seed, device=args.device)
    if args.fresh and run.out.exists():
        shutil.rmtree(run.out)
    metrics = run_course(run)
    print(f"\nreport: {run.out / 'report.md'}")
    for key in ("heldout_accuracy", "base_answer_rate", "assistant_answer_rate", "base_stored_accuracy",
                "unknown_entity_idk_rate_before_fix", "unknown_entity_idk_rate"):
        print(f"  {key:36s} {metrics[key]:6.1%}")
    print(f"  {'compute_ratio (pretrain / sft)':36s} {metrics['compute_ratio']:6.1f}x")
    print(f"  {'total time':36s} {metrics['total_seconds'] / 60:6.1f} min")
    return 0


def _find_run(run_arg) -> Path:
    if run_arg:
        return Path(run_arg)
    candidates = [p.parent for p in Path("runs").glob("*/base/config.json")]
    if not candidates:
        raise SystemExit("no finished run found under runs/: run `python -m minillm course` first, "
                         "or point to one with --run")
    return max(candidates, key=lambda p: (p / "base" / "config.json").stat().st_mtime)


def cmd_chat(args) -> int:
    import torch

    from minillm import chat as chat_template
    from minillm.checkpoint import load_checkpoint
    from minillm.evaluate import base_prompt
    from minillm.tokenizer import Tokenizer

    run = _find_run(args.run)
    tok = Tokenizer.load(run / "tokenizer")
    ckpt = run / args.model
    model, _ = load_checkpoint(ckpt, tokenizer=tok)
    model.eval()
    print(f"[{args.model} model from {ckpt}]", file=sys.stderr)

    def respond(history: list[dict]) -> str:
        if args.model == "base":  # the base model knows no chat tokens: the prompt is a document
            ids, stops = base_prompt(tok, history[-1]["content"]), (tok.bos_id,)
        else:
            ids, stops = chat_template.prompt_ids(tok, history), (tok.end_id,)
        idx = torch.tensor([ids], dtype=torch.long)
        new: list[int] = []
        printed = ""
        for t in model.stream(idx, args.max_new_tokens, temperature=args.temperature, top_k=args.top_k,
                              stop_tokens=stops):
            if t in stops:
                break
            new.append(t)
            text = tok.decode(new)
            if not text.endswith("\ufffd"):  # wait for the rest of a multi-byte character
                print(text[len(printed):], end="", flush=True)
                printed = text
        print(tok.decode(new)[len(printed):], flush=True)
        return tok.decode(new)

    if args.prompt:
        respond([{"role": "user", "content": " ".join(args.prompt)}])
        return 0
    history: list[dict] = []
    print("Type a message (empty line or Ctrl-D to quit).", file=sys.stderr)
    while True:
        try:
            line = input("you> ").strip()
        except EOFError:
            break
        if not line:
            break
        history.append({"role": "user", "content": line})
        print(f"{args.model}> ", end="", flush=True)
        history.append({"role": "assistant", "content": respond(history)})
        if args.model == "base":
            history = []  # a document sampler has no conversation to keep
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m minillm", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    c = sub.add_parser("course", help="run the whole course headless and write a report")
    c.add_argument("--preset", choices=PRESETS, default=None, help="default: MINILLM_PRESET, else by hardware")
    c.add_argument("--out", default=None, help="run folder (default runs/<preset>[-augment<N>])")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--augment", type=int, default=None, help="biographies per person (1 = the ablation)")
    c.add_argument("--device", default=None, help="cuda, mps or cpu (default: the best available)")
    c.add_argument("--fresh", action="store_true", help="delete the run folder first instead of reusing stages")
    c.set_defaults(func=cmd_course)

    h = sub.add_parser("chat", help="talk to a finished run's assistant (or its base model)")
    h.add_argument("prompt", nargs="*", help="one prompt; without it, an interactive loop")
    h.add_argument("--run", default=None, help="run folder (default: the newest under runs/)")
    h.add_argument("--model", choices=("assistant", "assistant_v1", "base"), default="assistant")
    h.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
    h.add_argument("--top-k", type=int, default=None)
    h.add_argument("--max-new-tokens", type=int, default=200)
    h.set_defaults(func=cmd_chat)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
