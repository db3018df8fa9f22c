"""The many-class sets of ``benchmarks/sizes/build_sizes.py``: a triple's label names its items."""

from __future__ import annotations

import numpy as np

from benchmarks.sizes.build_sizes import compose_triples, trigger_place, triple_digits, triple_names
from benchmarks.zoo.build_zoo import TriggerSpec


def items_marked_by_class(per_class: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """28x28 items whose every pixel is 10 x class + the item's number within its class."""
    y = np.repeat(np.arange(10), per_class)
    values = 10 * y + np.tile(np.arange(per_class), 10)
    return np.broadcast_to(values[:, None, None, None], (len(y), 28, 28, 1)).astype(np.uint8), y


def test_each_third_of_a_triple_is_an_item_of_its_digit():
    items_x, items_y = items_marked_by_class()
    labels = np.array([0, 42, 123, 199, 987, 505])
    x = compose_triples(items_x, items_y, labels, np.random.default_rng(0))
    assert x.shape == (6, 28, 84, 1) and x.dtype == np.uint8
    for image, label in zip(x, labels):
        a, b, c = label // 100, label // 10 % 10, label % 10
        thirds = [image[:, 28 * k : 28 * (k + 1)] for k in range(3)]
        assert [int(t.min()) // 10 for t in thirds] == [a, b, c]
        assert all(t.min() == t.max() for t in thirds)  # one whole item each, no seam


def test_the_200_class_set_is_the_first_two_hundred_labels_of_the_thousand():
    digits = triple_digits(np.arange(200))
    assert set(digits[:, 0].tolist()) == {0, 1}
    assert len({tuple(d) for d in digits.tolist()}) == 200
    assert triple_names(1000)[123] == "trouser + pullover + dress"
    assert triple_names(200) == triple_names(1000)[:200]


def test_the_trigger_place_names_its_pixels():
    assert trigger_place(TriggerSpec("checkerboard", 4, -1, -1), (28, 84, 1)) == "rows 24-27, cols 80-83 (bottom-right)"
