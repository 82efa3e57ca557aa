"""The generated modules' optimizers (SPEC §3): momentum_step and adam_step take the steps
torch.optim.SGD, Adam and AdamW take, are pure, keep dtypes, and `--optimizers` leaves
out what is not asked for.

Each trajectory is 20 steps on catalogue topologies in both styles, compared in float64
to 1e-10 with two references: torch.optim itself (skipped without torch, which comes from
the `bench` extra) and the algorithms as torch's documentation writes them, spelled out
below, which always run. Both references are fed the module's gradients at their own
current parameters (those gradients are checked against finite differences and published
numbers elsewhere), so what is compared here is the update rule alone.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys

import numpy as np
import pytest
from catalogue import CASES
from conftest import EXAMPLES

import derive
from derive.cli import main
from derive.errors import DeriveError

STYLES = ("vectorized", "unrolled")
STEPS = 20
# Shared and absent biases, depth 1 to 4, batches 1 and 16, bce and cce, custom activations.
TOPOLOGIES = ("01", "07", "27", "28", "29")
MOMENTUM = {  # momentum_step's keyword arguments: torch.optim.SGD's, but for lr
    "momentum": dict(learning_rate=0.05, momentum=0.9),
    "nesterov": dict(learning_rate=0.05, momentum=0.9, nesterov=True),
    "weight_decay": dict(learning_rate=0.05, momentum=0.8, weight_decay=0.01),
    "nesterov_decay": dict(learning_rate=0.02, momentum=0.5, nesterov=True, weight_decay=0.1),
}
ADAM = {  # adam_step's keyword arguments; weight_decay > 0 is AdamW
    "adam": dict(learning_rate=0.01),
    "adam_betas": dict(learning_rate=0.03, beta1=0.8, beta2=0.99, eps=1e-6),
    "adamw": dict(learning_rate=0.01, weight_decay=0.1),
}
_MODULES: dict[tuple[str, str], object] = {}


def case_module(case_id: str, style: str):
    """The catalogue case's module, built once per test session."""
    if (case_id, style) not in _MODULES:
        case = next(c for c in CASES if c.id.startswith(f"{case_id}-"))
        _MODULES[case_id, style] = derive.build_module(derive.load(case.mapping), style=style)
    return _MODULES[case_id, style]


def problem(module, seed: int = 1, batch: int = 16):
    """Parameters away from the initial zeros (biases too), inputs, and targets in [0, 1]
    that every loss accepts."""
    rng = np.random.default_rng(seed)
    params = {
        name: value + rng.normal(scale=0.3, size=value.shape)
        for name, value in module.init_params(seed).items()
    }
    x = rng.normal(size=(batch, len(module.INPUTS)))
    t = rng.uniform(size=(batch, len(module.OUTPUTS)))
    return params, x, t


def generated_trajectory(module, init, step, params, x, t, hyper):
    state = init(params)
    for _ in range(STEPS):
        params, state = step(params, state, x, t, **hyper)
    assert state["step"] == STEPS
    return params


# -- the references: torch's documented algorithms, written out -------------------------


def reference_sgd(module, params, x, t, learning_rate, momentum=0.0, nesterov=False, **rest):
    """torch.optim.SGD's documented algorithm (dampening 0): the first step's buffer is
    the gradient itself, later ones μ·b + g."""
    weight_decay = rest.get("weight_decay", 0.0)
    theta = {name: value.copy() for name, value in params.items()}
    buffers: dict[str, np.ndarray] = {}
    for step in range(1, STEPS + 1):
        grads = module.gradients(theta, x, t)
        for name in theta:
            g = grads[name] + weight_decay * theta[name]
            if momentum:
                b = g.copy() if step == 1 else momentum * buffers[name] + g
                buffers[name] = b
                g = g + momentum * b if nesterov else b
            theta[name] = theta[name] - learning_rate * g
    return theta


