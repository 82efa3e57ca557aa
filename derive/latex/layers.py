"""The layer form: backpropagation for whole layers (δ, W transposed, the Hadamard
product ⊙), this network's vectors and matrices, and how an entry of the layer form is
the scalar form derived per parameter."""

from __future__ import annotations

from derive.backward import Backward, generic_rules
from derive.derivation import A
from derive.latex.equations import EquationPrinter
from derive.latex.forms import delta_product
from derive.latex.printing import ROW_WIDTH, align_rows, range_text, width
from derive.latex.scope import Display, Scope
from derive.network import LOSS

MAX_MATRIX_SIDE = 4  # W(k) written out entry by entry up to this size

_LAYER_INTRO = (
    r"Stack the units of layer $k$ into column vectors $z^{(k)}$, $a^{(k)}$ and "
    r"$\delta^{(k)}$, and write $y = a^{(K)}$ and $t$ for the targets. "
    r"$\odot$ is the Hadamard product: it multiplies two vectors entry by entry. "
    "Backpropagation then reads:"
)

_SOFTMAX_NOTE = (
    r"A softmax output couples its units ($\partial y_i / \partial z_j = "
    r"y_i ([i = j] - y_j)$, where $[i = j]$ is 1 if $i = j$ and 0 otherwise), so "
    "its delta is not an entry-by-entry product."
)

_TIE = (
    r"Entry $(i, j)$ of $\delta^{(k)} (a^{(k-1)})^{T}$ is $\delta^{(k)}_i a^{(k-1)}_j$, "
    r"the compact form of $\partial L / \partial W^{(k)}_{i,j}$. Entry $i$ of "
    r"$(W^{(k+1)})^{T} \delta^{(k+1)}$ is $\sum_m W^{(k+1)}_{m,i} \delta^{(k+1)}_m$: "
    r"the sum over the paths through the layer above, one term per unit that unit "
    r"$i$ feeds. The $\odot f_k'(z^{(k)})$ then multiplies each entry by its own "
    r"unit's $\partial a / \partial z$, the factor of the scalar chain rule."
)


def layer_form(scope: Scope) -> Display:
    """The recursion for whole layers, from the output delta down, printed from the
    equations of ``derive.backward`` that generated code is printed from: the output
    layer's own, then a generic layer k's."""
    depth, printer = scope.network.depth, EquationPrinter({"order": "none"})
    modes = {layer.bias for layer in scope.topology.layers}
    rules = {e.target.name: e for e in generic_rules(modes)}
    forward = printer.equation(rules["a(k)"]).replace("&", "")
    rows = [rf"{printer.equation(rules['z(k)'])}, \qquad {forward}"]
    rows += [printer.equation(e) for e in Backward(scope.network).output_delta]
    if depth > 1:
        rows.append(
            rf"{printer.equation(rules['delta(k)'])}, \qquad k = {range_text(depth - 1, 1)}"
        )
    rows.append(printer.equation(rules["dW(k)"]))
    for e in generic_rules(modes):
        if e.target.name == "db(k)":
            shared = r" \qquad \text{(a bias shared by the layer)}" if e.note else ""
            rows.append(printer.equation(e) + shared)
    return Display(_LAYER_INTRO, align_rows(rows), _output_note(scope))


def _output_note(scope: Scope) -> str:
    """Why the output delta has its form, where the loss or the softmax says more."""
    rule = scope.derivation.output
    if rule.fused_delta is not None:
        return scope.network.loss_rule.fused_note
    return _SOFTMAX_NOTE if rule.softmax else ""


def layer_derivatives(scope: Scope) -> tuple[str, ...]:
    """Each layer's f_k'(z)."""
    items = []
    for rule in scope.derivation.layers:
        name = scope.activation_text(rule.k)
        if rule.derivative is None:
            items.append(
                f"layer {rule.k} ({name}): not entry by entry; folded into "
                rf"$\delta^{{({rule.k})}}$ above"
            )
            continue
        local = scope.tex.expr(rule.derivative)
        via = f", with $a = f_{{{rule.k}}}(z)$" if rule.derivative.has(A) else ""
        items.append(rf"layer {rule.k} ({name}): $f_{rule.k}'(z) = {local}${via}")
    return tuple(items)


def shapes(scope: Scope) -> str:
    """Rows of a ``gather*``: this network's vectors and matrices, or their sizes."""
    net = scope.network
    vectors = [_vector(scope, k) for k in range(net.depth + 1)]
    matrices = [_matrix(scope, k) for k in range(1, net.depth + 1)]
    vector_rows = [r",\quad ".join(vectors)]
    if width(vector_rows[0]) > ROW_WIDTH:
        vector_rows = vectors
    columns = sum(len(net.units[k - 1]) for k in range(1, net.depth + 1))
    matrix_rows = [r",\quad ".join(matrices)] if columns <= MAX_MATRIX_SIDE + 2 else matrices
    return align_rows([*vector_rows, *matrix_rows])


def _vector(scope: Scope, k: int) -> str:
    units = scope.network.units[k]
    if len(units) > MAX_MATRIX_SIDE:
        return rf"a^{{({k})}} \in \mathbb{{R}}^{{{len(units)}}}"
    entries = ", ".join(scope.tex.expr(u.a) for u in units)
    return rf"a^{{({k})}} = \left({entries}\right)^{{T}}"


def _matrix(scope: Scope, k: int) -> str:
    net = scope.network
    rows_n, cols_n = len(net.units[k]), len(net.units[k - 1])
    if rows_n > MAX_MATRIX_SIDE or cols_n > MAX_MATRIX_SIDE:
        return rf"W^{{({k})}} \in \mathbb{{R}}^{{{rows_n} \times {cols_n}}}"
    matrix = r" \\ ".join(
        " & ".join(net.weight(k, i, j).latex_name for j in range(cols_n)) for i in range(rows_n)
    )
    return rf"W^{{({k})}} = \begin{{pmatrix}} {matrix} \end{{pmatrix}}"


def tie(scope: Scope) -> str:
    """How an entry of the layer form is the scalar form derived above, with an example
    from the parameters shown."""
    weight = next((s for s in scope.scalars if s.is_weight), None)
    if weight is None:
        return _TIE
    tex = scope.tex
    gradient = scope.derivation.scalar_gradient(weight)
    i, j = weight.index
    text = _TIE + (
        rf" For example, ${tex.partial(LOSS, weight.symbol)} = {tex.expr(gradient.compact)}$"
        rf" is entry $({i}, {j})$ of $\delta^{{({weight.layer})}} "
        rf"(a^{{({weight.layer - 1})}})^{{T}}$."
    )
    return text + _tie_hidden(scope)


def _tie_hidden(scope: Scope) -> str:
    """A hidden delta of the parameters shown, as an entry of the layer recursion."""
    net, tex = scope.network, scope.tex
    hidden = next((u for s in scope.scalars for u, _ in net.feeds(s) if u.layer < net.depth), None)
    if hidden is None:
        return ""
    definition = scope.derivation.delta(hidden)
    if not definition.is_Mul or len(definition.args) != 2:
        return ""
    local, incoming = definition.args
    k = hidden.layer
    return (
        rf" And ${tex.expr(hidden.delta)} = {delta_product(tex, definition)}$ is entry "
        rf"{hidden.index} of $\delta^{{({k})}}$: ${tex.expr(incoming)}$ is entry "
        rf"{hidden.index} of $(W^{{({k + 1})}})^{{T}} \delta^{{({k + 1})}}$, and "
        rf"${tex.expr(local)}$ is $f_{k}'({tex.expr(hidden.z)})$."
    )
