"""The instructor's side of the course, on nbgrader: the student edition, a class's grades, feedback.

The notebooks in notebooks/ are the instructor edition. Each exercise is a solution cell, whose answer sits
between `### BEGIN SOLUTION` and `### END SOLUTION`, followed by a graded check cell worth some points,
with extra checks between `### BEGIN HIDDEN TESTS` and `### END HIDDEN TESTS`. The answers to the
end-of-chapter exercises are one markdown cell per chapter between the same markers (manually graded, 0
points: the student edition has "YOUR ANSWER HERE" there). Each chapter is one nbgrader assignment.

    pip install -e ".[grading]"
    python instructor/grade.py student-edition                   # -> instructor/student_edition/*.ipynb
    python instructor/grade.py samples                           # three students to try (chapters 01, 03): instructor/samples/
    python instructor/grade.py grade instructor/samples --csv grades.csv
    python instructor/grade.py feedback                          # -> instructor/feedback/<student>/<chapter>/

SUBMISSIONS holds one folder per student with the chapters they hand in, e.g.
SUBMISSIONS/ada/01_tokenization.ipynb. `grade` autogrades each (student, chapter) in its own nbgrader run. A
notebook that raises, loops forever, kills its kernel or lost a check cell gets its row and never stops the
others. The CSV has one row per student and exercise: student, chapter, exercise, points, max_points,
error. A check that fails prints its message, which says what is wrong; that message goes in the error column.

Grading runs the notebooks with the preset in MINILLM_PRESET (the class's run is cached in artifacts/, so
training cells load it rather than train). `smoke` grades fastest.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
NOTEBOOKS = HERE.parent / "notebooks"
CHAPTERS = sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
FIELDS = ["student", "chapter", "exercise", "points", "max_points", "error"]


def course() -> Path:
    """nbgrader's course folder (source/, release/, submitted/, autograded/, feedback/, gradebook.db):
    instructor/, or MINILLM_GRADING_DIR (the tests grade in a temporary one)."""
    return Path(os.environ.get("MINILLM_GRADING_DIR") or HERE).resolve()


def nbgrader(*args: str, timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run one nbgrader command in instructor/ (where nbgrader_config.py is)."""
    return subprocess.run([sys.executable, "-m", "nbgrader", *args, f"--CourseDirectory.root={course()}"], cwd=HERE,
                          capture_output=True, text=True, timeout=timeout)


def graded_cells(chapter: str) -> list[tuple[str, float]]:
    """(grade_id, points) of each autograded check cell of the instructor edition, in order. (The answers to
    the end-of-chapter exercises are a manually graded cell worth 0 points, so they are not among them.)"""
    nb = json.loads((NOTEBOOKS / f"{chapter}.ipynb").read_text(encoding="utf-8"))
    meta = (c["metadata"].get("nbgrader", {}) for c in nb["cells"])
    return [(m["grade_id"], float(m["points"])) for m in meta if m.get("grade") and not m.get("solution")]


def _last_error(log: str) -> str:
    """The exception nbgrader hit ("RuntimeError: no end solution statement found"), else its last ERROR line."""
    lines = [ln.strip() for ln in log.splitlines()]
    raised = [ln for ln in lines if re.match(r"[\w.]*(Error|Exception): ", ln)]
    errors = [ln for ln in lines if "ERROR" in ln]
    return (raised or errors or ["see nbgrader's log"])[-1][:300]


def release() -> None:
    """instructor/source/<chapter>/ from notebooks/ (the instructor edition as it is now), then nbgrader's
    student version of every chapter in instructor/release/ (one nbgrader run for all: "*")."""
    for ch in CHAPTERS:
        src = course() / "source" / ch
        src.mkdir(parents=True, exist_ok=True)
        shutil.copy(NOTEBOOKS / f"{ch}.ipynb", src / f"{ch}.ipynb")
    r = nbgrader("generate_assignment", "*", "--force")
    if "Cannot add or remove cells" in r.stderr:
        raise SystemExit(f"the notebooks' graded cells changed after submissions were graded, and nbgrader keeps those "
                         f"grades: to start a new gradebook, move {course() / 'gradebook.db'} away, with the "
                         f"submitted/, autograded/ and feedback/ folders beside it that belong to it")
    if r.returncode != 0:
        raise SystemExit(f"nbgrader generate_assignment failed: {_last_error(r.stderr)}")


def student_edition(out: Path | None = None) -> Path:
    """The notebooks as students get them: outputs cleared, each solution replaced by
    `# YOUR CODE HERE / raise NotImplementedError()`, hidden tests removed. Returns the folder."""
    out = Path(out or HERE / "student_edition")
    release()
    out.mkdir(parents=True, exist_ok=True)
    for ch in CHAPTERS:
        text = (course() / "release" / ch / f"{ch}.ipynb").read_text(encoding="utf-8")
        leaked = [m for m in ("BEGIN SOLUTION", "END SOLUTION", "HIDDEN TESTS") if m in text]
        if leaked:
            raise SystemExit(f"{ch}: the student edition still contains {leaked[0]!r}; check the markers' spelling")
        (out / f"{ch}.ipynb").write_text(text, encoding="utf-8")
    return out


