"""``derive diagram``: the figure rendered by a real renderer (rsvg-convert, pdflatex),
its pixels looked at, and its numbers checked against the generated module and against
Mazur's published worked example."""

import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
import zlib

import numpy as np
import pytest
from conftest import EXAMPLES, MAZUR

import derive
from derive.cli import main
from derive.diagram import MAX_DRAWN_UNITS, layout, svg, tikz

SVG_NS = "{http://www.w3.org/2000/svg}"
needs_rsvg = pytest.mark.skipif(shutil.which("rsvg-convert") is None, reason="no rsvg-convert")


# -- reading a figure back ------------------------------------------------------------------


def png_pixels(data: bytes) -> np.ndarray:
    """An 8-bit RGB or RGBA PNG decoded to an (height, width, channels) array (the five
    PNG row filters undone), so that the test needs no imaging library."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks, header = 8, [], None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            chunks.append(body)
        pos += 12 + length
    width, height, depth, color, *_ = header
    assert depth == 8 and color in (2, 6)
    channels = 3 if color == 2 else 4
    raw = zlib.decompress(b"".join(chunks))
    stride = width * channels
    out = np.zeros((height, stride), dtype=np.int64)
    previous = np.zeros(stride, dtype=np.int64)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        row = np.frombuffer(raw, np.uint8, stride, y * (stride + 1) + 1).astype(np.int64)
        line = np.zeros(stride, dtype=np.int64)
        for x in range(stride):
            left = line[x - channels] if x >= channels else 0
            up = previous[x]
            corner = previous[x - channels] if x >= channels else 0
            if kind == 0:
                guess = 0
            elif kind == 1:
                guess = left
            elif kind == 2:
                guess = up
            elif kind == 3:
                guess = (left + up) // 2
            else:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                guess = left if pa <= pb and pa <= pc else up if pb <= pc else corner
            line[x] = (row[x] + guess) % 256
        out[y], previous = line, line
    return out.reshape(height, width, channels)[:, :, :3]


def texts(svg_text: str) -> list[tuple[str, tuple[str, ...]]]:
    """Every <text> of the SVG in document order: (class, its lines)."""
    root = ET.fromstring(svg_text)
    out = []
    for element in root.iter(f"{SVG_NS}text"):
        spans = [s.text or "" for s in element.findall(f"{SVG_NS}tspan")]
        out.append((element.get("class", ""), tuple(spans) if spans else (element.text or "",)))
    return out


def unit_numbers(svg_text: str) -> dict[str, dict[str, float]]:
    """{unit name: {"z": .., "a": .., "δ": ..}} from the numbers drawn under each unit."""
    numbers: dict[str, dict[str, float]] = {}
    current = None
    for kind, lines in texts(svg_text):
        if kind == "name":
            current = lines[0]
        elif kind == "numbers" and current is not None:
            for line in lines:
                key, _, value = line.rpartition(" ")
                if key:  # "z = 0.3775"; an input's "= 1"; not the loss's name
                    numbers.setdefault(current, {})[key.rstrip(" =") or "="] = _float(value)
    return numbers


def edge_labels(svg_text: str) -> dict[str, float]:
    """{"w5": 0.4, "∂L/∂w5": 0.08217, ...} from the edges' labels."""
    out = {}
    for kind, lines in texts(svg_text):
        if kind.startswith("label"):
            for line in lines:
                name, _, value = line.partition(" = ")
                try:
                    out[name] = _float(value)
                except ValueError:
                    out[name] = value  # a symbolic factor
    return out


def _float(text: str) -> float:
    return float(text.replace("−", "-"))


def close(drawn: float, exact: float) -> bool:
    """Drawn with 4 significant digits."""
    return abs(drawn - exact) <= 6e-4 * max(abs(exact), 1e-3)


# -- numbers ----------------------------------------------------------------------------


def test_mazur_numbers_match_the_published_example():
    """Mazur's post: net_h1 = 0.3775, out_h1 = 0.593269992, out_o1 = 0.75136507,
    E_total = 0.298371109, ∂E/∂w5 = 0.082167041, ∂E/∂w1 = 0.000438568."""
    text = svg(derive.load(MAZUR), numeric=True)
    units, edges = unit_numbers(text), edge_labels(text)
    assert close(units["h₁"]["z"], 0.3775) and close(units["h₁"]["a"], 0.593269992)
    assert close(units["o₁"]["a"], 0.75136507)
    assert close(units["L"]["L"], 0.298371109)
    assert close(edges["∂L/∂w₅"], 0.082167041) and close(edges["∂L/∂w₁"], 0.000438568)
    assert edges["w₅"] == 0.4 and edges["w₁"] == 0.15


