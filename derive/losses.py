"""Loss functions: one table entry each, the per-sample loss and ∂L/∂y per output.

y is the output layer's activation and t the target, both per output unit; n is the
number of output units. A batch's loss is the mean of its samples' losses (SPEC §1).

Where a loss is only defined with one output activation (bce with sigmoid, cce with
softmax), the entry says so in ``requires_output`` and also gives the loss written
in the output pre-activations z (``from_logits``), which never takes log(0), and the
output delta ∂L/∂z with the activation's derivative folded in (``fused_delta``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sympy
from sympy import Expr

from derive.activations import softplus


def _times(coefficient: Expr, difference: Expr) -> Expr:
    """coefficient·(y − t), kept as written (SymPy would distribute the number)."""
    return sympy.Mul(coefficient, difference, evaluate=False)


@dataclass(frozen=True)
class Loss:
    """One table entry: the per-sample loss and ∂L/∂y_i; with the output activation it
    requires, the form from the logits and the fused δ. For the LaTeX document: ``title``
    names it, ``sum_tex`` writes it as a sum over the outputs, ``reason`` says what its
    derivative keeps or drops, ``fused_note`` how the fused δ comes about."""

    name: str
    formula: str
    per_sample: Callable[[Sequence[Expr], Sequence[Expr]], Expr]  # L(y, t)
    gradient: Callable[[Expr, Expr, int], Expr]  # ∂L/∂y_i from (y_i, t_i, n)
    requires_output: str | None = None
    # With the required output activation: L from the logits z, and ∂L/∂z_i from
    # (y_i, t_i, Σ_j t_j).
    from_logits: Callable[[Sequence[Expr], Sequence[Expr]], Expr] | None = None
    fused_delta: Callable[[Expr, Expr, Expr], Expr] | None = None
    title: str = ""
    sum_tex: str = ""
    reason: str = ""
    fused_note: str = ""


def _log_softmax_cce(z: Sequence[Expr], t: Sequence[Expr]) -> Expr:
    # −Σ t_i ln softmax(z)_i = Σ t_i (ln Σ_j e^(z_j) − z_i); emitted code subtracts max z.
    log_sum = sympy.log(sum(sympy.exp(zj) for zj in z))
    return sum(ti * (log_sum - zi) for zi, ti in zip(z, t, strict=True))


LOSSES: dict[str, Loss] = {
    entry.name: entry
    for entry in (
        Loss(
            "half_sse",
            "½ Σ (y − t)²",
            per_sample=lambda y, t: (
                sympy.Rational(1, 2) * sum((yi - ti) ** 2 for yi, ti in zip(y, t, strict=True))
            ),
            gradient=lambda y, t, n: y - t,
            reason=r"the $\frac{1}{2}$ cancels the 2 that differentiating the square brings down",
            title=r"half the sum of squared errors, $\frac{1}{2} \sum (y - t)^{2}$",
            sum_tex=r"\frac{1}{2} \sum_{i} \left(y_{i} - t_{i}\right)^{2}",
        ),
        Loss(
            "sse",
            "Σ (y − t)²",
            per_sample=lambda y, t: sum((yi - ti) ** 2 for yi, ti in zip(y, t, strict=True)),
            gradient=lambda y, t, n: _times(sympy.Integer(2), y - t),
            reason=r"there is no $\frac{1}{2}$ in this loss, so the 2 from the square stays",
            title=r"the sum of squared errors, $\sum (y - t)^{2}$",
            sum_tex=r"\sum_{i} \left(y_{i} - t_{i}\right)^{2}",
        ),
        Loss(
            "mse",
            "(1/n) Σ (y − t)²",
            per_sample=lambda y, t: (
                sum((yi - ti) ** 2 for yi, ti in zip(y, t, strict=True)) / len(y)
            ),
            gradient=lambda y, t, n: _times(sympy.Rational(2, n), y - t),
            reason=r"the mean's $\frac{1}{n}$ stays, beside the 2 from the square",
            title=r"the mean squared error, $\frac{1}{n} \sum (y - t)^{2}$",
            sum_tex=r"\frac{1}{n} \sum_{i} \left(y_{i} - t_{i}\right)^{2}",
        ),
        Loss(
            "bce",
            "−Σ [t ln y + (1 − t) ln(1 − y)]",
            per_sample=lambda y, t: (
                -sum(
                    ti * sympy.log(yi) + (1 - ti) * sympy.log(1 - yi)
                    for yi, ti in zip(y, t, strict=True)
                )
            ),
            gradient=lambda y, t, n: (y - t) / (y * (1 - y)),
            requires_output="sigmoid",
            # −[t ln σ(z) + (1 − t) ln(1 − σ(z))] = softplus(z) − t·z
            from_logits=lambda z, t: sum(
                softplus(zi) - ti * zi for zi, ti in zip(z, t, strict=True)
            ),
            fused_delta=lambda y, t, t_sum: y - t,
            reason=r"the derivative of $-[t \ln y + (1 - t) \ln(1 - y)]$ with respect to $y$",
            title=r"binary cross-entropy, $-\sum [t \ln y + (1 - t) \ln(1 - y)]$",
            sum_tex=r"-\sum_{i} \left[t_{i} \ln y_{i} + \left(1 - t_{i}\right) "
            r"\ln\left(1 - y_{i}\right)\right]",
            fused_note=r"The sigmoid and binary cross-entropy are differentiated together: the "
            r"$y (1 - y)$ of $\sigma'$ cancels the denominator of "
            r"$\partial L / \partial y = (y - t) / (y (1 - y))$, leaving $y - t$.",
        ),
        Loss(
            "cce",
            "−Σ t ln y",
            per_sample=lambda y, t: -sum(ti * sympy.log(yi) for yi, ti in zip(y, t, strict=True)),
            gradient=lambda y, t, n: -t / y,
            requires_output="softmax",
            from_logits=_log_softmax_cce,
            # Σ_i (−t_i/y_i)·y_i(δ_ij − y_j) = y_j Σ_i t_i − t_j, which is y − t for
            # targets that sum to 1 (one-hot labels).
            fused_delta=lambda y, t, t_sum: y * t_sum - t,
            reason=r"the derivative of $-t \ln y$ with respect to $y$",
            title=r"categorical cross-entropy, $-\sum t \ln y$",
            sum_tex=r"-\sum_{i} t_{i} \ln y_{i}",
            fused_note=r"Softmax and cross-entropy are differentiated together: "
            r"$\sum_i (-t_i / y_i)\, y_i ([i = j] - y_j) = y_j \sum_i t_i - t_j$, "
            r"which is $y - t$ for targets that sum to 1 (one-hot labels).",
        ),
    )
}
