"""The measured values behind the exercise answers that need a run, on a finished one (default runs/cpu, seed 0):

    05, exercises 1 and 2: fine-tuning on the first set with the loss mask, without it (every token a target),
                    and without a target on the assistant's <|end|>, as the exercises do it
    07, exercise 1: a few-shot prompt (three fine-tuning people's questions, each with the guideline's answer,
                    then a held-out question, as one document): how often the base model answers, and right
    08, exercise 2: the scope fix with k conversations instead of the course's, one fine-tuning per k
    08, exercise 3: the fix without its mixed conversations (a real question, its answer, then the request)
    08, exercise 4: a patch: the first assistant fine-tuned a few steps more on the fix conversations alone

    python bench/exercise_answers.py                    # runs/cpu, k = 5 25 100
    python bench/exercise_answers.py --run runs/cpu-seed1 --sizes 10 50
    python bench/exercise_answers.py --chapters 05      # one chapter's

Each fine-tuning of chapter 08 is saved in the run (scope_k<k>, scope_single_turn, patch<steps>) and reused when
run again (~2 minutes each on the cpu preset, 2 cores; the patch a few seconds); chapter 05's three are trained
each time (about a minute each).
"""
import argparse
import dataclasses

import minillm  # noqa: F401  (before torch: the thread policy)
import torch

from minillm import evaluate as ev
from minillm.chat import reply
from minillm.course import ensure_assistant, load_stage, open_run
from minillm.data import sft_batch, sft_conversations, sft_examples
from minillm.evaluate import evaluate_assistant
from minillm.train import train
from minillm.world.guideline import answer_sentence


def few_shot(base, world, tok, n_shots: int = 3, max_new_tokens: int = 24) -> tuple[float, float, int, int]:
    """(answer rate, accuracy, questions, shots) of the base model on held-out questions behind n_shots answered
    ones (fewer when the prompt would not fit the context with room for the reply)."""
    people = {p.name: p for p in world.people}
    items = world.qa_items("heldout")
    longest = max((it.question for it in items), key=lambda q: len(tok.encode(q)))
    while True:
        prefix = "".join(f"{it.question}\n{answer_sentence(people[it.name], it.attribute)}\n\n"
                         for it in world.qa_items("sft")[:n_shots])
        if n_shots == 0 or len(tok.encode(prefix + longest + "\n")) + 1 + max_new_tokens <= base.config.block_size:
            break
        n_shots -= 1
    stated = [ev.stated_value(reply(base, tok, prefix + it.question + "\n", as_chat=False, max_new_tokens=max_new_tokens),
                              it.attribute, world.attribute_values(it.attribute)) for it in items]
    return (sum(v is not None for v in stated) / len(items),
            sum(v == it.answer for v, it in zip(stated, items)) / len(items), len(items), n_shots)


def mask_variants(run, world, tok) -> None:
    """05 exercises 1 and 2, as the exercises say to run them: the preset's SFT settings, batches of 16 from
    sft_batch (no pretraining text mixed in), from the base model; held-out questions scored with the stop."""
    examples = sft_examples(tok, world.sft_conversations())
    variants = {
        "with the mask": examples,
        "without the mask": [(ids, [1] * len(ids)) for ids, _ in examples],
        "no target on the assistant's <|end|>": [(ids, [0 if t == tok.end_id else m for t, m in zip(ids, mask)])
                                                 for ids, mask in examples],
    }
    items = world.qa_items("heldout")
    values = {a: world.attribute_values(a) for a in {it.attribute for it in items}}
    print(f"05 exercises 1 and 2: {len(examples)} conversations, {run.preset.sft.max_steps} steps of 16, from the base model")
    print(f"  {'loss on':38s} {'held-out right':>15s} {'answers':>8s} {'ends its turn':>14s}")
    for label, exs in variants.items():
        model = load_stage(run, "base", world=world, tok=tok)[0]
        block = model.config.block_size
        train(model, lambda i: sft_batch(exs, 16, block, torch.Generator().manual_seed(i)), run.preset.sft,
              run.runtime, progress=False)
        responses = ev.ask(model.eval(), tok, [it.question for it in items], as_chat=True,
                           max_new_tokens=run.preset.eval_max_new_tokens)
        score = ev.score_answers(responses, items, values, require_stop=True)
        print(f"  {label:38s} {score['accuracy']:15.1%} {score['answer_rate']:8.1%} "
              f"{sum(r.stopped for r in responses) / len(responses):14.1%}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default="runs/cpu", help="a course run folder (its base model is reused)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[5, 25, 100])
    ap.add_argument("--patch-steps", type=int, default=50, help="08 exercise 4: steps of the patch")
    ap.add_argument("--chapters", nargs="+", choices=("05", "07", "08"), default=["05", "07", "08"])
    args = ap.parse_args()
    run = open_run(args.run)
    base, world, tok = load_stage(run, "base")     # with the run's world and tokenizer
    if "05" in args.chapters:
        mask_variants(run, world, tok)
    if "07" in args.chapters:
        few_shot_line(base, world, tok)
    if "08" in args.chapters:
        chapter_08(run, world, tok, args)


