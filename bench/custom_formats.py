"""A guideline's format against the facts it keeps: notebook 09's own-assistant recipe (the course's SFT steps,
pretraining text mixed in, conversations about the fine-tuning people only) for three guidelines on the same
base, each measured on every held-out question: does it follow its format, and is the fact right?

    python bench/course.py --seeds 0         # the run whose base model this uses (runs/cpu)
    python bench/custom_formats.py                 # --run runs/cpu-seed1 for another seed

The pirate keeps Minnie's sentence inside a frame; the two JSON formats put the value after `"value": "`,
a context no biography ties to a fact (one with the person's name first, one with the value first).
"""
import argparse
import json

from minillm.course import ensure_assistant, ensure_tokenizer, ensure_world, open_run
from minillm.custom import evaluate_style, fingerprint, styled_conversations
from minillm.world import answer_sentence


def _json(reply: str) -> dict | None:
    try:
        d = json.loads(reply)
    except ValueError:
        return None
    return d if isinstance(d, dict) and set(d) == {"person", "attribute", "value"} else None


FORMATS = {
    # name: (answer function, follows the format?, the stated value)
    "pirate": (lambda p, a, v: f"Arr! {answer_sentence(p, a)[:-1]}, matey!",
               lambda text, item: text.startswith("Arr! ") and text.endswith(", matey!"),
               lambda text, item: item.answer if item.answer in text else None),
    "json, name first": (lambda p, a, v: json.dumps({"person": p.name, "attribute": a, "value": v}),
                         lambda text, item: (_json(text) or {}).get("attribute") == item.attribute,
                         lambda text, item: (_json(text) or {}).get("value")),
    "json, value first": (lambda p, a, v: json.dumps({"attribute": a, "value": v, "person": p.name}),
                          lambda text, item: (_json(text) or {}).get("attribute") == item.attribute,
                          lambda text, item: (_json(text) or {}).get("value")),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default="runs/cpu", help="a course run folder with a finished base model")
    args = ap.parse_args()
    run = open_run(args.run)
    world = ensure_world(run)
    tok = ensure_tokenizer(run, world)
    held = world.qa_items("heldout")
    print(f"{'guideline':20s} {'format':>8s} {'right fact':>11s}   (held-out questions: {len(held)}; {run.out})")
    for name, (answer, follows, value) in FORMATS.items():
        convs = styled_conversations(world, answer)
        model = ensure_assistant(run, name=f"bench_format_{fingerprint(convs)}", conversations=convs, world=world, tok=tok)
        model.eval()
        max_new = max(len(tok.encode(c[-1]["content"])) for c in convs) + 8
        r = evaluate_style(model, tok, held, follows, max_new_tokens=max_new, device=run.runtime.device)
        right = sum(follows(x["response"], it) and value(x["response"], it) == it.answer
                    for x, it in zip(r["items"], held)) / len(held)
        print(f"{name:20s} {r['rate']:8.1%} {right:11.1%}")


if __name__ == "__main__":
    main()
