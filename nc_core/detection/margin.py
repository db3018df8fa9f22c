"""A second detector beside Neural Cleanse: maximum-margin statistics (MM-BD).

Neural Cleanse asks how small a *mask-and-pattern* trigger can be. Backdoors that are not a
small patch (a faint full-image blend, a sinusoid, a warp, a colour filter, a patch that roams)
need no small mask, so that question cannot see them. Wang et al. (MM-BD, IEEE S&P 2024) ask
instead what the model itself gives away: a backdoor is a shortcut the network learnt to fire
hard, whatever the input, so the target class can be driven to an abnormally large logit
*margin* (its logit minus the largest other one) by an input of valid pixels, while a natural
class cannot. That holds for any trigger form, needs no clean data, and costs a few hundred
gradient steps on a handful of inputs per class.

For each class ``k``: start ``starts`` random images in the unit range, ascend
``z_k(x) - max_{j != k} z_j(x)`` (``z``: the logits, recovered from the softmax layer when the
model ends in one) by Adam, clipping to valid pixels, and keep the largest margin reached. All
classes are optimised in one batch.

The statistic is MM-BD's: the null distribution of a class's maximum margin is a gamma fitted
to the other classes', and the largest margin's p-value is its order-statistic tail
``1 - F(r_max) ** (K - 1)``, flagged below ``p_value`` (1e-4; the paper's 0.05 flags a fifth of
the zoo's clean development models, BENCHMARKS.md). As in the paper, only
the largest margin can be flagged (:func:`margin_statistics` says why); the other classes get
their p-values against the classes below them, for display. Its score,
``log(p) / log(p_value)``, is 1 on the line and above 1 when flagged, like the mask rule's.

    >>> found = max_margin_scan(classifier, data.pixel_range)
    >>> found.flagged
    [7]
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from nc_core.errors import InvalidParameterError, RunCancelled

if TYPE_CHECKING:  # Keras and TensorFlow load only when a margin is optimised: reports read results without them
    import keras

    from nc_core.loading.pixels import PixelRange
    from nc_core.optimise.progress import CancelToken

METHOD_NAME = "max-margin"
DEFAULT_P_VALUE = 1e-4
#: p-values are kept above this, so every score stays finite (and comparable in a ROC curve).
MIN_P = 1e-300
#: Images in one optimisation batch: classes are optimised together up to this many images.
MAX_BATCH_IMAGES = 512
#: A probe of the margin (:func:`max_margin_scan` with a sample) runs this share of the steps.
PROBE_STEP_SHARE = 5


@dataclass(frozen=True)
class MarginConfig:
    """How hard to push each class's margin (MM-BD's settings, scaled to a CPU budget).

    ``starts`` random images per class, ``steps`` Adam steps of ``learning_rate`` (unit pixels)."""

    starts: int = 8
    steps: int = 300
    learning_rate: float = 0.05
    seed: int = 0

    def validate(self) -> None:
        if not (1 <= self.starts <= 256 and 1 <= self.steps <= 100_000):
            raise InvalidParameterError("The margin search needs 1-256 starts and 1-100000 steps per class.")
        if not (math.isfinite(self.learning_rate) and 0 < self.learning_rate <= 10):
            raise InvalidParameterError("The margin search's learning rate must be in (0, 10].")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class MarginResult:
    """What the max-margin detector found: per class, the largest margin, its p-value and score.

    ``images`` holds, per class, the unit-range input that reached the largest margin (what the
    model answers to most strongly), for display."""

    margins: list[float]
    p_values: list[float]
    scores: list[float]
    flagged: list[int]
    p_value: float = DEFAULT_P_VALUE
    steps: int = 0
    seconds: float = 0.0
    logits: str = "dense"
    config: dict = field(default_factory=dict)
    images: list[np.ndarray] = field(default_factory=list, repr=False)
    #: The random classes the null was fitted to, where only some were measured in full (None: all).
    sample: list[int] | None = None

    @property
    def score(self) -> float:
        finite = [s for s in self.scores if math.isfinite(s)]
        return max(finite) if finite else 0.0

    def to_dict(self, include_arrays: bool = True) -> dict:
        payload = {k: v for k, v in asdict(self).items() if k != "images"}
        if include_arrays:
            payload["images"] = [np.round(np.asarray(im, np.float32), 3).tolist() for im in self.images]
        return payload

    @classmethod
    def from_dict(cls, payload: dict) -> MarginResult:
        data = {k: v for k, v in payload.items() if k in cls.__dataclass_fields__}
        data["images"] = [np.asarray(im, np.float32) for im in payload.get("images", [])]
        return cls(**data)


def logits_function(classifier: keras.Model) -> tuple[Callable, str]:
    """A function from model inputs to logits, and how they were found.

    A model that ends in a softmax (a ``Softmax`` or softmax ``Activation`` layer, or a ``Dense``
    with a softmax activation) gives its pre-softmax values exactly; otherwise the log of the
    probabilities stands in (equal up to a constant per image, so margins agree until the
    softmax saturates in float32, near a margin of 80).
    """
    import keras

    last = classifier.layers[-1]
    activation = getattr(getattr(last, "activation", None), "__name__", "")
    try:
        if isinstance(last, keras.layers.Softmax) or (
            isinstance(last, keras.layers.Activation) and activation == "softmax"
        ):
            body = keras.Model(classifier.inputs, last.input)
            return (lambda x: body(x, training=False)), "softmax-input"
        if isinstance(last, keras.layers.Dense) and activation == "softmax":
            body = keras.Model(classifier.inputs, last.input)

            def dense_logits(x):
                z = keras.ops.matmul(body(x, training=False), last.kernel)
                return z + last.bias if last.use_bias else z

            return dense_logits, "dense"
    except (ValueError, AttributeError, TypeError):
        pass
    return (lambda x: keras.ops.log(keras.ops.maximum(classifier(x, training=False), 1e-30))), "log-probabilities"


def max_margins(
    classifier: keras.Model,
    pixel_range: PixelRange,
    config: MarginConfig = MarginConfig(),
    classes: list[int] | None = None,
    cancel: CancelToken | None = None,
    on_progress: Callable[[float], None] | None = None,
) -> tuple[np.ndarray, list[np.ndarray], str, int]:
    """Each class's largest margin over valid inputs, the input reaching it, the logits' source
    and the steps taken (one step moves every class of a batch)."""
    config.validate()
    shape = tuple(int(d) for d in classifier.inputs[0].shape[1:])
    num_classes = int(classifier.outputs[0].shape[-1])
    chosen = list(range(num_classes)) if classes is None else list(classes)
    logits, source = logits_function(classifier)
    scale, offset = np.float32(pixel_range.scale), np.float32(pixel_range.offset)
    per_batch = max(1, _batch_images(classifier) // config.starts)
    best = np.full(num_classes, -np.inf, np.float64)
    images: dict[int, np.ndarray] = {}
    steps = 0
    rng = np.random.default_rng(config.seed)
    for first in range(0, len(chosen), per_batch):
        group = chosen[first : first + per_batch]
        labels = np.repeat(np.asarray(group, np.int32), config.starts)
        start = rng.uniform(0, 1, (len(labels), *shape)).astype(np.float32)
        margins, found = _ascend(logits, start, labels, num_classes, scale, offset, config, cancel)
        steps += config.steps
        for k, c in enumerate(group):
            rows = slice(k * config.starts, (k + 1) * config.starts)
            top = int(np.argmax(margins[rows]))
            best[c] = float(margins[rows][top])
            images[c] = found[rows][top]
        if on_progress is not None:
            on_progress(min(1.0, (first + len(group)) / len(chosen)))
    return best, [images.get(c, np.zeros(shape, np.float32)) for c in range(num_classes)], source, steps


def _batch_images(classifier: keras.Model) -> int:
    """Images one margin batch may hold: ``MAX_BATCH_IMAGES``, fewer where the model's layer
    outputs would not fit :data:`~nc_core.loading.models.footprint.GRADIENT_BUDGET_BYTES` (a 96x96
    MobileNetV2 takes 32, four classes of 8 starts)."""
    from nc_core.loading.models.footprint import GRADIENT_BUDGET_BYTES, GRADIENT_FACTOR, images_within

    return images_within(classifier, GRADIENT_BUDGET_BYTES, most=MAX_BATCH_IMAGES, factor=GRADIENT_FACTOR)


def _ascend(logits, start, labels, num_classes, scale, offset, config, cancel):
    """Adam ascent of each image's margin for its own label; the best margin and image seen.

    One compiled call runs ``STEPS_PER_CALL`` steps on any Keras backend, keeping each image's
    best margin and the image that reached it inside the compiled loop."""
    from keras import ops

    from nc_core import backend
    from nc_core.optimise.adam import adam_update
    from nc_core.optimise.steps import STEPS_PER_CALL

    onehot = ops.one_hot(ops.convert_to_tensor(labels), num_classes)
    scale, offset = ops.convert_to_tensor(scale), ops.convert_to_tensor(offset)

    def margin_of(images):
        z = ops.cast(logits(images * scale + offset), "float32")
        return ops.sum(z * onehot, axis=1) - ops.max(z - 1e9 * onehot, axis=1)

    def negative_margin(params):
        margin = margin_of(params[0])
        return -ops.sum(margin), margin

    grad = backend.value_and_grad(negative_margin)

    def step(state, _row):
        x, m, v, t, best, best_x = state
        (_, margin), (g,) = grad([x])
        better = margin > best
        best_x = ops.where(ops.reshape(better, (-1, *([1] * (len(x.shape) - 1)))), x, best_x)
        best = ops.where(better, margin, best)
        x, m, v = adam_update(x, g, m, v, t + 1.0, config.learning_rate)
        return (ops.clip(x, 0.0, 1.0), m, v, t + 1.0, best, best_x), ops.zeros(())

    run_chunk = backend.compile_function(lambda state, rows: backend.scan_steps(step, state, rows))
    x = ops.convert_to_tensor(start)
    zeros = ops.zeros_like(x)
    state = (x, zeros, zeros, ops.convert_to_tensor(0.0), ops.full((len(labels),), -np.inf), x)
    for first in range(0, config.steps, STEPS_PER_CALL):
        rows = ops.zeros((min(STEPS_PER_CALL, config.steps - first),), "int32")
        state, _ = run_chunk(state, rows)
        if cancel is not None and cancel.cancelled:
            raise RunCancelled()
    x, best, best_x = state[0], backend.to_numpy(state[4]), backend.to_numpy(state[5])
    final = backend.to_numpy(margin_of(x))
    better = final > best
    best_x[better] = backend.to_numpy(x)[better]
    return np.where(better, final, best), best_x


def margin_statistics(
    margins: list[float] | np.ndarray, p_value: float = DEFAULT_P_VALUE, sample: Sequence[int] | None = None
) -> tuple[list[float], list[int]]:
    """MM-BD's test: each class's p-value, and the class flagged (at most one).

    Classes are taken from the largest margin down; each is tested against a gamma fitted to the
    classes below it, ``p = 1 - F(r) ** n`` with ``n`` of them. Only the largest margin can be
    flagged, as in the paper, which infers one target: a null fitted to the classes *below* a
    candidate is narrower than the truth, which the order statistic corrects for the largest but
    not for the next ones (a step-down over them flagged two natural classes beside the real
    target of the development half's ``mnist-patch6-mid``; BENCHMARKS.md). Several targets are left to
    Neural Cleanse, whose mask rule
    flags each on its own. Fewer than three classes cannot be tested (p-values 1).

    With a ``sample`` (a scan of very many classes; :func:`max_margin_scan`), only the sample's
    classes form the null, classes with a NaN margin were not measured (p-value NaN), and ``n``
    counts the classes below in the whole model that the sample's share stands for.

    >>> p, flagged = margin_statistics([9.0, 10.0, 11.0, 10.5, 9.5, 10.2, 60.0, 9.8, 10.1, 10.4])
    >>> flagged
    [6]
    """
    values = np.maximum(np.asarray(margins, np.float64), 1e-6)
    if sample is not None:
        return _sampled_statistics(values, [int(c) for c in sample], p_value)
    p_values = [1.0] * values.size
    if values.size < 3 or not np.all(np.isfinite(values)):
        return p_values, []
    order = [int(k) for k in np.argsort(-values)]
    for rank, k in enumerate(order[:-2]):
        p_values[k] = _order_p(values[k], values[order[rank + 1 :]], len(order) - rank - 1)
    top = order[0]
    return p_values, [top] if p_values[top] < p_value else []


def _sampled_statistics(values: np.ndarray, sample: list[int], p_value: float) -> tuple[list[float], list[int]]:
    """:func:`margin_statistics` with the null fitted to ``sample`` and NaN for classes not measured."""
    measured = [int(k) for k in np.flatnonzero(np.isfinite(values))]
    p_values = [1.0 if k in measured else float("nan") for k in range(values.size)]
    pool = [c for c in sample if c in measured]
    if values.size < 3 or len(pool) < 3:
        return p_values, []
    order = sorted(measured, key=lambda k: -values[k])
    for rank, k in enumerate(order):
        below = [c for c in order[rank + 1 :] if c in pool]
        if len(below) >= 2:
            stands_for = (values.size - 1) / (len(pool) - (k in pool))
            p_values[k] = _order_p(values[k], values[below], len(below) * stands_for)
    top = order[0]
    return p_values, [top] if p_values[top] < p_value else []


def _order_p(value: float, below: np.ndarray, n: float) -> float:
    """The p-value of ``value`` as the largest of ``n`` draws from a gamma fitted to ``below``."""
    shape, scale = fit_gamma(below)
    tail = gamma_sf(value, shape, scale)
    return max(float(-math.expm1(n * math.log1p(-min(tail, 1.0 - 1e-16)))), MIN_P)


def max_margin_scan(
    classifier: keras.Model,
    pixel_range: PixelRange,
    config: MarginConfig = MarginConfig(),
    p_value: float = DEFAULT_P_VALUE,
    cancel: CancelToken | None = None,
    on_progress: Callable[[float], None] | None = None,
    sample: Sequence[int] | None = None,
    candidates: int = 0,
) -> MarginResult:
    """Run the max-margin detector on every class of ``classifier`` (no data needed).

    A ``sample`` of classes makes the cost grow slower than the number of classes (a scan of very
    many, :mod:`nc_core.detection.probe`): every class is probed with one start and
    ``1 / PROBE_STEP_SHARE`` of the steps, and only the sample and the ``candidates`` classes with
    the largest probe margins get the full search. The null is fitted to the random sample; the
    others' margins are NaN. A backdoor's target is the class driven hardest, so it leads the
    probe as it leads the full search.
    """
    if not 0 < p_value < 1:
        raise InvalidParameterError(f"The max-margin p-value must be between 0 and 1, not {p_value}.")
    started = time.perf_counter()
    if sample is None:
        margins, images, source, steps = max_margins(
            classifier, pixel_range, config, cancel=cancel, on_progress=on_progress
        )
    else:
        margins, images, source, steps = _probed_margins(
            classifier, pixel_range, config, sample, candidates, cancel, on_progress
        )
    p_values, flagged = margin_statistics(margins, p_value, sample)
    scores = [margin_score(p, p_value) if math.isfinite(p) else float("nan") for p in p_values]
    return MarginResult(
        [float(m) for m in margins],
        p_values,
        scores,
        flagged,
        p_value,
        steps,
        time.perf_counter() - started,
        source,
        config.to_dict(),
        images,
        sorted(int(c) for c in sample) if sample is not None else None,
    )


def _probed_margins(classifier, pixel_range, config, sample, candidates, cancel, on_progress):
    """Every class's probe margin, then the full search on the sample and the leaders of the probe."""
    num_classes = int(classifier.outputs[0].shape[-1])
    quick = replace(config, starts=1, steps=max(1, config.steps // PROBE_STEP_SHARE))
    chosen_count = min(num_classes, len(set(sample)) + candidates)
    probe_share = num_classes * quick.steps / (num_classes * quick.steps + chosen_count * config.starts * config.steps)

    def report(share: float, offset: float) -> Callable[[float], None] | None:
        return None if on_progress is None else (lambda done: on_progress(offset + share * done))

    probe, _, _, probe_steps = max_margins(classifier, pixel_range, quick, None, cancel, report(probe_share, 0.0))
    sampled = {int(c) for c in sample}
    leaders = [int(k) for k in np.argsort(-probe, kind="stable") if int(k) not in sampled][:candidates]
    chosen = sorted(sampled | set(leaders))
    best, images, source, steps = max_margins(
        classifier, pixel_range, config, chosen, cancel, report(1.0 - probe_share, probe_share)
    )
    margins = np.full(num_classes, np.nan)
    margins[chosen] = best[chosen]
    return margins, images, source, probe_steps + steps


def margin_score(p: float, p_value: float = DEFAULT_P_VALUE) -> float:
    """``log(p) / log(p_value)``: 1 on the line, above 1 when flagged (``inf`` at p = 0)."""
    if p <= 0:
        return math.inf
    return math.log(min(p, 1.0)) / math.log(p_value)


# ----------------------------------------------------------------------------------------------
# The gamma distribution, in NumPy (the project does not depend on SciPy).
# ----------------------------------------------------------------------------------------------


def fit_gamma(values: np.ndarray) -> tuple[float, float]:
    """Maximum-likelihood gamma ``(shape, scale)`` of positive values (Minka's fixed point).

    >>> shape, scale = fit_gamma(np.random.default_rng(0).gamma(4.0, 2.0, 5000))
    >>> round(shape, 1), round(scale, 1)
    (4.0, 2.0)
    """
    x = np.asarray(values, np.float64)
    mean = float(np.mean(x))
    s = math.log(mean) - float(np.mean(np.log(x)))
    if s <= 1e-12:  # all equal: a very sharp gamma around them
        return 1e6, mean / 1e6
    a = (3 - s + math.sqrt((s - 3) ** 2 + 24 * s)) / (12 * s)
    for _ in range(50):
        new = 1 / (1 / a + (math.log(a) - _digamma(a) - s) / (a * a * (1 / a - _trigamma(a))))
        if abs(new - a) < 1e-10 * a:
            a = new
            break
        a = new
    return a, mean / a


def gamma_sf(x: float, shape: float, scale: float) -> float:
    """The upper tail ``1 - P(shape, x / scale)``, accurate far out in the tail.

    >>> math.isclose(gamma_sf(40.0, 1.0, 1.0), math.exp(-40.0), rel_tol=1e-9)
    True
    """
    z = x / scale
    if z <= 0:
        return 1.0
    if z < shape + 1:
        return 1.0 - gamma_cdf(x, shape, scale)
    return _upper_fraction(z, shape)


def gamma_cdf(x: float, shape: float, scale: float) -> float:
    """The regularised lower incomplete gamma ``P(shape, x / scale)`` (series or continued fraction).

    >>> round(gamma_cdf(2.0, 1.0, 1.0), 6) == round(1 - math.exp(-2.0), 6)
    True
    """
    z = x / scale
    if z <= 0:
        return 0.0
    log_front = shape * math.log(z) - z - math.lgamma(shape)
    if z < shape + 1:
        term = total = 1.0 / shape
        a = shape
        for _ in range(10_000):
            a += 1
            term *= z / a
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return min(1.0, total * math.exp(log_front))
    return max(0.0, 1.0 - _upper_fraction(z, shape))


def _upper_fraction(z: float, shape: float) -> float:
    """``Q(shape, z)`` by Lentz's continued fraction (for ``z >= shape + 1``)."""
    log_front = shape * math.log(z) - z - math.lgamma(shape)
    b, c, d = z + 1 - shape, 1e300, 1 / (z + 1 - shape)
    h = d
    for i in range(1, 10_000):
        an = -i * (i - shape)
        b += 2
        d = an * d + b
        d = 1e-300 if abs(d) < 1e-300 else d
        c = b + an / c
        c = 1e-300 if abs(c) < 1e-300 else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-15:
            break
    return min(1.0, math.exp(log_front) * h)


def _digamma(a: float) -> float:
    result = 0.0
    while a < 6:
        result -= 1 / a
        a += 1
    f = 1 / (a * a)
    return result + math.log(a) - 0.5 / a - f * (1 / 12 - f * (1 / 120 - f * (1 / 252 - f * (1 / 240 - f / 132))))


def _trigamma(a: float) -> float:
    result = 0.0
    while a < 6:
        result += 1 / (a * a)
        a += 1
    f = 1 / (a * a)
    return result + 1 / a + f / 2 + f / a * (1 / 6 - f * (1 / 30 - f * (1 / 42 - f / 30)))
