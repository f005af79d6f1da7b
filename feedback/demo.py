"""The voice-of-the-customer part of ``seed_demo`` (registered from ``FeedbackConfig.ready``, order 30: after
health, which imports the NPS history the health engine reads).

Deterministic for a seed and a day. It makes:

- three surveys: *Quarterly NPS* (recurring every 13 weeks to the High touch segment), *Support CSAT*
  (monthly to the Low touch segment) and *Onboarding effort (CES)* (one account, once);
- for up to 300 accounts, the last two quarterly NPS runs (invitations sent, ~45 % answered on the survey
  page, the rest unanswered or expired; NPS scores lean on the live term's NPS profile of
  :mod:`accounts.demo_risk`, like health's imported NPS history) and a year of CSAT and CES answers,
  each answered response attached to its survey, send and invitation;
- realistic verbatims: a comment on most answered responses and on a third of health's imported NPS rows,
  worded for the response's category (detractor, passive, promoter), so the detractor list and the
  verbatim search have something to show.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta

from accounts.demo_risk import period_risk, signal_profiles
from accounts.models import Contact, Contract, Organization, Segment

from .models import (
    InvitationStatus,
    ResponseSource,
    SendSchedule,
    SendStatus,
    Survey,
    SurveyInvitation,
    SurveyResponse,
    SurveySend,
    response_category,
)

SAMPLE_ACCOUNTS = 300

VERBATIMS = {
    "promoter": [
        "The health dashboards changed how our team runs QBRs. Worth every cent.",
        "Onboarding was smooth and our CSM knows our business better than some of our own managers.",
        "Support answers within the hour, every time. That is rare.",
        "We rolled it out to three more teams this quarter because people actually like using it.",
        "The API is clean and the docs are honest. Our data team was up and running in a day.",
        "Reporting used to take me a full day each month; now it takes twenty minutes.",
        "Great product, great people. The new workflow builder is exactly what we asked for.",
    ],
    "passive": [
        "Solid product, but the mobile experience still lags behind the desktop one.",
        "Does what we need. Pricing for additional seats feels steep as we grow.",
        "Good overall; the reporting exports could be more flexible.",
        "Support is friendly but escalations to engineering take too long.",
        "We like it, but the last two releases changed the navigation without warning.",
        "It works well for our core team; adoption in the regional offices is still patchy.",
    ],
    "detractor": [
        "Support takes days to answer and tickets get closed without a fix.",
        "The SSO outage last month cost us a full day of work and nobody told us what happened.",
        "We were promised the Salesforce integration in Q2. It is still not there.",
        "Renewal pricing jumped 30% with no new value that we can see.",
        "Billing is confusing: we were invoiced twice for the same seats.",
        "Performance on large reports is unacceptable: exports time out every week.",
        "Our CSM changed three times this year; we have to explain our setup again each time.",
        "Too many bugs after the last update. Our admins have lost trust in releases.",
    ],
}
CSAT_VERBATIMS = {
    "promoter": ["Quick and friendly fix, thank you!", "Resolved in one reply. Perfect.", "Very clear explanation."],
    "passive": ["Fixed, but it took a few back-and-forths.", "OK, though I had to chase for an update."],
    "detractor": ["Nobody read my ticket properly.", "Closed without solving the problem.", "Waited four days."],
}
CES_VERBATIMS = {
    "promoter": ["Setup was straightforward.", "The import wizard made it easy."],
    "passive": ["Mostly easy; the permissions step was confusing."],
    "detractor": ["Connecting our CRM took weeks and three calls.", "The data import kept failing on dates."],
}


def wipe(organization: Organization) -> None:
    """Delete the organization's invitations, sends and surveys before its accounts go (health's wipe has
    already deleted the responses)."""
    for model in (SurveyInvitation, SurveySend, Survey):
        model.all_orgs.filter(organization_id=organization.pk)._raw_delete(model.all_orgs.db)


def _moment(day: date, rng: random.Random) -> datetime:
    return datetime.combine(day, time(rng.randint(7, 19), rng.randint(0, 59)), tzinfo=UTC)


def _digest(text: str) -> str:
    # Demo invitations carry a hash no token was ever made for: their links cannot be answered.
    return hashlib.sha256(f"demo:{text}".encode()).hexdigest()


#: NPS answer weights (scores 0–10) by the live term's NPS profile (accounts.demo_risk; docs/demo.md).
NPS_WEIGHTS = {
    "healthy": (1, 0, 1, 1, 1, 2, 3, 10, 16, 26, 28),
    "at_risk": (2, 1, 3, 3, 5, 7, 9, 16, 16, 12, 8),
    "critical": (8, 5, 7, 8, 9, 10, 10, 8, 5, 3, 2),
}


def _nps_profiles(organization: Organization, seed: int, today: date) -> dict[int, str]:
    """account id → the NPS profile of its live term (the latent risk health's signals also follow)."""
    out: dict[int, str] = {}
    for account_id, number, external_id in (
        Contract.objects.for_org(organization)
        .filter(start_date__lte=today, end_date__gte=today)
        .exclude(status="cancelled")
        .order_by("account_id", "start_date", "id")
        .values_list("account_id", "number", "account__external_id")
    ):
        out[account_id] = signal_profiles(seed, number, period_risk(seed, external_id or "", number))["nps"]
    return out


def _score(rng: random.Random, kind: str, profile: str | None = None) -> int:
    if kind == "nps":
        weights = NPS_WEIGHTS[profile] if profile else (2, 1, 2, 2, 3, 4, 6, 12, 16, 22, 20)
        return rng.choices(range(11), weights=weights)[0]
    if kind == "csat":
        return rng.choices(range(1, 6), weights=(5, 6, 12, 35, 42))[0]
    return rng.choices(range(1, 8), weights=(3, 4, 7, 12, 25, 30, 19))[0]


def seed(
    organization: Organization, *, seed: int, today: date, log: Callable[[str], None] | None = None
) -> dict[str, int]:
    """accounts.demo.seed_demo's hook: surveys, sends, invitations, answered responses and verbatims."""
    rng = random.Random(f"{seed}:feedback")
    org_id = organization.pk
    if log:
        log("  surveys and verbatims…")

    # Verbatims on a third of the imported NPS history (health's rows), worded for their category.
    commented = []
    for response in SurveyResponse.objects.for_org(org_id).filter(kind="nps", comment="").order_by("pk"):
        if rng.random() < 0.33:
            response.comment = rng.choice(VERBATIMS[response_category("nps", response.score)])
            commented.append(response)
    SurveyResponse.all_orgs.bulk_update(commented, ["comment"], batch_size=1000)

    body = ("Hi {{ contact.first_name }},\n\nYour opinion shapes what we build next, and it takes one click.\n\n"
            "Thank you,\n{{ csm.name }}")  # fmt: skip
    nps = Survey.all_orgs.create(
        organization_id=org_id, name="Quarterly NPS", kind="nps",
        question=f"How likely are you to recommend {organization.name} to a friend or colleague?",
        comment_question="What is the main reason for your score?",
        email_subject="{{ account.name }} × " + organization.name + ": one quick question", email_body=body,
    )  # fmt: skip
    csat = Survey.all_orgs.create(
        organization_id=org_id, name="Support CSAT", kind="csat",
        question="How satisfied are you with the support you received?",
        comment_question="What could we have done better?", email_subject="How did we do?", email_body=body,
    )  # fmt: skip
    ces = Survey.all_orgs.create(
        organization_id=org_id, name="Onboarding effort (CES)", kind="ces",
        question=f"{organization.name} made it easy for me to get set up.",
        comment_question="What was the hardest part?", email_subject="Was getting started easy?", email_body=body,
    )  # fmt: skip

    segments = {s.name: s for s in Segment.objects.for_org(org_id)}
    now = _moment(today, rng)
    contacts = list(
        Contact.objects.for_org(org_id)
        .filter(is_active=True, departed_at__isnull=True, unsubscribed=False)
        .exclude(email="")
        .order_by("account_id", "pk")
        .values_list("pk", "account_id")
    )
    accounts = sorted({a for _c, a in contacts})
    sample = set(rng.sample(accounts, min(SAMPLE_ACCOUNTS, len(accounts))))
    people = [(c, a) for c, a in contacts if a in sample]

    nps_send = SurveySend.all_orgs.create(
        organization_id=org_id, survey=nps, segment=segments.get("High touch"), schedule=SendSchedule.RECURRING,
        interval_weeks=13, drip_days=3, status=SendStatus.ACTIVE, run_count=2, source="manual",
        last_run_at=now - timedelta(days=40), next_run_at=now - timedelta(days=40) + timedelta(weeks=13),
    )  # fmt: skip
    csat_send = SurveySend.all_orgs.create(
        organization_id=org_id, survey=csat, segment=segments.get("Low touch"), schedule=SendSchedule.RECURRING,
        interval_weeks=4, status=SendStatus.ACTIVE, run_count=12, source="manual",
        last_run_at=now - timedelta(days=10), next_run_at=now + timedelta(days=18),
    )  # fmt: skip
    ces_send = SurveySend.all_orgs.create(
        organization_id=org_id, survey=ces, account_id=accounts[0] if accounts else None, status=SendStatus.DONE,
        run_count=1, source="manual", last_run_at=now - timedelta(days=120),
    )  # fmt: skip

    nps_profiles = _nps_profiles(organization, seed, today)
    invitations: list[SurveyInvitation] = []
    answers: list[tuple[SurveyInvitation, int, str]] = []

    def invite(send: SurveySend, survey: Survey, run: int, contact: int, account: int, sent: datetime,
               rate: float, verbatims: dict[str, list[str]]) -> None:  # fmt: skip
        invitation = SurveyInvitation(
            organization_id=org_id, send=send, survey=survey, account_id=account, contact_id=contact, run=run,
            status=InvitationStatus.SENT, scheduled_for=sent, sent_at=sent, expires_at=sent + timedelta(days=30),
            token_hash=_digest(f"{org_id}:{send.pk}:{run}:{contact}"),
        )  # fmt: skip
        invitations.append(invitation)
        if sent + timedelta(days=3) <= now and rng.random() < rate:
            score = _score(rng, survey.kind, nps_profiles.get(account))
            category = response_category(survey.kind, score)
            comment = rng.choice(verbatims[category]) if rng.random() < 0.7 else ""
            invitation.status = InvitationStatus.RESPONDED
            invitation.used_at = sent + timedelta(hours=rng.randint(1, 70))
            answers.append((invitation, score, comment))

    # The last two quarterly NPS runs (40 and 131 days ago) to the sampled high-touch contacts.
    for run, days_ago in ((1, 131), (2, 40)):
        for contact, account in people[: len(people) // 2]:
            sent = now - timedelta(days=days_ago) + timedelta(hours=rng.randint(0, 72))
            invite(nps_send, nps, run, contact, account, sent, 0.45, VERBATIMS)
    # A year of monthly CSAT to the other half, a few contacts each month.
    others = people[len(people) // 2 :]
    for run in range(1, 13):
        for contact, account in rng.sample(others, min(len(others), 25)):
            sent = now - timedelta(days=30 * (12 - run) + 10) + timedelta(hours=rng.randint(0, 48))
            invite(csat_send, csat, run, contact, account, sent, 0.5, CSAT_VERBATIMS)
    # CES: onboarding accounts over the year.
    for contact, account in people[:60]:
        sent = now - timedelta(days=rng.randint(5, 360))
        invite(ces_send, ces, 1, contact, account, sent, 0.55, CES_VERBATIMS)
    # One run per (send, run, contact): later duplicates of a sampled contact are dropped.
    unique: dict[tuple[int, int, int], SurveyInvitation] = {}
    for invitation in invitations:
        unique.setdefault((invitation.send_id, invitation.run, invitation.contact_id), invitation)
    SurveyInvitation.all_orgs.bulk_create(list(unique.values()), batch_size=1000)
    kept = {id(inv) for inv in unique.values()}
    responses = [
        SurveyResponse(
            organization_id=org_id,
            account_id=inv.account_id,
            contact_id=inv.contact_id,
            kind=inv.survey.kind,
            score=score,
            comment=comment,
            responded_at=inv.used_at,
            source=ResponseSource.SURVEY,
            survey=inv.survey,
            send=inv.send,
            invitation=inv,
        )  # fmt: skip
        for inv, score, comment in answers
        if id(inv) in kept
    ]
    SurveyResponse.all_orgs.bulk_create(responses, batch_size=1000)
    return {
        "surveys": 3,
        "survey_sends": 3,
        "survey_invitations": len(unique),
        "survey_answers": len(responses),
        "verbatims": len(commented) + sum(1 for r in responses if r.comment),
    }
