"""Canonical forms of values holding sets: equal states, equal bytes, in any process.

msgspec writes a set in iteration order, which depends on its insertion history and on
the per-process string hash seed; its `order="deterministic"` would also sort the
UUID-keyed dicts, which it refuses. Dicts keep insertion (= log) order, so only sets
need sorting: in their builtins form before encoding (`canonical_form`), or refilled in
place on the objects a deriver reads (`normalise_sets`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from functools import cache
from types import UnionType
from typing import Any, TypeVar, Union, cast, get_args, get_origin, get_type_hints

import msgspec

T = TypeVar("T")


def canonical_form(value: object) -> Any:
    """What to encode for `value`: itself if it holds no sets, else its builtins form
    (`msgspec.to_builtins`) with every set an array in sorted order."""
    tp: Any = type(value)
    canonical = _set_plan(tp, on_objects=False)
    return value if canonical is None else canonical(msgspec.to_builtins(value))


def normalise_sets(value: T) -> T:
    """`value` with its sets refilled in sorted order, in place.

    Two equal sets iterate alike only if they were filled alike; afterwards iteration
    depends on contents alone (in this process), as after decoding the stored JSON, at a
    fraction of the cost of decoding.
    """
    tp: Any = type(value)
    normalise = _set_plan(tp, on_objects=True)
    return value if normalise is None else cast(T, normalise(value))


def set_fields(tp: type) -> set[str]:
    """The fields of a dataclass whose values hold sets (at any depth)."""
    hints = get_type_hints(tp)
    return {
        f.name
        for f in dataclasses.fields(tp)
        if _set_plan(hints[f.name], on_objects=False) is not None
    }


Canonical = Callable[[Any], Any]


@cache
def _set_plan(tp: Any, *, on_objects: bool) -> Canonical | None:
    """For a type, a function canonicalising the sets in a value of it; None if it has none.

    On objects, sets are refilled in sorted order; on their `msgspec.to_builtins` form
    (dataclasses as dicts), the arrays that were sets are sorted. Sets are expected in
    dataclasses (Structs hold tuples); containers are changed in place.
    """
    origin, args = get_origin(tp), get_args(tp)
    if tp in (set, frozenset) or origin in (set, frozenset):
        return _refilled if on_objects else sorted
    if origin in (Union, UnionType):
        inner = [f for a in args if (f := _set_plan(a, on_objects=on_objects)) is not None]
        if len(inner) > 1:
            msg = f"cannot canonicalise a union of set-holding types: {tp}"
            raise TypeError(msg)
        return _optional(inner[0]) if inner else None
    if origin is dict:
        values = _set_plan(args[1], on_objects=on_objects)
        return None if values is None else _each_value(values)
    if origin in (list, tuple) and args and (len(args) == 1 or args[1] is Ellipsis):
        items = _set_plan(args[0], on_objects=on_objects)
        return None if items is None else lambda v: type(v)(map(items, v))
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = get_type_hints(tp)
        fields = {
            f.name: plan
            for f in dataclasses.fields(tp)
            if (plan := _set_plan(hints[f.name], on_objects=on_objects)) is not None
        }
        return _each_field(fields, on_objects=on_objects) if fields else None
    return None


def _refilled(items: set[Any] | frozenset[Any]) -> set[Any] | frozenset[Any]:
    return items if len(items) < 2 else type(items)(sorted(items))


def _optional(inner: Canonical) -> Canonical:
    return lambda v: None if v is None else inner(v)


def _each_value(values: Canonical) -> Canonical:
    def canonical(mapping: dict[Any, Any]) -> dict[Any, Any]:
        for key, value in mapping.items():
            mapping[key] = values(value)
        return mapping

    return canonical


def _each_field(fields: Mapping[str, Canonical], *, on_objects: bool) -> Canonical:
    if on_objects:
        return _refilled_fields(fields)

    def canonical(value: Any) -> Any:
        for name, plan in fields.items():
            value[name] = plan(value[name])
        return value

    return canonical


_REFILLED = "_refilled_sets"  # where an object holds the sets last refilled (not a field)


def _refilled_fields(fields: Mapping[str, Canonical]) -> Canonical:
    """Refills an object's fields in place; a set field refilled before is left alone if
    it is the set then made and iterates as it did (in the same order), as it then did
    in sorted order: the view normalises every item of a state at each event that
    touches it, and most items have not changed since the last one."""
    sets = {name for name, plan in fields.items() if plan is _refilled}

    def canonical(value: Any) -> Any:
        attrs: dict[str, Any] | None = getattr(value, "__dict__", None)
        held: dict[str, tuple[Any, tuple[Any, ...]]] | None = (
            None if attrs is None else attrs.get(_REFILLED)
        )
        for name, plan in fields.items():
            current = getattr(value, name)
            if name not in sets:
                object.__setattr__(value, name, plan(current))
            elif len(current) >= 2:  # fewer iterate alike in any order
                was = held.get(name) if held is not None else None
                if was is not None and was[0] is current and was[1] == tuple(current):
                    continue
                refilled = _refilled(current)
                object.__setattr__(value, name, refilled)
                if attrs is not None:
                    if held is None:
                        held = attrs[_REFILLED] = {}
                    held[name] = (refilled, tuple(refilled))
        return value

    return canonical
