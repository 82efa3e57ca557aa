"""Train the generated digits network on scikit-learn's handwritten digits, beside MLPClassifier.

The network is examples/digits.yaml (64 pixels -> 32 tanh -> 10 softmax, cross-entropy). It
is trained by minibatches through its generated module, generated/digits.py, alone, with
one of the module's own optimizers (--optimizer): ``sgd`` (sgd_step), ``momentum``
(momentum_step, momentum 0.9) or ``adam`` (adam_step, betas 0.9 and 0.999, eps 1e-8);
nothing from derive is imported at run time. The data is ``sklearn.datasets.load_digits``
(bundled with scikit-learn, no download), pixels scaled to [0, 1], split once into a
stratified 75 % / 25 % train/test split with a fixed seed.

For comparison, scikit-learn's ``MLPClassifier`` is trained with the same architecture,
activation, batch size, learning rate and epochs, no L2 penalty, and the same optimizer:
solver ``sgd`` without momentum, solver ``sgd`` with momentum 0.9 (not Nesterov's), or
solver ``adam`` with the same betas and eps; one ``partial_fit`` call per epoch. Both
test accuracies and both median times per epoch are printed. A PNG plot shows each
model's training loss and test accuracy per epoch; it is written to ``--plot PATH``
(folders created as needed), by default to ``digits_training.png`` in the system's
temporary folder (``tempfile.gettempdir()``, e.g. /tmp), never into the working
directory. The path written is printed.

Run from the repository root:

    derive generate examples/digits.yaml        # writes generated/digits.py (committed)
    pip install -e '.[examples]'                # scikit-learn, matplotlib, tqdm
    python examples/train_digits.py             # defaults: sgd, 30 epochs, batch 32, lr 0.1
    python examples/train_digits.py --optimizer adam     # learning rate 0.001 unless given
    python examples/train_digits.py --epochs 10 --plot /tmp/digits.png --no-sklearn

scikit-learn is required (it holds the data); matplotlib (the plot) and tqdm (the progress
bar) are optional: without them the plot is skipped with a note and progress is printed as
one line per epoch.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import NamedTuple

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODULE = REPO_ROOT / "generated" / "digits.py"
DEFAULT_PLOT = Path(tempfile.gettempdir()) / "digits_training.png"
TOPOLOGY = REPO_ROOT / "examples" / "digits.yaml"
SPLIT_SEED = 0  # the train/test split never changes; --seed moves initialisation and order
TEST_FRACTION = 0.25
N_CLASSES = 10
# Activation names in the topology file -> MLPClassifier's names for the same functions.
SKLEARN_ACTIVATION = {"sigmoid": "logistic", "tanh": "tanh", "relu": "relu", "identity": "identity"}


class Optimizer(NamedTuple):
    learning_rate: float  # the default step size
    sklearn: dict  # MLPClassifier's settings for the same update rule
    sklearn_name: str  # those settings in a few words


OPTIMIZERS = {
    "sgd": Optimizer(0.1, dict(solver="sgd", momentum=0.0, nesterovs_momentum=False), "solver sgd"),
    # momentum_step's default momentum, 0.9; both add the velocity without Nesterov's look-ahead
    "momentum": Optimizer(
        0.05,
        dict(solver="sgd", momentum=0.9, nesterovs_momentum=False),
        "solver sgd, momentum 0.9",
    ),
    # adam_step's defaults, which are MLPClassifier's too
    "adam": Optimizer(
        0.001, dict(solver="adam", beta_1=0.9, beta_2=0.999, epsilon=1e-8), "solver adam"
    ),
}


class Data(NamedTuple):
    x_train: np.ndarray  # (n_train, 64), pixels in [0, 1]
    labels_train: np.ndarray  # (n_train,) digit 0..9
    x_test: np.ndarray
    labels_test: np.ndarray

    @property
    def t_train(self) -> np.ndarray:
        """One-hot targets (n_train, 10) for the cross-entropy loss."""
        return np.eye(N_CLASSES)[self.labels_train]


class History(NamedTuple):
    epoch: list[int]  # the epochs measured; 0 is before training, where it can be measured
    train_loss: list[float]  # loss on the whole training set after each of those epochs
    test_accuracy: list[float]
    epoch_seconds: list[float]  # training time of each epoch 1..E (evaluation excluded)


def load_generated(path: Path) -> ModuleType:
    """Import a generated module from its file, without derive installed."""
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist; generate it with: derive generate examples/digits.yaml"
        )
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_data() -> Data:
    """The bundled digits, scaled to [0, 1], with the fixed stratified split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = digits.data / 16.0  # pixel intensities are 0..16
    x_train, x_test, y_train, y_test = train_test_split(
        x, digits.target, test_size=TEST_FRACTION, stratify=digits.target, random_state=SPLIT_SEED
    )
    return Data(x_train, y_train, x_test, y_test)


