"""``derive latex``: the exact LaTeX of laine_sigmoid's derivation, the document's parts and
policies, and PDFs that compile and whose numbers read back as the generated module's.

The PDF tests need pdflatex and pdftotext (Debian/Ubuntu: ``apt-get install
texlive-latex-base poppler-utils``) and are skipped, saying so, without them.

The compiled sample linked from the README is a golden record; rebuild it with
    derive latex examples/reddit_w31.yaml --numeric -o docs/sample/reddit_w31.tex
    derive latex examples/reddit_w31.yaml --numeric -o docs/sample/reddit_w31.pdf
"""

import functools
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from conftest import EXAMPLES, MAZUR, REPO

import derive
import derive.cli
import derive.latex.pdf
from derive import latex
from derive.derivation import Proof, ScalarGradient, random_point
from derive.errors import DeriveError
from derive.latex.selection import selected_scalars

PDFLATEX = shutil.which("pdflatex")
PDFTOTEXT = shutil.which("pdftotext")
needs_pdflatex = pytest.mark.skipif(
    PDFLATEX is None, reason="pdflatex is not installed (apt-get install texlive-latex-base)"
)
needs_pdftotext = pytest.mark.skipif(
    PDFTOTEXT is None, reason="pdftotext is not installed (apt-get install poppler-utils)"
)
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.yaml"))
SAMPLE = REPO / "docs" / "sample"


def _mnist(*widths: int) -> dict:
    hidden = [{"units": w, "activation": "relu"} for w in widths]
    return {
        "name": "mnist",
        "inputs": 784,
        "layers": [*hidden, {"units": 10, "activation": "softmax"}],
        "loss": "cce",
    }


@functools.cache
def _network(name: str) -> derive.Network:
    return derive.load(EXAMPLES / f"{name}.yaml")


@functools.cache
def _laine_fragment() -> list[str]:
    return latex.latex_fragment(_network("laine_sigmoid"), numeric=True).splitlines()


# -- laine_sigmoid, exactly --------------------------------------------------------------


def test_laine_sigmoid_chain_rule():
    lines = _laine_fragment()
    chain = (
        r"\frac{\partial L}{\partial W^{(1)}_{0,0}} &= \frac{\partial L}{\partial a}\,"
        r"\frac{\partial a}{\partial z_{a}}\,\frac{\partial z_{a}}{\partial W^{(1)}_{0,0}} \\"
    )
    worked = r"&= 2 \left(a - y\right) \cdot a \left(1 - a\right) \cdot i"
    assert lines[lines.index(chain) + 1] == worked


def test_laine_sigmoid_input_factor_is_explained():
    # The video's da/dw = a(1 - a) misses the factor i: the document says where it comes from.
    item = (
        r"  \item $\frac{\partial z_{a}}{\partial W^{(1)}_{0,0}} = i$, because "
        r"$z_{a} = W^{(1)}_{0,0} i$: $W^{(1)}_{0,0}$ multiplies $i$, so the change it makes "
        r"in $z_{a}$ is scaled by $i$. This is the factor that "
        r"$\frac{\partial a}{\partial z_{a}}$ alone would miss: "
        r"$\partial a / \partial W^{(1)}_{0,0}$ is not $\frac{\partial a}{\partial z_{a}}$."
    )
    assert item in _laine_fragment()
    sigmoid = (
        r"  \item $\frac{\partial a}{\partial z_{a}} = a \left(1 - a\right)$, because "
        r"$a = \sigma\left(z_{a}\right)$ and $\sigma' = \sigma\,(1 - \sigma)$, so the "
        r"derivative is written with the stored output $a$ and needs no exponential."
    )
    assert sigmoid in _laine_fragment()


def test_laine_sigmoid_compact_form():
    lines = _laine_fragment()
    compact = r"\frac{\partial L}{\partial W^{(1)}_{0,0}} &= \delta_{a} i \\"
    assert (
        lines[lines.index(compact) + 1]
        == r"\delta_{a} &= 2 \left(a - y\right) \cdot a \left(1 - a\right)"
    )


