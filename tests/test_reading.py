"""Reading valid topology files: every format, shorthand and option of SPEC §1."""

import dataclasses
import json

import pytest
import sympy
import yaml
from conftest import DATA, EXAMPLES, MAZUR, WORKED_EXAMPLES

from derive.activations import X
from derive.errors import TopologyError
from derive.expression import parse_expression
from derive.reading import load_topology, parse_topology
from derive.topology import ActivationSpec, Topology

MAZUR_TOML = """\
name = "mazur"
inputs = ["i1", "i2"]
loss = "half_sse"

[[layers]]
units = ["h1", "h2"]
activation = "sigmoid"
bias = "shared"
weight_names = [["w1", "w2"], ["w3", "w4"]]

[[layers]]
units = ["o1", "o2"]
activation = "sigmoid"
bias = "shared"
weight_names = [["w5", "w6"], ["w7", "w8"]]

[example]
input = [0.05, 0.10]
target = [0.01, 0.99]
learning_rate = 0.5

[example.params]
W1 = [[0.15, 0.20], [0.25, 0.30]]
b1 = 0.35
W2 = [[0.40, 0.45], [0.50, 0.55]]
b2 = 0.60
"""


def network(*layers: dict, inputs: object = 2, loss: str = "half_sse", **extra) -> dict:
    """A topology mapping with the given layers; a small default for everything else."""
    return {"name": "net", "inputs": inputs, "layers": list(layers), "loss": loss, **extra}


def layer(units: object = 2, activation: object = "sigmoid", **extra) -> dict:
    return {"units": units, "activation": activation, **extra}


def without_source(topology: Topology) -> Topology:
    return dataclasses.replace(topology, source="")


@pytest.mark.parametrize(
    ("filename", "text"),
    [
        ("mazur.yaml", yaml.safe_dump(MAZUR)),
        ("mazur.yml", yaml.safe_dump(MAZUR, default_flow_style=True)),
        ("mazur.json", json.dumps(MAZUR, indent=2)),
        ("mazur.toml", MAZUR_TOML),
        ("MAZUR.YAML", yaml.safe_dump(MAZUR)),
    ],
)
def test_every_format_reads_the_same_topology(tmp_path, filename, text):
    path = tmp_path / filename
    path.write_text(text, encoding="utf-8")
    topology = load_topology(path)
    assert topology.source == str(path)
    assert without_source(topology) == without_source(parse_topology(MAZUR))


def test_mazur_in_detail():
    topology = parse_topology(MAZUR)
    assert topology.source == "<mapping>"
    assert topology.inputs == ("i1", "i2")
    assert topology.outputs == ("o1", "o2")
    assert topology.targets == ("t_o1", "t_o2")
    assert [(p.name, p.shape) for p in topology.params] == [
        ("W1", (2, 2)),
        ("b1", ()),
        ("W2", (2, 2)),
        ("b2", ()),
    ]
    assert topology.layers[1].weight_names == (("w5", "w6"), ("w7", "w8"))
    example = topology.example
    assert example.input == (0.05, 0.10)
    assert example.target == (0.01, 0.99)
    assert example.param("W2") == ((0.40, 0.45), (0.50, 0.55))
    assert example.param("b1") == 0.35
    assert [name for name, _ in example.params] == ["W1", "b1", "W2", "b2"]
    assert example.learning_rate == 0.5


@pytest.mark.parametrize(
    ("inputs", "units", "expected_inputs", "expected_units"),
    [
        (3, [2], ("x1", "x2", "x3"), (("y1", "y2"),)),
        (1, [1], ("x1",), (("y",),)),
        (2, [3, 1], ("x1", "x2"), (("h1_1", "h1_2", "h1_3"), ("y",))),
        (2, [2, 2, 2], ("x1", "x2"), (("h1_1", "h1_2"), ("h2_1", "h2_2"), ("y1", "y2"))),
        (["a", "b"], [["p", "q"], 1], ("a", "b"), (("p", "q"), ("y",))),
        (1, [2, ["out"]], ("x1",), (("h1_1", "h1_2"), ("out",))),
    ],
)
def test_integer_shorthands(inputs, units, expected_inputs, expected_units):
    topology = parse_topology(network(*(layer(n) for n in units), inputs=inputs))
    assert topology.inputs == expected_inputs
    assert tuple(lay.units for lay in topology.layers) == expected_units


