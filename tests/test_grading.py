"""The instructor's tools (instructor/grade.py, on nbgrader): the student edition hides every solution and
runs up to the first exercise; the instructor edition scores full marks; a wrong answer, an exception, an
endless loop, a killed kernel and a deleted check cell each get their row; the README's instructor
commands work as written. CI installs the grading extra, so there these tests run rather than skip."""
import csv
import importlib
import importlib.util
import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

if os.environ.get("CI"):
    importlib.import_module("nbgrader")      # CI installs .[grading]: a missing nbgrader is a failure there
else:
    pytest.importorskip("nbgrader")

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("instructor_grade", ROOT / "instructor" / "grade.py")
grade = importlib.util.module_from_spec(spec)
spec.loader.exec_module(grade)

EXERCISE_CHAPTERS = [ch for ch in grade.CHAPTERS if grade.graded_cells(ch)]
SMOKE = {**os.environ, "MINILLM_PRESET": "smoke"}   # (read at import: without the module's grading folder)


@pytest.fixture(scope="module", autouse=True)
def grading_env(tmp_path_factory):
    """A fresh nbgrader course folder for this module (a gradebook that holds submissions refuses changed
    notebooks), and the smoke preset, which nbgrader's kernels inherit."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MINILLM_GRADING_DIR", str(tmp_path_factory.mktemp("course")))
        mp.setenv("MINILLM_PRESET", "smoke")
        yield


@pytest.fixture(scope="module")
def edition(tmp_path_factory):
    return grade.student_edition(tmp_path_factory.mktemp("student_edition"))


def load(path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


def test_every_chapter_has_a_graded_exercise():
    assert EXERCISE_CHAPTERS == grade.CHAPTERS
    for ch in EXERCISE_CHAPTERS:
        sol, checks = grade.solutions(ch), [gid for gid, _ in grade.graded_cells(ch)]
        assert [f"{gid}_check" for gid in sol] == checks      # each answer cell is followed by its graded check
        assert all(pts > 0 for _, pts in grade.graded_cells(ch))


def solution_regions(chapter):
    """grade_id -> the instructor's code lines between the solution markers (comments and blanks left out)."""
    nb = load(ROOT / "notebooks" / f"{chapter}.ipynb")
    out = {}
    for c in nb["cells"]:
        if c["cell_type"] == "code" and c["metadata"].get("nbgrader", {}).get("solution"):
            src = "".join(c["source"])
            region = src[src.index("### BEGIN SOLUTION"):src.index("### END SOLUTION")].splitlines()[1:]
            out[c["metadata"]["nbgrader"]["grade_id"]] = [ln.strip() for ln in region
                                                          if ln.strip() and not ln.strip().startswith("#")]
    return out


def test_student_edition_has_no_solutions_no_hidden_tests_no_outputs(edition):
    assert sorted(p.stem for p in edition.glob("*.ipynb")) == grade.CHAPTERS
    for ch in grade.CHAPTERS:
        text = (edition / f"{ch}.ipynb").read_text(encoding="utf-8")
        for marker in ("BEGIN SOLUTION", "END SOLUTION", "HIDDEN TESTS", "n_random="):
            assert marker not in text, (ch, marker)
        nb = json.loads(text)
        assert all(not c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code"), ch
        by_id = {c["metadata"].get("nbgrader", {}).get("grade_id"): c for c in nb["cells"]}
        for gid, body in solution_regions(ch).items():
            stub = "".join(by_id[gid]["source"])
            assert "raise NotImplementedError()" in stub and not any(ln in stub for ln in body), (ch, gid, stub)
            assert by_id[f"{gid}_check"]["metadata"]["editable"] is False      # the check is locked
        answers = "".join(by_id["exercise_answers"]["source"])                 # the end-of-chapter answers
        assert answers.strip() == "### Answers\n\nYOUR ANSWER HERE", (ch, answers[:200])


@pytest.mark.parametrize("chapter", EXERCISE_CHAPTERS)
def test_student_edition_runs_up_to_its_first_exercise(edition, chapter):
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    import nbformat

    nb = nbformat.read(edition / f"{chapter}.ipynb", as_version=4)
    first_check = next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade"))
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(edition)}})
    with client.setup_kernel():
        for i, cell in enumerate(nb.cells):
            try:
                client.execute_cell(cell, i)
            except CellExecutionError as e:
                assert i == first_check, f"cell {i} failed before the first exercise (cell {first_check}): {e}"
                assert "NotImplementedError" in str(e)          # the check tells the student to write it
                return
    pytest.fail(f"{chapter}: the student edition ran through without an exercise to do")


