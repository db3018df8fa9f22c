"""Loading what users bring, untrusted: models (Keras 3 ``safe_mode``, vetted first), data sets,
pixel ranges, and the resource limits every file is held to.

Modules: :mod:`.limits` (every budget, raisable from the environment), :mod:`.pixels` (0-1,
0-255, -1-1, mean/std, and the guess), :mod:`.models` (a package: vetting, load, inspection,
prediction), :mod:`.data` (a package: the ``Dataset``, ``.npz``, zips and folders of images,
uploaded images) and :mod:`.inputs` (a model and its data, checked against each other). The
public names are importable from :mod:`nc_core`.

    >>> from nc_core import load_inputs
    >>> inputs = load_inputs("sample_models/signs_backdoored.keras", "sample_models/signs_data.npz")
"""
