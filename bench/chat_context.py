"""Where does a question in a chat go wrong? The first assistant's held-out questions asked in their chat,
alone, alone at the positions the chat would give them, and (follow-ups) with the name for the pronoun;
and the standard questions asked first at positions 0, 25, 50 and 100 on (less where the context has no room).

    python bench/chat_context.py                              # the first assistant of runs/cpu (run the course first)
    python bench/chat_context.py --run runs/cpu-seed1 --run runs/cpu-seed2

A question after small talk can lose in two ways: *where* it sits (the model has learned position
embeddings, and fine-tuning puts every first question right after <|bos|>) and *what* comes before it.
"alone, moved" asks the question alone with every position moved on by the length of what came before it in
its chat, no tokens added (a forward pre-hook on the position embedding): what is left of the loss is the
context's. A pronoun follow-up ("And where does he work?") can lose to the chat or to the pronoun: "with the
name" asks the same chat with the person's name instead. bench/RESULTS.md records what this printed.
"""

import argparse
from contextlib import contextmanager

from minillm import evaluate as ev
from minillm.chat import prompt_ids
from minillm.course import load_stage, open_run
from minillm.world import ATTRIBUTES
from minillm.world.guideline import standard_question
from minillm.world.entities import seeded_rng


@contextmanager
def positions_moved(model, k: int):
    """Every position the model reads is k further on: the position embedding is looked up at pos + k."""
    if "wpe" not in model.transformer:
        raise SystemExit("bench/chat_context.py moves the learned position table; this run's model has "
                         f"position={model.config.position!r}: pass a run with learned positions")
    hook = model.transformer.wpe.register_forward_pre_hook(lambda module, args: (args[0] + k,))
    try:
        yield
    finally:
        hook.remove()


def accuracy(model, tok, questions, items, values, limit: int) -> float:
    return ev.score_answers(ev.ask(model, tok, questions, as_chat=True, max_new_tokens=limit), items, values,
                            require_stop=True)["accuracy"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", action="append", help="a course run folder with a finished assistant_v1 (repeatable)")
    args = ap.parse_args()
    for folder in args.run or ["runs/cpu"]:
        run = open_run(folder)     # the run's own seed and world
        model, world, tok = load_stage(run, "assistant_v1")
        values = {a: world.attribute_values(a) for a in ATTRIBUTES}
        limit = run.preset.eval_max_new_tokens     # the course's reply limit

        def right(questions, items):
            return accuracy(model, tok, questions, items, values, limit)
        rows = []

        chats = world.after_greeting_items("heldout")
        items = [it for _, it in chats]
        rows.append(("after small talk, in its chat", right([c for c, _ in chats], items)))
        rows.append(("  the same questions alone", right([c[-1]["content"] for c, _ in chats], items)))
        room = lambda prompts: model.config.block_size - max(map(len, prompts)) - limit   # moved, it must fit
        n_right = 0
        for chat, it in chats:   # one at a time: each moves by its own chat's length
            alone = prompt_ids(tok, chat[-1:])
            moved = min(len(prompt_ids(tok, chat)) - len(alone), room([alone]))
            with positions_moved(model, moved):
                n_right += right([chat[-1]["content"]], [it])
        rows.append(("  alone, moved to the chat's positions", n_right / len(chats)))

        chats = world.follow_up_items("heldout")
        items = [it for _, it in chats]
        rng = seeded_rng(world.config.seed, "chat-context")
        named = [chat[:-1] + [{"role": "user", "content": standard_question(it.name, it.attribute, rng)}]
                 for chat, it in chats]
        rows.append(("pronoun follow-up, in its chat", right([c for c, _ in chats], items)))
        rows.append(("  the same chat, with the name", right(named, items)))
        rows.append(("  that question alone", right([c[-1]["content"] for c in named], items)))

        items = world.qa_items("heldout")
        most = room([prompt_ids(tok, [{"role": "user", "content": it.question}]) for it in items])
        for k in (0, 25, 50, 100):     # the standard questions, asked first, at later positions
            k = min(k, most)
            with positions_moved(model, k):
                rows.append((f"standard questions, moved by {k}", right([it.question for it in items], items)))

        print(f"{run.out / 'assistant_v1'}: held-out people, right")
        for label, acc in rows:
            print(f"  {label:40s} {acc:6.1%}")


if __name__ == "__main__":
    main()
