"""Mask compactness: a stamped patch is one small blob, a natural feature is scattered."""
import math

import numpy as np

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
    assert compactness(mask.reshape(28, 28)) < 0.3


def test_two_distant_patches_count_half():
    mask = np.zeros((32, 32))
    mask[1:4, 1:4] = 1.0
    mask[28:31, 28:31] = 1.0
    assert 0.45 < compactness(mask) < 0.55


def test_channels_are_averaged_as_the_l1_is_and_an_empty_mask_has_no_shape():
    mask = np.zeros((8, 8, 3))
    mask[2:4, 2:4, :] = 1.0
    assert compactness(mask) == 1.0
    assert math.isnan(compactness(np.zeros((8, 8))))
