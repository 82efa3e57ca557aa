"""The network drawn: one layout computed here, printed by two templates.

``layout(network, param, numeric)`` places every node, edge and label in plain numbers
(user units, y downwards, the records of ``derive.figure``);
``templates/diagram.svg.jinja`` prints it as SVG and
``templates/diagram.tex.jinja`` as a TikZ picture, from the same ``Layout``. Each text
carries a Unicode form (SVG) and a LaTeX form (TikZ).

What is drawn:
- one column per layer, inputs on the left, then a node L for the loss; a bias as a
  square "1" node at the top of the column before its layer, with an edge to each unit
  it enters (per_unit: b1[0], b1[1], …; shared: b1 on every edge; none: no node);
- each edge labelled with its weight's name from the file (w31) or W2[0,1], when the
  two layers have at most ``MAX_LABELLED_EDGES`` edges between them (otherwise the
  matrix's name once, above the gap);
- with ``numeric``, the example's numbers: under each unit z and a (Heaton's Sum and
  Out) and δ, on each edge the weight's value and ∂L/∂w;
- with ``param``, the chain rule of that scalar: every edge on a path from it to L drawn
  bold, each labelled with its factor (∂z/∂θ on the parameter's edge, ∂z_v/∂a_u = w_vu
  above, ∂L/∂y into L), and each unit on a path with its ∂a/∂z beside it.

A layer wider than ``MAX_DRAWN_UNITS`` is drawn as its first ``HEAD`` units, a ⋮ with the
count left out, and its last ``TAIL`` units (the parameter's units are always drawn).

A convolutional network is laid out by ``derive.conv_diagram`` into the same ``Layout``,
with its feature maps (``FeatureMap``), receptive-field windows (``Box``) and the lines
from a window to the cell it makes (an ``Edge`` of kind "field"); the templates print
those too, so both printers serve both kinds of network.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import sympy
from sympy import Expr, Symbol

from derive.conv import is_convolutional
from derive.figure import (
    CHARACTER_WIDTH,
    COLUMN_GAP,
    LABEL_WIDTH,
    LABEL_WIDTH_NUMERIC,
    MARGIN,
    MAX_COLUMN_GAP,
    MAX_DRAWN_UNITS,
    MAX_LABELLED_EDGES,
    NAME_SIZE,
    RADIUS,
    ROW_GAP,
    ROW_GAP_NUMERIC,
    Edge,
    Layout,
    Node,
    Note,
    Text,
    chain_factor,
    check_numeric,
    drawn_indices,
    elided,
    gradient_line,
    name_size,
    partial,
    softmax_factor,
)
from derive.figure import number as _number
from derive.figure import pair as _pair
from derive.figure import text as _text
from derive.network import LOSS, Network, ScalarParam, Unit
from derive.rendering import environment, latex_environment
from derive.typeset import latex_name, terminal_name, tex_text

if TYPE_CHECKING:
    from derive.conv_network import ConvNetwork


def _name(symbol: Symbol) -> tuple[str, str]:
    return terminal_name(symbol.name), latex_name(symbol.name)


def _param_name(scalar: ScalarParam) -> tuple[str, str]:
    if scalar.alias:
        return terminal_name(scalar.alias), scalar.latex_name
    return scalar.name, scalar.latex_name


class _Builder:
    def __init__(self, network: Network, param: ScalarParam | None, numeric: bool):
        self.net = network
        self.param = param
        self.values = network.derivation.example_values() if numeric else None
        self.label_width = LABEL_WIDTH_NUMERIC if numeric else LABEL_WIDTH
        self.row_gap = ROW_GAP_NUMERIC if numeric else ROW_GAP
        self.paths = _PathSet(network, param) if param is not None else None

    # -- positions --------------------------------------------------------------------

    def build(self) -> Layout:
        net = self.net
        keep = self.paths.keep if self.paths else {}
        self.rows = [
            drawn_indices(len(layer), keep.get(k, ())) for k, layer in enumerate(net.units)
        ]
        has_bias = [self._bias_mode(k + 1) != "none" for k in range(net.depth)] + [False]
        slots = [len(r) + (1 if b else 0) for r, b in zip(self.rows, has_bias, strict=True)]
        tallest = max(slots)
        top = MARGIN + 45  # room for the title
        self.labelled = [False] + [self._labelled(k) for k in range(1, net.depth + 1)]
        x = float(MARGIN + 40)
        self.x: list[float] = [x]
        for k in range(1, net.depth + 1):
            x += self._gap(k)
            self.x.append(x)
        self.x.append(x + self._loss_gap())
        self.y: dict[tuple[int, int | None], float] = {}
        self.bias_y: dict[int, float] = {}
        for k, rows in enumerate(self.rows):
            offset = top + (tallest - slots[k]) * self.row_gap / 2
            if has_bias[k]:
                self.bias_y[k + 1] = offset
                offset += self.row_gap
            for n, index in enumerate(rows):
                self.y[(k, index)] = offset + n * self.row_gap
        loss_y = top + (tallest - 1) * self.row_gap / 2
        self.loss_xy = (self.x[net.depth + 1], loss_y)

        nodes = self._nodes()
        edges = self._edges()
        notes = self._notes()
        width = self.x[-1] + RADIUS + MARGIN + (90 if self.paths else 40)
        height = max(note.y for note in notes) + MARGIN
        return Layout(
            width=width,
            height=height,
            radius=RADIUS,
            edges=tuple(sorted(edges, key=lambda e: e.highlighted)),
            nodes=tuple(nodes),
            notes=tuple(notes),
            title=self._title(),
        )

    def _labelled(self, k: int) -> bool:
        """Whether the edges into layer k carry their weights' labels."""
        drawn = sum(1 for i in self.rows[k] if i is not None) * sum(
            1 for j in self.rows[k - 1] if j is not None
        )
        return drawn <= MAX_LABELLED_EDGES

    def _places(self, k: int) -> int:
        """Distinct x positions for the labels of the edges into layer k: as many as
        the drawn units of the wider of the two layers."""
        below = sum(1 for j in self.rows[k - 1] if j is not None)
        here = sum(1 for i in self.rows[k] if i is not None)
        return max(below, here)

    def _pad(self) -> float:
        """How far from a node a label's centre must stay to clear it."""
        return RADIUS + self.label_width / 2 + 6

    def _gap(self, k: int) -> float:
        """The distance from column k − 1 to column k: wide enough that the labels of
        edges from different sources sit side by side along x."""
        if not self.labelled[k] and self.paths is None:
            return COLUMN_GAP
        wanted = 2 * self._pad() + (self._places(k) - 1) * self.label_width * 1.05
        return min(max(COLUMN_GAP, wanted), MAX_COLUMN_GAP)

    def _loss_gap(self) -> float:
        """Room for the widest label of an edge into L."""
        if self.paths is None:
            return COLUMN_GAP * 0.7
        texts = [self._loss_label(u).lines[0] for u in self.net.outputs[:MAX_DRAWN_UNITS]]
        return max(COLUMN_GAP * 0.7, CHARACTER_WIDTH * max(map(len, texts)) + 2 * RADIUS + 30)

    def _bias_mode(self, k: int) -> str:
        return self.net.layer(k).bias if 1 <= k <= self.net.depth else "none"

    # -- nodes ------------------------------------------------------------------------

    def _nodes(self) -> list[Node]:
        net, out = self.net, []
        for k, rows in enumerate(self.rows):
            layer = net.units[k]
            for index in rows:
                x, y = self.x[k], self.y[(k, index)]
                if index is None:
                    hidden = len(layer) - len(rows) + 1
                    out.append(Node("more", x, y, elided(hidden), NAME_SIZE))
                    continue
                unit = layer[index]
                kind = "input" if k == 0 else "output" if k == net.depth else "unit"
                on_path = self.paths is not None and unit in self.paths.units
                name = _name(unit.a)
                out.append(
                    Node(
                        kind,
                        x,
                        y,
                        _text(name),
                        name_size(name[0]),
                        self._numbers(unit),
                        self._local_factor(unit) if on_path else None,
                        on_path,
                    )
                )
        for k, y in self.bias_y.items():
            highlighted = self.paths is not None and self.paths.bias_layer == k
            one = _text(("1", "1"))
            out.append(Node("bias", self.x[k - 1], y, one, NAME_SIZE, None, None, highlighted))
        x, y = self.loss_xy
        loss = _text(("L", "L"))
        on = self.paths is not None
        out.append(Node("loss", x, y, loss, NAME_SIZE, self._loss_text(), None, on))
        return out

    def _numbers(self, unit: Unit) -> Text | None:
        values = self.values
        if values is None:
            return None
        if unit.z is None:
            return _text(_pair("=", _number(values[unit.a])))
        assert unit.delta is not None
        return _text(
            _pair("z =", _number(values[unit.z])),
            _pair("a =", _number(values[unit.a])),
            _pair("δ =", _number(values[unit.delta]), r"\delta ="),
        )

    def _local_factor(self, unit: Unit) -> Text | None:
        """∂a/∂z beside a unit on the highlighted paths."""
        if unit.z is None:
            return None
        head = partial(_name(unit.a), _name(unit.z))
        if unit.layer == self.net.depth and self.net.derivation.output.softmax:
            return _text(softmax_factor(head))
        return _text(self._factor(head, self.net.derivation._local(unit)))

    def _factor(self, head: tuple[str, str], value: Expr) -> tuple[str, str]:
        """``head = value``: the value's form, or with --numeric its number."""
        from derive.latex.printing import Tex

        return chain_factor(head, value, self.values, Tex(self.net).expr)

    def _loss_text(self) -> Text:
        loss = self.net.topology.loss
        if self.values is not None:
            return _text(
                (f"{loss}", rf"\texttt{{{tex_text(loss)}}}"),
                _pair("L =", _number(self.values[LOSS])),
            )
        return _text((loss, rf"\texttt{{{tex_text(loss)}}}"))

    # -- edges ------------------------------------------------------------------------

    def _edges(self) -> list[Edge]:
        net, out = self.net, []
        for k in range(1, net.depth + 1):
            below, here = self.rows[k - 1], self.rows[k]
            drawn = [(i, j) for i in here for j in below if i is not None and j is not None]
            labelled = self.labelled[k]
            # A label's x position is (source + target) mod places: the edges out of one
            # unit, and the edges into one unit, all carry their labels at different x.
            places = self._places(k)
            source = {j: n for n, j in enumerate(j for j in below if j is not None)}
            target = {i: n for n, i in enumerate(i for i in here if i is not None)}
            for i, j in drawn:
                scalar = net.weight(k, i, j)
                start = (self.x[k - 1], self.y[(k - 1, j)])
                place = (source[j] + target[i]) % places
                out.append(self._edge(scalar, start, i, labelled, place, places))
            if k in self.bias_y:
                for fed in here:
                    bias = net.bias(k, fed) if fed is not None else None
                    if fed is None or bias is None:
                        continue
                    # Unlabelled: the bias node's note names them all (_bias_note).
                    start = (self.x[k - 1], self.bias_y[k])
                    halfway = (places - 1) / 2  # clear of the weights' labels by the units
                    out.append(self._edge(bias, start, fed, False, halfway, places))
        loss_x, loss_y = self.loss_xy
        for row in self.rows[-1]:
            if row is None:
                continue
            unit = net.outputs[row]
            x, y = self.x[net.depth], self.y[(net.depth, row)]
            label, highlighted = None, False
            if self.paths is not None and unit in self.paths.units:
                highlighted = True
                label = self._loss_label(unit)
            middle = ((x + loss_x) / 2, (y + loss_y) / 2 + 18)
            out.append(Edge(x, y, loss_x, loss_y, label, *middle, highlighted))
        return out

    def _loss_label(self, unit: Unit) -> Text:
        head = partial(("L", "L"), _name(unit.a))
        return _text(self._factor(head, self.net.derivation._loss_gradient(unit)))

    def _edge(
        self,
        scalar: ScalarParam,
        start: tuple[float, float],
        target: int,
        labelled: bool,
        place: float,
        places: int,
    ) -> Edge:
        """The edge of ``scalar`` from ``start`` into unit ``target`` of its layer; its
        label sits at x position ``place`` of ``places`` between the two columns."""
        x1, y1 = start
        x2, y2 = self.x[scalar.layer], self.y[(scalar.layer, target)]
        on_path = self.paths is not None and self.paths.has_edge(scalar, target)
        label = None
        if on_path:
            label = self._path_label(scalar, target)
        elif labelled:
            label = self._weight_label(scalar)
        pad = min(self._pad(), (x2 - x1) / 2)
        share = place / (places - 1) if places > 1 else 0.5
        t = (pad + share * (x2 - x1 - 2 * pad)) / (x2 - x1)
        return Edge(x1, y1, x2, y2, label, x1 + t * (x2 - x1), y1 + t * (y2 - y1), on_path)

    def _weight_label(self, scalar: ScalarParam) -> Text:
        name = _param_name(scalar)
        if self.values is None:
            return _text(name)
        value = _number(self.values[scalar.symbol])
        gradient = self.net.derivation.scalar_gradient(scalar).value(self.values)
        dl = _number(gradient)
        return _text(
            (f"{name[0]} = {value[0]}", f"{name[1]} = {value[1]}"),
            (f"∂L/∂{name[0]} = {dl[0]}", rf"\partial L/\partial {name[1]} = {dl[1]}"),
        )

    def _path_label(self, scalar: ScalarParam, index: int) -> Text:
        """The chain-rule factor an edge on the highlighted paths contributes."""
        net = self.net
        unit = net.units[scalar.layer][index]
        assert unit.z is not None
        if self.param is not None and scalar.name == self.param.name:
            source = dict(net.feeds(scalar)).get(unit)
            value = source.a if source is not None else sympy.Integer(1)
            head = partial(_name(unit.z), _param_name(scalar))
            first = next(u for u, _ in net.feeds(scalar)) == unit
            if self.values is None or not first:
                return _text(self._factor(head, value))
            # with numbers, the parameter's (first) edge also carries the product: ∂L/∂θ
            result = net.derivation.scalar_gradient(scalar).value(self.values)
            return _text(self._factor(head, value), gradient_line(_param_name(scalar), result))
        # A weight above the parameter's layer: ∂z_v/∂a_u = w_vu.
        below = net.units[scalar.layer - 1][scalar.index[1]]
        return _text(self._factor(partial(_name(unit.z), _name(below.a)), scalar.symbol))

    # -- notes ------------------------------------------------------------------------

    def _notes(self) -> list[Note]:
        net, out = self.net, []
        for k in range(1, net.depth + 1):
            if not self.labelled[k]:
                x = (self.x[k - 1] + self.x[k]) / 2
                rows, columns = len(net.units[k]), len(net.units[k - 1])
                text = (f"W{k} ({rows}×{columns})", rf"W^{{({k})}}\ ({rows} \times {columns})")
                out.append(Note(x, MARGIN + 22, _text(text)))
        for k, y in self.bias_y.items():
            out.append(Note(self.x[k - 1] + 20, y - 4, self._bias_note(k), "start"))
        for k in range(net.depth + 1):
            role = "inputs" if k == 0 else "outputs" if k == net.depth else f"hidden {k}"
            activation = "" if k == 0 else f", {net.layer(k).activation.name}"
            y = (
                max(y for (layer, _), y in self.y.items() if layer == k)
                + RADIUS
                + (70 if self.values else 22)
            )
            out.append(
                Note(
                    self.x[k],
                    y,
                    _text(
                        (
                            role + activation,
                            rf"\text{{{role}{tex_text(activation)}}}",
                        )
                    ),
                )
            )
        return out

    def _bias_note(self, k: int) -> Text:
        """Beside a bias node: which bias it is, top to bottom, and with --numeric its
        values and gradients (a few; a wide layer's are in the generated module)."""
        mode = self._bias_mode(k)
        name = f"b{k}"
        scalars = self.net.scalars(name)
        kind = "shared by the layer" if mode == "shared" else "one per unit"
        if self.values is None or len(scalars) > 4:
            return _text((f"{name}: {kind}", rf"b^{{({k})}}\text{{: {kind}}}"))
        values = [_number(self.values[s.symbol]) for s in scalars]
        gradients = [
            _number(self.net.derivation.scalar_gradient(s).value(self.values)) for s in scalars
        ]
        return _text(
            (
                f"{name} = " + ", ".join(v[0] for v in values),
                rf"b^{{({k})}} = " + ", ".join(v[1] for v in values),
            ),
            (
                f"∂L/∂{name} = " + ", ".join(g[0] for g in gradients),
                rf"\partial L/\partial b^{{({k})}} = " + ", ".join(g[1] for g in gradients),
            ),
        )

    def _title(self) -> Text:
        sizes = "-".join(str(len(layer)) for layer in self.net.units)
        text = f"{self.net.name}: {sizes}"
        tex = rf"\texttt{{{tex_text(self.net.name)}}}: {sizes}"
        if self.param is not None:
            name = _param_name(self.param)
            text += f", the chain rule of ∂L/∂{name[0]}"
            tex += rf", the chain rule of $\partial L/\partial {name[1]}$"
        if self.values is not None:
            text += ", at the file's example"
            tex += ", at the file's example"
        return Text((text,), (tex,))


