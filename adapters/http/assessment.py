"""Assessment writes on a portfolio: evidence, observations, testimony, decisions, samples.

Every write here is a portfolio write: If-Match (the portfolio's ETag) is honoured, and
the answer carries the portfolio's new version as its ETag.
"""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, Response, post
from litestar.params import FromPath, JSONBody

from adapters.http.dependencies import Services
from adapters.http.policy import Grant
from adapters.http.problems import PORTFOLIO_WRITE, problem, responses
from adapters.http.request_bodies import (
    Appeal,
    Countersignature,
    DecisionRevocation,
    EvidenceMapping,
    EvidenceWithdrawal,
    NewDecision,
    NewEvidence,
    NewEvSample,
    NewIqaSample,
    NewObservation,
    NewQuestioning,
    NewTestimony,
    ResponseAcceptance,
    SampleCountersignature,
    SampleResponse,
    SignOff,
    to_command,
)
from adapters.http.response_bodies import Written
from adapters.http.writes import ETAG_HEADER, GrantDep, ServicesDep, WriterDep
from domain import commands as c


def _write(path: str, operation_id: str) -> post:
    """A portfolio write: POST, 201, the problems it may answer with, ETag documented."""
    return post(
        path,
        operation_id=operation_id,
        responses=responses(*PORTFOLIO_WRITE),
        response_headers=ETAG_HEADER,
        sync_to_thread=True,
    )


class PortfolioWritesController(Controller):
    path = "/portfolios/{portfolio_id:uuid}"
    tags = ["assessment"]

    @_write("/evidence", "submit_evidence")
    def submit_evidence(
        self,
        portfolio_id: FromPath[UUID],
        data: JSONBody[NewEvidence],
        portfolio_writer: WriterDep,
        services: ServicesDep,
        grant: GrantDep,
    ) -> Response[Written]:
        """Evidence from the learner (or their assessor); attachments must be uploaded first."""
        if grant.centre_id is not None:
            _check_attachments(services, grant.centre_id, data.attachments)
        evidence_id = portfolio_writer.new_id(data.evidence_id, "evidence")
        command = to_command(data, c.SubmitEvidence, evidence_id=evidence_id)
        return portfolio_writer.portfolio(portfolio_id, command, created=evidence_id)

    @_write("/evidence/{evidence_id:uuid}/mappings", "map_evidence")
    def map_evidence(
        self,
        portfolio_id: FromPath[UUID],
        evidence_id: FromPath[UUID],
        data: JSONBody[EvidenceMapping],
        portfolio_writer: WriterDep,
    ) -> Response[Written]:
        command = to_command(data, c.MapEvidence, evidence_id=evidence_id)
        return portfolio_writer.portfolio(portfolio_id, command)

    @_write("/evidence/{evidence_id:uuid}/withdrawal", "withdraw_evidence")
    def withdraw_evidence(
        self,
        portfolio_id: FromPath[UUID],
        evidence_id: FromPath[UUID],
        data: JSONBody[EvidenceWithdrawal],
        portfolio_writer: WriterDep,
    ) -> Response[Written]:
        """Withdraw evidence: it stops counting but stays on record, with the reason."""
        command = to_command(data, c.WithdrawEvidence, evidence_id=evidence_id)
        return portfolio_writer.portfolio(portfolio_id, command)

    @_write("/observations", "record_observation")
    def record_observation(
        self,
        portfolio_id: FromPath[UUID],
        data: JSONBody[NewObservation],
        portfolio_writer: WriterDep,
    ) -> Response[Written]:
        """The assessor's own direct observation of the learner at work."""
        evidence_id = portfolio_writer.new_id(data.evidence_id, "observation")
        command = to_command(data, c.RecordObservation, evidence_id=evidence_id)
        return portfolio_writer.portfolio(portfolio_id, command, created=evidence_id)

    @_write("/witness-testimonies", "record_witness_testimony")
    def record_witness_testimony(
        self,
        portfolio_id: FromPath[UUID],
        data: JSONBody[NewTestimony],
        portfolio_writer: WriterDep,
    ) -> Response[Written]:
        """What a witness on the centre's list saw (the witness makes no decision)."""
        evidence_id = portfolio_writer.new_id(data.evidence_id, "testimony")
        command = to_command(data, c.RecordWitnessTestimony, evidence_id=evidence_id)
        return portfolio_writer.portfolio(portfolio_id, command, created=evidence_id)

    @_write("/questioning", "record_questioning")
    def record_questioning(
        self,
        portfolio_id: FromPath[UUID],
        data: JSONBody[NewQuestioning],
        portfolio_writer: WriterDep,
    ) -> Response[Written]:
        """Questioning (Q) or professional discussion (PD) by the assessor."""
        evidence_id = portfolio_writer.new_id(data.evidence_id, "questioning")
        command = to_command(data, c.RecordQuestioning, evidence_id=evidence_id)
        return portfolio_writer.portfolio(portfolio_id, command, created=evidence_id)

    @_write("/decisions", "record_decision")
    def record_decision(
        self, portfolio_id: FromPath[UUID], data: JSONBody[NewDecision], portfolio_writer: WriterDep
    ) -> Response[Written]:
        """An assessment decision; a trainee assessor's waits for a countersignature."""
        decision_id = portfolio_writer.new_id(data.decision_id, "decision")
        command = to_command(data, c.RecordDecision, decision_id=decision_id)
        return portfolio_writer.portfolio(portfolio_id, command, created=decision_id)

    @_write("/iqa-samples", "record_iqa_sample")
    def record_iqa_sample(
        self,
        portfolio_id: FromPath[UUID],
        data: JSONBody[NewIqaSample],
        portfolio_writer: WriterDep,
    ) -> Response[Written]:
        sample_id = portfolio_writer.new_id(data.sample_id, "iqa-sample")
        command = to_command(data, c.RecordIqaSample, sample_id=sample_id)
        return portfolio_writer.portfolio(portfolio_id, command, created=sample_id)

    @_write("/ev-samples", "record_ev_sample")
    def record_ev_sample(
        self, portfolio_id: FromPath[UUID], data: JSONBody[NewEvSample], portfolio_writer: WriterDep
    ) -> Response[Written]:
        sample_id = portfolio_writer.new_id(data.sample_id, "ev-sample")
        command = to_command(data, c.RecordEvSample, sample_id=sample_id)
        return portfolio_writer.portfolio(portfolio_id, command, created=sample_id)

    @_write("/iqa-samples/{sample_id:uuid}/countersignatures", "countersign_iqa_sample")
    def countersign_iqa_sample(
        self,
        portfolio_id: FromPath[UUID],
        sample_id: FromPath[UUID],
        data: JSONBody[SampleCountersignature],
        portfolio_writer: WriterDep,
    ) -> Response[Written]:
        """A qualified IQA countersigns a trainee IQA's sample: only then does it count."""
        command = to_command(data, c.CountersignIqaSample, sample_id=sample_id)
        return portfolio_writer.portfolio(portfolio_id, command)

    @_write("/samples/{sample_id:uuid}/responses", "respond_to_sample")
    def respond_to_sample(
        self,
        portfolio_id: FromPath[UUID],
        sample_id: FromPath[UUID],
        data: JSONBody[SampleResponse],
        portfolio_writer: WriterDep,
    ) -> Response[Written]:
        """The assessor acts on a sample that referred decisions back or set actions."""
        command = to_command(data, c.RespondToSample, sample_id=sample_id)
        return portfolio_writer.portfolio(portfolio_id, command)

    @_write("/samples/{sample_id:uuid}/acceptance", "accept_sample_response")
    def accept_sample_response(
        self,
        portfolio_id: FromPath[UUID],
        sample_id: FromPath[UUID],
        data: JSONBody[ResponseAcceptance],
        portfolio_writer: WriterDep,
    ) -> Response[Written]:
        """The EV (an EV sample) or an IQA (an IQA sample) accepts the response: it closes."""
        command = to_command(data, c.AcceptSampleResponse, sample_id=sample_id)
        return portfolio_writer.portfolio(portfolio_id, command)

    @_write("/sign-off", "sign_off_unit")
    def sign_off_unit(
        self, portfolio_id: FromPath[UUID], data: JSONBody[SignOff], portfolio_writer: WriterDep
    ) -> Response[Written]:
        """The assessor signs off unit completion, with feedback (refused, listing why, while
        coverage has gaps or sufficiency fails)."""
        return portfolio_writer.portfolio(portfolio_id, to_command(data, c.SignOffUnit))

    @_write("/appeals", "open_appeal")
    def open_appeal(
        self, portfolio_id: FromPath[UUID], data: JSONBody[Appeal], portfolio_writer: WriterDep
    ) -> Response[Written]:
        """The centre opens an appeal: a certified or withdrawn portfolio is open again."""
        appeal_id = portfolio_writer.new_id(data.appeal_id, "appeal")
        command = to_command(data, c.OpenAppeal, appeal_id=appeal_id)
        return portfolio_writer.portfolio(portfolio_id, command, created=appeal_id)


