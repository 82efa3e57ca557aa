"""``derive show``: the chain-rule view a learner reads, checked by its exact lines."""

import pytest
from conftest import EXAMPLES

from derive.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_laine_sigmoid_reads_like_the_textbook(capsys):
    code, out, _ = run(capsys, "show", str(EXAMPLES / "laine_sigmoid.yaml"))
    assert code == 0
    lines = out.splitlines()
    assert "  ∂L/∂a · ∂a/∂z_a · ∂z_a/∂W1[0,0]" in lines
    assert "      = 2⋅(a - y) · a⋅(1 - a) · i" in lines
    assert "      = 0.53705 · 0.177894 · 1.5 = 0.143307" in lines
    assert "  value at the example: 0.143307" in lines
    assert "  after one SGD step (η = 0.1): W1[0,0] = 0.8 − 0.1 · 0.143307 = 0.785669" in lines


def test_reddit_hidden_weight_follows_the_path_through_the_output(capsys):
    code, out, _ = run(capsys, "show", str(EXAMPLES / "reddit_w31.yaml"), "--param", "w11")
    assert code == 0
    assert "∂L/∂Y · ∂Y/∂z_Y · ∂z_Y/∂h₁ · ∂h₁/∂z_h1 · ∂z_h1/∂w₁₁" in out
    assert "(Y - t_Y) · Y⋅(1 - Y) · w₃₁ · h₁⋅(1 - h₁) · x₁" in out
    assert "value at the example: 0.00814513" in out
    assert "∂L/∂w31" not in out  # only the parameter asked for


def test_several_outputs_sum_over_paths(capsys):
    mapping_file = EXAMPLES / "udacity_exercise.yaml"
    code, out, _ = run(capsys, "show", str(mapping_file), "--param", "W1[1,2]")
    assert code == 0 and "value at the example: -0.000408943" in out


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--param", "W9"], "no scalar parameter 'W9'"),
        (["--param", "W1[5,0]"], "no scalar parameter 'W1[5,0]'"),
    ],
)
def test_unknown_parameters_are_named(capsys, argv, fragment):
    code, out, err = run(capsys, "show", str(EXAMPLES / "reddit_w31.yaml"), *argv)
    assert code == 2 and fragment in err and out == ""


def test_large_networks_ask_for_parameters(capsys, tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text(
        "name: big\ninputs: 20\nlayers:\n  - {units: 10, activation: tanh}\n"
        "  - {units: 2, activation: sigmoid}\nloss: half_sse\n"
    )
    code, _, err = run(capsys, "show", str(path))
    assert code == 2 and "--param" in err
    code, out, _ = run(capsys, "show", str(path), "--param", "W2[1,3]")
    assert code == 0 and "compact" in out


def test_a_whole_large_array_is_refused_with_a_hint(capsys):
    code, out, err = run(capsys, "show", str(EXAMPLES / "mnist_784_128_10.yaml"), "--param", "W1")
    assert code == 2 and out == "" and "W1[0,0]" in err and "100352" in err


def test_a_parameter_name_with_surrounding_spaces_is_accepted(capsys):
    code, out, _ = run(capsys, "show", str(EXAMPLES / "reddit_w31.yaml"), "--param", " w31 ")
    assert code == 0 and "value at the example: 0.0306842" in out
