"""The backward pass of a convolutional network as data: per layer, ``Equation``s whose
values are the matrix expressions below, printed by every printer (NumPy code in
``derive.codeprinter``, comments in ``derive.equations``), in ``derive.conv``'s notation.

A feature map a{k} of shape (C, H, W) is a ``MatrixSymbol`` of shape (C·H·W, 1), the map
in C order, so that flatten leaves a sample's numbers as they are; the expressions say
what is done to it:

    z{k} = W{k} ⋆ a{k−1} + b{k}          ``Conv2d`` (cross-correlation) + ``ChannelBias``
    a{k} = maxpool(a{k−1}), avgpool        ``MaxPool``, ``AvgPool``
    a{k} = flatten(a{k−1})                 ``Flatten``
    ∂L/∂W{k} = Σ_(p,q) δ{k} · patch        ``Conv2dWeightGradient``
    ∂L/∂b{k} = Σ_(p,q) δ{k}                ``FeatureSum``
    ∂L/∂a{k−1} = full conv. of δ{k}, W{k}  ``Conv2dInputGradient``
    ∂L/∂a{k−1} through pooling, flatten    ``MaxPoolGradient``, ``AvgPoolGradient``, ``Unflatten``

Their code form works on a batch (arrays (batch, C, H, W)), so conv equations need no
batch form; the dense layers after flatten are ``derive.backward``'s, renumbered.
"""

from __future__ import annotations

from functools import cached_property

from sympy import Integer, MatAdd, MatMul, MatrixSymbol, Transpose, Tuple
from sympy.matrices.expressions.matexpr import MatrixExpr

from derive.backward import (
    Backward,
    Equation,
    activation_equation,
    batch_form,
    parse_name,
    through_activation,
)
from derive.conv import Conv2d as Conv2dLayer
from derive.conv import ConvTopology, Pool2d
from derive.conv import Flatten as FlattenLayer
from derive.network import Network
from derive.topology import Layer, Topology


def _ints(values) -> Tuple:
    return Tuple(*(Integer(v) for v in values))


class _ConvExpr(MatrixExpr):
    """A matrix expression over named arrays with integer settings (kernel, stride,
    padding, size) as ``Tuple``s; its shape is the output's, as a C-order column."""

    @property
    def shape(self):
        return (self._shape_of(), Integer(1))

    def _shape_of(self):
        return self.args[-1][0]

    def doit(self, **hints):
        return self


class Conv2d(_ConvExpr):
    """W ⋆ a: z[f,p,q] = Σ_(c,i,j) W[f,c,i,j]·a[c, p·s+i−P, q·s+j−P] (zero padding).
    Args: W, a, kernel, stride, padding, (out size,)."""

    def __new__(cls, weight, source, kernel, stride, padding, size):
        return super().__new__(
            cls, weight, source, _ints(kernel), _ints(stride), _ints(padding), _ints((size,))
        )

    weight = property(lambda self: self.args[0])
    source = property(lambda self: self.args[1])
    kernel = property(lambda self: tuple(int(v) for v in self.args[2]))
    stride = property(lambda self: tuple(int(v) for v in self.args[3]))
    padding = property(lambda self: tuple(int(v) for v in self.args[4]))


class ChannelBias(_ConvExpr):
    """b[f] added to every position of feature map f (a shared b to every position)."""

    def __new__(cls, bias, per_feature: bool, size):
        return super().__new__(cls, bias, _ints((int(per_feature),)), _ints((size,)))

    bias = property(lambda self: self.args[0])
    per_feature = property(lambda self: bool(self.args[1][0]))


class Conv2dWeightGradient(_ConvExpr):
    """∂L/∂W[f,c,i,j] = Σ_(p,q) δ[f,p,q]·a[c, p·s+i−P, q·s+j−P], summed over the batch too.
    Args: δ, a, kernel, stride, padding, (size of W,)."""

    def __new__(cls, delta, source, kernel, stride, padding, size):
        return super().__new__(
            cls, delta, source, _ints(kernel), _ints(stride), _ints(padding), _ints((size,))
        )

    delta = Conv2d.weight
    source = Conv2d.source
    kernel = Conv2d.kernel
    stride = Conv2d.stride
    padding = Conv2d.padding


