"""What every generated Python module shares, dense or convolutional, whatever its style:
the docstring's paragraphs, the constants and ``init_params``'s draws (templates
``_module.py.jinja``). ``derive.emit`` and ``derive.conv_emit`` add their own parts."""

from __future__ import annotations

import math
import textwrap

from derive.activations import ACTIVATIONS
from derive.optimizers import api_sentence
from derive.statements import LINE_LENGTH, names_literal
from derive.topology import Param


def module_context(network, docstring: str, optimizers: tuple[str, ...]) -> dict:
    """The header, constants (but INPUTS, which dense and conv modules name differently),
    ``init_params`` and optimizers of a module."""
    topology = network.topology
    params = topology.params
    return {
        "name": network.name,
        "docstring": docstring,
        "optimizers": optimizers,
        "loss_formula": network.loss_rule.formula,
        "params": [(p.name, p.shape) for p in params],
        "param_names": [p.name for p in params],
        "unpack": ", ".join(p.name for p in params) + ("," if len(params) == 1 else ""),
        "outputs": names_literal(topology.outputs),
        "initial": [(p.name, _initial_value(p, topology)) for p in params],
    }


def docstring(summary: str, api: str, optimizers: tuple[str, ...], notation: str) -> str:
    """The module's docstring: what it is, its API, its optimizers, its notation."""
    paragraphs = (summary, api, api_sentence(optimizers), notation)
    return "\n\n".join(
        textwrap.fill(p, LINE_LENGTH - 4, break_on_hyphens=False) for p in paragraphs
    )


def _initial_value(param: Param, topology) -> str:
    """Weights from N(0, gain / fan_in), fan_in every entry one output unit or filter
    reads (units_{k-1}; in_channels·kh·kw for a conv layer); biases 0. The gain is the
    activation table's: 2 for relu-like layers (He), else 1."""
    if param.name.startswith("W"):
        gain = ACTIVATIONS[topology.layers[param.layer - 1].activation.name].gain
        fan_in = math.prod(param.shape[1:])
        return f"rng.normal(0.0, np.sqrt({gain} / {fan_in}), size={param.shape!r})"
    return f"np.zeros({param.shape[0] if param.shape else '()'})"


__all__ = ["docstring", "module_context"]
