"""The course's pictures: where a chapter sits in the pipeline, and training curves.

`pipeline(chapter)` draws the course as one row of stages, text to release, with the chapter's own
stages filled in. `plot_history` takes the `history` list the training loop returns (or a list of (label, history)
pairs to compare runs, e.g. with and without the SFT loss mask) and draws the training loss as a
line and, where the history has them, the validation losses as points. It returns the Figure, so a
notebook shows it and a script can save it; it uses matplotlib's object API only, so it also works
without a display (the Agg backend, CI).
"""
import matplotlib.pyplot as plt


def plot_history(histories, ax=None, *, title="loss"):
    """Plot train loss (line) and any val_* metrics (points) vs step -> matplotlib Figure."""
    if not histories:
        raise ValueError("plot_history got an empty history: train for at least one logged step first")
    if isinstance(histories[0], dict):  # one run
        histories = [("", histories)]
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
    else:
        fig = ax.figure
    for label, history in histories:
        prefix = f"{label} " if label else ""
        rows = [h for h in history if h.get("loss") is not None]
        line, = ax.plot([h["step"] for h in rows], [h["loss"] for h in rows], label=f"{prefix}train")
        val_keys = sorted({k for h in history for k in h if k.startswith("val") and "loss" in k})
        for i, key in enumerate(val_keys):
            points = [h for h in history if h.get(key) is not None]
            ax.plot([h["step"] for h in points], [h[key] for h in points], "os^D"[i % 4],
                    color=line.get_color(), label=f"{prefix}{key}")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


# The course as a row of stages, and the chapters (notebooks 00-09) that build or use each one.
STAGES = ("the world's\ntext", "tokens", "the GPT", "base model", "conversations", "assistant",
          "deployment\nlog", "the fix", "release")
CHAPTER_STAGES = {0: ("the world's\ntext",), 1: ("the world's\ntext", "tokens"), 2: ("the GPT",),
                  3: ("the world's\ntext", "base model"), 4: ("base model",),
                  5: ("conversations",), 6: ("assistant",), 7: ("base model", "assistant"),
                  8: ("deployment\nlog", "the fix"), 9: ("release",)}


def pipeline(chapter: int, ax=None):
    """The pipeline with chapter `chapter`'s stages filled in -> Figure. Under each stage, the chapters that
    work on it. (The assistant is the base model fine-tuned on the conversations: the row is the order of work.)"""
    if chapter not in CHAPTER_STAGES:
        raise ValueError(f"pipeline: no chapter {chapter!r}; the chapters are {min(CHAPTER_STAGES)} to {max(CHAPTER_STAGES)}")
    if ax is None:
        fig, ax = plt.subplots(figsize=(11, 1.5), layout="constrained")
    else:
        fig = ax.figure
    mine = CHAPTER_STAGES[chapter]
    step = 1.25                                  # from one stage's centre to the next
    for i, stage in enumerate(STAGES):
        x, filled = i * step, stage in mine
        chapters = " ".join(f"{c:02d}" for c, stages in CHAPTER_STAGES.items() if stage in stages)
        ax.text(x, 0, stage, ha="center", va="center", fontsize=9,
                weight="bold" if filled else "normal", color="white" if filled else "black",
                bbox=dict(boxstyle="round,pad=0.4", fc="tab:blue" if filled else "0.92", ec="0.5"))
        ax.text(x, -0.62, chapters, ha="center", va="center", fontsize=8, color="0.35")
        if i:                                    # an arrow in the gap before this stage
            ax.annotate("", xy=(x - 0.55, 0), xytext=(x - 0.7, 0), arrowprops=dict(arrowstyle="->", color="0.5"))
    ax.set_xlim(-0.65, (len(STAGES) - 1) * step + 0.65)
    ax.set_ylim(-0.9, 0.5)
    ax.axis("off")
    ax.set_title(f"chapter {chapter:02d}: its stages in blue; under each stage, the chapters that work on it "
                 "(the assistant is the base model fine-tuned on the conversations)", fontsize=9, loc="left")
    return fig