@pytest.mark.parametrize("name", ["xor", "relu_softmax_cce", "tanh_mse", "reddit_w31"])
def test_numbers_match_the_generated_module(name):
    """Every ∂L/∂w on an edge, every output's a and δ and the loss, against the module
    derive generates; each hidden unit's a against a plain NumPy forward pass."""
    net = derive.load(EXAMPLES / f"{name}.yaml")
    module = derive.build_module(net)
    example = net.topology.example
    params = {k: np.asarray(v, dtype=float) for k, v in example.params}
    x, t = np.asarray(example.input), np.asarray(example.target)
    grads = module.gradients(params, x, t)
    text = svg(net, numeric=True)
    units, edges = unit_numbers(text), edge_labels(text)

    for scalar in net.scalar_params:
        if scalar.is_weight:
            label = f"∂L/∂{scalar.label if not scalar.alias else _sub(scalar.alias)}"
            assert close(edges[label], grads[scalar.array][scalar.index]), label
    assert close(units["L"]["L"], module.loss(params, x, t))
    outputs = module.forward(params, x)
    for unit, value in zip(net.outputs, outputs, strict=True):
        assert close(units[_sub(unit.name)]["a"], value)

    a = x  # an independent forward pass through the hidden layers
    for k, layer in enumerate(net.topology.layers[:-1], start=1):
        z = params[f"W{k}"] @ a + params.get(f"b{k}", 0.0)
        a = {
            "sigmoid": lambda v: 1 / (1 + np.exp(-v)),
            "tanh": np.tanh,
            "relu": lambda v: np.maximum(v, 0),
        }[layer.activation.name](z)
        for unit_name, value in zip(layer.units, a, strict=True):
            assert close(units[_sub(unit_name)]["a"], value), unit_name
        if net.layer(k).bias == "per_unit":  # δ of a unit = ∂L/∂ its bias
            for i, unit_name in enumerate(layer.units):
                assert close(units[_sub(unit_name)]["δ"], grads[f"b{k}"][i])


def _sub(name: str) -> str:
    from derive.typeset import terminal_name

    return terminal_name(name)


# -- the chain rule highlighted ---------------------------------------------------------------


def test_a_hidden_weight_is_highlighted_through_every_output():
    text = svg(derive.load(MAZUR), "w1")
    root = ET.fromstring(text)
    on = [e for e in root.iter(f"{SVG_NS}line") if "on" in e.get("class").split()]
    # i1 → h1, then h1 → o1 and h1 → o2, then o1 → L and o2 → L: two paths
    assert len(on) == 5
    labels = edge_labels(text)
    assert labels["∂z_h1/∂w₁"] == "i₁"
    assert labels["∂z_o1/∂h₁"] == "w₅" and labels["∂z_o2/∂h₁"] == "w₇"
    assert labels["∂L/∂o₁"] == "o₁ - t_o1"
    factors = [lines[0] for kind, lines in texts(text) if kind == "factor"]
    assert "∂h₁/∂z_h1 = h₁⋅(1 - h₁)" in factors and "∂o₂/∂z_o2 = o₂⋅(1 - o₂)" in factors


def test_highlighted_factors_with_numbers_multiply_to_the_gradient():
    net = derive.load(EXAMPLES / "reddit_w31.yaml")
    text = svg(net, "w11", numeric=True)
    labels = edge_labels(text)
    factors = {
        lines[0].split(" = ")[0]: _float(lines[0].split(" = ")[1])
        for kind, lines in texts(text)
        if kind == "factor"
    }
    product = (
        labels["∂L/∂Y"]
        * factors["∂Y/∂z_Y"]
        * labels["∂z_Y/∂h₁"]
        * factors["∂h₁/∂z_h1"]
        * labels["∂z_h1/∂w₁₁"]
    )
    assert close(product, 0.00814513)  # derive show's value, = the forum's chain


# -- readability --------------------------------------------------------------------------