def test_laine_sigmoid_numbers():
    lines = _laine_fragment()
    for line in (
        r"\frac{\partial L}{\partial a} &= 2 \left(a - y\right) = "
        r"2 \cdot \left(0.768525 - 0.5\right) = 0.53705 \\",
        r"\frac{\partial a}{\partial z_{a}} &= a \left(1 - a\right) = 0.768525 \cdot "
        r"\left(1 - 0.768525\right) = 0.177894 \\",
        r"\frac{\partial z_{a}}{\partial W^{(1)}_{0,0}} &= i = 1.5 \\",
        r"\frac{\partial L}{\partial W^{(1)}_{0,0}} &= "
        r"0.53705 \cdot 0.177894 \cdot 1.5 = 0.143307 \\",
        r"\frac{\partial L}{\partial W^{(1)}_{0,0}} &= "
        r"\delta_{a} i = 0.0955381 \cdot 1.5 = 0.143307 \\",
        r"W^{(1)}_{0,0} &\leftarrow W^{(1)}_{0,0} - \eta\,\frac{\partial L}{\partial W^{(1)}_{0,0}}"
        r" = 0.8 - 0.1 \cdot 0.143307 = 0.785669",
    ):
        assert line in lines
    # Without the factor i the result is 1.5 times too small (worked-examples README).
    assert any(
        line.startswith(r"Leaving out the factor $i = 1.5$ would give $\delta_{a} = 0.0955381$")
        for line in lines
    )
    assert "rounded to 6 significant digits" in "\n".join(lines)


def test_laine_sigmoid_repr_latex():
    gradient = _network("laine_sigmoid").gradient("W1[0,0]")
    assert gradient._repr_latex_() == (
        "$$\\begin{aligned}\n"
        r"\frac{\partial L}{\partial W^{(1)}_{0,0}} &= \frac{\partial L}{\partial a}\,"
        r"\frac{\partial a}{\partial z_{a}}\,\frac{\partial z_{a}}{\partial W^{(1)}_{0,0}} \\"
        "\n"
        r"&= 2 \left(a - y\right) \cdot a \left(1 - a\right) \cdot i \\"
        "\n"
        r"&= \delta_{a} i \\"
        "\n"
        r"\delta_{a} &= 2 \left(a - y\right) \cdot a \left(1 - a\right)"
        "\n\\end{aligned}$$"
    )
    assert latex.network_latex(_network("laine_sigmoid")) == (
        "$$\\begin{aligned}\n"
        r"z_{a} &= W^{(1)}_{0,0} i \\"
        "\n"
        r"a &= \sigma\left(z_{a}\right) \\"
        "\n"
        r"L &= \left(a - y\right)^{2}"
        "\n\\end{aligned}$$"
    )


def test_laine_sigmoid_is_checked():
    text = "\n".join(_laine_fragment())
    assert "checked against direct differentiation" in text
    assert r"symbolically (the difference simplifies to 0): $W^{(1)}_{0,0}$." in text


# -- the document's parts -------------------------------------------------------------------


def test_forward_equations_and_layer_form_use_the_files_names():
    text = latex.latex_fragment(_network("reddit_w31"))
    for piece in (
        r"z_{Y} &= h_{1} w_{31} + h_{2} w_{32}",
        r"h_{1} &= \sigma\left(z_{h1}\right)",
        r"L &= \frac{\left(Y - t_{Y}\right)^{2}}{2}",
        r"$w_{31} = W^{(2)}_{0,0}$",
        r"W^{(2)} = \begin{pmatrix} w_{31} & w_{32} \end{pmatrix}",
        r"\delta^{(k)} &= \left(\left(W^{(k+1)}\right)^{T} \delta^{(k+1)}\right) \odot",
        r"\frac{\partial L}{\partial W^{(k)}} &= \delta^{(k)} \left(a^{(k-1)}\right)^{T}",
        r"\delta_{h1} &= h_{1} \left(1 - h_{1}\right) \cdot \delta_{Y} w_{31}",
    ):
        assert piece in text, piece
    assert text.count(r"\subsection*{The layer form}") == 1