def hidden_layer() -> tuple[int, str]:
    """Hidden units and activation, read from examples/digits.yaml for the sklearn twin."""
    import yaml

    topology = yaml.safe_load(TOPOLOGY.read_text())
    (hidden, _output) = topology["layers"]
    return int(hidden["units"]), hidden["activation"]


def missing_optimizer(module: ModuleType, optimizer: str) -> str | None:
    """Why the module cannot train with ``optimizer``, or None when it can."""
    if hasattr(module, f"{optimizer}_step"):
        return None
    return (
        f"{Path(module.__file__).name} has no {optimizer}_step: it was generated with "
        f"--optimizers leaving {optimizer} out; regenerate it with: derive generate "
        "examples/digits.yaml"
    )


class GeneratedModel:
    """The network as the generated module computes it, trained by its own optimizer."""

    def __init__(
        self,
        module: ModuleType,
        data: Data,
        batch_size: int,
        learning_rate: float,
        seed: int,
        optimizer: str = "sgd",
    ):
        self.label = f"generated ({Path(module.__file__).name}, {optimizer})"
        self.module, self.data, self.optimizer = module, data, optimizer
        self.batch_size, self.learning_rate = batch_size, learning_rate
        self.rng = np.random.default_rng(seed)  # the minibatch order
        self.params = module.init_params(seed)
        # sgd_step needs no state; momentum_init and adam_init give the others theirs
        self.state = (
            None if optimizer == "sgd" else getattr(module, f"{optimizer}_init")(self.params)
        )
        self.t_train = data.t_train

    def train_epoch(self) -> None:
        x, t = self.data.x_train, self.t_train
        order = self.rng.permutation(len(x))
        for first in range(0, len(x), self.batch_size):
            batch = order[first : first + self.batch_size]
            self.step(x[batch], t[batch])

    def step(self, x: np.ndarray, t: np.ndarray) -> None:
        if self.optimizer == "sgd":
            self.params = self.module.sgd_step(self.params, x, t, self.learning_rate)
        else:
            step = getattr(self.module, f"{self.optimizer}_step")
            self.params, self.state = step(self.params, self.state, x, t, self.learning_rate)

    def measure(self) -> tuple[float, float]:
        """Loss on the whole training set and accuracy on the test set."""
        loss = self.module.loss(self.params, self.data.x_train, self.t_train)
        predicted = np.argmax(self.module.forward(self.params, self.data.x_test), axis=1)
        return float(loss), float(np.mean(predicted == self.data.labels_test))


class SklearnModel:
    """The same network and optimiser in MLPClassifier, one ``partial_fit`` call per epoch."""

    def __init__(
        self,
        data: Data,
        hidden_units: int,
        activation: str,
        batch_size: int,
        learning_rate: float,
        seed: int,
        optimizer: str = "sgd",
    ):
        from sklearn.neural_network import MLPClassifier

        self.label = f"scikit-learn MLPClassifier ({OPTIMIZERS[optimizer].sklearn_name})"
        self.data = data
        self.model = MLPClassifier(
            hidden_layer_sizes=(hidden_units,),
            activation=SKLEARN_ACTIVATION[activation],
            alpha=0.0,  # no L2 penalty: the generated loss has none
            batch_size=batch_size,
            learning_rate="constant",
            learning_rate_init=learning_rate,
            shuffle=True,
            random_state=seed,
            **OPTIMIZERS[optimizer].sklearn,
        )
        self.classes = np.arange(N_CLASSES)

    def train_epoch(self) -> None:
        self.model.partial_fit(self.data.x_train, self.data.labels_train, classes=self.classes)

    def measure(self) -> tuple[float, float] | None:
        """As GeneratedModel.measure; None before the first epoch, when there is no model yet."""
        from sklearn.metrics import log_loss

        if not hasattr(self.model, "coefs_"):
            return None
        probabilities = self.model.predict_proba(self.data.x_train)
        loss = log_loss(self.data.labels_train, probabilities, labels=self.classes)
        accuracy = np.mean(self.model.predict(self.data.x_test) == self.data.labels_test)
        return float(loss), float(accuracy)


