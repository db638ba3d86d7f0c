"""A portfolio's section of the pack, written in Python: the bytes the templates make.

A whole-log bundle's summary is thousands of centre pages, each with every portfolio's
matrix, chains and history; through the Jinja macros (`templates/_sheet.html`) that took
most of an export's time. This writes the same section (`pack.html`'s loop over the
portfolios, with the macros `facts`, `matrix`, `sufficiency`, `chains` and `history`) as
plain string building, escaped as the templates' autoescape does. The templates stay the
one the desk and live packs render; a test renders bundle pages both ways and compares the
bytes, so a change to the macros that is not made here too fails it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from functools import lru_cache
from uuid import UUID

from markupsafe import escape

from adapters.audit.pack.render import day, when, words
from adapters.audit.pack.sheet import MatrixRow, PortfolioSheet
from projections.audit import DecisionChain, SampleView, TrailEntry
from projections.sufficiency import SufficiencyReport

_WRAP = (
    '<div class="table-wrap" tabindex="0" role="region" '
    'aria-label="Table, scrolls sideways on narrow screens">'
)
_BAD_STATES = frozenset({"referred", "revoked", "pending_countersignature"})
_CACHED = 4_096


# A page repeats the same names, dates, words and states hundreds of times: each is
# escaped (and put in words) once, in small caches that do not grow with the bundle.
@lru_cache(maxsize=_CACHED, typed=True)
def _e(value: object) -> str:
    return str(escape(value))


@lru_cache(maxsize=_CACHED, typed=True)
def _yes(value: object, good: str = "yes", bad: str = "no") -> str:
    if value:
        return f'<span class="ok">{_e(good)}</span>'
    return f'<span class="bad">{_e(bad)}</span>'


@lru_cache(maxsize=_CACHED, typed=True)
def _day(value: date | None) -> str:
    return _e(day(value))


@lru_cache(maxsize=_CACHED, typed=True)
def _when(value: datetime | None) -> str:
    return _e(when(value))


@lru_cache(maxsize=_CACHED, typed=True)
def _words(value: object) -> str:
    return _e(words(value))


def portfolio_sections(sheets: Iterable[PortfolioSheet]) -> str:
    """`pack.html`'s sections of these portfolios, one after the other."""
    out: list[str] = []
    for sheet in sheets:
        _section(sheet, out)
    return "".join(out)


def _section(p: PortfolioSheet, out: list[str]) -> None:
    pid = str(p.portfolio_id)
    out.append(
        f'<section class="portfolio" id="portfolio-{pid}">\n'
        f"<h2>Portfolio: {_e(p.learner)}, {_e(p.unit_code)}</h2>\n"
        f'<p class="note mono">{pid}</p>\n'
    )
    _facts(p, out)
    out.append("\n")
    _matrix(p, pid, out)
    out.append("\n")
    _sufficiency(p.sufficiency, out)
    out.append("\n")
    _chains(p.chains, out)
    out.append("\n")
    if p.history:
        _history(p.history, out)
    out.append("</section>\n")


def _facts(p: PortfolioSheet, out: list[str]) -> None:
    out.append(
        '<dl class="facts">\n'
        f"  <dt>Learner</dt><dd>{_e(p.learner)}</dd>\n"
        f"  <dt>Unit</dt><dd>{_e(p.unit_code)} v{_e(p.spec_version)}: {_e(p.unit_title)}</dd>\n"
        f"  <dt>Centre</dt><dd>{_e(p.centre_name)}</dd>\n"
        f"  <dt>Assessor</dt><dd>{_e(p.assessor)}</dd>\n"
        f"  <dt>IQA</dt><dd>{_e(p.iqa)}</dd>\n"
        f"  <dt>Completion</dt><dd>{_e(p.met)} of {_e(p.total)} met; coverage "
        f"{_yes(p.coverage.complete, 'complete', 'not complete')}</dd>\n"
        f"  <dt>Sufficiency</dt><dd>{_yes(p.sufficiency.passed, 'passed', 'not passed')}</dd>\n"
    )
    if p.certified_on:
        out.append(f"<dt>Certified</dt><dd>{_day(p.certified_on)}</dd>")
    if p.withdrawn_on:
        out.append(f"<dt>Withdrawn</dt><dd>{_day(p.withdrawn_on)}</dd>")
    out.append("</dl>\n")
    if p.coverage.spec_note:
        out.append(f'<p class="note">{_e(p.coverage.spec_note)}</p>')


