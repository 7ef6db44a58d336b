"""The command line: the whole course headless, a chat with what it made, and its release.

    python -m minillm course [--preset cpu] [--out runs/cpu] [--seed 0] [--augment 1] [--fresh]
    torchrun --standalone --nproc_per_node=N -m minillm course ...   the same on N processes (minillm.distributed)
    python -m minillm chat [--run runs/cpu] [--model assistant|base] [--max-new-tokens N] ["a prompt"]
    python -m minillm export [--run runs/cpu] --model base|assistant --to DIR
    python -m minillm doctor [--preset cpu]      what this machine has for the course; run it first

A mistake on the command line (a missing run, an unknown preset, a device this machine lacks, a damaged
checkpoint) ends with one line on stderr that says what to do, and exit status 2; Ctrl-C with status 130.
MINILLM_DEBUG=1 shows the full traceback instead.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from minillm.checkpoint import CheckpointError
from minillm.config import PRESETS
from minillm.train import NonFiniteLoss

# What a user's mistake raises (the package's messages say what to do), and a loss that stopped being finite
# (the device or the precision: its message says what to try); anything else is a bug and keeps its traceback.
USER_ERRORS = (ValueError, CheckpointError, OSError, NonFiniteLoss)


def cmd_course(args) -> int:
    from minillm import distributed
    from minillm.course import make_run, run_course

    distributed.init()    # under torchrun: join the other processes (a no-op for one process)
    try:
        run = make_run(args.preset, args.out, augment=args.augment, seed=args.seed, device=args.device,
                       progress=distributed.is_main())
        if run.out.exists() and not run.out.is_dir():
            raise NotADirectoryError(f"--out {run.out} is a file: pass a folder for the run (it is made if missing)")
        if args.fresh and run.out.exists() and distributed.is_main():
            shutil.rmtree(run.out)
        distributed.barrier()
        metrics = run_course(run)
    finally:
        distributed.close()
    if not metrics:       # the other processes under torchrun: rank 0 reports
        return 0
    print(f"\nreport: {run.out / 'report.md'}")
    for key in ("heldout_accuracy", "heldout_unseen_phrasing_accuracy", "heldout_follow_up_accuracy",
                "heldout_after_greeting_accuracy",
                "scope_answer_rate_before_fix", "scope_answer_rate", "assistant_answer_rate", "base_answer_rate",
                "base_stored_accuracy", "unknown_entity_idk_rate"):
        print(f"  {key:36s} {metrics[key]:6.1%}")
    print(f"  {'compute_ratio (pretrain / sft)':36s} {metrics['compute_ratio']:6.1f}x")
    print(f"  {'total time':36s} {metrics['total_seconds'] / 60:6.1f} min")
    return 0


CHAT_EXAMPLES = """examples:
  python -m minillm chat "Where was Geten Banek born?"         the assistant of the newest run
  python -m minillm chat --model base "Where was Geten Banek born?"
  python -m minillm chat --run runs/cpu                         interactive (an empty line quits)

The conversation keeps whole turns within the model's context, dropping the oldest ones."""
NO_RUN = "run `python -m minillm course` first, or pass --run with a run folder"


def _find_run(run_arg, model: str) -> Path:
    """The run folder to chat with: --run, else the newest under runs/ that has `model`; when there is
    none, a FileNotFoundError whose one line says what to do."""
    if run_arg is None:
        runs = [p.parent.parent for p in Path("runs").glob(f"*/{model}/config.json")]
        if not runs:
            raise FileNotFoundError(f"no finished run with the {model} model under runs/: {NO_RUN}")
        return max(runs, key=lambda r: (r / model / "config.json").stat().st_mtime)
    run = Path(run_arg)
    if not (run / "tokenizer" / "tokenizer.json").exists():
        raise FileNotFoundError(f"no finished run in {run}: {NO_RUN}")
    if not (run / model / "config.json").exists():
        raise FileNotFoundError(f"{run} has no {model} model yet: finish the run with "
                                "`python -m minillm course`, or pass --model base")
    return run


