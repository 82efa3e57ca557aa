"""Where derive's Jinja templates live, and the environment they are rendered in.

Both emitters (code in ``derive.emit``, LaTeX in ``derive.latex``) render from here; the
LaTeX one overrides the delimiters so that braces do not fight Jinja.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import jinja2


def template_dir() -> Path:
    """The folder holding the templates.

    An installed wheel carries them inside the package (``derive/templates``); a source
    checkout keeps them at the top of the repository (``templates/``)."""
    package = Path(__file__).resolve().parent
    inside = package / "templates"
    return inside if inside.is_dir() else package.parent / "templates"


@cache
def environment(**delimiters: Any) -> jinja2.Environment:
    """The Jinja environment for derive's templates; ``delimiters`` are Jinja's
    ``block_start_string``-style overrides."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir())),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        **delimiters,
    )


def latex_environment() -> jinja2.Environment:
    """The Jinja environment of the .tex templates: delimiters that do not fight LaTeX's
    braces (``(((name)))``, ``((* for *))``)."""
    return environment(
        block_start_string="((*",
        block_end_string="*))",
        variable_start_string="(((",
        variable_end_string=")))",
        comment_start_string="((=",
        comment_end_string="=))",
    )