def solutions(chapter: str) -> dict[str, str]:
    """grade_id -> the instructor's answer for each solution cell (the markers removed)."""
    nb = json.loads((NOTEBOOKS / f"{chapter}.ipynb").read_text(encoding="utf-8"))
    return {c["metadata"]["nbgrader"]["grade_id"]:
            "\n".join(ln for ln in "".join(c["source"]).split("\n") if "### BEGIN SOLUTION" not in ln
                      and "### END SOLUTION" not in ln)
            for c in nb["cells"] if c["cell_type"] == "code" and c["metadata"].get("nbgrader", {}).get("solution")}


def fill(chapter: str, answers: dict[str, str], drop: tuple[str, ...] = ()) -> dict:
    """A submission: the student edition of `chapter` with answers in its solution cells (grade_id -> code),
    the cells named in `drop` deleted. Needs the student edition (release) made first."""
    nb = json.loads((course() / "release" / chapter / f"{chapter}.ipynb").read_text(encoding="utf-8"))
    for c in nb["cells"]:
        gid = c["metadata"].get("nbgrader", {}).get("grade_id")
        if gid in answers:
            c["source"] = answers[gid]
    nb["cells"] = [c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") not in drop]
    return nb


# three students for trying the grader, each handing in two chapters: one right, one with a common mistake in
# each chapter (pair counts that only say whether a pair occurs; a training step that never clips the
# gradients), one whose code raises in each
SAMPLE_ANSWERS = {
    "01_tokenization": {
        "right": {},
        "wrong": {"count_pairs": "def count_pairs(ids):\n    return {pair: 1 for pair in zip(ids, ids[1:])}"},
        "crashing": {"merge_pair": "def merge_pair(ids, pair, new_id):\n    raise ValueError('not finished')"},
    },
    "03_pretraining": {
        "right": {},
        "wrong": {"training_step": "def training_step(model, optimizer, x, y, lr, grad_clip):\n"
                                   "    for group in optimizer.param_groups:\n"
                                   "        group['lr'] = lr\n"
                                   "    _, loss = model(x, y)\n"
                                   "    loss.backward()\n"
                                   "    optimizer.step()\n"
                                   "    optimizer.zero_grad()\n"
                                   "    return loss.item()"},
        "crashing": {"training_step": "def training_step(model, optimizer, x, y, lr, grad_clip):\n"
                                      "    raise ValueError('not finished')"},
    },
}
SAMPLE_STUDENTS = ("right", "wrong", "crashing")


def samples(out: Path | None = None) -> Path:
    """Three sample submissions of chapters 01 and 03 in out/<student>/ (default instructor/samples)."""
    out = Path(out or HERE / "samples")
    release()
    for chapter, students in SAMPLE_ANSWERS.items():
        for student in SAMPLE_STUDENTS:
            (out / student).mkdir(parents=True, exist_ok=True)
            nb = fill(chapter, {**solutions(chapter), **students[student]})
            (out / student / f"{chapter}.ipynb").write_text(json.dumps(nb, indent=1), encoding="utf-8")
    return out


def _cell_error(cell: dict) -> str:
    """Why a graded cell lost its points: the error's message, or nbgrader's other reason (stderr)."""
    for o in cell.get("outputs", []):
        if o.get("output_type") == "error":
            if o.get("ename") in ("CellTimeoutError", "KeyboardInterrupt"):
                return "timed out: the cell did not finish (an endless loop?) and was interrupted"
            message = " ".join((o.get("evalue") or "").split())      # the check's message and hint, on one line
            return f"{o.get('ename')}: {message}"[:400]
        if o.get("output_type") == "stream" and o.get("name") == "stderr":
            return "the check cell wrote to stderr, which nbgrader counts as a failure: " + o.get("text", "")[:200]
    return ""


def _scores(student: str, chapter: str) -> dict[str, tuple[float, float]]:
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{course() / 'gradebook.db'}", course_id="minillm") as gb:
        nb = gb.find_submission_notebook(chapter, chapter, student)
        return {g.name: (g.score or 0.0, g.max_score) for g in nb.grades}


def grade_one(student: str, chapter: str, notebook: Path, cell_timeout: float | None = None) -> list[dict]:
    """Autograde one student's chapter; one row per graded cell."""
    cells = graded_cells(chapter)
    dest = course() / "submitted" / student / chapter
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    shutil.copy(notebook, dest / f"{chapter}.ipynb")
    args = ["autograde", chapter, "--student", student, "--force"]
    if cell_timeout:
        args.append(f"--ExecutePreprocessor.timeout={int(cell_timeout)}")
    n_cells = len(json.loads(notebook.read_text(encoding="utf-8")).get("cells", []))
    try:
        r = nbgrader(*args, timeout=(cell_timeout or 600) * (n_cells + 2))
        log, why = r.stderr + r.stdout, None
    except subprocess.TimeoutExpired:
        log, why = "", "grading did not finish in time"
    except Exception as e:  # noqa: BLE001 - an unreadable notebook, say, is this row's error, not the class's
        log, why = "", f"could not grade: {e}"
    graded = course() / "autograded" / student / chapter / f"{chapter}.ipynb"
    if why is None and not graded.exists():
        if "Kernel died" in log or "DeadKernelError" in log:
            why = "the kernel died (the notebook exited, crashed or ran out of memory): nothing in it could be graded"
        else:
            why = f"nbgrader could not grade it: {_last_error(log)}"
    if why:
        return [dict(student=student, chapter=chapter, exercise=gid, points=0.0, max_points=pts, error=why)
                for gid, pts in cells]
    nb = json.loads(graded.read_text(encoding="utf-8"))
    by_id = {c["metadata"].get("nbgrader", {}).get("grade_id"): c for c in nb["cells"]}
    scores = _scores(student, chapter)
    rows = []
    for gid, pts in cells:
        points, max_points = scores.get(gid, (0.0, pts))
        error = _cell_error(by_id[gid]) if gid in by_id else "the check cell is missing"
        rows.append(dict(student=student, chapter=chapter, exercise=gid, points=points, max_points=max_points,
                         error=error if points < max_points else ""))
    return rows


def grade(submissions: Path, csv_path: Path | None = None, chapters: list[str] | None = None,
          cell_timeout: float | None = None, log=print) -> list[dict]:
    """Grade every student folder in `submissions`; write the rows to csv_path (if given) and return them."""
    submissions = Path(submissions)
    students = sorted(d for d in submissions.iterdir() if d.is_dir()) if submissions.is_dir() else []
    if not students:
        raise SystemExit(f"{submissions}: no student folders; put each student's notebooks in "
                         f"{submissions}/<student>/<chapter>.ipynb")
    unknown = [ch for ch in chapters or [] if ch not in CHAPTERS]
    if unknown:
        raise SystemExit(f"no chapter {unknown[0]!r}; the chapters are {', '.join(CHAPTERS)}")
    handed_in = {p.stem for d in students for p in d.glob("*.ipynb")}
    chapters = [ch for ch in (chapters or [c for c in CHAPTERS if c in handed_in]) if graded_cells(ch)]
    if not chapters:
        raise SystemExit(f"{submissions}: no notebook of a chapter with exercises; name them as the chapters, "
                         f"e.g. {submissions}/<student>/01_tokenization.ipynb")
    release()
    rows = []
    for d in students:
        for ch in chapters:
            nb = d / f"{ch}.ipynb"
            if not nb.exists():
                rows += [dict(student=d.name, chapter=ch, exercise=gid, points=0.0, max_points=pts,
                              error="not submitted") for gid, pts in graded_cells(ch)]
                continue
            got = grade_one(d.name, ch, nb, cell_timeout)
            log(f"{d.name:16s} {ch:28s} {sum(r['points'] for r in got):g}/{sum(r['max_points'] for r in got):g}")
            rows += got
    if csv_path:
        with open(csv_path, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=FIELDS)
            w.writeheader()
            w.writerows(rows)
    return rows


def feedback(chapters: list[str] | None = None) -> Path:
    """nbgrader's HTML feedback for every graded submission: instructor/feedback/<student>/<chapter>/."""
    for ch in chapters or CHAPTERS:
        if any((course() / "autograded").glob(f"*/{ch}")):
            r = nbgrader("generate_feedback", ch, "--force")
            if r.returncode != 0:
                raise SystemExit(f"nbgrader generate_feedback {ch} failed: {_last_error(r.stderr)}")
    return course() / "feedback"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("student-edition", help="write the student edition")
    p.add_argument("--out", type=Path, default=None, help="default: instructor/student_edition")
    p = sub.add_parser("grade", help="grade a folder of submissions into a CSV")
    p.add_argument("submissions", type=Path, help="SUBMISSIONS/<student>/<chapter>.ipynb")
    p.add_argument("--csv", type=Path, default=Path("grades.csv"))
    p.add_argument("--chapters", nargs="+", default=None,
                   help="default: every chapter someone handed in; a student without it gets 'not submitted'")
    p.add_argument("--cell-timeout", type=int, default=None, help="seconds per cell (default 600)")
    sub.add_parser("feedback", help="HTML feedback per student from the last grading")
    sub.add_parser("samples", help=f"three sample submissions of {' and '.join(SAMPLE_ANSWERS)} in instructor/samples")
    args = ap.parse_args(argv)
    try:
        import nbgrader  # noqa: F401
    except ImportError:
        raise SystemExit('nbgrader is not installed: pip install -e ".[grading]"') from None
    if args.command == "student-edition":
        print(f"student edition: {student_edition(args.out)}")
    elif args.command == "grade":
        rows = grade(args.submissions, args.csv, args.chapters, args.cell_timeout)
        print(f"{len(rows)} rows -> {args.csv}")
    elif args.command == "samples":
        print(f"sample submissions ({', '.join(SAMPLE_STUDENTS)}; {' and '.join(SAMPLE_ANSWERS)}): {samples()}")
    else:
        print(f"feedback: {feedback()}")


if __name__ == "__main__":
    main()
