"""Re-execute the course notebooks in place, as they are committed: on the `cpu` preset (the run in
artifacts/cpu, built by the notebooks or linked to runs/cpu), then cleaned of what a reader of the saved
file must not see.

    python tools/run_notebooks.py                       # every chapter
    python tools/run_notebooks.py 04 07                 # some chapters, by number

Cleaned: progress-bar widgets (a saved widget shows its first frame, "0/600", forever), and the saved
state of every widget no remaining output shows. tests/test_notebooks_committed.py checks the result: no error outputs, no absolute
paths, no stale bars, no warnings.
"""
import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
WIDGET = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def is_progress_bar(output) -> bool:
    """A tqdm widget: what a saved file shows of it is its first frame."""
    data = output.get("data", {})
    return WIDGET in data and "%|" in "".join(data.get("text/plain", ""))


def clean(nb) -> int:
    """Drop progress-bar widget outputs, and the saved state of the widgets no output shows any more; returns
    how many outputs went. (Other widgets, such as the chat in 07, stay: they work when the notebook runs.)"""
    dropped = 0
    shown = set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        keep = [o for o in cell.get("outputs", []) if not is_progress_bar(o)]
        dropped += len(cell.get("outputs", [])) - len(keep)
        cell.outputs = keep
        shown |= {o["data"][WIDGET]["model_id"] for o in keep if WIDGET in o.get("data", {})}
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    needed, todo = set(), list(shown)
    while todo:                      # a shown widget's state names its children (layout, style, ...) as IPY_MODEL_<id>
        model = todo.pop()
        if model in state and model not in needed:
            needed.add(model)
            todo += re.findall(r"IPY_MODEL_(\w+)", json.dumps(state[model]))
    for model in set(state) - needed:
        del state[model]
    if not state:
        nb.metadata.pop("widgets", None)
    return dropped


def run(path: Path, preset: str, timeout: int) -> None:
    nb = nbformat.read(path, as_version=4)
    os.environ["MINILLM_PRESET"] = preset
    # the kernel imports this checkout's minillm (and so uses its artifacts/), whatever `pip install -e` points at
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(NOTEBOOKS.parent), os.environ.get("PYTHONPATH")]))
    t0 = time.perf_counter()
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    dropped = clean(nb)
    nbformat.write(nb, path)
    print(f"{path.name}: {time.perf_counter() - t0:.0f} s, {dropped} progress widget(s) removed")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("chapters", nargs="*", help="chapter numbers (default: all)")
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--timeout", type=int, default=3600, help="seconds per cell")
    args = ap.parse_args()
    paths = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if args.chapters:
        paths = [p for p in paths if p.name[:2] in {c.zfill(2) for c in args.chapters}]
        if not paths:
            sys.exit(f"no chapter {' '.join(args.chapters)}; the chapters are 00 to 09")
    for p in paths:
        run(p, args.preset, args.timeout)


if __name__ == "__main__":
    main()
