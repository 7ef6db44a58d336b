"""The install resolves on every Python and platform the package accepts, not only on CI's (Python 3.11.7, Linux).

constraints.txt was frozen on one Python and one platform; a pin with no wheel or no release for another
Python (numpy 2.4 on 3.10, soupsieve 3.0.2+ below 3.11.5) breaks the README's install there. For each
supported Python (the oldest is pyproject's floor, as its ".0" release) and each platform torch has wheels
for, pip resolves requirements.txt and the extras with `-c constraints.txt` as if it ran there
(`pip install --dry-run --python-version X --platform P --only-binary=:all:`). torch itself is checked by
its wheel files on the index: its wheels carry no separate metadata, so a dry run would download 0.5 GB.

What this cannot see: pip evaluates environment markers with the running interpreter (pypa/pip#11010),
so a dependency only another platform needs (colorama and pywinpty on Windows, appnope on macOS) is not
resolved here; none of them is pinned, so pip picks what fits there.
These tests need a package index and are skipped, saying so, without one.
"""
import json
import re
import subprocess
import sys
import tomllib
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet
from packaging.tags import cpython_tags, mac_platforms
from packaging.utils import parse_wheel_filename
from packaging.version import Version

from minillm import doctor

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
PYTHONS = ("3.11.0", "3.12", "3.13", "3.14")   # the floor's first release, then each newer one torch has wheels for
PLATFORMS = {                                   # pip's --platform tags of a student's machine
    "Linux x86_64": ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64", "linux_x86_64"],
    "Windows": ["win_amd64"],
    "macOS (Apple silicon)": ["macosx_14_0_arm64"],      # pip takes older macOS wheels for it too
}
TAGS = {**PLATFORMS, "macOS (Apple silicon)": list(mac_platforms((14, 0), "arm64"))}   # ... and so do wheel tags
INDEX = "https://pypi.org/simple"


@pytest.fixture(scope="module")
def index():
    """The package index, or a skip that says what goes unchecked (asked only when these tests run)."""
    try:
        urllib.request.urlopen(f"{INDEX}/pip/", timeout=20).close()
    except OSError:
        pytest.skip(f"no package index ({INDEX}) reachable: whether the install resolves on other Pythons "
                    "and platforms is not checked")
    return INDEX


def test_the_oldest_python_is_the_same_in_pyproject_the_doctor_and_the_readme():
    floor = SpecifierSet(PROJECT["requires-python"])
    oldest = Version(PYTHONS[0])
    assert oldest in floor and Version(f"{oldest.major}.{oldest.minor - 1}.99") not in floor
    assert doctor.MIN_PYTHON == (oldest.major, oldest.minor)
    assert f"Python {oldest.major}.{oldest.minor} or newer" in (ROOT / "README.md").read_text(encoding="utf-8")


def _requirements() -> list[str]:
    """requirements.txt and every extra, without torch (checked by its files)."""
    lines = [line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    extras = [r for group in PROJECT["optional-dependencies"].values() for r in group]
    return [r for r in [*filter(None, lines), *extras] if not re.match(r"torch\b", r)]


def _resolve(python: str, platform: str, tmp: Path) -> tuple[str, str, int, str]:
    reqs = tmp / "requirements.txt"
    reqs.write_text("\n".join(_requirements()) + "\n")
    cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--only-binary=:all:",
           "--python-version", python, *[f"--platform={tag}" for tag in PLATFORMS[platform]],
           "--target", str(tmp / "target"), "-r", str(reqs), "-c", str(ROOT / "constraints.txt")]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    out = p.stdout + p.stderr            # pip's explanation, without its download lines
    why = out[out.index("The conflict"):] if "The conflict" in out else "\n".join(
        line for line in out.splitlines() if line.startswith("ERROR"))
    return python, platform, p.returncode, why


def test_the_pinned_packages_install_on_every_supported_python_and_platform(index, tmp_path):
    combos = [(py, plat) for py in PYTHONS for plat in PLATFORMS]
    dirs = [tmp_path / f"{i}" for i in range(len(combos))]
    for d in dirs:
        d.mkdir()
    with ThreadPoolExecutor(2) as pool:     # pip's resolver is mostly CPU: two at once on CI's two cores
        results = list(pool.map(lambda c: _resolve(*c[0], c[1]), zip(combos, dirs)))
    failed = [f"Python {py} on {plat}:\n{errors}" for py, plat, rc, errors in results if rc != 0]
    assert not failed, ("constraints.txt does not install on\n" + "\n".join(failed)
                        + "\npin a release that supports the oldest Python (tools/freeze_constraints.py warns)")


def test_torch_has_a_wheel_for_every_supported_python_and_platform(index):
    want = doctor.tested_versions(ROOT / "constraints.txt")["torch"]
    request = urllib.request.Request(f"{index}/torch/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(request, timeout=60) as r:
        files = [f["filename"] for f in json.load(r)["files"] if f["filename"].endswith(".whl")]
    wheel_tags = set()
    for name in files:
        _, version, _, tags = parse_wheel_filename(name)
        if version == Version(want):
            wheel_tags |= tags
    missing = []
    for py in PYTHONS:
        v = Version(py)
        for plat, tags in TAGS.items():
            if not wheel_tags & set(cpython_tags((v.major, v.minor), platforms=tags)):
                missing.append(f"Python {py} on {plat}")
    assert not missing, f"torch {want} has no wheel for {missing}"
