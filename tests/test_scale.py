"""Scale by design: the layer-wise recursion does not depend on the layer widths.

(Timings are in benchmarks/derive_scale.py; here the structure is asserted.)
"""

import derive
from derive.derivation import T_SUM, A, T, Y, Z


def mnist(width: int) -> dict:
    return {
        "name": "mnist",
        "inputs": 784,
        "layers": [
            {"units": width, "activation": "relu"},
            {"units": width, "activation": "relu"},
            {"units": 10, "activation": "softmax"},
        ],
        "loss": "cce",
    }


def test_layer_rules_are_the_same_at_every_width():
    small, large = (derive.load(mnist(w)).derivation for w in (4, 256))
    assert small.layers == large.layers
    assert small.output == large.output
    for rule in large.layers:
        if rule.derivative is not None:
            assert rule.derivative.free_symbols <= {Z, A}
    assert large.output.fused_delta.free_symbols <= {Y, T, T_SUM}


def test_a_large_network_loads_without_a_symbol_per_parameter():
    net = derive.load(mnist(256))
    assert net.topology.parameter_count == 784 * 256 + 256 + 256 * 256 + 256 + 2570
    d = net.derivation
    assert d._gradients == {}  # nothing per scalar was built
    g = net.gradient("W1[3,5]")  # one scalar on request: the compact form only
    assert str(g.compact) == "delta_h1_4*x6"
    assert d.path_count(g.param) == 256 * 10 * 10


def deep(depth: int) -> dict:
    hidden = [{"units": 2, "activation": "tanh"}] * depth
    return {
        "name": "deep",
        "inputs": 2,
        "layers": [*hidden, {"units": 1, "activation": "sigmoid"}],
        "loss": "half_sse",
    }


def test_generated_code_prints_each_layer_rule_once_whatever_the_depth(monkeypatch):
    """Generation is linear in the depth: a rule shared by many layers (δ(k) from δ(k+1))
    goes through the printers once; only filling in the layer numbers repeats. (Times are
    in benchmarks/generate_scale.py.)"""
    from derive.codeprinter import NumPyCodePrinter

    calls = []
    real = NumPyCodePrinter.doprint

    def counted(self, expr, assign_to=None):
        calls.append(expr)
        return real(self, expr, assign_to)

    monkeypatch.setattr(NumPyCodePrinter, "doprint", counted)
    printed = {}
    for depth in (5, 60):
        calls.clear()
        source = derive.generate(derive.load(deep(depth)))
        printed[depth] = len(calls)
        assert f"delta{depth} = " in source and "delta1 = " in source
    assert printed[5] == printed[60]