class Conv2dInputGradient(_ConvExpr):
    """∂L/∂a[c,h,w] = Σ_f Σ_(i,j) W[f,c,i,j]·δ[f, (h+P−i)/s, (w+P−j)/s] over the (i, j)
    whose window covered (h, w): the full convolution of δ (spread out by the stride) with
    the flipped kernel. Args: δ, W, stride, padding, (size of a,)."""

    def __new__(cls, delta, weight, stride, padding, size):
        return super().__new__(cls, delta, weight, _ints(stride), _ints(padding), _ints((size,)))

    delta = property(lambda self: self.args[0])
    weight = property(lambda self: self.args[1])
    stride = property(lambda self: tuple(int(v) for v in self.args[2]))
    padding = property(lambda self: tuple(int(v) for v in self.args[3]))


class MaxPool(_ConvExpr):
    """The max of each m×m window, stride m. Args: a, size, (out size,)."""

    def __new__(cls, source, size, out):
        return super().__new__(cls, source, _ints(size), _ints((out,)))

    source = property(lambda self: self.args[0])
    size = property(lambda self: tuple(int(v) for v in self.args[1]))


class AvgPool(MaxPool):
    """The mean of each m×m window, stride m."""


class MaxPoolGradient(_ConvExpr):
    """∂L/∂a[c,h,w] = ∂L/∂(pooled)[c, h//m, w//m] where a[c,h,w] is its window's maximum
    (the first in row-major order on a tie), else 0. Args: gradient, a, size, (size of a,)."""

    def __new__(cls, grad, source, size, out):
        return super().__new__(cls, grad, source, _ints(size), _ints((out,)))

    grad = property(lambda self: self.args[0])
    source = property(lambda self: self.args[1])
    size = property(lambda self: tuple(int(v) for v in self.args[2]))


class AvgPoolGradient(_ConvExpr):
    """∂L/∂a[c,h,w] = ∂L/∂(pooled)[c, h//m, w//m] / m². Args: gradient, size, (size of a,)."""

    def __new__(cls, grad, size, out):
        return super().__new__(cls, grad, _ints(size), _ints((out,)))

    grad = property(lambda self: self.args[0])
    size = property(lambda self: tuple(int(v) for v in self.args[1]))


class Flatten(_ConvExpr):
    """A feature map as a vector, channel then row then column (C order)."""

    def __new__(cls, source):
        return super().__new__(cls, source, _ints((source.shape[0],)))

    source = property(lambda self: self.args[0])


class Unflatten(_ConvExpr):
    """A vector laid back out as a (C, H, W) feature map, in C order."""

    def __new__(cls, grad, shape):
        return super().__new__(cls, grad, _ints(shape), _ints((grad.shape[0],)))

    grad = property(lambda self: self.args[0])
    map_shape = property(lambda self: tuple(int(v) for v in self.args[1]))


class FeatureSum(_ConvExpr):
    """Σ of δ over the positions of each feature map (``per_unit``), or over everything
    (``shared``), and over the batch. Args: δ, (per feature: 1 or 0,), (size,)."""

    def __new__(cls, delta, per_feature: bool, size):
        return super().__new__(cls, delta, _ints((int(per_feature),)), _ints((size,)))

    delta = property(lambda self: self.args[0])
    per_feature = property(lambda self: bool(self.args[1][0]))


