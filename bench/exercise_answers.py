"""The measured values behind the exercise answers, on a finished run (default runs/cpu, seed 0):

    00, exercises 1 and 4: the notebook's 40 steps of a tiny GPT on one batch in fp32 and in bf16 autocast
                    (seconds, final loss), and on a batch of random bytes instead of text
    01, exercises 1 and 2: bytes per token at 512, 1024 and 2048 tokens; tokens per character on the Chinese
                    sentence before and after a hundred copies of it join the documents
    03, exercises 1 to 3: 100 pretraining steps at the preset's learning rate and at 10 times it; the tokens
                    200 exposures per fact take; a matmul's FLOP/s by its size
    04, exercise 2: the base model's name-first probes sampled five times at temperature 1.0 against greedy
    06, exercise 2: the first assistant's fine-tuning with a quarter of the steps: format, stop and facts
    06, exercise 4: one held-out date-of-birth question asked the first assistant ten times at temperature 1.0
    07, exercise 2: the first assistant's held-out accuracy at temperatures 0.7 and 1.0 against greedy
    07, exercise 4: the first assistant's wrong held-out answers by attribute, beside the base model's stored facts
    05, exercises 1 and 2: fine-tuning on the first set with the loss mask, without it (every token a target),
                    and without a target on the assistant's <|end|>, as the exercises do it
    07, exercise 1: a few-shot prompt (three fine-tuning people's questions, each with the guideline's answer,
                    then a held-out question, as one document): how often the base model answers, and right
    08, exercise 2: the scope fix with k conversations instead of the course's, one fine-tuning per k
    08, exercise 3: the fix without its mixed conversations (a real question, its answer, then the request)
    08, exercise 4: a patch: the first assistant fine-tuned a few steps more on the fix conversations alone

    python bench/exercise_answers.py                    # runs/cpu, k = 5 25 100
    python bench/exercise_answers.py --chapters 00 01 03   # the ones that take seconds (about two minutes)
    python bench/exercise_answers.py --chapters 04 06 07   # sampling, a quarter of the steps, wrong by attribute (4 min)
    python bench/exercise_answers.py --run runs/cpu-seed1 --sizes 10 50
    python bench/exercise_answers.py --chapters 05      # one chapter's

Each fine-tuning of chapter 08 is saved in the run (scope_k<k>, scope_single_turn, patch<steps>) and reused when
run again (~2 minutes each on the cpu preset, 2 cores; the patch a few seconds); chapter 05's three are trained
each time (about a minute each).
"""
import argparse
import dataclasses
import os
import time

import minillm  # noqa: F401  (before torch: the thread policy)
import torch

from minillm import evaluate as ev
from minillm.chat import reply
from minillm.config import world_config
from minillm.course import ensure_assistant, ensure_tokenizer, ensure_world, load_stage, open_run
from minillm.data import corpus_tokens, pretrain_batch, sft_batch, sft_conversations, sft_examples
from minillm.device import choose_runtime, measure_matmul_flops
from minillm.generate import model_device
from minillm.evaluate import evaluate_assistant
from minillm.model import GPT, GPTConfig
from minillm.tokenizer import Tokenizer
from minillm.train import TrainConfig, train
from minillm.world import ATTRIBUTES, World
from minillm.world.biographies import biographies
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
    chapters = ("00", "01", "03", "04", "05", "06", "07", "08")
    ap.add_argument("--chapters", nargs="+", choices=chapters, default=list(chapters))
    args = ap.parse_args()
    run = open_run(args.run)
    world = ensure_world(run)
    tok = ensure_tokenizer(run, world)
    if "00" in args.chapters:
        chapter_00(world)
    if "01" in args.chapters:
        chapter_01(run, world)
    if "03" in args.chapters:
        chapter_03(run, world, tok)
    if not {"04", "05", "06", "07", "08"} & set(args.chapters):
        return
    base, world, tok = load_stage(run, "base", world=world, tok=tok)
    if "04" in args.chapters:
        sampled_probes(base, world, tok)
    if "05" in args.chapters:
        mask_variants(run, world, tok)
    if {"06", "07"} & set(args.chapters):
        v1 = load_stage(run, "assistant_v1", world=world, tok=tok)[0]
        # the first assistant on the held-out questions, asked once for both chapters
        v1_standard = evaluate_assistant(v1, world, tok, max_new_tokens=run.preset.eval_max_new_tokens)["standard"]
    if "06" in args.chapters:
        quarter_steps(run, world, tok, v1_standard)
        sampled_question(v1, world, tok)
    if "07" in args.chapters:
        few_shot_line(base, world, tok)
        sampled_accuracy(run, v1, world, tok)
        wrong_by_attribute(base, v1_standard, world, tok)
    if "08" in args.chapters:
        chapter_08(run, world, tok, args)


