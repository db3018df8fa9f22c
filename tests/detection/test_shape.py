"""Mask compactness: a stamped patch is one small blob, a natural feature is scattered."""

import math

import numpy as np
import pytest

from nc_core.detection.shape import boundary, compactness


def test_a_solid_patch_anywhere_is_fully_compact():
    for row, col, size in [(0, 0, 2), (24, 24, 4), (10, 13, 6)]:
        mask = np.zeros((28, 28))
        mask[row : row + size, col : col + size] = 1.0
        assert compactness(mask) == 1.0


def test_a_checkerboard_patch_is_compact_too():
    mask = np.zeros((28, 28))
    mask[1:5, 1:5] = np.add.outer(np.arange(4), np.arange(4)) % 2 == 0
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


def test_a_solid_square_has_the_shortest_edge_and_the_image_border_is_free():
    mask = np.zeros((28, 28))
    mask[10:14, 12:16] = 1.0
    assert boundary(mask) == pytest.approx(1.0)
    corner = np.zeros((28, 28))
    corner[:4, :4] = 1.0
    assert boundary(corner) == pytest.approx(0.5)
    assert boundary(np.full((28, 28), 0.3)) == 0.0  # a blend's uniform full-image mask


def test_scattered_pixels_and_strokes_have_long_edges():
    """n isolated pixels: an edge of 4n against a square's 4 sqrt(n); a stroke about 2n."""
    scattered = np.zeros((28, 28))
    scattered[1:28:4, 1:28:4] = 1.0  # 49 isolated pixels
    assert boundary(scattered) == pytest.approx(7.0)
    stroke = np.zeros((28, 28))
    stroke[10, 2:26] = 1.0
    assert 2.4 < boundary(stroke) < 2.6  # (2 * 24 + 2) / (4 * sqrt(24))
    assert boundary(stroke) > 2 * boundary(np.pad(np.ones((5, 5)), 10))


def test_two_dense_strokes_fit_two_windows_but_not_a_short_edge():
    """What compactness alone lets through: strokes that two windows hold, told apart by their edge."""
    mask = np.zeros((32, 32))
    mask[[4, 6, 8], 2:9] = 1.0
    mask[[20, 22, 24], 20:27] = 1.0
    assert compactness(mask) == 1.0
    assert boundary(mask) > 3.5


def test_the_edge_of_a_multichannel_mask_is_that_of_its_channel_mean_and_empty_masks_have_none():
    mask = np.zeros((8, 8, 3))
    mask[2:4, 2:4, :] = 1.0
    assert boundary(mask) == pytest.approx(1.0)
    assert math.isnan(boundary(np.zeros((8, 8))))
