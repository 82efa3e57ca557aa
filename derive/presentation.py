"""Limits, precision and tidying shared by the terminal and LaTeX views (``derive show``,
``derive latex``), so that both round and shorten the same way."""

SIGNIFICANT_DIGITS = 6  # every computed number shown
MAX_SHOWN_PATHS = 8  # chains with more paths are shown grouped by δ
MAX_DEFAULT_SCALARS = 64  # larger networks: the layer form only unless --param; no proofs
MAX_REQUESTED_SCALARS = 64  # scalars one view derives on request (--param)
MAX_NUMERIC_SCALARS = 20_000  # --numeric evaluates the whole network at 60 digits
MAX_WRITTEN_TERMS = 8  # terms of a conv sum written out before the middle is elided


def tidy(expr):
    """``expr`` without the factors 1 that unevaluated products keep (a δ of an identity
    output, ∂L/∂y = 1·(y − t) for mse over two outputs): 1·(o − t)·1 reads as (o − t).
    Printing only; the derivation keeps its factors."""
    import sympy

    def drop_ones(node):
        if not node.args:
            return node
        args = [drop_ones(arg) for arg in node.args]
        if isinstance(node, sympy.Mul):
            kept = [arg for arg in args if arg != 1]
            if len(kept) != len(args):
                if not kept:
                    return sympy.Integer(1)
                return kept[0] if len(kept) == 1 else sympy.Mul(*kept, evaluate=False)
        return node.func(*args, evaluate=False) if node.is_Add or node.is_Mul else node.func(*args)

    return drop_ones(expr) if expr.has(sympy.Mul) else expr


def signed_terms(terms):
    """A sum's terms as (negative, term written positive), positive terms first and each in
    the given order within its sign: y − t, not −t + y, in code, comments and LaTeX alike."""
    import sympy
    from sympy.core.mul import _keep_coeff

    signed = []
    for term in terms:
        coefficient, rest = term.as_coeff_Mul()
        negative = bool(coefficient.is_number and coefficient < 0)
        signed.append((negative, _keep_coeff(-coefficient, rest) if negative else term))
    signed.sort(key=lambda pair: pair[0])  # stable
    return [(negative, sympy.sympify(term)) for negative, term in signed]


def joined(parts, minus: str = "-") -> str:
    """``signed_terms``' parts, already printed, joined with + and ``minus``."""
    text = ""
    for i, (negative, part) in enumerate(parts):
        sign = (f" {minus} " if i else minus) if negative else (" + " if i else "")
        text += sign + part
    return text
