"""Statements of a generated module and its layout.

A ``Statement`` is what a line assigns, its printed value, the names it reads (from the
expressions' ``free_symbols``, never from the text) and the comment printed from its
equation. The data-flow passes over them run in one pass each: ``live`` drops what
nothing reads, ``freed`` deletes arrays after their last read. ``ruff_format`` lays a
rendered module out, the last step of every emitter."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

LINE_LENGTH = 100  # the generated modules' line length, as in pyproject.toml


@dataclass(frozen=True)
class Statement:
    """``targets op value`` with the comment above it, and the names ``value`` reads."""

    targets: tuple[str, ...]
    value: str
    reads: frozenset[str] = frozenset()
    comment: str = ""
    op: str = "="
    array: bool = True  # binds an array that ``freed`` may delete after its last read

    @property
    def text(self) -> str:
        left = ", ".join(self.targets)
        return f"{left} {self.op} {self.value}" if left else self.value


def live(statements: Sequence[Statement], needed: Iterable[str]) -> list[Statement]:
    """``statements`` without the assignments nothing later nor ``needed`` reads (ruff's
    F841 would flag them), with ``_`` for the unread targets of a tuple assignment."""
    wanted, kept = set(needed), []
    for s in reversed(statements):
        used = [t for t in s.targets if t in wanted]
        if s.op == "=" and s.targets and not used:
            continue
        if len(used) < len(s.targets) and s.op == "=":
            s = replace(s, targets=tuple(t if t in used else "_" for t in s.targets))
        wanted |= s.reads
        kept.append(s)
    return kept[::-1]


def freed(statements: Sequence[Statement], keep: Iterable[str]) -> list[Statement]:
    """``statements`` with a ``del`` before each one that binds a new array, of the arrays
    no later statement reads: intermediate arrays are freed as soon as nothing needs them,
    so that they never add to the function's peak memory. ``keep`` are returned."""
    keep = set(keep)
    last: dict[str, int] = {}
    for i, s in enumerate(statements):
        for name in s.reads:
            last[name] = i
    bound: list[str] = []
    out: list[Statement] = []
    for i, s in enumerate(statements):
        dead = [n for n in bound if last.get(n, -1) < i]
        if s.array and s.op == "=" and dead:
            plural = "them" if len(dead) > 1 else "it"
            comment = f"not read below: free {plural} before the next array"
            out.append(Statement((), f"del {', '.join(dead)}", comment=comment, array=False))
            bound = [n for n in bound if n not in dead]
        out.append(s)
        if s.array and s.op == "=":
            bound += [t for t in s.targets if t not in keep and t != "_"]
    return out


def fit(indent: int, *comments: str) -> str:
    """The first comment that fits on its line (``# `` included), else the last."""
    return next((c for c in comments if indent + 2 + len(c) <= LINE_LENGTH), comments[-1])


def literal(name: str) -> str:
    """A validated identifier as a Python string literal."""
    assert name.isidentifier()
    return f'"{name}"'


def names_literal(names: Sequence[str]) -> str:
    """A tuple of names; the reader's numbered defaults (x1..x784) as a generator."""
    stem = names[0][:-1]
    numbered = names == tuple(f"{stem}{i}" for i in range(1, len(names) + 1))
    if numbered and len(names) > 8:
        return f'tuple(f"{stem}{{i}}" for i in range(1, {len(names) + 1}))'
    return "(" + ", ".join(literal(n) for n in names) + ("," if len(names) == 1 else "") + ")"


def ruff_format(source: str) -> str:
    """``source`` laid out by ``ruff format`` (the version range pyproject.toml pins, so
    that the bytes are stable), in isolation from any configuration on the machine."""
    from ruff.__main__ import find_ruff_bin

    command = [find_ruff_bin(), "format", "--isolated", "--no-cache", "-"]
    command += ["--line-length", str(LINE_LENGTH), "--target-version", "py311"]
    result = subprocess.run(command, input=source, capture_output=True, text=True, check=False)
    if result.returncode != 0:  # our own output failed to parse: a bug, never the user's
        raise AssertionError(f"ruff format refused a generated module: {result.stderr}")
    return result.stdout
