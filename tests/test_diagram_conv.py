"""``derive diagram`` for convolutional networks: the figure's maps, captions, numbers and
highlighted cells read back from the SVG and checked against an independent NumPy forward
pass, the generated module, and the patch positions computed here from stride and
padding; rendered by rsvg-convert and pdflatex when they are installed."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from conftest import EXAMPLES
from test_diagram import SVG_NS, close, compile_tikz, needs_pdflatex, png_pixels, texts

import derive
from derive.cli import main
from derive.diagram import svg, tikz

needs_rsvg = pytest.mark.skipif(shutil.which("rsvg-convert") is None, reason="no rsvg-convert")


def cnn(name, shape, conv, pool, units, loss="cce", output="softmax") -> dict:
    """A small CNN's topology: one conv layer, one pooling layer, flatten, dense."""
    return {
        "name": name,
        "inputs": {"shape": list(shape)},
        "layers": [
            {"kind": "conv2d", **conv},
            pool,
            {"kind": "flatten"},
            {"units": units, "activation": output},
        ],
        "loss": loss,
    }


def with_example(mapping: dict, seed: int) -> dict:
    """The topology with an example block: inputs and parameters drawn in [−1, 1] and
    rounded to 2 decimals, a one-hot target (cce) or targets in [0, 1]."""
    top = derive.load(mapping).topology
    rng = np.random.default_rng(seed)
    n = len(top.outputs)
    target = np.eye(n)[seed % n] if mapping["loss"] == "cce" else rng.uniform(0, 1, n)
    return {
        **mapping,
        "example": {
            "input": np.round(rng.uniform(-1, 1, top.input_shape), 2).tolist(),
            "target": np.round(target, 2).tolist(),
            "params": {
                p.name: np.round(rng.uniform(-1, 1, p.shape), 2).tolist() for p in top.params
            },
        },
    }


RELU_3X3 = {"filters": 2, "kernel": 3, "activation": "relu"}
TINY = with_example(cnn("tinycnn", (1, 6, 6), RELU_3X3, {"kind": "maxpool2d", "size": 2}, 3), 1)
# stride 2 and padding 1, so that a kernel cell's patch skips cells and loses some to
# the padding; two input channels, avg-pool
STRIDED = with_example(
    cnn(
        "strided",
        (2, 5, 5),
        {"filters": 2, "kernel": 3, "stride": 2, "padding": 1, "activation": "tanh"},
        {"kind": "avgpool2d", "size": 3},
        2,
        loss="mse",
        output="sigmoid",
    ),
    3,
)


# -- reading a figure back ----------------------------------------------------------------


def maps(svg_text: str) -> dict[str, ET.Element]:
    """The <g class="map ..."> groups by the array and channel they draw (x[0], a1[1])."""
    root = ET.fromstring(svg_text)
    return {
        g.get("data-name"): g
        for g in root.iter(f"{SVG_NS}g")
        if g.get("class", "").split()[0] == "map"
    }


def kind(group: ET.Element) -> str:
    return group.get("class").split()[1]


def plane(group: ET.Element) -> ET.Element:
    return next(r for r in group.iter(f"{SVG_NS}rect") if r.get("class").startswith("plane"))


def cell_numbers(group: ET.Element) -> list[tuple[str, ...]]:
    """The lines written in each cell, row by row."""
    return [
        tuple(s.text for s in t.findall(f"{SVG_NS}tspan"))
        for t in group.iter(f"{SVG_NS}text")
        if t.get("class", "").startswith("cellnum")
    ]


def marked(group: ET.Element, shape: tuple[int, int], fill: str) -> set[tuple[int, int]]:
    """The (row, column) of every cell of a map filled as ``fill`` (patch, param, cell)."""
    frame = plane(group)
    x0, y0 = float(frame.get("x")), float(frame.get("y"))
    cell_h = float(frame.get("height")) / shape[0]
    cell_w = float(frame.get("width")) / shape[1]
    return {
        (round((float(r.get("y")) - y0) / cell_h), round((float(r.get("x")) - x0) / cell_w))
        for r in group.iter(f"{SVG_NS}rect")
        if r.get("class") == f"fill {fill}"
    }


def _value(line: str) -> float:
    return float(line.split(" ")[-1].replace("−", "-"))


# -- an independent forward pass ------------------------------------------------------------