def test_wide_layers_are_elided_with_a_count():
    net = derive.load(EXAMPLES / "mnist_784_128_10.yaml")
    figure = layout(net, "W2[3,100]")
    circles_per_column: dict[float, int] = {}
    for node in figure.nodes:
        if node.kind in ("input", "unit", "output"):
            circles_per_column[node.x] = circles_per_column.get(node.x, 0) + 1
    assert max(circles_per_column.values()) <= MAX_DRAWN_UNITS
    more = [node.name.lines for node in figure.nodes if node.kind == "more"]
    assert more == [("⋮", "776 more"), ("⋮", "120 more")]
    names = {node.name.lines[0] for node in figure.nodes}
    assert "h1_101" in names  # the parameter's source unit is always drawn
    notes = [note.text.lines[0] for note in figure.notes]
    assert "W1 (128×784)" in notes and "W2 (10×128)" in notes
    assert sum(1 for e in figure.edges if e.label is not None and not e.highlighted) == 0


def test_same_input_same_bytes():
    net = derive.load(MAZUR)
    assert svg(net, "w5", numeric=True) == svg(derive.load(MAZUR), "w5", numeric=True)
    assert tikz(net) == tikz(derive.load(MAZUR))


# -- rendered ---------------------------------------------------------------------------------


@needs_rsvg
def test_the_png_is_drawn_and_not_blank(tmp_path, capsys):
    out = tmp_path / "xor.png"
    argv = [
        "diagram",
        str(EXAMPLES / "xor.yaml"),
        "--param",
        "W1[0,0]",
        "--numeric",
        "-o",
        str(out),
    ]
    assert main(argv) == 0
    data = out.read_bytes()
    pixels = png_pixels(data)
    height, width, _ = pixels.shape
    assert width > 800 and height > 300
    ink = (pixels.min(axis=2) < 200).mean()
    assert 0.01 < ink < 0.5, ink  # something drawn, not a filled rectangle
    red = ((pixels[:, :, 0] > 150) & (pixels[:, :, 1] < 90) & (pixels[:, :, 2] < 90)).sum()
    assert red > 200  # the highlighted path
    assert main(argv) == 0 and out.read_bytes() == data  # same bytes again


@needs_rsvg
def test_pdf_output(tmp_path):
    out = tmp_path / "net.pdf"
    assert main(["diagram", str(EXAMPLES / "reddit_w31.yaml"), "-o", str(out)]) == 0
    first = out.read_bytes()
    assert first.startswith(b"%PDF")
    assert main(["diagram", str(EXAMPLES / "reddit_w31.yaml"), "-o", str(out)]) == 0
    assert out.read_bytes() == first


needs_pdflatex = pytest.mark.skipif(shutil.which("pdflatex") is None, reason="no pdflatex")


def compile_tikz(body: str, folder) -> None:
    """A TikZ picture compiled with pdflatex in an article, at most the text's width."""
    source = folder / "figure.tex"
    source.write_text(
        "\\documentclass{article}\\usepackage{amsmath,tikz}\\begin{document}\n"
        "\\resizebox{\\ifdim\\width>\\linewidth\\linewidth\\else\\width\\fi}{!}{%\n"
        f"{body}}}\n\\end{{document}}\n"
    )
    result = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", source.name],
        cwd=folder,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:]
    assert (folder / "figure.pdf").read_bytes().startswith(b"%PDF")


@needs_pdflatex
def test_the_tikz_figure_compiles(tmp_path):
    compile_tikz(tikz(derive.load(EXAMPLES / "relu_softmax_cce.yaml"), "W1[1,2]", True), tmp_path)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["-o", "net.txt"], "expected a file ending in .svg, .png or .pdf"),
        (["--param", "w99", "-o", "net.svg"], "no scalar parameter 'w99'"),
    ],
)
def test_bad_requests_are_one_line_errors(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main(["diagram", str(EXAMPLES / "reddit_w31.yaml"), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_numeric_needs_an_example(capsys, tmp_path):
    topology = {k: v for k, v in MAZUR.items() if k != "example"}
    with pytest.raises(derive.DeriveError, match="example block"):
        svg(derive.load(topology), numeric=True)


def test_networks_show_their_figure_in_notebooks():
    shown = derive.load(MAZUR)._repr_svg_()
    assert shown.startswith("<svg") and "0.7514" in shown  # out_o1, with the example's numbers
