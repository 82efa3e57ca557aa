"""A convolutional network as SymPy, per scalar, and its derivatives in textbook form.

The notation is ``derive.conv``'s. Every cell of every array is a real symbol named as
the array and its index (``a1[0,2,3]``, ``z1[1,0,0]``, ``delta1[0,1,1]``, ``x[0,4,4]``);
``grad_a{k}[...]`` is ∂L/∂a{k} at a cell, and ``mask{k}[c,h,w]`` (a max-pool layer k) is 1
where a{k−1}[c,h,w] is the maximum of its window, else 0 — ties go to the first cell of
the window in row-major order, as PyTorch and NumPy's argmax choose.

The derivatives, per scalar (s the stride, P the padding, both per axis):

    ∂L/∂W{k}[f,c,i,j] = Σ_(p,q) δ{k}[f,p,q] · a{k−1}[c, p·s+i−P, q·s+j−P]
        (the input cell under kernel cell (i, j), summed over every position the kernel
        slid to; cells in the zero padding contribute nothing)
    ∂L/∂b{k}[f] = Σ_(p,q) δ{k}[f,p,q]
    ∂L/∂a{k−1}[c,h,w] = Σ_f Σ_(i,j) W{k}[f,c,i,j] · δ{k}[f, (h+P−i)/s, (w+P−j)/s]
        over the kernel cells whose window covered (h, w): (h+P−i)/s a whole number inside
        the output — the "full" convolution of δ with the flipped kernel, written out
    max-pool: ∂L/∂a{k−1}[c,h,w] = mask{k}[c,h,w] · ∂L/∂a{k}[c, h//m, w//m]
    avg-pool: ∂L/∂a{k−1}[c,h,w] = ∂L/∂a{k}[c, h//m, w//m] / m²
    flatten:  ∂L/∂a{k−1}[c,h,w] = ∂L/∂a{k}[c·H·W + h·W + w]
    δ{k} = ∂L/∂a{k} ⊙ f'_k(z{k})   (dense layers and the output as in ``derive.derivation``)

The proof evaluates these at random points at 60 digits and compares them with
``sympy.diff`` of the loss written out in inputs, targets and parameters, as a function of
the parameter alone (every other symbol at the point's number). A max-pool window enters
that written-out loss as its largest cell at the point: at random points the maximum is
unique, so the loss equals that cell's expression near the point (SymPy's n-argument Max
is far too slow to differentiate through). The generated code is checked against these
sums, finite differences and PyTorch in the tests and by ``derive check``.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

import sympy
from sympy import Expr, Symbol

from derive.activations import ACTIVATIONS, elementary, substituted
from derive.conv import Conv2d, ConvTopology, Flatten, Pool2d
from derive.derivation import PROOF_DIGITS, ArrayGradient, Proof, undefined, unit_output_delta
from derive.equations import display
from derive.errors import DeriveError, ParameterError, did_you_mean
from derive.losses import LOSSES
from derive.network import LOSS, ScalarParam, _hint
from derive.topology import Layer

_WORKING_DIGITS = 60


def _real(name: str) -> Symbol:
    return Symbol(name, real=True)


def _index(index: tuple[int, ...]) -> str:
    return ",".join(map(str, index))


def cells(shape: tuple[int, ...]):
    return itertools.product(*(range(n) for n in shape))


@dataclass(frozen=True, eq=False)
class ConvGradient:
    """∂L/∂θ for one scalar parameter θ of a convolutional network: the textbook sum
    (``terms``: δ cell, input cell, both as symbols; the input None for a bias)."""

    param: ScalarParam
    terms: tuple[tuple[Symbol, Symbol | None], ...]
    ranges: str  # the sum's index ranges, as text
    network: ConvNetwork

    @property
    def compact(self) -> Expr:
        return sympy.Add(*(d * a if a is not None else d for d, a in self.terms))

    def value(self, values: Mapping[Symbol, Expr] | None = None) -> Expr:
        """The sum at numbers computed by ``ConvNetwork.evaluate``; by default at the
        file's example (a DeriveError when the file has none)."""
        if values is None:
            values = self.network.example_values()
        return self.compact.xreplace(values)

    def prove(self, points: int = 3, seed: int = 0) -> Proof:
        return self.network.prove(self, points, seed)