def few_shot_line(base, world, tok) -> None:
    answered, right, n, shots = few_shot(base, world, tok)
    print(f"07 exercise 1, the base model with {shots} answered questions in front, {n} held-out questions: "
          f"answers {answered:.1%}, right {right:.1%} (asked alone: {ev.evaluate_base(base, world, tok)['heldout']['answer_rate']:.1%} answered)")


def chapter_08(run, world, tok, args) -> None:
    first = sft_conversations(world, fix=False)
    fix = sft_conversations(world, fix=True)[len(first):]
    print(f"08 exercises 2 and 3: the first set ({len(first)} conversations) plus a scope fix, one fine-tuning each")
    print(f"  {'fix':28s} {'scope answer':>13s} {'mid-chat':>9s} {'held-out right':>15s} {'turned away':>12s} {'follow-ups':>11s}")
    sets = [(f"{k} conversations", f"scope_k{k}", world.scope_conversations(k)) for k in args.sizes]
    sets.append((f"{sum(len(c) == 2 for c in fix)} single-turn only", "scope_single_turn", [c for c in fix if len(c) == 2]))
    for label, name, convs in sets:
        model = ensure_assistant(run, name=name, conversations=first + convs, world=world, tok=tok).eval()
        r = evaluate_assistant(model, world, tok, max_new_tokens=run.preset.eval_max_new_tokens)
        print(f"  {label:28s} {r['scope']['rate']:13.1%} {r['scope_mid_chat']['rate']:9.1%} {r['standard']['accuracy']:15.1%} "
              f"{r['standard']['refused']:12.1%} {r['follow_up']['accuracy']:11.1%}", flush=True)

    # exercise 4: the patch starts from the first assistant and sees only the fix (with the course's share of
    # pretraining text in each batch, as every fine-tuning here), on a schedule as short as the patch
    v1 = load_stage(run, "assistant_v1", world=world, tok=tok)[0]
    short = dataclasses.replace(run.preset.sft, max_steps=args.patch_steps)
    patch_run = dataclasses.replace(run, preset=dataclasses.replace(run.preset, sft=short))
    rows = [("the first assistant", v1), ("the released assistant", load_stage(run, "assistant", world=world, tok=tok)[0]),
            (f"the first + {args.patch_steps} steps on the fix alone",
             ensure_assistant(patch_run, name=f"patch{args.patch_steps}", conversations=fix, base=v1, world=world, tok=tok))]
    width = max(len(label) for label, _ in rows)
    print(f"08 exercise 4: a patch instead of a fine-tuning from the base ({len(fix)} fix conversations)")
    print(f"  {'assistant':{width}s} {'scope answer':>13s} {'held-out right':>15s} {'answers':>8s} {'turned away':>12s} {'follow-ups':>11s}")
    for label, model in rows:
        r = evaluate_assistant(model.eval(), world, tok, max_new_tokens=run.preset.eval_max_new_tokens)
        print(f"  {label:{width}s} {r['scope']['rate']:13.1%} {r['standard']['accuracy']:15.1%} {r['standard']['answer_rate']:8.1%} "
              f"{r['standard']['refused']:12.1%} {r['follow_up']['accuracy']:11.1%}", flush=True)


if __name__ == "__main__":
    main()
