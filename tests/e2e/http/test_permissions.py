"""Every endpoint by every role, from one table: who may call what, and on whose data.

Two centres holding the same kinds of records. At each: its centre admin, the portfolio's
assessor, another assessor, a trainee (assessor of a second portfolio whose decision awaits
countersigning), the IQA, an allocated EV, the portfolio's learner, another learner, an
integrator; and the administrator over both. The table below is written out by hand for
centre A's records, independently of `adapters.http.policy.POLICY`, so a slip in either
shows up here; centre B's records are called by everyone too, expecting the mirror image
(A's people where B's were). And no answer to anyone of one centre carries an id of the
other's people or records that the request did not itself name: 0 leaks.

An allowed call must not be refused by the policy (it may still break a domain rule: a
trainee countersigning their own decision is the domain's 403, not the policy's). A denied
call is the policy's 403; a decision looked up from another centre is not found there (404).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import httpx
from litestar import Litestar
from litestar.testing import TestClient

from adapters.http.policy import POLICY, PUBLIC_OPERATIONS
from adapters.http.ui.router import PUBLIC_PATHS
from tests.e2e.http.conftest import SEED_000, Api, HttpCentre, sha256

A_STAFF = {"centre_admin", "assessor", "other_assessor", "trainee", "iqa"}
A_PEOPLE = A_STAFF | {"learner", "other_learner"}
B_PEOPLE = {f"b_{who}" for who in A_PEOPLE}
B_ASSESSORS = {"b_assessor", "b_other_assessor", "b_trainee"}
EVERYONE = {"admin", *A_PEOPLE, "ev", "integrator", *B_PEOPLE, "b_ev", "b_integrator"}
READERS = {"learner", *A_STAFF, "ev", "integrator"}
CENTRE_ADMINS = {"admin", "centre_admin"}
DESK = {*A_PEOPLE, *B_PEOPLE, "ev", "b_ev"}
STREAMERS = {"admin", "integrator", "b_integrator"}  # each sees only its own centre's events

# operation -> (who is allowed, who is told "not found")
TABLE: dict[str, tuple[set[str], set[str]]] = {
    "whoami": (EVERYONE, set()),
    "list_units": (EVERYONE, set()),
    "get_unit": (EVERYONE, set()),
    "create_centre": ({"admin"}, set()),
    "get_centre": ({"admin", *A_STAFF, "ev", "integrator"}, set()),
    "register_staff": (CENTRE_ADMINS, set()),
    "change_qualification": (CENTRE_ADMINS, set()),
    "register_learner": (CENTRE_ADMINS, set()),
    "set_retention_policy": (CENTRE_ADMINS, set()),
    "place_legal_hold": (CENTRE_ADMINS, set()),
    "lift_legal_hold": (CENTRE_ADMINS, set()),
    "certify_unit": (CENTRE_ADMINS, set()),
    "withdraw_learner": (CENTRE_ADMINS, set()),
    "erase_learner": ({"centre_admin"}, {"b_centre_admin"}),  # a learner of A is not at B
    "add_witness": (CENTRE_ADMINS, set()),
    "set_sufficiency_policy": (CENTRE_ADMINS, set()),
    "set_observed_criteria": (CENTRE_ADMINS, set()),
    "set_sampling_plan": (CENTRE_ADMINS | {"iqa"}, set()),
    "allocate_ev": ({"admin"}, set()),
    "get_audit": ({"centre_admin", "iqa", "ev"}, set()),
    "enrol": (CENTRE_ADMINS, set()),
    "get_portfolio": (READERS, set()),
    "get_coverage": (READERS, set()),
    "get_sufficiency": (READERS, set()),
    "get_history": (READERS, set()),
    "submit_evidence": ({"learner", "assessor"}, set()),
    "map_evidence": ({"learner", "assessor"}, set()),
    "withdraw_evidence": ({"learner", "assessor"}, set()),
    "record_witness_testimony": ({"learner", "assessor"}, set()),
    "record_observation": ({"assessor"}, set()),
    "record_questioning": ({"assessor"}, set()),
    "record_decision": ({"assessor"}, set()),
    "countersign_decision": ({"assessor", "other_assessor", "trainee"}, B_ASSESSORS),
    "revoke_decision": ({"trainee", "iqa"}, {*B_ASSESSORS, "b_iqa"}),
    "record_iqa_sample": ({"iqa"}, set()),
    "record_ev_sample": ({"ev"}, set()),
    "countersign_iqa_sample": ({"iqa"}, set()),
    "respond_to_sample": ({"assessor"}, set()),
    "accept_sample_response": ({"iqa", "ev"}, set()),
    "sign_off_unit": ({"assessor"}, set()),
    "open_appeal": (CENTRE_ADMINS, set()),
    "approve_realistic_environment": ({"admin", "ev"}, set()),
    "put_blob": (A_PEOPLE | B_PEOPLE, set()),
    "get_blob": (A_PEOPLE | {"ev"}, set()),
    "issue_token": ({"admin"}, set()),
    "revoke_token": ({"admin"}, set()),
    "list_events": (STREAMERS, set()),
    "stream_events": (STREAMERS, set()),
    "create_webhook": (STREAMERS, set()),
    "list_webhooks": (STREAMERS, set()),
    "get_webhook": ({"integrator"}, {"admin", "b_integrator"}),  # the owner only
    "list_webhook_deliveries": ({"integrator"}, {"admin", "b_integrator"}),
    "redeliver_webhook": ({"integrator"}, {"admin", "b_integrator"}),
    "update_webhook": ({"integrator"}, {"admin", "b_integrator"}),
    "rotate_webhook_secret": ({"integrator"}, {"admin", "b_integrator"}),
    "delete_webhook": ({"integrator"}, {"admin", "b_integrator"}),
    # A centre's LRS: its centre admin's; each acts on their own centre (B's: not found)
    "create_lrs": ({"centre_admin", "b_centre_admin"}, set()),
    "list_lrs": ({"centre_admin", "b_centre_admin"}, set()),
    "get_lrs": ({"centre_admin"}, {"b_centre_admin"}),
    "list_lrs_deliveries": ({"centre_admin"}, {"b_centre_admin"}),
    "delete_lrs": ({"centre_admin"}, {"b_centre_admin"}),
    "list_checkpoints": (EVERYONE, set()),
    "latest_checkpoint": (EVERYONE, set()),
    "get_public_key": (EVERYONE, set()),
    "issue_checkpoint": ({"admin", "centre_admin", "ev", "b_centre_admin", "b_ev"}, set()),
    "export_bundle": ({"admin", "centre_admin", "iqa", "ev"}, set()),
    "audit_pack": ({"admin", "centre_admin", "iqa", "ev"}, set()),
    # The desk (/ui/): people reading evidence, never integrators or the administrator
    "ui_home": (DESK, set()),
    "ui_go": (DESK, set()),
    "ui_sign_out": (DESK, set()),
    "ui_centre": ({*A_STAFF, "ev"}, set()),
    "ui_centre_coverage_csv": ({*A_STAFF, "ev"}, set()),
    "ui_centre_decisions_csv": ({*A_STAFF, "ev"}, set()),
    "ui_trail": ({"centre_admin", "iqa", "ev"}, set()),
    "ui_portfolio": (READERS - {"integrator"}, set()),
    "ui_coverage_csv": (READERS - {"integrator"}, set()),
    "ui_decisions_csv": (READERS - {"integrator"}, set()),
    "ui_pack": ({"admin", "centre_admin", "iqa", "ev"}, set()),
    "ui_export": ({"admin", "centre_admin", "iqa", "ev"}, set()),
}
POLICY_RULES = {"role_not_allowed", "out_of_scope"}
# A public address (IANA's): registration resolves it; it matches no event, so is never called
QUIET_WEBHOOK = {"url": "https://93.184.215.14/x", "portfolio_ids": [str(uuid4())]}
# From the last position there can be: nothing is ever sent
QUIET_LRS = {"endpoint": "https://93.184.215.14/xAPI/", "username": "lrs", "password": "secret",
             "from_position": 2**63 - 1}  # fmt: skip


@dataclass
class Call:
    method: str
    path: str
    json: Any = None
    content: bytes | None = None
    params: dict[str, str] | None = None


@dataclass
class Records:
    """One centre's records of every kind the calls below act on."""

    centre: HttpCentre
    portfolio: UUID
    evidence: UUID
    decision: UUID  # by the portfolio's (qualified) assessor
    sample: UUID  # the IQA's sample of it, agreed: nothing to countersign or respond to
    pending: UUID  # by the trainee, on their own portfolio: awaits a countersignature
    blob: bytes
    token_id: UUID  # an integrator token to revoke
    webhook: UUID  # the integrator's; it matches no event, so nothing is ever sent
    lrs: UUID  # the centre admin's LRS, from past the end of the log: nothing is ever sent

    def ids(self) -> set[str]:
        """Every id of the centre's people and records, as text."""
        people = {str(person.id) for person in self.centre.people.values()}
        records = (
            self.centre.id,
            self.portfolio,
            self.evidence,
            self.decision,
            self.sample,
            self.pending,
        )
        more = {str(self.token_id), str(self.webhook), str(self.lrs)}
        return {*people, *(str(i) for i in records), *more}


