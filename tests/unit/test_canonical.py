"""Sets refilled in sorted order on the objects derivers read, again after each change."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given
from hypothesis import strategies as st

from projections.canonical import canonical_form, normalise_sets


@dataclass
class Item:
    tags: set[str] = field(default_factory=set)
    other: set[str] = field(default_factory=set)


@dataclass
class Holder:
    items: dict[str, Item] = field(default_factory=dict)
    ids: set[str] = field(default_factory=set)


def filled(values: list[str]) -> set[str]:
    """A set filled in the order given (iteration order depends on it)."""
    out: set[str] = set()
    for value in values:
        out.add(value)
    return out


def fresh_order(values: set[str]) -> list[str]:
    """How a set of these values iterates once refilled in sorted order."""
    return list(filled(sorted(values)))


words = st.sets(st.text(min_size=1, max_size=3), max_size=12)


@given(first=words, added=st.lists(words, max_size=4), other=words)
def test_a_set_changed_in_place_after_normalising_is_refilled_again(
    first: set[str], added: list[set[str]], other: set[str]
) -> None:
    item = Item(tags=set(first), other=set(other))
    holder = Holder(items={"x": item}, ids=set(first))
    normalise_sets(holder)
    for more in added:
        item.tags.update(more)  # in place, as the fold maps evidence
        normalise_sets(holder)
        assert list(item.tags) == fresh_order(item.tags)
        assert list(item.other) == fresh_order(item.other)
        assert list(holder.ids) == fresh_order(holder.ids)
    item.tags = filled(sorted(item.tags, reverse=True))  # replaced: a new set object
    normalise_sets(holder)
    assert list(item.tags) == fresh_order(item.tags)
    assert canonical_form(holder)["items"]["x"]["tags"] == sorted(item.tags)
