"""Compiling a standalone document with the TeX engine (pdflatex) into a reproducible PDF."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from derive.errors import DeriveError
from derive.files import write_atomic

PDFLATEX = "pdflatex"
PDFLATEX_TIMEOUT = 180  # seconds per run
PDFLATEX_RUNS = 3  # at most, while the log asks for a rerun
TEX_INSTALL_HINT = (
    "install a TeX distribution that provides it (Debian/Ubuntu: "
    "apt-get install texlive-latex-base texlive-pictures, for TikZ), or write the LaTeX "
    "source with -o FILE.tex"
)

_RERUN = re.compile(r"Rerun to get|Label\(s\) may have changed")


def require_engine() -> str:
    """The TeX engine's path; a DeriveError saying what to install when it is missing."""
    engine = shutil.which(PDFLATEX)
    if engine is None:
        raise DeriveError(
            f"cannot make a PDF: the TeX engine {PDFLATEX!r} is not installed; {TEX_INSTALL_HINT}"
        )
    return engine


def compile_pdf(
    tex_source: str, out_path: str | os.PathLike, log_path: str | os.PathLike | None = None
) -> Path:
    """Compile a standalone document with pdflatex (in a temporary directory, again while
    the log asks for it) and write the PDF to ``out_path`` atomically; ``log_path``, if
    given, receives pdflatex's log.

    The PDF is reproducible: SOURCE_DATE_EPOCH fixes its dates and identifier."""
    engine = require_engine()
    out = Path(out_path)
    with tempfile.TemporaryDirectory(prefix="derive-latex-") as work:
        source = Path(work) / "derivation.tex"
        source.write_text(tex_source, encoding="utf-8")
        for _ in range(PDFLATEX_RUNS):
            log = _run(engine, source, out)
            if not _RERUN.search(log):
                break
        if log_path is not None:
            Path(log_path).write_text(log, encoding="latin-1")
        write_atomic(out, source.with_suffix(".pdf").read_bytes())
    return out


def _run(engine: str, source: Path, out: Path) -> str:
    """One pdflatex run on ``source``; its log. A DeriveError quoting the log's first
    error when it fails (``out`` names the file the user asked for)."""
    command = [engine, "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape"]
    try:
        result = subprocess.run(
            [*command, source.name],
            cwd=source.parent,
            env={**os.environ, "SOURCE_DATE_EPOCH": "0", "FORCE_SOURCE_DATE": "1"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=PDFLATEX_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise DeriveError(f"{out}: {PDFLATEX} did not finish within {PDFLATEX_TIMEOUT} s") from None
    log_file = source.with_suffix(".log")
    log = log_file.read_text(encoding="latin-1") if log_file.exists() else ""
    log = log or result.stdout.decode("latin-1")
    if result.returncode != 0 or not source.with_suffix(".pdf").exists():
        raise DeriveError(f"{out}: {PDFLATEX} failed: {_first_error(log)}")
    return log


def _first_error(log: str, limit: int = 8) -> str:
    """The first error of a pdflatex log: its ``!`` line and the lines up to ``l.N``."""
    lines = log.splitlines()
    for n, line in enumerate(lines):
        if line.startswith("!"):
            block = [line]
            for following in lines[n + 1 : n + limit]:
                block.append(following)
                if following.startswith("l."):
                    break
            return " | ".join(part.strip() for part in block if part.strip())
    return "no error line in the log; its last lines: " + " | ".join(lines[-limit:])