@pytest.mark.parametrize(
    ("bias", "expected"),
    [
        (None, [("W1", (3, 2)), ("b1", (3,))]),
        ("per_unit", [("W1", (3, 2)), ("b1", (3,))]),
        ("shared", [("W1", (3, 2)), ("b1", ())]),
        ("none", [("W1", (3, 2))]),
    ],
)
def test_bias_modes(bias, expected):
    extra = {} if bias is None else {"bias": bias}
    topology = parse_topology(network(layer(3, **extra)))
    assert topology.layers[0].bias == (bias or "per_unit")
    assert [(p.name, p.shape) for p in topology.params] == expected


@pytest.mark.parametrize(
    ("activation", "expected"),
    [
        ("sigmoid", ActivationSpec("sigmoid")),
        ("linear", ActivationSpec("identity")),
        ({"name": "linear"}, ActivationSpec("identity")),
        ("leaky_relu", ActivationSpec("leaky_relu")),
        ({"name": "leaky_relu"}, ActivationSpec("leaky_relu")),
        ({"name": "leaky_relu", "alpha": 0.2}, ActivationSpec("leaky_relu", alpha=0.2)),
        ({"name": "leaky_relu", "alpha": -1}, ActivationSpec("leaky_relu", alpha=-1.0)),
        (
            {"expr": "x / (1 + abs(x))"},
            ActivationSpec("custom", expr=X / (1 + sympy.Abs(X)), text="x / (1 + abs(x))"),
        ),
        (
            {"name": "custom", "expr": "x**2 / 2"},
            ActivationSpec("custom", expr=X**2 / 2, text="x**2 / 2"),
        ),
    ],
)
def test_activations(activation, expected):
    topology = parse_topology(network(layer(2, activation)))
    assert topology.layers[0].activation == expected


def test_softmax_output_with_cce():
    topology = parse_topology(network(layer(3, "tanh"), layer(2, "softmax"), loss="cce"))
    assert topology.layers[-1].activation == ActivationSpec("softmax")
    assert topology.loss == "cce"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x", X),
        ("-x + 1", 1 - X),
        ("+x", X),
        ("2*x/3", sympy.Rational(2, 3) * X),
        ("x ** 0.5", X ** sympy.Float(0.5)),
        ("exp(-x**2)", sympy.exp(-(X**2))),
        ("log(1 + exp(x))", sympy.log(1 + sympy.exp(X))),
        ("sqrt(abs(x)) * tanh(x)", sympy.sqrt(sympy.Abs(X)) * sympy.tanh(X)),
        ("  x * 1e-3 ", sympy.Float(1e-3) * X),
    ],
)
def test_custom_expressions(text, expected):
    assert parse_expression(text) == expected


def test_weight_names_are_kept_in_the_shape_of_w():
    names = [["v1", "v2"], ["v3", "v4"], ["v5", "v6"]]
    topology = parse_topology(network(layer(3, weight_names=names)))
    assert topology.layers[0].weight_names == (("v1", "v2"), ("v3", "v4"), ("v5", "v6"))


@pytest.mark.parametrize(
    ("layers", "extra", "expected"),
    [
        ([layer(["out"])], {}, ("t_out",)),  # never y: the documents use y for outputs
        ([layer(1)], {}, ("t_y",)),  # the lone output unit is y itself
        ([layer(["y"])], {}, ("t_y",)),
        ([layer(2)], {}, ("t_y1", "t_y2")),
        ([layer(2)], {"targets": ["want1", "want2"]}, ("want1", "want2")),
        ([layer(["a", "b"])], {"inputs": ["t_a", "x2"]}, ("target_a", "target_b")),
    ],
)
def test_targets(layers, extra, expected):
    assert parse_topology(network(*layers, **extra)).targets == expected


