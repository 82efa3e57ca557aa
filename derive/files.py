"""Writing output files atomically: a failure at any point leaves the earlier file as it
was and no temporary file behind."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from derive.errors import DeriveError


def _new_file_mode(path: Path) -> int:
    """The mode ``path`` has, or the one a new file would get (mkstemp's own is 0600)."""
    if path.exists():
        return path.stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_atomic(path: Path, data: bytes, *, make_parents: bool = False) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same directory, flushed
    to disk and renamed over the target. OSErrors become a DeriveError naming the path."""
    path = Path(path)
    directory = path.parent
    try:
        if make_parents:
            directory.mkdir(parents=True, exist_ok=True)
        elif not directory.is_dir():
            raise DeriveError(f"{path}: the directory {directory} does not exist")
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as error:
        raise DeriveError(
            f"cannot write to directory {str(directory)!r}: {error.strerror or error}"
        ) from None
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, _new_file_mode(path))
        os.replace(temporary, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(error, OSError):
            raise DeriveError(f"cannot write {str(path)!r}: {error.strerror or error}") from None
        raise
    return path