@dataclass
class World:
    a: HttpCentre
    b: HttpCentre
    of_a: Records
    of_b: Records

    def api(self, who: str) -> Api:
        if who.startswith("b_"):
            return self.b.as_(who.removeprefix("b_"))
        return self.a.as_(who)


def records(centre: HttpCentre) -> Records:
    pid = centre.enrol()
    p = f"/portfolios/{pid}"
    work = {"method": "WP", "title": "Log", "environment": "workplace"}
    evidence = centre.as_("learner").ok(
        "POST", f"{p}/evidence", work | {"authenticity_declared": True}
    )
    seen = {"environment": "workplace", "criteria": ["PC3"]}
    observed = centre.as_("assessor").ok("POST", f"{p}/observations", seen)["created_id"]
    decided = {"outcome": "met", "criteria": ["PC3"], "evidence_ids": [observed]}
    decision = centre.as_("assessor").ok("POST", f"{p}/decisions", decided)
    agreed = {"stage": "interim", "decision_ids": [decision["created_id"]], "outcome": "agreed"}
    sample = centre.as_("iqa").ok("POST", f"{p}/iqa-samples", agreed)
    trainees = centre.enrol(assessor="trainee")
    t = f"/portfolios/{trainees}"
    observed = centre.as_("trainee").ok("POST", f"{t}/observations", seen)["created_id"]
    decided = {"outcome": "met", "criteria": ["PC3"], "evidence_ids": [observed]}
    pending = centre.as_("trainee").ok("POST", f"{t}/decisions", decided, params={"wait": "true"})
    blob = f"a photo of the complaint form at {centre.id}".encode()
    centre.as_("learner").request("PUT", f"/blobs/{sha256(blob)}", content=blob)
    token = centre.as_("admin").ok(
        "POST", "/tokens", {"role": "integrator", "centre_id": str(centre.id)}
    )
    return Records(
        centre=centre,
        portfolio=pid,
        evidence=UUID(evidence["created_id"]),
        decision=UUID(decision["created_id"]),
        sample=UUID(sample["created_id"]),
        pending=UUID(pending["created_id"]),
        blob=blob,
        token_id=UUID(token["token_id"]),
        webhook=UUID(centre.as_("integrator").ok("POST", "/webhooks", QUIET_WEBHOOK)["id"]),
        lrs=UUID(centre.as_("centre_admin").ok("POST", "/lrs", QUIET_LRS)["id"]),
    )


