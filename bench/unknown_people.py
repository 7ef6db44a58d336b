"""Can the base model tell a person it read about from a made-up one? Two measurements behind notebook 08.

    python bench/unknown_people.py               # the base model of runs/cpu (run the course first)

1. Surprise: the base model's loss on the name tokens after the first, inside "Where was <name> born?",
   for held-out people (read about, never fine-tuned on), sft people, and made-up people. A large gap
   means the model *notices* an unfamiliar name.
2. A linear probe: logistic regression on the base model's hidden state after each block, at the last
   name token of the chat prompt. Trained to separate sft people from the fix set's made-up people (what
   fine-tuning with the fix can see), tested on held-out people and the evaluation's made-up people (what
   the fix must get right). Near 50% on both means the state carries no "I know this person" direction
   that a linear read-out - roughly what fine-tuning builds on - could use.
3. Confidence: the first assistant (assistant_v1) answers one question per held-out and made-up person
   with the guideline's sentence ("She was born in ..."); its confidence is the mean probability of the
   value's tokens (greedy). "Answer only when confident" is the best a model could do with this signal:
   the script prints how well it separates held-out from made-up people (AUROC), and the held-out
   accuracy left when the threshold turns away 90% of made-up people (the fix's target).
"""

import argparse
import statistics

import torch
import torch.nn.functional as F

from minillm import chat
from minillm.course import load_stage, open_run
from minillm.evaluate import auroc, name_surprise
from minillm.world import ATTRIBUTES, BIO_PROBE_TEMPLATES, EVAL_SEED, FIX_SEED, QUESTION_TEMPLATES


@torch.no_grad()
def name_states(model, tok, names: list[str]) -> torch.Tensor:
    """(len(names), n_layer, n_embd): each block's output at the last token of the name in the chat prompt."""
    out, captured = [], {}
    hooks = [b.register_forward_hook(lambda m, i, o, k=k: captured.__setitem__(k, o))
             for k, b in enumerate(model.transformer.h)]
    try:
        for name in names:
            full = chat.prompt_ids(tok, [{"role": "user", "content": f"Where was {name} born?"}])
            pos = 1 + len(tok.encode(f"Where was {name}"))   # <|bos|> <|user|> Where was <name>: its last token
            assert full[2:pos + 1] == tok.encode(f"Where was {name}"), name
            model(torch.tensor([full]))
            out.append(torch.stack([captured[k][0, pos] for k in range(len(hooks))]))
    finally:
        for h in hooks:
            h.remove()
    return torch.stack(out)