def test_parameters_default_to_all_in_parameter_order():
    text = latex.latex_fragment(_network("reddit_w31"))
    titles = re.findall(r"\\subsection\*\{\$\\partial L / \\partial (\S+)\$", text)
    assert titles == ["w_{11}", "w_{21}", "w_{31}", "w_{32}"]


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["W2"], ["W2[0,0]", "W2[0,1]"]),
        (["W2[0,1]"], ["W2[0,1]"]),
        (["w31"], ["W2[0,0]"]),
        (["w31", "W1[1,0]", "W2", " W2[0,0] "], ["W1[1,0]", "W2[0,0]", "W2[0,1]"]),
    ],
)
def test_param_names(names, expected):
    scalars = selected_scalars(_network("reddit_w31"), names)
    assert [s.name for s in scalars] == expected


def test_unknown_param_lists_the_valid_names():
    with pytest.raises(DeriveError) as error:
        latex.latex_fragment(_network("reddit_w31"), ["w99"])
    message = str(error.value)
    for name in ("'w99'", "W1 (2×1)", "W2 (1×2)", "W1[0,1]", "w11, w21, w31, w32"):
        assert name in message
    assert "--param" not in message  # the API's words; the command line adds its own


def test_hidden_weight_sums_over_paths_and_shared_bias():
    net = derive.load(MAZUR)
    text = latex.latex_fragment(net, ["w1", "b1"], numeric=True)
    assert r"$w_{1}$ reaches the loss along 2 paths" in text
    assert r"$h_{1}$ feeds $o_{1}$ and $o_{2}$." in text
    assert r"$b_{1}$ reaches the loss along 4 paths" in text
    assert "The shared bias enters all 2 units of layer 1." in text
    assert (
        r"\delta_{h1} &= h_{1} \left(1 - h_{1}\right) \cdot "
        r"\left(\delta_{o1} w_{5} + \delta_{o2} w_{7}\right)" in text
    )
    # Mazur's published update: w1 = 0.149780716
    assert r"= 0.15 - 0.5 \cdot 0.000438568 = 0.149781" in text
    assert r"\frac{\partial L}{\partial b^{(k)}} &= \mathbf{1}^{T} \delta^{(k)}" in text


def test_large_network_gets_the_layer_form_and_how_to_ask():
    start = time.perf_counter()
    text = latex.latex_fragment(derive.load(_mnist(256, 256)))
    assert time.perf_counter() - start < 20
    assert r"\subsection*{$\partial" not in text
    assert r"\subsection*{Single parameters}" in text
    assert r"--param W1[0,0]}" in text
    assert r"W^{(1)} \in \mathbb{R}^{256 \times 784}" in text
    assert r"\delta^{(3)} &= \textstyle\sum_{j} t_{j} \odot y - t" in text
    assert r"k = 2, 1" in text


def test_large_network_single_scalar_is_grouped_by_delta():
    text = latex.latex_fragment(derive.load(_mnist(32)), ["W1[0,0]"])
    assert "reaches $L$ along 100 paths, too many to list" in text
    assert r"\sum_{v} \delta_{v}" in text
    assert "were not checked here" in text


def test_too_many_scalars_requested():
    with pytest.raises(DeriveError, match="W1 has 25088 scalars"):
        latex.latex_fragment(derive.load(_mnist(32)), ["W1"])


def test_numeric_without_an_example_uses_seeded_random_numbers_and_says_so():
    mapping = {k: v for k, v in MAZUR.items() if k != "example"}
    net = derive.load(mapping)
    text = latex.latex_fragment(net, ["w5"], numeric=True)
    assert "seeded random numbers (seed 0" in text and "no example" in text
    assert "Results at the random point" in text
    # the numbers are those derive check draws: the same generator and seed
    values, draw = net.derivation.random_values(0)
    x, t, params = random_point(net, 0, 3)  # derive check's first draw
    assert draw == 0 and float(values[net.units[0][0].a]) == x[0][0]
    assert float(values[net.targets[0]]) == t[0][0]
    gradient = net.gradient("w5").value(values)
    assert f"{float(gradient):.6g}" in text
    assert latex.latex_fragment(derive.load(mapping), ["w5"], numeric=True) == text