def build_world(client: TestClient[Litestar]) -> World:
    a, b = HttpCentre.create(client, "Centre A"), HttpCentre.create(client, "Centre B")
    return World(a=a, b=b, of_a=records(a), of_b=records(b))


def calls(w: Records) -> dict[str, Callable[[], Call]]:
    """A fresh, well-formed request per operation on one centre's records (new ids each time)."""
    a, p = f"/centres/{w.centre.id}", f"/portfolios/{w.portfolio}"
    people = {k: str(v.id) for k, v in w.centre.people.items()}
    evidence = {"method": "WP", "title": "Rota", "environment": "workplace"}
    statement = {
        "witness_id": str(w.centre.witness_id),
        "environment": "workplace",
        "statement": "Saw",
    }
    hook = f"/webhooks/{w.webhook}"
    hold = {"learner_id": people["learner"], "reason": "appeal"}

    def new_hold() -> str:
        return str(w.centre.as_("centre_admin").ok("POST", f"{a}/legal-holds", hold)["created_id"])

    return {
        "whoami": lambda: Call("GET", "/me"),
        "list_units": lambda: Call("GET", "/units"),
        "get_unit": lambda: Call("GET", f"/units/{SEED_000}"),
        "create_centre": lambda: Call("POST", "/centres", {"name": "New centre"}),
        "get_centre": lambda: Call("GET", a),
        "register_staff": lambda: Call("POST", f"{a}/staff", {"name": "N", "role": "assessor"}),
        "change_qualification": lambda: Call(
            "PUT",
            f"{a}/staff/{people['trainee']}/qualification",
            {"role": "assessor", "qualification": "trainee"},
        ),
        "register_learner": lambda: Call("POST", f"{a}/learners", {"name": "N"}),
        "set_retention_policy": lambda: Call("PUT", f"{a}/retention-policy", {}),
        "place_legal_hold": lambda: Call("POST", f"{a}/legal-holds", hold),
        # each caller lifts a hold of its own, placed just before
        "lift_legal_hold": lambda: Call("POST", f"{a}/legal-holds/{new_hold()}/lift", {}),
        "certify_unit": lambda: Call("POST", f"{p}/certification", {}),  # then 422: closed
        "withdraw_learner": lambda: Call("POST", f"{p}/withdrawal", {}),
        # allowed, then refused by the domain (409): the records are still kept
        "erase_learner": lambda: Call(
            "POST", f"/learners/{people['learner']}/erasure", {"reason": "request"}
        ),
        "add_witness": lambda: Call("POST", f"{a}/witnesses", {"name": "W"}),
        "set_sufficiency_policy": lambda: Call("PUT", f"{a}/sufficiency-policy", {}),
        "set_observed_criteria": lambda: Call(
            "PUT", f"{a}/observed-criteria/CS-RCSP-W", {"criteria": ["PC1"]}
        ),
        "set_sampling_plan": lambda: Call("PUT", f"{a}/sampling-plan", {}),
        "allocate_ev": lambda: Call("POST", f"{a}/ev-allocations", {"name": "E"}),
        "get_audit": lambda: Call("GET", f"{a}/audit"),
        "enrol": lambda: Call(
            "POST",
            "/portfolios",
            {
                "centre_id": str(w.centre.id),
                "learner_id": people["other_learner"],
                "unit_code": SEED_000,
                "assessor_id": people["assessor"],
                "iqa_id": people["iqa"],
            },
        ),
        "get_portfolio": lambda: Call("GET", p),
        "get_coverage": lambda: Call("GET", f"{p}/coverage"),
        "get_sufficiency": lambda: Call("GET", f"{p}/sufficiency"),
        "get_history": lambda: Call("GET", f"{p}/history"),
        "submit_evidence": lambda: Call(
            "POST", f"{p}/evidence", evidence | {"authenticity_declared": True}
        ),
        "map_evidence": lambda: Call(
            "POST", f"{p}/evidence/{w.evidence}/mappings", {"criteria": ["PC1"]}
        ),
        "withdraw_evidence": lambda: Call(
            "POST", f"{p}/evidence/{w.evidence}/withdrawal", {"reason": "duplicate"}
        ),
        "record_witness_testimony": lambda: Call(
            "POST", f"{p}/witness-testimonies", statement | {"criteria": ["PC1"]}
        ),
        "record_observation": lambda: Call(
            "POST", f"{p}/observations", {"environment": "workplace", "criteria": ["PC4"]}
        ),
        "record_questioning": lambda: Call(
            "POST", f"{p}/questioning", {"method": "Q", "criteria": ["K1"]}
        ),
        "record_decision": lambda: Call(
            "POST",
            f"{p}/decisions",
            {"outcome": "not_yet", "criteria": ["PC1"], "evidence_ids": [str(w.evidence)]},
        ),
        "countersign_decision": lambda: Call("POST", f"/decisions/{w.pending}/countersignatures"),
        "revoke_decision": lambda: Call(
            "POST", f"/decisions/{w.pending}/revocation", {"reason": "wrong unit"}
        ),
        "record_iqa_sample": lambda: Call(
            "POST",
            f"{p}/iqa-samples",
            {"stage": "interim", "decision_ids": [str(w.decision)], "outcome": "agreed"},
        ),
        "record_ev_sample": lambda: Call(
            "POST", f"{p}/ev-samples", {"decision_ids": [str(w.decision)], "outcome": "agreed"}
        ),
        # allowed, then refused by the domain: a qualified IQA's agreed sample
        "countersign_iqa_sample": lambda: Call(
            "POST", f"{p}/iqa-samples/{w.sample}/countersignatures"
        ),
        "respond_to_sample": lambda: Call(
            "POST", f"{p}/samples/{w.sample}/responses", {"response": "Done"}
        ),
        "accept_sample_response": lambda: Call("POST", f"{p}/samples/{w.sample}/acceptance"),
        "sign_off_unit": lambda: Call("POST", f"{p}/sign-off", {"feedback": "Well done"}),
        "open_appeal": lambda: Call("POST", f"{p}/appeals", {"reason": "The learner appeals"}),
        "approve_realistic_environment": lambda: Call(
            "POST", f"{a}/rwe-approvals", {"location": "Training kitchen"}
        ),
        "put_blob": lambda: Call("PUT", f"/blobs/{sha256(w.blob)}", content=w.blob),
        "get_blob": lambda: Call(
            "GET", f"/blobs/{sha256(w.blob)}", params={"centre_id": str(w.centre.id)}
        ),
        "issue_token": lambda: Call(
            "POST", "/tokens", {"role": "integrator", "centre_id": str(w.centre.id)}
        ),
        "revoke_token": lambda: Call("DELETE", f"/tokens/{w.token_id}"),
        "list_events": lambda: Call("GET", "/events"),
        # An allowed caller meets the handler's 400 rather than an endless stream.
        "stream_events": lambda: Call("GET", "/events/stream", params={"after": "-1"}),
        "create_webhook": lambda: Call("POST", "/webhooks", QUIET_WEBHOOK),
        "list_webhooks": lambda: Call("GET", "/webhooks"),
        "get_webhook": lambda: Call("GET", hook),
        "list_webhook_deliveries": lambda: Call("GET", f"{hook}/deliveries"),
        "redeliver_webhook": lambda: Call("POST", f"{hook}/redeliver", {"from_position": 1}),
        "update_webhook": lambda: Call("PATCH", hook, {"rate_limit_per_second": 5}),
        "rotate_webhook_secret": lambda: Call("POST", f"{hook}/rotate-secret", {}),
        "delete_webhook": lambda: Call("DELETE", hook),  # last: later calls would 404
        "create_lrs": lambda: Call("POST", "/lrs", QUIET_LRS),
        "list_lrs": lambda: Call("GET", "/lrs"),
        "get_lrs": lambda: Call("GET", f"/lrs/{w.lrs}"),
        "list_lrs_deliveries": lambda: Call("GET", f"/lrs/{w.lrs}/deliveries"),
        "delete_lrs": lambda: Call("DELETE", f"/lrs/{w.lrs}"),  # last: later calls would 404
        "issue_checkpoint": lambda: Call("POST", "/audit/checkpoints"),
        "list_checkpoints": lambda: Call("GET", "/audit/checkpoints"),
        "latest_checkpoint": lambda: Call("GET", "/audit/checkpoints/latest"),
        "get_public_key": lambda: Call("GET", "/audit/public-key"),
        "export_bundle": lambda: Call(
            "GET", "/audit/export", params={"centre_id": str(w.centre.id)}
        ),
        "audit_pack": lambda: Call(
            "GET", "/audit/pack", params={"portfolio_id": str(w.portfolio), "format": "html"}
        ),
        "ui_home": lambda: Call("GET", "/ui/"),
        "ui_go": lambda: Call("POST", "/ui/go", content=b"back=/ui/"),
        "ui_sign_out": lambda: Call("POST", "/ui/sign-out", content=b""),
        "ui_centre": lambda: Call("GET", f"/ui{a}"),
        "ui_centre_coverage_csv": lambda: Call("GET", f"/ui{a}/coverage.csv"),
        "ui_centre_decisions_csv": lambda: Call("GET", f"/ui{a}/decisions.csv"),
        "ui_trail": lambda: Call("GET", f"/ui{a}/trail"),
        "ui_portfolio": lambda: Call("GET", f"/ui{p}"),
        "ui_coverage_csv": lambda: Call("GET", f"/ui{p}/coverage.csv"),
        "ui_decisions_csv": lambda: Call("GET", f"/ui{p}/decisions.csv"),
        "ui_pack": lambda: Call(
            "GET", "/ui/pack", params={"portfolio_id": str(w.portfolio), "format": "html"}
        ),
        "ui_export": lambda: Call("GET", "/ui/export", params={"portfolio_id": str(w.portfolio)}),
    }