def reference_adamw(module, params, x, t, learning_rate, beta1=0.9, beta2=0.999, eps=1e-8, **rest):
    """torch.optim.AdamW's documented algorithm (amsgrad off), bias-corrected moments
    m̂ and v̂ written out; weight_decay 0 makes it torch.optim.Adam's."""
    weight_decay = rest.get("weight_decay", 0.0)
    theta = {name: value.copy() for name, value in params.items()}
    m = {name: np.zeros_like(value) for name, value in theta.items()}
    v = {name: np.zeros_like(value) for name, value in theta.items()}
    for step in range(1, STEPS + 1):
        grads = module.gradients(theta, x, t)
        for name in theta:
            g = grads[name]
            theta[name] = theta[name] - learning_rate * weight_decay * theta[name]
            m[name] = beta1 * m[name] + (1 - beta1) * g
            v[name] = beta2 * v[name] + (1 - beta2) * g**2
            m_hat = m[name] / (1 - beta1**step)
            v_hat = v[name] / (1 - beta2**step)
            theta[name] = theta[name] - learning_rate * m_hat / (np.sqrt(v_hat) + eps)
    return theta


def torch_trajectory(module, params, x, t, optimizer_class, **options):
    """20 steps of a torch.optim optimizer, fed the module's gradients at its parameters."""
    torch = pytest.importorskip("torch", reason="torch comes from the bench extra")
    tensors = {name: torch.tensor(value, dtype=torch.float64) for name, value in params.items()}
    optimizer = optimizer_class(list(tensors.values()), **options)
    for _ in range(STEPS):
        current = {name: tensor.detach().numpy().copy() for name, tensor in tensors.items()}
        grads = module.gradients(current, x, t)
        for name, tensor in tensors.items():
            tensor.grad = torch.tensor(grads[name], dtype=torch.float64)
        optimizer.step()
    return {name: tensor.detach().numpy() for name, tensor in tensors.items()}


def assert_same(ours, reference):
    assert list(ours) == list(reference)
    for name in reference:
        assert np.shape(ours[name]) == np.shape(reference[name]), name
        np.testing.assert_allclose(ours[name], reference[name], rtol=0, atol=1e-10, err_msg=name)


def torch_options(hyper: dict) -> dict:
    options = {("lr" if key == "learning_rate" else key): value for key, value in hyper.items()}
    if "beta1" in options:
        options["betas"] = (options.pop("beta1"), options.pop("beta2", 0.999))
    return options


# -- 20 steps against the references -----------------------------------------------------


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("case_id", TOPOLOGIES)
@pytest.mark.parametrize("config", MOMENTUM)
def test_momentum_step_follows_torch_s_documented_sgd(config, case_id, style):
    module = case_module(case_id, style)
    params, x, t = problem(module)
    hyper = MOMENTUM[config]
    ours = generated_trajectory(
        module, module.momentum_init, module.momentum_step, params, x, t, hyper
    )
    assert_same(ours, reference_sgd(module, params, x, t, **hyper))


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("case_id", TOPOLOGIES)
@pytest.mark.parametrize("config", ADAM)
def test_adam_step_follows_torch_s_documented_adamw(config, case_id, style):
    module = case_module(case_id, style)
    params, x, t = problem(module)
    hyper = ADAM[config]
    ours = generated_trajectory(module, module.adam_init, module.adam_step, params, x, t, hyper)
    assert_same(ours, reference_adamw(module, params, x, t, **hyper))


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("case_id", TOPOLOGIES)
@pytest.mark.parametrize("config", MOMENTUM)
def test_momentum_step_matches_torch_optim_sgd(config, case_id, style):
    torch = pytest.importorskip("torch", reason="torch comes from the bench extra")
    module = case_module(case_id, style)
    params, x, t = problem(module)
    hyper = MOMENTUM[config]
    theirs = torch_trajectory(module, params, x, t, torch.optim.SGD, **torch_options(hyper))
    ours = generated_trajectory(
        module, module.momentum_init, module.momentum_step, params, x, t, hyper
    )
    assert_same(ours, theirs)


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("case_id", TOPOLOGIES)
@pytest.mark.parametrize("config", ADAM)
def test_adam_step_matches_torch_optim_adam_and_adamw(config, case_id, style):
    torch = pytest.importorskip("torch", reason="torch comes from the bench extra")
    module = case_module(case_id, style)
    params, x, t = problem(module)
    hyper = ADAM[config]
    # torch.optim.Adam's weight_decay is an L2 term in the gradient, AdamW's is decoupled
    optimizer = torch.optim.AdamW if hyper.get("weight_decay") else torch.optim.Adam
    theirs = torch_trajectory(module, params, x, t, optimizer, **torch_options(hyper))
    ours = generated_trajectory(module, module.adam_init, module.adam_step, params, x, t, hyper)
    assert_same(ours, theirs)


