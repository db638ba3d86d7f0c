"""Rendering: one Jinja2 environment (autoescaped), dates in people's words, HTML and PDF.

The pack's HTML is self-contained (its stylesheet inline, no scripts, no fetches), so it
reads the same from a zip, an e-mail or a USB stick; the PDF is that HTML through
WeasyPrint. WeasyPrint needs pango from the operating system and is imported only when a
PDF is asked for, so the HTML and the rest of the service work without it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

TEMPLATES = Path(__file__).resolve().parent / "templates"
STYLESHEET = TEMPLATES / "desk.css"


class PdfUnavailable(RuntimeError):
    """The PDF renderer cannot run here; the message says what to install."""


def when(value: datetime | None) -> str:
    """`3 Nov 2026, 14:05 UTC`: an instant in UTC, as people write it."""
    if value is None:
        return ""
    at = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return f"{at.day} {at:%b %Y, %H:%M} UTC"


def day(value: date | None) -> str:
    """`3 Nov 2026`."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value.astimezone(UTC).date() if value.tzinfo else value.date()
    return f"{value.day} {value:%b %Y}"


def words(value: object) -> str:
    """An enum or identifier in words: `pending_countersignature` -> `pending countersignature`."""
    text = str(getattr(value, "value", value))
    return text.replace("_", " ")


def environment(*directories: Path) -> Environment:
    """Templates from `directories` (first match wins), then the pack's own."""
    env = Environment(
        loader=FileSystemLoader([*directories, TEMPLATES]),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(when=when, day=day, words=words, short=lambda u: str(u)[:8])
    env.globals["stylesheet"] = lambda: STYLESHEET.read_text(encoding="utf-8")
    return env


_PACK_ENV: Environment | None = None


def _pack_env() -> Environment:
    global _PACK_ENV  # noqa: PLW0603 - built on first use, never at import
    if _PACK_ENV is None:
        _PACK_ENV = environment()
    return _PACK_ENV


def render_pack(context: Mapping[str, Any]) -> str:
    """The audit pack as one HTML document."""
    return _pack_env().get_template("pack.html").render(context)


def to_pdf(html: str) -> bytes:
    """The pack's HTML as a PDF (WeasyPrint); `PdfUnavailable` says what to install."""
    try:
        from weasyprint import HTML  # noqa: PLC0415 - needs pango: imported only for a PDF
    except (ImportError, OSError) as error:
        msg = (
            "PDF rendering needs WeasyPrint and the pango library: install the project's "
            "dependencies (`./run`) and pango (Debian: `apt-get install libpango-1.0-0 "
            f"libpangoft2-1.0-0`), or ask for format=html ({error})"
        )
        raise PdfUnavailable(msg) from error
    document: bytes = HTML(string=html).write_pdf()
    return document