def chapter_00(world) -> None:
    """Notebook 00's tiny GPT, 40 steps on one batch: fp32 against bf16 autocast (exercise 1), text against
    random bytes (exercise 4)."""
    text = " ".join(world.documents()[:20]).encode("utf-8")
    batches = {"text": torch.tensor(list(text[: 8 * 65]), dtype=torch.long).view(8, 65),
               "random bytes": torch.randint(0, 256, (8, 65), generator=torch.Generator().manual_seed(0))}
    cfg = TrainConfig(max_steps=40, batch_size=8, learning_rate=1e-3, warmup_steps=5, log_interval=1, compile=False)
    flags = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
    native = "avx512_bf16" in flags or "amx_bf16" in flags
    print(f"00 exercises 1 and 4: notebook 00's tiny GPT, 40 steps on one batch (CPU, "
          f"{'with' if native else 'without'} native bf16 instructions{'' if flags else ': unknown'})")
    print(f"  {'batch':14s} {'precision':10s} {'seconds':>8s} {'first loss':>11s} {'last loss':>10s}")
    for label, precision in (("text", "fp32"), ("text", "bf16"), ("random bytes", "fp32")):
        data = batches[label]
        seconds = []
        for _ in range(2):          # the second time: the first also pays for one-time set-up
            torch.manual_seed(0)
            tiny = GPT(GPTConfig(vocab_size=256, block_size=64, n_layer=2, n_head=2, n_embd=64))
            t0 = time.perf_counter()
            result = train(tiny, lambda step: (data[:, :-1], data[:, 1:]), cfg, choose_runtime("cpu", precision),
                           progress=False)
            seconds.append(time.perf_counter() - t0)
        seconds = seconds[-1]
        losses = [h["loss"] for h in result.history]
        print(f"  {label:14s} {precision:10s} {seconds:8.2f} {losses[0]:11.3f} {losses[-1]:10.3f}", flush=True)


def chapter_01(run, world) -> None:
    """Bytes per token by vocabulary size (exercise 1), and a hundred copies of a Chinese sentence (exercise 2)."""
    docs = world.documents()
    sample = "".join(docs[:100])
    print(f"01 exercise 1: bytes per token on notebook 01's sample ({len(sample.encode()):,} bytes)")
    for V in (512, 1024, 2048):
        try:
            t = Tokenizer.train(docs, V)
        except ValueError:      # a small preset's world (smoke) has too little text for the most merges
            print(f"  vocabulary {V:5d}: too little text for this many merges")
            continue
        print(f"  vocabulary {V:5d}: {len(sample.encode()) / len(t.encode(sample)):.2f} bytes per token", flush=True)
    chinese = "古老的灯塔矗立在港口边上，每天晚上它的灯光都会引导船只回家。"
    before = Tokenizer.train(docs, run.preset.vocab_size)
    after = Tokenizer.train(docs + [chinese] * 100, run.preset.vocab_size)
    print(f"01 exercise 2: tokens per character on the Chinese sentence, vocabulary {run.preset.vocab_size}: "
          f"{len(before.encode(chinese)) / len(chinese):.2f} before, {len(after.encode(chinese)) / len(chinese):.2f} "
          "with a hundred copies in the documents")