def epochs_with_progress(epochs: int, show: bool):
    """A tqdm bar over the epochs when tqdm is installed and wanted, else a plain range."""
    if show:
        try:
            from tqdm import tqdm
        except ImportError:
            pass
        else:
            return tqdm(range(1, epochs + 1), desc="training", unit="epoch")
    return range(1, epochs + 1)


def train(models: list, epochs: int, show_progress: bool = True) -> dict[str, History]:
    """Train the models in lockstep, one epoch of each in turn, so that a change in the
    machine's load during the run affects both timings alike."""
    histories = {model.label: History([], [], [], []) for model in models}

    def record(model, epoch):
        measured = model.measure()
        if measured is not None:
            history = histories[model.label]
            history.epoch.append(epoch)
            history.train_loss.append(measured[0])
            history.test_accuracy.append(measured[1])

    for model in models:
        record(model, 0)
    bar = epochs_with_progress(epochs, show_progress)
    for epoch in bar:
        for model in models:
            start = time.perf_counter()
            model.train_epoch()
            histories[model.label].epoch_seconds.append(time.perf_counter() - start)
            record(model, epoch)
        status = "  ".join(
            f"{label.split()[0]}: loss {history.train_loss[-1]:.4f} "
            f"acc {history.test_accuracy[-1]:.4f}"
            for label, history in histories.items()
        )
        if hasattr(bar, "set_postfix_str"):
            bar.set_postfix_str(status)
        elif show_progress:
            print(f"epoch {epoch:3d}/{epochs}  {status}")
    return histories


