"""Plain words for read models: how an assessor or verifier would write them."""

from __future__ import annotations

from domain import events as e


def role_name(role: e.Role) -> str:
    return {e.Role.IQA: "IQA", e.Role.EV: "EV"}.get(role, role.value.replace("_", " "))


def percent(rate: float) -> str:
    return f"{rate * 100:.4g}%"


def plural(n: int, noun: str, *, lead: str = "") -> str:
    """'2 decisions'; with a lead, nothing at all for zero (for optional clauses)."""
    if lead and n == 0:
        return ""
    return f"{lead}{n} {noun}{'' if n == 1 else 's'}"


def line(text: str) -> str:
    return " ".join(text.split())


def paren(text: str) -> str:
    return f" ({line(text)})" if text.strip() else ""


def ref(decision_ref: str) -> str:
    return f" (ref {line(decision_ref)})" if decision_ref.strip() else ""


def where(
    location: str, customer_ref: str | None = None, environment: e.Environment | None = None
) -> str:
    """' at Shop floor (customer cust-2) [rwe]': where evidence came from, if recorded."""
    at = f" at {line(location)}" if location.strip() else ""
    customer = f" (customer {customer_ref})" if customer_ref else ""
    unusual = environment not in (None, e.Environment.WORKPLACE)
    return at + customer + (f" [{environment}]" if unusual else "")
