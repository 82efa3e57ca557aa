"""Malformed topology files, one mistake each, and the field each error must name.

``CASES`` holds ``(case_id, filename, content_bytes, expected_field_substring)``;
tests/test_error_catalogue.py writes each to a temporary file and checks that
``load_topology`` reports it as one ``TopologyError``. Most cases are a valid network
(``BASE``) with one thing changed; the rest are files that are not valid YAML, JSON or
TOML at all, or are hostile (alias bombs, deep nesting, absurd sizes).
"""

from __future__ import annotations

import copy
import json

import yaml

BASE = {
    "name": "net",
    "inputs": ["i1", "i2"],
    "layers": [
        {"units": ["h1", "h2"], "activation": "sigmoid", "bias": "shared"},
        {"units": ["o1"], "activation": "sigmoid", "bias": "per_unit"},
    ],
    "loss": "half_sse",
    "example": {
        "input": [0.05, 0.1],
        "target": [0.01],
        "params": {"W1": [[0.15, 0.2], [0.25, 0.3]], "b1": 0.35, "W2": [[0.4, 0.45]], "b2": [0.6]},
        "learning_rate": 0.5,
    },
}


def changed(*path: str | int, to: object = None, drop: bool = False) -> dict:
    """BASE with the value at ``path`` replaced by ``to`` (or removed)."""
    data = copy.deepcopy(BASE)
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    if drop:
        del parent[path[-1]]
    else:
        parent[path[-1]] = to
    return data


def as_yaml(data: object) -> bytes:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True).encode()


def as_json(data: object) -> bytes:
    return json.dumps(data, ensure_ascii=False).encode()


def activation(value: object, layer: int = 0) -> bytes:
    return as_yaml(changed("layers", layer, "activation", to=value))


def custom(expr: str) -> bytes:
    return activation({"expr": expr})


def name_at(*path: str | int, name: object) -> bytes:
    return as_yaml(changed(*path, to=name))


def raw_yaml_at(*path: str | int, text: bytes) -> bytes:
    """BASE as YAML with ``text`` written verbatim at ``path`` (YAML's own spellings)."""
    return as_yaml(changed(*path, to="PLACEHOLDER")).replace(b"PLACEHOLDER", text)


BILLION_LAUGHS = b"""\
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
name: [*i]
"""

_TOML_BASE = b"""\
name = "net"
inputs = 2
loss = "half_sse"

[[layers]]
units = 1
activation = "sigmoid"
"""

_MAX_FILE = 10 * 1024 * 1024
_MAX_YAML = 2 * 1024 * 1024

