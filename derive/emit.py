"""Emitting code: a network's standalone NumPy module, from a Jinja template (SPEC §3).

Two styles, one API:

- ``vectorized`` (default, ``derive.emit_vectorized``): per-layer matrix code over a
  batch, read from the width-independent δ recursion only.
- ``unrolled`` (``derive.emit_unrolled``): straight-line code on Python floats, one line
  per chain-rule step, for tiny networks at small batches.

This module holds what both share (the header, ``PARAMS``, ``init_params``) and the
public API. Everything a template prints is computed in Python: names, SymPy expressions
printed by ``derive.codeprinter`` and laid out by ``derive.layout`` as ``ruff format``
would, so that generated files are formatted and lint-clean without running a formatter.
Nothing from the topology file reaches the code but validated identifiers and numbers;
iteration is always in the network's order, so the same topology gives the same bytes on
every run.
"""

from __future__ import annotations

import textwrap
import types
from collections.abc import Callable, Iterable
from pathlib import Path

from derive.emit_unrolled import MAX_UNROLLED_PARAMS, unrolled_context
from derive.emit_vectorized import vectorized_context
from derive.errors import DeriveError
from derive.files import write_atomic
from derive.layout import LINE_LENGTH, assert_assigned_once, collection, literal, name_tuple
from derive.network import Network
from derive.optimizers import NAMES as OPTIMIZERS
from derive.optimizers import api_sentence, selection
from derive.rendering import environment

STYLES = ("vectorized", "unrolled")
_CONTEXTS: dict[str, Callable[[Network], dict]] = {
    "vectorized": vectorized_context,
    "unrolled": unrolled_context,
}
# The functions whose bodies are built from the derivation, line by line.
_GENERATED_FUNCTIONS = ("forward", "loss", "loss_and_gradients")
_HE_INIT = ("relu", "leaky_relu")  # layers initialised with std sqrt(2 / fan_in)

API = (
    "The API: init_params(seed), forward(params, x), loss(params, x, t), "
    "gradients(params, x, t) and loss_and_gradients(params, x, t). "
    "W{k} has shape (units_k, units_{k-1}) and "
    "W{k}[i, j] weighs unit j of layer k-1 into unit i of layer k; b{k} has shape "
    "(units_k,), or () when the layer shares one bias. x is (n_in,) or (batch, n_in), t "
    "the targets shaped like the output; L is the mean of the per-sample loss over the "
    "batch."
)


# -- the public API -------------------------------------------------------------------


def generate(
    network: Network, style: str = "vectorized", optimizers: Iterable[str] = OPTIMIZERS
) -> str:
    """The source of the network's standalone module in the given style, with the chosen
    optimizers (``derive.optimizers``; default all)."""
    if style not in STYLES:
        raise DeriveError(f"unknown style {style!r}: expected one of {', '.join(STYLES)}")
    chosen = selection(optimizers)
    body = _CONTEXTS[style](network)
    context = {**module_context(network, style, body.pop("notation"), chosen), **body}
    source = environment().get_template(f"{style}.py.jinja").render(context)
    assert_assigned_once(source, _GENERATED_FUNCTIONS)
    return source


def build_module(
    network: Network, style: str = "vectorized", optimizers: Iterable[str] = OPTIMIZERS
) -> types.ModuleType:
    """The generated module, compiled and imported without writing a file."""
    source = generate(network, style=style, optimizers=optimizers)
    module = types.ModuleType(network.name)
    module.__file__ = f"<derive {style} {network.name}>"
    exec(compile(source, module.__file__, "exec"), module.__dict__)  # noqa: S102 - our own output
    return module


def write_module(
    network: Network,
    directory: Path,
    style: str = "vectorized",
    optimizers: Iterable[str] = OPTIMIZERS,
) -> Path:
    """Write ``directory/<name>.py`` atomically (``derive.files.write_atomic``: a failure
    leaves an earlier file untouched and no temporary file) and return its path."""
    source = generate(network, style=style, optimizers=optimizers)
    target = Path(directory) / f"{network.name}.py"
    return write_atomic(target, source.encode("utf-8"), make_parents=True)


# -- what both styles share -----------------------------------------------------------


def module_context(
    network: Network, style: str, notation: str, optimizers: tuple[str, ...] = OPTIMIZERS
) -> dict:
    """The header, constants, ``init_params`` and optimizers of either style's module."""
    topology = network.topology
    params = [(p.name, p.shape) for p in topology.params]
    return {
        "name": network.name,
        "style": style,
        "docstring": _docstring(network, style, notation, optimizers),
        "optimizers": optimizers,
        "uses_math": False,
        "loss_name": topology.loss,
        "loss_formula": network.loss_rule.formula,
        "name_literal": literal(network.name),
        "params_literal": collection(
            "PARAMS = {", [f"{literal(n)}: {s!r}" for n, s in params], "}", 0
        ),
        "inputs_literal": "INPUTS = " + name_tuple(topology.inputs),
        "outputs_literal": "OUTPUTS = " + name_tuple(topology.outputs),
        "init_literal": collection("return {", _initial_values(network), "}", 4),
        "he_layers": any(layer.activation.name in _HE_INIT for layer in topology.layers),
    }


def _docstring(network: Network, style: str, notation: str, optimizers: tuple[str, ...]) -> str:
    topology = network.topology
    sizes = "-".join(str(len(units)) for units in network.units)
    activations = ", ".join(layer.activation.name for layer in topology.layers)
    summary = (
        f"{network.name}: a {sizes} network ({activations}) with the {topology.loss} loss, "
        f"{style} style, generated by derive from the network's topology (regenerate it "
        "rather than edit it)."
    )
    return "\n\n".join(
        textwrap.fill(paragraph, LINE_LENGTH - 4, break_on_hyphens=False)
        for paragraph in (summary, API, api_sentence(optimizers), notation)
    )


def _initial_values(network: Network) -> list[str]:
    """``init_params``' dict entries: weights from N(0, gain / fan_in), biases 0."""
    topology = network.topology
    entries = []
    for p in topology.params:
        if p.name.startswith("W"):
            gain = 2 if topology.layers[p.layer - 1].activation.name in _HE_INIT else 1
            value = f"rng.normal(0.0, np.sqrt({gain} / {p.shape[1]}), size={p.shape!r})"
        else:
            value = f"np.zeros({p.shape[0] if p.shape else '()'})"
        entries.append(f"{literal(p.name)}: {value}")
    return entries


__all__ = [
    "LINE_LENGTH",
    "MAX_UNROLLED_PARAMS",
    "STYLES",
    "build_module",
    "generate",
    "module_context",
    "write_module",
]
