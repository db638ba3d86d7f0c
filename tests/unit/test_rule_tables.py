"""Each stream's rules are one table from command type to rule: every command is decided by
exactly one rule of one stream, and the commands that open a stream decide on its absence."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest

from domain import centre_rules, portfolio_rules
from domain import commands as c
from domain import events as e
from domain.centre import fold_centre
from domain.errors import AlreadyExists, NotFound
from domain.reads import Reads

ADMIN = c.Actor(id=uuid4(), role=e.Role.ADMIN)


def _commands() -> set[type[c.Command]]:
    return {
        cls
        for cls in vars(c).values()
        if isinstance(cls, type) and issubclass(cls, c.Command) and cls is not c.Command
    }


def _stamp() -> c.Stamp:
    return c.Stamp(event_id=uuid4(), actor=ADMIN, recorded_at=datetime.now(UTC))


class _NoReads:
    """A rule that needs nothing beyond its stream must not ask."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the rule read {name}")


def _no_reads() -> Reads:
    return _NoReads()


def test_every_command_is_decided_by_exactly_one_rule_of_one_stream() -> None:
    centre, portfolio = set(centre_rules.RULES), set(portfolio_rules.RULES)
    assert not centre & portfolio
    assert centre | portfolio == _commands()


def test_only_registering_a_centre_and_enrolling_open_a_stream() -> None:
    opening = {cls: cls.OPENS for cls in _commands() if cls.OPENS is not None}
    assert opening == {c.RegisterCentre: "centre_id", c.Enrol: "portfolio_id"}
    assert c.RegisterCentre in centre_rules.RULES
    assert c.Enrol in portfolio_rules.RULES


def test_registering_a_centre_is_a_rule_on_an_absent_centre() -> None:
    cmd = c.RegisterCentre(centre_id=uuid4(), name="Northfield College")
    rule = centre_rules.RULES[c.RegisterCentre]
    event = rule(None, cmd, _stamp(), _no_reads())
    assert isinstance(event, e.CentreRegistered)
    assert (event.centre_id, event.name) == (cmd.centre_id, cmd.name)
    existing = fold_centre([event])
    with pytest.raises(AlreadyExists):
        rule(existing, cmd, _stamp(), _no_reads())


def test_a_rule_on_an_existing_stream_refuses_an_absent_one() -> None:
    centre_rule = centre_rules.RULES[c.RegisterLearner]
    with pytest.raises(NotFound):
        centre_rule(None, c.RegisterLearner(learner_id=uuid4(), name="Ann"), _stamp(), _no_reads())
    portfolio_rule = portfolio_rules.RULES[c.WithdrawLearner]
    with pytest.raises(NotFound):
        portfolio_rule(None, c.WithdrawLearner(), _stamp(), _no_reads())
