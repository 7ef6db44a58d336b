"""Print constraints.txt: the exact versions installed in this environment, which CI then tests.

Regenerate it after a requirement changes: in a fresh virtual environment, run the install lines of
.ci/run without their `-c constraints.txt`, then

    python tools/freeze_constraints.py > constraints.txt

Local version labels are dropped (torch's "+cpu"), so the same pins install on every platform; the
installer's own packages (pip, setuptools, wheel) and minillm itself are left out. A package whose
installed release needs a newer Python than the course's oldest (minillm.doctor.MIN_PYTHON, as its ".0"
release) is named on stderr: pin the newest release that supports it (soupsieve 2.9.2: 3.0.2 and later
need 3.11.5), then tests/test_install.py resolves the pins on every supported Python and platform.
"""
import importlib.metadata
import platform
import sys

from packaging.specifiers import SpecifierSet

from minillm.doctor import MIN_PYTHON, package_key

HEADER = """\
# The exact versions CI installed and tested (Python {python}, {system}). Install with them:
#   pip install -r requirements.txt -c constraints.txt -e .
# Written by tools/freeze_constraints.py (its docstring says when and how); tests/test_doctor.py checks
# in CI that what is installed is what is pinned here.
"""
SKIP = {"minillm", "pip", "setuptools", "wheel"}


def main() -> None:
    pins = {}
    oldest = ".".join(map(str, MIN_PYTHON)) + ".0"
    for dist in importlib.metadata.distributions():
        name = package_key(dist.metadata["Name"])
        if name not in SKIP:
            pins[name] = dist.version.split("+")[0]
            needs = dist.metadata["Requires-Python"]
            if needs and not SpecifierSet(needs).contains(oldest):
                print(f"{name} {pins[name]} needs Python {needs}, not {oldest}: pin its newest release that "
                      "supports it", file=sys.stderr)
    print(HEADER.format(python=platform.python_version(), system=platform.system()), end="")
    for name in sorted(pins):
        print(f"{name}=={pins[name]}")


if __name__ == "__main__":
    main()
