"""Unit specs as TOML files: decoded into domain types, validated, gathered into a catalogue.

Specs are data reviewed like code: a bad file must fail loudly at start-up, naming the file
and the field, rather than surface later as a wrong gap analysis.
"""

from __future__ import annotations

import re
from pathlib import Path

import msgspec

from domain.spec import SpecCatalogue, SpecInvalid, UnitSpec, validate_spec

# msgspec ends a ValidationError with " - at `$.criteria[3].kind`" (nothing at the root) and
# names an unknown or missing field only in the message.
_LOCATION = re.compile(r"^(?P<message>.*?)(?: - at `(?P<at>[^`]*)`)?$", re.DOTALL)
_NAMED_FIELD = re.compile(r"(?:unknown|missing required) field `(?P<name>[^`]+)`")


class SpecFileError(Exception):
    """A spec file that cannot be used, with where in it the problem is."""

    def __init__(self, path: Path, field: str, message: str) -> None:
        super().__init__(f"{path}: {field}: {message}")
        self.path = path
        self.field = field
        self.message = message


def default_specs_dir() -> Path:
    """The specs shipped with the code (the wheel force-includes them beside the packages)."""
    return Path(__file__).resolve().parent.parent / "specs"


def load_spec_file(path: Path) -> UnitSpec:
    """Decode and validate one spec file; raise SpecFileError naming the file and field."""
    try:
        spec = msgspec.toml.decode(path.read_bytes(), type=UnitSpec)
    except msgspec.ValidationError as exc:
        field, message = _locate(str(exc))
        raise SpecFileError(path, field, message) from exc
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise SpecFileError(path, "$", f"not a valid UTF-8 TOML document: {exc}") from exc
    try:
        validate_spec(spec)
    except SpecInvalid as exc:
        raise SpecFileError(path, exc.field, exc.message) from exc
    return spec


def load_catalogue(directory: Path) -> SpecCatalogue:
    """Every `*.toml` directly in `directory`; a (code, version) defined twice is an error."""
    if not directory.is_dir():
        raise NotADirectoryError(f"no spec directory at {directory}")
    loaded: dict[tuple[str, int], Path] = {}
    specs: list[UnitSpec] = []
    for path in sorted(directory.glob("*.toml")):
        spec = load_spec_file(path)
        first = loaded.setdefault((spec.code, spec.version), path)
        if first != path:
            raise SpecFileError(
                path,
                "$.version",
                f"{spec.code} version {spec.version} is also defined in {first.name}; "
                "publish a change as a new version",
            )
        specs.append(spec)
    return SpecCatalogue(tuple(specs))


def _locate(error: str) -> tuple[str, str]:
    """Split msgspec's message into (field path, message), the named field appended."""
    match = _LOCATION.match(error)
    message, at = (match["message"], match["at"] or "$") if match else (error, "$")
    named = _NAMED_FIELD.search(message)
    return (f"{at}.{named['name']}" if named else at), message