def _matrix(p: PortfolioSheet, pid: str, out: list[str]) -> None:
    out.append(
        f'<h3 id="matrix-{pid}">Coverage matrix</h3>\n'
        '<p class="note">One row per criterion, knowledge statement, range item and evidence'
        " requirement.\nChain: assessor → countersignature → IQA → EV.</p>\n"
        f"{_WRAP}\n"
        f'<table class="matrix" data-portfolio="{pid}">\n'
        f"  <caption>Coverage of {_e(p.unit_code)} for {_e(p.learner)}</caption>\n"
        "  <thead><tr>\n"
        '    <th scope="col">Id</th><th scope="col">Area</th><th scope="col">Status</th>\n'
        '    <th scope="col">Evidence (method, date, environment, recorded by)</th>\n'
        '    <th scope="col">Observed</th><th scope="col">Decision and chain</th>'
        '<th scope="col">Gap</th>\n'
        "  </tr></thead>\n"
        "  <tbody>\n"
    )
    said: dict[UUID, str] = {}  # a decision's chain, in words, once for all its rows
    out.extend(_row(row, said) for row in p.rows)
    out.append("  </tbody>\n</table>\n</div>\n")
    coverage = p.coverage
    if coverage.range:
        met = _yes(coverage.range.rule_met, "rule met", "rule not met")
        out.append(f"<p>Range: {_e(coverage.range.summary)} — {met}</p>")
    if coverage.gaps:
        gaps = "".join(f"<li>{_e(g)}</li>" for g in coverage.gaps)
        out.append(f'<h4>Open gaps</h4>\n<ul class="gaps">{gaps}</ul>\n')


def _row(row: MatrixRow, said: dict[UUID, str]) -> str:
    c = row.criterion
    cid = _e(c.id)
    status = _words(c.status)
    text = f'<br><span class="note">{_e(row.text)}</span>' if row.text else ""
    area = _words(c.area)
    if c.must_observe:
        area += '<br><span class="warn">must be observed</span>'
    if c.inferable is not None:
        inferred = "may be inferred" if c.inferable else "may not be inferred"
        area += f'<br><span class="note">{inferred}</span>'
    if row.evidence:
        items = "".join(
            f"      <li>{_e(ev.method)}, {_day(ev.effective_on)}, {_e(ev.environment)}, "
            f"{_e(ev.recorded_by)}"
            + (
                ' <span class="bad">(withdrawn)</span>'
                if ev.withdrawn
                else ("" if ev.counts else ' <span class="bad">(does not count here)</span>')
            )
            + "</li>\n"
            for ev in row.evidence
        )
        evidence = f'<ul class="cell">{items}</ul>'
    else:
        evidence = "none"
    if c.observed:
        observed = '<span class="ok">observed</span>'
    elif c.inferred:
        observed = "inferred"
    elif c.must_observe:
        observed = '<span class="bad">not observed</span>'
    else:
        observed = "no"
    if row.decision is None:
        decision = "none"
    elif (decision := said.get(row.decision.decision_id, "")) == "":
        decision = said[row.decision.decision_id] = _chain_words(row.decision)
    if c.gaps:
        gaps = '<ul class="cell">' + "".join(f"<li>{_e(g)}</li>" for g in c.gaps) + "</ul>"
    else:
        gaps = '<span class="ok">none</span>'
    return (
        f'  <tr data-criterion="{cid}" data-complete="{"true" if c.complete else "false"}"'
        f' data-status="{_e(c.status.value)}">\n'
        f'    <th scope="row">{cid}{text}</th>\n'
        f"    <td>{area}</td>\n"
        f"    <td>{_yes(c.complete, status, status)}</td>\n"
        f"    <td>{evidence}</td>\n"
        f"    <td>{observed}</td>\n"
        f"    <td>{decision}</td>\n"
        f"    <td>{gaps}</td>\n"
        "  </tr>\n"
    )


def _chain_words(chain: DecisionChain) -> str:
    trainee = chain.assessor.qualification.value == "trainee"
    if chain.countersignature:
        counter = _e(chain.countersignature.name)
    elif trainee:
        counter = '<span class="bad">not countersigned</span>'
    else:
        counter = "not needed"
    iqa = "; ".join(
        f"{_e(s.actor_name)} {_words(s.outcome)}"
        + ("" if s.counts else " (awaiting countersignature)")
        for s in chain.iqa_samples
    )
    ev = "; ".join(f"{_e(s.actor_name)} {_words(s.outcome)}" for s in chain.ev_samples)
    lapsed = (
        f' — <span class="bad">lapsed for {_e(", ".join(chain.lapsed))}</span>'
        if chain.lapsed
        else ""
    )
    return (
        f'<span class="mono">{_e(str(chain.decision_id)[:8])}</span> {_words(chain.outcome)} '
        f"{_day(chain.decided_on)}:\n"
        f"{_e(chain.assessor.name)}{' (trainee)' if trainee else ''}"
        f"→ {counter}"
        f"→ IQA: {iqa or 'not sampled'}"
        f"→ EV: {ev or 'not sampled'}"
        f'<br><strong class="{_state_class(chain)}">{_words(chain.state)}</strong>{lapsed}'
    )


def _state_class(chain: DecisionChain) -> str:
    return "bad" if chain.state.value in _BAD_STATES else "ok"