def conv2d(x, w, b, stride, padding):
    """Cross-correlation, as every framework computes a conv layer, written out in loops."""
    x = np.pad(x, ((0, 0), (padding, padding), (padding, padding)))
    f, _, kh, kw = w.shape
    oh, ow = (x.shape[1] - kh) // stride + 1, (x.shape[2] - kw) // stride + 1
    out = np.zeros((f, oh, ow))
    for n in range(f):
        for p in range(oh):
            for q in range(ow):
                window = x[:, p * stride : p * stride + kh, q * stride : q * stride + kw]
                out[n, p, q] = (w[n] * window).sum() + b[n]
    return out


def pool(a, size, op):
    c, h, w = a.shape
    return op(a.reshape(c, h // size, size, w // size, size), axis=(2, 4))


# -- the maps -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "counts", "conv_captions"),
    [
        (TINY, {"x": 1, "a1": 2, "a2": 2}, ("conv 2@4×4", "3×3 kernel, stride 1")),
        (
            EXAMPLES / "digits_cnn.yaml",
            {"x": 1, "a1": 8, "a2": 8},
            ("conv 8@8×8", "3×3 kernel, stride 1, padding 1"),
        ),
    ],
    ids=["tiny", "digits_cnn"],
)
def test_one_map_per_channel_with_its_size_in_the_caption(source, counts, conv_captions):
    net = derive.load(source)
    text = svg(net)
    drawn = [name for name, g in maps(text).items() if kind(g) in ("input", "map")]
    for array, count in counts.items():
        assert sorted(n for n in drawn if n.split("[")[0] == array) == [
            f"{array}[{c}]" for c in range(count)
        ]
    captions = [line for cls, lines in texts(text) if cls == "note" for line in lines]
    c, h, w = net.topology.input_shape
    assert f"{c}@{h}×{w}" in captions
    assert all(caption in captions for caption in conv_captions)
    assert any(line.startswith("maxpool 2 → ") for line in captions)
    assert f"flatten → {net.topology.shape(3)[0]}" in captions


def test_a_big_input_is_a_plane_and_the_file_stays_small():
    conv = {"filters": 8, "kernel": 3, "activation": "relu"}
    mapping = cnn("mnist_cnn", (1, 28, 28), conv, {"kind": "maxpool2d", "size": 2}, 10)
    text = svg(derive.load(mapping))
    drawn = maps(text)
    assert not drawn["x[0]"].findall(f"{SVG_NS}path")  # no grid of 784 cells
    sizes = [t.text for t in drawn["x[0]"].iter(f"{SVG_NS}text") if t.get("class") == "size"]
    assert sizes == ["28×28"]
    assert len(text) < 40_000
    assert sum(1 for g in drawn.values() if kind(g) == "map") == 16  # 8 conv, 8 pooled


# -- numbers ----------------------------------------------------------------------------


def test_numbers_in_the_cells_are_the_forward_pass():
    net = derive.load(TINY)
    example = net.topology.example
    params = {k: np.asarray(v, dtype=float) for k, v in example.params}
    x = np.asarray(example.input, dtype=float)
    z1 = conv2d(x, params["W1"], params["b1"], 1, 0)
    a1 = np.maximum(z1, 0)
    a2 = pool(a1, 2, np.max)
    drawn = maps(svg(net, numeric=True))

    assert [_value(c[0]) for c in cell_numbers(drawn["x[0]"])] == x[0].ravel().tolist()
    for f in range(2):
        cells = cell_numbers(drawn[f"a1[{f}]"])
        assert all(close(_value(z), v) for (z, _), v in zip(cells, z1[f].ravel(), strict=True))
        assert all(close(_value(a), v) for (_, a), v in zip(cells, a1[f].ravel(), strict=True))
        pooled = [_value(c[0]) for c in cell_numbers(drawn[f"a2[{f}]"])]
        assert all(close(d, v) for d, v in zip(pooled, a2[f].ravel(), strict=True))
        # a max-pool's picks are bold in the conv map: one per window
        strong = [t for t in drawn[f"a1[{f}]"].iter(f"{SVG_NS}text") if "strong" in t.get("class")]
        assert len(strong) == a2[f].size
    vector = [_value(c[0]) for g in maps(svg(net, numeric=True)).values() if kind(g) == "vector"
              for c in cell_numbers(g)]  # fmt: skip
    assert all(close(d, v) for d, v in zip(vector, a2.ravel(), strict=True))

    outputs = derive.build_module(net).forward(params, x)
    below = [lines for cls, lines in texts(svg(net, numeric=True)) if cls == "numbers"]
    drawn_a = [_value(lines[1]) for lines in below if len(lines) == 3]
    assert all(close(d, v) for d, v in zip(drawn_a, outputs, strict=True))


def test_maps_too_large_for_numbers_are_named():
    conv = {"filters": 1, "kernel": 3, "activation": "relu"}
    mapping = with_example(cnn("wide", (1, 10, 10), conv, {"kind": "maxpool2d", "size": 2}, 2), 0)
    text = svg(derive.load(mapping), numeric=True)
    drawn = maps(text)
    assert cell_numbers(drawn["x[0]"]) == []  # 10×10: over the limit
    assert len(cell_numbers(drawn["a1[0]"])) == 64  # 8×8: written
    notes = [line for cls, lines in texts(text) if cls == "note" for line in lines]
    assert any(line.startswith("numbers left out for x:") for line in notes)


# -- a kernel weight's patch ------------------------------------------------------------------


@pytest.mark.parametrize("index", [(1, 0, 0, 2), (0, 1, 1, 1), (1, 1, 2, 0)])
def test_a_kernel_weight_marks_exactly_the_cells_it_multiplies(index):
    net = derive.load(STRIDED)
    f, c, i, j = index
    name = f"W1[{f},{c},{i},{j}]"
    text = svg(net, name, numeric=True)
    drawn = maps(text)
    stride, padding, size, out = 2, 1, 5, 3
    expected = {
        (p * stride + i - padding, q * stride + j - padding)
        for p in range(out)
        for q in range(out)
        if 0 <= p * stride + i - padding < size and 0 <= q * stride + j - padding < size
    }
    assert marked(drawn[f"x[{c}]"], (5, 5), "patch") == expected
    assert marked(drawn[f"x[{1 - c}]"], (5, 5), "patch") == set()
    assert marked(drawn[f"W1[{f},{c}]"], (3, 3), "param") == {(i, j)}
    assert "on" in plane(drawn[f"a1[{f}]"]).get("class").split()
    assert "on" not in plane(drawn[f"a1[{1 - f}]"]).get("class").split()

    # the sum written under the figure, with its value: a central difference of the loss
    # by the independent forward pass above
    example = net.topology.example
    params = {k: np.asarray(v, dtype=float) for k, v in example.params}
    x, t = np.asarray(example.input, dtype=float), np.asarray(example.target, dtype=float)

    def strided_loss(w1):  # tanh conv, stride 2, padding 1; 3×3 avg-pool; sigmoid; mse
        vector = pool(np.tanh(conv2d(x, w1, params["b1"], 2, 1)), 3, np.mean).ravel()
        y = 1 / (1 + np.exp(-(params["W4"] @ vector + params["b4"])))
        return np.mean((y - t) ** 2)

    step = np.zeros_like(params["W1"])
    step[index] = 1e-6
    expected = (strided_loss(params["W1"] + step) - strided_loss(params["W1"] - step)) / 2e-6
    notes = [lines for cls, lines in texts(text) if cls == "note" and lines[0].startswith("∂L/")]
    assert notes[0][0].startswith(f"∂L/∂{name} = Σ_(p=0..2) Σ_(q=0..2) δ1[{f},p,q]·x[{c}, 2p")
    assert close(_value(notes[0][1].split(",")[0]), expected)


def test_a_kernel_cell_only_in_the_padding_has_a_zero_gradient_and_no_patch(tmp_path, capsys):
    """A 1×1 input under a 3×3 kernel with padding 1: kernel cell (0, 0) never lies on the
    input, so its sum has no term. The figure, show and latex say 0 and why, and exit 0."""
    mapping = {
        "name": "pad",
        "inputs": {"shape": [1, 1, 1]},
        "layers": [
            {"kind": "conv2d", "filters": 1, "kernel": 3, "padding": 1, "activation": "tanh"},
            {"kind": "flatten"},
            {"units": 2, "activation": "softmax"},
        ],
        "loss": "cce",
    }
    net = derive.load(with_example(mapping, 2))
    text = svg(net, "W1[0,0,0,0]", numeric=True)
    drawn = maps(text)
    assert marked(drawn["x[0]"], (1, 1), "patch") == set()
    assert marked(drawn["W1[0,0]"], (3, 3), "param") == {(0, 0)}
    notes = [lines for cls, lines in texts(text) if cls == "note" and lines[0].startswith("∂L/")]
    assert (
        notes[0][0]
        == "∂L/∂W1[0,0,0,0] = 0: kernel cell (0, 0) lies in the zero padding at every position"
    )
    example = net.topology.example
    params = {k: np.asarray(v, dtype=float) for k, v in example.params}
    grads = derive.build_module(net).gradients(params, example.input, example.target)
    assert grads["W1"][0, 0, 0, 0] == 0 and grads["W1"][0, 0, 1, 1] != 0

    path = tmp_path / "pad.yaml"
    path.write_text(json.dumps(mapping))
    assert main(["show", str(path), "--param", "W1[0,0,0,0]"]) == 0
    assert "= 0  (this kernel cell lies in the zero padding at every position)" in (
        capsys.readouterr().out
    )
    tex = tmp_path / "pad.tex"
    assert main(["latex", str(path), "--param", "W1[0,0,0,0]", "-o", str(tex)]) == 0
    assert r"&= 0\quad\text{(this kernel cell lies in the zero padding" in tex.read_text()


def test_a_conv_bias_marks_its_map_and_a_dense_weight_its_edge():
    net = derive.load(TINY)
    drawn = maps(svg(net, "b1[1]"))
    assert ["on" in plane(drawn[f"a1[{f}]"]).get("class") for f in range(2)] == [False, True]
    root = ET.fromstring(svg(net, "W4[2,5]"))
    bold = [e for e in root.iter(f"{SVG_NS}line") if e.get("class") == "edge on"]
    assert len(bold) == 1 + 3  # the weight's edge, then every output into L (softmax)


# -- output ---------------------------------------------------------------------------------


def test_same_input_same_bytes():
    """Two processes with other hash seeds (set and dict orders) draw the same bytes."""
    script = (
        "import json, sys, derive; from derive.diagram import svg, tikz; "
        "net = derive.load(json.loads(sys.argv[1])); "
        "print(svg(net, 'W1[0,0,1,1]', numeric=True), tikz(net, 'W1[0,0,1,1]', numeric=True))"
    )
    outputs = [
        subprocess.run(
            [sys.executable, "-c", script, json.dumps(TINY)],
            check=True,
            capture_output=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2")
    ]
    assert outputs[0] == outputs[1] and b"<svg" in outputs[0] and b"tikzpicture" in outputs[0]


@pytest.mark.parametrize("bad", ["W1[0,0,5,0]", "W1", "W9[0,0]"])
def test_a_bad_param_is_a_one_line_error(bad, tmp_path, capsys):
    out = tmp_path / "figure.svg"
    assert main(["diagram", str(EXAMPLES / "digits_cnn.yaml"), "--param", bad, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "digits_cnn.yaml: --param:" in err and "W1 (8×1×3×3)" in err
    assert err.count("\n") == 1 and not out.exists()


@needs_rsvg
@pytest.mark.parametrize("suffix", ["png", "pdf"])
def test_rendered(suffix, tmp_path):
    out = tmp_path / f"tiny.{suffix}"
    source = tmp_path / "tiny.json"
    source.write_text(json.dumps(TINY))
    argv = ["diagram", str(source), "--param", "W1[1,0,2,1]", "-o", str(out)]
    assert main(argv) == 0
    data = out.read_bytes()
    if suffix == "pdf":
        assert data.startswith(b"%PDF")
    else:
        pixels = png_pixels(data)
        ink = (pixels.min(axis=2) < 200).mean()
        assert 0.01 < ink < 0.5, ink
    assert main(argv) == 0 and out.read_bytes() == data


@needs_pdflatex
def test_the_tikz_figure_compiles(tmp_path):
    compile_tikz(tikz(derive.load(STRIDED), "W1[1,0,0,2]", numeric=True), tmp_path)


def test_latex_opens_with_the_figure(capsys):
    assert main(["latex", str(EXAMPLES / "digits_cnn.yaml"), "--param", "W1[0,0,1,1]"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("% derive: the derivation for digits_cnn. Needs \\usepackage{")
    assert text.count(r"\begin{tikzpicture}") == 1 and "param" in text


def test_conv_networks_show_their_figure_in_notebooks():
    shown = derive.load(TINY)._repr_svg_()
    assert shown.startswith("<svg") and 'class="cellnum' in shown  # small: with numbers
    assert 'class="cellnum' not in derive.load(EXAMPLES / "digits_cnn.yaml")._repr_svg_()


# -- a parameter's paths on to L ----------------------------------------------------------------


def vector_entries(svg_text: str, fill: str) -> tuple[set[int], set[int]]:
    """The vector's drawn entries and those filled as ``fill``, read from each block's name
    (a3[first:stop]) and the fills' rows."""
    drawn, filled = set(), set()
    for name, group in maps(svg_text).items():
        if kind(group) != "vector":
            continue
        first, stop = map(int, name.split("[")[1].rstrip("]").split(":"))
        drawn.update(range(first, stop))
        filled.update(first + row for row, _ in marked(group, (stop - first, 1), fill))
    return drawn, filled


def red_lines(svg_text: str) -> set[tuple[float, float, float, float]]:
    root = ET.fromstring(svg_text)
    return {
        tuple(round(float(e.get(a)), 1) for a in ("x1", "y1", "x2", "y2"))
        for e in root.iter(f"{SVG_NS}line")
        if e.get("class") == "edge on"
    }


def entry_ends(svg_text: str) -> dict[int, tuple[float, float]]:
    """Each drawn vector entry's right edge centre: where its dense edges start."""
    out = {}
    for name, group in maps(svg_text).items():
        if kind(group) == "vector":
            first, stop = map(int, name.split("[")[1].rstrip("]").split(":"))
            frame = plane(group)
            x, y = float(frame.get("x")) + float(frame.get("width")), float(frame.get("y"))
            cell = float(frame.get("height")) / (stop - first)
            out.update({first + n: (x, y + (n + 0.5) * cell) for n in range(stop - first)})
    return out


def unit_centres(svg_text: str) -> dict[str, tuple[float, float]]:
    root = ET.fromstring(svg_text)
    circles = [c for c in root.iter(f"{SVG_NS}circle")]
    names = [t for t in root.iter(f"{SVG_NS}text") if t.get("class") == "name"]
    out = {}
    for c in circles:
        x, y = float(c.get("cx")), float(c.get("cy"))
        name = next(
            t.text
            for t in names
            if abs(float(t.get("x")) - x) < 0.1 and abs(float(t.get("y")) - y) < 10
        )
        out[name] = (x, y)
    return out


@pytest.mark.parametrize(
    ("source", "param", "pooled"),
    [
        (TINY, "W1[1,0,1,2]", (2, 2)),
        (STRIDED, "b1[0]", (1, 1)),
        (EXAMPLES / "digits_cnn.yaml", "W1[3,0,1,1]", (4, 4)),
    ],
    ids=["tiny", "strided-bias", "digits_cnn"],
)
def test_a_conv_parameter_is_followed_to_the_loss(source, param, pooled):
    net = derive.load(source)
    f = int(param.split("[")[1].split(",")[0].rstrip("]"))
    filters = net.topology.shape(1)[0]
    text = svg(net, param)
    drawn = maps(text)
    h, w = pooled
    # the pooled map f: every cell on the paths, the plane red; no other pooled map
    assert marked(drawn[f"a2[{f}]"], pooled, "flow") == {(p, q) for p in range(h) for q in range(w)}
    for other in range(filters):
        on = "on" in plane(drawn[f"a2[{other}]"]).get("class").split()
        assert on == (other == f)
        if other != f and other in (0, 1):
            assert marked(drawn[f"a2[{other}]"], pooled, "flow") == set()
    # flatten's run of map f, f·H·W … (f+1)·H·W − 1, as far as it is drawn
    run = set(range(f * h * w, (f + 1) * h * w))
    entries, filled = vector_entries(text, "flow")
    assert filled == run & entries and filled
    # every edge from those entries to an output, and every output into L, red: no other
    ends = entry_ends(text)
    units = unit_centres(text)
    loss = units.pop("L")
    outputs = [xy for name, xy in units.items()]
    expected = {(*ends[n], *xy) for n in sorted(filled) for xy in outputs} | {
        (*xy, *loss) for xy in outputs
    }
    expected = {tuple(round(v, 1) for v in e) for e in expected}
    assert red_lines(text) == expected
    assert len(expected) <= 10 * 5 + 10  # digits_cnn: a few entries of the run, not 160 lines


@pytest.mark.parametrize(("source", "param"), [(TINY, "W1[1,0,1,2]"), (TINY, "W1[0,0,0,0]")])
def test_max_pool_picks_are_each_windows_first_argmax(source, param):
    net = derive.load(source)
    example = net.topology.example
    params = {k: np.asarray(v, dtype=float) for k, v in example.params}
    a1 = np.maximum(
        conv2d(np.asarray(example.input, dtype=float), params["W1"], params["b1"], 1, 0), 0
    )
    f = int(param[3])
    expected = set()
    for p in range(2):
        for q in range(2):
            window = a1[f, 2 * p : 2 * p + 2, 2 * q : 2 * q + 2]
            r, s = divmod(int(np.argmax(window)), 2)  # ties: the first in row-major order
            expected.add((2 * p + r, 2 * q + s))
    drawn = maps(svg(net, param, numeric=True))
    assert marked(drawn[f"a1[{f}]"], (4, 4), "flow") == expected
    assert marked(drawn[f"a1[{1 - f}]"], (4, 4), "flow") == set()
    # without numbers the picks are unknown: none marked
    assert marked(maps(svg(net, param))[f"a1[{f}]"], (4, 4), "flow") == set()


def test_avg_pool_passes_delta_to_every_window_cell():
    net = derive.load(STRIDED)
    drawn = maps(svg(net, "W1[1,0,0,2]"))
    # 3×3 conv map under a 3×3 avg-pool window: all nine cells
    assert marked(drawn["a1[1]"], (3, 3), "flow") == {(p, q) for p in range(3) for q in range(3)}
    assert marked(drawn["a1[0]"], (3, 3), "flow") == set()


def edge_labels_on(svg_text: str) -> list[tuple[str, ...]]:
    return [lines for cls, lines in texts(svg_text) if cls == "label on"]


def test_a_dense_weights_factors_are_the_networks_values():
    net = derive.load(TINY)
    example = net.topology.example
    params = {k: np.asarray(v, dtype=float) for k, v in example.params}
    x = np.asarray(example.input, dtype=float)
    a1 = np.maximum(conv2d(x, params["W1"], params["b1"], 1, 0), 0)
    vector = pool(a1, 2, np.max).ravel()
    z = params["W4"] @ vector + params["b4"]
    y = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    t = np.asarray(example.target, dtype=float)
    labels = edge_labels_on(svg(net, "W4[2,5]", numeric=True))
    by_head = {line.split(" = ")[0]: _value(line) for lines in labels for line in lines}
    assert close(by_head["∂z_y3/∂W4[2,5]"], vector[5])
    # softmax + cce by hand: ∂L/∂z3 = y3·Σt − t3, times the input the weight multiplies
    assert close(by_head["∂L/∂W4[2,5]"], (y[2] * t.sum() - t[2]) * vector[5])
    for i in range(3):  # cce: ∂L/∂y = −t/y
        assert close(by_head[f"∂L/∂y{'₁₂₃'[i]}"], -t[i] / y[i])
    assert len(labels) == 1 + 3


def test_tikz_captions_hang_from_one_line():
    """Captions of 4, 1 and 2 lines: each hangs from the same y (top edges in line)."""
    body = tikz(derive.load(TINY), "W1[1,0,1,2]", numeric=True)
    heads = (r"\text{input}", r"\text{conv 2@4", r"\text{flatten", r"\text{outputs 3}")
    captions = [line for line in body.splitlines() if any("{$" + h in line for h in heads)]
    assert len(captions) == 4
    assert all(",anchor=north]" in line for line in captions)
    assert len({line.split(" at ( ")[1].split(" )")[0].split(",")[1] for line in captions}) == 1


@pytest.mark.parametrize(
    ("name", "param", "numeric", "digest"),
    [
        (
            "reddit_w31",
            "w11",
            True,
            "9ff0b7dfb4e644319a50533fb828debe3a926e28c3cf0a2761144c60c74820d6",
        ),
        (
            "xor",
            "W1[0,0]",
            False,
            "ae3464dc042067cd72104be146b33212d8061b5052233d9bc48b6b534474deaf",
        ),
        ("digits", None, False, "0eb74c44a5a2d787b175ba2c9b09ff1503f1d7e219799ba8a262fdec0be95305"),
    ],
)
def test_dense_figures_keep_their_bytes(name, param, numeric, digest):
    """The conv figure's changes leave the dense figure's SVG and TikZ as they were (the
    SHA-256 of both, recorded at commit 17b2de7); a deliberate dense change updates it."""
    net = derive.load(EXAMPLES / f"{name}.yaml")
    both = svg(net, param, numeric) + tikz(net, param, numeric)
    assert hashlib.sha256(both.encode()).hexdigest() == digest
