"""Plain helpers the test files share: builders and constants, imported as ``tests.helpers.<module>``.

Fixtures live in ``conftest.py`` files instead: ``tests/conftest.py`` for those of the whole suite,
a folder's own ``conftest.py`` for those only its tests use. A test file never imports another.
"""