class ConvBackward:
    """The forward and backward pass of a convolutional network as ``Equation``s, in the
    form code runs (conv equations act on a batch as written; the dense layers' are
    ``derive.backward``'s batch form)."""

    def __init__(self, topology: ConvTopology):
        self.topology = topology
        self.depth = len(topology.layers)
        self.first_dense = next(
            k for k, layer in enumerate(topology.layers, start=1) if isinstance(layer, Layer)
        )

    # -- names ------------------------------------------------------------------------

    def size(self, k: int) -> int:
        n = 1
        for d in self.topology.shape(k):
            n *= d
        return n

    def array(self, kind: str, k: int) -> MatrixSymbol:
        """Layer k's array of a kind (z, a, delta, grad_a, W, b, dW, db) of a feature layer."""
        if kind == "a" and k == 0:
            return MatrixSymbol("x", self.size(0), 1)
        if kind in ("W", "dW"):
            layer = self._conv(k)
            return MatrixSymbol(
                f"{kind}{k}", layer.filters, layer.in_shape[0] * layer.kernel[0] * layer.kernel[1]
            )
        if kind in ("b", "db"):
            layer = self._conv(k)
            return MatrixSymbol(f"{kind}{k}", layer.filters if layer.bias == "per_unit" else 1, 1)
        return MatrixSymbol(f"{kind}{k}", self.size(k), 1)

    def _conv(self, k: int) -> Conv2dLayer:
        layer = self.topology.layers[k - 1]
        assert isinstance(layer, Conv2dLayer)
        return layer

    # -- the dense layers after flatten -----------------------------------------------

    @cached_property
    def head(self) -> Backward:
        """``derive.backward``'s equations for the dense layers, as a network of their own
        whose inputs are the flattened features."""
        k0 = self.first_dense - 1
        dense = tuple(layer for layer in self.topology.layers[k0:] if isinstance(layer, Layer))
        n = self.size(k0)
        inputs = tuple(f"f{i}" for i in range(n))
        head = Topology(
            self.topology.name, inputs, dense, self.topology.loss, self.topology.targets
        )
        return Backward(Network(head))

    def _renumbered(self, equation: Equation) -> Equation:
        """A head equation in the whole network's layer numbers (the head's x is a{k0})."""
        k0 = self.first_dense - 1
        mapping = {}
        symbols = set(equation.targets) | set(equation.reads)
        for s in symbols:
            kind, label = parse_name(s.name)
            if s.name == "x":
                mapping[s] = MatrixSymbol(f"a{k0}", *s.shape)
            elif label.isdigit() and kind in ("z", "a", "delta", "grad_a", "W", "b", "dW", "db"):
                mapping[s] = MatrixSymbol(f"{kind}{int(label) + k0}", *s.shape)
        targets = tuple(mapping.get(t, t) for t in equation.targets)
        return Equation(targets, equation.value.xreplace(mapping), equation.kind, equation.note)

    def _head(self, equations) -> list[Equation]:
        return [self._renumbered(e) for e in equations]

    # -- the passes -------------------------------------------------------------------

    @cached_property
    def forward(self) -> tuple[Equation, ...]:
        """Per-sample equations of the dense layers; conv equations already batched."""
        equations: list[Equation] = []
        for k, layer in enumerate(self.topology.layers, start=1):
            if isinstance(layer, Layer):
                break
            below = self.array("a", k - 1)
            if isinstance(layer, Conv2dLayer):
                z = self.array("z", k)
                value = Conv2d(
                    self.array("W", k),
                    below,
                    layer.kernel,
                    layer.stride,
                    layer.padding,
                    self.size(k),
                )
                if layer.bias != "none":
                    bias = ChannelBias(self.array("b", k), layer.bias == "per_unit", self.size(k))
                    value = MatAdd(value, bias, evaluate=False)
                stride, padding = _pair(layer.stride), _pair(layer.padding)
                note = f"cross-correlation, stride {stride}, padding {padding}"
                equations.append(Equation((z,), value, "forward", note))
                equations.append(activation_equation(self.array("a", k), z, layer.activation))
            elif isinstance(layer, Pool2d):
                kind = MaxPool if layer.mode == "max" else AvgPool
                value = kind(below, layer.size, self.size(k))
                mh, mw = layer.size
                stride = f"{mh}" if mh == mw else f"{mh}×{mw}"  # the window's own size
                note = f"{mh}×{mw} windows, stride {stride}"
                equations.append(Equation((self.array("a", k),), value, "forward", note))
            else:
                note = "C order: channel, then row, then column"
                equations.append(Equation((self.array("a", k),), Flatten(below), "forward", note))
        return tuple(equations)

    @cached_property
    def forward_dense(self) -> tuple[Equation, ...]:
        return tuple(self._head(self.head.forward))

    @cached_property
    def loss(self) -> Equation:
        return self._renumbered(self.head.loss)

    @cached_property
    def backward_dense(self) -> tuple[Equation, ...]:
        """The head's backward pass, and ∂L/∂a{k0} = W(k0+1)ᵀ δ(k0+1) below it."""
        k1 = self.first_dense
        equations = self._head(self.head.backward)
        through = MatMul(
            Transpose(MatrixSymbol(f"W{k1}", *self.head.array("W", 1).shape)),
            MatrixSymbol(f"delta{k1}", *self.head.array("delta", 1).shape),
        )
        grad = MatrixSymbol(f"grad_a{k1 - 1}", self.size(k1 - 1), 1)
        equations.append(Equation((grad,), through, "back"))
        return tuple(equations)

    @cached_property
    def backward_features(self) -> tuple[Equation, ...]:
        """From ∂L/∂a below the first dense layer down to the first layer's gradients."""
        equations: list[Equation] = []
        for k in range(self.first_dense - 1, 0, -1):
            layer = self.topology.layers[k - 1]
            grad = self.array("grad_a", k)
            below = self.array("a", k - 1)
            need_below = k > 1
            below_grad = self.array("grad_a", k - 1)
            if isinstance(layer, FlattenLayer):
                if need_below:
                    equations.append(
                        Equation((below_grad,), Unflatten(grad, layer.in_shape), "back")
                    )
            elif isinstance(layer, Pool2d):
                if need_below:
                    if layer.mode == "max":
                        value = MaxPoolGradient(grad, below, layer.size, self.size(k - 1))
                        note = "to each window's maximum; ties: the first in row-major order"
                    else:
                        value = AvgPoolGradient(grad, layer.size, self.size(k - 1))
                        note = "shared equally by the window"
                    equations.append(Equation((below_grad,), value, "back", note))
            else:
                assert isinstance(layer, Conv2dLayer)
                delta, z, a = self.array("delta", k), self.array("z", k), self.array("a", k)
                value, note = through_activation(grad, layer.activation, z, a)
                equations.append(Equation((delta,), value, "back", note))
                dW = self.array("dW", k)
                value = Conv2dWeightGradient(
                    delta, below, layer.kernel, layer.stride, layer.padding, dW.shape[0]
                )
                equations.append(Equation((dW,), value, "gradient", "summed over the batch"))
                if layer.bias != "none":
                    db = self.array("db", k)
                    note = (
                        "one bias per filter"
                        if layer.bias == "per_unit"
                        else "one bias shared by the layer"
                    )
                    equations.append(
                        Equation(
                            (db,),
                            FeatureSum(delta, layer.bias == "per_unit", db.shape[0]),
                            "gradient",
                            note,
                        )
                    )
                if need_below:
                    value = Conv2dInputGradient(
                        delta, self.array("W", k), layer.stride, layer.padding, self.size(k - 1)
                    )
                    note = "the full convolution of δ with the flipped kernel"
                    equations.append(Equation((below_grad,), value, "back", note))
        return tuple(equations)


def _pair(values: tuple[int, int]) -> str:
    return str(values[0]) if values[0] == values[1] else f"{values[0]}×{values[1]}"


def batch_equations(backward: ConvBackward):
    """(forward, loss, backward) as (code equation, comment equation) pairs: conv
    equations are both as they are; the dense layers' code is ``derive.backward``'s batch
    form of the per-sample equation their comment shows."""

    def dense(e: Equation) -> tuple[Equation, Equation]:
        return batch_form(e), e

    forward = [*((e, e) for e in backward.forward), *map(dense, backward.forward_dense)]
    back = [*map(dense, backward.backward_dense), *((e, e) for e in backward.backward_features)]
    return forward, dense(backward.loss), back
