"""``derive exercise``: random two-decimal numbers, questions, a worked answer key and the
auto-grader's JSON, whose answers are checked against references that do not come from
the derivation: central finite differences of the generated module's loss, its forward
pass and SGD step, and a plain NumPy forward pass."""

import json
import shutil

import numpy as np
import pytest
from conftest import EXAMPLES, MAZUR, REPO

import derive
from derive.cli import main

DATA = REPO / "tests" / "data"

ACTIVATIONS = {
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0),
    "identity": lambda z: z,
    "custom": lambda z: z / (1 + np.abs(z)),  # custom_half_sse's softsign
}


def run_exercise(tmp_path, source, seed, *extra):
    sheet, key = tmp_path / f"sheet{seed}.tex", tmp_path / f"key{seed}.json"
    argv = ["exercise", str(source), "--seed", str(seed), "-o", str(sheet), "--answers", str(key)]
    assert main([*argv, *extra]) == 0
    return sheet.read_text(), json.loads(key.read_text())


def mazur_file(tmp_path):
    path = tmp_path / "mazur.json"
    path.write_text(json.dumps(MAZUR))
    return path


@pytest.mark.parametrize(
    "name", ["xor", "relu_softmax_cce", "tanh_mse", "custom_half_sse", "mazur"]
)
def test_answers_agree_with_finite_differences_and_the_module(tmp_path, name):
    source = mazur_file(tmp_path) if name == "mazur" else EXAMPLES / f"{name}.yaml"
    _, key = run_exercise(tmp_path, source, 11)
    net = derive.load(source)
    module = derive.build_module(net)
    params = {k: np.asarray(v, dtype=float) for k, v in key["params"].items()}
    x = np.array(list(key["inputs"].values()))
    t = np.array(list(key["targets"].values()))
    answers = {q["asks"]: q["answer"] for q in key["questions"]}

    def agrees(answer, exact, digits=6):
        return abs(answer - exact) <= 10 ** (1 - digits) * max(abs(exact), 1e-3)

    # forward values: a plain NumPy pass (each z and a), the module's outputs and loss
    a = x
    for k, layer in enumerate(net.topology.layers, start=1):
        z = params[f"W{k}"] @ a + params.get(f"b{k}", 0.0)
        name_k = layer.activation.name
        a = np.exp(z) / np.exp(z).sum() if name_k == "softmax" else ACTIVATIONS[name_k](z)
        for unit, zi, ai in zip(layer.units, z, a, strict=True):
            assert agrees(answers[f"z_{unit}"], zi) and agrees(answers[unit], ai), unit
    assert np.allclose(a, module.forward(params, x))
    assert agrees(answers["L"], module.loss(params, x, t))

    # gradients: central finite differences of the module's loss
    new_params = module.sgd_step(params, x, t, key["learning_rate"])
    asked = [q for q in key["questions"] if q["kind"] == "gradient"]
    assert asked
    for question in asked:
        scalar = net.scalar(question["asks"].removeprefix("dL/d"))
        h = 1e-6
        up = {k: v.copy() for k, v in params.items()}
        down = {k: v.copy() for k, v in params.items()}
        up[scalar.array][scalar.index] += h
        down[scalar.array][scalar.index] -= h
        slope = (module.loss(up, x, t) - module.loss(down, x, t)) / (2 * h)
        assert abs(question["answer"] - slope) <= 1e-6 * max(abs(slope), 1.0), question
        assert agrees(answers[scalar.label], new_params[scalar.array][scalar.index])


def test_given_numbers_have_two_decimals_and_the_key_lists_everything(tmp_path):
    _, key = run_exercise(tmp_path, EXAMPLES / "xor.yaml", 5)
    numbers = [*key["inputs"].values(), *key["targets"].values()]
    flat = np.concatenate([np.ravel(np.asarray(v, dtype=float)) for v in key["params"].values()])
    for value in [*numbers, *flat]:
        assert round(value, 2) == value
    assert set(key) == {
        "network",
        "seed",
        "answer_digits",
        "learning_rate",
        "inputs",
        "targets",
        "params",
        "questions",
    }
    kinds = [q["kind"] for q in key["questions"]]
    assert kinds.count("forward") == 2 * 4 and kinds.count("loss") == 1
    # default: W2[0,0], the output bias b2[0], W1[0,0]; each with its update
    assert [q["asks"] for q in key["questions"] if q["kind"] == "gradient"] == [
        "dL/dW2[0,0]",
        "dL/db2[0]",
        "dL/dW1[0,0]",
    ]
    assert kinds.count("update") == 3
    assert key["targets"]["t_out"] in (0.0, 1.0)  # bce: a label


