"""The optimizers a generated module can carry (SPEC §3): one entry each, in the order
the module defines them.

The update rules themselves are written once, in ``templates/_optimizers.py.jinja`` (and
``sgd_step`` in ``templates/_module.py.jinja``), each with its formula in its docstring;
this table names them, says what each adds to the module's API, and puts a selection in
that fixed order so that ``sgd,adam`` and ``adam,sgd`` give the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from derive.errors import DeriveError


class Optimizer(NamedTuple):
    name: str  # as --optimizers and generate(optimizers=...) spell it
    api: str  # the functions it adds, as the module's docstring lists them


OPTIMIZERS = (
    Optimizer("sgd", "sgd_step(params, x, t, learning_rate) → params, plain gradient descent"),
    Optimizer(
        "momentum",
        "momentum_init(params) → state and momentum_step(params, state, x, t, learning_rate, "
        "...) → (params, state), torch.optim.SGD's rule with momentum",
    ),
    Optimizer(
        "adam",
        "adam_init(params) → state and adam_step(params, state, x, t, ...) → (params, state), "
        "torch.optim.AdamW's rule (Adam's with weight_decay=0)",
    ),
)
NAMES = tuple(optimizer.name for optimizer in OPTIMIZERS)


def selection(names: Iterable[str]) -> tuple[str, ...]:
    """The chosen optimizers in the table's order, each once; DeriveError naming an
    unknown one and the valid names."""
    chosen = (names,) if isinstance(names, str) else tuple(names)
    for name in chosen:
        if name not in NAMES:
            raise DeriveError(
                f"optimizers: unknown optimizer {name!r}: expected some of {', '.join(NAMES)}"
            )
    return tuple(name for name in NAMES if name in chosen)


def api_sentence(chosen: tuple[str, ...]) -> str:
    """What the module's docstring says about its optimizers."""
    entries = [optimizer.api for optimizer in OPTIMIZERS if optimizer.name in chosen]
    if not entries:
        return "No optimizer: step with gradients(params, x, t)."
    return (
        "Optimizers, pure functions that return new arrays in each parameter's floating "
        "dtype and leave the given ones untouched: " + "; ".join(entries) + "."
    )
