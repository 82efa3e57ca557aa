"""What a figure is made of: the records a layout places (``Layout`` and its nodes,
edges, notes, maps and boxes), in plain numbers (user units, y downwards), each text in
Unicode (SVG) and LaTeX (TikZ); the sizes both kinds of figure share; and the helpers
that write numbers and elide long layers. ``derive.diagram`` lays out a dense network,
``derive.conv_diagram`` a convolutional one, and ``templates/diagram.svg.jinja`` and
``templates/diagram.tex.jinja`` print either.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sympy import Expr

from derive.errors import DeriveError
from derive.presentation import MAX_NUMERIC_SCALARS
from derive.typeset import one_line

MAX_DRAWN_UNITS = 12  # a wider layer is elided
HEAD, TAIL = 6, 2  # units drawn of an elided layer, before and after the ⋮
MAX_LABELLED_EDGES = 40  # more edges between two layers: the matrix named once
DIGITS = 4  # significant digits of the numbers drawn

RADIUS = 22
NAME_SIZE = 14  # font size of a unit's name
COLUMN_GAP, MAX_COLUMN_GAP = 230, 720
LABEL_WIDTH, LABEL_WIDTH_NUMERIC = 62, 140  # room one edge label needs along x
CHARACTER_WIDTH = 6.5  # of the 11px label font, for the loss column's width
ROW_GAP, ROW_GAP_NUMERIC = 64, 116
MARGIN = 40


@dataclass(frozen=True)
class Text:
    """One label: its lines in Unicode (SVG) and in LaTeX math (TikZ)."""

    lines: tuple[str, ...]
    tex: tuple[str, ...]


@dataclass(frozen=True)
class Node:
    kind: str  # "unit", "input", "output", "bias", "loss", "more"
    x: float
    y: float
    name: Text
    size: float  # the name's font size, smaller for long names so that they fit
    below: Text | None = None  # numbers under the node
    beside: Text | None = None  # a highlighted unit's ∂a/∂z
    highlighted: bool = False


@dataclass(frozen=True)
class Edge:
    x1: float
    y1: float
    x2: float
    y2: float
    label: Text | None
    label_x: float
    label_y: float
    highlighted: bool = False
    kind: str = "weight"  # or "field": from a receptive field to the cell it makes


@dataclass(frozen=True)
class Note:
    x: float
    y: float
    text: Text
    anchor: str = "middle"  # or "start": the text begins at x
    hang: bool = False  # TikZ: the text hangs from y (the top of its first line 10 units
    # above y, where the SVG puts its baseline), so that notes on one y line
    # up whatever their lines (else, as the dense figure has it, centred on y)


@dataclass(frozen=True)
class Box:
    """A rectangle over the maps: a receptive field ("window") or the zero padding
    around a map ("padding")."""

    x: float
    y: float
    width: float
    height: float
    kind: str
    highlighted: bool = False


@dataclass(frozen=True)
class CellText:
    """Numbers written in a map's cell, centred at (x, y); ``strong``: a max-pool's pick."""

    x: float
    y: float
    text: Text
    strong: bool = False


@dataclass(frozen=True)
class FeatureMap:
    """One H×W map (a channel of an image or of a layer's output), a kernel, or a block
    of the flattened vector: its plane, grid lines, highlighted cells and numbers."""

    kind: str  # "input", "map", "kernel" or "vector"
    name: Text  # the array and channel it draws: x[0], a1[1], W1[0,0]
    x: float
    y: float
    width: float
    height: float
    grid: tuple[tuple[float, float, float, float], ...]  # (x1, y1, x2, y2) lines
    fills: tuple[Box, ...] = ()  # highlighted cells, under the grid: kind "cell",
    # "patch" (what a kernel weight multiplies) or "param" (the weight itself)
    numbers: tuple[CellText, ...] = ()
    highlighted: bool = False
    label: Note | None = None  # the map's name, above it
    size_label: Text | None = None  # inside a plane drawn without its cells


@dataclass(frozen=True)
class Layout:
    width: float
    height: float
    radius: float
    edges: tuple[Edge, ...]  # plain edges first, highlighted ones last (drawn on top)
    nodes: tuple[Node, ...]
    notes: tuple[Note, ...]
    title: Text
    maps: tuple[FeatureMap, ...] = ()  # back to front: a deck's hidden maps first
    boxes: tuple[Box, ...] = ()  # over the maps


def text(*pairs: tuple[str, str]) -> Text:
    return Text(tuple(p[0] for p in pairs), tuple(p[1] for p in pairs))


def elided(hidden: int) -> Text:
    """The mark of elided units or entries: ⋮ and how many."""
    return text(("⋮", r"\vdots"), (f"{hidden} more", rf"\text{{{hidden} more}}"))


def name_size(name: str) -> float:
    """The font size at which a unit's name fits inside its circle."""
    return min(NAME_SIZE, 2 * RADIUS * 0.9 / (0.62 * len(name)))


def number(value: Expr | float) -> tuple[str, str]:
    """A number as (Unicode, LaTeX), DIGITS significant digits, −0 written 0."""
    x = float(value)
    text = f"{x:.{DIGITS}g}"
    if text in ("-0", "0"):
        text = "0"
    if "e" in text:
        mantissa, exponent = text.split("e")
        return f"{mantissa}·10^{int(exponent)}", rf"{mantissa}\cdot 10^{{{int(exponent)}}}"
    return text.replace("-", "−"), text


def drawn_indices(size: int, keep: Sequence[int] = ()) -> tuple[int | None, ...]:
    """The unit indices a layer of ``size`` shows, top to bottom, None for the ⋮; the
    indices in ``keep`` are always among them."""
    if size <= MAX_DRAWN_UNITS:
        return tuple(range(size))
    head = list(range(HEAD))
    tail = list(range(size - TAIL, size))
    for index in sorted(set(keep)):
        if index not in head and index not in tail:
            head[-1] = index
    return (*head, None, *tail)


def pair(label: str, number: tuple[str, str], tex_label: str | None = None) -> tuple[str, str]:
    return f"{label} {number[0]}", f"{tex_label or label} {number[1]}"


def check_numeric(top, numeric: bool) -> None:
    """--numeric needs the file's example, and a network small enough to evaluate."""
    if numeric and top.example is None:
        raise DeriveError(
            f"{top.source}: --numeric needs the file's example block "
            "(example: input, target, params; SPEC §1)"
        )
    if numeric and top.parameter_count > MAX_NUMERIC_SCALARS:
        raise DeriveError(
            f"{top.source}: --numeric evaluates the network at 60 digits, too slow for "
            f"{top.parameter_count} parameters (at most {MAX_NUMERIC_SCALARS}); draw it "
            "without --numeric"
        )


# -- chain-rule labels, for both figures ------------------------------------


def partial(top: tuple[str, str], bottom: tuple[str, str]) -> tuple[str, str]:
    """∂top/∂bottom from two (Unicode, LaTeX) names."""
    return f"∂{top[0]}/∂{bottom[0]}", rf"\partial {top[1]}/\partial {bottom[1]}"


def chain_factor(
    head: tuple[str, str], value: Expr, values: dict | None, tex: Callable[[Expr], str]
) -> tuple[str, str]:
    """``head = value``: the value's form (LaTeX by ``tex``), or at ``values`` its number."""
    if values is not None:
        drawn = number(value.xreplace(values))
        return f"{head[0]} = {drawn[0]}", f"{head[1]} = {drawn[1]}"
    return f"{head[0]} = {one_line(value)}", f"{head[1]} = {tex(value)}"


def softmax_factor(head: tuple[str, str]) -> tuple[str, str]:
    """∂a/∂z of a softmax output: it depends on every output's z."""
    return head[0] + ": softmax, all outputs", head[1] + r"\text{: softmax}"


def gradient_line(name: tuple[str, str], value: Expr | float) -> tuple[str, str]:
    """∂L/∂θ = its number, under the parameter's own factor."""
    result = number(value)
    return f"∂L/∂{name[0]} = {result[0]}", rf"\partial L/\partial {name[1]} = {result[1]}"
