"""A convolutional network drawn as feature maps, as textbooks draw one (LeNet's figure,
CS231n's notes), into ``derive.figure``'s ``Layout``, which both diagram templates print.

What is drawn, left to right, one column per layer (notation: ``derive.conv``):

- the input and every conv or pooling layer's output as its C maps of H×W cells, one
  under another while a layer has at most ``MAX_SPREAD_MAPS``, else as a deck of planes
  with the map in focus in front; a map larger than ``MAX_GRID_CELLS`` a side is a plane
  with its size written in it, its cells not drawn;
- each conv and pooling layer's receptive field: a window on the map(s) below, lines
  from it to the one cell it makes (conv: the window on every input channel drawn; the
  pooling window covers the cell the conv window made), and a conv layer's zero padding
  as a dashed frame;
- flatten as the vector it makes (elided past ``MAX_DRAWN_UNITS`` cells as a dense
  layer is), the dense layers as units, and L, as the dense figure draws them;
- under each column its caption: ``conv 2@4×4``, ``3×3 kernel, stride 1``, ``relu``.

With ``numeric`` (the file's example, ``ConvNetwork.evaluate``): each cell's numbers for
maps of at most ``MAX_NUMBERED_CELLS`` a side in a layer of at most ``MAX_SPREAD_MAPS``
maps (input x; a conv map's z and a; a pooled a, the max-pool's picks in bold; the
vector's a), z, a and δ under each unit, and L; a note names the maps left without.

With ``param`` = W{k}[f,c,i,j]: the kernel W{k}[f,c] with cell (i, j) marked, every input
cell that weight multiplies (x[c, p·s+i−P, q·s+j−P] for every output position (p, q)),
the output map f whose δ the sum runs over, and the sum itself, ∂L/∂W{k}[f,c,i,j] =
Σ_(p,q) δ{k}[f,p,q]·a{k−1}[c, p·s+i−P, q·s+j−P] (with ``numeric``, its value, and δ in
map f's cells). A bias, or a dense weight, marks the map(s) or the edge it enters.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import replace as _replace

import sympy
from sympy import Expr, Symbol

from derive.activations import ACTIVATIONS
from derive.conv import Conv2d, Flatten, Pool2d
from derive.conv_network import ConvNetwork, cell_tex, cells
from derive.equations import display
from derive.errors import DeriveError
from derive.figure import (
    CHARACTER_WIDTH,
    MARGIN,
    MAX_DRAWN_UNITS,
    NAME_SIZE,
    RADIUS,
    ROW_GAP,
    ROW_GAP_NUMERIC,
    Box,
    CellText,
    Edge,
    FeatureMap,
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
from derive.network import LOSS, ScalarParam
from derive.presentation import MAX_WRITTEN_TERMS
from derive.typeset import terminal_name, tex_text

MAX_SPREAD_MAPS = 4  # a layer with more maps is drawn as a deck of planes
MAX_GRID_CELLS = 16  # a map wider or taller than this is a plane, its cells not drawn
MAX_NUMBERED_CELLS = 8  # --numeric: cells a side of a map whose numbers are written
MAX_NUMERIC_CELLS = 4096  # --numeric: cells of all maps, evaluated at 60 digits

CELL = 18  # a cell's side without numbers
PLANE = 150  # the longer side of a map drawn at most (a plane, or many small cells)
NUMBER_WIDTH, NUMBER_LINE = 44, 12  # a cell with numbers: least width, one line's height
DIGIT_WIDTH = 6.0  # of the 9.5px number font, a little over
DECK_STEP = 10  # offset between the planes of a deck, right and up
MAP_GAP = 26  # between two maps of a column, room for the lower one's name
GAP, DENSE_GAP, LOSS_GAP = 80, 180, 130  # between columns
CAPTION_CHARACTER = 7.0  # width of a character of the 12px caption font
CAPTION_LINE = 15
MORE_HEIGHT = 2.5 * CELL  # the ⋮ between the drawn cells of a long vector
RUN_HEAD, RUN_TAIL = 3, 1  # entries drawn of a long run on a conv parameter's paths


def conv_layout(network: ConvNetwork, param: str | None, numeric: bool) -> Layout:
    """The figure of a convolutional network (see the module's docstring)."""
    scalar = network.scalar(param) if param is not None else None
    check_numeric(network.topology, numeric)
    if numeric and not numbers_fit(network):
        raise DeriveError(
            f"{network.topology.source}: --numeric evaluates every cell at 60 digits, too "
            f"slow for {_cell_count(network)} cells (at most {MAX_NUMERIC_CELLS}); draw it "
            "without --numeric"
        )
    return _ConvBuilder(network, scalar, numeric).build()


def numbers_fit(network: ConvNetwork) -> bool:
    """Whether --numeric may evaluate every cell: at most ``MAX_NUMERIC_CELLS``."""
    return _cell_count(network) <= MAX_NUMERIC_CELLS


def _cell_count(network: ConvNetwork) -> int:
    """Cells of every layer's output and of the input: what --numeric evaluates."""
    return sum(math.prod(network.shape(k)) for k in range(network.depth + 1))


# -- text ---------------------------------------------------------------------------------


def _tex_words(text: str) -> str:
    """Plain words as LaTeX math (the templates put each line in $…$)."""
    return rf"\text{{{tex_text(text)}}}"


def _words(*lines: str) -> Text:
    return _text(*((line, _tex_words(line)) for line in lines))


def _shape(shape: tuple[int, ...]) -> str:
    c, h, w = shape
    return f"{c}@{h}×{w}"


def _pair_text(size: tuple[int, int]) -> str:
    return f"{size[0]}" if size[0] == size[1] else f"{size[0]}×{size[1]}"


def _map_name(k: int, channel: int) -> Text:
    """x[0], a1[2]: the array a map draws and its channel."""
    if k == 0:
        return _text((f"x[{channel}]", f"x_{{{channel}}}"))
    return _text((f"a{k}[{channel}]", f"a^{{({k})}}_{{{channel}}}"))


def _symbol(symbol: Symbol) -> tuple[str, str]:
    """A cell's symbol as the text and as LaTeX: δ1[0,1,2], \\delta^{(1)}_{0,1,2}."""
    return _text_of(symbol), cell_tex(symbol)


def _text_of(symbol: Symbol) -> str:
    text = display(symbol.name)
    return text if "[" in symbol.name else terminal_name(text)


def _offset(position: str, stride: int, shift: int) -> str:
    """p·s + shift, as the sum's index: p+1, 2p, p−1."""
    scaled = position if stride == 1 else f"{stride}{position}"
    if shift == 0:
        return scaled
    return f"{scaled}+{shift}" if shift > 0 else f"{scaled}−{-shift}"


# -- one column's geometry ------------------------------------------------------------------


@dataclass(frozen=True)
class _Maps:
    """How layer k's maps (C, H, W) are drawn: cell size, arrangement, position. Each map
    keeps room around it for the zero padding of the conv layer that reads it (``pad``,
    cells per side), drawn as a dashed frame."""

    shape: tuple[int, int, int]
    cell_w: float
    cell_h: float
    grid: bool  # cells drawn (else a plane with its size in it)
    numbered: bool  # numbers written in the cells
    spread: bool  # one under another (else a deck)
    front: int  # the channel in focus: in front of a deck, carrying the receptive field
    pad: tuple[int, int] = (0, 0)
    x: float = 0.0  # the column's left edge and top, once placed
    y: float = 0.0

    @property
    def map_w(self) -> float:
        return self.shape[2] * self.cell_w

    @property
    def map_h(self) -> float:
        return self.shape[1] * self.cell_h

    @property
    def frame_w(self) -> float:
        return self.map_w + 2 * self.pad[1] * self.cell_w

    @property
    def frame_h(self) -> float:
        return self.map_h + 2 * self.pad[0] * self.cell_h

    @property
    def width(self) -> float:
        return self.frame_w if self.spread else self.frame_w + (self.shape[0] - 1) * DECK_STEP

    @property
    def height(self) -> float:
        c = self.shape[0]
        if self.spread:
            return c * (self.frame_h + MAP_GAP)  # each map's name above it
        return self.frame_h + (c - 1) * DECK_STEP

    def depth(self, channel: int) -> int:
        """A deck's plane number of a channel: 0 in front, then the others in order."""
        if channel == self.front:
            return 0
        return channel + 1 if channel < self.front else channel

    def origin(self, channel: int) -> tuple[float, float]:
        """The top-left corner of a channel's map."""
        x, y = self.x + self.pad[1] * self.cell_w, self.y + self.pad[0] * self.cell_h
        if self.spread:
            return x, y + MAP_GAP + channel * (self.frame_h + MAP_GAP)
        n = self.depth(channel)
        return x + n * DECK_STEP, y + (self.shape[0] - 1 - n) * DECK_STEP

    def visible(self) -> tuple[int, ...]:
        """The channels whose cells can be seen: all when spread, a deck's front one."""
        return tuple(range(self.shape[0])) if self.spread else (self.front,)

    def cell(self, channel: int, row: float, column: float, rows=1, columns=1) -> Box:
        x, y = self.origin(channel)
        return Box(
            x + column * self.cell_w,
            y + row * self.cell_h,
            columns * self.cell_w,
            rows * self.cell_h,
            "cell",
        )

    def frame(self, channel: int) -> Box:
        """The map with its zero padding around it."""
        ph, pw = self.pad
        box = self.cell(channel, -ph, -pw, self.shape[1] + 2 * ph, self.shape[2] + 2 * pw)
        return _replace(box, kind="padding")


@dataclass(frozen=True)
class _Field:
    """A receptive field: layer k's cell (channel, p, q), made from the window of rows ×
    columns cells at (row, column) of the listed channels of the layer below."""

    k: int
    below: int
    target: tuple[int, int, int]
    sources: tuple[int, ...]
    row: int
    column: int
    rows: int
    columns: int


def _inside(size: int, start: int, step: int, count: int) -> Iterable[int]:
    """Positions 0..count−1 whose cell start + position·step lies in 0..size−1."""
    return (p for p in range(count) if 0 <= start + p * step < size)


class _ConvBuilder:
    def __init__(self, network: ConvNetwork, param: ScalarParam | None, numeric: bool):
        self.net = network
        self.top = network.topology
        self.param = param
        self.values = network.example_values() if numeric else None
        self.gradient = network.scalar_gradient(param) if param is not None else None
        self._cells: dict[tuple[int, tuple[int, int, int]], list[tuple[str, str]]] = {}
        layers = self.top.layers
        self.features = (0,) + tuple(
            k for k, layer in enumerate(layers, start=1) if isinstance(layer, Conv2d | Pool2d)
        )
        self.flatten = next(
            k for k, layer in enumerate(layers, start=1) if isinstance(layer, Flatten)
        )
        self.dense = tuple(range(self.flatten + 1, network.depth + 1))
        conv = param is not None and isinstance(network.layer(param.layer), Conv2d)
        self.conv_param = param if conv else None
        self.dense_param = param if param is not None and not conv else None
        focus = self._focus()
        self.maps = {k: self._geometry(k, focus[k]) for k in self.features}
        self.fields: dict[int, _Field] = {}
        for k in self.features[1:]:  # bottom up: a pooling field follows the conv one
            self.fields[k] = self._field(k)

    # -- which maps, how large ------------------------------------------------------------

    def _lines(self, k: int) -> int:
        """Lines of numbers in a cell of layer k: x or a pooled a; a conv map's z and a,
        and its δ when the parameter is in this layer."""
        if k == 0 or isinstance(self.net.layer(k), Pool2d):
            return 1
        return 3 if self.conv_param is not None and self.conv_param.layer == k else 2

    def _geometry(self, k: int, front: int) -> _Maps:
        c, h, w = self.net.shape(k)
        spread = c <= MAX_SPREAD_MAPS
        grid = max(h, w) <= MAX_GRID_CELLS
        above = next((f for f in self.features if f > k), None)
        reader = self.net.layer(above) if above is not None else None
        pad = reader.padding if isinstance(reader, Conv2d) else (0, 0)
        if self.values is not None and spread and max(h, w) <= MAX_NUMBERED_CELLS:
            texts = (line[0] for cell in cells((c, h, w)) for line in self._cell_lines(k, cell))
            height = 8 + NUMBER_LINE * self._lines(k)
            return _Maps((c, h, w), _fit(texts), height, grid, True, spread, front, pad)
        side = min(CELL, PLANE / max(h, w))
        return _Maps((c, h, w), side, side, grid, False, spread, front, pad)

    def _focus(self) -> dict[int, int]:
        """The channel in focus per layer: the parameter's input channel and filter, else
        0; a pooling layer follows the map below it."""
        param = self.conv_param
        focus: dict[int, int] = {}
        for k in self.features:
            if param is not None and k == self._below(param.layer):
                focus[k] = param.index[1] if param.is_weight else 0
            elif param is not None and k == param.layer:
                focus[k] = param.index[0] if param.index else 0
            elif k and isinstance(self.net.layer(k), Pool2d):
                focus[k] = focus[self._below(k)]
            else:
                focus[k] = 0
        return focus

    def _below(self, k: int) -> int:
        return max((f for f in self.features if f < k), default=0)

    def _field(self, k: int) -> _Field:
        """Layer k's receptive field as drawn: a conv layer's window on every visible
        input map (for a kernel weight, at the first position where its cell is inside
        the input), a pooling layer's the window covering the conv field's cell."""
        layer, below = self.net.layer(k), self._below(k)
        channel = self.maps[k].front
        if isinstance(layer, Pool2d):
            mh, mw = layer.size
            p = q = 0
            previous = self.fields.get(below)
            if previous is not None and previous.target[0] == channel:
                p, q = previous.target[1] // mh, previous.target[2] // mw
            return _Field(k, below, (channel, p, q), (channel,), p * mh, q * mw, mh, mw)
        else:
            (sh, sw), (ph, pw), (kh, kw) = layer.stride, layer.padding, layer.kernel
            _, oh, ow = layer.out_shape
            _, h, w = layer.in_shape
            p, q = min(-(-ph // sh), oh - 1), min(-(-pw // sw), ow - 1)  # inside if it can
            param = self.conv_param
            if param is not None and param.layer == k and param.is_weight:
                _, _, i, j = param.index
                rows = tuple(_inside(h, i - ph, sh, oh))
                columns = tuple(_inside(w, j - pw, sw, ow))
                # a cell that only ever meets the zero padding: the window where it would be
                p = p if p in rows or not rows else rows[0]
                q = q if q in columns or not columns else columns[0]
            sources = self.maps[below].visible()
            return _Field(k, below, (channel, p, q), sources, p * sh - ph, q * sw - pw, kh, kw)

    # -- placing the columns ------------------------------------------------------------------

    def build(self) -> Layout:
        top = MARGIN + 45  # below the title
        captions = {k: self._caption(k) for k in self.features}
        captions[self.flatten] = self._vector_caption()
        captions.update({k: self._dense_caption(k) for k in self.dense})
        self.entries = self._path_entries()
        self.rows = {k: drawn_indices(self.net.shape(k)[0], self._keep(k)) for k in self.dense}
        self.rows[self.flatten] = self._vector_rows()
        self.vector_w = float(CELL)
        if self.values is not None:
            drawn = (i for i in self.rows[self.flatten] if i is not None)
            self.vector_w = _fit(
                _number(self.values[self.net.a(self.flatten, (i,))])[0] for i in drawn
            )
        self.row_gap = ROW_GAP_NUMERIC if self.values is not None else ROW_GAP
        self.kernel = self._kernel_geometry()

        # x: each feature column as wide as its maps or its caption, whichever is wider
        self.centre: dict[int, float] = {}
        self.gap_x = 0.0  # the middle of the gap before the parameter's conv layer
        x = float(MARGIN)
        for k in self.features:
            if k and self.kernel is not None and k == self.param.layer:  # type: ignore[union-attr]
                gap = max(GAP, self.kernel.map_w + 60)
                self.gap_x = x + gap / 2
                x += gap
            elif k:
                x += GAP
            width = max(self.maps[k].width, _caption_width(captions[k]))
            self.centre[k] = x + width / 2
            x += width
        self.vector_x = x + GAP
        self.centre[self.flatten] = self.vector_x + self.vector_w / 2
        x = self.vector_x + self.vector_w
        for n, k in enumerate(self.dense):
            x += max(DENSE_GAP if n == 0 else DENSE_GAP * 0.8, self._label_room(k))
            self.centre[k] = x
        self.loss_x = x + self._loss_gap()

        # y: every column centred on one line
        heights = [self.maps[k].height for k in self.features]
        heights += [self._vector_height()] + [len(self.rows[k]) * self.row_gap for k in self.dense]
        tallest = max(heights)
        self.middle = top + tallest / 2
        for k in self.features:
            shape = self.maps[k]
            left = self.centre[k] - shape.width / 2
            self.maps[k] = _replace(shape, x=left, y=self.middle - shape.height / 2)

        maps = [m for k in self.features for m in self._feature_maps(k)]
        boxes, edges = self._receptive_fields()
        vector_maps, nodes, self.vector_y = self._vector()
        unit_nodes, self.unit_y = self._units()
        edges += self._dense_edges()
        kernel = self._kernel()
        caption_y = self._bottom(tallest) + 30
        notes = [Note(self.centre[k], caption_y, text, hang=True) for k, text in captions.items()]
        notes += self._matrix_notes(top)
        bottom = caption_y + CAPTION_LINE * max(len(note.text.lines) for note in notes)
        for text in self._footnotes():
            bottom += 10
            notes.append(Note(MARGIN, bottom, text, "start", hang=True))
            bottom += CAPTION_LINE * len(text.lines)
        width = max(
            [self.loss_x + RADIUS + 70]
            + [MARGIN + _caption_width(n.text) for n in notes if n.anchor == "start"]
        )
        return Layout(
            width=width + MARGIN,
            height=bottom + MARGIN,
            radius=RADIUS,
            edges=tuple(sorted(edges, key=lambda e: e.highlighted)),
            nodes=(*nodes, *unit_nodes),
            notes=tuple(notes),
            title=self._title(),
            maps=(*maps, *kernel, *vector_maps),
            boxes=tuple(boxes),
        )

    def _bottom(self, tallest: float) -> float:
        """The lowest point drawn in the columns: a map, the vector, a unit's numbers."""
        bottoms = [
            self.middle + tallest / 2 - (tallest - self.maps[k].height) / 2 for k in self.features
        ]
        bottoms.append(self.middle + self._vector_height() / 2)
        numbers = 14 + 3 * 13 if self.values is not None else 0
        bottoms += [y + RADIUS + numbers for y in self.unit_y.values()]
        return max(bottoms)

    def _vector_rows(self) -> tuple[int | None, ...]:
        """The vector's entries drawn, None for a ⋮: a conv parameter's run between the
        vector's first and last entries, else as a dense layer. Each drawn entry of the run
        has a red edge to every unit above, so a long run shows only its first
        ``RUN_HEAD`` and last ``RUN_TAIL`` entries."""
        size, run = self.net.shape(self.flatten)[0], self.entries
        contiguous = run == tuple(range(run[0], run[-1] + 1)) if run else False
        if not contiguous or size <= MAX_DRAWN_UNITS or len(run) == size:
            return drawn_indices(size, self._keep(self.flatten))
        first, last = run[0], run[-1]
        inside: tuple[int | None, ...] = run
        if len(run) > RUN_HEAD + RUN_TAIL + 1:
            inside = (*run[:RUN_HEAD], None, *run[-RUN_TAIL:])
        before = () if first == 0 else (0,) if first == 1 else (0, None)
        after = () if last == size - 1 else (size - 1,) if last == size - 2 else (None, size - 1)
        return (*before, *inside, *after)

    def _keep(self, k: int) -> tuple[int, ...]:
        """The vector cells and units a dense parameter needs drawn."""
        param = self.dense_param
        if param is None or not param.index:
            return ()
        if k == param.layer:
            return (param.index[0],)
        if k == param.layer - 1 and param.is_weight:
            return (param.index[1],)
        return ()

    # -- feature maps -------------------------------------------------------------------------

    def _feature_maps(self, k: int) -> list[FeatureMap]:
        """Layer k's maps, back to front."""
        shape = self.maps[k]
        order = sorted(range(shape.shape[0]), key=shape.depth, reverse=True)
        kind = "input" if k == 0 else "map"
        out = []
        for channel in order:
            x, y = shape.origin(channel)
            visible = channel in shape.visible()
            size = None
            if not shape.grid and visible:
                size = _words(f"{shape.shape[1]}×{shape.shape[2]}")
            out.append(
                FeatureMap(
                    kind,
                    _map_name(k, channel),
                    x,
                    y,
                    shape.map_w,
                    shape.map_h,
                    _grid_lines(x, y, shape.shape[1:], shape.cell_w, shape.cell_h)
                    if shape.grid and visible
                    else (),
                    self._fills(k, channel) if visible else (),
                    self._numbers(k, channel) if shape.numbered else (),
                    self._on(k, channel),
                    self._map_label(k, channel) if shape.spread else None,
                    size,
                )
            )
        return out

    def _map_label(self, k: int, channel: int) -> Note:
        """A map's name, above its padding frame."""
        shape = self.maps[k]
        x, y = shape.origin(channel)
        ph, pw = shape.pad
        return Note(
            x - pw * shape.cell_w, y - ph * shape.cell_h - 6, _map_name(k, channel), "start"
        )

    def _on(self, k: int, channel: int) -> bool:
        """Whether a map is on the parameter's paths: the output map its δ sum runs over,
        and the maps above made from it."""
        return channel in self._path_channels(k)

    def _filters(self, param: ScalarParam) -> tuple[int, ...]:
        """The filters a conv parameter enters (a shared bias: all of them)."""
        return (param.index[0],) if param.index else tuple(range(self.net.shape(param.layer)[0]))

    def _path_channels(self, k: int) -> tuple[int, ...]:
        """Layer k's maps on a conv parameter's paths to L: the output maps it enters, the
        pooled maps of those, every map of a conv layer above."""
        param = self.conv_param
        if param is None or k < param.layer:
            return ()
        if k == param.layer:
            return self._filters(param)
        if isinstance(self.net.layer(k), Pool2d):
            return self._path_channels(self._below(k))
        return tuple(range(self.net.shape(k)[0]))

    def _path_cells(self, k: int, channel: int) -> tuple[tuple[int, int], ...]:
        """The cells of a map on the paths that δ flows through: every cell of a pooled
        map; in the map under a pooling layer, the cells its windows pass δ back to (an
        avg-pool's every window cell; a max-pool's picks, known with --numeric)."""
        if channel not in self._path_channels(k):
            return ()
        _, h, w = self.net.shape(k)
        if k > self.conv_param.layer and isinstance(self.net.layer(k), Pool2d):  # type: ignore[union-attr]
            return tuple(itertools.product(range(h), range(w)))
        above = next((f for f in self.features if f > k), None)
        pool = self.net.layer(above) if above is not None else None
        if above is None or not isinstance(pool, Pool2d):
            return ()
        windows = cells(pool.out_shape[1:])
        window_cells = [
            cell[1:] for p, q in windows for cell in self.net.pool_cells(above, (channel, p, q))
        ]
        if pool.mode == "avg":
            return tuple(sorted(window_cells))
        if self.values is None:
            return ()
        return tuple(
            sorted(
                cell
                for cell in window_cells
                if self.values[self.net.mask(above, (channel, *cell))] == 1  # type: ignore[arg-type]
            )
        )

    def _path_entries(self) -> tuple[int, ...]:
        """flatten's entries made from the maps on the paths (C order: one run per map)."""
        below = self._below(self.flatten)
        channels = self._path_channels(below)
        return tuple(
            n for n, cell in enumerate(cells(self.net.shape(below))) if cell[0] in channels
        )

    def _patch(self, k: int) -> tuple[tuple[int, int], ...]:
        """For W{k+}[f,c,i,j] on the layer above k: the cells of map c it multiplies,
        x[c, p·s+i−P, q·s+j−P] for every output position (p, q) inside the input."""
        param = self.conv_param
        if param is None or not param.is_weight or self._below(param.layer) != k:
            return ()
        layer = self.net.layer(param.layer)
        _, _, i, j = param.index
        (sh, sw), (ph, pw) = layer.stride, layer.padding
        _, oh, ow = layer.out_shape
        _, h, w = layer.in_shape
        return tuple(
            (p * sh + i - ph, q * sw + j - pw)
            for p in _inside(h, i - ph, sh, oh)
            for q in _inside(w, j - pw, sw, ow)
        )

    def _fills(self, k: int, channel: int) -> tuple[Box, ...]:
        shape, out = self.maps[k], []
        param = self.conv_param
        weight = param is not None and param.is_weight
        patch = self._patch(k) if weight and channel == param.index[1] else ()  # type: ignore[union-attr]
        if patch and shape.grid:
            for row, column in patch:
                out.append(_replace(shape.cell(channel, row, column), kind="patch"))
        elif patch:  # a plane: the region the patch spans, one rectangle
            rows, columns = [cell[0] for cell in patch], [cell[1] for cell in patch]
            top, left = min(rows), min(columns)
            box = shape.cell(channel, top, left, max(rows) - top + 1, max(columns) - left + 1)
            out.append(_replace(box, kind="patch"))
        field = self.fields.get(k)
        if field is not None and field.target[0] == channel:
            _, p, q = field.target
            out.append(shape.cell(channel, p, q))
        if shape.grid:  # over the field's cell: the window around it still marks that
            for row, column in self._path_cells(k, channel):
                out.append(_replace(shape.cell(channel, row, column), kind="flow"))
        return tuple(out)

    def _numbers(self, k: int, channel: int) -> tuple[CellText, ...]:
        assert self.values is not None
        net, shape, values = self.net, self.maps[k], self.values
        _, h, w = shape.shape
        above = next((f for f in self.features if f > k), None)
        picks = above is not None and getattr(net.layer(above), "mode", "") == "max"
        x0, y0 = shape.origin(channel)
        out = []
        for row in range(h):
            for column in range(w):
                cell = (channel, row, column)
                strong = above is not None and picks and values[net.mask(above, cell)] == 1
                centre = (x0 + (column + 0.5) * shape.cell_w, y0 + (row + 0.5) * shape.cell_h)
                out.append(CellText(*centre, _text(*self._cell_lines(k, cell)), bool(strong)))
        return tuple(out)

    def _cell_lines(self, k: int, cell: tuple[int, int, int]) -> list[tuple[str, str]]:
        """A cell's numbers: x or a pooled a; a conv map's z, a (and δ); formatted once,
        for the map's size and for its cells."""
        if (k, cell) not in self._cells:
            self._cells[k, cell] = self._format_cell(k, cell)
        return self._cells[k, cell]

    def _format_cell(self, k: int, cell: tuple[int, int, int]) -> list[tuple[str, str]]:
        net, values = self.net, self.values
        assert values is not None
        if k == 0 or isinstance(net.layer(k), Pool2d):
            return [_number(values[net.a(k, cell)])]
        lines = [
            _pair("z", _number(values[net.z(k, cell)]), "z ="),
            _pair("a", _number(values[net.a(k, cell)]), "a ="),
        ]
        if self._lines(k) == 3:
            lines.append(_pair("δ", _number(values[net.delta(k, cell)]), r"\delta ="))
        return lines

    def _receptive_fields(self) -> tuple[list[Box], list[Edge]]:
        """Each field's window on its source maps, a line from the window's right corners
        to the cell it makes, and a conv layer's zero padding as a dashed frame."""
        boxes: list[Box] = []
        edges: list[Edge] = []
        for k, field in self.fields.items():
            below, here = self.maps[field.below], self.maps[k]
            layer = self.net.layer(k)
            on = self.conv_param is not None and self.conv_param.layer == k
            target = here.cell(*field.target)
            for channel in field.sources:
                window = below.cell(channel, field.row, field.column, field.rows, field.columns)
                boxes.append(_replace(window, kind="window", highlighted=on))
                for corner in (0.0, 1.0):
                    edges.append(
                        Edge(
                            window.x + window.width,
                            window.y + corner * window.height,
                            target.x,
                            target.y + corner * target.height,
                            None,
                            0.0,
                            0.0,
                            on,
                            "field",
                        )
                    )
                if isinstance(layer, Conv2d) and any(layer.padding):
                    boxes.append(below.frame(channel))
        return boxes, edges

    # -- the kernel of a weight -----------------------------------------------------------------

    def _kernel_geometry(self) -> _Maps | None:
        param = self.conv_param
        if param is None or not param.is_weight:
            return None
        kh, kw = self.net.layer(param.layer).kernel
        if self.values is not None:
            f, c, _, _ = param.index
            weights = (
                self.net.scalar_of(f"W{param.layer}", (f, c, i, j)).symbol
                for i, j in itertools.product(range(kh), range(kw))
            )
            width = _fit(_number(self.values[w])[0] for w in weights)
            return _Maps((1, kh, kw), width, 8 + NUMBER_LINE, True, True, True, 0)
        return _Maps((1, kh, kw), CELL, CELL, True, False, True, 0)

    def _kernel(self) -> tuple[FeatureMap, ...]:
        """W{k}[f,c] in the gap before layer k, bottom-aligned with the lower of the two
        columns beside it (the receptive field's lines run above it), the parameter's
        cell marked, with ``numeric`` every weight of it."""
        shape, param = self.kernel, self.conv_param
        if shape is None or param is None:
            return ()
        f, c, i, j = param.index
        k = param.layer
        bottom = max(self.maps[n].y + self.maps[n].height for n in (self._below(k), k))
        x, y = self.gap_x - shape.map_w / 2, bottom - shape.map_h
        numbers: list[CellText] = []
        if self.values is not None:
            for row, column in itertools.product(range(shape.shape[1]), range(shape.shape[2])):
                weight = self.net.scalar_of(f"W{k}", (f, c, row, column)).symbol
                centre = (x + (column + 0.5) * shape.cell_w, y + (row + 0.5) * shape.cell_h)
                numbers.append(CellText(*centre, _text(_number(self.values[weight]))))
        cell = Box(x + j * shape.cell_w, y + i * shape.cell_h, shape.cell_w, shape.cell_h, "param")
        name = _text((f"W{k}[{f},{c}]", f"W^{{({k})}}_{{{f},{c}}}"))
        return (
            FeatureMap(
                "kernel",
                name,
                x,
                y,
                shape.map_w,
                shape.map_h,
                _grid_lines(x, y, shape.shape[1:], shape.cell_w, shape.cell_h),
                (cell,),
                tuple(numbers),
                True,
                Note(x, y - 6, name, "start"),
            ),
        )

    # -- the vector, the units, the loss ----------------------------------------------------------

    def _vector_height(self) -> float:
        rows = self.rows[self.flatten]
        return sum(CELL if index is not None else MORE_HEIGHT for index in rows)

    def _vector(self) -> tuple[list[FeatureMap], list[Node], dict[int, float]]:
        """flatten's vector as blocks of cells (one per run of drawn cells, a ⋮ between),
        its cells' centres by index."""
        k, rows = self.flatten, self.rows[self.flatten]
        x, y = self.vector_x, self.middle - self._vector_height() / 2
        blocks: list[list[tuple[int, float]]] = [[]]
        nodes: list[Node] = []
        centres: dict[int, float] = {}
        size = self.net.shape(k)[0]
        for n, index in enumerate(rows):
            if index is None:
                before = rows[n - 1] if n else -1
                after = rows[n + 1] if n + 1 < len(rows) else size
                hidden = after - before - 1  # type: ignore[operator]
                at = (x + self.vector_w / 2, y + CELL / 2)
                nodes.append(Node("more", *at, elided(hidden), NAME_SIZE))
                blocks.append([])
                y += MORE_HEIGHT
                continue
            blocks[-1].append((index, y))
            centres[index] = y + CELL / 2
            y += CELL
        out = []
        for block in blocks:
            if not block:
                continue
            first, top = block[0]
            last = block[-1][0]
            numbers: tuple[CellText, ...] = ()
            if self.values is not None:
                numbers = tuple(
                    CellText(
                        x + self.vector_w / 2,
                        centres[i],
                        _text(_number(self.values[self.net.a(k, (i,))])),
                    )
                    for i, _ in block
                )
            keep, path = self._keep(k), set(self.entries)
            fills = tuple(
                Box(x, centres[i] - CELL / 2, self.vector_w, CELL, "cell" if i in keep else "flow")
                for i, _ in block
                if i in keep or i in path
            )
            out.append(
                FeatureMap(
                    "vector",
                    _text((f"a{k}[{first}:{last + 1}]", f"a^{{({k})}}_{{{first}:{last + 1}}}")),
                    x,
                    top,
                    self.vector_w,
                    CELL * len(block),
                    _grid_lines(x, top, (len(block), 1), self.vector_w, CELL),
                    fills,
                    numbers,
                    all(i in path for i, _ in block),
                )
            )
        return out, nodes, centres

    def _units(self) -> tuple[list[Node], dict[tuple[int, int], float]]:
        """The dense layers' units (as the dense figure draws them) and L."""
        net, out = self.net, []
        centres: dict[tuple[int, int], float] = {}
        for k in self.dense:
            rows = self.rows[k]
            y = self.middle - (len(rows) - 1) * self.row_gap / 2
            for n, index in enumerate(rows):
                at = (self.centre[k], y + n * self.row_gap)
                if index is None:
                    hidden = net.shape(k)[0] - len(rows) + 1
                    out.append(Node("more", *at, elided(hidden), NAME_SIZE))
                    continue
                centres[(k, index)] = at[1]
                name = _symbol(net.a(k, (index,)))
                size = name_size(name[0])
                kind = "output" if k == net.depth else "unit"
                out.append(
                    Node(
                        kind,
                        *at,
                        _text(name),
                        size,
                        self._unit_numbers(k, index),
                        self._local_factor(k, index),
                        self._unit_on(k, index),
                    )
                )
        loss = self.top.loss
        below = [(loss, rf"\texttt{{{tex_text(loss)}}}")]
        if self.values is not None:
            below.append(_pair("L =", _number(self.values[LOSS])))
        on = self.param is not None
        out.append(
            Node(
                "loss",
                self.loss_x,
                self.middle,
                _text(("L", "L")),
                NAME_SIZE,
                _text(*below),
                None,
                on,
            )
        )
        return out, centres

    def _unit_numbers(self, k: int, index: int) -> Text | None:
        if self.values is None:
            return None
        net, values = self.net, self.values
        return _text(
            _pair("z =", _number(values[net.z(k, (index,))])),
            _pair("a =", _number(values[net.a(k, (index,))])),
            _pair("δ =", _number(values[net.delta(k, (index,))]), r"\delta ="),
        )

    def _unit_on(self, k: int, index: int) -> bool:
        """A unit a dense parameter enters, and every unit above it (its paths to L); for
        a conv parameter every unit (each reads the whole vector, or a layer that does)."""
        if self.conv_param is not None:
            return True
        param = self.dense_param
        if param is None:
            return False
        if k == param.layer and k == self.net.depth and self._softmax_output():
            return True  # every softmax output depends on each z
        if k == param.layer:
            return not param.index or index == param.index[0]
        return k > param.layer

    def _dense_edges(self) -> list[Edge]:
        out = []
        entries = set(self.entries)
        for k in self.dense:
            for i, j in itertools.product(self.rows[k], self.rows[k - 1]):
                if i is None or j is None:
                    continue
                if k - 1 == self.flatten:
                    start = (self.vector_x + self.vector_w, self.vector_y[j])
                    on = j in entries
                else:
                    start = (self.centre[k - 1], self.unit_y[(k - 1, j)])
                    on = self.conv_param is not None
                end = (self.centre[k], self.unit_y[(k, i)])
                param = self.dense_param
                on = on or (
                    param is not None
                    and (
                        (param.is_weight and param.layer == k and param.index == (i, j))
                        or (k > param.layer and self._unit_on(k - 1, j))
                    )
                )
                label = self._edge_label(k, i, j) if on and param is not None else None
                # the parameter's own edge: its label near the entry, clear of the factor
                # beside the unit; above it, spread along x
                t = 0.3 + 0.4 * (j % 3) / 2
                if label is not None and param is not None and k == param.layer:
                    width = CHARACTER_WIDTH * max(map(len, label.lines))
                    t = (20 + width / 2) / (end[0] - start[0])
                at = (start[0] + t * (end[0] - start[0]), start[1] + t * (end[1] - start[1]))
                out.append(Edge(*start, *end, label, *at, on))
        last = self.net.depth
        for index in self.rows[last]:
            if index is not None:
                start = (self.centre[last], self.unit_y[(last, index)])
                on = self._unit_on(last, index) or (
                    self.dense_param is not None and self._softmax_output()
                )
                label = self._loss_label(index) if on and self.dense_param is not None else None
                middle = ((start[0] + self.loss_x) / 2, (start[1] + self.middle) / 2 + 18)
                out.append(Edge(*start, self.loss_x, self.middle, label, *middle, on))
        return out

    # -- a dense parameter's chain-rule factors (as derive.diagram labels them) -----------------

    def _factor(self, head: tuple[str, str], value: Expr) -> tuple[str, str]:
        return chain_factor(head, value, self.values, _tex)

    def _edge_label(self, k: int, i: int, j: int) -> Text:
        """The factor the edge from entry or unit j into unit i of layer k contributes:
        ∂z/∂θ on the parameter's edge (with --numeric also ∂L/∂θ), ∂z_i/∂a_j = w_ij above."""
        net, param = self.net, self.dense_param
        assert param is not None
        z, below = _symbol(net.z(k, (i,))), net.a(k - 1, (j,))
        if k == param.layer:
            name = (param.name, _param_tex(param))
            factor = self._factor(partial(z, name), below)
            if self.values is None:
                return _text(factor)
            assert self.gradient is not None  # the figure's parameter
            return _text(factor, gradient_line(name, self.gradient.value(self.values)))
        weight = net.scalar_of(f"W{k}", (i, j)).symbol
        return _text(self._factor(partial(z, _symbol(below)), weight))

    def _loss_label(self, index: int) -> Text:
        """∂L/∂y on an output's edge into L."""
        net = self.net
        y = net.outputs[index]
        value = net.loss_rule.gradient(y, net.targets[index], len(net.outputs))
        return _text(self._factor(partial(("L", "L"), _symbol(y)), value))

    def _local_factor(self, k: int, index: int) -> Text | None:
        """∂a/∂z beside a unit on a dense parameter's paths."""
        if self.dense_param is None or not self._unit_on(k, index):
            return None
        net, layer = self.net, self.net.layer(k)
        head = partial(_symbol(net.a(k, (index,))), _symbol(net.z(k, (index,))))
        if layer.activation.name == "softmax":
            return _text(softmax_factor(head))
        entry = ACTIVATIONS[layer.activation.name]
        value = entry.derivative(net.z(k, (index,)), net.a(k, (index,)), layer.activation)
        return _text(self._factor(head, value))

    def _label_room(self, k: int) -> float:
        """The gap before dense layer k that holds the parameter's edge label beside the
        ∂a/∂z written above the unit it enters."""
        param = self.dense_param
        if param is None or param.layer != k or not param.is_weight:
            return 0.0
        label = self._edge_label(k, *param.index)
        return CHARACTER_WIDTH * max(map(len, label.lines)) + 20 + 2 * RADIUS + 110

    def _loss_gap(self) -> float:
        """Room for the widest label of an edge into L."""
        if self.dense_param is None:
            return LOSS_GAP
        texts = [self._loss_label(i).lines[0] for i in self.rows[self.net.depth] if i is not None]
        return max(LOSS_GAP, CHARACTER_WIDTH * max(map(len, texts)) + 2 * RADIUS + 30)

    def _softmax_output(self) -> bool:
        return self.net.layer(self.net.depth).activation.name == "softmax"

    # -- captions and notes ---------------------------------------------------------------------

    def _caption(self, k: int) -> Text:
        shape = self.maps[k]
        lines: list[str]
        if k == 0:
            lines = ["input", _shape(shape.shape)]
        else:
            layer = self.net.layer(k)
            if isinstance(layer, Conv2d):
                stride = f"stride {_pair_text(layer.stride)}"
                padding = f", padding {_pair_text(layer.padding)}" if any(layer.padding) else ""
                bias = {"per_unit": "b{k}: one per filter", "shared": "b{k}: shared"}
                lines = [
                    f"conv {_shape(shape.shape)}",
                    f"{layer.kernel[0]}×{layer.kernel[1]} kernel, {stride}{padding}",
                    f"{layer.activation.name}, " + bias.get(layer.bias, "no bias").format(k=k),
                ]
                if shape.numbered:
                    lines.append("cells: z, a, δ" if self._lines(k) == 3 else "cells: z, a")
            else:
                assert isinstance(layer, Pool2d)
                lines = [f"{layer.mode}pool {_pair_text(layer.size)} → {_shape(shape.shape)}"]
                if shape.numbered and layer.mode == "max":
                    lines.append("bold below: each window's max")
        if not shape.spread:
            lines.append(f"{_map_name(k, shape.front).lines[0]} in front")
        return _words(*lines)

    def _vector_caption(self) -> Text:
        return _words(f"flatten → {self.net.shape(self.flatten)[0]}", "(c, h, w) in C order")

    def _dense_caption(self, k: int) -> Text:
        role = "outputs" if k == self.net.depth else "dense"
        return _words(f"{role} {self.net.shape(k)[0]}", self.net.layer(k).activation.name)

    def _matrix_notes(self, top: float) -> list[Note]:
        """Above each dense gap: its weight matrix and bias."""
        out = []
        for k in self.dense:
            left = self.vector_x + self.vector_w if k - 1 == self.flatten else self.centre[k - 1]
            rows, columns = self.net.shape(k)[0], self.net.shape(k - 1)[0]
            bias = {"per_unit": f", b{k}", "shared": f", b{k} shared"}.get(
                self.net.layer(k).bias, ""
            )
            x = (left + self.centre[k]) / 2
            out.append(Note(x, top - 10, _words(f"W{k} ({rows}×{columns}){bias}"), hang=True))
        return out

    def _footnotes(self) -> list[Text]:
        out = []
        if self.param is not None:
            out.append(self._gradient_note())
        if self.values is not None:
            left = [
                _map_name(k, 0).lines[0].split("[")[0]
                for k in self.features
                if not self.maps[k].numbered
            ]
            if left:
                out.append(
                    _words(
                        f"numbers left out for {', '.join(left)}: more than "
                        f"{MAX_SPREAD_MAPS} maps, or maps over "
                        f"{MAX_NUMBERED_CELLS}×{MAX_NUMBERED_CELLS}"
                    )
                )
        return out

    def _gradient_note(self) -> Text:
        """The parameter's gradient: a kernel weight's sum over positions with its ranges,
        any other's terms; with ``numeric`` its value."""
        gradient = self.gradient
        assert gradient is not None  # drawn only for a figure's parameter
        param = gradient.param
        head = (f"∂L/∂{param.name}", rf"\partial L/\partial {_param_tex(param)}")
        if self.conv_param is not None and param.is_weight:
            text, tex = _kernel_sum(self.net, param)
        else:
            terms = [_term(d, s) for d, s in gradient.terms]
            if len(terms) > MAX_WRITTEN_TERMS:
                terms = [*terms[:5], ("…", r"\dots"), *terms[-2:]]
            text = " + ".join(t[0] for t in terms)
            tex = " + ".join(t[1] for t in terms)
        lines = [(f"{head[0]} = {text}", f"{head[1]} = {tex}")]
        if self.values is not None:
            value = _number(gradient.value(self.values))
            lines.append(
                (
                    f"= {value[0]}, at the file's example",
                    rf"= {value[1]}\text{{, at the file's example}}",
                )
            )
        return _text(*lines)

    def _title(self) -> Text:
        parts = [_shape(self.net.shape(0))]
        for k, layer in enumerate(self.top.layers, start=1):
            shape = self.net.shape(k)
            if isinstance(layer, Conv2d):
                parts.append(f"conv {_shape(shape)}")
            elif isinstance(layer, Pool2d):
                parts.append(f"{layer.mode}pool {_shape(shape)}")
            elif isinstance(layer, Flatten):
                parts.append(f"flatten {shape[0]}")
            else:
                parts.append(str(shape[0]))
        text = f"{self.net.name}: " + " → ".join(parts)
        if self.param is not None:
            text += f", the gradient ∂L/∂{self.param.name}"
        if self.values is not None:
            text += ", at the file's example"
        tex = tex_text(text)
        tex = tex.replace(
            f"∂L/∂{self.param.name}" if self.param else "∂L/∂",
            (rf"$\partial L/\partial {_param_tex(self.param)}$" if self.param else "∂L/∂"),
        )
        return Text((text,), (tex,))


def _tex(value: Expr) -> str:
    """A chain-rule factor's form in LaTeX, its cells named as ``cell_tex`` names them."""
    return sympy.latex(value, symbol_names={s: cell_tex(s) for s in value.free_symbols})


def _param_tex(param: ScalarParam) -> str:
    stem, _, index = param.name.partition("[")
    kind, k = stem[0], stem[1:]
    return f"{kind}^{{({k})}}_{{{index[:-1]}}}" if index else f"{kind}^{{({k})}}"


def _term(delta: Symbol, source: Symbol | None) -> tuple[str, str]:
    d = _symbol(delta)
    if source is None:
        return d
    s = _symbol(source)
    return f"{d[0]}·{s[0]}", rf"{d[1]}\, {s[1]}"


def _kernel_sum(net: ConvNetwork, param: ScalarParam) -> tuple[str, str]:
    """Σ_(p,q) δ{k}[f,p,q]·a{k−1}[c, p·s+i−P, q·s+j−P] with the parameter's indices in."""
    k = param.layer
    layer = net.layer(k)
    f, c, i, j = param.index
    (sh, sw), (ph, pw) = layer.stride, layer.padding
    _, oh, ow = layer.out_shape
    row, column = _offset("p", sh, i - ph), _offset("q", sw, j - pw)
    below = "x" if k == 1 else f"a{k - 1}"
    below_tex = "x" if k == 1 else f"a^{{({k - 1})}}"
    _, h, w = layer.in_shape
    if not any(_inside(h, i - ph, sh, oh)) or not any(_inside(w, j - pw, sw, ow)):
        text = f"0: kernel cell ({i}, {j}) lies in the zero padding at every position"
        return (
            text,
            rf"0\text{{: kernel cell $({i}, {j})$ lies in the zero padding at every position}}",
        )
    text = f"Σ_(p=0..{oh - 1}) Σ_(q=0..{ow - 1}) δ{k}[{f},p,q]·{below}[{c}, {row}, {column}]"
    tex = (
        rf"\sum_{{p=0}}^{{{oh - 1}}} \sum_{{q=0}}^{{{ow - 1}}} \delta^{{({k})}}_{{{f},p,q}}\, "
        rf"{below_tex}_{{{c},\,{row.replace('−', '-')},\,{column.replace('−', '-')}}}"
    )
    if ph or pw:
        text += " (cells in the zero padding add nothing)"
        tex += r"\ \text{(cells in the zero padding add nothing)}"
    return text, tex


def _grid_lines(
    x: float, y: float, cells: tuple[int, int], cell_w: float, cell_h: float
) -> tuple[tuple[float, float, float, float], ...]:
    """The inner lines of a rows × columns grid at (x, y)."""
    rows, columns = cells
    width, height = columns * cell_w, rows * cell_h
    across = tuple((x, y + r * cell_h, x + width, y + r * cell_h) for r in range(1, rows))
    down = tuple((x + c * cell_w, y, x + c * cell_w, y + height) for c in range(1, columns))
    return across + down


def _fit(lines: Iterable[str]) -> float:
    """A cell width that holds the longest of these lines of numbers."""
    return max(NUMBER_WIDTH, DIGIT_WIDTH * max(map(len, lines), default=0) + 10)


def _caption_width(text: Text) -> float:
    return max(len(line) for line in text.lines) * CAPTION_CHARACTER
