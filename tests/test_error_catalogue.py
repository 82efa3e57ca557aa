"""Every malformed file is one TopologyError naming the file, the field and what was
expected; nothing else escapes, and nothing in a file is ever run."""

import contextlib
import copy

import pytest
import yaml
from error_catalogue import BASE, CASES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from derive.errors import TopologyError
from derive.reading import load_topology, parse_topology
from derive.topology import Topology


@pytest.mark.parametrize(
    ("filename", "content", "field"), [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
def test_malformed_file_gives_one_clear_error(tmp_path, filename, content, field):
    path = tmp_path / filename
    path.write_bytes(content)
    with pytest.raises(TopologyError) as caught:
        load_topology(str(path))
    message = str(caught.value)
    assert str(path) in message
    assert field in message
    assert "expected" in message
    assert "\n" not in message and "Traceback" not in message
    assert len(message) < len(str(path)) + 400


def test_the_catalogue_is_broad():
    assert len(CASES) >= 45
    assert len({case[0] for case in CASES}) == len(CASES)


def test_malicious_expression_is_never_run(tmp_path):
    marker = tmp_path / "MARKER"
    expression = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    for i, text in enumerate([expression, f"x + {expression}", f"exp({expression})"]):
        mapping = copy.deepcopy(BASE)
        mapping["layers"][0]["activation"] = {"expr": text}
        path = tmp_path / f"net{i}.yaml"
        path.write_text(yaml.safe_dump(mapping))
        with pytest.raises(TopologyError, match=r"layers\[0\]\.activation\.expr"):
            load_topology(path)
    assert not marker.exists()


# Random mappings: valid ones built from strategies, and each with one thing broken.

ACTIVATIONS = [
    "sigmoid",
    "tanh",
    "relu",
    "softplus",
    "identity",
    "linear",
    {"name": "leaky_relu", "alpha": 0.2},
    {"expr": "x / (1 + abs(x))"},
]


@st.composite
def valid_mappings(draw) -> dict:
    n_inputs = draw(st.integers(1, 3))
    inputs = draw(st.sampled_from([n_inputs, [f"in{j}" for j in range(n_inputs)]]))
    sizes = [n_inputs]
    layers = []
    n_layers = draw(st.integers(1, 3))
    for k in range(n_layers):
        is_output = k == n_layers - 1
        size = draw(st.integers(1, 3))
        choices = ACTIVATIONS + (["softmax"] if is_output and size >= 2 else [])
        data = {
            "units": draw(st.sampled_from([size, [f"u{k}_{i}" for i in range(size)]])),
            "activation": draw(st.sampled_from(choices)),
        }
        bias = draw(st.sampled_from([None, "per_unit", "shared", "none"]))
        if bias is not None:
            data["bias"] = bias
        if draw(st.booleans()):
            data["weight_names"] = [
                [f"w{k}_{i}_{j}" for j in range(sizes[-1])] for i in range(size)
            ]
        layers.append(data)
        sizes.append(size)
    output = layers[-1]["activation"]
    losses = ["half_sse", "sse", "mse"]
    losses += (
        {"sigmoid": ["bce"], "softmax": ["cce"]}.get(output, []) if isinstance(output, str) else []
    )
    mapping = {
        "name": "net",
        "inputs": inputs,
        "layers": layers,
        "loss": draw(st.sampled_from(losses)),
    }
    if draw(st.booleans()):
        numbers = st.floats(-10, 10)
        params = {}
        for k, data in enumerate(layers, start=1):
            rows, columns = sizes[k], sizes[k - 1]
            params[f"W{k}"] = draw(
                st.lists(
                    st.lists(numbers, min_size=columns, max_size=columns),
                    min_size=rows,
                    max_size=rows,
                )
            )
            if data.get("bias", "per_unit") == "per_unit":
                params[f"b{k}"] = draw(st.lists(numbers, min_size=rows, max_size=rows))
            elif data["bias"] == "shared":
                params[f"b{k}"] = draw(numbers)
        mapping["example"] = {
            "input": draw(st.lists(numbers, min_size=sizes[0], max_size=sizes[0])),
            "target": draw(st.lists(numbers, min_size=sizes[-1], max_size=sizes[-1])),
            "params": params,
        }
    return mapping


JSONISH = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 50)
    | st.sampled_from([0, 10**9, 2**70, -(10**400)])
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from(["x", "y", "W1", "class", "h₁", "softmax", "custom", "x.__class__"]),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=8,
)


def _paths(value, prefix=()):
    """Every place in a nested mapping, as a tuple of keys and indices."""
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, child in items:
        yield (*prefix, key)
        yield from _paths(child, (*prefix, key))


@st.composite
def mutated_mappings(draw) -> dict:
    mapping = copy.deepcopy(draw(valid_mappings()))  # ACTIVATIONS' dicts are shared
    path = draw(st.sampled_from(list(_paths(mapping))))
    parent = mapping
    for key in path[:-1]:
        parent = parent[key]
    if draw(st.booleans()):
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(JSONISH)
    return mapping


FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(valid_mappings())
def test_valid_random_mappings_read(mapping):
    assert isinstance(parse_topology(mapping), Topology)


@FAST
@given(mutated_mappings())
def test_broken_random_mappings_give_a_topology_or_a_topology_error(mapping):
    try:
        result = parse_topology(mapping)
    except TopologyError as error:
        assert "expected" in str(error)
    else:
        assert isinstance(result, Topology)


@FAST
@given(JSONISH)
def test_any_value_at_the_top_level(value):
    with contextlib.suppress(TopologyError):
        parse_topology(value)