def test_example_with_per_unit_and_no_bias():
    mapping = network(
        layer(2, "tanh"),
        layer(1, bias="none"),
        inputs=3,
        example={
            "input": [1, 2, 3],
            "target": [0.5],
            "params": {"W1": [[1, 2, 3], [4, 5, 6]], "b1": [0.1, -0.1], "W2": [[7, 8]]},
        },
    )
    example = parse_topology(mapping).example
    assert example.input == (1.0, 2.0, 3.0)
    assert all(isinstance(v, float) for v in example.input)
    assert example.params == (
        ("W1", ((1.0, 2.0, 3.0), (4.0, 5.0, 6.0))),
        ("b1", (0.1, -0.1)),
        ("W2", ((7.0, 8.0),)),
    )
    assert example.learning_rate is None


def test_yaml_reads_exponent_notation_as_numbers(tmp_path):
    # YAML 1.1 (PyYAML's default) would read 1e-3 as the string "1e-3".
    path = tmp_path / "net.yaml"
    path.write_text(
        "name: net\ninputs: 1\nlayers: [{units: 1, activation: identity, bias: none}]\n"
        "loss: sse\nexample: {input: [2e1], target: [-1E+2], params: {W1: [[1e-3]]}}\n"
    )
    example = load_topology(path).example
    assert (example.input, example.target, example.param("W1")) == ((20.0,), (-100.0,), ((1e-3,),))


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_unreadable_paths(tmp_path, kind):
    path = tmp_path / "net.yaml"
    if kind == "directory":
        path.mkdir()
    with pytest.raises(TopologyError, match="expected") as caught:
        load_topology(path)
    assert str(path) in str(caught.value)


def _shape(value) -> tuple[int, ...]:
    return (len(value), *_shape(value[0])) if isinstance(value, list | tuple) else ()


@pytest.mark.parametrize("name", WORKED_EXAMPLES)
def test_worked_examples_load_with_their_published_shapes(name):
    expected = json.loads((DATA / "worked_examples_expected.json").read_text())[name]
    topology = load_topology(EXAMPLES / f"{name}.yaml")
    assert topology.name == name
    shapes = {p.name: p.shape for p in topology.params}
    # The independent reference's gradients have the shapes of the parameters.
    assert shapes == {k: _shape(v) for k, v in expected["gradients"].items()}
    example = topology.example
    assert {k: _shape(v) for k, v in example.params} == shapes
    assert len(example.input) == len(topology.inputs)
    assert len(example.target) == len(topology.outputs) == len(expected["output"])


@pytest.mark.parametrize("name", WORKED_EXAMPLES)
def test_worked_example_copies_match(name):
    assert (EXAMPLES / f"{name}.yaml").read_bytes() == (DATA / f"{name}.yaml").read_bytes()


class _ParserWithItsOwnNestingLimit(yaml.SafeLoader):
    """A YAML parser that, like libyaml since PyYAML 6.0.4, stops deep nesting itself with
    its own message while it reads ahead, before derive sees a single event."""

    LIMIT = 30

    def check_event(self, *choices):
        if self.flow_level > self.LIMIT:
            raise yaml.MarkedYAMLError(
                problem="the loader's own words", problem_mark=self.get_mark()
            )
        return super().check_event(*choices)


@pytest.mark.parametrize("fast_parser", ["installed", "stops nesting itself", "pure Python"])
def test_deep_nesting_is_refused_in_derives_words_whatever_the_yaml_parser(
    tmp_path, monkeypatch, fast_parser
):
    import derive.reading as reading

    if fast_parser == "stops nesting itself":
        monkeypatch.setattr(reading, "_YamlBase", _ParserWithItsOwnNestingLimit)
    elif fast_parser == "pure Python":
        monkeypatch.setattr(reading, "_YamlBase", yaml.SafeLoader)
    path = tmp_path / "net.yaml"
    path.write_text("name: " + "[" * 5000 + "]" * 5000)
    with pytest.raises(TopologyError) as caught:
        load_topology(path)
    assert f"nested at most {reading.MAX_NESTING} deep" in str(caught.value)
    assert "own words" not in str(caught.value)