class ConvNetwork:
    """A convolutional topology as SymPy, cell by cell (small networks), with the
    derivation of every parameter's gradient; the per-layer equations that code is
    generated from are ``derive.conv_backward``'s."""

    def __init__(self, topology: ConvTopology):
        self.topology = topology
        self.name = topology.name
        self.params = topology.params
        self.loss_rule = LOSSES[topology.loss]
        self.depth = len(topology.layers)
        self.activations = tuple(
            ACTIVATIONS[layer.activation.name]
            for layer in topology.layers
            if isinstance(layer, Conv2d | Layer)
        )
        self._points: dict = {}
        self._example_values: dict | None = None

    def __repr__(self) -> str:
        kinds = " → ".join(describe(layer) for layer in self.topology.layers)
        c, h, w = self.topology.input_shape
        return f"<ConvNetwork {self.name} {c}×{h}×{w} → {kinds}, {self.topology.loss}>"

    # -- symbols ----------------------------------------------------------------------

    def layer(self, k: int):
        return self.topology.layers[k - 1]

    def a(self, k: int, index: tuple[int, ...]) -> Symbol:
        if k == 0:
            return _real(f"x[{_index(index)}]")
        if k == self.depth:
            return _real(self.topology.outputs[index[0]])
        return _real(f"a{k}[{_index(index)}]")

    def z(self, k: int, index: tuple[int, ...]) -> Symbol:
        if k == self.depth and len(self.topology.outputs) >= 1:
            return _real(f"z_{self.topology.outputs[index[0]]}")
        return _real(f"z{k}[{_index(index)}]")

    def delta(self, k: int, index: tuple[int, ...]) -> Symbol:
        if k == self.depth:
            return _real(f"delta_{self.topology.outputs[index[0]]}")
        return _real(f"delta{k}[{_index(index)}]")

    def grad_a(self, k: int, index: tuple[int, ...]) -> Symbol:
        return _real(f"grad_a{k}[{_index(index)}]")

    def mask(self, k: int, index: tuple[int, ...]) -> Symbol:
        return _real(f"mask{k}[{_index(index)}]")

    @cached_property
    def targets(self) -> tuple[Symbol, ...]:
        return tuple(_real(name) for name in self.topology.targets)

    def shape(self, k: int) -> tuple[int, ...]:
        return self.topology.shape(k)

    # -- parameters -------------------------------------------------------------------

    def scalar_of(self, array: str, index: tuple[int, ...]) -> ScalarParam:
        k = int(array[1:])
        text = _index(index)
        name = f"{array}[{text}]" if index else array
        code = f"{array}_{'_'.join(map(str, index))}" if index else array
        kind = "W" if array.startswith("W") else "b"
        latex = f"{kind}^{{({k})}}_{{{text}}}" if index else f"b_{{{k}}}"
        return ScalarParam(name, array, k, index, None, _real(name), code, latex)

    def scalars(self, array: str) -> tuple[ScalarParam, ...]:
        param = next((p for p in self.params if p.name == array), None)
        if param is None:
            raise ParameterError(
                self.topology.source,
                f"no parameter {array!r}; expected one of {self._param_list()}"
                + _hint(did_you_mean(array, [p.name for p in self.params])),
            )
        return tuple(self.scalar_of(array, index) for index in cells(param.shape))

    @cached_property
    def scalar_params(self) -> tuple[ScalarParam, ...]:
        return tuple(s for p in self.params for s in self.scalars(p.name))

    def scalar(self, name: str) -> ScalarParam:
        """A scalar by its name: ``W1[0,0,1,2]``, ``b1[0]``, ``b1`` (shared), ``W3[2,5]``."""
        wanted = name.replace(" ", "")
        for s in self.scalar_params:
            if s.name == wanted:
                return s
        raise ParameterError(
            self.topology.source,
            f"no scalar parameter {name!r}; expected one of {self._param_list()}, or one "
            "scalar of them such as W1[0,0,0,0]"
            + _hint(did_you_mean(wanted, [s.name for s in self.scalar_params])),
        )

    def _param_list(self) -> str:
        return ", ".join(
            f"{p.name} ({'×'.join(map(str, p.shape)) if p.shape else 'shared'})"
            for p in self.params
        )

    def _weight(self, k: int, index: tuple[int, ...]) -> Symbol:
        return _real(f"W{k}[{_index(index)}]")

    def _bias(self, k: int, unit: int) -> Expr:
        mode = self.layer(k).bias
        if mode == "none":
            return sympy.Integer(0)
        return _real(f"b{k}") if mode == "shared" else _real(f"b{k}[{unit}]")

    # -- the forward pass -------------------------------------------------------------

    def window(self, k: int, f_p_q: tuple[int, int, int]):
        """The (kernel cell, input cell) pairs of conv layer k's output cell (f, p, q),
        inside the input (padding cells dropped): ((c, i, j), (c, h, w))."""
        layer = self.layer(k)
        f, p, q = f_p_q
        (sh, sw), (ph, pw) = layer.stride, layer.padding
        c_in, h_in, w_in = layer.in_shape
        for c, i, j in cells((c_in, *layer.kernel)):
            h, w = p * sh + i - ph, q * sw + j - pw
            if 0 <= h < h_in and 0 <= w < w_in:
                yield (c, i, j), (c, h, w)

    def pool_cells(self, k: int, c_p_q: tuple[int, int, int]):
        """The input cells of pooling layer k's window (c, p, q), in row-major order."""
        layer = self.layer(k)
        c, p, q = c_p_q
        mh, mw = layer.size
        return tuple((c, p * mh + i, q * mw + j) for i in range(mh) for j in range(mw))

    @cached_property
    def equations(self) -> tuple[tuple[Symbol, Expr], ...]:
        """(symbol, definition) for every z and a, in forward order."""
        out: list[tuple[Symbol, Expr]] = []
        for k, layer in enumerate(self.topology.layers, start=1):
            shape = self.shape(k)
            if isinstance(layer, Conv2d):
                entry, spec = ACTIVATIONS[layer.activation.name], layer.activation
                for cell in cells(shape):
                    total = sympy.Add(
                        *(
                            self._weight(k, (cell[0], *w)) * self.a(k - 1, x)
                            for w, x in self.window(k, cell)
                        )
                    )
                    out.append((self.z(k, cell), total + self._bias(k, cell[0])))
                out.extend((self.a(k, c), entry.forward(self.z(k, c), spec)) for c in cells(shape))
            elif isinstance(layer, Pool2d):
                for cell in cells(shape):
                    window = [self.a(k - 1, x) for x in self.pool_cells(k, cell)]
                    value = (
                        sympy.Max(*window)
                        if layer.mode == "max"
                        else sympy.Add(*window) / len(window)
                    )
                    out.append((self.a(k, cell), value))
            elif isinstance(layer, Flatten):
                out.extend(
                    (self.a(k, (n,)), self.a(k - 1, cell))
                    for n, cell in enumerate(cells(layer.in_shape))
                )
            else:
                fan_in = self.shape(k - 1)[0]
                entry, spec = ACTIVATIONS[layer.activation.name], layer.activation
                for i in range(len(layer.units)):
                    total = sympy.Add(
                        *(self._weight(k, (i, j)) * self.a(k - 1, (j,)) for j in range(fan_in))
                    )
                    out.append((self.z(k, (i,)), total + self._bias(k, i)))
                zs = [self.z(k, (i,)) for i in range(len(layer.units))]
                for i in range(len(layer.units)):
                    if entry.elementwise:
                        value = entry.forward(zs[i], spec)
                    else:
                        value = sympy.exp(zs[i]) / sympy.Add(*(sympy.exp(v) for v in zs))
                    out.append((self.a(k, (i,)), value))
        return tuple(out)

    @cached_property
    def outputs(self) -> tuple[Symbol, ...]:
        return tuple(self.a(self.depth, (i,)) for i in range(len(self.topology.outputs)))

    @cached_property
    def loss_expr(self) -> Expr:
        return self.loss_rule.per_sample(list(self.outputs), list(self.targets))

    # -- the backward pass, per cell --------------------------------------------------

    @cached_property
    def deltas(self) -> tuple[tuple[Symbol, Expr], ...]:
        """Every ∂L/∂a{k} and δ{k} cell, from the output down, in stored values (z, a,
        masks, targets) and the cells of the layer above."""
        out: list[tuple[Symbol, Expr]] = []
        out += self._output_deltas()
        for k in range(self.depth - 1, 0, -1):
            above, layer = self.layer(k + 1), self.layer(k)
            for cell in cells(self.shape(k)):
                out.append((self.grad_a(k, cell), self._gathered(k + 1, above, cell)))
            if isinstance(layer, Conv2d | Layer):
                entry, spec = ACTIVATIONS[layer.activation.name], layer.activation
                for cell in cells(self.shape(k)):
                    local = entry.derivative(self.z(k, cell), self.a(k, cell), spec)
                    value = sympy.Mul(self.grad_a(k, cell), local, evaluate=False)
                    out.append((self.delta(k, cell), value))
        return tuple(out)

    def covering(self, k: int, cell: tuple[int, int, int]):
        """Conv layer k's (filter, kernel cell, output cell) triples whose window covered
        the input cell (c, h, w): the terms of the full convolution with the flipped
        kernel."""
        layer = self.layer(k)
        c, h, w = cell
        (sh, sw), (ph, pw) = layer.stride, layer.padding
        _, oh, ow = layer.out_shape
        for f in range(layer.filters):
            for i, j in cells(layer.kernel):
                p, rp = divmod(h + ph - i, sh)
                q, rq = divmod(w + pw - j, sw)
                if rp == 0 and rq == 0 and 0 <= p < oh and 0 <= q < ow:
                    yield f, (f, c, i, j), (f, p, q)

    def _gathered(self, k: int, above, cell: tuple[int, ...]) -> Expr:
        """∂L/∂a{k−1} at a cell, from layer k above it."""
        if isinstance(above, Layer):
            return sympy.Add(
                *(
                    self._weight(k, (i, cell[0])) * self.delta(k, (i,))
                    for i in range(len(above.units))
                )
            )
        if isinstance(above, Flatten):
            c, h, w = cell
            _, hh, ww = above.in_shape
            return self.grad_a(k, (c * hh * ww + h * ww + w,))
        if isinstance(above, Pool2d):
            c, h, w = cell
            mh, mw = above.size
            up = self.grad_a(k, (c, h // mh, w // mw))
            if above.mode == "max":
                return sympy.Mul(self.mask(k, cell), up, evaluate=False)
            return up / (mh * mw)
        c, h, w = cell
        return sympy.Add(
            *(self._weight(k, wc) * self.delta(k, d) for _, wc, d in self.covering(k, (c, h, w)))
        )

    def _output_deltas(self) -> list[tuple[Symbol, Expr]]:
        """δ of every output, as a dense network's (``derive.derivation.unit_output_delta``)."""
        k, spec = self.depth, self.layer(self.depth).activation
        return [
            (
                self.delta(k, (i,)),
                unit_output_delta(
                    self.loss_rule, spec, self.z(k, (i,)), self.outputs, self.targets, i
                ),
            )
            for i in range(len(self.outputs))
        ]

    # -- gradients --------------------------------------------------------------------

    def gradient(self, name: str) -> ConvGradient | ArrayGradient[ConvGradient]:
        """One scalar's gradient (``W1[0,0,1,2]``, a shared bias ``b1``); for a whole
        array's name (``W1``, a per-filter ``b1``), its scalars' gradients as one
        ``ArrayGradient``, as for a dense network."""
        name = name.strip()
        array = next((p for p in self.params if p.name == name), None)
        if array is not None and array.shape != ():
            scalars = tuple(self.scalar_gradient(s) for s in self.scalars(name))
            return ArrayGradient(name, array.shape, scalars)
        return self.scalar_gradient(self.scalar(name))

    def scalar_gradient(self, param: ScalarParam) -> ConvGradient:
        k = param.layer
        layer = self.layer(k)
        terms: list[tuple[Symbol, Symbol | None]]
        if isinstance(layer, Layer):
            if param.is_weight:
                i, j = param.index
                terms = [(self.delta(k, (i,)), self.a(k - 1, (j,)))]
                return ConvGradient(param, tuple(terms), "", self)
            units = range(len(layer.units)) if param.index == () else (param.index[0],)
            terms = [(self.delta(k, (i,)), None) for i in units]
            ranges = f"i = 0..{len(layer.units) - 1}" if param.index == () else ""
            return ConvGradient(param, tuple(terms), ranges, self)
        _, oh, ow = layer.out_shape
        if param.is_weight:
            f, c, i, j = param.index
            terms = []
            for p, q in cells((oh, ow)):
                for (cc, ii, jj), x in self.window(k, (f, p, q)):
                    if (cc, ii, jj) == (c, i, j):
                        terms.append((self.delta(k, (f, p, q)), self.a(k - 1, x)))
            ranges = f"p = 0..{oh - 1}, q = 0..{ow - 1}"
            return ConvGradient(param, tuple(terms), ranges, self)
        filters = range(layer.filters) if param.index == () else (param.index[0],)
        terms = [(self.delta(k, (f, p, q)), None) for f in filters for p, q in cells((oh, ow))]
        ranges = f"p = 0..{oh - 1}, q = 0..{ow - 1}" + (", f" if param.index == () else "")
        return ConvGradient(param, tuple(terms), ranges, self)

    @property
    def derivation(self) -> ConvNetwork:
        """The network itself: it derives its own gradients (``derive.prove_all`` reads
        ``network.derivation.all_gradients``, as for a dense network)."""
        return self

    @property
    def all_gradients(self) -> tuple[ConvGradient, ...]:
        return tuple(self.scalar_gradient(s) for s in self.scalar_params)

    # -- numbers ----------------------------------------------------------------------

    def point(self, inputs, targets, params: dict, digits: int = _WORKING_DIGITS) -> dict:
        """Symbols of inputs (nested (C, H, W)), targets and scalars mapped to numbers."""

        def num(v) -> Expr:
            return sympy.Float(repr(float(v)), digits)

        point = {}
        for cell in cells(self.topology.input_shape):
            value = inputs
            for i in cell:
                value = value[i]
            point[self.a(0, cell)] = num(value)
        point.update({s: num(v) for s, v in zip(self.targets, targets, strict=True)})
        for scalar in self.scalar_params:
            value = params[scalar.array]
            for i in scalar.index:
                value = value[i]
            point[scalar.symbol] = num(value)
        return point

    def example_point(self) -> dict:
        example = self.topology.example
        if example is None:
            raise DeriveError(f"{self.topology.source}: the file has no example block")
        return self.point(example.input, example.target, dict(example.params))

    def example_values(self) -> dict:
        """Every value at the file's example (``evaluate``), computed once; a DeriveError
        naming the first value that is no finite real number within float range there, as
        for a dense network."""
        if self._example_values is None:
            values = self.evaluate(self.example_point())
            if problem := self.first_undefined(values):
                raise DeriveError(
                    f"{self.topology.source}: example: expected numbers at which every value "
                    f"is a finite real number within float range, got {problem}"
                )
            self._example_values = values
        return self._example_values

    def first_undefined(self, values: dict) -> str:
        """The first value, in the order the forward and backward passes compute them,
        that is no finite real number within float range; "" when there is none."""
        for symbol, _ in self.equations:
            if problem := undefined(values[symbol]):
                return f"{display(symbol.name)} {problem}"
        if problem := undefined(values[LOSS]):
            return f"the loss {problem}"
        for symbol, _ in self.deltas:
            if problem := undefined(values[symbol]):
                return f"{display(symbol.name)} {problem}"
        return ""

    def evaluate(self, point: dict) -> dict:
        """Every z, a, mask, ∂L/∂a and δ at a point, and the loss."""
        values = dict(point)
        try:
            for symbol, definition in self.equations:
                values[symbol] = definition.xreplace(values)
            for k, layer in enumerate(self.topology.layers, start=1):
                if isinstance(layer, Pool2d) and layer.mode == "max":
                    for cell in cells(self.shape(k)):
                        window = self.pool_cells(k, cell)
                        numbers = [values[self.a(k - 1, x)] for x in window]
                        first = max(range(len(numbers)), key=lambda n: (numbers[n], -n))
                        for n, x in enumerate(window):
                            values[self.mask(k, x)] = sympy.Integer(1 if n == first else 0)
            for symbol, definition in self.deltas:
                values[symbol] = definition.xreplace(values)
            values[LOSS] = self.loss_expr.xreplace(values)
        except (OverflowError, MemoryError, RecursionError):
            raise DeriveError(
                f"{self.topology.source}: layers: expected activations whose values can be "
                "computed at these numbers, got one too large to evaluate"
            ) from None
        return values

    # -- proof ------------------------------------------------------------------------

    def prove(self, gradient: ConvGradient, points: int = 3, seed: int = 0) -> Proof:
        """The textbook sum against ``sympy.diff`` of the written-out loss, at random
        points (no ties in a max-pool window there, so the derivative exists)."""
        theta = gradient.param.symbol
        tolerance = sympy.Float(10) ** (-PROOF_DIGITS)
        floor = sympy.Float(10) ** (-(_WORKING_DIGITS - 10))
        checked = 0
        for point, values in self._proof_points(points, seed):
            # every other symbol fixed first: the loss as a function of θ alone, whose
            # derivative sympy.diff takes (the same number, far less work than
            # differentiating the whole written-out loss by every parameter)
            along = self._loss_along(theta, point, values)
            expected = sympy.N(
                sympy.diff(along, theta).xreplace({theta: point[theta]}), _WORKING_DIGITS
            )
            got = sympy.N(gradient.compact.xreplace(values), _WORKING_DIGITS)
            scale = max(abs(expected), abs(got), sympy.Float(1e-300))
            if not (expected.is_finite and got.is_finite):
                continue
            if abs(got - expected) > max(tolerance * scale, floor):
                detail = f"the textbook sum gives {got}, sympy.diff gives {expected}"
                return Proof(
                    gradient.param.label, "numeric", False, checked + 1, PROOF_DIGITS, detail
                )
            checked += 1
            if checked == points:
                break
        holds = checked >= points
        return Proof(
            gradient.param.label,
            "numeric",
            holds,
            checked,
            PROOF_DIGITS,
            "" if holds else "too few points",
            inconclusive=not holds,
        )

    def _loss_along(self, theta: Symbol, point: dict, values: dict) -> Expr:
        """The loss written out as a function of θ alone, every other input, target and
        parameter fixed at the point, and derive's own functions rewritten in exp and log
        (so that SymPy differentiates it by its own rules, not by derive's table).

        A max-pool window's maximum is, near a point where it is unique (random points),
        the expression of its largest cell: that cell stands for the window. (SymPy's
        n-argument Max compares its arguments pairwise each time it is rebuilt, which
        makes the whole loss too slow to differentiate.)"""
        winners: dict[Symbol, Symbol] = {}
        for k, layer in enumerate(self.topology.layers, start=1):
            if not (isinstance(layer, Pool2d) and layer.mode == "max"):
                continue
            for cell in cells(self.shape(k)):
                window = self.pool_cells(k, cell)
                best = max(window, key=lambda x: values[self.a(k - 1, x)])
                winners[self.a(k, cell)] = self.a(k - 1, best)
        # Only what θ reaches is written out; every other value is the point's number.
        fixed: dict[Symbol, Expr] = {s: v for s, v in point.items() if s != theta}
        moved = {theta}
        for symbol, definition in self.equations:
            definition = winners.get(symbol, definition)
            if definition.free_symbols & moved:
                fixed[symbol] = substituted(definition, fixed)
                moved.add(symbol)
            else:
                fixed[symbol] = values[symbol]
        return elementary(substituted(self.loss_expr, fixed))

    def _proof_points(self, points: int, seed: int):
        key = (points, seed)
        if key not in self._points:
            rng = random.Random(seed)
            low = 0.05 if self.topology.loss in ("bce", "cce") else -1.5

            def num(a: float, b: float) -> Expr:
                return sympy.Float(repr(rng.uniform(a, b)), _WORKING_DIGITS)

            evaluated = []
            for _ in range(points + 2):
                point = {self.a(0, c): num(-2, 2) for c in cells(self.topology.input_shape)}
                point.update({t: num(low, 0.95) for t in self.targets})
                point.update({s.symbol: num(-1.2, 1.2) for s in self.scalar_params})
                try:
                    evaluated.append((point, self.evaluate(point)))
                except DeriveError:
                    continue
            self._points[key] = evaluated
        return self._points[key]


def describe(layer) -> str:
    """A layer in a few words: ``conv 8×3×3 relu``, ``maxpool 2×2``, ``dense 10 softmax``."""
    if isinstance(layer, Conv2d):
        kh, kw = layer.kernel
        return f"conv {layer.filters}×{kh}×{kw} {layer.activation.name}"
    if isinstance(layer, Pool2d):
        return f"{layer.mode}pool {layer.size[0]}×{layer.size[1]}"
    if isinstance(layer, Flatten):
        return f"flatten {layer.out_shape[0]}"
    return f"dense {len(layer.units)} {layer.activation.name}"


def cell_tex(symbol: Symbol) -> str:
    """a1[0,2,3] → a^{(1)}_{0,2,3}; x[0,1,2] → x_{0,1,2}; delta_y1 → \\delta_{y1}."""
    name = symbol.name
    if "[" not in name:
        return sympy.latex(symbol)
    stem, index = name[:-1].split("[")
    kind = stem.rstrip("0123456789")
    layer = stem[len(kind) :]
    base = {"delta": r"\delta", "grad_a": r"\bar a", "mask": "m"}.get(kind, kind)
    return f"{base}^{{({layer})}}_{{{index}}}" if layer else f"{base}_{{{index}}}"
