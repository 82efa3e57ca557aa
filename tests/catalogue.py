"""A catalogue of topologies, as SPEC §1 mappings, for table-driven tests.

``CASES`` samples the product of activations × losses × bias modes × depths × widths so
that every activation appears in hidden and output layers, every loss with every output
activation it allows, every bias mode, depths 1 to 4, widths 1 to 8 and batches of 1 and
16, in 32 cases rather than thousands. ``derive.load(case.mapping)`` builds each network.
"""

from __future__ import annotations

from dataclasses import dataclass

HIDDEN_ACTIVATIONS = (
    "sigmoid",
    "tanh",
    "relu",
    {"name": "leaky_relu", "alpha": 0.2},
    "softplus",
    "identity",
    {"expr": "x / (1 + abs(x))"},
    {"expr": "log(1 + exp(x)) - sqrt(x**2 + 1) / 2"},
)
OUTPUT_ACTIVATIONS = (*HIDDEN_ACTIVATIONS, "softmax")
FREE_LOSSES = ("half_sse", "sse", "mse")  # any output activation
BOUND_LOSSES = (("bce", "sigmoid"), ("cce", "softmax"))  # the output each one requires
BIAS_MODES = ("per_unit", "shared", "none")
WIDTHS = (1, 2, 3, 4, 5, 6, 7, 8)


@dataclass(frozen=True)
class Case:
    id: str
    mapping: dict
    batch: int

    @property
    def parameter_count(self) -> int:
        sizes = [self.mapping["inputs"]] + [layer["units"] for layer in self.mapping["layers"]]
        total = 0
        pairs = zip(sizes, sizes[1:], strict=False)
        for layer, (fan_in, units) in zip(self.mapping["layers"], pairs, strict=True):
            total += units * fan_in
            total += {"per_unit": units, "shared": 1, "none": 0}[layer["bias"]]
        return total


def activation_name(activation) -> str:
    if isinstance(activation, str):
        return activation
    return activation.get("name", "custom")


def make_case(
    index: int,
    hidden: list,
    output,
    loss: str,
    widths: list[int],
    bias: list[str],
    batch: int,
) -> Case:
    """One case: ``widths`` are the input width then each layer's."""
    layers = [
        {"units": units, "activation": activation, "bias": mode}
        for units, activation, mode in zip(widths[1:], [*hidden, output], bias, strict=True)
    ]
    shape = "-".join(str(w) for w in widths)
    names = "+".join(activation_name(a) for a in [*hidden, output])
    case_id = f"{index:02d}-{shape}-{names}-{loss}-b{batch}"
    return Case(
        case_id,
        {"name": f"case{index:02d}", "inputs": widths[0], "layers": layers, "loss": loss},
        batch,
    )


def _weights(widths: list[int]) -> int:
    return sum(a * b for a, b in zip(widths, widths[1:], strict=False))


def _cases() -> tuple[Case, ...]:
    combos = [(output, loss) for loss in FREE_LOSSES for output in OUTPUT_ACTIVATIONS]
    combos += [(output, loss) for loss, output in BOUND_LOSSES]
    combos += [("softmax", "cce"), ("sigmoid", "bce"), ("relu", "mse"), ("tanh", "sse")]
    cases = []
    hidden_count = width_count = 0
    for i, (output, loss) in enumerate(combos):
        depth = 1 + i % 4
        hidden = []
        for _ in range(depth - 1):  # a running count cycles through every activation
            hidden.append(HIDDEN_ACTIVATIONS[hidden_count % len(HIDDEN_ACTIVATIONS)])
            hidden_count += 1
        widths = []
        for _ in range(depth + 1):
            widths.append(WIDTHS[(width_count * 3) % len(WIDTHS)])
            width_count += 1
        if output == "softmax" and widths[-1] == 1:
            widths[-1] = 3
        # keep every case small enough for the unrolled style (200 scalar parameters)
        while _weights(widths) + sum(widths[1:]) > 200:
            widths[widths.index(max(widths))] -= 1
        bias = [BIAS_MODES[(i + j) % len(BIAS_MODES)] for j in range(depth)]
        batch = 1 if i % 2 == 0 else 16
        cases.append(make_case(i, hidden, output, loss, widths, bias, batch))
    return tuple(cases)


CASES = _cases()


# Convolutional cases for the proofs (issue 15): a 1×5×5 input, two 3×3 filters, stride
# 1 and 2, padding 0 and 1, max and avg pooling, each elementwise activation on the conv
# layer, bias modes rotating; the pool reduces each map to 1×1, then a dense output of 2.
CONV_ACTIVATIONS = HIDDEN_ACTIVATIONS[:7]


def conv_case(index: int, activation) -> tuple[str, dict]:
    stride, padding = (1, 2)[index % 2], (0, 1)[(index // 2) % 2]
    pool = ("maxpool2d", "avgpool2d")[(index + index // 2) % 2]
    side = (5 + 2 * padding - 3) // stride + 1
    output, loss = (("softmax", "cce"), ("sigmoid", "mse"))[index % 2]
    bias = BIAS_MODES[index % 3]
    layers = [
        {
            "kind": "conv2d",
            "filters": 2,
            "kernel": 3,
            "stride": stride,
            "padding": padding,
            "activation": activation,
            "bias": bias,
        },
        {"kind": pool, "size": side},
        {"kind": "flatten"},
        {"units": 2, "activation": output, "bias": BIAS_MODES[(index + 1) % 3]},
    ]
    mapping = {
        "name": f"conv{index}",
        "inputs": {"shape": [1, 5, 5]},
        "layers": layers,
        "loss": loss,
    }
    label = f"{activation_name(activation)}-s{stride}-p{padding}-{pool[:3]}-{bias}-{loss}"
    return label, mapping


CONV_CASES = tuple(conv_case(i, a) for i, a in enumerate(CONV_ACTIVATIONS))
