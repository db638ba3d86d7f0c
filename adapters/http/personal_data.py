"""Personal data: retention policy, legal holds, closing a portfolio, and erasure.

Erasure (`POST /learners/{id}/erasure`, the learner's centre admin) is refused with 409
while the records must be kept (a portfolio open, the retention period running, a legal
hold open). Otherwise it records `SubjectErased`, destroys the learner's key, deletes the
blobs only their evidence used and revokes their tokens. Retrying finishes a half-done
erasure (a crash after the event) and still answers 409 `already_erased`.
"""

from __future__ import annotations

from uuid import UUID

import msgspec
from litestar import Controller, Response, post, put
from litestar.params import FromPath, JSONBody

from adapters.http.problems import PORTFOLIO_WRITE, WRITE, responses
from adapters.http.request_bodies import to_command
from adapters.http.response_bodies import Written
from adapters.http.writes import ETAG_HEADER, WriterDep
from domain import commands as c
from service.erasure import erase_learner


class RetentionPolicy(c.SetRetentionPolicy, frozen=True, kw_only=True):
    """Assessment records kept `records_years` after certification or withdrawal."""


class NewLegalHold(c.PlaceLegalHoldFields, frozen=True, kw_only=True):
    hold_id: UUID | None = None


class HoldLifting(c.LiftLegalHoldFields, frozen=True, kw_only=True):
    """Why the hold ends."""


class Certification(c.CertifyUnit, frozen=True, kw_only=True):
    """`effective_on` is the certificate's date: the retention clock starts there."""


class Withdrawal(c.WithdrawLearner, frozen=True, kw_only=True):
    """The learner leaves the unit uncertified."""


class ErasureRequest(c.EraseLearnerFields, frozen=True, kw_only=True):
    """Why, in words that are not themselves personal data (they stay in clear)."""


class Erasure(Written, frozen=True, kw_only=True):
    blobs_deleted: int = 0
    tokens_revoked: int = 0


class PersonalDataController(Controller):
    path = "/"
    tags = ["personal data"]

    @put(
        "/centres/{centre_id:uuid}/retention-policy",
        operation_id="set_retention_policy",
        responses=responses(*WRITE),
        sync_to_thread=True,
    )
    def set_retention_policy(
        self, centre_id: FromPath[UUID], data: JSONBody[RetentionPolicy], writer: WriterDep
    ) -> Written:
        return writer.run(to_command(data, c.SetRetentionPolicy), target=centre_id)

    @post(
        "/centres/{centre_id:uuid}/legal-holds",
        operation_id="place_legal_hold",
        responses=responses(*WRITE),
        sync_to_thread=True,
    )
    def place_legal_hold(
        self, centre_id: FromPath[UUID], data: JSONBody[NewLegalHold], writer: WriterDep
    ) -> Written:
        """An appeal or malpractice case: the learner's records cannot be erased until lifted."""
        hold_id = writer.new_id(data.hold_id, "legal-hold")
        command = to_command(data, c.PlaceLegalHold, hold_id=hold_id)
        return writer.run(command, target=centre_id, created=hold_id)

    @post(
        "/centres/{centre_id:uuid}/legal-holds/{hold_id:uuid}/lift",
        operation_id="lift_legal_hold",
        responses=responses(*WRITE),
        sync_to_thread=True,
    )
    def lift_legal_hold(
        self,
        centre_id: FromPath[UUID],
        hold_id: FromPath[UUID],
        data: JSONBody[HoldLifting],
        writer: WriterDep,
    ) -> Written:
        return writer.run(to_command(data, c.LiftLegalHold, hold_id=hold_id), target=centre_id)

    @post(
        "/portfolios/{portfolio_id:uuid}/certification",
        operation_id="certify_unit",
        responses=responses(*PORTFOLIO_WRITE),
        response_headers=ETAG_HEADER,
        sync_to_thread=True,
    )
    def certify_unit(
        self,
        portfolio_id: FromPath[UUID],
        data: JSONBody[Certification],
        portfolio_writer: WriterDep,
    ) -> Response[Written]:
        """Certify the unit: refused (422 `certification_refused`, every reason listed) unless
        coverage is complete, sufficiency passes, the assessor has signed off, any IQA
        summative sample the plan requires is agreed and no EV referral or action is open.
        Afterwards the portfolio is closed to assessment; the retention clock starts."""
        return portfolio_writer.portfolio(portfolio_id, to_command(data, c.CertifyUnit))

    @post(
        "/portfolios/{portfolio_id:uuid}/withdrawal",
        operation_id="withdraw_learner",
        responses=responses(*PORTFOLIO_WRITE),
        response_headers=ETAG_HEADER,
        sync_to_thread=True,
    )
    def withdraw_learner(
        self,
        portfolio_id: FromPath[UUID],
        data: JSONBody[Withdrawal],
        portfolio_writer: WriterDep,
    ) -> Response[Written]:
        """The learner left the unit uncertified: the retention clock starts."""
        return portfolio_writer.portfolio(portfolio_id, to_command(data, c.WithdrawLearner))

    @post(
        "/learners/{learner_id:uuid}/erasure",
        operation_id="erase_learner",
        responses=responses(*WRITE),
        sync_to_thread=True,
    )
    def erase_learner(
        self, learner_id: FromPath[UUID], data: JSONBody[ErasureRequest], writer: WriterDep
    ) -> Erasure:
        """Crypto-shred a learner whose records are no longer required (else 409, and why)."""
        services, grant = writer.services, writer.grant
        centre_id = grant.centre_id
        if centre_id is None:  # the policy resolved the learner's centre; never None here
            msg = "erasure needs the learner's centre"
            raise RuntimeError(msg)
        command = to_command(data, c.EraseLearner, learner_id=learner_id)
        result = erase_learner(
            services.app, grant.principal.actor, centre_id, command, idempotency_key=writer.key
        )  # a retry of a half-done erasure finishes it, then answers 409 already_erased
        written = msgspec.structs.asdict(writer.written(result))
        return Erasure(
            **written,
            blobs_deleted=result.effects.get("blobs_deleted", 0),
            tokens_revoked=result.effects.get("tokens_revoked", 0),
        )
