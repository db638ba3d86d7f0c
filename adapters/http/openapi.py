"""Make /schema say exactly what msgspec enforces.

litestar 2.25's generator drops constraints inside variadic tuples (`tuple[CriterionId, ...]`
comes out as items "string or anything") and never says `additionalProperties: false` for a
Struct that forbids unknown fields. msgspec's own JSON Schema is exact, since msgspec is what
validates, so every request and response Struct's component is replaced by msgspec's.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, get_args, get_origin

import msgspec
from litestar import Litestar, Response
from litestar.datastructures import ResponseHeader
from litestar.handlers import HTTPRouteHandler

_REF = re.compile(r'"#/components/schemas/([^"]+)"')
#: An entity tag as the API sends it: a version, quoted ("7").
VERSION_TAG = {"type": "string", "pattern": r'^"[0-9]+"$', "examples": ['"7"']}


@dataclasses.dataclass(eq=False)  # hashed and compared by name, as litestar's ResponseHeader
class DocumentedHeader(ResponseHeader):
    """A response header the handler sets itself, documented with its JSON Schema.

    litestar derives a header's schema only from a fixed `value`; without one the header
    has neither `schema` nor `content`, which OpenAPI forbids. litestar copies every field
    onto the OpenAPI header object, so `schema` lands there as written.
    """

    schema: dict[str, Any] = dataclasses.field(default_factory=dict)
    documentation_only: bool = True
    required: bool = True  # every answer of the operation carries it


def _structs(annotation: Any) -> list[type[msgspec.Struct]]:
    """The Struct types an annotation carries: X in X, Response[X], list[X], X | None."""
    if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct):
        return [annotation]
    origin = get_origin(annotation)
    if origin is Response or origin in (list, tuple) or get_args(annotation):
        return [s for arg in get_args(annotation) for s in _structs(arg)]
    return []


def api_structs(app: Litestar) -> list[type[msgspec.Struct]]:
    """Every Struct a route reads as its body or answers with."""
    found: dict[type[msgspec.Struct], None] = {}
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            if not isinstance(handler, HTTPRouteHandler) or not _ours(handler):
                continue
            signature = handler.parsed_fn_signature
            body = signature.parameters.get("data")
            for field in (body, signature.return_type):
                if field is not None:
                    found.update(dict.fromkeys(_structs(field.annotation)))
    return list(found)


def _ours(handler: HTTPRouteHandler) -> bool:
    """The API's own handlers (not litestar's /schema or OPTIONS ones)."""
    return handler.operation_id is not None and "OPTIONS" not in handler.http_methods


def use_msgspec_schemas(app: Litestar, extra: list[type[msgspec.Struct]]) -> None:
    """Replace the generated components of the API's Structs (and `extra`) with msgspec's."""
    document = app.openapi_schema
    if document.components.schemas is None:
        document.components.schemas = {}
    types = [*api_structs(app), *extra]
    _, components = msgspec.json.schema_components(
        types, ref_template="#/components/schemas/{name}"
    )
    schemas: dict[str, Any] = document.components.schemas
    schemas.update(components)
    # Drop what litestar generated that nothing refers to any more (its own names for
    # Structs msgspec names differently, e.g. two classes both called Figure).
    referenced = set(_REF.findall(msgspec.json.encode(document.to_schema()).decode()))
    for name in [n for n in schemas if n not in referenced]:
        del schemas[name]


#: No text in a JSON body holds a NUL character (adapters/http/body_guard.py: a 400).
#: Said as "not containing" rather than a whole-string pattern: generators (schemathesis)
#: build texts of up to 20,000 characters from a pattern at twice the cost.
HOLDS_NUL = {"pattern": r"\x00"}
_NOT_SCHEMAS = frozenset({"default", "examples", "enum", "const", "not"})  # no free texts


def document_nul_free_bodies(app: Litestar) -> None:
    """Say in /schema what the body guard refuses: NUL in any text or key of a JSON body.

    Only components that request bodies alone use are marked: a stored text read back may
    predate the rule, so an answer promises nothing about NUL (the shared ones are enums).
    """
    document = app.openapi_schema
    schemas: dict[str, Any] = document.components.schemas or {}
    paths = msgspec.to_builtins(document.to_schema()["paths"])
    asked: set[str] = set()
    answered: set[str] = set()
    for item in paths.values():
        for operation in item.values():
            if isinstance(operation, dict):
                asked |= _refs(schemas, operation.get("requestBody"))
                answered |= _refs(schemas, operation.get("responses"))
    for name in asked - answered:
        if isinstance(schemas[name], dict):
            _nul_free(schemas[name])


def _refs(schemas: dict[str, Any], node: Any) -> set[str]:
    """The components `node` refers to, directly or through other components."""
    found: set[str] = set()
    todo = _REF.findall(msgspec.json.encode(node).decode())
    while todo:
        name = todo.pop()
        if name not in found:
            found.add(name)
            component = schemas[name]
            if not isinstance(component, dict):
                component = component.to_schema()
            todo.extend(_REF.findall(msgspec.json.encode(component).decode()))
    return found


def _nul_free(node: Any) -> None:
    """Say of every free text, and every map's keys, that it holds no NUL."""
    if isinstance(node, list):
        for item in node:
            _nul_free(item)
        return
    if not isinstance(node, dict):
        return
    if node.get("type") == "string" and not {"pattern", "format", "enum", "const"} & node.keys():
        node.setdefault("not", dict(HOLDS_NUL))
    if node.get("type") == "object" and node.get("additionalProperties", False) is not False:
        node.setdefault("propertyNames", {"not": dict(HOLDS_NUL)})
    for key, value in node.items():
        if key not in _NOT_SCHEMAS:
            _nul_free(value)