def send(api: Api, call: Call) -> httpx.Response:
    json = {} if call.json is None and call.method in ("POST", "PUT") else call.json
    if call.content is not None:
        json = None
    return api.request(call.method, call.path, json=json, content=call.content, params=call.params)


def rule_of(response: httpx.Response) -> str | None:
    if response.headers.get("content-type", "").startswith("application/problem+json"):
        rule = response.json().get("rule")
        return str(rule) if rule is not None else None
    return None


def readable(response: httpx.Response) -> str:
    """The answer as text; an export bundle's files, unpacked."""
    if response.headers.get("content-type", "").startswith("application/zip"):
        with zipfile.ZipFile(io.BytesIO(response.content)) as bundle:
            return "\n".join(bundle.read(name).decode() for name in bundle.namelist())
    return response.content.decode(errors="replace")


def named(call: Call) -> str:
    """Everything the request itself said: an answer may echo it (\"no decision X here\")."""
    return f"{call.path} {call.params} {call.json}"


def mirror(who: str) -> str:
    """The same person at the other centre: B's learner for A's, A's for B's."""
    if who == "admin":
        return who
    return who.removeprefix("b_") if who.startswith("b_") else f"b_{who}"


def outcome(status: int, rule: str | None) -> str:
    if status == 401:
        return "unauthenticated"
    if status == 403 and rule in POLICY_RULES:
        return "denied"
    if status == 404 and rule == "not_found":
        return "hidden"
    return "error" if status >= 500 else "allowed"


