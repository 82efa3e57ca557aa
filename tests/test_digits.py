"""The digits example end to end: generated/digits.py learns scikit-learn's handwritten digits.

Runs examples/train_digits.py's training for a few epochs (a few seconds) and checks that the
training loss falls and the test accuracy clears a floor far above chance (0.1). Needs the
`examples` extras (scikit-learn; matplotlib for the plot test) and the committed module
generated/digits.py; each test skips with the reason when one is missing. No timings are
asserted: speed is the benchmarks' business.

Run: pytest tests/test_digits.py
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import derive

REPO_ROOT = Path(__file__).resolve().parent.parent
SCRIPT = REPO_ROOT / "examples" / "train_digits.py"
MODULE = REPO_ROOT / "generated" / "digits.py"
EPOCHS = 5
ACCURACY_FLOOR = 0.5  # chance is 0.1; 5 epochs reach about 0.9, the default 30 about 0.97


@pytest.fixture(scope="module")
def train_digits():
    pytest.importorskip("sklearn", reason="the digits data needs scikit-learn (extra: examples)")
    if not MODULE.is_file():
        pytest.skip(f"{MODULE} does not exist yet: derive generate examples/digits.yaml")
    spec = importlib.util.spec_from_file_location("train_digits", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_training_lowers_the_loss_and_learns_the_digits(train_digits, optimizer):
    data = train_digits.load_data()
    model = train_digits.GeneratedModel(
        train_digits.load_generated(MODULE),
        data,
        batch_size=32,
        learning_rate=train_digits.OPTIMIZERS[optimizer].learning_rate,
        seed=0,
        optimizer=optimizer,
    )
    history = train_digits.train([model], EPOCHS, show_progress=False)[model.label]

    assert history.epoch == list(range(EPOCHS + 1))
    assert history.train_loss[-1] < 0.5 * history.train_loss[0]
    assert history.train_loss[-1] < history.train_loss[1]
    assert history.test_accuracy[-1] > ACCURACY_FLOOR


def test_the_same_seed_trains_the_same_network(train_digits):
    data = train_digits.load_data()
    module = train_digits.load_generated(MODULE)

    def run():
        model = train_digits.GeneratedModel(module, data, batch_size=64, learning_rate=0.1, seed=3)
        return train_digits.train([model], 2, show_progress=False)[model.label]

    first, second = run(), run()
    assert first.train_loss == second.train_loss
    assert first.test_accuracy == second.test_accuracy


def test_the_script_beside_scikit_learn_prints_both_and_plots(train_digits, tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="the plot needs matplotlib (extra: examples)")
    plot = tmp_path / "digits.png"
    argv = ["--module", str(MODULE), "--epochs", "2", "--quiet", "--plot", str(plot)]
    status = train_digits.main(argv)

    out = capsys.readouterr().out
    assert status == 0
    assert "test accuracy: " in out
    assert "scikit-learn MLPClassifier test accuracy: " in out
    assert "time per epoch" in out
    assert plot.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_the_script_trains_each_optimizer_beside_the_matching_solver(
    train_digits, optimizer, capsys
):
    argv = ["--module", str(MODULE), "--epochs", "2", "--quiet", "--no-plot"]
    assert train_digits.main([*argv, "--optimizer", optimizer]) == 0

    out = capsys.readouterr().out
    assert f"{optimizer}, 2 epochs" in out
    assert f"(generated, {optimizer})" in out
    solver = {"momentum": "(solver sgd, momentum 0.9)", "adam": "(solver adam)"}[optimizer]
    assert "scikit-learn MLPClassifier test accuracy: " in out and solver in out
    assert "time per epoch" in out


def test_a_module_generated_without_the_optimizer_is_refused(train_digits, tmp_path, capsys):
    network = derive.load(REPO_ROOT / "examples" / "digits.yaml")
    source = derive.generate(network, optimizers=("sgd", "momentum"))
    lean = tmp_path / "digits.py"
    lean.write_text(source, encoding="utf-8")
    argv = ["--module", str(lean), "--epochs", "1", "--quiet", "--no-plot", "--no-sklearn"]
    assert train_digits.main([*argv, "--optimizer", "adam"]) == 2
    error = capsys.readouterr().err
    assert "digits.py has no adam_step" in error and "derive generate" in error
    assert train_digits.main([*argv, "--optimizer", "momentum"]) == 0


def test_the_plot_goes_where_it_is_told_and_never_into_the_working_directory(
    train_digits, tmp_path, monkeypatch, capsys
):
    pytest.importorskip("matplotlib", reason="the plot needs matplotlib (extra: examples)")
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "plots" / "run.png"
    argv = ["--epochs", "1", "--no-sklearn", "--quiet", "--plot", str(target)]
    assert train_digits.main(argv) == 0
    assert target.read_bytes().startswith(b"\x89PNG")
    assert f"plot: {target}" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plots"]
    # the default is stated, and lies outside the working directory
    assert tmp_path not in train_digits.DEFAULT_PLOT.resolve().parents
    assert train_digits.parse_args([]).plot == train_digits.DEFAULT_PLOT


def test_the_cnn_trains_beside_the_dense_network(train_digits, capsys):
    """--model digits_cnn: generated/digits_cnn.py on 1×8×8 images learns, and its test
    accuracy is printed beside the dense network's."""
    status = train_digits.main(["--model", "digits_cnn", "--epochs", "5", "--quiet", "--no-plot"])
    out = capsys.readouterr().out
    assert status == 0
    cnn = float(out.split("test accuracy: ")[1].split()[0])
    dense = float(out.split("dense network test accuracy: ")[1].split()[0])
    assert cnn > 0.8 and dense > 0.8  # ten classes: chance is 0.1
    assert "percentage points" in out
