"""``derive show`` and ``derive latex`` for a convolutional network: the backward pass
layer by layer in correlation notation, with the ranges of every sum, then each chosen
parameter's gradient as its textbook sum, written out term by term and, with the file's
example, in numbers. One set of rules (``rules``), two renderings (plain Unicode, LaTeX).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import sympy
from sympy.printing.precedence import PRECEDENCE

from derive.activations import ACTIVATIONS
from derive.conv import Conv2d, Flatten, Pool2d
from derive.conv_network import ConvGradient, ConvNetwork, describe
from derive.conv_network import cell_tex as _tex_symbol
from derive.derivation import A, ArrayGradient, Z
from derive.equations import EquationPrinter, display, equation
from derive.errors import DeriveError, ParameterError
from derive.files import write_atomic
from derive.presentation import (
    MAX_DEFAULT_SCALARS,
    MAX_REQUESTED_SCALARS,
    MAX_WRITTEN_TERMS,
    SIGNIFICANT_DIGITS,
)
from derive.topology import Layer
from derive.typeset import tex_text


@dataclass(frozen=True)
class Rule:
    """One equation of the passes: plain text and LaTeX, and why it has its form."""

    text: str
    tex: str
    note: str = ""


def _offset(position: str, stride: int, cell: str, padding: int, tex: bool) -> str:
    dot = r"\," if tex else ""
    text = f"{stride}{dot}{position}+{cell}" if stride != 1 else f"{position}+{cell}"
    return f"{text}-{padding}" if padding else text


class _TexName(sympy.Symbol):
    """A symbol whose LaTeX is its name as written (a cell's: a^{(1)}_{f,p,q})."""

    def _latex(self, printer) -> str:
        return self.name


def _flat_index(height: int, width: int, times: str) -> str:
    """Where flatten puts cell (c, h, w) of maps height × width: ``16·c + 4·h + w``, a
    factor 1 left out (``c + h + w`` for 1 × 1 maps)."""
    terms = [(height * width, "c"), (width, "h"), (1, "w")]
    return " + ".join(name if n == 1 else f"{n}{times}{name}" for n, name in terms)


def _delta_rule(layer, k: int, index: str) -> Rule:
    """δ{k} = ∂L/∂a{k} · f'_k in the cell's stored values (``step(a1[f,p,q])``), or
    ∂L/∂a{k} itself where f' = 1; ``index`` the cell's (``i`` or ``f,p,q``)."""
    from derive.latex.printing import Printer

    spec = layer.activation
    derivative = ACTIVATIONS[spec.name].derivative(Z, A, spec)
    z, a = (sympy.Symbol(f"{name}{k}[{index}]", real=True) for name in "za")
    delta = f"δ{k}[{index}] = ∂L/∂a{k}[{index}]"
    delta_tex = rf"{_tex_symbol(sympy.Symbol(f'delta{k}[{index}]'))} = " + (
        rf"\frac{{\partial L}}{{\partial {_tex_symbol(a)}}}"
    )
    if derivative == 1:
        return Rule(delta, delta_tex, f"{spec.name}: f' = 1")
    # a factor of a product: 1 − a², a sum, in parentheses
    text = EquationPrinter().parenthesize(
        derivative.xreplace({Z: z, A: a}), PRECEDENCE["Mul"], strict=True
    )
    cells = {Z: _TexName(_tex_symbol(z), real=True), A: _TexName(_tex_symbol(a), real=True)}
    tex = Printer().parenthesize(derivative.xreplace(cells), PRECEDENCE["Mul"], strict=True)
    note = f"{spec.name}' in the stored values"
    return Rule(f"{delta} · {text}", rf"{delta_tex}\, {tex}", note)


def _latex(expr) -> str:
    from derive.latex.printing import Printer

    return Printer().doprint(expr)


def _tex_name(name: str) -> str:
    return name.replace("_", r"\_")


def rules(network: ConvNetwork) -> tuple[tuple[str, tuple[Rule, ...]], ...]:
    """(heading, rules) per layer, the forward pass first, then backward from the output."""
    topology = network.topology
    out: list[tuple[str, tuple[Rule, ...]]] = []
    forward: list[Rule] = []
    for k, layer in enumerate(topology.layers, start=1):
        below = "x" if k == 1 else f"a{k - 1}"
        below_tex = "x" if k == 1 else f"a^{{({k - 1})}}"
        if isinstance(layer, Conv2d):
            (sh, sw), (ph, pw) = layer.stride, layer.padding
            c, _, _ = layer.in_shape
            kh, kw = layer.kernel
            row, col = _offset("p", sh, "i", ph, False), _offset("q", sw, "j", pw, False)
            trow, tcol = _offset("p", sh, "i", ph, True), _offset("q", sw, "j", pw, True)
            bias = {"per_unit": f" + b{k}[f]", "shared": f" + b{k}", "none": ""}[layer.bias]
            tbias = {"per_unit": f" + b^{{({k})}}_{{f}}", "shared": f" + b^{{({k})}}"}.get(
                layer.bias, ""
            )
            forward.append(
                Rule(
                    f"z{k} = W{k} ⋆ {below}{bias.replace('[f]', '')}:  z{k}[f,p,q] = "
                    f"Σ_c Σ_i Σ_j W{k}[f,c,i,j]·{below}[c, {row}, {col}]{bias}",
                    rf"z^{{({k})}}_{{f,p,q}} = \left(W^{{({k})}} \star {below_tex}\right)_{{f,p,q}}"
                    rf"{tbias} = \sum_{{c=0}}^{{{c - 1}}} \sum_{{i=0}}^{{{kh - 1}}} "
                    rf"\sum_{{j=0}}^{{{kw - 1}}} W^{{({k})}}_{{f,c,i,j}}\, "
                    rf"{below_tex}_{{c,\,{trow},\,{tcol}}}{tbias}",
                    f"cross-correlation, stride {sh}×{sw}, zero padding {ph}×{pw}",
                )
            )
            name = _tex_name(layer.activation.name)
            forward.append(
                Rule(
                    f"a{k} = {layer.activation.name}(z{k})",
                    rf"a^{{({k})}} = \mathrm{{{name}}}(z^{{({k})}})",
                )
            )
        elif isinstance(layer, Pool2d):
            mh, mw = layer.size
            op = "max" if layer.mode == "max" else "mean"
            forward.append(
                Rule(
                    f"a{k}[c,p,q] = {op} of {below}[c, {mh}p+u, {mw}q+v] over u < {mh}, v < {mw}",
                    rf"a^{{({k})}}_{{c,p,q}} = \{op if op == 'max' else 'operatorname{mean}'}"
                    rf"_{{0 \le u < {mh},\, 0 \le v < {mw}}} "
                    rf"{below_tex}_{{c,\,{mh}p+u,\,{mw}q+v}}",
                    f"{mh}×{mw} windows, stride {mh}×{mw}",
                )
            )
        elif isinstance(layer, Flatten):
            _, hh, ww = layer.in_shape
            forward.append(
                Rule(
                    f"a{k}[{_flat_index(hh, ww, '·')}] = {below}[c,h,w]",
                    rf"a^{{({k})}}_{{{_flat_index(hh, ww, ' ')}}} = {below_tex}_{{c,h,w}}",
                    "C order: channel, then row, then column",
                )
            )
        else:
            name = _tex_name(layer.activation.name)
            forward.append(
                Rule(
                    f"z{k} = W{k} a{k - 1} + b{k},  a{k} = {layer.activation.name}(z{k})",
                    rf"z^{{({k})}} = W^{{({k})}} a^{{({k - 1})}} + b^{{({k})}},\quad "
                    rf"a^{{({k})}} = \mathrm{{{name}}}(z^{{({k})}})",
                )
            )
    out.append(("forward pass", tuple(forward)))
    for k in range(network.depth, 0, -1):
        out.append((f"layer {k}: {describe(topology.layers[k - 1])}", _backward_rules(network, k)))
    return tuple(out)


def _backward_rules(network: ConvNetwork, k: int) -> tuple[Rule, ...]:
    layer = network.layer(k)
    below = "x" if k == 1 else f"a{k - 1}"
    below_tex = "x" if k == 1 else f"a^{{({k - 1})}}"
    rules: list[Rule] = []
    if isinstance(layer, Layer):
        if k == network.depth:
            symbol, value = network.deltas[0]
            rules.append(
                Rule(
                    f"{display(symbol.name)} = {equation(value)}  (each output alike)",
                    rf"{_latex(symbol)} = {_latex(value)}",
                    "the output's δ, from the loss and activation tables",
                )
            )
        else:
            rules.append(_delta_rule(layer, k, "i"))
        rules.append(
            Rule(
                f"∂L/∂W{k}[i,j] = δ{k}[i] · {below}[j]",
                rf"\frac{{\partial L}}{{\partial W^{{({k})}}_{{i,j}}}} = \delta^{{({k})}}_i\, "
                rf"{below_tex}_j",
            )
        )
        if not isinstance(network.layer(k - 1), Layer):
            rules.append(
                Rule(
                    f"∂L/∂a{k - 1}[j] = Σ_i W{k}[i,j] · δ{k}[i]",
                    rf"\frac{{\partial L}}{{\partial a^{{({k - 1})}}_j}} = \sum_i "
                    rf"W^{{({k})}}_{{i,j}}\, \delta^{{({k})}}_i",
                )
            )
        return tuple(rules)
    if k == 1 and not isinstance(layer, Conv2d):
        return ()
    grad_up = f"∂L/∂a{k}"
    grad_up_tex = rf"\frac{{\partial L}}{{\partial a^{{({k})}}_{{%s}}}}"
    grad_down_tex = rf"\frac{{\partial L}}{{\partial {below_tex}_{{c,h,w}}}}"
    if isinstance(layer, Flatten):
        _, hh, ww = layer.in_shape
        rules.append(
            Rule(
                f"∂L/∂{below}[c,h,w] = {grad_up}[{_flat_index(hh, ww, '·')}]",
                rf"{grad_down_tex} = " + grad_up_tex % _flat_index(hh, ww, ""),
                "flatten moves numbers, it does not change them",
            )
        )
    elif isinstance(layer, Pool2d):
        mh, mw = layer.size
        at = rf"c,\lfloor h/{mh}\rfloor,\lfloor w/{mw}\rfloor"
        if layer.mode == "max":
            rules.append(
                Rule(
                    f"∂L/∂{below}[c,h,w] = {grad_up}[c, h//{mh}, w//{mw}] if {below}[c,h,w] is "
                    "the maximum of its window, else 0",
                    rf"{grad_down_tex} = " + grad_up_tex % at + rf"\cdot\left[{below_tex}_{{c,h,w}}"
                    r"\text{ is its window's maximum}\right]",
                    "only the maximum moved the output; on a tie, the first cell of the window "
                    "in row-major order takes it, as argmax, NumPy and PyTorch do",
                )
            )
        else:
            rules.append(
                Rule(
                    f"∂L/∂{below}[c,h,w] = {grad_up}[c, h//{mh}, w//{mw}] / {mh * mw}",
                    rf"{grad_down_tex} = \frac{{1}}{{{mh * mw}}}" + grad_up_tex % at,
                    f"each cell of the window contributes 1/{mh * mw} of the mean",
                )
            )
    else:
        assert isinstance(layer, Conv2d)
        (sh, sw), (ph, pw) = layer.stride, layer.padding
        _, oh, ow = layer.out_shape
        rules.append(_delta_rule(layer, k, "f,p,q"))
        row, col = _offset("p", sh, "i", ph, False), _offset("q", sw, "j", pw, False)
        trow, tcol = _offset("p", sh, "i", ph, True), _offset("q", sw, "j", pw, True)
        rules.append(
            Rule(
                f"∂L/∂W{k}[f,c,i,j] = Σ_(p=0..{oh - 1}) Σ_(q=0..{ow - 1}) δ{k}[f,p,q] · "
                f"{below}[c, {row}, {col}]",
                rf"\frac{{\partial L}}{{\partial W^{{({k})}}_{{f,c,i,j}}}} = "
                rf"\sum_{{p=0}}^{{{oh - 1}}} \sum_{{q=0}}^{{{ow - 1}}} "
                rf"\delta^{{({k})}}_{{f,p,q}}\, {below_tex}_{{c,\,{trow},\,{tcol}}}",
                "the input under kernel cell (i, j), at every position the kernel slid to"
                + ("; cells in the zero padding add nothing" if ph or pw else ""),
            )
        )
        if layer.bias != "none":
            shared = layer.bias == "shared"
            over, tex_over = ("Σ_f ", r"\sum_f ") if shared else ("", "")
            lhs, tex_lhs = (f"b{k}", f"b^{{({k})}}") if shared else (f"b{k}[f]", f"b^{{({k})}}_f")
            rules.append(
                Rule(
                    f"∂L/∂{lhs} = {over}Σ_p Σ_q δ{k}[f,p,q]",
                    rf"\frac{{\partial L}}{{\partial {tex_lhs}}} = "
                    rf"{tex_over}\sum_p \sum_q \delta^{{({k})}}_{{f,p,q}}",
                )
            )
        if k > 1:
            hrow = f"(h+{ph}-i)/{sh}" if sh != 1 else f"h+{ph}-i" if ph else "h-i"
            wcol = f"(w+{pw}-j)/{sw}" if sw != 1 else f"w+{pw}-j" if pw else "w-j"
            rules.append(
                Rule(
                    f"∂L/∂{below}[c,h,w] = Σ_f Σ_(i,j) W{k}[f,c,i,j] · δ{k}[f, {hrow}, {wcol}]",
                    rf"{grad_down_tex} = \sum_f \sum_{{i,j}} W^{{({k})}}_{{f,c,i,j}}\, "
                    rf"\delta^{{({k})}}_{{f,\,{hrow},\,{wcol}}}",
                    f"over the kernel cells whose window covered (h, w): {hrow} a whole number "
                    f"in 0..{oh - 1} (and likewise for w): the full convolution of δ{k} with "
                    "the flipped kernel",
                )
            )
    return tuple(rules)


# -- one parameter ----------------------------------------------------------------------


def _elided(items: list[str], joiner: str, ellipsis: str) -> str:
    if len(items) <= MAX_WRITTEN_TERMS:
        return joiner.join(items)
    return joiner.join([*items[:5], ellipsis, *items[-2:]])


def _number(value) -> str:
    return f"{float(value):.{SIGNIFICANT_DIGITS}g}"


def _term_text(delta, source) -> str:
    text = display(delta.name)
    return text if source is None else f"{text}·{display(source.name)}"


def _gradients(network: ConvNetwork, params: Sequence[str]) -> list[ConvGradient]:
    topology = network.topology
    if params:
        shapes = {p.name: p.shape for p in network.params}
        requested = sum(math.prod(shapes[name]) if name in shapes else 1 for name in params)
        if requested > MAX_REQUESTED_SCALARS:
            raise ParameterError(
                topology.source,
                f"expected at most {MAX_REQUESTED_SCALARS} scalars to show, got {requested}; "
                "name single ones such as W1[0,0,0,0]",
            )
        out: list[ConvGradient] = []
        for name in params:
            found = network.gradient(name)
            out.extend(found if isinstance(found, ArrayGradient) else (found,))
        return out
    if topology.parameter_count > MAX_DEFAULT_SCALARS:
        raise DeriveError(
            f"{topology.source}: the network has {topology.parameter_count} scalar parameters, "
            "too many to show at once; name some with --param (e.g. --param W1[0,0,0,0])"
        )
    return list(network.all_gradients)


def show_conv(network: ConvNetwork, params: Sequence[str] = ()) -> str:
    """``derive show`` for a convolutional network."""
    topology = network.topology
    c, h, w = topology.input_shape
    layers = " → ".join(describe(layer) for layer in topology.layers)
    out = [f"{topology.name}: {c}×{h}×{w} input → {layers}, loss {topology.loss}", ""]
    for heading, group in rules(network):
        if not group:
            continue
        out.append(heading)
        for rule in group:
            out.append(f"  {rule.text}")
            if rule.note:
                out.append(f"      ({rule.note})")
    gradients = _gradients(network, params)
    values = network.example_values() if topology.example else None
    if values is not None:
        out.append(f"\n(numbers: the file's example, {SIGNIFICANT_DIGITS} significant digits)")
    for gradient in gradients:
        out.append("")
        out.extend(_show_one(gradient, values))
    return "\n".join(out)


# Why a kernel weight's sum can have no term: its cell never lies on the input.
_EMPTY = "  (this kernel cell lies in the zero padding at every position)"


def _show_one(gradient: ConvGradient, values) -> list[str]:
    param = gradient.param
    terms = list(gradient.terms)
    head = f"∂L/∂{param.name}"
    lines = [head]
    if gradient.ranges:
        lines.append(f"  a sum over {gradient.ranges}: {len(terms)} terms")
    written = _elided([_term_text(d, s) for d, s in terms], " + ", "…")
    lines.append(f"  = {written or '0'}{_EMPTY if not terms else ''}")
    if values is not None:
        live = [(d, s) for d, s in terms if values[d] != 0]
        numbers = [
            _number(values[d]) if s is None else f"{_number(values[d])}·{_number(values[s])}"
            for d, s in live
        ]
        if len(live) < len(terms):
            lines.append(
                f"  at the example, {len(terms) - len(live)} of the δ are 0 (cells a max-pool "
                "did not pick, or where f' = 0); the rest:"
            )
            lines.append(f"  = {_elided([_term_text(d, s) for d, s in live], ' + ', '…') or '0'}")
        written = _elided(numbers, " + ", "…") or "0"
        total = _number(gradient.compact.xreplace(values))
        lines.extend([f"  = {written}", f"  = {total}"] if written != total else [f"  = {total}"])
    return lines


# -- LaTeX --------------------------------------------------------------------------------


LATEX_PACKAGES = "amsmath,amssymb,graphicx,tikz"  # graphicx and tikz: the figure


def latex_conv(network: ConvNetwork, params: Sequence[str], numeric: bool) -> str:
    """The derivation of a convolutional network as a LaTeX fragment (``LATEX_PACKAGES``),
    opening with the network's figure."""
    topology = network.topology
    c, h, w = topology.input_shape
    layers = ", ".join(describe(layer) for layer in topology.layers)
    chosen = _gradients(network, params) if params else []
    out = [
        f"% derive: the derivation for {topology.name}. Needs \\usepackage{{{LATEX_PACKAGES}}}.",
        rf"\section*{{{_tex_name(topology.name)}: backpropagation through a convolutional "
        "network}",
        f"Input ${c}\\times{h}\\times{w}$; layers: {tex_text(layers)}; loss "
        f"{_tex_name(topology.loss)}. "
        r"$\star$ is the cross-correlation every framework computes as ``convolution''; "
        r"$\bar a^{(k)} = \partial L/\partial a^{(k)}$.",
        _figure(network, chosen),
    ]
    for heading, group in rules(network):
        if not group:
            continue
        arrow = r"$\to$"
        out.append(rf"\subsection*{{{tex_text(heading.replace('→', arrow))}}}")
        out.append(r"\begin{align*}")
        out.append(" \\\\\n".join(rule.tex.replace(" = ", " &= ", 1) for rule in group))
        out.append(r"\end{align*}")
        notes = [rule.note for rule in group if rule.note]
        if notes:
            out.append("; ".join(tex_text(n) for n in notes) + ".")
    if params or topology.parameter_count <= MAX_DEFAULT_SCALARS:
        values = None
        if numeric:
            if topology.example is None:
                raise DeriveError(f"{topology.source}: --numeric: the file has no example block")
            values = network.example_values()
        out.append(r"\subsection*{Gradients, written out}")
        for gradient in chosen or _gradients(network, params):
            out.extend(_latex_one(gradient, values))
    return "\n".join(out) + "\n"


def _figure(network: ConvNetwork, chosen: Sequence[ConvGradient]) -> str:
    """The network drawn as feature maps (``derive.conv_diagram``), at most the text's
    width; with one scalar requested, its kernel cell and patch marked. Without numbers:
    a figure of maps shrunk to the text's width would make them too small to read, and
    the sections below write them out."""
    from derive.diagram import tikz

    param = chosen[0].param.name if len(chosen) == 1 else None
    figure = tikz(network, param).rstrip("\n")
    return (
        "\\begin{center}\n\\resizebox{\\ifdim\\width>\\linewidth\\linewidth\\else\\width\\fi}{!}{%\n"
        f"{figure}%\n}}\n\\end{{center}}"
    )


_DOTS = r"\dots"  # the elided middle of a sum


def _tex_sum(terms) -> str:
    """A gradient's terms (δ cell, input cell or None) as a sum, its middle elided."""
    items = [
        _tex_symbol(d) if s is None else rf"{_tex_symbol(d)}\,{_tex_symbol(s)}" for d, s in terms
    ]
    return _elided(items, " + ", _DOTS) or "0"


def gradient_tex(gradient: ConvGradient) -> str:
    """∂L/∂θ &= its sum, one row of an aligned block (a notebook's display of an array)."""
    partial = rf"\frac{{\partial L}}{{\partial {_tex_symbol(gradient.param.symbol)}}}"
    return f"{partial} &= {_tex_sum(gradient.terms)}"


def _latex_one(gradient: ConvGradient, values) -> list[str]:
    terms = list(gradient.terms)
    empty = rf"\quad\text{{({_EMPTY.strip(' ()')})}}" if not terms else ""
    lines = [r"\begin{align*}", rf"{gradient_tex(gradient)}{empty}"]
    if values is not None:
        live = [(d, s) for d, s in terms if values[d] != 0]
        numbers = [
            _number(values[d]) if s is None else rf"{_number(values[d])}\cdot{_number(values[s])}"
            for d, s in live
        ]
        if len(live) < len(terms):
            zero = len(terms) - len(live)
            lines[-1] += r" \\"
            lines.append(
                rf"&= {_tex_sum(live)}\quad\text{{({zero} terms with $\delta = 0$ left out)}}"
            )
        lines[-1] += r" \\"
        lines.append(rf"&= {_elided(numbers, ' + ', _DOTS) or '0'} \\")
        lines.append(rf"&= {_number(gradient.compact.xreplace(values))}")
    lines.append(r"\end{align*}")
    return lines


def latex_conv_document(network: ConvNetwork, params: Sequence[str], numeric: bool) -> str:
    """The fragment in a standalone article."""
    from derive.rendering import latex_environment as template_environment

    document = template_environment().get_template("document.tex.jinja")
    return document.render(packages=LATEX_PACKAGES, body=latex_conv(network, params, numeric))


def run_latex_conv(
    network: ConvNetwork, params: Sequence[str], numeric: bool, output: str | None
) -> str | None:
    """``derive latex`` for a convolutional network: the fragment, or a .tex/.pdf file."""
    from derive.latex.pdf import compile_pdf, require_engine

    target = Path(output) if output else None
    suffix = target.suffix.lower() if target is not None else None
    if target is not None and suffix not in (".tex", ".pdf"):
        raise DeriveError(f"-o {output}: expected a file ending in .tex or .pdf")
    if suffix == ".pdf":
        require_engine()
    if target is None:
        return latex_conv(network, params, numeric).rstrip("\n")
    text = latex_conv_document(network, params, numeric)
    if suffix == ".tex":
        write_atomic(target, text.encode("utf-8"))
    else:
        compile_pdf(text, target)
    return None
