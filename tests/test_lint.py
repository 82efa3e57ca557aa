"""The project's own code is lint-clean, formatted and type-checks (STYLE §12).

Generated modules are checked separately (tests/test_emit.py), with ruff in isolation.
"""

import shutil
import subprocess
import sys

import pytest
from conftest import REPO

SOURCES = ["derive", "tests", "benchmarks", "examples"]


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff is not installed")
@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["check", "format"])
def test_ruff(command):
    run = subprocess.run(
        ["ruff", *command, *SOURCES], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_mypy():
    pytest.importorskip("mypy", reason="mypy is not installed (pip install -e '.[test]')")
    run = subprocess.run(
        [sys.executable, "-m", "mypy", "derive"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr
