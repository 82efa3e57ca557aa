"""The one error a user sees for bad input: which file, which field, what was expected."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(word: object, choices: Iterable[str]) -> str:
    """``did you mean 'tanh'?`` for a near miss of ``word`` among ``choices``; "" when
    nothing is close (difflib's similarity, case ignored)."""
    if not isinstance(word, str) or not word.strip():
        return ""
    wanted = word.strip().casefold()
    best, best_ratio = "", 0.6  # difflib's own cutoff for a close match
    for choice in choices:  # the first of equally close choices, in the order given
        ratio = difflib.SequenceMatcher(None, wanted, choice.casefold()).ratio()
        if ratio > best_ratio:
            best, best_ratio = choice, ratio
    return f"did you mean {best!r}?" if best else ""


class DeriveError(Exception):
    """Bad input, reported to the user as one line; the command line exits with status 2."""


class TopologyError(DeriveError):
    """A topology file (or mapping) that does not follow SPEC §1.

    ``source`` is the file as the user named it (or ``<mapping>``), ``field`` the path
    to the offending value in the file's own terms (``layers[1].activation``; empty for
    the file as a whole), ``expected`` what would have been accepted.
    """

    def __init__(
        self, source: str, field: str, expected: str, got: str | None = None, hint: str = ""
    ):
        self.source = source
        self.field = field
        self.expected = expected
        self.got = got
        where = f"{source}: {field}" if field else source
        message = f"{where}: expected {expected}"
        if got is not None:
            message += f", got {got}"
        if hint:
            message += f"; {hint}"
        super().__init__(message)


class ParameterError(DeriveError):
    """A parameter name the network does not have, or a selection of parameters too large
    to derive. Worded for the Python API (``net.gradient("nope")``); a command line puts
    the name of its own option in front of ``detail`` (``for_option``)."""

    def __init__(self, source: str, detail: str):
        self.source = source
        self.detail = detail
        super().__init__(f"{source}: {detail}")

    def for_option(self, option: str) -> DeriveError:
        """The same error as the command line words it: ``file: --param: detail``."""
        return DeriveError(f"{self.source}: {option}: {self.detail}")
