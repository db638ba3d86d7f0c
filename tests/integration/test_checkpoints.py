"""Checkpoints: signed, recorded in the log, issued on demand, when changed and at EV samples."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice

import msgspec
import pytest

from adapters.audit.merkle_index import MerkleIndex
from adapters.audit.signing import SigningKey, VerifierKey
from adapters.bootstrap import build_projections
from adapters.cli.index_log import IndexElsewhere, Indexing, child_env
from adapters.config import Config
from domain.events import CheckpointIssued, Role
from service.checkpoints import (
    AUDIT_STREAM,
    SYSTEM_ACTOR,
    Reason,
    checkpoint_text,
    checkpoints,
    decoded,
    latest_checkpoint,
    leaf_of,
    parse_checkpoint_text,
)
from service.merkle import Tree
from tests.audit_helpers import KEY, Audited


@pytest.fixture
def audited(config: Config) -> Iterator[Audited]:
    centre = Audited(config)
    try:
        yield centre
    finally:
        centre.close()


def test_an_ev_sample_is_covered_by_a_checkpoint_as_soon_as_it_is_recorded(
    audited: Audited,
) -> None:
    audited.assess(portfolios=1)
    assert checkpoints(audited.ledger) == []
    position = audited.ev_sample(audited.portfolios[0], audited.decisions[0])
    (issued,) = checkpoints(audited.ledger)
    assert issued.reason == Reason.EV_SAMPLE
    assert audited.index.position_of_leaf(issued.tree_size - 1) == position
    assert (issued.actor_id, issued.actor_role) == (SYSTEM_ACTOR.id, Role.SYSTEM)
    body = parse_checkpoint_text(KEY.verifier.open(issued.signed_note))
    assert (body.origin, body.tree_size, body.root.hex()) == (
        "audit.example/log",
        issued.tree_size,
        issued.root_hash,
    )


def test_the_signed_root_is_the_root_over_every_stored_event_up_to_its_size(
    audited: Audited,
) -> None:
    audited.assess(portfolios=2)
    first = audited.checkpointer.issue(Reason.ON_DEMAND)
    audited.assess(portfolios=1)  # indexed incrementally on the next issue
    second = audited.checkpointer.issue(Reason.ON_DEMAND)
    leaves = [leaf_of(audited.ledger, n) for n in audited.ledger.notifications()]
    tree = Tree(leaves)
    assert first.root_hash == tree.root(first.tree_size).hex()
    assert second.root_hash == tree.root(second.tree_size).hex()
    assert second.tree_size == len(leaves) - 1  # all but the checkpoint event itself
    audited.index.drop()  # a rebuilt index signs the same tree
    assert audited.index.catch_up(audited.ledger).root == tree.root()


@pytest.mark.parametrize("behind", [0, 7, None])
def test_a_view_rebuild_catches_the_index_up_from_its_own_read_of_the_log(
    config: Config, audited: Audited, behind: int | None
) -> None:
    """The index fed the rebuild's pages (events as the runner decoded them) holds the
    leaves and root its own catch-up from zero makes; from any head it had (dropped, part
    indexed, or already up to date), and page boundaries do not matter."""
    audited.assess(portfolios=3)
    audited.checkpointer.issue(Reason.ON_DEMAND)
    audited.assess(portfolios=1)
    expected = [leaf_of(audited.ledger, n) for n in audited.ledger.notifications()]
    audited.index.drop()
    if behind is not None:
        partial = MerkleIndex(audited.index.store, batch_size=behind or 1)
        for _ in range(behind):  # catch up `behind` leaves, a leaf a page
            page = list(islice(audited.ledger.notifications(after=partial.head().position), 1))
            events = [decoded(audited.ledger, page[0])]
            assert partial.extend(partial.head().position, page, events)
    else:
        audited.index.catch_up(audited.ledger)
    before = audited.index.head()
    with build_projections(config, audited.app) as views:
        views["portfolio_state"].rebuild(batch_size=5, alongside=audited.index.extend)
    head = audited.index.head()
    assert head.size == len(expected)
    assert head.root == Tree(expected).root()
    assert [leaf.hash for leaf in audited.index.leaves()][before.size :] == expected[before.size :]
    assert not audited.index.extend(0, [], [])


def test_the_index_caught_up_in_a_second_process_holds_the_same_leaves(
    config: Config, audited: Audited
) -> None:
    """The child `projections rebuild` starts when a core is idle runs the index's own
    catch-up, configured through the environment as the CLI is."""
    audited.assess(portfolios=2)
    expected = [leaf_of(audited.ledger, n) for n in audited.ledger.notifications()]
    audited.index.drop()
    elsewhere = IndexElsewhere.start(config, force=True)
    assert elsewhere is not None
    assert elsewhere.wait()
    assert [leaf.hash for leaf in audited.index.leaves()] == expected
    assert audited.index.head().root == Tree(expected).root()


def test_without_a_child_the_rebuild_feeds_the_index_and_done_finishes_it(
    config: Config, audited: Audited
) -> None:
    audited.assess(portfolios=2)
    expected = [leaf_of(audited.ledger, n) for n in audited.ledger.notifications()]
    audited.index.drop()
    memory = msgspec.structs.replace(config, log_in_memory=True)
    assert child_env(memory) is None  # a log in memory: no other process could read it
    indexing = Indexing(memory, audited.index, audited.ledger)
    assert indexing.elsewhere is None
    assert indexing.alongside is not None
    notifications = list(audited.ledger.notifications())
    indexing.alongside(
        0, notifications[:3], [decoded(audited.ledger, n) for n in notifications[:3]]
    )
    indexing.done()
    assert [leaf.hash for leaf in audited.index.leaves()] == expected


def test_a_scheduled_checkpoint_is_skipped_when_nothing_new_was_stored(audited: Audited) -> None:
    audited.assess(portfolios=1)
    scheduled = audited.checkpointer.issue_if_changed(Reason.SCHEDULED)
    assert scheduled is not None
    assert audited.checkpointer.issue_if_changed(Reason.SCHEDULED) is None
    audited.assess(portfolios=1)
    assert audited.checkpointer.issue_if_changed(Reason.SCHEDULED) is not None
    assert latest_checkpoint(audited.ledger) == checkpoints(audited.ledger)[-1]
    recorded = audited.ledger.recorded(AUDIT_STREAM)
    assert [r.originator_version for r in recorded] == [1, 2]
    assert all(isinstance(r.event, CheckpointIssued) for r in recorded)


def test_a_checkpoint_is_a_c2sp_note_that_another_key_does_not_verify() -> None:
    text = checkpoint_text("audit.example/log", 3, b"\x07" * 32)
    assert text == "audit.example/log\n3\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n"
    note = KEY.sign(text)
    assert note.startswith(text + "\n\u2014 audit.example/log ")
    assert KEY.verifier.open(note) == text
    other = SigningKey.generate("audit.example/log")
    with pytest.raises(ValueError, match=r"not signed by audit\.example/log"):
        other.verifier.open(note)
    with pytest.raises(ValueError, match="does not verify"):
        KEY.verifier.open(note.replace("\n3\n", "\n4\n"))
    for bad in ("x\n3\n", "x\n03\n" + text.split("\n")[2] + "\n", "x\n3\nnot-base64\n"):
        with pytest.raises(ValueError, match=r"checkpoint|malformed|base64"):
            parse_checkpoint_text(bad)


def test_keys_read_and_sign_like_the_go_note_package() -> None:
    """The signer and verifier key texts, and a signature, from golang.org/x/mod/sumdb/note."""
    signer = SigningKey.from_text(
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
    )
    verifier = VerifierKey.from_text(
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    )
    assert signer.verifier.to_text() == verifier.to_text()
    text = (
        "If you think cryptography is the answer to your problem,\n"
        "then you don't know what your problem is.\n"
    )
    assert signer.sign(text) == (
        text + "\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2"
        "pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
    )
    assert SigningKey.from_text(signer.to_text()).to_text() == signer.to_text()
