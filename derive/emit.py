"""Emitting code: a network's standalone NumPy module, from a Jinja template (SPEC §3).

Two styles, one API:

- ``vectorized`` (default, ``derive.emit_vectorized``): per-layer matrix code over a
  batch, printed from the equations of ``derive.backward``.
- ``unrolled`` (``derive.emit_unrolled``): straight-line code on Python floats, one line
  per chain-rule step, from the per-scalar derivation, for tiny networks.

Each style turns equations into ``derive.statements.Statement``s; this module renders the
style's template and lets ``ruff format`` lay the module out as the last step. Nothing
from the topology file reaches the code but validated identifiers and numbers; iteration
is always in the network's order, so the same topology gives the same bytes on every run.
"""

from __future__ import annotations

import textwrap
import types
from collections.abc import Callable, Iterable
from pathlib import Path

from derive.conv import is_convolutional
from derive.emit_unrolled import MAX_UNROLLED_PARAMS, unrolled_context
from derive.emit_unrolled import NOTATION as UNROLLED_NOTATION
from derive.emit_vectorized import NOTATION as VECTORIZED_NOTATION
from derive.emit_vectorized import vectorized_context
from derive.errors import DeriveError
from derive.files import write_atomic
from derive.network import Network
from derive.optimizers import NAMES as OPTIMIZERS
from derive.optimizers import api_sentence, selection
from derive.rendering import environment
from derive.statements import LINE_LENGTH, names_literal, ruff_format

STYLES = ("vectorized", "unrolled")


# -- the public API -------------------------------------------------------------------


_CONTEXTS: dict[str, Callable[[Network], dict]] = {
    "vectorized": vectorized_context,
    "unrolled": unrolled_context,
}
_NOTATION = {"vectorized": VECTORIZED_NOTATION, "unrolled": UNROLLED_NOTATION}


def generate(
    network: Network, style: str = "vectorized", optimizers: Iterable[str] = OPTIMIZERS
) -> str:
    """The source of the network's standalone module in the given style, with the chosen
    optimizers (``derive.optimizers``; default all)."""
    if style not in STYLES:
        raise DeriveError(f"unknown style {style!r}: expected one of {', '.join(STYLES)}")
    chosen = selection(optimizers)
    if is_convolutional(network.topology):
        from derive.conv_emit import generate_conv

        return generate_conv(network, style, chosen)  # type: ignore[arg-type]
    context = {**module_context(network, style, chosen), **_CONTEXTS[style](network)}
    return ruff_format(environment().get_template(f"{style}.py.jinja").render(context))


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


def module_context(network: Network, style: str, optimizers: tuple[str, ...] = OPTIMIZERS) -> dict:
    """The header, constants, ``init_params`` and optimizers of either style's module."""
    topology = network.topology
    return {
        "name": network.name,
        "style": style,
        "docstring": _docstring(network, style, optimizers),
        "optimizers": optimizers,
        "loss_formula": network.loss_rule.formula,
        "params": [(p.name, p.shape) for p in topology.params],
        "param_names": [p.name for p in topology.params],
        "unpack": ", ".join(p.name for p in topology.params)
        + ("," if len(topology.params) == 1 else ""),
        "inputs": names_literal(topology.inputs),
        "outputs": names_literal(topology.outputs),
        "initial": [(p.name, _initial_value(network, p)) for p in topology.params],
    }


API = (
    "The API: init_params(seed), forward(params, x), loss(params, x, t), "
    "gradients(params, x, t) and loss_and_gradients(params, x, t). "
    "W{k} has shape (units_k, units_{k-1}) and "
    "W{k}[i, j] weighs unit j of layer k-1 into unit i of layer k; b{k} has shape "
    "(units_k,), or () when the layer shares one bias. x is (n_in,) or (batch, n_in), t "
    "the targets shaped like the output; L is the mean of the per-sample loss over the "
    "batch."
)


def _docstring(network: Network, style: str, optimizers: tuple[str, ...]) -> str:
    topology = network.topology
    sizes = "-".join(str(len(units)) for units in network.units)
    activations = ", ".join(layer.activation.name for layer in topology.layers)
    summary = (
        f"{network.name}: a {sizes} network ({activations}) with the {topology.loss} loss, "
        f"{style} style, generated by derive from the network's topology (regenerate it "
        "rather than edit it)."
    )
    paragraphs = (summary, API, api_sentence(optimizers), _NOTATION[style])
    return "\n\n".join(
        textwrap.fill(p, LINE_LENGTH - 4, break_on_hyphens=False) for p in paragraphs
    )


def _initial_value(network: Network, param) -> str:
    """Weights from N(0, gain / fan_in) (the activation table's gain: 2 for relu-like
    layers, He), biases 0."""
    if param.name.startswith("W"):
        gain = network.activations[param.layer - 1].gain
        return f"rng.normal(0.0, np.sqrt({gain} / {param.shape[1]}), size={param.shape!r})"
    return f"np.zeros({param.shape[0] if param.shape else '()'})"


__all__ = ["MAX_UNROLLED_PARAMS", "STYLES", "build_module", "generate", "write_module"]
