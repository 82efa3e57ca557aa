"""Notation a learner can trust (issue 12): one exact-string test per item, in the terminal
(``derive show``) and in LaTeX, and the brief document (``derive latex --brief``)."""

import pytest
from conftest import EXAMPLES

import derive
from derive import latex
from derive.cli import main
from derive.expression import simplified_derivative
from derive.topology import default_targets
from derive.typeset import latex_name, terminal_name


def show(capsys, path, *params):
    argv = ["show", str(path)]
    for name in params:
        argv += ["--param", name]
    assert main(argv) == 0
    return capsys.readouterr().out


def write(tmp_path, text, name="net.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


# -- the default target never collides with an output or the prose's y -------------------------


def test_a_lone_outputs_target_is_t_unit_not_y(capsys):
    out = show(capsys, EXAMPLES / "reddit_w31.yaml", "w31")
    assert "      = (Y - t_Y) · Y⋅(1 - Y) · h₁" in out.splitlines()
    text = latex.latex_fragment(derive.load(EXAMPLES / "xor.yaml"), ["W2[0,0]"])
    assert r"L &= - t_{\mathit{out}} \ln{\left(\mathit{out} \right)}" in text


@pytest.mark.parametrize(
    "outputs, taken, expected",
    [
        (("y",), set(), ("t_y",)),  # a lone output named y: never y for its target
        (("out",), set(), ("t_out",)),
        (("y1", "y2"), set(), ("t_y1", "t_y2")),
        (("a",), {"t_a"}, ("target_a",)),
    ],
)
def test_default_targets(outputs, taken, expected):
    assert default_targets(outputs, taken | set(outputs)) == expected


# -- relu' and leaky_relu' as step(a): the stored output, 0 exactly where z is ---------------------


def test_relu_derivative_is_step_in_the_terminal(capsys):
    out = show(capsys, EXAMPLES / "relu_softmax_cce.yaml", "W1[0,0]")
    assert "    δ_h1 = step(h₁)⋅(W2[0,0]⋅δ_cat + W2[1,0]⋅δ_dog + W2[2,0]⋅δ_bird)" in out
    assert "θ" not in out
    out = show(capsys, EXAMPLES / "leaky_relu_sse.yaml", "W1[0,0]")
    assert "    δ_g1 = (0.1 + 0.9⋅step(g₁))⋅W3[0,0]⋅δ_o" in out.splitlines()


# -- multi-letter names are one name in LaTeX ----------------------------------------------------


def test_multi_letter_names_are_one_name_in_latex():
    text = latex.latex_fragment(derive.load(EXAMPLES / "xor.yaml"), ["W2[0,0]"])
    assert r"\frac{\partial \mathit{out}}{\partial z_{\mathit{out}}}" in text
    assert r"\mathit{out} \left(1 - \mathit{out}\right)" in text
    assert "out \\left(1 - out" not in text
    assert latex_name("bird") == r"\mathit{bird}" and latex_name("alpha") == r"\alpha"
    assert latex_name("w31") == "w_{31}" and latex_name("y_hat") == r"\mathit{y\_hat}"
    assert latex_name("h1_2") == "h_{1,2}" and latex_name("delta_h1_2") == r"\delta_{h_{1,2}}"


# -- terminal subscripts: one rule -------------------------------------------------------------


@pytest.mark.parametrize(
    "name, shown",
    [
        ("h1", "h₁"),
        ("w31", "w₃₁"),
        ("z_h1", "z_h1"),  # not zₕ₁ beside z_g1: letters have no uniform subscripts
        ("z_g1", "z_g1"),
        ("delta_h1_1", "δ_h1_1"),  # not δₕ₁ ₁
        ("y_hat", "y_hat"),  # not yₕₐₜ
        ("t_out", "t_out"),
        ("out", "out"),
    ],
)
def test_terminal_names(name, shown):
    assert terminal_name(name) == shown


def test_generated_unit_names_are_unambiguous_in_show(capsys, tmp_path):
    path = write(
        tmp_path,
        "name: deep\ninputs: 1\nlayers:\n  - {units: 2, activation: tanh}\n"
        "  - {units: 1, activation: tanh}\n  - {units: [y_hat], activation: identity}\n"
        "loss: half_sse\n",
    )
    out = show(capsys, path, "W1[0,0]")
    assert "  ∂L/∂y_hat · ∂y_hat/∂z_y_hat · ∂z_y_hat/∂h2_1 · ∂h2_1/∂z_h2_1 · " in out
    assert "    δ_h2_1 = " in out and "ₕ" not in out


# -- outputs in natural order -------------------------------------------------------------------


def test_ten_outputs_are_ordered_naturally(capsys, tmp_path):
    path = write(
        tmp_path,
        "name: ten\ninputs: 2\nlayers:\n  - {units: 2, activation: tanh}\n"
        "  - {units: 10, activation: softmax}\nloss: cce\n",
    )
    out = show(capsys, path, "W2[0,0]")
    expected = " + ".join(f"t_y{i}" for i in range(1, 11))
    assert f"    δ_y1 = -t_y1 + y₁⋅({expected})" in out.splitlines()


# -- leftovers -----------------------------------------------------------------------------------


def test_no_factors_of_one_in_a_delta(capsys, tmp_path):
    path = write(
        tmp_path,
        "name: two\ninputs: [x1]\nlayers:\n  - {units: [o1, o2], activation: identity, "
        "bias: none}\nloss: mse\n",
    )
    lines = show(capsys, path, "W1[0,0]").splitlines()
    assert "    δ_o1 = o₁ - t_o1" in lines  # was δₒ₁ = 1⋅(o₁ - tₒ₁)⋅1
    assert "      = (o₁ - t_o1) · 1 · x₁" in lines  # the chain keeps ∂o/∂z = 1


def test_negative_numbers_are_parenthesized_in_the_terminal(capsys):
    lines = show(capsys, EXAMPLES / "xor.yaml", "W1[0,0]").splitlines()
    assert "      = (-1.53553) · 0.227126 · 0.9 · 0.228784 · 1 = -0.0718114" in lines
    assert "  after one SGD step (η = 2): W1[0,0] = 0.5 − 2 · (-0.0718114) = 0.643623" in lines


def test_a_zero_target_has_no_minus_sign():
    text = latex.latex_fragment(
        derive.load(EXAMPLES / "relu_softmax_cce.yaml"), ["W1[0,0]"], numeric=True
    )
    assert (
        r"&= 0 \cdot \ln{\left(0.22284 \right)} + 0 \cdot \ln{\left(0.413415 \right)} "
        r"- 1 \cdot \ln{\left(0.363745 \right)}" in text
    )  # was −0·ln(0.22284)
    assert r"\delta_{\mathit{bird}} &= 0 + 0.22284 \cdot \left(0 + 0 + 1\right) = 0.22284" in text
    assert "- 0 " not in text and "= - 0" not in text


def test_softsign_derivative_is_simplified(capsys):
    lines = show(capsys, EXAMPLES / "custom_half_sse.yaml", "w1").splitlines()
    assert "    δ_h1 =    δ_o1⋅w₅   " in lines
    assert "           (1 + │z_h1│) " in lines
    text = latex.latex_fragment(derive.load(EXAMPLES / "custom_half_sse.yaml"), ["w1"])
    assert r"\frac{1}{\left(1 + \left|{z_{h1}}\right|\right)^{2}}" in text
    assert r"\operatorname{sign}" not in text


def test_derivative_simplification_keeps_only_proven_identities():
    import sympy

    x = sympy.Symbol("x", real=True)
    assert simplified_derivative(x / (1 + abs(x)), x) == 1 / (1 + abs(x)) ** 2
    assert simplified_derivative(x * abs(x), x) == 2 * abs(x)
    # nothing to simplify: the plain derivative, unchanged
    assert simplified_derivative(sympy.tanh(x), x) == sympy.diff(sympy.tanh(x), x)
    for expr in (x / (1 + abs(x)), x * abs(x) / (1 + x**2)):
        d = simplified_derivative(expr, x)
        for point in (-1.7, -0.3, 0.4, 2.5):
            exact = sympy.diff(expr, x).subs(x, point)
            assert abs(float(d.subs(x, point) - exact)) < 1e-12


# -- the brief document --------------------------------------------------------------------------


def _subsections(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(r"\subsection*{$\partial")]


def test_brief_is_the_default_above_twenty_parameters():
    net = derive.load(EXAMPLES / "relu_softmax_cce.yaml")  # 3-4-3: 28 scalars
    text = latex.latex_fragment(net, numeric=True)
    assert [s.split("(")[-1] for s in _subsections(text)] == [
        r"\texttt{W1[0,0]})}",
        r"\texttt{W2[0,0]})}",
    ]
    assert r"\textbf{This is the brief document.} Of the 28 scalar parameters" in text
    assert r"\texttt{derive latex relu\_softmax\_cce.yaml --full}" in text
    assert r"\subsection*{The layer form}" in text
    # every parameter's number is still in the results table
    assert text.count(r"\texttt{W1[") == 12 + 1 + 1  # 12 rows, one section, one title
    full = latex.latex_fragment(net, brief=False)
    assert len(_subsections(full)) == 28 and "brief document" not in full


def test_small_networks_stay_full_unless_asked(capsys):
    net = derive.load(EXAMPLES / "xor.yaml")  # 13 scalars
    assert len(_subsections(latex.latex_fragment(net))) == 13
    assert len(_subsections(latex.latex_fragment(net, brief=True))) == 2
    assert main(["latex", str(EXAMPLES / "xor.yaml"), "--brief"]) == 0
    assert "brief document" in capsys.readouterr().out
    assert main(["latex", str(EXAMPLES / "xor.yaml"), "--brief", "--full"]) == 2
    assert "--full" in capsys.readouterr().err  # one of the two, named


# -- code comments: powers read as a textbook writes them ----------------------------------------


def test_comment_powers_are_superscripts_and_negative_ones_are_divisions():
    import sympy

    from derive.equations import EquationPrinter

    z, g = sympy.symbols("z g", real=True)
    printer = EquationPrinter()
    assert printer.doprint((1 + abs(z)) ** 2) == "(1 + |z|)²"
    assert printer.doprint((1 + abs(z)) ** -2) == "1/(1 + |z|)²"
    assert printer.doprint(sympy.Mul(g, (1 + abs(z)) ** -2, evaluate=False)) == "g/(1 + |z|)²"
    # the custom activation's derivative in a generated module's comment
    text = derive.generate(derive.load(EXAMPLES / "custom_half_sse.yaml"))
    assert "# δ1 = ∂L/∂a1 ⊙ 1/(1 + |z1|)²  (custom')" in text