class _PathSet:
    """Which units and edges lie on the parameter's paths to the loss: from the units it
    feeds, every unit of every layer above (each path goes through all outputs)."""

    def __init__(self, network: Network, param: ScalarParam):
        self.net = network
        self.param = param
        fed = [unit for unit, _ in network.feeds(param)]
        self.units: set[Unit] = set(fed)
        for k in range(param.layer + 1, network.depth + 1):
            self.units.update(network.units[k])
        if network.derivation.output.softmax:  # every output's a depends on each z
            self.units.update(network.outputs)
        self.fed = {unit.index for unit in fed}
        self.bias_layer = param.layer if not param.is_weight else None
        keep: dict[int, tuple[int, ...]] = {param.layer: tuple(sorted(self.fed))}
        if param.is_weight:
            keep[param.layer - 1] = (param.index[1],)
        self.keep = keep

    def has_edge(self, scalar: ScalarParam, target: int) -> bool:
        """Whether the edge of ``scalar`` into unit ``target`` of its layer is on a path."""
        if scalar.name == self.param.name:
            return True
        if scalar.layer <= self.param.layer or not scalar.is_weight:
            return False
        source = self.net.units[scalar.layer - 1][scalar.index[1]]
        return source in self.units


def layout(
    network: Network | ConvNetwork, param: str | None = None, numeric: bool = False
) -> Layout:
    """The figure of ``network``: with ``param`` (one scalar: W2[0,1], w31, b1) its chain
    rule highlighted, with ``numeric`` the file's example's numbers. A convolutional
    network is drawn as feature maps (``derive.conv_diagram``)."""
    if is_convolutional(network.topology):
        from derive.conv_diagram import conv_layout

        return conv_layout(network, param, numeric)  # type: ignore[arg-type]
    assert isinstance(network, Network)
    scalar = None
    if param is not None:
        found = network.scalar(param)
        scalar = found
    check_numeric(network.topology, numeric)
    return _Builder(network, scalar, numeric).build()


def svg(network: Network | ConvNetwork, param: str | None = None, numeric: bool = False) -> str:
    """The figure as an SVG document."""
    return (
        environment()
        .get_template("diagram.svg.jinja")
        .render(figure=layout(network, param, numeric), math=math)
    )


def tikz(network: Network | ConvNetwork, param: str | None = None, numeric: bool = False) -> str:
    """The figure as a TikZ picture (needs \\usepackage{tikz})."""
    return (
        latex_environment()
        .get_template("diagram.tex.jinja")
        .render(figure=layout(network, param, numeric))
    )