def test_every_route_has_one_row_here_and_in_the_policy(app: Litestar) -> None:
    routes = {
        handler.operation_id
        for route in app.routes
        for handler in route.route_handlers  # type: ignore[union-attr]
        if not route.path.startswith("/schema/")
        and route.path != "/schema"
        and route.path not in PUBLIC_PATHS  # the front door, sign-in form and stylesheet
        and handler.http_methods != {"OPTIONS"}
    }
    assert routes - PUBLIC_OPERATIONS == set(POLICY) == set(TABLE)
    assert routes >= PUBLIC_OPERATIONS
    assert not PUBLIC_OPERATIONS & set(POLICY)


def test_the_stream_contracts_are_public_and_say_so_in_the_openapi(
    client: TestClient[Litestar],
) -> None:
    """A schema registry fetches `dataschema` URLs and the AsyncAPI with no token at all."""
    paths = ("/schemas/events/uk.eportfolio.evidence.submitted.v1.json", "/asyncapi.json")
    for path in paths:
        response = client.get(path, headers={"Authorization": ""})
        assert response.status_code == 200, (path, response.text)
    assert "$id" in client.get(paths[0]).json()
    assert client.get(paths[1]).json()["asyncapi"] == "3.0.0"
    operations = client.get("/schema/openapi.json").json()["paths"]
    for path in ("/schemas/events/{name}", "/asyncapi.json"):
        assert operations[path]["get"]["security"] == [{}], path


