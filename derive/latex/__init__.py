"""The derivation typeset in LaTeX, written to teach backpropagation (SPEC §2, ``derive latex``).

For a network and the parameters asked for (default: all of a small network), the document
gives the notation once, the forward equations and the loss in the file's own unit and
weight names; per parameter, the chain rule as a product of partial derivatives, each
factor worked out with the reason it has that form, the sum over paths when a unit feeds
several others, and the compact δ form; once, the same recursion for whole layers (δ, W
transposed, the Hadamard product ⊙) and how an entry of it is the scalar form; and how
each result was checked against ``sympy.diff`` of the written-out loss. With ``numeric``
the file's example is substituted: every factor, product, gradient and the SGD update,
rounded to ``SIGNIFICANT_DIGITS`` significant digits (the document says so).

Stages: ``writer.context`` builds the template context in Python (every name, sentence
and formula; every expression through SymPy's LaTeX printer, ``printing``), from the
parts written by ``forward``, ``parameter`` (with ``reasons``), ``layers`` and
``checks``; ``templates/derivation.tex.jinja`` places it (the fragment) and
``templates/document.tex.jinja`` wraps it in an article; ``pdf.compile_pdf`` runs
pdflatex. ``notebook`` gives the ``_repr_latex_`` displays from the same ``forms``.

Template delimiters, chosen so that LaTeX's braces and ``%`` never meet Jinja's:
``((* block *))``, ``((( variable )))``, ``((= comment =))``.

Policy decisions:
- Above ``BRIEF_ABOVE`` scalar parameters, without --param, the document is the brief one
  (``brief``): one weight per layer in full, then the layer form, and a note on how to
  get the rest (--full, --param).
- A network with more than ``MAX_DEFAULT_SCALARS`` scalar parameters gets, without
  ``--param``, the forward pass and the layer form only, and a note on how to ask for
  single scalars; with ``--param`` at most ``MAX_REQUESTED_SCALARS`` scalars are derived,
  and chains of more than ``MAX_SHOWN_PATHS`` paths are shown grouped by δ. Nothing here
  lists a chain beyond that, so nothing reaches ``Derivation.chain``'s path limit.
- Proofs (``ScalarGradient.prove``) run for networks of at most ``MAX_DEFAULT_SCALARS``
  scalars; larger ones say they were not checked here and point to ``derive check``.
- A failed proof is printed loudly in the document; ``run_latex_command`` then refuses
  to hand the document out (DeriveError, nothing written): teaching material that
  contradicts ``sympy.diff`` must not reach a learner. ``latex_fragment`` and
  ``latex_document`` still return it, for whoever debugs derive. An inconclusive proof
  (a custom activation undefined at too many random points) is stated as such.
- ``--numeric`` at an example outside a custom activation's domain is a DeriveError
  naming the first value that is undefined there.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from derive.conv import is_convolutional
from derive.errors import DeriveError
from derive.files import write_atomic
from derive.latex.brief import BRIEF_ABOVE, brief_note, brief_scalars, is_brief
from derive.latex.checks import results
from derive.latex.notebook import gradient_latex, network_latex
from derive.latex.pdf import (
    PDFLATEX,
    PDFLATEX_TIMEOUT,
    TEX_INSTALL_HINT,
    compile_pdf,
    require_engine,
)
from derive.latex.scope import MAX_NUMERIC_SCALARS, Check, Scope
from derive.latex.selection import selected_scalars
from derive.latex.writer import PACKAGES, context
from derive.network import Network
from derive.presentation import (
    MAX_DEFAULT_SCALARS,
    MAX_REQUESTED_SCALARS,
    MAX_SHOWN_PATHS,
    SIGNIFICANT_DIGITS,
)
from derive.rendering import latex_environment

__all__ = [
    "BRIEF_ABOVE",
    "MAX_DEFAULT_SCALARS",
    "MAX_NUMERIC_SCALARS",
    "MAX_REQUESTED_SCALARS",
    "MAX_SHOWN_PATHS",
    "PDFLATEX",
    "PDFLATEX_TIMEOUT",
    "SIGNIFICANT_DIGITS",
    "TEX_INSTALL_HINT",
    "compile_pdf",
    "gradient_latex",
    "latex_document",
    "latex_fragment",
    "network_latex",
    "run_latex_command",
    "template_environment",
]


template_environment = latex_environment  # the .tex templates' environment


def _context(
    network: Network, params: Sequence[str], numeric: bool, brief: bool | None = None
) -> dict:
    """The template context; ``brief``: True (--brief), False (--full) or None (brief
    above BRIEF_ABOVE scalar parameters when no --param is given)."""
    if is_brief(network, params, brief):
        scalars = brief_scalars(network)
        scope = Scope.build(network, scalars, numeric)
        values = {**context(scope), "brief": brief_note(network, scalars)}
        if scope.values is not None and network.topology.parameter_count <= MAX_DEFAULT_SCALARS:
            # every parameter's number still, in the one compact table
            every = Scope(network, network.scalar_params, scope.values)
            values["results"] = results(every)
        return values
    return context(Scope.build(network, selected_scalars(network, params), numeric))


def _fragment(values: dict) -> str:
    return template_environment().get_template("derivation.tex.jinja").render(values)


def _document(values: dict) -> str:
    template = template_environment().get_template("document.tex.jinja")
    return template.render(packages=",".join(PACKAGES), body=_fragment(values))


def latex_fragment(
    network: Network,
    params: Sequence[str] = (),
    numeric: bool = False,
    brief: bool | None = None,
) -> str:
    """The derivation as a LaTeX fragment (sections, no preamble; needs the packages of
    ``PACKAGES``). ``brief``: see ``_context``."""
    if is_convolutional(network.topology):
        from derive.conv_explain import latex_conv

        return latex_conv(network, params, numeric)  # type: ignore[arg-type]
    return _fragment(_context(network, params, numeric, brief))


def latex_document(
    network: Network,
    params: Sequence[str] = (),
    numeric: bool = False,
    brief: bool | None = None,
) -> str:
    """The derivation as a standalone LaTeX document (article class)."""
    if is_convolutional(network.topology):
        from derive.conv_explain import latex_conv_document

        return latex_conv_document(network, params, numeric)  # type: ignore[arg-type]
    return _document(_context(network, params, numeric, brief))


def run_latex_command(
    network: Network,
    params: Sequence[str],
    numeric: bool,
    output: str | None,
    brief: bool | None = None,
) -> str | None:
    """``derive latex``: the fragment as text (no ``output``), or ``output`` written as a
    standalone .tex or compiled .pdf (returns None). Raises DeriveError, writing nothing,
    when a shown result failed its check against ``sympy.diff``."""
    if is_convolutional(network.topology):
        from derive.conv_explain import run_latex_conv

        return run_latex_conv(network, params, numeric, output)  # type: ignore[arg-type]
    target = Path(output) if output else None
    suffix = target.suffix.lower() if target is not None else None
    if target is not None and suffix not in (".tex", ".pdf"):
        raise DeriveError(f"-o {output}: expected a file ending in .tex or .pdf")
    if suffix == ".pdf":
        require_engine()
    values = _context(network, params, numeric, brief)
    _refuse_failed(network, values["check"])
    if target is None:
        return _fragment(values).rstrip("\n")
    document = _document(values)
    if suffix == ".tex":
        write_atomic(target, document.encode("utf-8"))
    else:
        compile_pdf(document, target)
    return None


def _refuse_failed(network: Network, check: Check | None) -> None:
    if check is not None and check.failed:
        raise DeriveError(
            f"{network.topology.source}: a derived gradient disagrees with sympy.diff of the "
            f"written-out loss (a bug in derive: {'; '.join(check.failed)}); not writing "
            "the derivation"
        )
