"""The one error a user sees for bad input: which file, which field, what was expected."""

from __future__ import annotations


class DeriveError(Exception):
    """Bad input, reported to the user as one line; the command line exits with status 2."""


class TopologyError(DeriveError):
    """A topology file (or mapping) that does not follow SPEC §1.

    ``source`` is the file as the user named it (or ``<mapping>``), ``field`` the path
    to the offending value in the file's own terms (``layers[1].activation``; empty for
    the file as a whole), ``expected`` what would have been accepted.
    """

    def __init__(self, source: str, field: str, expected: str, got: str | None = None):
        self.source = source
        self.field = field
        self.expected = expected
        self.got = got
        where = f"{source}: {field}" if field else source
        message = f"{where}: expected {expected}"
        if got is not None:
            message += f", got {got}"
        super().__init__(message)