class DecisionsController(Controller):
    """Signatures on a decision, addressed by the decision alone."""

    path = "/decisions/{decision_id:uuid}"
    tags = ["assessment"]

    @_write("/countersignatures", "countersign_decision")
    def countersign(
        self,
        decision_id: FromPath[UUID],
        data: JSONBody[Countersignature],
        portfolio_writer: WriterDep,
        grant: GrantDep,
    ) -> Response[Written]:
        """A qualified assessor countersigns a trainee's decision (never their own)."""
        command = to_command(data, c.Countersign, decision_id=decision_id)
        return portfolio_writer.portfolio(_portfolio_of(grant), command)

    @_write("/revocation", "revoke_decision")
    def revoke(
        self,
        decision_id: FromPath[UUID],
        data: JSONBody[DecisionRevocation],
        portfolio_writer: WriterDep,
        grant: GrantDep,
    ) -> Response[Written]:
        """Revoke a decision: it no longer stands, but stays on record, with the reason."""
        command = to_command(data, c.RevokeDecision, decision_id=decision_id)
        return portfolio_writer.portfolio(_portfolio_of(grant), command)


def _portfolio_of(grant: Grant) -> UUID:
    if grant.portfolio is None:
        raise problem(404, "no such decision", field="decision_id")
    return grant.portfolio.portfolio_id


def _check_attachments(
    services: Services, centre_id: FromPath[UUID], attachments: tuple[c.Attachment, ...]
) -> None:
    """Evidence refers to blobs by hash: each must be uploaded by this centre, at that size."""
    for n, attachment in enumerate(attachments):
        size = services.blobs.size(attachment.sha256, centre_id)
        if size is None:
            raise problem(
                422,
                f"no blob {attachment.sha256} uploaded at this centre: PUT /blobs/{{sha256}} first",
                rule="attachment_not_uploaded",
                field=f"attachments[{n}].sha256",
            )
        if size != attachment.size:
            raise problem(
                422,
                f"the blob has {size} bytes, not {attachment.size}",
                rule="attachment_size_mismatch",
                field=f"attachments[{n}].size",
            )