def chapter_03(run, world, tok) -> None:
    """100 steps at two learning rates (exercise 1), the tokens 200 exposures take (2), FLOP/s by size (3)."""
    train_tokens, _ = corpus_tokens(world, tok)
    print("03 exercise 1: 100 pretraining steps from scratch, batches of 16 (loss at steps 10, 50, 100)")
    for scale in (1, 10):
        torch.manual_seed(0)
        model = GPT(dataclasses.replace(run.preset.model, vocab_size=tok.vocab_size))
        get_batch = lambda i: pretrain_batch(train_tokens, 16, model.config.block_size,  # noqa: E731
                                             torch.Generator().manual_seed(i))
        cfg = dataclasses.replace(run.preset.pretrain, max_steps=100,
                                  learning_rate=run.preset.pretrain.learning_rate * scale)
        history = train(model, get_batch, cfg, run.runtime, progress=False).history
        at = {h["step"]: h["loss"] for h in history if "loss" in h}
        print(f"  learning rate {cfg.learning_rate:g}: " + ", ".join(f"{at[s]:.3f}" for s in (10, 50, 100)
                                                                      if s in at), flush=True)
    print("03 exercise 2: tokens for 200 exposures per fact")
    for label, cfg in (("one biography per person", world_config(run.preset, augment=1)),
                       ("the preset", world_config(run.preset))):
        tokens = sum(len(tok.encode(d)) for d in World.generate(cfg).documents())
        passes = 200 / cfg.bios_per_person
        print(f"  {label} ({cfg.bios_per_person} each): corpus {tokens:,} tokens, {passes:g} passes = "
              f"{passes * tokens / 1e6:.1f}M tokens")
    print("03 exercise 3: FLOP/s of an n x n matmul on this CPU: " + ", ".join(
        f"n={n} {measure_matmul_flops(n=n) / 1e9:.0f} G" for n in (64, 128, 256, 512, 2048)))


def sampled_probes(base, world, tok, samples: int = 5) -> None:
    """04 exercise 2: each name-first probe greedily and `samples` times at temperature 1.0."""
    probes = world.bio_probes("heldout")
    device = model_device(base)

    def right(temperature, seed=0):
        stored = ev.stored_knowledge(base, tok, probes, device=device, temperature=temperature,
                                     generator=torch.Generator(device).manual_seed(seed))
        return [it["correct"] for it in stored["items"]]

    greedy = right(0.0)
    sampled = [right(1.0, seed) for seed in range(samples)]
    per_probe = [sum(s[i] for s in sampled) for i in range(len(probes))]
    kept = [n for n, g in zip(per_probe, greedy) if g]
    found = [n for n, g in zip(per_probe, greedy) if not g]
    print(f"04 exercise 2: {len(probes)} name-first probes, greedy right {sum(greedy) / len(probes):.1%}; sampled at "
          f"temperature 1.0 ({samples} seeds) right {sum(per_probe) / (samples * len(probes)):.1%}; of the facts right "
          f"greedily, {sum(n == samples for n in kept) / max(len(kept), 1):.1%} right in all {samples} samples, "
          f"{sum(n == 0 for n in kept) / max(len(kept), 1):.1%} in none; of the others, "
          f"{sum(n > 0 for n in found) / max(len(found), 1):.1%} right in at least one", flush=True)


def with_sft_steps(run, steps: int):
    """The run with a fine-tuning of `steps` steps on the preset's schedule (warmup and decay scale with it)."""
    return dataclasses.replace(run, preset=dataclasses.replace(
        run.preset, sft=dataclasses.replace(run.preset.sft, max_steps=steps)))


def quarter_steps(run, world, tok, v1_standard: dict) -> None:
    """06 exercise 2: the first assistant's fine-tuning with a quarter of its steps (saved in the run as
    assistant_v1_short, the exercise's name), against all of them: format (an answer), stop, right facts."""
    steps = run.preset.sft.max_steps // 4
    short = ensure_assistant(with_sft_steps(run, steps), fix=False, name="assistant_v1_short", world=world, tok=tok)
    short_standard = evaluate_assistant(short.eval(), world, tok, max_new_tokens=run.preset.eval_max_new_tokens)["standard"]
    cells = []
    for label, r in ((f"{steps} steps", short_standard), (f"{run.preset.sft.max_steps} steps", v1_standard)):
        stops = sum(it["stopped"] for it in r["items"]) / len(r["items"])
        cells.append(f"{label}: answers {r['answer_rate']:.1%}, ends its turn {stops:.1%}, right {r['accuracy']:.1%}")
    print("06 exercise 2: the first assistant on the held-out questions, " + "; ".join(cells), flush=True)