def linear_probe(pos: torch.Tensor, neg: torch.Tensor, steps: int = 500, l2: float = 1e-2):
    """Logistic regression (standardised features, balanced classes); returns a predict(x) -> bool."""
    x = torch.cat([pos, neg])
    y = torch.cat([torch.ones(len(pos)), torch.zeros(len(neg))])
    mu, sd = x.mean(0), x.std(0) + 1e-5
    w = torch.zeros(x.shape[1], requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    opt = torch.optim.Adam([w, b], lr=1e-2)
    weight = torch.tensor(len(neg) / len(pos))
    for _ in range(steps):
        loss = F.binary_cross_entropy_with_logits((x - mu) / sd @ w + b, y, pos_weight=weight) + l2 * w.pow(2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return lambda z: (((z - mu) / sd @ w + b) > 0).detach()


@torch.no_grad()
def answer_confidence(model, tok, question: str, frame: str, max_tokens: int = 12) -> tuple[str, float]:
    """Greedy value after the guideline's answer frame ("She was born in"): (value text, mean probability
    of its tokens). The value ends at the first token with a full stop that is not a date's day."""
    ids = chat.prompt_ids(tok, [{"role": "user", "content": question}]) + tok.encode(frame)
    out, probs = [], []
    for _ in range(max_tokens):
        logits, _ = model(torch.tensor([ids]))
        p = F.softmax(logits[0, -1].float(), dim=-1)
        i = int(p.argmax())
        out.append(i)
        probs.append(p[i].item())
        ids.append(i)
        if "." in tok.decode([i]) and not tok.decode(out).rstrip(".").strip().isdigit():
            break
    return tok.decode(out), statistics.mean(probs)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default="runs/cpu", help="a course run folder with a finished base model")
    args = ap.parse_args()
    torch.manual_seed(0)
    run = open_run(args.run)
    model, world, tok = load_stage(run, "base")

    groups = {"held-out people": [p.name for p in world.people_in("heldout")],
              "sft people": [p.name for p in world.people_in("sft")],
              "made-up (fix set)": world.fake_people(world.default_unknown_count(), FIX_SEED),
              "made-up (evaluation)": world.fake_people(len(world.people_in("heldout")), EVAL_SEED)}
    surprise = {}
    print(f"{run.out / 'base'}: loss on a name's tokens after the first, in 'Where was <name> born?' (nats)")
    for label, names in groups.items():
        losses = [name_surprise(model, tok, n) for n in names]
        print(f"  {label:22s} mean {statistics.mean(losses):5.2f}   median {statistics.median(losses):5.2f}")
        surprise[label] = losses
    print(f"  surprise tells held-out from made-up (evaluation) names with AUROC "
          f"{auroc(surprise['made-up (evaluation)'], surprise['held-out people']):.3f}")

    states = {k: name_states(model, tok, v) for k, v in groups.items()}
    print("\nlinear probe, trained on sft people vs made-up (fix set), tested on unseen names:")
    print(f"  {'after block':12s} {'held-out judged known':>22s} {'made-up judged unknown':>23s}")
    for layer in range(states["sft people"].shape[1]):
        predict = linear_probe(states["sft people"][:, layer], states["made-up (fix set)"][:, layer])
        known = predict(states["held-out people"][:, layer]).float().mean().item()
        unknown = 1 - predict(states["made-up (evaluation)"][:, layer]).float().mean().item()
        print(f"  {layer:<12d} {known:22.0%} {unknown:23.0%}")

    confidence_rule(load_stage(run, "assistant_v1")[0], world, tok)


def confidence_rule(model, world, tok):
    held = world.people_in("heldout")
    rows = []   # (is_real, confidence, answered right)
    for i, p in enumerate(held):
        a = ATTRIBUTES[i % len(ATTRIBUTES)]
        q = QUESTION_TEMPLATES[a][i % len(QUESTION_TEMPLATES[a])].format(name=p.name)
        text, conf = answer_confidence(model, tok, q, BIO_PROBE_TEMPLATES[a].format(name=p.ref("Subj")))
        rows.append((True, conf, p.value(a) in text))
    for i, name in enumerate(world.fake_people(len(held), EVAL_SEED)):
        a = ATTRIBUTES[i % len(ATTRIBUTES)]
        q = QUESTION_TEMPLATES[a][i % len(QUESTION_TEMPLATES[a])].format(name=name)
        rows.append((False, answer_confidence(model, tok, q, BIO_PROBE_TEMPLATES[a].format(name="She"))[1], False))
    real = [c for r, c, _ in rows if r]
    fake = sorted(c for r, c, _ in rows if not r)
    threshold = fake[int(0.9 * len(fake))]    # answer only above it: 90% of made-up people turned away
    kept = sum(ok and c > threshold for r, c, ok in rows if r) / len(real)
    print(f"\nassistant_v1's confidence in its own answer (mean probability of the value's tokens):")
    print(f"  held-out median {statistics.median(real):.2f}, made-up median {statistics.median(fake):.2f}, "
          f"AUROC {auroc(real, fake):.3f}")
    print(f"  answer only above {threshold:.2f} (turns away 90% of made-up people): held-out accuracy "
          f"{kept:.1%}, against {sum(ok for r, _, ok in rows if r) / len(real):.1%} answering everyone")


if __name__ == "__main__":
    main()
