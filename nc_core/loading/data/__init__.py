"""Clean images a user brings (npz, a zip or folder of class folders, a few files), as a Dataset.

Neural Cleanse works in the unit pixel range, so every loader returns pixels in [0, 1] plus the
:class:`~nc_core.loading.pixels.PixelRange` the *model* expects. Files come from strangers: npz
files load without pickle, zips are read in memory with limits on size, member count and
compression ratio, image headers are checked before decoding, and anything unreadable becomes an
:class:`~nc_core.errors.InvalidDataError` with one sentence a user understands.

Modules: :mod:`.dataset` (``Dataset`` and the checks every loader applies), :mod:`.npz`,
:mod:`.archives` (a zip's or folder's files, read within limits), :mod:`.images` (decoding, and
uploaded images), :mod:`.class_folders` (one sub-folder per class, in a folder or a zip) and
:mod:`.for_model` (``load_data``: any of them at a model's image size, checked to fit it).

    >>> ds = load_data("sample_models/mnist_data.npz", input_shape=(28, 28, 1))
    >>> ds.x.shape, ds.pixel_range.label, ds.class_counts()[7]
    ((1000, 28, 28, 1), '0-255', 100)
"""

from nc_core.loading.data.class_folders import load_image_folder, load_image_zip
from nc_core.loading.data.dataset import Dataset, check_data_values, stratified_indices
from nc_core.loading.data.for_model import check_fits, load_data, pick_pixel_range
from nc_core.loading.data.images import UNKNOWN_LABEL, load_images
from nc_core.loading.data.npz import load_npz, read_npy_header

__all__ = [
    "UNKNOWN_LABEL",
    "Dataset",
    "check_data_values",
    "check_fits",
    "load_data",
    "load_image_folder",
    "load_image_zip",
    "load_images",
    "load_npz",
    "pick_pixel_range",
    "read_npy_header",
    "stratified_indices",
]