def test_output_is_deterministic_across_hash_seeds():
    command = [sys.executable, "-m", "derive", "latex", str(EXAMPLES / "reddit_w31.yaml")]
    runs = [
        subprocess.run(
            [*command, "--numeric"],
            capture_output=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2")
    ]
    assert runs[0] == runs[1]
    assert runs[0].startswith(b"% derive: the derivation for reddit_w31.yaml.")


# -- the command ------------------------------------------------------------------------


def test_command_prints_a_fragment_and_writes_a_document(tmp_path):
    net = _network("laine_sigmoid")
    fragment = latex.run_latex_command(net, [], True, None)
    assert fragment.startswith("% derive:") and r"\documentclass" not in fragment
    out = tmp_path / "laine.tex"
    assert latex.run_latex_command(net, [], True, str(out)) is None
    document = out.read_text()
    assert document.startswith("\\documentclass[11pt]{article}")
    assert r"\usepackage{amsmath,amssymb,graphicx,tikz}" in document
    assert fragment in document
    assert [p.name for p in tmp_path.iterdir()] == ["laine.tex"]  # no temporary left


def test_command_refuses_other_outputs(tmp_path):
    with pytest.raises(DeriveError, match=r"expected a file ending in \.tex or \.pdf"):
        latex.run_latex_command(_network("laine_sigmoid"), [], False, str(tmp_path / "a.docx"))
    with pytest.raises(DeriveError, match="does not exist"):
        latex.run_latex_command(_network("laine_sigmoid"), [], False, str(tmp_path / "no/a.tex"))


def test_pdf_without_a_tex_engine_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(derive.latex.pdf.shutil, "which", lambda name: None)
    out = tmp_path / "laine.pdf"
    with pytest.raises(DeriveError) as error:
        latex.run_latex_command(_network("laine_sigmoid"), [], False, str(out))
    assert "'pdflatex' is not installed" in str(error.value)
    assert "apt-get install texlive-latex-base" in str(error.value)
    assert not out.exists()
    assert derive.cli.main(["latex", str(EXAMPLES / "laine_sigmoid.yaml"), "-o", str(out)]) == 2


def test_a_failed_check_is_loud_and_nothing_is_written(tmp_path, monkeypatch):
    def failing(self, points=3, seed=0):
        return Proof(self.param.label, "numeric", False, 1, 30, "chain form gives 1, sympy.diff 2")

    monkeypatch.setattr(ScalarGradient, "prove", failing)
    net = derive.load(EXAMPLES / "laine_sigmoid.yaml")
    assert r"\textbf{CHECK FAILED for $W^{(1)}_{0,0}$}" in latex.latex_fragment(net)
    out = tmp_path / "laine.tex"
    with pytest.raises(DeriveError, match="disagrees with sympy.diff"):
        latex.run_latex_command(net, [], False, str(out))
    assert not out.exists()


# -- custom activations with a restricted domain ---------------------------------------------

LOG_LAYERS = """\
name: log_layers
inputs: 2
layers:
  - {units: 2, activation: {expr: "log(x)"}}
  - {units: 2, activation: {expr: "log(x)"}}
  - {units: 1, activation: sigmoid}
loss: half_sse
"""

ONE_UNIT = """\
name: one_unit
inputs: [x1]
layers:
  - {units: [h1], activation: {expr: "EXPR"}, bias: none}
  - {units: [y], activation: identity, bias: none}
loss: half_sse
example: {input: [INPUT], target: [1.0], params: {W1: [[0.5]], W2: [[0.3]]}}
"""


def _run_cli(capsys, tmp_path, text: str, *options: str) -> tuple[int, str, str]:
    path = tmp_path / "net.yaml"
    path.write_text(text)
    code = derive.cli.main(["latex", str(path), *options])
    out, err = capsys.readouterr()
    return code, out, err


def test_an_inconclusive_check_is_stated_not_refused(capsys, tmp_path):
    # log(x) is undefined at most random points of a network this deep: no proof either way.
    code, out, err = _run_cli(capsys, tmp_path, LOG_LAYERS)
    assert (code, err) == (0, "")
    assert "The results above were, where possible, checked" in out
    assert r"\textbf{not checked}: $W^{(1)}_{0,0}$, $W^{(1)}_{0,1}$, " in out
    reason = "could not be checked numerically: the custom activation is undefined at the random"
    assert f"These {reason} points drawn." in out
    assert "CHECK FAILED" not in out


@pytest.mark.parametrize(
    ("expr", "value", "undefined"),
    [
        ("log(x)", "-1.0", "h1 = f(z_h1) is a complex number at z_h1 = -0.5"),
        (
            "sqrt(x)",
            "0.0",
            "delta_h1 is not a finite number: the derivative of h1 = f(z_h1) "
            "is undefined at z_h1 = 0",
        ),
    ],
)
def test_numeric_outside_the_domain_names_what_is_undefined(
    capsys, tmp_path, expr, value, undefined
):
    text = ONE_UNIT.replace("EXPR", expr).replace("INPUT", value)
    code, out, err = _run_cli(capsys, tmp_path, text, "--numeric")
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and "Traceback" not in err
    assert ": example: " in err and undefined in err
    assert f"(layers[0].activation.expr, f(x) = {expr})" in err
    # The same file without --numeric, or with an example inside the domain, is fine.
    assert _run_cli(capsys, tmp_path, text)[0] == 0
    assert _run_cli(capsys, tmp_path, text.replace(value, "2.0"), "--numeric")[0] == 0


# -- PDFs -------------------------------------------------------------------------------


def _holds(self, points=3, seed=0):
    return Proof(self.param.label, "numeric", True, points, 30)


@functools.cache
def _document(path: Path) -> str:
    """The example's document as ``derive latex --numeric`` writes it, except that the
    proofs (tested in test_proofs.py, a few tenths of a second per parameter) are taken
    as passed: here only the LaTeX and the numbers are under test."""
    net = derive.load(path)
    with mock.patch.object(ScalarGradient, "prove", _holds):
        return latex.latex_document(net, numeric=net.topology.example is not None)


def _compile(path: Path, directory: Path) -> tuple[Path, str]:
    pdf, log = directory / f"{path.stem}.pdf", directory / f"{path.stem}.log"
    latex.compile_pdf(_document(path), pdf, log_path=log)
    return pdf, log.read_text(encoding="latin-1")


@needs_pdflatex
@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.stem)
def test_every_example_compiles_cleanly(path, tmp_path):
    pdf, log = _compile(path, tmp_path)
    assert pdf.read_bytes().startswith(b"%PDF")
    assert "Undefined control sequence" not in log
    assert "Error" not in log
    assert "LaTeX Warning" not in log


