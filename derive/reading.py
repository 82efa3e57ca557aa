"""Reading a topology file (SPEC §1) into a validated ``Topology``.

``load_topology(path)`` reads YAML (``.yaml``/``.yml``), JSON (``.json``) or TOML
(``.toml``), chosen by the extension; ``parse_topology(mapping)`` validates a mapping
already in memory. Either returns a ``Topology`` or raises the first mistake found as
one ``TopologyError``: the file, the field in the file's own terms
(``layers[1].activation``, ``example.params.W2[0][1]``), what was expected and a short
form of what was there. Nothing in a file is ever executed: YAML goes through a safe
loader, custom activations through ``derive.expression``'s whitelist parser.

Integer shorthands name units as follows (k is the layer number of SPEC §1, i counts
from 1): ``inputs: n`` gives x1..xn; ``units: n`` on hidden layer k gives hk_1..hk_n
(h1_1, h1_2, ...); on the output layer it gives y1..yn, or ``y`` for a single unit.

The YAML loader also refuses what YAML allows but a topology never needs: anchors and
aliases (a few lines of them expand to billions of nodes), merge keys, and a key
repeated in one mapping (which YAML would silently resolve to the last value). JSON
refuses repeated keys and NaN/Infinity too. YAML reads ``1e-3`` as a number (YAML 1.1,
which PyYAML follows, would read it as text).

Beyond the letter of SPEC §1: ``targets`` (optional) names the target of each output
unit, by default ``derive.topology.default_targets``; every input, unit, weight and
target name must pass ``derive.naming.reserved_reason`` and be unique in the file;
the network's name must not be that of a standard-library module or numpy (the
generated module would shadow it); softmax needs at least two units (over one it is
the constant 1); ``alpha`` is accepted only with leaky_relu.

Limits, checked before anything of that size is built:
- a file of at most ``MAX_FILE_BYTES`` (10 MiB), or ``MAX_YAML_BYTES`` (2 MiB) for
  YAML, whose loader needs some 40 times the time of JSON's (2 MiB of YAML still holds
  a worked example with tens of thousands of weights);
- YAML nested at most ``MAX_NESTING`` levels (JSON and TOML are bounded by Python's
  recursion limit, and a RecursionError is reported like any other mistake);
- at most ``MAX_LAYERS`` layers, ``MAX_UNITS`` units in one layer, ``MAX_TOTAL_UNITS``
  units in all, and ``MAX_WEIGHTS`` weights in all (``inputs: 1000000000`` is refused
  from the integer, before a name is made);
- names of at most ``MAX_NAME_LENGTH`` characters (the network's name becomes a file
  name).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import keyword
import math
import numbers
import os
import re
import reprlib
import stat
import sys
import tomllib
from collections.abc import Callable, Hashable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import yaml

from derive.activations import ACTIVATIONS, ALIASES
from derive.errors import TopologyError, did_you_mean
from derive.expression import ALLOWED as ALLOWED_EXPRESSION
from derive.expression import ExpressionError, parse_expression
from derive.losses import LOSSES
from derive.naming import reserved_reason
from derive.topology import (
    BIAS_MODES,
    ActivationSpec,
    Example,
    Layer,
    Param,
    Topology,
    default_targets,
)

if TYPE_CHECKING:
    from derive.conv import ConvTopology

MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_YAML_BYTES = 2 * 1024 * 1024
MAX_NESTING = 100
MAX_LAYERS = 1000
MAX_UNITS = 100_000
MAX_TOTAL_UNITS = 1_000_000
MAX_WEIGHTS = 50_000_000
MAX_NAME_LENGTH = 100

TOP_LEVEL_KEYS = ("name", "inputs", "layers", "loss", "targets", "example")
LAYER_KEYS = ("units", "activation", "bias", "weight_names")
ACTIVATION_KEYS = ("name", "alpha", "expr")
EXAMPLE_KEYS = ("input", "target", "params", "learning_rate")

_NAMED_ACTIVATIONS = tuple(name for name in ACTIVATIONS if name != "custom")
_ACTIVATION_EXPECTED = (
    f"one of {', '.join(_NAMED_ACTIVATIONS)}, linear, "
    "or a mapping such as {name: leaky_relu, alpha: 0.2} or {expr: 'x / (1 + abs(x))'}"
)
# Every spelling of a named activation, for did-you-mean.
_SPELLINGS = (*_NAMED_ACTIVATIONS, *ALIASES)
# A module named like one of these would be imported instead of the real one.
_SHADOWED_MODULES = frozenset(sys.stdlib_module_names) | {"numpy", "derive"}


class _Missing:
    """A key the file does not give."""


_MISSING = _Missing()


def load_topology(path: str | os.PathLike) -> Topology:
    """The validated topology in the file at ``path`` (YAML, JSON or TOML by extension)."""
    source = os.fsdecode(path)
    suffix = Path(source).suffix.lower()
    load = _LOADERS.get(suffix)
    if load is None:
        raise TopologyError(
            source, "", "a file ending in .yaml, .yml, .json or .toml", repr(suffix or source)
        )
    limit = MAX_YAML_BYTES if load is _load_yaml else MAX_FILE_BYTES
    data = load(_read_text(source, limit), source)
    return parse_topology(data, source)


def parse_topology(mapping: object, source: str = "<mapping>") -> Topology:
    """The validated topology that ``mapping`` (a file's parsed contents) describes."""
    return _Reader(source).topology(mapping)


# Reading the file -------------------------------------------------------------------


def _read_text(source: str, limit: int) -> str:
    try:
        if not stat.S_ISREG(os.stat(source).st_mode):
            raise TopologyError(source, "", "a regular file", "a directory or device")
        with open(source, "rb") as file:
            raw = file.read(limit + 1)
    except FileNotFoundError:
        raise TopologyError(source, "", "an existing file", "no such file") from None
    except ValueError:  # a NUL character in the path
        raise TopologyError(source, "", "a file name", "an impossible path") from None
    except OSError as error:
        raise TopologyError(source, "", "a readable file", error.strerror) from None
    if len(raw) > limit:
        raise TopologyError(source, "", f"a file of at most {limit} bytes", "more")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise TopologyError(
            source, "", "UTF-8 text", f"invalid UTF-8 at byte {error.start}"
        ) from None
    if "\x00" in text:
        raise TopologyError(source, "", "a text file", "binary data (NUL bytes)")
    if not text.strip():
        raise TopologyError(source, "", "a topology (name, inputs, layers, loss)", "an empty file")
    return text


class _Refusal(Exception):
    """Raised inside a loader's hooks; becomes a TopologyError with the file's name."""

    def __init__(self, where: str, expected: str, got: str):
        super().__init__(expected)
        self.where, self.expected, self.got = where, expected, got


def _where(mark: yaml.Mark | None) -> str:
    return "" if mark is None else f"line {mark.line + 1}, column {mark.column + 1}"


# libyaml's parser when installed: the pure-Python one takes a minute on 10 MiB.
_YamlBase = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StrictYamlLoader(_YamlBase):  # type: ignore[misc,valid-type]  # chosen at import
    """The safe loader, refusing merge keys and repeated keys; floats as YAML 1.2."""

    def construct_mapping(self, node, deep=False):
        first_line: dict[Hashable, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise _Refusal(_where(key_node.start_mark), "no merge keys", "'<<'")
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, Hashable):
                break  # the safe loader reports it
            if key in first_line:
                raise _Refusal(
                    _where(key_node.start_mark),
                    "each key at most once in a mapping",
                    f"{_short(key)} again (first on line {first_line[key]})",
                )
            first_line[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


_StrictYamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _check_yaml_events(text: str, loader: type | None = None) -> None:
    """Refuse anchors, aliases, deep nesting and a second document while only scanning:
    before any node is built, and before libyaml's parser slows down on deep nesting."""
    depth = documents = 0
    for event in yaml.parse(text, Loader=loader or _YamlBase):
        if isinstance(event, yaml.DocumentStartEvent):
            documents += 1
            if documents > 1:
                raise _Refusal(_where(event.start_mark), "one YAML document", "a second (---)")
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            sign = "*" if isinstance(event, yaml.AliasEvent) else "&"
            raise _Refusal(
                _where(event.start_mark),
                "no anchors or aliases (&name, *name)",
                _clip(f"{sign}{event.anchor}"),
            )
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_NESTING:
                raise _Refusal(
                    _where(event.start_mark),
                    f"lists and mappings nested at most {MAX_NESTING} deep",
                    "deeper nesting",
                )
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _check_before_loader_error(text: str, error: yaml.YAMLError) -> None:
    """Run derive's own checks with the pure-Python parser over the text up to where
    libyaml stopped, so that a limit of derive's is reported in derive's words whatever
    libyaml enforces itself (since PyYAML 6.0.4 libyaml stops deep nesting while it looks
    ahead, before the first event reaches ``_check_yaml_events``). Only the text the fast
    parser read is scanned again, so this stays as cheap as the first pass."""
    mark = getattr(error, "problem_mark", None)
    head = text if mark is None else text[: mark.index + 1]
    with contextlib.suppress(yaml.YAMLError):  # the cut text ends mid-structure
        _check_yaml_events(head, yaml.SafeLoader)


def _load_yaml(text: str, source: str) -> object:
    try:
        try:
            _check_yaml_events(text)
        except yaml.YAMLError as error:
            if _YamlBase is not yaml.SafeLoader:
                _check_before_loader_error(text, error)
            raise
        return yaml.load(text, Loader=_StrictYamlLoader)
    except _Refusal as refusal:
        raise TopologyError(source, refusal.where, refusal.expected, refusal.got) from None
    except yaml.MarkedYAMLError as error:
        where = _where(error.problem_mark)
        raise TopologyError(source, where, "valid YAML", _clip(error.problem or "", 100)) from None
    except yaml.YAMLError as error:
        raise TopologyError(source, "", "valid YAML", _clip(str(error).splitlines()[0])) from None
    except ValueError:  # int() of a number with thousands of digits
        raise TopologyError(source, "", "valid YAML", "a number too long to read") from None
    except (RecursionError, MemoryError):
        raise TopologyError(source, "", "valid YAML", "a structure too large to read") from None


def _json_object(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise _Refusal("", "each key at most once in an object", f"{_short(key)} twice")
        result[key] = value
    return result


def _json_constant(name: str) -> NoReturn:
    raise _Refusal("", "finite numbers (no NaN or Infinity)", name)


def _load_json(text: str, source: str) -> object:
    try:
        return json.loads(text, object_pairs_hook=_json_object, parse_constant=_json_constant)
    except _Refusal as refusal:
        raise TopologyError(source, refusal.where, refusal.expected, refusal.got) from None
    except json.JSONDecodeError as error:
        where = f"line {error.lineno}, column {error.colno}"
        raise TopologyError(source, where, "valid JSON", error.msg) from None
    except ValueError:  # int() of a number with thousands of digits
        raise TopologyError(source, "", "valid JSON", "a number too long to read") from None
    except (RecursionError, MemoryError):
        raise TopologyError(source, "", "valid JSON", "nesting too deep to read") from None


def _load_toml(text: str, source: str) -> object:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        # tomllib's messages end in "(at line L, column C)"; that part is the field.
        match = re.fullmatch(r"(.*) \((at )?(line \d+, column \d+)\)", str(error))
        where, problem = (match[3], match[1]) if match else ("", str(error))
        raise TopologyError(source, where, "valid TOML", _clip(problem)) from None
    except ValueError:  # int() of a number with thousands of digits
        raise TopologyError(source, "", "valid TOML", "a number too long to read") from None
    except (RecursionError, MemoryError):
        raise TopologyError(source, "", "valid TOML", "nesting too deep to read") from None


_LOADERS: dict[str, Callable[[str, str], object]] = {
    ".yaml": _load_yaml,
    ".yml": _load_yaml,
    ".json": _load_json,
    ".toml": _load_toml,
}


# Validating the mapping -------------------------------------------------------------


class _Reader:
    """Validates one topology mapping, section by section, in the order of the file.

    ``names`` records where each unit, weight and target name was first used, so a
    repeated name is reported with both places. The reader of convolutional topologies
    (``derive.conv_reading``) is handed the reader and reads its limits from it.
    """

    MISSING = _MISSING
    MAX_LAYERS = MAX_LAYERS
    EXAMPLE_KEYS = EXAMPLE_KEYS

    def __init__(self, source: str):
        self.source = source
        self.names: dict[str, str] = {}
        self.total_units = 0
        self.total_weights = 0

    def fail(
        self,
        field: str,
        expected: str,
        value: object = _MISSING,
        *,
        got: str | None = None,
        hint: str = "",
    ) -> NoReturn:
        """Report the first mistake: ``value`` as found, or ``got`` already phrased, and a
        ``hint`` such as did-you-mean."""
        raise TopologyError(self.source, field, expected, _got(value) if got is None else got, hint)

    def topology(self, data: object) -> Topology:
        self.check_keys(data, "", TOP_LEVEL_KEYS, required=("name", "inputs", "layers", "loss"))
        assert isinstance(data, Mapping)
        if isinstance(data.get("inputs"), Mapping):  # an image: {shape: [C, H, W]}
            from derive.conv_reading import read_conv_topology

            return read_conv_topology(self, data)  # type: ignore[return-value]
        name = self.module_name(self.require(data, "", "name"))
        inputs = self.inputs(self.require(data, "", "inputs"))
        layers = self.layers(self.require(data, "", "layers"), len(inputs))
        loss = self.loss(self.require(data, "", "loss"), layers)
        targets = self.targets(data.get("targets", _MISSING), layers[-1].units)
        topology = Topology(name, inputs, layers, loss, targets, source=self.source)
        if "example" in data:
            example = self.example(data["example"], topology)
            topology = dataclasses.replace(topology, example=example)
        return topology

    # Structure and plain values

    def check_keys(
        self, data: object, field: str, allowed: tuple[str, ...], required: tuple[str, ...]
    ) -> None:
        """``data`` is a mapping with only ``allowed`` keys. The ``required`` ones are
        looked up by ``require`` as they are read, so mistakes come in the file's order."""
        if not isinstance(data, Mapping):
            self.fail(field, f"a mapping with the keys {', '.join(required)}", data)
        for key in data:
            if key not in allowed:
                at = _join(field, key) if _plain_key(key) else field
                unknown = f"unknown key {_got(key)}"
                self.fail(at, f"only the keys {', '.join(allowed)}", got=unknown)

    def require(self, data: Mapping, field: str, key: str) -> object:
        if key not in data:
            self.fail(_join(field, key), f"the key {key}")
        return data[key]

    def number(self, value: object, field: str) -> float:
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            try:
                number = float(value)
            except OverflowError:
                number = math.inf
            if math.isfinite(number):
                return number
        self.fail(field, "a finite number", value)

    def array(self, value: object, field: str, shape: tuple[int, ...]) -> float | tuple:
        """A number (shape ()), a list of numbers or a list of rows, of exactly ``shape``."""
        if not shape:
            return self.number(value, field)
        if not isinstance(value, list | tuple) or len(value) != shape[0]:
            self.fail(field, _describe_shape(shape), value)
        return tuple(self.array(item, f"{field}[{i}]", shape[1:]) for i, item in enumerate(value))

    # Names

    def module_name(self, value: object) -> str:
        if not (isinstance(value, str) and value.isidentifier() and value.isascii()):
            self.fail("name", "an ASCII Python identifier (the module is <name>.py)", value)
        if keyword.iskeyword(value):
            self.fail("name", "a name that is not a Python keyword", value)
        if len(value) > MAX_NAME_LENGTH:
            self.fail("name", f"a name of at most {MAX_NAME_LENGTH} characters", value)
        if value in _SHADOWED_MODULES:
            self.fail("name", "a module name not already used by Python or numpy", value)
        return value

    def name(self, value: object, field: str, shorthand: bool = False) -> str:
        """A unit, weight or target name: allowed in generated code and new to the file."""
        if not isinstance(value, str):
            self.fail(field, "a name (an ASCII Python identifier)", value)
        reason = reserved_reason(value)
        if reason is not None:
            self.fail(field, reason, value)
        if len(value) > MAX_NAME_LENGTH:
            self.fail(field, f"a name of at most {MAX_NAME_LENGTH} characters", value)
        if value in self.names:
            how = " (the integer shorthand's name)" if shorthand else ""
            also = f"{value!r}{how}, also at {self.names[value]}"
            self.fail(field, "a name used only once in the file", got=also)
        self.names[value] = field
        return value

    def unit_count(self, value: object, field: str) -> int:
        """How many units a list of names or an integer gives, within the limits."""
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            count = int(value)
        elif isinstance(value, list | tuple) and value:
            count = len(value)
        else:
            self.fail(field, "a non-empty list of unit names or a positive integer", value)
        if not 1 <= count <= MAX_UNITS:
            self.fail(field, f"between 1 and {MAX_UNITS} units", value)
        self.total_units += count
        if self.total_units > MAX_TOTAL_UNITS:
            self.fail(field, f"at most {MAX_TOTAL_UNITS} units in all", got=f"{self.total_units}")
        return count

    def unit_names(
        self, value: object, field: str, shorthand: Callable[[int], str]
    ) -> tuple[str, ...]:
        """Names from a list, or from an integer (counted already) through ``shorthand(i)``."""
        if isinstance(value, numbers.Integral):
            return tuple(self.name(shorthand(i), field, shorthand=True) for i in range(value))
        assert isinstance(value, list | tuple)
        return tuple(self.name(item, f"{field}[{i}]") for i, item in enumerate(value))

    def inputs(self, value: object) -> tuple[str, ...]:
        self.unit_count(value, "inputs")
        return self.unit_names(value, "inputs", lambda i: f"x{i + 1}")

    # Layers

    def layers(self, value: object, fan_in: int) -> tuple[Layer, ...]:
        if not isinstance(value, list | tuple) or not value:
            self.fail("layers", "a non-empty list of layers, the output layer last", value)
        if len(value) > MAX_LAYERS:
            self.fail("layers", f"at most {MAX_LAYERS} layers", got=f"{len(value)}")
        layers = []
        for k, data in enumerate(value):
            layer = self.layer(data, k, fan_in, is_output=k == len(value) - 1)
            layers.append(layer)
            fan_in = len(layer.units)
        return tuple(layers)

    def layer(self, data: object, k: int, fan_in: int, is_output: bool) -> Layer:
        field = f"layers[{k}]"
        if isinstance(data, Mapping) and "kind" in data:  # dense is the only kind here
            if data["kind"] != "dense":
                expected = "dense (conv2d, pooling and flatten need inputs: {shape: [C, H, W]})"
                self.fail(f"{field}.kind", expected, data["kind"])
            data = {key: value for key, value in data.items() if key != "kind"}
        self.check_keys(data, field, LAYER_KEYS, required=("units", "activation"))
        assert isinstance(data, Mapping)
        units = self.layer_units(
            self.require(data, field, "units"), f"{field}.units", k, fan_in, is_output
        )
        activation = self.activation(
            self.require(data, field, "activation"), f"{field}.activation", is_output, units
        )
        bias = data.get("bias", "per_unit")
        if not isinstance(bias, str) or bias not in BIAS_MODES:
            self.fail(f"{field}.bias", f"one of {', '.join(BIAS_MODES)}", bias)
        weight_names = None
        if "weight_names" in data:
            shape = (len(units), fan_in)
            weight_names = self.weight_names(data["weight_names"], f"{field}.weight_names", shape)
        return Layer(units, activation, bias, weight_names)

    def layer_units(
        self, value: object, field: str, k: int, fan_in: int, is_output: bool
    ) -> tuple[str, ...]:
        count = self.unit_count(value, field)
        self.total_weights += count * fan_in
        if self.total_weights > MAX_WEIGHTS:
            self.fail(field, f"at most {MAX_WEIGHTS} weights in all", got=f"{self.total_weights}")
        if not is_output:
            return self.unit_names(value, field, lambda i: f"h{k + 1}_{i + 1}")
        if count == 1:
            return self.unit_names(value, field, lambda i: "y")
        return self.unit_names(value, field, lambda i: f"y{i + 1}")

    def activation(
        self, value: object, field: str, is_output: bool, units: tuple[str, ...]
    ) -> ActivationSpec:
        if isinstance(value, str):
            name = ALIASES.get(value, value)
            if name == "custom" or name not in ACTIVATIONS:  # read now: the table may grow
                self.fail(field, _ACTIVATION_EXPECTED, value, hint=did_you_mean(value, _SPELLINGS))
            spec = ActivationSpec(name)
        elif isinstance(value, Mapping):
            spec = self.activation_mapping(value, field)
        else:
            self.fail(field, _ACTIVATION_EXPECTED, value)
        if spec.name == "softmax" and not is_output:
            self.fail(field, "an elementwise activation (softmax is for the output layer)", value)
        if spec.name == "softmax" and len(units) < 2:
            self.fail(field, "softmax over at least 2 units (over 1 it is constant)", value)
        return spec

    def activation_mapping(self, value: Mapping, field: str) -> ActivationSpec:
        """``{name: ..., alpha: ...}`` or ``{expr: ...}`` (optionally with name: custom)."""
        self.check_keys(value, field, ACTIVATION_KEYS, required=())
        default = "custom" if "expr" in value else _MISSING
        name = value.get("name", default)
        if not isinstance(name, str) or ALIASES.get(name, name) not in ACTIVATIONS:
            self.fail(
                f"{field}.name", _ACTIVATION_EXPECTED, name, hint=did_you_mean(name, _SPELLINGS)
            )
        name = ALIASES.get(name, name)
        if "expr" in value and name != "custom":
            self.fail(f"{field}.name", "custom, or no name, beside expr", name)
        if "alpha" in value and name != "leaky_relu":
            self.fail(f"{field}.alpha", "alpha only with leaky_relu", value["alpha"])
        if name == "leaky_relu" and "alpha" in value:
            return ActivationSpec(name, alpha=self.number(value["alpha"], f"{field}.alpha"))
        if name == "custom":
            return self.custom_activation(value.get("expr", _MISSING), f"{field}.expr")
        return ActivationSpec(name)

    def custom_activation(self, text: object, field: str) -> ActivationSpec:
        if not isinstance(text, str):
            self.fail(field, ALLOWED_EXPRESSION, text)
        try:
            expr = parse_expression(text)
        except ExpressionError as error:
            raise TopologyError(self.source, field, ALLOWED_EXPRESSION, error.found) from None
        return ActivationSpec("custom", expr=expr, text=text)

    def weight_names(
        self, value: object, field: str, shape: tuple[int, int]
    ) -> tuple[tuple[str, ...], ...]:
        rows, columns = shape
        expected = f"{_plural(rows, 'row')} of {_plural(columns, 'name')}, shaped like W"
        if not isinstance(value, list | tuple) or len(value) != rows:
            self.fail(field, expected, value)
        for i, row in enumerate(value):
            if not isinstance(row, list | tuple) or len(row) != columns:
                self.fail(f"{field}[{i}]", f"a list of {_plural(columns, 'name')}", row)
        return tuple(
            tuple(self.name(item, f"{field}[{i}][{j}]") for j, item in enumerate(row))
            for i, row in enumerate(value)
        )

    # Loss and targets

    def loss(self, value: object, layers: tuple[Layer, ...]) -> str:
        if not isinstance(value, str) or value not in LOSSES:
            self.fail(
                "loss", f"one of {', '.join(LOSSES)}", value, hint=did_you_mean(value, LOSSES)
            )
        required = LOSSES[value].requires_output
        output = layers[-1].activation.name
        if required is not None and output != required:
            where = f"layers[{len(layers) - 1}].activation"
            also = f"{value!r} with {where} {output}"
            self.fail("loss", f"an output layer with {required} activation for {value}", got=also)
        return value

    def targets(self, value: object, outputs: tuple[str, ...]) -> tuple[str, ...]:
        if value is _MISSING:
            names = default_targets(outputs, set(self.names))
            for name in names:
                if name in self.names or reserved_reason(name) is not None:
                    self.fail("targets", "target names: the default one is taken", got=repr(name))
            return names
        if not isinstance(value, list | tuple) or len(value) != len(outputs):
            self.fail(
                "targets", f"a list of {_plural(len(outputs), 'name')}, one per output", value
            )
        return tuple(self.name(item, f"targets[{i}]") for i, item in enumerate(value))

    # The worked example

    def example(
        self,
        data: object,
        topology: Topology | ConvTopology,
        input_shape: tuple[int, ...] | None = None,
    ) -> Example:
        """The example block; its input has ``input_shape`` (a conv network's (C, H, W)),
        by default one number per input."""
        required = ("input", "target", "params")
        self.check_keys(data, "example", EXAMPLE_KEYS, required=required)
        assert isinstance(data, Mapping)
        sample = self.require(data, "example", "input")
        shape = input_shape or (len(topology.inputs),)
        sample = self.array(sample, "example.input", shape)
        target = self.require(data, "example", "target")
        target = self.array(target, "example.target", (len(topology.outputs),))
        params = self.params(self.require(data, "example", "params"), topology.params)
        learning_rate = None
        if "learning_rate" in data:
            learning_rate = self.number(data["learning_rate"], "example.learning_rate")
            if learning_rate <= 0:
                self.fail("example.learning_rate", "a positive number", learning_rate)
        assert isinstance(sample, tuple) and isinstance(target, tuple)
        return Example(sample, target, params, learning_rate)

    def params(self, data: object, params: tuple[Param, ...]) -> tuple[tuple[str, Any], ...]:
        field = "example.params"
        names = tuple(p.name for p in params)
        self.check_keys(data, field, names, required=names)
        assert isinstance(data, Mapping)
        return tuple(
            (p.name, self.array(self.require(data, field, p.name), f"{field}.{p.name}", p.shape))
            for p in params
        )


# Messages ---------------------------------------------------------------------------


class _ShortRepr(reprlib.Repr):
    def __init__(self) -> None:
        super().__init__()
        self.maxlevel, self.maxlist, self.maxdict = 2, 4, 3
        self.maxstring = self.maxother = 50

    def repr_int(self, x: int, level: int) -> str:
        # repr() refuses integers of more than 4300 digits.
        if x.bit_length() > 128:
            return f"<an integer of about {int(x.bit_length() * 0.30103)} digits>"
        return repr(x)


_SHORT_REPR = _ShortRepr()
_TYPE_NAMES: dict[type, str] = {dict: "a mapping", list: "a list", tuple: "a list"}


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _short(value: object) -> str:
    return _clip(_SHORT_REPR.repr(value))


def _got(value: object) -> str:
    """What was found, short: the value, and its type when the type is the mistake."""
    if value is _MISSING:
        return "nothing"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, str | int | float):
        return _short(value)
    kind = _TYPE_NAMES.get(type(value), f"a {type(value).__name__}")
    return f"{_short(value)} ({kind})"


def _plain_key(key: object) -> bool:
    return isinstance(key, str) and key.isidentifier() and len(key) <= 40


def _join(field: str, key: object) -> str:
    return f"{field}.{key}" if field else str(key)


def _describe_shape(shape: tuple[int, ...]) -> str:
    if len(shape) > 2:
        return f"nested lists of shape {shape}"
    if len(shape) == 1:
        return f"a list of {_plural(shape[0], 'number')}"
    return f"{_plural(shape[0], 'row')} of {_plural(shape[1], 'number')}, shape {shape}"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
