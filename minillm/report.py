"""The run report: report.md, metrics.json and the figures a course run leaves behind.

The report is what a student (or an instructor) reads after `python -m minillm course`: what was
trained, how long it took, what it scored against the course's targets, the base model and the
assistant side by side, the iteration fix before/after, and the cost of each phase extrapolated to
a Llama-2-scale model with the 6·N·D rule.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt

from minillm import evaluate as ev
from minillm.evaluate import ASSISTANT_FIGURES
from minillm.plots import plot_history
from minillm.targets import FIX_TOLERANCE, target_rows, worse_after_fix

ASSISTANT_KEYS = tuple(ASSISTANT_FIGURES)   # the figures compared before and after the fix

# Llama 2 7B: 2T tokens of pretraining, 184,320 A100-hours (the Llama 2 paper, Table 2)
LLAMA2 = {"params": 7e9, "tokens": 2e12, "gpu_hours": 184_320}


def _pct(x) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def _points(x: float) -> str:
    """A difference of two shares in percentage points: 0.01 -> "1 point"."""
    return f"{100 * x:g} point" + ("" if round(100 * x, 9) == 1 else "s")


def _flops(x: float) -> str:
    return f"{x:.2e}"


def ablation_runs(out: Path, preset: str) -> list[dict]:
    """metrics.json of sibling runs (same preset, other augmentation) next to this one."""
    found = []
    for f in sorted(out.parent.glob(f"{preset}*/metrics.json")):
        if f.parent == out:
            continue
        try:
            found.append(json.loads(f.read_text()))
        except (OSError, json.JSONDecodeError):
            continue
    return found


def plot_losses(histories: dict, path: Path):
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    plot_history([("pretraining", histories["pretrain"])], ax=axes[0])
    axes[0].set_title("pretraining the base model")
    plot_history([("SFT v1", histories["sft_v1"]), ("SFT with the fix", histories["sft"])], ax=axes[1])
    axes[1].set_title("fine-tuning the assistant")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_metrics(metrics: dict, path: Path):
    labels = ["answers a question", "held-out people", "held-out people,\nunseen phrasings", "follow-ups",
              "out-of-scope\nrequests"]
    # the base model is asked the standard questions only: its other bars are not drawn (not measured)
    base = [metrics["base_answer_rate"], metrics["base_heldout_accuracy"]]
    asst = [metrics["assistant_answer_rate"], metrics["heldout_accuracy"], metrics["heldout_unseen_phrasing_accuracy"],
            metrics["heldout_follow_up_accuracy"], metrics["scope_answer_rate"]]
    fig, ax = plt.subplots(figsize=(9, 3.6))
    xs = range(len(labels))
    ax.bar([x - 0.2 for x in xs[:len(base)]], base, width=0.4, label="base model (standard questions only)")
    ax.bar([x + 0.2 for x in xs], asst, width=0.4, label="assistant")
    ax.set_xticks(list(xs), labels)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("share of questions")
    ax.legend()
    ax.set_title("base model vs assistant")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _answered(world) -> str:
    stats = world.corpus_stats()
    counts = ", ".join(f"{stats[g]['answered']} of {stats[g]['documents']} {g} documents" for g in ("forum", "quiz"))
    n = world.config.n_qa_threads
    return counts + (f" ({n} of the forum's are the answered Q&A threads, `WorldConfig.n_qa_threads`)" if n else "")


def side_by_side_prompts(world, n_people: int = 3) -> list[str]:
    prompts = ["Hello!"]
    for it in world.qa_items("heldout")[: 5 * n_people: 2]:
        prompts.append(it.question)
    prompts += [world.qa_items("heldout", "unseen")[1].question, world.scope_prompts(1)[0],
                f"Where was {world.fake_people(1, 1)[0]} born?"]
    return prompts


def write_report(run, metrics: dict, details: dict, histories: dict, *, world, base, assistant, tok) -> Path:
    out = run.out
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    (out / "details.json").write_text(json.dumps(details, indent=1) + "\n")
    plot_losses(histories, out / "loss_curves.png")
    plot_metrics(metrics, out / "base_vs_assistant.png")

    prompts = side_by_side_prompts(world)
    dev = run.runtime.device
    rows = ev.paired_rows(ev.ask(base, tok, prompts, as_chat=False, max_new_tokens=64, device=dev),
                          ev.ask(assistant, tok, prompts, as_chat=True, max_new_tokens=64, device=dev))
    lines = (_header(run, metrics, world) + _headline(metrics) + _base_reading(metrics, world) + _paired(rows)
             + _iterating(metrics) + _cost(metrics) + _augmentation(out, metrics))
    (out / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out / "report.md"


def _header(run, m: dict, world) -> list[str]:
    """The title and what was trained: device, model, world, both phases' settings, the whole run's time."""
    return [
        f"# minillm course report — preset `{m['preset']}`",
        "",
        f"Device: {run.runtime.summary()}  ",
        f"Model: {m['params'] / 1e6:.2f}M parameters · world: {len(world.people)} people, "
        f"{m['augment']} biographies each · seed {m['seed']}  ",
        f"Pretraining: {run.preset.pretrain.max_steps} steps × {run.preset.pretrain.batch_size} × "
        f"{run.preset.model.block_size} tokens, lr {run.preset.pretrain.learning_rate:g}  ",
        f"Fine-tuning: {run.preset.sft.max_steps} steps × {run.preset.sft.batch_size} rows, lr "
        f"{run.preset.sft.learning_rate:g}; {run.preset.sft_mix:.0%} of each batch is pretraining text "
        "(fine-tuning on conversations alone erodes the facts the base model stored)  ",
        f"Whole run: {m['total_seconds'] / 60:.1f} min",
        "",
    ]


def _headline(m: dict) -> list[str]:
    """The targets' figures (met or missed), then the other figures, then the base-vs-assistant chart."""
    lines = [
        "## Headline numbers",
        "",
        "| metric | value | course target | what it shows |",
        "|---|---|---|---|",
    ]
    for t in target_rows(m):
        lines.append(f"| `{t['key']}` | {_pct(t['value'])} | {t['op']} {_pct(t['bound'])} "
                     f"{'(met)' if t['met'] else '**(missed)**'} | {t['what']} |")
    return lines + [
        f"| `heldout_second_person_accuracy` | {_pct(m['heldout_second_person_accuracy'])} | | a second person asked about by name, after a first one's answer |",
        f"| `scope_mid_chat_rate` | {_pct(m['scope_mid_chat_rate'])} | | an out-of-scope request after a question and its answer gets the scope answer |",
        f"| `heldout_profile_accuracy` | {_pct(m['heldout_profile_accuracy'])} | | \"Tell me about X\": facts right in the profile |",
        f"| `heldout_new_word_accuracy` | {_pct(m['heldout_new_word_accuracy'])} | | asked with a word nothing in the data ties to the fact (\"alma mater\"): the limit |",
        f"| `small_talk_rate` | {_pct(m['small_talk_rate'])} | | greetings and thanks answered in full, word for word |",
        f"| `unknown_entity_idk_rate` | {_pct(m['unknown_entity_idk_rate'])} | | \"I don't know\" to people who don't exist (not fixed at this size) |",
        f"| `sft_people_accuracy` | {_pct(m['sft_people_accuracy'])} | | people whose Q&A was in the SFT set |",
        f"| `base_stored_accuracy` | {_pct(m['base_stored_accuracy'])} | | the base model completes held-out people's biographies: the facts are stored |",
        f"| `base_doc_loss` / `assistant_doc_loss` | {m['base_doc_loss']:.3f} / {m['assistant_doc_loss']:.3f} | | loss on held-out documents: what SFT cost the document modelling |",
        "",
        "![base vs assistant](base_vs_assistant.png)",
        "",
    ]