def _sufficiency(report: SufficiencyReport, out: list[str]) -> None:
    f = report.figures
    note = f" ({_e(report.policy_note)})" if report.policy_note else ""
    span = f", {_day(f.first_on)} to {_day(f.last_on)}" if f.first_on else ""
    out.append(
        "<h3>Sufficiency over time</h3>\n"
        f"<p>{_yes(report.passed, 'Passed', 'Not passed')}. Policy version "
        f"{_e(report.policy_version)}{note}.</p>\n"
        f'{_WRAP}<table class="sufficiency">\n'
        f"  <caption>Figures against the policy ({_e(f.evidence_count)} pieces of evidence "
        f"counted{span})</caption>\n"
        '  <thead><tr><th scope="col">Figure</th><th scope="col">Value</th>'
        '<th scope="col">Minimum</th><th scope="col">Passed</th></tr></thead>\n'
        "  <tbody>\n"
    )
    for label, fig in (
        ("Occasions", f.occasions),
        ("Distinct dates", f.distinct_dates),
        ("Distinct customers", f.distinct_customers),
        ("Span in days", f.span_days),
    ):
        out.append(
            f'  <tr><th scope="row">{label}</th><td class="num">{_e(fig.value)}</td>'
            f'<td class="num">{_e(fig.minimum)}</td><td>{_yes(fig.passed)}</td></tr>\n'
        )
    out.append("  </tbody>\n</table></div>\n")
    if report.reasons:
        reasons = "".join(f"<li>{_e(r)}</li>" for r in report.reasons)
        out.append(f"<p>Why it did not pass:</p><ul>{reasons}</ul>\n")
    else:
        out.append("<p>Why it passed: every figure meets the policy's minimum.</p>")


def _chains(chains: tuple[DecisionChain, ...], out: list[str]) -> None:
    out.append("<h3>Decisions and their signature chains</h3>\n")
    if not chains:
        out.append("<p>No decisions recorded.</p>")
        return
    out.append(
        f'{_WRAP}<table class="decisions">\n'
        f"  <caption>{len(chains)} decisions</caption>\n"
        '  <thead><tr><th scope="col">Decision</th><th scope="col">Decided</th>'
        '<th scope="col">Outcome</th><th scope="col">Criteria</th><th scope="col">Assessor</th>'
        '<th scope="col">Countersignature</th><th scope="col">IQA</th><th scope="col">EV</th>'
        '<th scope="col">State</th></tr></thead>\n'
        "  <tbody>\n"
    )
    for chain in chains:
        assessor = chain.assessor
        counter = chain.countersignature
        if counter:
            signed = f"{_e(counter.name)}, {_when(counter.signed_at)}"
        elif assessor.qualification.value == "trainee":
            signed = '<span class="bad">awaited</span>'
        else:
            signed = "not needed"
        lapsed = (
            f'<br><span class="bad">lapsed for {_e(", ".join(chain.lapsed))}</span>'
            if chain.lapsed
            else ""
        )
        out.append(
            f'  <tr data-decision="{chain.decision_id}" data-state="{_e(chain.state.value)}">\n'
            f'    <th scope="row" class="mono">{_e(str(chain.decision_id)[:8])}</th>\n'
            f"    <td>{_day(chain.decided_on)}</td><td>{_words(chain.outcome)}</td>\n"
            f"    <td>{_e(', '.join(chain.criteria))}</td>\n"
            f"    <td>{_e(assessor.name)} ({_words(assessor.qualification)}), "
            f"{_when(assessor.signed_at)}</td>\n"
            f"    <td>{signed}</td>\n"
            f"    <td>{_iqa(chain.iqa_samples) or 'not sampled'}</td>\n"
            f"    <td>{_ev(chain.ev_samples) or 'not sampled'}</td>\n"
            f'    <td><strong class="{_state_class(chain)}">{_words(chain.state)}</strong>'
            f"{lapsed}</td>\n"
            "  </tr>\n"
        )
    out.append("  </tbody>\n</table></div>\n")


def _iqa(samples: tuple[SampleView, ...]) -> str:
    return "<br>".join(
        f"{_e(s.actor_name)}: {_words(s.outcome)}"
        + (f" ({_words(s.stage)})" if s.stage else "")
        + f", {_when(s.recorded_at)}"
        + ("" if s.counts else ' <span class="bad">awaiting countersignature</span>')
        for s in samples
    )


def _ev(samples: tuple[SampleView, ...]) -> str:
    return "<br>".join(
        f"{_e(s.actor_name)}: {_words(s.outcome)}, {_when(s.recorded_at)}"
        + (f" ({_e(s.actions)} actions{', closed' if s.accepted else ''})" if s.actions else "")
        for s in samples
    )


def _history(entries: tuple[TrailEntry, ...], out: list[str]) -> None:
    out.append(
        "<h3>History</h3>\n"
        f'{_WRAP}<table class="history">\n'
        f"  <caption>{len(entries)} events, in the order they were recorded</caption>\n"
        '  <thead><tr><th scope="col">Position</th><th scope="col">Recorded</th>'
        '<th scope="col">Effective</th><th scope="col">Who</th><th scope="col">What</th>'
        "</tr></thead>\n"
        "  <tbody>\n"
    )
    out.extend(
        f'  <tr><th scope="row" class="num">{t.position}</th><td>{_when(t.recorded_at)}</td>'
        f"<td>{_day(t.effective_on)}</td><td>{_e(t.actor_name)} ({_words(t.actor_role)})</td>"
        f"<td>{_e(t.summary)}</td></tr>\n"
        for t in entries
    )
    out.append("  </tbody>\n</table></div>\n")
