"""The course's pictures: where a chapter sits in the pipeline, the GPT's layers, and training curves.

`pipeline(chapter)` draws the course as one row of stages, text to release, with the chapter's own
stages filled in. `gpt_diagram(config)` draws the network from ids to logits with this config's sizes;
`chat_template(tok, ids, mask)` a rendered conversation token by token with its loss mask. `plot_history` takes the `history` list the training loop returns (or a list of (label, history)
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
            name = "validation" if key == "val_loss" else key.replace("_", " ")
            ax.plot([h["step"] for h in points], [h[key] for h in points], "os^D"[i % 4],
                    color=line.get_color(), label=f"{prefix}{name}")
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


def gpt_diagram(config, ax=None):
    """The GPT of minillm.model from ids to logits, bottom to top, with `config`'s sizes (a GPTConfig) ->
    Figure. The block is drawn once, with its count: every block has the same layers and its own weights."""
    V, T, L, H, d = config.vocab_size, config.block_size, config.n_layer, config.n_head, config.n_embd
    if ax is None:
        fig, ax = plt.subplots(figsize=(7.5, 7), layout="constrained")
    else:
        fig = ax.figure
    box = dict(boxstyle="round,pad=0.35", ec="0.4")

    def layer(y, text, shape, color, x=0.0):
        ax.text(x, y, text, ha="center", va="center", fontsize=9, bbox={**box, "fc": color})
        ax.text(x + 1.55, y, shape, ha="left", va="center", fontsize=8, color="0.3", family="monospace")

    def arrow(y0, y1, x=0.0):
        ax.annotate("", xy=(x, y1), xytext=(x, y0), arrowprops=dict(arrowstyle="->", color="0.45"))

    layer(0, "token ids", f"(B, T), T <= {T}", "white")
    arrow(0.25, 0.75)
    layer(1, "token embedding + position embedding", f"({V}, {d}) + ({T}, {d}) -> (B, T, {d})", "#dbe9f6")
    arrow(1.25, 1.75)
    # the block: pre-LayerNorm attention and MLP, each added back to the residual stream
    ax.add_patch(plt.Rectangle((-2.2, 1.8), 3.7, 4.4, fc="#f4f4f4", ec="0.5", ls="--"))
    ax.text(-2.1, 6.05, f"block x {L}", fontsize=9, weight="bold", va="top")
    arrow(1.8, 2.05)
    layer(2.3, "LayerNorm", f"(B, T, {d})", "white")
    arrow(2.55, 2.95)
    layer(3.2, f"causal self-attention, {H} heads", f"q, k, v: {H} x ({d} -> {d // H}); out: {d} -> {d}", "#fde3c8")
    arrow(3.45, 3.85)
    layer(4.1, "+", "add to the residual stream", "white")
    arrow(4.35, 4.65)
    layer(4.9, f"LayerNorm, MLP {d} -> {4 * d} -> {d} (GELU)", f"(B, T, {d})", "#d8f0d2")
    arrow(5.15, 5.5)
    layer(5.75, "+", "add to the residual stream", "white")
    # the residual stream goes around each sub-layer: from below the LayerNorm to the "+" above it
    for x, y0, y1 in ((-1.95, 1.92, 4.1), (-1.6, 4.45, 5.75)):
        ax.plot([0, x, x], [y0, y0, y1], color="tab:blue", lw=1.2)
        ax.annotate("", xy=(-0.2, y1), xytext=(x, y1), arrowprops=dict(arrowstyle="->", color="tab:blue"))
    ax.text(-1.9, 3.0, "residual", rotation=90, color="tab:blue", fontsize=8, va="center", ha="left")
    arrow(6.0, 6.5)
    layer(6.75, "final LayerNorm", f"(B, T, {d})", "white")
    arrow(7.0, 7.4)
    layer(7.65, "linear head (the token embedding, reused)", f"{d} -> {V}: (B, T, {V})", "#dbe9f6")
    arrow(7.9, 8.3)
    layer(8.55, "logits: a score for every next token", f"(B, T, {V})", "white")
    ax.set_xlim(-2.3, 4.6)
    ax.set_ylim(-0.4, 9.0)
    ax.axis("off")
    ax.set_title(f"the GPT: {L} blocks, width {d}, {H} heads, a vocabulary of {V}, a context of {T}",
                 fontsize=10, loc="left")
    return fig


def chat_template(tokenizer, ids, mask, ax=None):
    """A conversation as chat.render lays it out -> Figure: one row per turn, a box per token (the tokens that
    carry loss green, the other special tokens dark, the rest grey; special tokens in bold) and the mask's 0
    or 1 under each."""
    if len(ids) != len(mask):
        raise ValueError(f"chat_template: ids and mask must have the same length, got {len(ids)} and {len(mask)}")
    specials = {i: name for name, i in tokenizer.special_tokens.items()}
    rows, row = [], []
    for i, m in zip(ids, mask):          # a new row at every turn's role token, <|bos|> stays with the first
        if specials.get(i) in ("<|user|>", "<|assistant|>") and any(specials.get(j) != "<|bos|>" for j, _, _ in row):
            rows.append(row)
            row = []
        row.append((i, m, tokenizer.decode([i]).replace("\n", "\u21b5")))
    rows.append(row)
    unit = 0.085                         # inches per character of a token's box
    width = max(sum(len(text) + 1.2 for _, _, text in r) for r in rows)
    if ax is None:
        fig, ax = plt.subplots(figsize=(max(6.0, width * unit + 1.2), 0.62 * len(rows) + 0.7), layout="constrained")
    else:
        fig = ax.figure
    for y, r in enumerate(rows):
        x = 0.0
        for i, m, text in r:
            # green: carries loss (the assistant's closing <|end|> too); dark: a special token only read
            fc, color = ("#b7f0b1", "black") if m else ("0.3", "white") if i in specials else ("0.9", "0.35")
            ax.text(x + len(text) / 2, -y, text, ha="center", va="center", fontsize=8, family="monospace",
                    color=color, weight="bold" if i in specials else "normal",
                    bbox=dict(boxstyle="square,pad=0.25", fc=fc, ec="white"))
            ax.text(x + len(text) / 2, -y - 0.36, str(m), ha="center", va="center", fontsize=7,
                    color="tab:green" if m else "0.55")
            x += len(text) + 1.2
    ax.set_xlim(-0.8, width)
    ax.set_ylim(-len(rows) + 0.35, 0.5)
    ax.axis("off")
    ax.set_title(f"{len(ids)} ids, one row per turn: green tokens carry loss (mask 1, the digit under each), "
                 f"{sum(mask)} of {len(ids)}", fontsize=9, loc="left")
    return fig
