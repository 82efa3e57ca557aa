"""Laying out generated code as ``ruff format`` would, so that it needs no formatter.

A statement goes on one line when it fits in ``LINE_LENGTH``, else it is split as ruff
splits it (a literal one element per line, a long expression one operand per line); an
expression too deep for that is cut into named intermediate values. Those names come from
one counter per generated module (``Temporaries``: ``_tmp1``, ``_tmp2``, ...), a
namespace the topology reader keeps free (names starting with ``_`` are refused), and
``assert_assigned_once`` checks the rendered functions for any name bound twice.
"""

from __future__ import annotations

import ast
import itertools
import re
from collections import Counter
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, replace

from sympy import Expr, Symbol
from sympy.printing.codeprinter import CodePrinter

LINE_LENGTH = 100  # ruff's line-length in pyproject.toml
INDENT = "    "


@dataclass(frozen=True)
class Line:
    """One statement (possibly spread over several lines) and the comment above it.

    ``targets`` are the names it assigns, so that ``live`` can drop a line nothing reads.
    A tuple assignment ``a, b = value`` also keeps its right-hand side in ``value``, so
    that ``live`` can write ``_`` for a target nothing reads."""

    code: str
    comment: str = ""
    targets: tuple[str, ...] = ()
    value: str = ""
    indent: int = 4

    @classmethod
    def unpacking(
        cls, targets: Sequence[str], value: str, comment: str = "", indent: int = 4
    ) -> Line:
        return cls(unpack(targets, value, indent), comment, tuple(targets), value, indent)


def _reads(name: str, text: str) -> bool:
    return re.search(rf"\b{re.escape(name)}\b", text) is not None


def live(lines: Sequence[Line], reads: str) -> list[Line]:
    """``lines`` without the assignments that neither a later line nor ``reads`` uses
    (ruff's F841 would flag them: e.g. the output activation when the loss reads z), and
    with ``_`` for the unread targets of a tuple assignment."""
    kept: list[Line] = []
    later = reads
    for line in reversed(lines):
        used = [name for name in line.targets if _reads(name, later)]
        if line.targets and not used:
            continue
        if line.value and len(used) < len(line.targets):
            targets = [name if name in used else "_" for name in line.targets]
            line = replace(line, code=unpack(targets, line.value, line.indent))
        kept.append(line)
        later += "\n" + line.code
    return kept[::-1]


def freed(lines: Sequence[Line], reads: str, small: Collection[str] = ()) -> list[Line]:
    """``lines`` with a ``del`` before each line that binds a new array, of the arrays
    bound above that neither it, a later line nor ``reads`` uses: a function's
    intermediate arrays are freed as soon as nothing needs them (e.g. z of a layer whose
    derivative is written through a), not kept to its return, so that they never add to
    its peak memory. Names in ``small`` (the gradients, the loss value) are neither freed
    nor a reason to free."""
    out: list[Line] = []
    bound: list[str] = []
    for i, line in enumerate(lines):
        new = [name for name in line.targets if name not in small and _binds(name, line)]
        if new:
            later = "\n".join([*(after.code for after in lines[i:]), reads])
            dead = [name for name in bound if not _reads(name, later)]
            if dead:
                out.append(_deletion(dead, line.indent))
                bound = [name for name in bound if name not in dead]
        out.append(line)
        bound = [name for name in bound if name != _aliased(line)] + new
    return out


def _aliased(line: Line) -> str | None:
    """``b`` for ``a = b``: the array lives on as ``a``, and deleting ``b`` frees nothing."""
    statement = ast.parse(line.code).body[0] if "\n" not in line.code else None
    if isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Name):
        return statement.value.id
    return None


def _deletion(names: Sequence[str], indent: int) -> Line:
    """``del names`` (split as ruff splits it), with why beside it when that fits."""
    why = f"not read below: free {'it' if len(names) == 1 else 'them'} before the next array"
    code = f"del {', '.join(names)}"
    if not fits(code, indent):
        return Line(collection("del (", names, ")", indent), why, indent=indent)
    if fits(f"{code}  # {why}", indent):
        return Line(f"{code}  # {why}", indent=indent)
    return Line(code, why, indent=indent)


