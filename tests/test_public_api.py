"""The public API: every name a package exports is the object it names, whatever was imported first.

A module of a package shadows a lazily exported name of the same name once anything imports it
(``import nc_core.scan`` used to turn ``from nc_core import scan`` into the module): the layers
live in subpackages so that no module sits beside an exported name.
"""

import importlib
import inspect
import pkgutil

import nc_core
import nc_core.audit
import nc_core.repair

#: Scripts, not libraries: the command line's entry and the legacy engine's tf_keras child.
NOT_IMPORTED = ("__main__", "legacy_worker")


def test_every_exported_name_is_its_object_even_after_every_module_was_imported():
    for info in pkgutil.walk_packages(nc_core.__path__, "nc_core."):
        if not info.name.endswith(NOT_IMPORTED):
            importlib.import_module(info.name)
    for package in (nc_core, nc_core.audit, nc_core.repair):
        for name in package.__all__:
            value = getattr(package, name)
            assert not inspect.ismodule(value), f"{package.__name__}.{name} is a module, not the API object"
    assert callable(nc_core.scan) and callable(nc_core.detect) and callable(nc_core.boundary)


def test_the_layers_are_subpackages_and_the_top_level_holds_only_entry_points():
    top = sorted(info.name for info in pkgutil.iter_modules(nc_core.__path__))
    packages = sorted(info.name for info in pkgutil.iter_modules(nc_core.__path__) if info.ispkg)
    assert packages == ["audit", "detection", "loading", "optimise", "repair", "reports", "runs"]
    assert sorted(set(top) - set(packages)) == [
        "__main__",
        "_lazy",
        "backend",
        "cli",
        "errors",
        "files",
        "runtime",
        "schema",
    ]
