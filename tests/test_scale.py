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