def test_grading_a_wrong_answer_an_exception_a_loop_a_killed_kernel_a_deleted_check_and_a_copied_reference(tmp_path):
    ch = "01_tokenization"
    grade.release()
    right = grade.solutions(ch)
    subs = {
        "looping": grade.fill(ch, {**right, "count_pairs": "def count_pairs(ids):\n    while True:\n        pass"}),
        "killed": grade.fill(ch, {**right, "merge_pair": "import os\nos._exit(1)"}),
        "no_check": grade.fill(ch, right, drop=("merge_pair_check",)),
        "calls_reference": grade.fill(ch, {**right, "merge_pair": "from minillm.tokenizer import merge\n\n\n"
                                                               "def merge_pair(ids, pair, new_id):\n"
                                                               "    return merge(ids, pair, new_id)"}),
    }
    for student, nb in subs.items():
        (tmp_path / student).mkdir()
        (tmp_path / student / f"{ch}.ipynb").write_text(json.dumps(nb), encoding="utf-8")
    (tmp_path / "absent").mkdir()
    (tmp_path / "absent" / "notes.txt").write_text("forgot to hand in")
    rows = grade.grade(tmp_path, tmp_path / "grades.csv", cell_timeout=10, log=lambda *_: None)
    got = {(r["student"], r["exercise"]): (r["points"], r["error"]) for r in rows}
    assert got[("looping", "count_pairs_check")] == (0.0, "timed out: the cell did not finish (an endless loop?) "
                                                           "and was interrupted")
    assert got[("looping", "merge_pair_check")] == (2.0, "")            # the loop cost only its own exercise
    died = "the kernel died (the notebook exited, crashed or ran out of memory): nothing in it could be graded"
    assert got[("killed", "count_pairs_check")] == got[("killed", "merge_pair_check")] == (0.0, died)
    assert got[("no_check", "count_pairs_check")] == (1.0, "")
    assert got[("no_check", "merge_pair_check")] == (2.0, "")          # nbgrader put the deleted check back
    assert got[("calls_reference", "merge_pair_check")] == (
        0.0, "AssertionError: your function calls minillm's own minillm.tokenizer.merge, the answer it is checked against; write it yourself")
    assert got[("calls_reference", "count_pairs_check")] == (1.0, "")
    assert got[("absent", "count_pairs_check")] == (0.0, "not submitted")
    with open(tmp_path / "grades.csv", newline="", encoding="utf-8") as f:
        assert len(list(csv.DictReader(f))) == len(rows) == 10


def test_instructor_edition_scores_full_marks(tmp_path):
    student = tmp_path / "instructor"
    student.mkdir()
    for ch in EXERCISE_CHAPTERS:
        (student / f"{ch}.ipynb").write_bytes((ROOT / "notebooks" / f"{ch}.ipynb").read_bytes())
    rows = grade.grade(tmp_path, None, log=lambda *_: None)
    assert [(r["chapter"], r["exercise"]) for r in rows] == [
        (ch, gid) for ch in EXERCISE_CHAPTERS for gid, _ in grade.graded_cells(ch)]
    assert [(r["points"], r["error"]) for r in rows] == [(r["max_points"], "") for r in rows]


def instructor_commands() -> list[str]:
    from test_readme import readme_commands
    return [c for c in readme_commands() if "instructor/grade.py" in c]


def test_readme_instructor_commands_run_as_written(tmp_path):
    commands = instructor_commands()
    assert [shlex.split(c)[2] for c in commands] == ["student-edition", "samples", "grade", "feedback"]
    # in a copy of the checkout's instructor/, notebooks/ and data/, so that what the commands write (grades.csv,
    # instructor/feedback/, nbgrader's folders) lands there and not in the repository
    made = ("source", "release", "submitted", "autograded", "feedback", "student_edition", "samples",
            "gradebook.db", ".nbgrader.log", "__pycache__")
    shutil.copytree(ROOT / "instructor", tmp_path / "instructor", ignore=shutil.ignore_patterns(*made))
    for folder in ("notebooks", "data"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    env = {k: v for k, v in SMOKE.items() if k != "MINILLM_GRADING_DIR"}     # instructor/, as the README says
    env["MINILLM_ARTIFACTS"] = str(ROOT / "artifacts")                       # the cached smoke run
    for cmd in commands:
        p = subprocess.run(cmd, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800)
        assert p.returncode == 0, f"{cmd}\n{p.stderr[-2000:]}"
    with open(tmp_path / "grades.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    points = {}
    for r in rows:
        points[r["student"]] = points.get(r["student"], 0) + float(r["points"])
    assert points == {"right": 3.0 + 4.0, "wrong": 2.0 + 2.0, "crashing": 1.0 + 2.0}   # 01 and 03
    errors = {(r["student"], r["exercise"]): r["error"] for r in rows if r["error"]}
    assert errors == {
        ("wrong", "count_pairs_check"): errors[("wrong", "count_pairs_check")],
        ("crashing", "merge_pair_check"): "AssertionError: your merge([1, 2, 3, 1, 2], (1, 2), 256) raised "
                                          "ValueError: not finished",
        ("wrong", "training_step_check"): errors[("wrong", "training_step_check")],
        ("crashing", "training_step_check"): "AssertionError: training_step(model, optimizer, x (4, 8), y (4, 8), "
                                             "lr=0.005, grad_clip=0.5) raised ValueError: not finished",
    }
    assert "Count every occurrence" in errors[("wrong", "count_pairs_check")]   # the check's hint reaches the CSV
    assert errors[("wrong", "training_step_check")].endswith(
        "They match a step without gradient clipping: after loss.backward() and before optimizer.step(), "
        "call torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip).")
    for student in ("right", "wrong", "crashing"):
        for chapter in grade.SAMPLE_ANSWERS:
            html = tmp_path / "instructor" / "feedback" / student / chapter / f"{chapter}.html"
            assert "HIDDEN TESTS" not in html.read_text(encoding="utf-8")


def test_a_missing_folder_is_one_line():
    p = subprocess.run(["python", "instructor/grade.py", "grade", "no/such/folder"], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode != 0 and "Traceback" not in p.stderr
    assert p.stderr.strip() == ("no/such/folder: no student folders; put each student's notebooks in "
                                "no/such/folder/<student>/<chapter>.ipynb")
