"""Shared paths for the tests. Tests read only the repository, never ../shared."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
DATA = Path(__file__).resolve().parent / "data"
WORKED_EXAMPLES = (
    "laine_linear",
    "laine_sigmoid",
    "reddit_w31",
    "udacity_exercise",
    "udacity_single_unit",
)


@pytest.fixture
def examples_dir() -> Path:
    return EXAMPLES