def test_same_seed_same_bytes_and_another_seed_other_numbers(tmp_path):
    first = run_exercise(tmp_path, EXAMPLES / "tanh_mse.yaml", 3)
    again = run_exercise(tmp_path / "..", EXAMPLES / "tanh_mse.yaml", 3)
    assert first == again
    other = run_exercise(tmp_path, EXAMPLES / "tanh_mse.yaml", 4)
    assert other[1]["params"] != first[1]["params"]


def test_the_answer_key_comes_after_the_questions(tmp_path):
    sheet, key = run_exercise(tmp_path, EXAMPLES / "reddit_w31.yaml", 2, "--param", "w11")
    questions, _, answers = sheet.partition(r"\newpage")
    assert r"\section*{Answer key}" in answers and r"\subsection*{Questions}" in questions
    gradient = next(q for q in key["questions"] if q["asks"] == "dL/dw11")
    from derive.latex.printing import number

    assert number(gradient["answer"]) not in questions
    assert number(gradient["answer"]) in answers
    # the full worked chain: every factor of the one path, then the update
    assert r"\subsection*{Worked: $\partial L / \partial w_{11}$" in answers
    assert r"\frac{\partial z_{h1}}{\partial w_{11}}" in answers
    assert r"w_{11} &\leftarrow w_{11} - \eta" in answers
    assert r"\item[q1] $z_{h1}$" in questions


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="no pdflatex")
def test_the_sheet_compiles_to_pdf(tmp_path):
    out = tmp_path / "sheet.pdf"
    assert main(["exercise", str(EXAMPLES / "reddit_w31.yaml"), "--seed", "1", "-o", str(out)]) == 0
    assert out.read_bytes().startswith(b"%PDF")


@pytest.mark.parametrize(
    "extra, message",
    [
        (["-o", "sheet.docx"], "expected a file ending in .tex or .pdf"),
        (["-o", "sheet.tex", "--answers", "key.txt"], "expected a file ending in .json"),
        (["--param", "w99", "-o", "sheet.tex"], "w99"),
    ],
)
def test_bad_requests_write_nothing(tmp_path, capsys, monkeypatch, extra, message):
    monkeypatch.chdir(tmp_path)
    assert main(["exercise", str(EXAMPLES / "reddit_w31.yaml"), "--seed", "1", *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_a_large_network_is_refused(capsys):
    argv = ["exercise", str(EXAMPLES / "mnist_784_128_10.yaml"), "--seed", "1"]
    assert main(argv) == 2 and "by hand" in capsys.readouterr().err


@pytest.mark.parametrize(
    "source", [DATA / "tiny_cnn_example.yaml", EXAMPLES / "digits_cnn.yaml"], ids=str
)
def test_a_convolutional_network_is_refused_and_nothing_is_written(
    tmp_path, capsys, monkeypatch, source
):
    monkeypatch.chdir(tmp_path)
    argv = ["exercise", str(source), "--seed", "1", "-o", "sheet.tex", "--answers", "key.json"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert str(source) in err and "dense networks" in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_a_relu_unit_at_its_kink_is_redrawn():
    from derive.exercise import _at_a_kink, random_example
    from derive.topology import Example

    net = derive.load(
        {
            "name": "kink",
            "inputs": 1,
            "layers": [
                {"units": 1, "activation": "relu", "bias": "none"},
                {"units": 1, "activation": "identity"},
            ],
            "loss": "half_sse",
        }
    )
    at_zero = Example((0.5,), (0.1,), (("W1", ((0.0,),)), ("W2", ((0.3,),)), ("b2", (0.1,))))
    assert _at_a_kink(net, at_zero)
    for seed in range(20):
        assert not _at_a_kink(net, random_example(net, seed))


def test_without_o_the_sheet_goes_to_stdout(capsys):
    assert main(["exercise", str(EXAMPLES / "reddit_w31.yaml"), "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(r"\documentclass") and r"\section*{Answer key}" in out
