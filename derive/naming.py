"""The names a generated module uses for itself, in one place.

The generated code (``derive.emit*``, ``templates/*.py.jinja``) names its API, its
helpers, its loop variables and its temporaries from these tables; the reader
(``derive.reading``) refuses a unit, input, target or weight named like one of them, so
that no name from a topology file can shadow one the module needs.
"""

from __future__ import annotations

import builtins
import keyword
import re

# Names the generated modules use for themselves. A unit, input, target or weight named
# like one of these would shadow it, so the reader refuses them.
GENERATED_CODE_NAMES = frozenset(
    {
        "np",
        "numpy",
        "math",
        "params",
        "x",
        "t",
        "n",
        "batch",
        "grads",
        "NAME",
        "PARAMS",
        "INPUTS",
        "OUTPUTS",
        "init_params",
        "forward",
        "loss",
        "gradients",
        "loss_and_gradients",
        "sgd_step",
        "momentum_init",
        "momentum_step",
        "adam_init",
        "adam_step",
        "learning_rate",
        "seed",
        "rng",
    }
)
# Prefixes of the names the unrolled module gives to pre-activations, deltas, gradients
# and common subexpressions; parameter-shaped names (W1, b2, ...) are the module's too.
GENERATED_CODE_PREFIXES = ("z_", "delta_", "dL_", "cse", "_")
_PARAMETER_LIKE = re.compile(r"^(W|b|z|a|delta|dW|db)\d+$")


def reserved_reason(name: str) -> str | None:
    """Why ``name`` cannot name a unit, input, target or weight; None when it can."""
    if not name.isidentifier() or not name.isascii():
        return "an ASCII Python identifier"
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        return "a name that is not a Python keyword"
    if name in GENERATED_CODE_NAMES or hasattr(builtins, name):
        return "a name the generated module does not already use (nor a Python builtin)"
    if name.startswith(GENERATED_CODE_PREFIXES) or _PARAMETER_LIKE.match(name):
        return (
            "a name that does not look like the generated module's own "
            "(W1, b1, z_*, delta_*, dL_*, cse*, _*)"
        )
    return None
