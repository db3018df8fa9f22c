"""Checking stored documents against their dataclasses, once, where they come in.

A run's documents (scan report, repair record, audit record) are JSON, and an imported bundle
brings them from anybody. Each is checked here against the dataclass that holds it, field by
field, before anything reads it: ``"score": "0.9"`` or ``"round": "1"`` is refused with the path
of the field, instead of a traceback on a page later. The dataclasses' own type hints are the
schema, so a new field is checked as soon as it is declared.

    >>> from nc_core.repair.core import RepairRound
    >>> check_document({"round": "1", "target": 3, "l1": 2.0, "removed": True}, RepairRound, "rounds[0]")
    Traceback (most recent call last):
    nc_core.errors.InvalidDataError: rounds[0].round must be a whole number, not '1'.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, Literal, Union

from nc_core.errors import InvalidDataError

#: Longest text a stored document may hold in one field (a class name, a reason, a message).
MAX_TEXT = 10_000
#: Longest list or mapping.
MAX_ITEMS = 100_000


def check_document(payload: object, schema: type, where: str) -> None:
    """Raise :class:`InvalidDataError` naming the first field of ``payload`` that does not fit the
    dataclass ``schema`` (its type hints); fields the dataclass lacks are ignored, fields with no
    default must be there."""
    _check(payload, schema, where)


def _check(value: Any, kind: Any, where: str) -> None:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if kind is Any:
        return
    if origin in (Union, types.UnionType):
        others = [option for option in args if option is not type(None)]
        if value is not None and len(others) == 1:  # ``X | None`` with a value: say which part of X is wrong
            _check(value, others[0], where)
            return
        if not any(_fits(value, option, where) for option in args):
            _refuse(where, " or ".join(_describe(a) for a in args), value)
        return
    if origin is Literal:
        if value not in args:
            _refuse(where, " or ".join(map(repr, args)), value)
        return
    if dataclasses.is_dataclass(kind):
        _check_fields(value, kind, where)
        return
    if origin in (list, tuple) or kind in (list, tuple):
        if not isinstance(value, list) or len(value) > MAX_ITEMS:
            _refuse(where, "a list", value)
        item = args[0] if args else Any
        for index, element in enumerate(value):
            _check(element, item, f"{where}[{index}]")
        return
    if origin is dict or kind is dict:
        if not isinstance(value, dict) or len(value) > MAX_ITEMS:
            _refuse(where, "a mapping", value)
        key_kind, item = args if args else (Any, Any)
        for key, element in value.items():
            if key_kind is int and not (isinstance(key, str) and key.isdigit() and len(key) <= 9):
                _refuse(f"{where} key", "a class index", key)
            _check(element, item, f"{where}[{key!r}]")
        return
    _check_scalar(value, kind, where)


def _check_scalar(value: Any, kind: Any, where: str) -> None:
    if kind is type(None):
        ok = value is None
    elif kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**53
    elif kind is float:  # JSON has no NaN or infinity: Python's json writes them, and may read them back
        ok = (
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and (math.isfinite(value) or value != value or math.isinf(value))
        )
    elif kind is str:
        ok = isinstance(value, str) and len(value) <= MAX_TEXT
    else:
        ok = True  # a type this module does not know (an array, a model): not stored as JSON
    if not ok:
        _refuse(where, _describe(kind), value)


def _check_fields(value: Any, schema: type, where: str) -> None:
    if not isinstance(value, dict):
        _refuse(where, "a mapping", value)
    hints = typing.get_type_hints(schema)
    for field in dataclasses.fields(schema):
        if field.name not in value:
            required = field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
            if required and field.metadata.get("stored", True):
                raise InvalidDataError(f"{where}: the field {field.name!r} is missing.")
            continue
        if field.metadata.get("stored", True):
            _check(value[field.name], hints[field.name], f"{where}.{field.name}")


def _fits(value: Any, kind: Any, where: str) -> bool:
    try:
        _check(value, kind, where)
    except InvalidDataError:
        return False
    return True


def _describe(kind: Any) -> str:
    names = {int: "a whole number", float: "a number", str: "short text", bool: "true or false", type(None): "null"}
    if kind in names:
        return names[kind]
    origin = typing.get_origin(kind)
    if origin is list:
        return "a list"
    if origin is dict:
        return "a mapping"
    return getattr(kind, "__name__", str(kind))


def _refuse(where: str, expected: str, value: Any) -> typing.NoReturn:
    shown = repr(value)
    raise InvalidDataError(f"{where} must be {expected}, not {shown[:40] + ('…' if len(shown) > 40 else '')}.")
