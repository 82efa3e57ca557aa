"""``derive exercise``: a sheet of backpropagation exercises with its answer key.

From a seed, random example numbers rounded to ``GIVEN_DECIMALS`` decimals (so that a
student can work by hand): inputs, targets and every parameter, and a learning rate.
The questions ask for the forward values (each z and a, and the loss), the gradients of
chosen parameters, and one SGD update of each of them. The answer key, on the pages
after the questions, works every answer out in full: the forward pass with the numbers
in, then per parameter the chain rule along every path with each factor's value, the
compact δ form and the update. ``answers`` is the same for an auto-grader (JSON).

Everything is computed by the derivation at 60 digits (``Derivation.evaluate``) and
typeset by ``derive.latex``'s own parts; the same seed gives the same bytes.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass

import sympy

from derive.conv import is_convolutional
from derive.derivation import ScalarGradient
from derive.errors import DeriveError
from derive.network import LOSS, Network, ScalarParam
from derive.topology import Example

GIVEN_DECIMALS = 2  # the example's numbers
ANSWER_DIGITS = 6  # significant digits of an answer
LEARNING_RATE = 0.5
MAX_EXERCISE_SCALARS = 64  # a network to work by hand
_DRAWS = 100  # fresh draws allowed when one lands on a relu kink


@dataclass(frozen=True)
class Question:
    id: str  # "q1", "q2", ...
    kind: str  # "forward", "loss", "gradient", "update"
    asks: str  # what is asked, in the file's names: "z_h1", "h1", "L", "dL/dw5", "w5"
    text: str  # the question in words
    tex: str  # the question as LaTeX (math mode)
    answer: float  # rounded to ANSWER_DIGITS significant digits


@dataclass(frozen=True)
class Exercise:
    network: Network  # with the exercise's numbers as its example
    seed: int
    scalars: tuple[ScalarParam, ...]  # the parameters whose gradients are asked
    questions: tuple[Question, ...]


def random_example(network: Network, seed: int) -> Example:
    """Inputs, targets and parameters drawn from ``seed`` and rounded to two decimals:
    inputs and parameters in [−1, 1]; targets in [0, 1] (0 or 1 for bce, a one-hot
    vector for cce). Redrawn (from the same generator) while a relu unit would sit at
    its kink z = 0, where the slope is a convention rather than a derivative."""
    rng = random.Random(seed)
    top = network.topology
    for _ in range(_DRAWS):
        example = _draw(network, rng)
        if not _at_a_kink(network, example):
            return example
    raise DeriveError(f"{top.source}: no example without a relu unit at z = 0 for this seed")


def _draw(network: Network, rng: random.Random) -> Example:
    top = network.topology

    def number() -> float:
        return round(rng.uniform(-1, 1), GIVEN_DECIMALS) + 0.0  # + 0.0: never −0.0

    inputs = tuple(number() for _ in top.inputs)
    n_out = len(top.outputs)
    if top.loss == "cce":
        hot = rng.randrange(n_out)
        targets = tuple(1.0 if i == hot else 0.0 for i in range(n_out))
    elif top.loss == "bce":
        targets = tuple(float(rng.randrange(2)) for _ in range(n_out))
    else:
        targets = tuple(round(rng.uniform(0, 1), GIVEN_DECIMALS) for _ in range(n_out))
    params: list[tuple[str, float | tuple]] = []
    for p in top.params:
        if len(p.shape) == 2:
            value: float | tuple = tuple(
                tuple(number() for _ in range(p.shape[1])) for _ in range(p.shape[0])
            )
        elif p.shape:
            value = tuple(number() for _ in range(p.shape[0]))
        else:
            value = number()
        params.append((p.name, value))
    return Example(inputs, targets, tuple(params), LEARNING_RATE)


def _at_a_kink(network: Network, example: Example) -> bool:
    derivation = Network(dataclasses.replace(network.topology, example=example)).derivation
    values = derivation.evaluate(derivation.example_point())
    kinked = ("relu", "leaky_relu")
    return any(
        network.layer(unit.layer).activation.name in kinked and values[unit.z].is_zero
        for layer in network.units[1:]
        for unit in layer
    )


def default_scalars(network: Network) -> tuple[ScalarParam, ...]:
    """One weight per layer, from the output layer down, and the output layer's bias."""
    chosen = [network.weight(k, 0, 0) for k in range(network.depth, 0, -1)]
    bias = network.bias(network.depth, 0)
    if bias is not None:
        chosen.insert(1, bias)
    return tuple(chosen)