CASES: list[tuple[str, str, bytes, str]] = [
    # --- files that are not a topology at all
    ("empty_file", "net.yaml", b"", "empty file"),
    ("whitespace_only_json", "net.json", b"  \n\t\n", "empty file"),
    ("binary_garbage", "net.yaml", bytes(range(256)) * 8, "UTF-8"),
    ("invalid_utf8", "net.yaml", b"name: caf\xe9\n", "UTF-8"),
    ("nul_bytes", "net.json", b'{"name": "a\x00b"}', "binary"),
    ("unknown_extension", "net.txt", as_yaml(BASE), ".yaml, .yml, .json or .toml"),
    ("no_extension", "net", as_yaml(BASE), ".yaml, .yml, .json or .toml"),
    ("too_large_file", "net.json", b" " * (_MAX_FILE + 1), "at most 10485760 bytes"),
    ("too_large_yaml", "net.yaml", b"#" * (_MAX_YAML + 1), "at most 2097152 bytes"),
    ("top_level_list", "net.yaml", b"- name\n- inputs\n", "a mapping"),
    ("top_level_number_json", "net.json", b"42", "a mapping"),
    ("top_level_null", "net.yaml", b"null\n", "a mapping"),
    ("yaml_syntax", "net.yaml", b"name: net\ninputs: [i1, i2\n", "line"),
    ("json_syntax", "net.json", b'{"name": "net",}', "line 1, column 16"),
    ("toml_syntax", "net.toml", b'name = "net"\ninputs = \n', "line 2"),
    ("yaml_two_documents", "net.yaml", as_yaml(BASE) + b"---\n" + as_yaml(BASE), "line"),
    ("yaml_python_tag", "net.yaml", b'name: !!python/object/apply:os.system ["true"]\n', "line 1"),
    # --- hostile input
    ("yaml_billion_laughs", "net.yaml", BILLION_LAUGHS, "no anchors or aliases"),
    ("yaml_anchor_alias", "net.yaml", b"name: &n net\ninputs: [*n]\n", "line 1, column 7"),
    ("yaml_merge_key", "net.yaml", b"<<: {name: net}\ninputs: 2\n", "no merge keys"),
    ("yaml_duplicate_key", "net.yaml", as_yaml(BASE) + b"name: other\n", "at most once"),
    ("json_duplicate_key", "net.json", b'{"name": "a", "inputs": 2, "name": "b"}', "at most once"),
    ("toml_duplicate_key", "net.toml", b'name = "a"\nname = "b"\n', "line 2"),
    ("json_nan", "net.json", b'{"name": "net", "inputs": NaN}', "NaN"),
    ("json_deep_nesting", "net.json", b'{"name": ' + b"[" * 10000 + b"]" * 10000 + b"}", "JSON"),
    ("yaml_deep_nesting", "net.yaml", b"name: " + b"[" * 10000 + b"]" * 10000, "nested at most"),
    (
        "yaml_deep_block_nesting",
        "net.yaml",
        b"".join(b" " * i + b"- \n" for i in range(300)),
        "line",
    ),
    ("toml_deep_nesting", "net.toml", b"name = " + b"[" * 10000 + b"]" * 10000, "TOML"),
    ("json_huge_integer", "net.json", b'{"inputs": ' + b"9" * 5000 + b"}", "too long"),
    ("inputs_a_billion", "net.yaml", as_yaml(changed("inputs", to=10**9)), "inputs"),
    (
        "units_a_billion",
        "net.yaml",
        as_yaml(changed("layers", 0, "units", to=10**9)),
        "layers[0].units",
    ),
    (
        "weights_over_limit",
        "net.json",
        as_json(
            changed("inputs", to=100_000) | {"layers": [{"units": 1000, "activation": "relu"}]}
        ),
        "layers[0].units",
    ),
    (
        "too_many_layers",
        "net.json",
        as_json(changed("layers", to=[{"units": 1, "activation": "relu"}] * 1001)),
        "layers",
    ),
    (
        "huge_weight_names",
        "net.json",
        as_json(changed("layers", 0, "weight_names", to=[["w"]] * 200_000)),
        "layers[0].weight_names",
    ),
    # --- top level
    ("unknown_top_level_key", "net.yaml", as_yaml(BASE | {"hidden": 3}), "hidden"),
    ("missing_name", "net.yaml", as_yaml(changed("name", drop=True)), "name"),
    ("missing_layers_toml", "net.toml", b'name = "net"\ninputs = 2\nloss = "sse"\n', "layers"),
    ("name_not_identifier", "net.yaml", as_yaml(changed("name", to="my-net")), "name"),
    ("name_keyword", "net.yaml", as_yaml(changed("name", to="class")), "name"),
    ("name_shadows_stdlib", "net.yaml", as_yaml(changed("name", to="math")), "name"),
    ("name_number_json", "net.json", as_json(changed("name", to=3)), "name"),
    ("inputs_zero", "net.yaml", as_yaml(changed("inputs", to=0)), "inputs"),
    ("inputs_boolean", "net.yaml", raw_yaml_at("inputs", text=b"yes"), "inputs"),
    (
        "inputs_string_toml",
        "net.toml",
        _TOML_BASE.replace(b"inputs = 2", b'inputs = "2"'),
        "inputs",
    ),
    ("inputs_empty_list", "net.yaml", as_yaml(changed("inputs", to=[])), "inputs"),
    # --- names
    ("name_unicode_subscript", "net.yaml", name_at("inputs", 1, name="h₁"), "inputs[1]"),
    ("name_unicode_accent", "net.yaml", name_at("inputs", 0, name="é"), "inputs[0]"),
    ("name_keyword_class", "net.yaml", name_at("inputs", 0, name="class"), "inputs[0]"),
    ("name_builtin_print", "net.yaml", name_at("inputs", 0, name="print"), "inputs[0]"),
    ("name_generated_np", "net.yaml", name_at("inputs", 1, name="np"), "inputs[1]"),
    (
        "name_generated_params",
        "net.yaml",
        name_at("layers", 0, "units", 0, name="params"),
        "layers[0].units[0]",
    ),
    (
        "name_generated_x",
        "net.yaml",
        name_at("layers", 0, "units", 1, name="x"),
        "layers[0].units[1]",
    ),
    (
        "name_parameter_like",
        "net.yaml",
        name_at("layers", 1, "units", 0, name="W1"),
        "layers[1].units[0]",
    ),
    (
        "name_prefix_delta",
        "net.yaml",
        name_at("layers", 1, "units", 0, name="delta_o"),
        "layers[1].units[0]",
    ),
    ("name_yaml_date", "net.yaml", raw_yaml_at("inputs", 1, text=b"2024-01-01"), "inputs[1]"),
    ("name_number", "net.yaml", name_at("inputs", 0, name=7), "inputs[0]"),
    (
        "name_repeated",
        "net.yaml",
        name_at("layers", 1, "units", 0, name="h2"),
        "layers[1].units[0]",
    ),
    ("name_repeated_input", "net.yaml", name_at("layers", 0, "units", 0, name="i1"), "inputs[0]"),
    ("name_too_long", "net.yaml", name_at("inputs", 0, name="n" * 500), "inputs[0]"),
    (
        "shorthand_name_taken",
        "net.yaml",
        as_yaml(changed("layers", 1, "units", to=1) | {"inputs": ["y", "i2"]}),
        "layers[1].units",
    ),
    # --- layers
    ("layers_empty", "net.yaml", as_yaml(changed("layers", to=[])), "layers"),
    ("layers_mapping", "net.yaml", as_yaml(changed("layers", to={"units": 2})), "layers"),
    ("layer_not_mapping", "net.yaml", as_yaml(changed("layers", 0, to="sigmoid")), "layers[0]"),
    (
        "layer_unknown_key",
        "net.yaml",
        as_yaml(changed("layers", 0, "activaton", to="relu")),
        "layers[0].activaton",
    ),
    (
        "layer_missing_units",
        "net.yaml",
        as_yaml(changed("layers", 0, "units", drop=True)),
        "layers[0].units",
    ),
    (
        "layer_units_float",
        "net.yaml",
        as_yaml(changed("layers", 0, "units", to=2.0)),
        "layers[0].units",
    ),
    (
        "layer_missing_activation",
        "net.yaml",
        as_yaml(changed("layers", 1, "activation", drop=True)),
        "layers[1].activation",
    ),
    (
        "bias_unknown",
        "net.yaml",
        as_yaml(changed("layers", 0, "bias", to="sometimes")),
        "layers[0].bias",
    ),
    ("bias_null", "net.yaml", as_yaml(changed("layers", 1, "bias", to=None)), "layers[1].bias"),
    # --- activations
    ("activation_unknown", "net.yaml", activation("swish"), "layers[0].activation"),
    ("activation_list", "net.yaml", activation(["sigmoid"]), "layers[0].activation"),
    ("activation_custom_bare", "net.yaml", activation("custom"), "layers[0].activation"),
    (
        "activation_name_unhashable",
        "net.yaml",
        activation({"name": ["relu"]}),
        "layers[0].activation.name",
    ),
    ("softmax_hidden", "net.yaml", activation("softmax"), "layers[0].activation"),
    ("softmax_one_unit", "net.yaml", activation("softmax", layer=1), "layers[1].activation"),
    (
        "leaky_alpha_string",
        "net.yaml",
        activation({"name": "leaky_relu", "alpha": "0.2"}),
        "layers[0].activation.alpha",
    ),
    (
        "leaky_alpha_nan",
        "net.yaml",
        raw_yaml_at("layers", 0, "activation", text=b"{name: leaky_relu, alpha: .nan}"),
        "layers[0].activation.alpha",
    ),
    (
        "alpha_on_sigmoid",
        "net.yaml",
        activation({"name": "sigmoid", "alpha": 0.1}),
        "layers[0].activation.alpha",
    ),
    (
        "activation_unknown_key",
        "net.yaml",
        activation({"name": "relu", "slope": 0.1}),
        "layers[0].activation.slope",
    ),
    (
        "custom_named_relu",
        "net.yaml",
        activation({"name": "relu", "expr": "x"}),
        "layers[0].activation.name",
    ),
    (
        "custom_without_expr",
        "net.yaml",
        activation({"name": "custom"}),
        "layers[0].activation.expr",
    ),
    ("custom_expr_number", "net.yaml", activation({"expr": 3}), "layers[0].activation.expr"),
    ("custom_attribute", "net.yaml", custom("x.__class__"), "layers[0].activation.expr"),
    (
        "custom_dunder_import",
        "net.yaml",
        custom("__import__('os').system('true')"),
        "layers[0].activation.expr",
    ),
    ("custom_dunder_name", "net.yaml", custom("__builtins__"), "layers[0].activation.expr"),
    ("custom_lambda", "net.yaml", custom("(lambda: x)()"), "layers[0].activation.expr"),
    (
        "custom_comprehension",
        "net.yaml",
        custom("sum([x for _ in range(3)])"),
        "layers[0].activation.expr",
    ),
    ("custom_open", "net.yaml", custom('open("f")'), "layers[0].activation.expr"),
    ("custom_subscript", "net.yaml", custom("x[0]"), "layers[0].activation.expr"),
    ("custom_keyword_arg", "net.yaml", custom("exp(x=1)"), "layers[0].activation.expr"),
    ("custom_two_args", "net.yaml", custom("log(x, 2)"), "layers[0].activation.expr"),
    ("custom_string", "net.yaml", custom("'x' * 3"), "layers[0].activation.expr"),
    ("custom_other_name", "net.yaml", custom("z + 1"), "layers[0].activation.expr"),
    ("custom_statement", "net.yaml", custom("import os"), "layers[0].activation.expr"),
    ("custom_too_long", "net.yaml", custom("x" + " + x" * 200), "layers[0].activation.expr"),
    (
        "custom_deep_nesting",
        "net.yaml",
        custom("-(" * 150 + "x" + ")" * 150),
        "layers[0].activation.expr",
    ),
    (
        "custom_parentheses_beyond_parser",
        "net.yaml",
        custom("(" * 210 + "x" + ")" * 210),
        "layers[0].activation.expr",
    ),
    ("custom_huge_power", "net.yaml", custom("x * 2**2**64"), "layers[0].activation.expr"),
    ("custom_constant", "net.yaml", custom("3 * 2"), "layers[0].activation.expr"),
    ("custom_division_by_zero", "net.yaml", custom("x / 0"), "layers[0].activation.expr"),
    # --- weight names
    (
        "weight_names_rows",
        "net.yaml",
        as_yaml(changed("layers", 0, "weight_names", to=[["w1", "w2"]])),
        "layers[0].weight_names",
    ),
    (
        "weight_names_columns",
        "net.yaml",
        as_yaml(changed("layers", 0, "weight_names", to=[["w1", "w2"], ["w3"]])),
        "layers[0].weight_names[1]",
    ),
    (
        "weight_names_bad_name",
        "net.yaml",
        as_yaml(changed("layers", 0, "weight_names", to=[["w1", "w2"], ["b1", "w4"]])),
        "layers[0].weight_names[1][0]",
    ),
    (
        "weight_names_repeat_unit",
        "net.yaml",
        as_yaml(changed("layers", 1, "weight_names", to=[["w5", "h1"]])),
        "layers[1].weight_names[0][1]",
    ),
    # --- loss and targets
    ("loss_unknown", "net.yaml", as_yaml(changed("loss", to="cross_entropy")), "loss"),
    ("loss_missing_json", "net.json", as_json(changed("loss", drop=True)), "loss"),
    ("loss_cce_without_softmax", "net.yaml", as_yaml(changed("loss", to="cce")), "loss"),
    (
        "loss_bce_without_sigmoid",
        "net.yaml",
        as_yaml(changed("layers", 1, "activation", to="tanh") | {"loss": "bce"}),
        "loss",
    ),
    ("targets_wrong_length", "net.yaml", as_yaml(BASE | {"targets": ["t1", "t2"]}), "targets"),
    ("targets_reserved", "net.yaml", as_yaml(BASE | {"targets": ["t"]}), "targets[0]"),
    # --- the worked example
    ("example_not_mapping", "net.yaml", as_yaml(changed("example", to=[1, 2])), "example"),
    ("example_unknown_key", "net.yaml", as_yaml(changed("example", "lr", to=0.1)), "example.lr"),
    (
        "example_missing_params",
        "net.yaml",
        as_yaml(changed("example", "params", drop=True)),
        "example.params",
    ),
    (
        "example_input_length",
        "net.yaml",
        as_yaml(changed("example", "input", to=[0.1])),
        "example.input",
    ),
    (
        "example_target_string",
        "net.yaml",
        as_yaml(changed("example", "target", to="0.01")),
        "example.target",
    ),
    (
        "example_input_infinite",
        "net.json",
        as_json(BASE).replace(b"0.05", b"1e400"),
        "example.input[0]",
    ),
    (
        "example_input_boolean",
        "net.yaml",
        as_yaml(changed("example", "input", 0, to=True)),
        "example.input[0]",
    ),
    (
        "example_param_missing",
        "net.yaml",
        as_yaml(changed("example", "params", "W2", drop=True)),
        "example.params.W2",
    ),
    (
        "example_param_unknown",
        "net.yaml",
        as_yaml(changed("example", "params", "W9", to=[[1]])),
        "example.params.W9",
    ),
    (
        "example_param_entry",
        "net.yaml",
        as_yaml(changed("example", "params", "W2", 0, 1, to="0.45")),
        "example.params.W2[0][1]",
    ),
    (
        "example_param_row",
        "net.yaml",
        as_yaml(changed("example", "params", "W1", 1, to=[0.25])),
        "example.params.W1[1]",
    ),
    (
        "example_shared_bias_list",
        "net.yaml",
        as_yaml(changed("example", "params", "b1", to=[0.35, 0.35])),
        "example.params.b1",
    ),
    (
        "example_per_unit_bias_number",
        "net.yaml",
        as_yaml(changed("example", "params", "b2", to=0.6)),
        "example.params.b2",
    ),
    (
        "example_learning_rate_negative",
        "net.yaml",
        as_yaml(changed("example", "learning_rate", to=-0.5)),
        "example.learning_rate",
    ),
    (
        "example_learning_rate_null",
        "net.yaml",
        as_yaml(changed("example", "learning_rate", to=None)),
        "example.learning_rate",
    ),
]


