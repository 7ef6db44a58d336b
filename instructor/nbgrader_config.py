# nbgrader's configuration for the course (used by `python instructor/grade.py ...`, which runs nbgrader here).
# Each chapter is one assignment: instructor/source/<chapter>/<chapter>.ipynb is a copy of notebooks/<chapter>.ipynb
# (the instructor edition) that grade.py refreshes before every command.
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))   # for feedback.ShortErrors below

c = get_config()  # noqa: F821 - provided by nbgrader when it reads this file

c.CourseDirectory.course_id = "minillm"
c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))

# A student's cell may loop forever: each cell gets this long, then the kernel is interrupted and grading
# goes on with the next cell. Training cells load the cached run (artifacts/), so 10 minutes is generous;
# grade.py --cell-timeout overrides it.
c.ExecutePreprocessor.timeout = 600
c.ExecutePreprocessor.interrupt_on_timeout = True

# A student who deleted a check cell gets it back (from the gradebook) rather than a notebook that can't be graded.
c.OverwriteCells.add_missing_cells = True

# Feedback shows each check's message, but not the hidden tests' code or their tracebacks.
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "nbgrader.preprocessors.ClearHiddenTests",
    "feedback.ShortErrors",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]