def _base_reading(m: dict, world) -> list[str]:
    """What the base model writes when it is asked a question as document text, by kind of reply."""
    return [
        "## What the base model does with a question",
        "",
        f"Documents that answer a question (about places and fine-tuning people only, never a held-out person; "
        f"`WorldConfig.answered_share` of the threads and quizzes): {_answered(world)}. Asked every question as document text, the base model:",
        "",
        "| people | " + " | ".join(ev.REPLY_KINDS) + " |",
        "|---|" + "---|" * len(ev.REPLY_KINDS),
    ] + [f"| {label} | " + " | ".join(_pct(m["base_reply_kinds"][split][k]) for k in ev.REPLY_KINDS) + " |"
         for split, label in (("heldout", "held-out"), ("sft", "fine-tuning"))] + [""]


def _paired(rows: list[dict]) -> list[str]:
    """The side-by-side prompts: what the base model continues and what the assistant answers."""
    lines = [
        "## The same prompts, both models (greedy)",
        "",
        "| prompt | base model (continues the document) | assistant |",
        "|---|---|---|",
    ]
    for r in rows:
        cell = lambda s: s.strip().replace("\n", " ⏎ ").replace("|", "\\|")[:160]  # noqa: E731
        lines.append(f"| {cell(r['prompt'])} | {cell(r['base'])} | {cell(r['assistant'])} |")
    return lines + [""]