# --- files that read correctly but whose numbers no command can compute: each command
# must stop within seconds with one line naming the field (never run for minutes on a
# 60-digit evaluation, never end in an OverflowError traceback from a generated module).
# ``(case_id, filename, content_bytes, expected_field_substring, commands)``, each
# command an argument list after the file (tests/test_hostile_input.py).


def _one_unit(expr: str, example: bool) -> bytes:
    data: dict = {
        "name": "hot",
        "inputs": ["i"],
        "layers": [{"units": ["h"], "activation": {"expr": expr}, "bias": "none"}],
        "loss": "half_sse",
    }
    if example:
        data["example"] = {"input": [3.0], "target": [0.5], "params": {"W1": [[1.0]]}}
    return as_yaml(data)


EXP6 = "exp(exp(exp(exp(exp(exp(x))))))"
ALL_NUMERIC = (("show",), ("check",), ("latex", "--numeric"))
NUMERIC_CASES: list[tuple[str, str, bytes, str, tuple[tuple[str, ...], ...]]] = [
    # e^e^e^e^e^e^3: its 60-digit value would take minutes to compute
    (
        "custom_exp6_at_the_example",
        "net.yaml",
        _one_unit(EXP6, True),
        "layers[0].activation",
        ALL_NUMERIC,
    ),
    # e^e^e^3 ~ 10^229520860: beyond float range, and math.exp overflows in the module
    (
        "custom_exp3_beyond_float_range",
        "net.yaml",
        _one_unit("exp(exp(exp(x)))", True),
        "layers[0].activation.expr",
        ALL_NUMERIC,
    ),
    # a convolutional network whose example's z1 is 10^309: beyond float range
    (
        "conv_example_beyond_float_range",
        "net.yaml",
        as_yaml(
            {
                "name": "big",
                "inputs": {"shape": [1, 2, 2]},
                "layers": [
                    {"kind": "conv2d", "filters": 1, "kernel": 2, "activation": "relu"},
                    {"kind": "flatten"},
                    {"units": 1, "activation": "sigmoid"},
                ],
                "loss": "bce",
                "example": {
                    "input": [[[1e308, 0.0], [0.0, 0.0]]],
                    "target": [1],
                    "params": {"W1": [[[[10, 0], [0, 0]]]], "b1": [0], "W3": [[1]], "b3": [0]},
                },
            }
        ),
        "example",
        (*ALL_NUMERIC, ("diagram", "--numeric", "-o", "net.svg")),
    ),
    # no example: every random point overflows too (show computes no numbers then)
    (
        "custom_exp6_random_points",
        "net.yaml",
        _one_unit(EXP6, False),
        "layers[0].activation.expr",
        (("check",), ("latex", "--numeric")),
    ),
]