def test_each_role_reaches_exactly_what_the_table_says_and_nothing_leaks(
    client: TestClient[Litestar],
) -> None:
    world = build_world(client)
    wrong: list[str] = []
    for side, name, seen_as in ((world.of_a, "A", str), (world.of_b, "B", mirror)):
        for operation, make in calls(side).items():
            allowed, hidden = TABLE[operation]
            response = send(world.api("admin").as_(None), make())
            if response.status_code != 401:
                wrong.append(f"{operation} without a token: {response.status_code}")
            for who in sorted(EVERYONE):
                call = make()
                response = send(world.api(who), call)
                status, rule, role = response.status_code, rule_of(response), seen_as(who)
                expected = (
                    "allowed" if role in allowed else "hidden" if role in hidden else "denied"
                )
                if outcome(status, rule) != expected:
                    problem = f"{status} {rule}, expected {expected}"
                    wrong.append(f"{operation} on {name}'s records as {who}: {problem}")
                if who == "admin":  # the awarding body's operator: over every centre
                    continue
                foreign = world.of_a if who.startswith("b_") else world.of_b
                text, asked = readable(response), named(call)
                leaked = sorted(i for i in foreign.ids() if i in text and i not in asked)
                if leaked:
                    wrong.append(f"{operation} on {name}'s records as {who} leaked {leaked}")
    assert wrong == []