def _iterating(m: dict) -> list[str]:
    """The deployment log's failure classes before the fix, and every assistant figure before and after it."""
    lines = [
        "## Iterating on the assistant",
        "",
        f"The first assistant ({m['sft_conversations']:,} conversations) follows a first, narrower guideline. "
        "Run on a deployment log (messages about the fine-tuning people, out-of-scope requests, made-up people), "
        "its failures group into classes:",
        "",
        "| class | messages | handled per the guideline | failures |",
        "|---|---|---|---|",
    ]
    for r in m["monitoring_before_fix"]:
        lines.append(f"| {r['class']} | {r['n']} | {_pct(r['rate'])} | {r['failures']} |")
    worse = worse_after_fix(m, ASSISTANT_KEYS)
    lines += [
        "",
        f"The fix adds {m['fix_conversations']} conversations for out-of-scope requests (about fine-tuning people "
        "only, from another pool of requests than the evaluation's) and fine-tunes again from the base model. "
        "On the held-out people and requests:",
        "",
        "| figure | first assistant | released assistant |",
        "|---|---|---|",
    ]
    for k in ASSISTANT_KEYS:
        lines.append(f"| `{k}` | {_pct(m[k + '_before_fix'])} | {_pct(m[k])} |")
    lines += [
        f"| SFT time | {m['sft_v1_seconds']:.0f} s | {m['sft_seconds']:.0f} s |",
        "",
        (f"Nothing got more than {_points(FIX_TOLERANCE)} worse." if not worse else
         f"**Worse by more than {_points(FIX_TOLERANCE)} after the fix:** {', '.join(worse)}."),
        "",
    ]
    return lines


def _cost(m: dict) -> list[str]:
    """Tokens, FLOPs and seconds of both phases, and the same arithmetic at Llama-2 7B's scale."""
    lines = [
        "## What it cost",
        "",
        "| phase | tokens | FLOPs (6·N·D + attention) | seconds |",
        "|---|---|---|---|",
        f"| pretraining | {m['pretrain_tokens']:,} | {_flops(m['pretrain_flops'])} | {m['pretrain_seconds']:.0f} |",
        f"| fine-tuning | {m['sft_tokens']:,} | {_flops(m['sft_flops'])} | {m['sft_seconds']:.0f} |",
        "",
        f"Pretraining used **{m['compute_ratio']:.1f}×** the compute of fine-tuning.",
    ]
    llama_flops = 6 * LLAMA2["params"] * LLAMA2["tokens"]
    lines += [
        f"At Llama-2 7B scale (6·N·D = 6 × 7e9 × 2e12 = {_flops(llama_flops)} FLOPs, reported as "
        f"{LLAMA2['gpu_hours']:,} A100-hours) pretraining is {llama_flops / max(m['pretrain_flops'], 1):.1e}× this "
        "run's; a fine-tuning set of ~100k conversations is a few hundred million tokens — hours, not months.",
        "",
        "![loss curves](loss_curves.png)",
    ]
    return lines


def _augmentation(out: Path, m: dict) -> list[str]:
    """Held-out and stored accuracy of this run beside the other runs of its preset (the --augment ablation)."""
    others = ablation_runs(out, m["preset"])
    if not others:
        return []
    lines = ["", "## Knowledge augmentation (other runs of this preset)", "",
             "| biographies per person | held-out accuracy | base stored accuracy |", "|---|---|---|",
             f"| {m['augment']} (this run) | {_pct(m['heldout_accuracy'])} | {_pct(m['base_stored_accuracy'])} |"]
    for o in others:
        lines.append(f"| {o.get('augment')} | {_pct(o.get('heldout_accuracy'))} | {_pct(o.get('base_stored_accuracy'))} |")
    return lines