def wrong_by_attribute(base, v1_standard: dict, world, tok) -> None:
    """07 exercise 4: per attribute, the first assistant's held-out answers that are wrong, and the base model's
    biography-prefix probes completed right; and whether a fact the probe misses is ever answered right."""
    items = world.qa_items("heldout")
    answers = v1_standard["items"]
    probes = world.bio_probes("heldout", from_biography=True)
    stored = ev.stored_knowledge(base, tok, probes, device=model_device(base))["items"]
    # whose fact each probe is: bio_probes goes person by person, attribute by attribute, and skips a fact its
    # person's first biography opens with (nothing before the value to complete)
    people = {person.name: person for person in world.people_in("heldout")}
    owners = [(name, a) for name, person in people.items() for a in ATTRIBUTES
              if biographies(world, person)[0].split(person.value(a))[0].rstrip()]
    assert [v for _, v, _ in probes] == [people[n].value(a) for n, a in owners], "bio_probes' order changed"
    stored_by_fact = {owner: it["correct"] for owner, it in zip(owners, stored)}
    print(f"07 exercise 4: by attribute, the first assistant's wrong held-out answers and the base model's stored facts")
    missed_right = missed = 0
    for attribute in dict.fromkeys(it.attribute for it in items):
        pairs = [(it, a) for it, a in zip(items, answers) if it.attribute == attribute]
        ok = [it_["correct"] for p, it_ in zip(probes, stored) if p[2] == attribute]
        print(f"  {attribute:14s} wrong {sum(not a['correct'] for _, a in pairs):3d} of {len(pairs)}   "
              f"stored {sum(ok) / max(len(ok), 1):6.1%} of {len(ok)} probes", flush=True)
    for it, a in zip(items, answers):
        key = (it.name, it.attribute)
        if key in stored_by_fact and not stored_by_fact[key]:
            missed += 1
            missed_right += a["correct"]
    print(f"  facts the probe misses: {missed}, answered right: {missed_right}")


def sampled_question(v1, world, tok, samples: int = 10) -> None:
    """06 exercise 4: notebook 06's held-out question (a date of birth) greedily and ten times at temperature 1.0."""
    item = world.qa_items("heldout")[0]
    values = world.attribute_values(item.attribute)
    stated = [ev.stated_value(reply(v1, tok, item.question, temperature=1.0, seed=i), item.attribute, values)
              for i in range(samples)]
    greedy = ev.stated_value(reply(v1, tok, item.question), item.attribute, values)
    print(f"06 exercise 4: {item.question!r} (true: {item.answer}; greedy: {greedy}): {samples} samples at "
          f"temperature 1.0 state the true date {stated.count(item.answer)} times; the others: "
          f"{', '.join(str(v) for v in stated if v != item.answer) or 'none'}")


def sampled_accuracy(run, assistant, world, tok) -> None:
    """07 exercise 2: notebook 07's assistant (the first) on the held-out questions, greedy and sampled (one seed
    per temperature)."""
    items = world.qa_items("heldout")
    values = {a: world.attribute_values(a) for a in {it.attribute for it in items}}
    device = model_device(assistant)
    cells = []
    for temperature in (0.0, 0.7, 1.0):
        responses = ev.ask(assistant, tok, [it.question for it in items], as_chat=True,
                           max_new_tokens=run.preset.eval_max_new_tokens, device=device, temperature=temperature,
                           generator=torch.Generator(device).manual_seed(0))
        score = ev.score_answers(responses, items, values, require_stop=True)
        cells.append(f"temperature {temperature:g} {score['accuracy']:.1%}")
    print(f"07 exercise 2: the first assistant on the {len(items)} held-out questions, right: " + ", ".join(cells),
          flush=True)


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
    patch_run = with_sft_steps(run, args.patch_steps)
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
