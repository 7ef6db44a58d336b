"""The course's checks, in two kinds kept apart:

- `minillm.checks.exercises`: a student's own code against the package's reference, on fresh random inputs
  (what an exercise's graded check cell calls);
- `minillm.checks.runs`: a course run's figures against the course's targets.

Notebooks import both from here: `from minillm.checks import check_merge, check_base_model`.
"""
from minillm.checks.exercises import *  # noqa: F401,F403
from minillm.checks.exercises import __all__ as _exercises
from minillm.checks.runs import *  # noqa: F401,F403
from minillm.checks.runs import __all__ as _runs

__all__ = _exercises + _runs
