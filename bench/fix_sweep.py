"""How the unknown-people fix scales: the first SFT set plus k made-up-person conversations, fine-tuned
from the same base model, for several k. Prints what notebook 08 measures, per k.

    python bench/fix_sweep.py                    # runs/cpu, k = 100 (the course's fix), 300, 1000
    python bench/fix_sweep.py --sizes 30 100

Each k is one fine-tuning run (~2 minutes on the cpu preset, 2 cores), saved as runs/cpu/fix_sweep_<k>
and reused when run again.
"""

import argparse

from minillm.course import ensure_assistant, ensure_tokenizer, ensure_world, open_run
from minillm.data import sft_conversations
from minillm.evaluate import evaluate_assistant


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default="runs/cpu", help="a course run folder (its base model is reused)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 300, 1000])
    args = ap.parse_args()
    run = open_run(args.run)
    world = ensure_world(run)
    tok = ensure_tokenizer(run, world)
    first = sft_conversations(world, fix=False)

    print(f"{args.run}: first SFT set ({len(first)} conversations) + k made-up-person conversations")
    print(f"  {'k':>5s} {'I dont know (made-up)':>22s} {'held-out right':>15s} {'held-out refused':>17s} {'unseen phrasings':>17s}")
    for k in args.sizes:
        model = ensure_assistant(run, name=f"fix_sweep_{k}", conversations=first + world.unknown_person_conversations(k),
                                 world=world, tok=tok)
        r = evaluate_assistant(model, world, tok, max_new_tokens=run.preset.eval_max_new_tokens)
        print(f"  {k:5d} {r['unknown']['idk_rate']:22.1%} {r['standard']['accuracy']:15.1%} {r['standard']['refused']:17.1%} "
              f"{r['unseen']['accuracy']:17.1%}", flush=True)


if __name__ == "__main__":
    main()
