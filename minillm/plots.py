"""Training curves: loss against step, for one run or several side by side.

`plot_history` takes the `history` list the training loop returns (or a list of (label, history)
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
