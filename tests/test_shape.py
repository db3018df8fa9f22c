"""Mask compactness: a stamped patch is one small blob, a natural feature is scattered."""
import math

import numpy as np
import pytest

from nc_core.shape import compactness


def test_a_solid_patch_anywhere_is_fully_compact():
    for row, col, size in [(0, 0, 2), (24, 24, 4), (10, 13, 6)]:
        mask = np.zeros((28, 28))
        mask[row:row + size, col:col + size] = 1.0
        assert compactness(mask) == 1.0


def test_a_checkerboard_patch_is_compact_too():
    mask = np.zeros((28, 28))
    mask[1:5, 1:5] = (np.add.outer(np.arange(4), np.arange(4)) % 2 == 0)
    assert compactness(mask) == 1.0


def test_scattered_pixels_of_the_same_size_are_not():
    mask = np.zeros(28 * 28)
    mask[np.random.default_rng(0).choice(mask.size, 16, replace=False)] = 1.0
    assert compactness(mask.reshape(28, 28)) < 0.45


def test_a_trigger_in_two_patches_is_compact_but_three_are_not():
    mask = np.zeros((32, 32))
    mask[1:4, 1:4] = 1.0
    mask[28:31, 28:31] = 1.0
    assert compactness(mask) == 1.0
    assert 0.45 < compactness(mask, pieces=1) < 0.55
    mask[1:4, 28:31] = 1.0
    assert 0.6 < compactness(mask) < 0.7


def test_an_outline_drawn_over_the_object_is_not_compact():
    rows, cols = np.mgrid[:28, :28]
    mask = (np.abs(np.hypot(rows - 13.5, cols - 13.5) - 10) < 0.5).astype(float)
    assert compactness(mask) < 0.5


def test_pieces_must_be_positive():
    with pytest.raises(ValueError, match="pieces"):
        compactness(np.ones((4, 4)), pieces=0)


def test_channels_are_averaged_as_the_l1_is_and_an_empty_mask_has_no_shape():
    mask = np.zeros((8, 8, 3))
    mask[2:4, 2:4, :] = 1.0
    assert compactness(mask) == 1.0
    assert math.isnan(compactness(np.zeros((8, 8))))
