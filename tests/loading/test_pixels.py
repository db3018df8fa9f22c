import numpy as np
import pytest

from nc_core.errors import InvalidParameterError
from nc_core.loading.pixels import PixelRange, guess_pixel_range


@pytest.mark.parametrize("name,top,bottom", [("0-1", 1.0, 0.0), ("0-255", 255.0, 0.0), ("-1-1", 1.0, -1.0)])
def test_named_ranges_map_unit_pixels_to_model_inputs(name, top, bottom):
    r = PixelRange.parse(name)
    np.testing.assert_allclose(r.from_unit(np.array([0.0, 1.0])), [bottom, top])
    np.testing.assert_allclose(r.to_unit(r.from_unit(np.array([0.25]))), [0.25], rtol=1e-6)
    assert PixelRange.parse(r.label) == r


def test_meanstd_round_trips_through_its_label():
    r = PixelRange.parse("meanstd:0.485,0.456,0.406/0.229,0.224,0.225")
    x = np.random.default_rng(0).random((2, 4, 4, 3)).astype(np.float32)
    np.testing.assert_allclose(r.to_unit(r.from_unit(x)), x, atol=1e-5)
    again = PixelRange.parse(r.label)
    np.testing.assert_allclose(again.scale, r.scale, rtol=1e-5)


@pytest.mark.parametrize("text", ["0-65535", "meanstd:0.5", "meanstd:0.5/0", "meanstd:a/b", "meanstd:0.1,0.2/0.3"])
def test_bad_ranges_are_refused_with_a_message(text):
    with pytest.raises(InvalidParameterError):
        PixelRange.parse(text)


def test_guess_reads_common_ranges_from_values():
    rng = np.random.default_rng(0)
    u = rng.random((10, 4, 4, 3)).astype(np.float32)
    assert guess_pixel_range(u).name == "0-1"
    assert guess_pixel_range(np.round(u * 255)).name == "0-255"
    assert guess_pixel_range(u * 2 - 1).name == "-1-1"
    standardised = guess_pixel_range((u - 0.5) / 0.2)
    assert standardised.name == "meanstd"
    np.testing.assert_allclose(standardised.to_unit((u - 0.5) / 0.2).max(), 1.0, atol=1e-5)
