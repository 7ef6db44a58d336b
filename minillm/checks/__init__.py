"""The course's checks, in two kinds kept apart: a student's own code against the package's reference
(`minillm.checks.pretraining`, chapters 00-03; `minillm.checks.assistant`, chapters 04-09), and a course run's
figures against the course's targets (`minillm.checks.runs`; the targets themselves live in `minillm.targets`).

Notebooks import every check from here: `from minillm.checks import check_merge, check_base_model`.
"""
from minillm.checks.assistant import *  # noqa: F401,F403
from minillm.checks.assistant import __all__ as _assistant
from minillm.checks.pretraining import *  # noqa: F401,F403
from minillm.checks.pretraining import __all__ as _pretraining
from minillm.checks.runs import *  # noqa: F401,F403
from minillm.checks.runs import __all__ as _runs

# Checks of a student's own code (what an exercise's graded check cell calls), by course part:
# `minillm.checks.pretraining` (chapters 00-03) and `minillm.checks.assistant` (chapters 04-09). Where a lesson
# builds something by hand (the loss, BPE pair counting and one merge step, one attention head, next-token
# batches, one training step, sampling, the answer scorer, the learning-rate schedule, the loss mask, the
# monitoring table, GPU-hours), the package holds the reference, and the check compares the two. A right answer
# prints one line starting with ✓; a wrong one raises AssertionError with a message that says *what* differs on
# *which* input and, where the mistake is a common one (a forgotten causal mask, the missing 1/sqrt(d), the tied
# embedding counted twice), names it. nbgrader grades a check cell by whether it raises. Every such check runs
# the student's function on the tricky cases (fixed) and on `n_random` fresh random inputs drawn anew on every
# call: a function that only fits the cases it has seen fails. Checks take milliseconds; the training step's,
# which trains a tiny GPT a few steps with train() and with the student's step, up to a second.
#
# Checks of a course run's figures against the course's targets: `minillm.checks.runs`. The targets themselves
# live below the checks, in `minillm.targets`, where the report and the release read them too.

__all__ = _pretraining + _assistant + _runs
