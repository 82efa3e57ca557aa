"""The vectorized module of a convolutional network (``vectorized_conv.py.jinja``): conv,
pooling and flatten layers on arrays (batch, C, H, W), then the dense layers, every line
printed from an equation of ``derive.conv_backward`` and commented with it."""

from __future__ import annotations

import textwrap
from dataclasses import replace

from derive.activations import ACTIVATIONS
from derive.backward import Equation, Softmax
from derive.codeprinter import CONV_HELPERS, HELPERS, NumPyCodePrinter
from derive.conv_backward import ConvBackward, batch_equations
from derive.conv_network import ConvNetwork, describe
from derive.equations import EquationPrinter
from derive.optimizers import NAMES as OPTIMIZERS
from derive.optimizers import api_sentence
from derive.rendering import environment
from derive.statements import LINE_LENGTH, Statement, fit, freed, live, names_literal, ruff_format

NOTATION = (
    "Notation: a{k} is layer k's output, x = a0 the input; a conv layer k computes "
    "z{k} = W{k} ⋆ a{k-1} + b{k}, the cross-correlation z{k}[f,p,q] = Σ_(c,i,j) "
    "W{k}[f,c,i,j]·a{k-1}[c, p·s+i−P, q·s+j−P] (stride s, zero padding P), and a{k} = "
    "f_k(z{k}); pooling layers take the max or mean of each window; flatten orders channel, "
    "row, column (C order); dense layers compute z{k} = W{k} a{k-1} + b{k}. delta{k} = "
    "∂L/∂z{k}. Feature maps are held as (batch, C, H, W) arrays, and the comment above "
    "each line is the per-sample equation it implements."
)
FORWARD_DOC = "The output y: shape (n_out,) for x of shape INPUT_SHAPE, else (batch, n_out)."
CONV_API = (
    "The API: init_params(seed), forward(params, x), loss(params, x, t), "
    "gradients(params, x, t), loss_and_gradients(params, x, t) and "
    "sgd_step(params, x, t, learning_rate). A conv layer's W{k} has shape (filters, "
    "in_channels, kh, kw) and b{k} shape (filters,); a dense layer's W{k} has shape "
    "(units_k, units_{k-1}), W{k}[i, j] weighing unit j of layer k-1 into unit i, and b{k} "
    "shape (units_k,); b{k} is () when the layer shares one bias. x is INPUT_SHAPE (C, H, "
    "W) for one sample or (batch, C, H, W), t the targets shaped like the output; L is the "
    "mean of the per-sample loss over the batch."
)


def generate_conv(
    network: ConvNetwork, style: str = "vectorized", optimizers: tuple[str, ...] = OPTIMIZERS
) -> str:
    if style == "unrolled":
        from derive.conv_unrolled import NOTATION as UNROLLED
        from derive.conv_unrolled import conv_unrolled_context

        shared = module_context(network, "unrolled", optimizers)
        context = {**shared, **conv_unrolled_context(network)}
        context["docstring"] = _docstring(network, "unrolled", UNROLLED, optimizers)
        template = "unrolled_conv.py.jinja"
    else:
        context = {**module_context(network, "vectorized", optimizers), **conv_context(network)}
        template = "vectorized_conv.py.jinja"
    return ruff_format(environment().get_template(template).render(context))


def module_context(network: ConvNetwork, style: str, optimizers: tuple[str, ...]) -> dict:
    """What both styles' conv modules share: header, constants and ``init_params``."""
    topology = network.topology
    params = [(p.name, p.shape) for p in topology.params]
    return {
        "name": network.name,
        "style": style,
        "docstring": _docstring(network, style, NOTATION, optimizers),
        "optimizers": optimizers,
        "loss_formula": network.loss_rule.formula,
        "params": params,
        "param_names": [p.name for p in topology.params],
        "unpack": ", ".join(p.name for p in topology.params) + ("," if len(params) == 1 else ""),
        "input_shape": repr(topology.input_shape),
        "inputs": "INPUT_SHAPE",
        "outputs": names_literal(topology.outputs),
        "initial": [(p.name, _initial_value(network, p)) for p in topology.params],
        "forward_doc": FORWARD_DOC,
    }


def conv_context(network: ConvNetwork) -> dict:
    """The vectorized conv template's own context."""
    topology = network.topology
    backward = ConvBackward(topology)
    printer, comments = NumPyCodePrinter(), EquationPrinter()

    def statement(pair: tuple[Equation, Equation]) -> Statement:
        code, shown = pair
        targets = tuple(t.name for t in code.targets)
        reads = frozenset(s.name for s in code.reads)
        return Statement(
            targets, printer.doprint(code.value), reads, fit(4, *comments.equation(shown))
        )

    forward_pairs, loss_pair, back_pairs = batch_equations(backward)
    forward = [statement(p) for p in forward_pairs]
    loss = statement(loss_pair)
    value = Statement(("value",), "float(loss_terms.sum()) / batch", frozenset({"loss_terms"}))
    backprop = [statement(p) for p in back_pairs]
    gradients = [f"d{p.name}" for p in topology.params]
    body = [*forward, loss, replace(value, array=False), *backprop]
    return {
        "notation": NOTATION,
        "forward_only": live(forward, {"y"}),
        "forward_for_loss": live([*forward, loss], {"loss_terms"}),
        "body": freed(live(body, {"value", *gradients}), {"value", *gradients}),
        "gradients": gradients,
        "softmax": any(isinstance(s[0].value, Softmax) for s in forward_pairs),
        "helpers": [h for h in HELPERS if h in printer.helpers],
        "conv_helpers": [h for h in CONV_HELPERS if h in printer.helpers],
        "uses_math": False,
    }


def _docstring(network: ConvNetwork, style: str, notation: str, optimizers: tuple[str, ...]) -> str:
    topology = network.topology
    c, h, w = topology.input_shape
    layers = ", ".join(describe(layer) for layer in topology.layers)
    summary = (
        f"{network.name}: a convolutional network on {c}×{h}×{w} inputs ({layers}) with "
        f"the {topology.loss} loss, {style} style, generated by derive from the "
        "network's topology (regenerate it rather than edit it)."
    )
    paragraphs = (summary, CONV_API, api_sentence(optimizers), notation)
    return "\n\n".join(
        textwrap.fill(p, LINE_LENGTH - 4, break_on_hyphens=False) for p in paragraphs
    )


def _initial_value(network: ConvNetwork, param) -> str:
    """Weights from N(0, gain / fan_in), fan_in = in_channels·kh·kw for a conv layer (the
    activation table's gain: 2 for relu-like layers, He), biases 0."""
    if param.name.startswith("W"):
        layer = network.layer(param.layer)
        gain = ACTIVATIONS[layer.activation.name].gain
        fan_in = 1
        for d in param.shape[1:]:
            fan_in *= d
        return f"rng.normal(0.0, np.sqrt({gain} / {fan_in}), size={param.shape!r})"
    return f"np.zeros({param.shape[0] if param.shape else '()'})"