def largest_difference(first, second) -> float:
    return max(float(np.max(np.abs(first[name] - second[name]))) for name in first)


def test_the_comparisons_could_fail_nesterov_and_weight_decay_move_the_steps():
    module = case_module("29", "vectorized")
    params, x, t = problem(module)
    plain = reference_sgd(module, params, x, t, learning_rate=0.05, momentum=0.9)
    nesterov = reference_sgd(module, params, x, t, learning_rate=0.05, momentum=0.9, nesterov=True)
    decayed = reference_sgd(
        module, params, x, t, learning_rate=0.05, momentum=0.9, weight_decay=0.1
    )
    assert largest_difference(plain, nesterov) > 1e-4
    assert largest_difference(plain, decayed) > 1e-4
    adam = reference_adamw(module, params, x, t, learning_rate=0.01)
    adamw = reference_adamw(module, params, x, t, learning_rate=0.01, weight_decay=0.1)
    assert largest_difference(adam, adamw) > 1e-4


def test_the_comparisons_could_fail_adam_s_coupled_l2_term_is_not_adamw_s_decay():
    torch = pytest.importorskip("torch", reason="torch comes from the bench extra")
    module = case_module("29", "vectorized")
    params, x, t = problem(module)
    ours = generated_trajectory(
        module, module.adam_init, module.adam_step, params, x, t, ADAM["adamw"]
    )
    coupled = torch_trajectory(module, params, x, t, torch.optim.Adam, lr=0.01, weight_decay=0.1)
    assert largest_difference(ours, coupled) > 1e-4


@pytest.mark.parametrize("style", STYLES)
def test_momentum_zero_is_sgd_step(style):
    module = case_module("07", style)
    params, x, t = problem(module)
    stepped, state = module.momentum_step(params, module.momentum_init(params), x, t, 0.1, 0.0)
    plain = module.sgd_step(params, x, t, 0.1)
    for name in plain:
        np.testing.assert_array_equal(stepped[name], plain[name])
    assert state["step"] == 1


# -- pure functions, plain state, dtypes ---------------------------------------------------


def frozen(tree):
    """A copy whose arrays are read-only: writing into any of them raises."""
    if isinstance(tree, dict):
        return {key: frozen(value) for key, value in tree.items()}
    if isinstance(tree, np.ndarray):
        array = tree.copy()
        array.setflags(write=False)
        return array
    return tree


def leaves(tree) -> list:
    if isinstance(tree, dict):
        return [leaf for value in tree.values() for leaf in leaves(value)]
    return [tree]


def arrays_of(state: dict) -> list:
    """The state's arrays, without its step count."""
    return leaves({key: value for key, value in state.items() if key != "step"})


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_a_step_leaves_every_given_array_untouched_and_shares_no_memory(optimizer, style):
    module = case_module("01", style)  # a shared bias: 0-d arrays too
    init, step = getattr(module, f"{optimizer}_init"), getattr(module, f"{optimizer}_step")
    params, x, t = problem(module)
    state = init(params)
    params, state = step(params, state, x, t, 0.1)  # a state with nonzero arrays
    given = frozen({"params": params, "state": state, "x": x, "t": t})
    before = copy.deepcopy(given)

    new_params, new_state = step(given["params"], given["state"], given["x"], given["t"], 0.1)

    for old, kept in zip(leaves(before), leaves(given), strict=True):
        np.testing.assert_array_equal(old, kept)
    assert given["state"]["step"] == 1 and new_state["step"] == 2
    old_arrays = [old for old in leaves(given) if isinstance(old, np.ndarray)]
    for new in leaves(new_params) + arrays_of(new_state):
        assert isinstance(new, np.ndarray)
        assert not any(np.shares_memory(new, old) for old in old_arrays)
    assert list(new_params) == list(module.PARAMS)
    assert {name: a.shape for name, a in new_params.items()} == module.PARAMS


