"""Can pretraining itself teach a ~2M-parameter model to tell a name it read about from a made-up one?

    python bench/teach_familiarity.py              # the base model of runs/cpu (run the course first), ~3 min
    python bench/teach_familiarity.py --steps 800
    python bench/teach_familiarity.py --everyone --finetune   # ~6 min: does the list help the fix?

The most direct teacher there is: continue pretraining the base model on its corpus, with half of every
batch forum posts that ask "Has anyone here heard of <name>?" and answer "Yes, ..." for real people and
"No, ..." for made-up ones (thousands of them, none in the evaluation). The real names in those posts
are the sft people and half of the held-out people; the other half never appear in a post. Every 100
steps it prints, with the prompt "Has anyone here heard of <name>?\\nReply:", how often " Yes" beats " No":

    real people in the posts   the list it was shown (memorising it is enough)
    real people not in posts   read about in biographies only: "Yes" here needs familiarity itself
    made-up people (new)       never seen anywhere: "No" here needs it too

With --everyone the posts name every real person (so the model can learn the whole list), and with
--finetune the new base is then fine-tuned on the first SFT set and on the set with the fix, with the
preset's settings, and evaluated as notebook 08 does: does knowing the list in the forum's words make
the fix work in a chat?

Nothing is saved; runs/cpu/base is only read.
"""

import argparse
import copy
import random

import torch

from minillm import evaluate as ev
from minillm.course import load_stage, open_run
from minillm.data import corpus_tokens, pretrain_batch, sft_batches, sft_conversations, sft_examples, token_stream
from minillm.train import TrainConfig, train
from minillm.world import EVAL_SEED

TRAIN_FAKES_SEED = 7   # made-up names for the posts; EVAL_SEED's names are the test (checked disjoint below)
QUESTIONS = ("Has anyone here heard of {name}?", "Does anyone know {name}?", "Who is {name}?")
PROBE = "Has anyone here heard of {name}?\nReply:"


def post(rng: random.Random, name: str, known: bool) -> str:
    reply = "Yes, I have read about this person." if known else "No, I have never heard that name."
    return rng.choice(QUESTIONS).format(name=name) + "\nReply: " + reply


@torch.no_grad()
def says_yes(model, tok, names: list[str]) -> float:
    """Share of names for which the next-token logit of " Yes" beats " No" after PROBE."""
    yes, no = tok.encode(" Yes")[0], tok.encode(" No")[0]
    was_training = model.training
    model.eval()
    hits = 0
    for name in names:
        logits, _ = model(torch.tensor([[tok.bos_id] + tok.encode(PROBE.format(name=name))]))
        hits += bool(logits[0, -1, yes] > logits[0, -1, no])
    model.train(was_training)
    return hits / len(names)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default="runs/cpu", help="a course run folder with a finished base model")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--repeats", type=int, default=6, help="posts per real name in the posts")
    ap.add_argument("--everyone", action="store_true", help="posts about every real person, none held back")
    ap.add_argument("--finetune", action="store_true", help="then fine-tune without and with the fix, and evaluate")
    args = ap.parse_args()
    run = open_run(args.run)
    model, world, tok = load_stage(run, "base")
    held = world.people_in("heldout")
    kept_out = [] if args.everyone else held[len(held) // 2:]
    in_posts = [p.name for p in world.people_in("sft")] + [p.name for p in held if p not in kept_out]
    not_in_posts = [p.name for p in kept_out]
    test_fakes = world.fake_people(len(held) // 2, EVAL_SEED)
    rng = random.Random(0)
    posts = [post(rng, n, True) for _ in range(args.repeats) for n in in_posts]
    fakes = world.fake_people(len(posts), TRAIN_FAKES_SEED)
    assert not set(fakes) & set(test_fakes)
    posts += [post(rng, n, False) for n in fakes]
    rng.shuffle(posts)
    post_tokens = token_stream(tok, posts)
    corpus, _ = corpus_tokens(world, tok)
    T = model.config.block_size

    def get_batch(i):
        g = torch.Generator().manual_seed(i)
        xc, yc = pretrain_batch(corpus, 8, T, g)
        xp, yp = pretrain_batch(post_tokens, 8, T, g)
        return torch.cat([xc, xp]), torch.cat([yc, yp])

    print(f"{run.out / 'base'} + {len(posts):,} posts ({len(in_posts)} real names x {args.repeats}, "
          f"{len(fakes):,} made-up names), half of each batch")
    print(f"  {'step':>5s} {'loss':>6s} {'real, in posts: Yes':>20s} {'real, not in posts: Yes':>24s} "
          f"{'made-up (new): No':>18s}")

    def report(step, loss):
        held_back = f"{says_yes(model, tok, not_in_posts):24.0%}" if not_in_posts else f"{'-':>24s}"
        print(f"  {step:5d} {loss:6.3f} {says_yes(model, tok, in_posts[:100]):20.0%} "
              f"{held_back} {1 - says_yes(model, tok, test_fakes):18.0%}", flush=True)

    report(0, float("nan"))

    def on_log(history):
        if history[-1]["step"] % 100 == 0 or history[-1]["step"] == args.steps:
            report(history[-1]["step"], history[-1]["loss"])

    cfg = TrainConfig(max_steps=args.steps, batch_size=16, learning_rate=1e-3, log_interval=50)
    train(model, get_batch, cfg, run.runtime, progress=False, on_log=on_log)
    if args.finetune:
        finetune_and_evaluate(run, model, world, tok, corpus)


def finetune_and_evaluate(run, base, world, tok, corpus):
    stored = ev.stored_knowledge(base.eval(), tok, world.bio_probes("heldout"), device=run.runtime.device)
    print(f"\nthe new base completes {stored['accuracy']:.1%} of held-out biography sentences; fine-tuned from it:")
    print(f"  {'SFT set':14s} {'held-out right':>15s} {'answers':>8s} {'I dont know (made-up)':>22s} {'held-out refused':>17s}")
    cfg = run.preset.sft
    for fix in (False, True):
        model = copy.deepcopy(base).train()
        convs = sft_conversations(world, fix=False)
        if fix:   # the unknown-person fix (notebook 08's second part), not the course's scope fix
            convs = convs + world.unknown_person_conversations(world.default_unknown_count())
        examples = sft_examples(tok, convs)
        train(model, sft_batches(examples, corpus, cfg, run.preset.sft_mix, model.config.block_size), cfg,
              run.runtime, progress=False)
        r = ev.evaluate_assistant(model.eval(), world, tok, max_new_tokens=run.preset.eval_max_new_tokens)
        print(f"  {'with the fix' if fix else 'first set':14s} {r['standard']['accuracy']:15.1%} "
              f"{r['standard']['answer_rate']:8.1%} {r['unknown']['idk_rate']:22.1%} {r['standard']['refused']:17.1%}", flush=True)


if __name__ == "__main__":
    main()