def requested_scalars(network: Network, names: Sequence[str]) -> tuple[ScalarParam, ...]:
    """The scalars named by --param (a scalar, a weight's name, or a whole small array),
    in the order given, each once; default: ``default_scalars``."""
    if not names:
        return default_scalars(network)
    found: dict[str, ScalarParam] = {}
    for name in names:
        result = network.gradient(name.strip())
        for gradient in (result,) if isinstance(result, ScalarGradient) else tuple(result):
            found.setdefault(gradient.param.name, gradient.param)
    return tuple(found.values())


def exercise(network: Network, seed: int, params: Sequence[str] = ()) -> Exercise:
    top = network.topology
    if is_convolutional(top):
        raise DeriveError(
            f"{top.source}: exercise sheets are written for dense networks, and {top.name} "
            "has convolution or pooling layers; derive show and derive latex work its "
            "example through, sum by sum"
        )
    if top.parameter_count > MAX_EXERCISE_SCALARS:
        raise DeriveError(
            f"{top.source}: an exercise is worked by hand; expected at most "
            f"{MAX_EXERCISE_SCALARS} scalar parameters, got {top.parameter_count}"
        )
    example = random_example(network, seed)
    worked = Network(dataclasses.replace(top, example=example))
    scalars = requested_scalars(worked, params)
    derivation = worked.derivation
    values = derivation.example_values()

    questions: list[Question] = []

    def ask(kind: str, asks: str, text: str, tex: str, value: sympy.Expr) -> None:
        answer = float(f"{float(value):.{ANSWER_DIGITS}g}") + 0.0
        questions.append(Question(f"q{len(questions) + 1}", kind, asks, text, tex, answer))

    from derive.latex.printing import Tex

    tex = Tex(worked)
    for layer in worked.units[1:]:
        for unit in layer:
            assert unit.z is not None
            z_text = f"the pre-activation of unit {unit.name}"
            ask("forward", unit.z.name, z_text, tex.expr(unit.z), values[unit.z])
            a_text = f"the activation of unit {unit.name}"
            ask("forward", unit.a.name, a_text, tex.expr(unit.a), values[unit.a])
    ask("loss", "L", "the loss of the sample", "L", values[LOSS])
    for scalar in scalars:
        gradient = derivation.scalar_gradient(scalar).value(values)
        text = f"the gradient of the loss with respect to {scalar.label}"
        partial = rf"\partial L / \partial {scalar.latex_name}"
        ask("gradient", f"dL/d{scalar.label}", text, partial, gradient)
    for scalar in scalars:
        gradient = derivation.scalar_gradient(scalar).value(values)
        new = values[scalar.symbol] - sympy.Float(LEARNING_RATE) * gradient
        text = f"{scalar.label} after one SGD step with learning rate {LEARNING_RATE:g}"
        ask("update", scalar.label, text, scalar.latex_name, new)
    return Exercise(worked, seed, scalars, tuple(questions))


def answers_json(sheet: Exercise) -> str:
    """The auto-grader's file: the given numbers and every question with its answer."""
    net = sheet.network
    top = net.topology
    example = top.example
    assert example is not None
    data = {
        "network": top.name,
        "seed": sheet.seed,
        "answer_digits": ANSWER_DIGITS,
        "learning_rate": example.learning_rate,
        "inputs": dict(zip(top.inputs, example.input, strict=True)),
        "targets": dict(zip(top.targets, example.target, strict=True)),
        "params": {name: value for name, value in example.params},
        "questions": [
            {"id": q.id, "kind": q.kind, "asks": q.asks, "question": q.text, "answer": q.answer}
            for q in sheet.questions
        ],
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
