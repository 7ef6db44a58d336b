"""Where can the base model recall a person's facts? The same held-out facts, probed in different contexts.

    python bench/name_context.py                 # the base model of runs/cpu (run the course first)
    python bench/name_context.py --run runs/cpu-augment1

A question puts the name mid-sentence ("Where was Geten Banek born?"), so an assistant can only answer
from what the base model recalls *there*. Each line completes "<name> was born in" (or the attribute's
sentence) for every held-out person and attribute, greedy, and counts the completions that start with
the true value:

    document start         <|bos|>Geten Banek was born in
    after other text       <|bos|>The weather was nice today. Geten Banek was born in
    after the question     <|bos|>Where was Geten Banek born?\nGeten Banek was born in
    pronoun after question <|bos|>Where was Geten Banek born?\nHe was born in

bench/RESULTS.md records what this printed before and after biographies got lead-ins (world._lead).
"""

import argparse

import torch

from minillm import evaluate as ev
from minillm.course import load_stage, open_run
from minillm.world import BIO_PROBE_TEMPLATES

CONTEXTS = {  # what comes before the probe sentence, given the question about the same fact
    "document start": lambda question: "",
    "after other text": lambda question: "The weather was nice today. ",
    "after the question": lambda question: question + "\n",
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default="runs/cpu", help="a course run folder with a finished base model")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    run = open_run(args.run)
    model, world, tok = load_stage(run, "base")

    items = world.qa_items("heldout")
    rows = []
    for label, ctx in CONTEXTS.items():
        probes = [(ctx(it.question) + BIO_PROBE_TEMPLATES[it.attribute].format(name=it.name), it.answer, it.attribute)
                  for it in items]
        rows.append((label, ev.stored_knowledge(model, tok, probes)["accuracy"]))
    probes = [(it.question + "\n" + BIO_PROBE_TEMPLATES[it.attribute].format(name=world.person(it.name).ref("Subj")),
               it.answer, it.attribute) for it in items]
    rows.append(("pronoun after the question", ev.stored_knowledge(model, tok, probes)["accuracy"]))

    print(f"{run.out / 'base'}: {len(items)} held-out facts, completed right")
    for label, acc in rows:
        print(f"  {label:28s} {acc:6.1%}")


if __name__ == "__main__":
    main()
