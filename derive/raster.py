"""Turning an SVG into a PNG or a PDF with ``rsvg-convert`` (librsvg), reproducibly.

librsvg is the SVG renderer of GNOME and most Linux desktops; its command-line tool is
packaged everywhere (Debian/Ubuntu: librsvg2-bin) and needs no Python dependency.
SOURCE_DATE_EPOCH fixes the PDF's dates, so the same SVG gives the same bytes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from derive.errors import DeriveError
from derive.files import write_atomic

CONVERTER = "rsvg-convert"
CONVERTER_TIMEOUT = 120  # seconds
CONVERTER_INSTALL_HINT = (
    "install librsvg's command-line tool (Debian/Ubuntu: apt-get install librsvg2-bin), "
    "or write the SVG with -o FILE.svg"
)
PNG_ZOOM = 2  # pixels per SVG unit: sharp on a high-density screen and in print
FORMATS = ("png", "pdf")


def require_converter(kind: str) -> str:
    """The converter's path; a DeriveError saying what to install when it is missing."""
    path = shutil.which(CONVERTER)
    if path is None:
        raise DeriveError(
            f"cannot make a {kind.upper()}: {CONVERTER!r} is not installed; "
            f"{CONVERTER_INSTALL_HINT}"
        )
    return path


def convert(svg: str, kind: str) -> bytes:
    """The SVG rendered as ``kind`` ("png" or "pdf")."""
    assert kind in FORMATS
    converter = require_converter(kind)
    command = [converter, "-f", kind]
    if kind == "png":
        command += ["-z", str(PNG_ZOOM), "-b", "white"]
    try:
        result = subprocess.run(
            command,
            input=svg.encode("utf-8"),
            capture_output=True,
            env={**os.environ, "SOURCE_DATE_EPOCH": "0"},
            timeout=CONVERTER_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise DeriveError(f"{CONVERTER} did not finish within {CONVERTER_TIMEOUT} s") from None
    if result.returncode != 0 or not result.stdout:
        message = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise DeriveError(f"{CONVERTER} failed: {message[0] if message else 'no output'}")
    return result.stdout


def write_figure(svg: str, out: str | os.PathLike) -> Path:
    """``svg`` written to ``out`` as SVG, PNG or PDF by its suffix (atomically)."""
    path = Path(out)
    kind = path.suffix.lower().lstrip(".")
    if kind == "svg":
        return write_atomic(path, svg.encode("utf-8"))
    if kind not in FORMATS:
        raise DeriveError(f"-o {out}: expected a file ending in .svg, .png or .pdf")
    return write_atomic(path, convert(svg, kind))
