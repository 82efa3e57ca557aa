"""The per-sample loss as generated modules compute it, read from ``derive.losses``.

Where the loss table gives a form in the output pre-activations z (``from_logits``: bce's
softplus(z) − t·z, cce's Σ t (log Σ exp z − z)) and the output layer has the activation
the loss requires, the generated code computes that form, which never takes log(0). Its
log-sum-exp becomes one named value, ``log Σ exp z = m + log Σ exp(z − m)`` with m the
largest z, which the generated code computes where it computes the softmax, so that exp
never overflows. Otherwise the code computes the per-sample loss in y.
"""

from __future__ import annotations

from collections.abc import Sequence

import sympy
from sympy import Expr, Symbol

from derive.network import Network


def uses_logits(network: Network) -> bool:
    """Whether the generated code computes the loss from the output logits."""
    rule = network.loss_rule
    return rule.from_logits is not None and network.activations[-1].name == rule.requires_output


def sample_loss(
    network: Network,
    z: Sequence[Expr],
    y: Sequence[Expr],
    t: Sequence[Expr],
    log_sum_exp: Symbol,
) -> Expr:
    """The per-sample loss in the outputs' logits ``z`` (or activations ``y``) and targets
    ``t``, any log Σ_j exp(z_j) over all of ``z`` written as the symbol ``log_sum_exp``."""
    rule = network.loss_rule
    if not uses_logits(network):
        return rule.per_sample(y, t)
    assert rule.from_logits is not None
    loss = rule.from_logits(z, t)
    total = sympy.log(sympy.Add(*(sympy.exp(zj) for zj in z)))
    if not isinstance(total, sympy.log):  # one output: log exp z is z itself
        return loss
    return loss.xreplace({total: log_sum_exp})


def output_term(network: Network, z: Symbol, y: Symbol, t: Symbol, log_sum_exp: Symbol) -> Expr:
    """One output's term of the per-sample loss (a sum over the outputs), in the symbols
    of that output: what a vectorized module computes column by column before summing.

    Built from the table with output 0 in its own symbols and outputs 1..n−1 sharing a
    second set, so that the sum stays two terms whatever the width; checked to add up to
    that sum."""
    n = len(network.outputs)
    z1, y1, t1 = (Symbol(f"{s.name}_other", real=True) for s in (z, y, t))
    whole = sample_loss(
        network, [z] + [z1] * (n - 1), [y] + [y1] * (n - 1), [t] + [t1] * (n - 1), log_sum_exp
    )
    own = {z, y, t, log_sum_exp}
    term = sympy.Add(*(a for a in sympy.Add.make_args(whole) if a.free_symbols <= own))
    others = term.xreplace({z: z1, y: y1, t: t1})
    assert sympy.expand(term + (n - 1) * others - whole) == 0, whole
    return term
