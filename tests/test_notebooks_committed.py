"""The committed notebooks: all ten exist, each carries the outputs of a real run (so a reader on the web
sees real plots and numbers), none of those outputs is an error, and every notebook names the kernel
nbmake will find (`python3`). nbmake itself re-executes them with the smoke preset (see pyproject.toml)."""
import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_the_ten_chapters_exist():
    assert [p.name[:2] for p in NOTEBOOKS] == [f"{i:02d}" for i in range(10)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_outputs_and_no_errors(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code, "a notebook without code"
    unexecuted = [i for i, c in enumerate(code) if c["source"] and c.get("execution_count") is None]
    assert not unexecuted, f"code cells {unexecuted} were never executed: re-run the notebook and save it"
    errors = [o.get("ename") for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"error outputs committed: {errors}"
    assert sum(bool(c.get("outputs")) for c in code) >= len(code) // 3, "most cells show nothing: re-run and save"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_each_chapter_opens_with_the_pipeline_and_its_own_stages(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    first = [c for c in nb["cells"] if c["cell_type"] == "code"][:3]
    drawn = [c for c in first if f"pipeline({int(path.name[:2])})" in "".join(c["source"])]
    assert drawn, f"none of the first code cells draws pipeline({int(path.name[:2])})"
    assert any("image/png" in o.get("data", {}) for o in drawn[0]["outputs"]), "the pipeline cell shows no picture"


# what a saved output must not show: the machine it ran on, a progress bar frozen at its first frame
ABSOLUTE_PATH = re.compile(r"(/work/|/home/|/Users/|/tmp/|/root/|[A-Z]:\\\\)")


def output_texts(cell):
    for o in cell.get("outputs", []):
        if o.get("output_type") == "stream":
            yield "".join(o["text"])
        for kind in ("text/plain", "text/html", "text/markdown"):
            if kind in o.get("data", {}):
                yield "".join(o["data"][kind])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_outputs_name_no_machine_and_show_no_frozen_bar(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    for i, cell in enumerate(nb["cells"]):
        for text in output_texts(cell):
            found = ABSOLUTE_PATH.search(text)
            assert not found, f"cell {i} prints an absolute path ({found.group(0)}...): print paths relative to the repo"
            assert "%|" not in text, f"cell {i} keeps a progress bar: re-run with tools/run_notebooks.py, which drops them"
            assert "Warning:" not in text and "warnings.warn" not in text, f"cell {i} shows a warning: {text[:200]}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_saved_widget_state_belongs_to_a_widget_an_output_shows(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    state = nb["metadata"].get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    view = "application/vnd.jupyter.widget-view+json"
    todo = [o["data"][view]["model_id"] for c in nb["cells"] for o in c.get("outputs", []) if view in o.get("data", {})]
    reached = set()
    while todo:                      # a shown widget's state names its parts (layout, style, ...) as IPY_MODEL_<id>
        model = todo.pop()
        if model in state and model not in reached:
            reached.add(model)
            todo += re.findall(r"IPY_MODEL_(\w+)", json.dumps(state[model]))
    orphans = set(state) - reached
    assert not orphans, f"{len(orphans)} saved widget states that nothing shows: re-run with tools/run_notebooks.py"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_each_chapter_ends_with_a_recap_of_this_runs_numbers(path):
    """Before the exercises: a "## Recap" with the idea to keep, then a code cell that prints what was measured."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    src = ["".join(c["source"]) for c in cells]
    exercises = next(i for i, s in enumerate(src) if "## Exercises" in s)
    recap = [i for i, s in enumerate(src[:exercises]) if s.startswith("## Recap")]
    assert recap, "no '## Recap' cell before the exercises"
    i = recap[-1]
    assert "**The idea to keep:**" in src[i]
    code = cells[i + 1]
    assert code["cell_type"] == "code" and src[i + 1].count("print(") >= 3
    printed = "".join(t for t in output_texts(code))
    assert len(printed.strip().splitlines()) >= 3, "the recap printed fewer than three lines"


def test_the_targets_the_notebooks_state_are_the_course_table():
    """A target a notebook's text states is the table's (minillm.targets); its code prints the others."""
    from minillm.targets import FIX_TOLERANCE, target

    def pct(key, scope="course"):
        return f"{target(key, scope).bound:.0%}"

    in_words = {0.01: "a point", 0.5: "half"}
    stated = {
        "07_base_vs_assistant": [
            f"high held-out accuracy (the course targets ≥ {pct('heldout_accuracy')}); with one, low "
            f"(≤ {pct('heldout_accuracy', 'augment1')})",
            f"completes most of its biographies (≥ {pct('base_stored_accuracy', 'augment1')})"],
        "08_iterating": [
            f"the class fails before it (at most {pct('scope_answer_rate_before_fix')} handled) and is fixed after it "
            f"(at least {pct('scope_answer_rate')})",
            f"no other figure is more than {in_words[FIX_TOLERANCE]} worse"],
        "09_what_it_costs": [
            f"follow your guideline on at least {in_words[target('style_rate', 'custom').bound]} of the held-out questions",
            f"at least {pct('fact_ratio', 'custom')} as often as Minnie"],
    }
    for name, phrases in stated.items():
        nb = json.loads(next(p for p in NOTEBOOKS if p.stem == name).read_text(encoding="utf-8"))
        text = " ".join(" ".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown").split())
        for phrase in phrases:
            assert phrase in text, f"{name}: no longer says {phrase!r} (the targets are in minillm.targets)"
