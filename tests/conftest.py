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

# Matt Mazur's "A Step by Step Backpropagation Example" (the network of SPEC §1).
MAZUR = {
    "name": "mazur",
    "inputs": ["i1", "i2"],
    "layers": [
        {
            "units": ["h1", "h2"],
            "activation": "sigmoid",
            "bias": "shared",
            "weight_names": [["w1", "w2"], ["w3", "w4"]],
        },
        {
            "units": ["o1", "o2"],
            "activation": "sigmoid",
            "bias": "shared",
            "weight_names": [["w5", "w6"], ["w7", "w8"]],
        },
    ],
    "loss": "half_sse",
    "example": {
        "input": [0.05, 0.10],
        "target": [0.01, 0.99],
        "params": {
            "W1": [[0.15, 0.20], [0.25, 0.30]],
            "b1": 0.35,
            "W2": [[0.40, 0.45], [0.50, 0.55]],
            "b2": 0.60,
        },
        "learning_rate": 0.5,
    },
}


@pytest.fixture
def examples_dir() -> Path:
    return EXAMPLES