def cmd_chat(args) -> int:
    from minillm.chat import is_chat_model, print_stream, prompt_and_stops, reply_room, stream_prompt
    from minillm.checkpoint import load_checkpoint
    from minillm.device import apply_thread_count
    from minillm.tokenizer import Tokenizer

    apply_thread_count()
    run = _find_run(args.run, args.model)     # a missing run: one line from main(), like every user mistake
    tok = Tokenizer.load(run / "tokenizer")
    model, _ = load_checkpoint(run / args.model, tokenizer=tok)
    model.eval()
    as_chat, block_size = is_chat_model(args.model), model.config.block_size
    max_new = block_size // 2 if args.max_new_tokens is None else args.max_new_tokens
    print(f"[{args.model} model from {run / args.model}]", file=sys.stderr)
    if reply_room(block_size, max_new) != max_new:
        max_new = reply_room(block_size, max_new)
        print(f"[--max-new-tokens leaves no room for a prompt in the model's {block_size}-token context: "
              f"replies stop at {max_new} tokens]", file=sys.stderr)
    warned = False

    def respond(conversation: list[dict], prefix: str = "") -> tuple[str, int]:
        """Print prefix and the reply as it streams -> (reply, how many of the oldest turns were dropped).
        The prompt is built first, so a message too long for the context raises before anything prints."""
        nonlocal warned
        p = prompt_and_stops(tok, conversation, as_chat=as_chat, block_size=block_size, max_new_tokens=max_new)
        if p.dropped_turns and not warned:
            print(f"[the conversation is longer than the model's {block_size}-token context: "
                  "dropping the oldest turns]", file=sys.stderr)
            warned = True
        print(prefix, end="", flush=True)
        text, _ = print_stream(stream_prompt(model, tok, p, temperature=args.temperature, top_k=args.top_k))
        return text, p.dropped_turns

    if args.prompt:   # a message too long for the context: a ValueError, one line from main()
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
        turn = {"role": "user", "content": line}
        try:
            text, dropped = respond(history + [turn], prefix=f"{args.model}> ")
        except ValueError as e:
            print(e, file=sys.stderr)
            continue
        # Keep what the model still reads plus the new exchange (dropped turns never come back); the
        # base model samples documents and keeps no conversation.
        history = (history + [turn, {"role": "assistant", "content": text}])[dropped:] if as_chat else []
    return 0


EXPORT_EXAMPLES = """examples:
  python -m minillm export --model base --to release/base              the newest run's base model
  python -m minillm export --run runs/cpu --model assistant --to release/assistant

The folder opens with transformers (GPT2LMHeadModel.from_pretrained, AutoTokenizer.from_pretrained) and
with minillm.hf.load_pretrained; its README.md is the model card."""


def cmd_export(args) -> int:
    from minillm.hf import export

    run = _find_run(args.run, args.model)
    to = export(run, args.model, args.to)
    print(f"{args.model} model of {run} -> {to} (Hugging Face format; model card: {to / 'README.md'})")
    return 0


def cmd_doctor(args) -> int:
    from minillm.doctor import report

    text, healthy = report(args.preset)
    print(text)
    print("\nready for the course" if healthy else "\nfix the PROBLEM lines above first")
    return 0 if healthy else 1


COURSE_EXAMPLES = """examples:
  python -m minillm course                         the whole course on this machine's preset, into runs/<preset>
  python -m minillm course --preset smoke          every stage in about a minute (the numbers mean nothing)
  python -m minillm course --augment 1             the ablation: one biography per person, into runs/<preset>-augment1
  torchrun --standalone --nproc_per_node=2 -m minillm course      the same on 2 processes (GPUs): README, "Beyond one laptop"

A run that stopped (Ctrl-C, a closed laptop) continues where it was when the same command runs again."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        """One line, like every other mistake (argparse's own adds the whole usage)."""
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text}")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def main(argv=None) -> int:
    parser = _Parser(prog="python -m minillm", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    c = sub.add_parser("course", help="run the whole course headless and write a report",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=COURSE_EXAMPLES)
    c.add_argument("--preset", choices=PRESETS, default=None, help="default: MINILLM_PRESET, else by hardware")
    c.add_argument("--out", default=None, help="run folder (default runs/<preset>[-augment<N>])")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--augment", type=_positive, default=None, help="biographies per person (1 = the ablation)")
    c.add_argument("--device", default=None, help="cuda, mps or cpu (default: the best available)")
    c.add_argument("--fresh", action="store_true", help="delete the run folder first instead of reusing stages")
    c.set_defaults(func=cmd_course)

    h = sub.add_parser("chat", help="talk to a finished run's assistant (or its base model)",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=CHAT_EXAMPLES)
    h.add_argument("prompt", nargs="*", help="one prompt; without it, an interactive loop")
    h.add_argument("--run", default=None, help="run folder (default: the newest under runs/)")
    h.add_argument("--model", choices=("assistant", "assistant_v1", "base"), default="assistant")
    h.add_argument("--temperature", type=_non_negative, default=0.0, help="0 = greedy")
    h.add_argument("--top-k", type=_positive, default=None)
    h.add_argument("--max-new-tokens", type=_positive, default=None,
                   help="the reply's length limit (default: half the model's context)")
    h.set_defaults(func=cmd_chat)

    e = sub.add_parser("export", help="write a run's model in the Hugging Face format, with a model card",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXPORT_EXAMPLES)
    e.add_argument("--run", default=None, help="run folder (default: the newest under runs/)")
    e.add_argument("--model", choices=("base", "assistant", "assistant_v1"), required=True)
    e.add_argument("--to", required=True, help="the folder to write (made if missing; an earlier export is replaced)")
    e.set_defaults(func=cmd_export)

    d = sub.add_parser("doctor", help="check this machine for the course: Python, torch, device, disk, memory, packages")
    d.add_argument("--preset", choices=PRESETS, default=None, help="the preset to size the disk check for")
    d.set_defaults(func=cmd_doctor)

    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("\ninterrupted: run the same command again to continue where it stopped" if args.command == "course"
              else "", file=sys.stderr)
        return 130
    except USER_ERRORS as e:
        if os.environ.get("MINILLM_DEBUG"):
            raise
        print(str(e).splitlines()[0] if str(e) else type(e).__name__, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