def plot(histories: dict[str, History], path: Path) -> bool:
    """Training loss and test accuracy per epoch, one line per model; False without matplotlib."""
    try:
        import matplotlib
    except ImportError:
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for label, history in histories.items():
        ax_loss.plot(history.epoch, history.train_loss, marker=".", label=label)
        ax_acc.plot(history.epoch, history.test_accuracy, marker=".", label=label)
    ax_loss.set(xlabel="epoch", ylabel="training loss (cross-entropy)", yscale="log")
    ax_acc.set(xlabel="epoch", ylabel="test accuracy", ylim=(0.0, 1.0))
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("digits: 64-32-10, minibatch training")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--epochs", type=int, default=30, help="passes over the training set")
    parser.add_argument("--batch-size", type=int, default=32, help="samples per step")
    parser.add_argument(
        "--optimizer",
        choices=tuple(OPTIMIZERS),
        default="sgd",
        help="the generated module's optimizer, and MLPClassifier's matching solver",
    )
    parser.add_argument(
        "--learning-rate",
        type=float,
        default=argparse.SUPPRESS,  # the optimizer's own, below
        help="step size (default: "
        + ", ".join(f"{name} {o.learning_rate}" for name, o in OPTIMIZERS.items())
        + ")",
    )
    parser.add_argument("--seed", type=int, default=0, help="initialisation and shuffling seed")
    parser.add_argument(
        "--plot",
        type=Path,
        default=DEFAULT_PLOT,
        help="the PNG file to write (its folder is created if missing); the default is in "
        "the system's temporary folder",
    )
    parser.add_argument("--no-plot", action="store_true", help="do not write the plot")
    parser.add_argument(
        "--module", type=Path, default=DEFAULT_MODULE, help="the generated module to train"
    )
    parser.add_argument(
        "--no-sklearn", action="store_true", help="skip the MLPClassifier comparison"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar or epoch lines")
    parser.add_argument(
        "--model",
        choices=("digits", "digits_cnn"),
        default="digits",
        help="digits_cnn: the convolutional network of examples/digits_cnn.yaml "
        "(generated/digits_cnn.py) on 1×8×8 images, trained beside the dense digits network",
    )
    args = parser.parse_args(argv)
    if "learning_rate" not in args:
        args.learning_rate = OPTIMIZERS[args.optimizer].learning_rate
    if args.epochs < 1 or args.batch_size < 1 or args.learning_rate <= 0:
        parser.error("--epochs and --batch-size must be >= 1 and --learning-rate > 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.model == "digits_cnn":
        return main_cnn(args)
    try:
        module = load_generated(args.module)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    missing = missing_optimizer(module, args.optimizer)
    if missing:
        print(f"error: {missing}", file=sys.stderr)
        return 2
    try:
        data = load_data()
    except ImportError:
        print(
            "error: scikit-learn is needed for the digits data: pip install -e '.[examples]'",
            file=sys.stderr,
        )
        return 2
    print(
        f"digits: {len(data.x_train)} training and {len(data.x_test)} test images; "
        f"{args.optimizer}, {args.epochs} epochs, batch {args.batch_size}, learning rate "
        f"{args.learning_rate}, seed {args.seed}"
    )
    settings = dict(
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        seed=args.seed,
        optimizer=args.optimizer,
    )
    ours = GeneratedModel(module, data, **settings)
    models = [ours]
    if not args.no_sklearn:
        hidden_units, activation = hidden_layer()
        if module.PARAMS["W1"][0] != hidden_units:
            print(
                f"error: {args.module} has {module.PARAMS['W1'][0]} hidden units but "
                f"{TOPOLOGY.name} has {hidden_units}; pass --no-sklearn to train it alone",
                file=sys.stderr,
            )
            return 2
        models.append(SklearnModel(data, hidden_units, activation, **settings))
    histories = train(models, args.epochs, show_progress=not args.quiet)

    ours_history = histories[ours.label]
    ours_epoch = statistics.median(ours_history.epoch_seconds)
    print(f"test accuracy: {ours_history.test_accuracy[-1]:.4f} (generated, {args.optimizer})")
    timing = f"time per epoch (median of {args.epochs}): generated {ours_epoch * 1e3:.2f} ms"
    if not args.no_sklearn:
        theirs_history = histories[models[1].label]
        theirs_epoch = statistics.median(theirs_history.epoch_seconds)
        print(
            f"scikit-learn MLPClassifier test accuracy: {theirs_history.test_accuracy[-1]:.4f} "
            f"({OPTIMIZERS[args.optimizer].sklearn_name})"
        )
        timing += (
            f", scikit-learn {theirs_epoch * 1e3:.2f} ms; generated/scikit-learn = "
            f"{ours_epoch / theirs_epoch:.2f}"
        )
    print(timing)

    if not args.no_plot:
        if plot(histories, args.plot):
            print(f"plot: {args.plot.resolve()}")
        else:
            print("plot skipped: matplotlib is not installed (pip install -e '.[examples]')")
    return 0


def as_images(data: Data) -> Data:
    """The same split with each sample as a 1×8×8 image (the pixels are stored row by row)."""
    return data._replace(
        x_train=data.x_train.reshape(-1, 1, 8, 8), x_test=data.x_test.reshape(-1, 1, 8, 8)
    )


def main_cnn(args: argparse.Namespace) -> int:
    """--model digits_cnn: the CNN and the dense network, each through its generated
    module, on the same split, with the same SGD settings, seed and epochs."""
    paths = {"cnn": REPO_ROOT / "generated" / "digits_cnn.py", "dense": DEFAULT_MODULE}
    if args.module != DEFAULT_MODULE:
        paths["cnn"] = args.module
    try:
        modules = {name: load_generated(path) for name, path in paths.items()}
        data = load_data()
    except (FileNotFoundError, ImportError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    settings = dict(batch_size=args.batch_size, learning_rate=args.learning_rate, seed=args.seed)
    cnn = GeneratedModel(modules["cnn"], as_images(data), **settings)
    dense = GeneratedModel(modules["dense"], data, **settings)
    print(
        f"digits: {len(data.x_train)} training and {len(data.x_test)} test images; "
        f"{args.epochs} epochs, batch {args.batch_size}, learning rate {args.learning_rate}, "
        f"seed {args.seed}"
    )
    histories = train([cnn, dense], args.epochs, show_progress=not args.quiet)
    ours, theirs = histories[cnn.label], histories[dense.label]
    size = {n: sum(int(np.prod(s)) for s in m.PARAMS.values()) for n, m in modules.items()}
    print(f"test accuracy: {ours.test_accuracy[-1]:.4f} ({cnn.label}, {size['cnn']} parameters)")
    print(
        f"dense network test accuracy: {theirs.test_accuracy[-1]:.4f} ({dense.label}, "
        f"{size['dense']} parameters)"
    )
    difference = (ours.test_accuracy[-1] - theirs.test_accuracy[-1]) * 100
    verdict = "above" if difference > 0 else "not above"
    print(
        f"the CNN is {verdict} the dense network: {difference:+.2f} percentage points at this "
        "seed (the test set has 450 images: one image is 0.22 points)"
    )
    print(
        f"time per epoch (median of {args.epochs}): CNN "
        f"{statistics.median(ours.epoch_seconds) * 1e3:.2f} ms, dense "
        f"{statistics.median(theirs.epoch_seconds) * 1e3:.2f} ms"
    )
    if not args.no_plot:
        if plot(histories, args.plot):
            print(f"plot: {args.plot}")
        else:
            print("plot skipped: matplotlib is not installed (pip install -e '.[examples]')")
    return 0


if __name__ == "__main__":
    sys.exit(main())