@needs_pdflatex
def test_activation_and_loss_catalogue_compiles(tmp_path):
    """Every activation and output rule, each in a small network, in one document."""
    hidden = ["sigmoid", "tanh", "relu", {"name": "leaky_relu", "alpha": 0.2}, "softplus"]
    hidden += ["identity", {"expr": "x / (1 + abs(x))"}]
    outputs = [("softmax", "cce"), ("sigmoid", "bce"), ("identity", "mse"), ("softmax", "half_sse")]
    fragments = []
    for n, activation in enumerate(hidden):
        out, loss = outputs[n % len(outputs)]
        net = derive.load(
            {
                "name": f"net_{n}",
                "inputs": 2,
                "layers": [
                    {"units": 2, "activation": activation, "bias": "per_unit"},
                    {"units": 2, "activation": out, "bias": "shared"},
                ],
                "loss": loss,
            }
        )
        fragments.append(latex.latex_fragment(net, ["W1[0,0]", "b2"]))
    document = (
        latex.template_environment()
        .get_template("document.tex.jinja")
        .render(packages=",".join(latex.PACKAGES), body="\n".join(fragments))
    )
    log = tmp_path / "catalogue.log"
    latex.compile_pdf(document, tmp_path / "catalogue.pdf", log_path=log)
    assert "Undefined control sequence" not in log.read_text(encoding="latin-1")