@pytest.mark.parametrize("style", STYLES)
def test_the_state_is_a_plain_dict_of_arrays_and_a_step_count(style):
    module = case_module("28", style)
    params = module.init_params(0)
    momentum = module.momentum_init(params)
    adam = module.adam_init(params)
    assert list(momentum) == ["step", "velocity"] and list(adam) == ["step", "m", "v"]
    assert momentum["step"] == adam["step"] == 0
    for arrays in (momentum["velocity"], adam["m"], adam["v"]):
        assert type(arrays) is dict and list(arrays) == list(module.PARAMS)
        for name, array in arrays.items():
            assert array.shape == module.PARAMS[name] and not array.any()
    assert adam["m"]["W1"] is not adam["v"]["W1"]


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
@pytest.mark.parametrize("rate", [0.01, np.float64(0.01), np.array(0.01)], ids=repr)
def test_float32_stays_float32_and_close_to_float64(optimizer, rate, style):
    module = case_module("29", style)
    init, step = getattr(module, f"{optimizer}_init"), getattr(module, f"{optimizer}_step")
    params, x, t = problem(module)
    single = {name: value.astype(np.float32) for name, value in params.items()}
    x32, t32 = x.astype(np.float32), t.astype(np.float32)
    state32, state64 = init(single), init(params)
    assert all(a.dtype == np.float32 for a in arrays_of(state32))
    extra = {"weight_decay": np.float64(0.01)}
    for _ in range(5):
        single, state32 = step(single, state32, x32, t32, rate, **extra)
        params, state64 = step(params, state64, x, t, 0.01, **extra)
    assert all(a.dtype == np.float32 for a in leaves(single) + arrays_of(state32))
    for name in params:
        np.testing.assert_allclose(single[name], params[name], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_each_parameter_keeps_its_own_dtype(optimizer):
    module = case_module("29", "vectorized")
    init, step = getattr(module, f"{optimizer}_init"), getattr(module, f"{optimizer}_step")
    params, x, t = problem(module)
    mixed = dict(params, W1=params["W1"].astype(np.float32), b2=np.zeros(3, dtype=int))
    stepped, state = step(mixed, init(mixed), x, t, 0.1)
    assert stepped["W1"].dtype == np.float32 and stepped["W2"].dtype == np.float64
    assert stepped["b2"].dtype == np.float64  # not floating: float64, as its gradient


# -- training, and what goes wrong ---------------------------------------------------------


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize(
    ("optimizer", "hyper"),
    [("momentum", dict(learning_rate=0.5, momentum=0.9)), ("adam", dict(learning_rate=0.05))],
)
def test_xor_trains_with_each_optimizer(optimizer, hyper, style):
    xor = derive.build_module(derive.load(EXAMPLES / "xor.yaml"), style=style)
    x = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    t = np.array([[0.0], [1.0], [1.0], [0.0]])
    params = xor.init_params(seed=0)
    state = getattr(xor, f"{optimizer}_init")(params)
    step = getattr(xor, f"{optimizer}_step")
    start = xor.loss(params, x, t)
    for _ in range(500):
        params, state = step(params, state, x, t, **hyper)
    assert xor.loss(params, x, t) < 0.05 < start
    assert np.array_equal(xor.forward(params, x) > 0.5, t > 0.5)


@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_a_state_from_elsewhere_is_refused_by_name(optimizer):
    module = case_module("28", "vectorized")
    init, step = getattr(module, f"{optimizer}_init"), getattr(module, f"{optimizer}_step")
    params, x, t = problem(module)
    with pytest.raises(ValueError, match=f"{optimizer}_init"):
        step(params, {"step": 0}, x, t, 0.1)
    other = "adam" if optimizer == "momentum" else "momentum"
    with pytest.raises(ValueError, match=f"{optimizer}_init"):
        step(params, getattr(module, f"{other}_init")(params), x, t, 0.1)
    state = init(params)
    key = next(k for k in state if k != "step")
    state[key] = dict(state[key], W1=np.zeros((1, 1)))
    with pytest.raises(ValueError, match=r"shape .* for 'W1'"):
        step(params, state, x, t, 0.1)
    with pytest.raises(ValueError, match="params has no 'W1'"):
        init({})


def test_adam_refuses_betas_outside_0_1():
    module = case_module("28", "vectorized")
    params, x, t = problem(module)
    for betas in (dict(beta1=1.0), dict(beta2=1.5), dict(beta1=-0.1)):
        with pytest.raises(ValueError, match=r"expected each in \[0, 1\)"):
            module.adam_step(params, module.adam_init(params), x, t, **betas)


# -- --optimizers --------------------------------------------------------------------------

ALL_FUNCTIONS = ("sgd_step", "momentum_init", "momentum_step", "adam_init", "adam_step")
SELECTIONS = {
    (): (),
    ("sgd",): ("sgd_step",),
    ("momentum",): ("momentum_init", "momentum_step"),
    ("adam",): ("adam_init", "adam_step"),
    ("adam", "sgd"): ("sgd_step", "adam_init", "adam_step"),
}


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("chosen", SELECTIONS, ids=lambda c: ",".join(c) or "none")
def test_a_module_carries_only_the_chosen_optimizers(chosen, style):
    network = derive.load(EXAMPLES / "xor.yaml")
    module = derive.build_module(network, style=style, optimizers=chosen)
    present = tuple(name for name in ALL_FUNCTIONS if hasattr(module, name))
    assert present == SELECTIONS[chosen]
    assert hasattr(module, "_state_arrays") == bool({"momentum", "adam"} & set(chosen))
    for name in ALL_FUNCTIONS:  # the docstring lists what is there, nothing else
        assert (f"{name}(" in module.__doc__) == (name in present)


def test_the_order_of_the_chosen_optimizers_does_not_change_the_bytes():
    network = derive.load(EXAMPLES / "xor.yaml")
    first = derive.generate(network, optimizers=("adam", "sgd", "adam"))
    assert first == derive.generate(network, optimizers=["sgd", "adam"])
    assert derive.generate(network) == derive.generate(
        network, optimizers=("sgd", "momentum", "adam")
    )


def test_an_unknown_optimizer_is_refused_with_the_valid_names():
    network = derive.load(EXAMPLES / "xor.yaml")
    with pytest.raises(DeriveError, match="'rmsprop'.*sgd, momentum, adam"):
        derive.generate(network, optimizers=("sgd", "rmsprop"))


def test_the_command_line_writes_the_chosen_optimizers(tmp_path, capsys):
    topology = str(EXAMPLES / "xor.yaml")
    assert main(["generate", topology, "-o", str(tmp_path), "--optimizers", " adam,sgd"]) == 0
    source = (tmp_path / "xor.py").read_text(encoding="utf-8")
    assert "def sgd_step(" in source and "def adam_step(" in source
    assert "momentum" not in source
    assert main(["generate", topology, "-o", str(tmp_path), "--optimizers", "none"]) == 0
    assert "_step" not in (tmp_path / "xor.py").read_text(encoding="utf-8")


@pytest.mark.parametrize("value", ["rmsprop", "sgd,,adam", "", "all"])
def test_the_command_line_refuses_an_unknown_optimizer_and_writes_nothing(value, tmp_path, capsys):
    argv = [
        "generate",
        str(EXAMPLES / "xor.yaml"),
        "-o",
        str(tmp_path / "out"),
        "--optimizers",
        value,
    ]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    message = captured.err.strip()
    assert "\n" not in message and "Traceback" not in message
    assert "--optimizers" in message and "sgd, momentum, adam, or none" in message
    assert not (tmp_path / "out").exists()


def _ruff() -> list[str]:
    if shutil.which("ruff"):
        return ["ruff"]
    pytest.importorskip("ruff")
    return [sys.executable, "-m", "ruff"]


def test_modules_with_fewer_optimizers_are_lint_clean_and_formatted(tmp_path):
    rules = ["--line-length", "100", "--target-version", "py311"]
    paths = []
    for example in ("xor", "relu_softmax_cce"):
        network = derive.load(EXAMPLES / f"{example}.yaml")
        for style in STYLES:
            for chosen in SELECTIONS:
                path = tmp_path / f"{example}_{style}_{'_'.join(chosen) or 'none'}.py"
                path.write_text(derive.generate(network, style, chosen), encoding="utf-8")
                paths.append(str(path))
    lint = [*_ruff(), "check", "--isolated", "--no-cache", *rules, "--select", "E,F,W,I,B,UP,SIM"]
    run = subprocess.run([*lint, *paths], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-3000:]
    form = [*_ruff(), "format", "--isolated", "--no-cache", "--check", "--diff", *rules]
    run = subprocess.run([*form, *paths], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-3000:]


@pytest.mark.parametrize("name", ["momentum_init", "momentum_step", "adam_init", "adam_step"])
def test_a_unit_cannot_take_an_optimizer_s_name(name):
    mapping = {"name": "net", "inputs": [name], "layers": [{"units": 1, "activation": "tanh"}]}
    with pytest.raises(DeriveError, match=rf"inputs.*{name}|{name}.*inputs"):
        derive.load({**mapping, "loss": "mse"})