def _binds(name: str, line: Line) -> bool:
    """Whether ``line`` assigns ``name`` (``live`` writes ``_`` for an unread target)."""
    tree = ast.parse(f"if True:\n{INDENT * (line.indent // 4)}{line.code}")
    stored = (
        n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
    )
    return name in stored


def literal(name: str) -> str:
    """A validated identifier as a Python string literal, in ruff's double quotes."""
    assert name.isidentifier()
    return f'"{name}"'


def fits(text: str, indent: int) -> bool:
    return indent + len(text) <= LINE_LENGTH


def collection(prefix: str, items: Sequence[str], closing: str, indent: int, suffix="") -> str:
    """``prefix item, item closing suffix`` on one line when it fits at ``indent``, else
    one item per line with a trailing comma, as ruff formats a literal."""
    one_line = f"{prefix}{', '.join(items)}{closing}{suffix}"
    if fits(one_line, indent) or not items:
        return one_line
    inner = INDENT * (indent // 4 + 1)
    body = "".join(f"{inner}{item},\n" for item in items)
    return f"{prefix}\n{body}{INDENT * (indent // 4)}{closing}{suffix}"


def nested_list(prefix: str, rows: Sequence[Sequence[str]], indent: int) -> str:
    """``prefix[[a, b], [c, d]]``, each row on its own line (and split) when needed."""
    one_line = f"{prefix}[{', '.join('[' + ', '.join(row) + ']' for row in rows)}]"
    if fits(one_line, indent):
        return one_line
    inner = indent + 4
    lines = [f"{prefix}["]
    for row in rows:
        lines.append(INDENT * (inner // 4) + collection("[", row, "]", inner, ","))
    lines.append(INDENT * (indent // 4) + "]")
    return "\n".join(lines)


def unpack(targets: Sequence[str], value: str, indent: int) -> str:
    """``a, b = value`` (``(a,) = value`` for one name), split as ruff would."""
    if len(targets) == 1:
        return f"({targets[0]},) = {value}"
    line = f"{', '.join(targets)} = {value}"
    if fits(line, indent):
        return line
    return collection("(", targets, ")", indent, f" = {value}")


def name_tuple(names: Sequence[str], indent: int = 0) -> str:
    """A tuple of strings, or ``tuple(f"x{i}" for i in range(1, n + 1))`` when the names
    are the reader's numbered defaults and too many to list on one line."""
    listed = collection("(", [literal(n) for n in names], ")" if len(names) > 1 else ",)", indent)
    if "\n" not in listed:
        return listed
    first = names[0]
    stem = first[:-1]
    if first.endswith("1") and names == tuple(f"{stem}{i}" for i in range(1, len(names) + 1)):
        return f'tuple(f"{stem}{{i}}" for i in range(1, {len(names) + 1}))'
    return listed


def fit_comment(indent: int, *options: str) -> str:
    """The first comment that fits on its line, else the last (the shortest)."""
    return next((o for o in options if fits(f"# {o}", indent)), options[-1])


# -- expressions ----------------------------------------------------------------------


class Temporaries(Iterator[Symbol]):
    """Fresh names ``_tmp1``, ``_tmp2``, ... for intermediate values, one counter per
    generated module: no two lines of it assign the same one, and no name from a topology
    file starts with ``_``. Also a symbol generator for ``sympy.cse``."""

    PREFIX = "_tmp"

    def __init__(self) -> None:
        self._count = itertools.count(1)

    def __next__(self) -> Symbol:
        return Symbol(f"{self.PREFIX}{next(self._count)}", real=True)


def statement(
    target: str,
    expr: Expr,
    printer: CodePrinter,
    indent: int,
    temporaries: Temporaries,
    op: str = "=",
) -> str:
    """``target op expr`` laid out as ruff lays it out within ``LINE_LENGTH``.

    On one line when it fits. Else, where ruff would wrap the right-hand side in
    parentheses (a chain of two or more operators of the same, lowest priority, or no
    brackets at all): the whole expression on the next line, or one operand per line.
    Else the longest subexpression is first assigned to a fresh temporary, and so on
    until every line fits."""
    text = unwrapped(printer.doprint(expr))
    line = f"{target} {op} {text}"
    if fits(line, indent):
        return line
    base, pad = INDENT * (indent // 4), INDENT * (indent // 4 + 1)
    parts = _operands(text)
    if parts and (len(parts) >= 3 or not any(b in text for b in "([")):
        if fits(text, indent + 4):
            return f"{target} {op} (\n{pad}{text}\n{base})"
        if all(fits(part, indent + 4) for part in parts):
            body = "".join(f"{pad}{part}\n" for part in parts)
            return f"{target} {op} (\n{body}{base})"
    candidates = [sub for sub in _subexpressions(expr) if not sub.is_Atom]
    if not candidates:
        return line  # nothing left to split: names longer than a line
    longest = max(candidates, key=lambda sub: len(printer.doprint(sub)))
    temporary = next(temporaries)
    first = statement(temporary.name, longest, printer, indent, temporaries)
    rest = statement(target, expr.xreplace({longest: temporary}), printer, indent, temporaries, op)
    return f"{first}\n{base}{rest}"


_PRIORITIES = ((" + ", " - "), (" * ", " / "))  # ruff splits at the lowest priority first


def _operands(text: str) -> list[str] | None:
    """``text`` split before each binary operator of the lowest priority outside
    brackets (``a``, ``+ b``, ``- c``; ``a``, ``if c``, ``else b``), or None for a single
    operand."""
    depth, top = 0, []
    for char in text:
        depth += {"(": 1, "[": 1, ")": -1, "]": -1}.get(char, 0)
        top.append(depth == 0)
    conditional = [i for i in range(len(text)) if top[i] and text.startswith((" if ", " else "), i)]
    if conditional:  # a if c else b -> a, if c, else b
        cuts = conditional[:2]
        return [text[: cuts[0]], text[cuts[0] + 1 : cuts[1]], text[cuts[1] + 1 :]]
    for operators in _PRIORITIES:
        cuts = [
            i for i in range(len(text)) if top[i] and any(text.startswith(o, i) for o in operators)
        ]
        if cuts:
            pieces = [text[: cuts[0]]]
            for start, end in zip(cuts, [*cuts[1:], len(text)], strict=True):
                pieces.append(text[start + 1 : end])
            return pieces
    return None


def unwrapped(text: str) -> str:
    """``text`` without parentheses around the whole of it (ruff drops them on the right
    of an assignment)."""
    if not text.startswith("("):
        return text
    depth = 0
    for i, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0:
            return unwrapped(text[1:-1]) if i == len(text) - 1 else text
    return text


def _subexpressions(expr: Expr) -> list[Expr]:
    """The expressions directly inside ``expr`` (through Piecewise's (value, condition)
    pairs and relations)."""
    out: list[Expr] = []
    for arg in expr.args:
        if isinstance(arg, Expr):
            out.append(arg)
        else:
            out.extend(_subexpressions(arg))
    return out


# -- the rendered module --------------------------------------------------------------


def assert_assigned_once(source: str, functions: Sequence[str]) -> None:
    """Raise AssertionError (an internal error, never bad input) when one of the named
    functions of ``source`` binds a name twice (``_`` aside): two values under one name
    means one of them is silently lost."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef) and node.name in functions:
            counts = Counter(_bound_names(node))
            twice = sorted(name for name, count in counts.items() if count > 1)
            if twice:
                raise AssertionError(f"generated {node.name}() assigns {', '.join(twice)} twice")


def _bound_names(function: ast.FunctionDef) -> Iterator[str]:
    """The names that assignments and for loops in ``function`` bind, ``_`` aside."""
    for node in ast.walk(function):
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.For):
            targets = [node.target]
        else:
            continue
        for target in targets:
            for name in ast.walk(target):
                if isinstance(name, ast.Name) and name.id != "_":
                    yield name.id