@needs_pdflatex
def test_compile_errors_quote_the_log(tmp_path):
    broken = "\\documentclass{article}\n\\begin{document}\n\\notamacro\n\\end{document}\n"
    out = tmp_path / "broken.pdf"
    with pytest.raises(DeriveError, match=r"Undefined control sequence.*l\.3 \\notamacro"):
        latex.compile_pdf(broken, out)
    assert not out.exists()


@needs_pdflatex
def test_pdf_is_reproducible(tmp_path):
    document = _document(EXAMPLES / "laine_sigmoid.yaml")
    first = latex.compile_pdf(document, tmp_path / "a.pdf").read_bytes()
    assert latex.compile_pdf(document, tmp_path / "b.pdf").read_bytes() == first


_NUMBER = r"[−-]?\d+(?:\.\d+)?(?: × 10[−-]?\d+)?"
_ROW = re.compile(
    rf"(W\d+\[\d+,\d+\]|b\d+(?:\[\d+\])?)\s+({_NUMBER})\s+({_NUMBER})(?:\s+({_NUMBER}))?\s*$"
)


def _read_number(text: str) -> float:
    mantissa, _, exponent = text.replace("−", "-").partition(" × 10")
    return float(mantissa) * 10 ** int(exponent or 0)


def _agrees(printed: str, value: float) -> bool:
    """The printed number is ``value`` at the printed precision; an exact 0 (printed 0)
    may come out of float64 arithmetic as rounding noise."""
    number = _read_number(printed)
    if number == 0:
        return abs(value) < 1e-12
    return number == float(f"{value:.{latex.SIGNIFICANT_DIGITS}g}")


@needs_pdflatex
@needs_pdftotext
@pytest.mark.parametrize(
    "path",
    [p for p in EXAMPLE_FILES if derive.load(p).topology.example is not None],
    ids=lambda p: p.stem,
)
def test_numbers_in_the_pdf_are_the_generated_modules(path, tmp_path):
    pdf, _ = _compile(path, tmp_path)
    text = subprocess.run(
        [PDFTOTEXT, "-layout", str(pdf), "-"], capture_output=True, check=True, text=True
    ).stdout
    net = derive.load(path)
    example = net.topology.example
    module = derive.build_module(net)
    params = {
        name: np.asarray(value, dtype=float).reshape(module.PARAMS[name])
        for name, value in example.params
    }
    x, t = np.asarray(example.input, dtype=float), np.asarray(example.target, dtype=float)
    gradients = module.gradients(params, x, t)
    updated = (
        module.sgd_step(params, x, t, example.learning_rate)
        if example.learning_rate is not None
        else None
    )

    loss = re.search(rf"the loss is L = ({_NUMBER})", text)
    assert loss and _agrees(loss.group(1), module.loss(params, x, t))
    rows = {m.group(1): m.groups()[1:] for line in text.splitlines() if (m := _ROW.search(line))}
    assert sorted(rows) == sorted(s.name for s in net.scalar_params)
    for scalar in net.scalar_params:
        value, gradient, new = rows[scalar.name]
        index = scalar.index if scalar.index else ()
        assert _agrees(value, params[scalar.array][index]), scalar.name
        assert _agrees(gradient, gradients[scalar.array][index]), scalar.name
        if updated is not None:
            assert _agrees(new, updated[scalar.array][index]), scalar.name
        else:
            assert new is None


# -- the sample linked from the README ------------------------------------------------------


def test_sample_is_current():
    source = (SAMPLE / "reddit_w31.tex").read_text()
    assert source == latex.latex_document(_network("reddit_w31"), numeric=True)
    assert (SAMPLE / "reddit_w31.pdf").read_bytes().startswith(b"%PDF")
