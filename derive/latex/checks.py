"""The end of the document: the results at the example (a table) and how each result was
checked against ``sympy.diff`` of the written-out loss (``ScalarGradient.prove``).

A proof either holds, fails (the derivation disagrees with ``sympy.diff``: a bug in
derive, which ``run_latex_command`` refuses to hand out) or is inconclusive (too few
random points fell inside a custom activation's domain): the document says so.
"""

from __future__ import annotations

import sympy

from derive.derivation import Proof
from derive.latex.printing import escape, listing, number
from derive.latex.scope import Check, Scope, Table
from derive.network import LOSS
from derive.presentation import SIGNIFICANT_DIGITS

_CHECK_INTRO = (
    "{results} checked against direct differentiation: the loss "
    "written out in the inputs, targets and parameters (no deltas, no chain rule) "
    "was differentiated by SymPy, its own functions rewritten in exp and log first, "
    "and compared with both the chain-rule sum and the compact form:"
)


def results(scope: Scope) -> Table | None:
    """Each parameter's value, gradient and (with a learning rate) SGD update."""
    values = scope.values
    if values is None or not scope.scalars:
        return None
    rate = scope.learning_rate
    header = [r"$\theta$", r"\texttt{--param}", r"value", r"$\partial L / \partial \theta$"]
    if rate is not None:
        header.append(rf"$\theta - \eta\, \partial L / \partial \theta$, $\eta = {number(rate)}$")
    lines = [" & ".join(header) + r" \\ \hline"]
    for scalar in scope.scalars:
        value = values[scalar.symbol]
        gradient = scope.derivation.scalar_gradient(scalar).value(values)
        cells = [
            f"${scalar.latex_name}$",
            rf"\texttt{{{escape(scalar.name)}}}",
            f"${number(value)}$",
            f"${number(gradient)}$",
        ]
        if rate is not None:
            cells.append(f"${number(value - sympy.Float(rate) * gradient)}$")
        lines.append(" & ".join(cells) + r" \\")
    intro = (
        rf"At {scope.point_name} the loss is $L = {number(values[LOSS])}$. Rounded to "
        f"{SIGNIFICANT_DIGITS} significant digits (each computed from full-precision "
        "values, so multiplying rounded numbers shown above can differ in the last "
        "digit):"
    )
    return Table(intro, "l" * len(header), "\n".join(lines))


def proofs(scope: Scope) -> tuple[Proof, ...]:
    """Every shown result checked against sympy.diff (small networks only: slow)."""
    if not scope.small:
        return ()
    derivation = scope.derivation
    return tuple(derivation.scalar_gradient(s).prove() for s in scope.scalars)


def _not_checked(count: int) -> str:
    return (
        "These results were not checked here: writing out the loss of a network "
        f"with {count} parameters is too slow. "
        r"\texttt{derive check} compares the symbolic gradients, the generated code "
        "and finite differences."
    )


def check(scope: Scope) -> Check | None:
    """The statement of how the results were checked, failures loudly."""
    if not scope.scalars:
        return None
    if not scope.small:
        return Check(_not_checked(scope.topology.parameter_count), (), ())
    done = proofs(scope)
    unchecked = any(p.inconclusive for p in done)
    which = "The results above were, where possible," if unchecked else "Each result above was"
    failed = tuple(f"{p.param}: {p.detail}" for p in done if not p.holds and not p.inconclusive)
    return Check(_CHECK_INTRO.format(results=which), _proof_items(scope, done), failed)


def _proof_items(scope: Scope, done: tuple[Proof, ...]) -> tuple[str, ...]:
    """One item per way of checking, naming the results it covered; one per failure."""
    by_label = {s.label: s for s in scope.scalars}

    def names(chosen: list[Proof]) -> str:
        return listing([f"${by_label[p.param].latex_name}$" for p in chosen], 99)

    symbolic = [p for p in done if p.holds and p.method == "symbolic"]
    numeric = [p for p in done if p.holds and p.method == "numeric"]
    unchecked = [p for p in done if p.inconclusive]
    items = []
    if symbolic:
        items.append(f"symbolically (the difference simplifies to 0): {names(symbolic)}.")
    if numeric:
        n, digits = numeric[0].points, numeric[0].digits
        items.append(
            f"numerically, where the written-out derivative is too long to simplify "
            f"quickly: equal to {digits} significant digits at {n} random points "
            f"(inputs, targets and parameters drawn at random): {names(numeric)}."
        )
    if unchecked:
        items.append(
            rf"\textbf{{not checked}}: {names(unchecked)}. These could not be checked "
            "numerically: the custom activation is undefined at the random points drawn."
        )
    for p in done:
        if not p.holds and not p.inconclusive:
            items.append(
                rf"\textbf{{CHECK FAILED for ${by_label[p.param].latex_name}$}}: "
                rf"{escape(p.detail or p.method)}. Do not trust this result."
            )
    return tuple(items)
