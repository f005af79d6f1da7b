"""Survey services (spec §6, issue 13 §1): sends and their runs, throttling, invitation tokens, the answer
from the public page, responses created through the API, and the playbook enrolment.

**Tokens.** Each sent invitation gets ``secrets.token_urlsafe(32)`` (256 random bits): only its SHA-256
is stored (``SurveyInvitation.token_hash``, unique). The public page hashes the token of its URL and
looks the hash up: an equality on a digest, so no timing of a string comparison reveals a prefix of a
stored secret. A token is usable once (``used_at``), until ``expires_at`` (``SurveySettings.link_days``
after sending). A token that is not 43 URL-safe characters is refused before any query.

**Throttle.** A contact is *surveyed* when an invitation is scheduled or sent to them, or a response of
theirs is recorded (imported or answered). A run skips (reason ``throttled``) every contact surveyed in
the ``SurveySettings.throttle_days`` (90) days before the run's moment; it also skips the unsubscribed,
the departed or inactive and those without an address (:func:`accounts.mailing.contact_skip_reason`).
Every contact considered is an invitation row: sent/scheduled, or skipped with its reason. An organization's
runs never overlap (a transaction-scoped advisory lock on Postgres, :func:`serialize_runs`): two at once
would both find a contact not yet surveyed and both invite them.

**Runs.** A send runs once, or every ``interval_weeks`` (``next_run_at`` moves on by that many weeks from
the due moment, so a late beat does not drift the schedule). With ``drip_days`` a run's invitations are
spread evenly over that many days (``scheduled_for``) and go out as they fall due
(:func:`deliver_due_invitations`, called by the beat and right after each run; one transaction per email,
so a mail server failing midway never un-sends what went out, and the next pass resumes with the rest). A
run is idempotent:
its invitations are unique per (send, run, contact), and a run already done is not done again.

**Responses.** :func:`answer_invitation` (the page) and :func:`create_response` (the API) write a
:class:`~feedback.models.SurveyResponse` and record the ``survey.response`` domain event in the same
transaction; CSV imports record no event (history must not fire playbooks).
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Count, Max, Q
from django.urls import reverse
from django.utils import timezone

from accounts.mailing import contact_skip_reason, unsubscribe_url
from accounts.models import Account, Contact, Organization, Segment
from cs_platform.audit import record_audit
from cs_platform.events import record_event

from .emails import merge_values, render_invitation
from .models import (
    SCORE_RANGES,
    InvitationStatus,
    ResponseSource,
    SendSchedule,
    SendStatus,
    Survey,
    SurveyInvitation,
    SurveyResponse,
    SurveySend,
    SurveySettings,
    response_category,
)

__all__ = [
    "THROTTLED",
    "AnswerError",
    "RunResult",
    "answer_invitation",
    "create_response",
    "deliver_due_invitations",
    "enrol_account",
    "find_survey",
    "hash_token",
    "lookup_invitation",
    "response_payload",
    "run_due_sends",
    "run_send",
    "send_counts",
    "cancel_send",
    "can_cancel",
    "CANCELLED",
    "start_send",
    "queue_runs",
    "serialize_runs",
    "survey_settings",
]

logger = logging.getLogger(__name__)

THROTTLED = "throttled"
CANCELLED = "cancelled"  # skip reason of the drip emails a cancelled send (or deactivated survey) never sent
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")


def survey_settings(organization_id: int) -> SurveySettings:
    """The organization's survey settings (made with the defaults on first use)."""
    found = SurveySettings.objects.for_org(organization_id).first()
    if found is not None:
        return found
    try:
        with transaction.atomic():
            return SurveySettings.objects.for_org(organization_id).create(organization_id=organization_id)
    except IntegrityError:  # made meanwhile by another request
        return SurveySettings.objects.for_org(organization_id).get()


# --- Tokens -----------------------------------------------------------------------------------------


def new_token() -> tuple[str, str]:
    """A fresh token and its SHA-256 hex digest (the only part stored)."""
    token = secrets.token_urlsafe(32)
    return token, hash_token(token)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Lookup:
    """What a token names: ``state`` is ``open``, ``used``, ``revoked``, ``expired`` or ``unknown``."""

    state: str
    invitation: SurveyInvitation | None = None


def lookup_invitation(token: str, *, now: datetime | None = None, lock: bool = False) -> Lookup:
    """The invitation of ``token`` and whether it may still be answered (any organization: the token is the
    credential). Malformed tokens are ``unknown`` without a query."""
    if not isinstance(token, str) or not TOKEN_RE.match(token):
        return Lookup("unknown")
    rows = SurveyInvitation.all_orgs.select_related("survey", "organization")
    if lock:
        rows = rows.select_for_update(of=("self",))
    invitation = rows.filter(token_hash=hash_token(token)).first()
    if invitation is None:
        return Lookup("unknown")
    if invitation.used_at is not None:
        return Lookup("used", invitation)
    if invitation.revoked_at is not None:
        return Lookup("revoked", invitation)
    if invitation.expires_at is None or invitation.expires_at <= (now or timezone.now()):
        return Lookup("expired", invitation)
    return Lookup("open", invitation)


class AnswerError(Exception):
    """The answer could not be recorded: ``state`` (``used``, ``expired``, ``unknown``) or a bad score."""

    def __init__(self, state: str, message: str = "") -> None:
        super().__init__(message or state)
        self.state = state


def _check_score(kind: str, score: Any) -> int:
    low, high = SCORE_RANGES[kind]
    try:
        value = int(str(score).strip())
    except (TypeError, ValueError):
        raise AnswerError("invalid", f"Choose a score from {low} to {high}.") from None
    if not low <= value <= high:
        raise AnswerError("invalid", f"Choose a score from {low} to {high}.")
    return value


def answer_invitation(token: str, score: Any, comment: str = "", *, now: datetime | None = None) -> SurveyResponse:
    """Record the answer of the invitation named by ``token`` and use the token up (one transaction, the
    invitation row locked, so two simultaneous posts record one answer). Raises :class:`AnswerError`."""
    now = now or timezone.now()
    with transaction.atomic():
        found = lookup_invitation(token, now=now, lock=True)
        if found.state != "open":
            raise AnswerError(found.state)
        invitation = found.invitation
        assert invitation is not None
        value = _check_score(invitation.survey.kind, score)
        response = SurveyResponse.all_orgs.create(
            organization_id=invitation.organization_id, account_id=invitation.account_id,
            contact_id=invitation.contact_id, kind=invitation.survey.kind, score=value,
            comment=(comment or "").strip()[:5000], responded_at=now, source=ResponseSource.SURVEY,
            survey_id=invitation.survey_id, send_id=invitation.send_id, invitation=invitation,
        )  # fmt: skip
        SurveyInvitation.all_orgs.filter(pk=invitation.pk).update(used_at=now, status=InvitationStatus.RESPONDED)
        record_response_event(response)
    return response


def response_payload(response: SurveyResponse) -> dict[str, Any]:
    """The ``survey.response`` event payload (docs/events.md)."""
    account = response.account
    return {
        "id": response.pk,
        "kind": response.kind,
        "score": response.score,
        "category": response_category(response.kind, response.score),
        "comment": response.comment,
        "responded_at": response.responded_at,
        "source": response.source,
        "survey": response.survey_id,
        "send": response.send_id,
        "contact": response.contact_id,
        "account": response.account_id,
        "account_external_id": account.external_id,
        "account_name": account.name,
    }


def record_response_event(response: SurveyResponse) -> None:
    record_event(response.organization_id, "survey.response", response.pk, response_payload(response))


def create_response(organization_id: int, **values: Any) -> SurveyResponse:
    """A response written through the API (source ``api``), with its ``survey.response`` event."""
    with transaction.atomic():
        response = SurveyResponse.objects.for_org(organization_id).create(
            organization_id=organization_id, source=ResponseSource.API, **values
        )
        record_response_event(response)
    return response


# --- Sends --------------------------------------------------------------------------------------------


@dataclass
class RunResult:
    """What one run did: invitations made (scheduled or sent) and contacts skipped by reason."""

    invited: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    delivered: int = 0
    already_done: bool = False


SEGMENT_DELETED = "The segment of this send was deleted: nobody was surveyed."


def _target_accounts(send: SurveySend) -> tuple[list[int], str]:
    """The accounts a run surveys, and why there are none when the target is broken (else "")."""
    org_id = send.organization_id
    if send.account_id is not None:
        return [send.account_id], ""
    segment = None if send.segment_id is None else Segment.objects.for_org(org_id).filter(pk=send.segment_id).first()
    if segment is None:  # the segment was deleted (SET_NULL) or is gone
        return [], SEGMENT_DELETED
    from accounts.segments import SegmentRuleError, compile_rules

    try:
        condition = compile_rules(segment.rules)
    except SegmentRuleError as exc:
        return [], f"The rules of segment “{segment.name}” no longer compile ({exc}): nobody was surveyed."[:300]
    return list(Account.objects.for_org(org_id).filter(condition).values_list("id", flat=True)), ""


def _target_contacts(send: SurveySend) -> tuple[list[Contact], str]:
    accounts, problem = _target_accounts(send)
    wanted = set(send.roles or [])
    rows = Contact.objects.for_org(send.organization_id).filter(account_id__in=accounts).order_by("account_id", "pk")
    return [c for c in rows if not wanted or wanted & set(c.roles or [])], problem


def surveyed_since(organization_id: int, contact_ids: Iterable[int], since: datetime) -> set[int]:
    """The contacts surveyed at or after ``since``: invited (scheduled or sent) or with a response."""
    ids = list(contact_ids)
    invited = SurveyInvitation.objects.for_org(organization_id).filter(
        contact_id__in=ids, scheduled_for__gte=since,
        status__in=(InvitationStatus.SCHEDULED, InvitationStatus.SENT, InvitationStatus.RESPONDED),
    ).values_list("contact_id", flat=True)  # fmt: skip
    answered = (
        SurveyResponse.objects.for_org(organization_id)
        .filter(contact_id__in=ids, responded_at__gte=since)
        .values_list("contact_id", flat=True)
    )
    return set(invited) | set(answered)


#: The first key of the transaction-scoped advisory lock that serializes an organization's runs (the second
#: is the organization's id): a stable number of our own, so no other lock of the database shares it.
RUN_LOCK_KEY = zlib.crc32(b"retain.feedback.run_send") & 0x7FFFFFFF


def serialize_runs(organization_id: int) -> None:
    """Wait until no other transaction is running a send of this organization, and hold that turn until the
    caller's transaction ends (``pg_advisory_xact_lock``). Two runs at once (the beat and a playbook's
    enrolment, two workers) would otherwise both read "not surveyed in 90 days" for the same contact and
    both invite them: with the lock the second reads after the first committed, and throttles. SQLite
    (development) has a single writer: nothing to do."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [RUN_LOCK_KEY, organization_id])


def run_send(send: SurveySend, *, now: datetime | None = None, deliver: bool = True) -> RunResult:
    """Do the send's due run (its first, or the next recurring one) at ``now``; see the module docstring.

    A send that is not due (cancelled, done, or ``next_run_at`` in the future) does nothing and answers
    ``already_done``. Delivery of the run's due invitations follows (``deliver=False`` leaves it to the beat).
    Runs of one organization are serialized (:func:`serialize_runs`), so the throttle holds under concurrency."""
    now = now or timezone.now()
    result = RunResult()
    with transaction.atomic():
        serialize_runs(send.organization_id)
        send = SurveySend.all_orgs.select_for_update().select_related("survey").get(pk=send.pk)
        due = send.status in (SendStatus.SCHEDULED, SendStatus.ACTIVE) and (
            send.next_run_at is None or send.next_run_at <= now
        )
        if not due or not send.survey.active:
            result.already_done = True
            return result
        org_id = send.organization_id
        run = send.run_count + 1
        moment = send.next_run_at or now
        contacts, problem = _target_contacts(send)
        config = survey_settings(org_id)
        recent = surveyed_since(org_id, [c.pk for c in contacts], moment - timedelta(days=config.throttle_days))
        today = timezone.localdate(now)
        eligible: list[Contact] = []
        rows: list[SurveyInvitation] = []
        for contact in contacts:
            reason = contact_skip_reason(contact, today) or (THROTTLED if contact.pk in recent else None)
            if reason:
                result.skipped[reason] = result.skipped.get(reason, 0) + 1
                rows.append(_invitation(send, contact, run, InvitationStatus.SKIPPED, now, reason))
            else:
                eligible.append(contact)
        spread = timedelta(days=send.drip_days) / len(eligible) if send.drip_days and eligible else timedelta(0)
        for index, contact in enumerate(eligible):
            rows.append(_invitation(send, contact, run, InvitationStatus.SCHEDULED, now + spread * index))
        result.invited = len(eligible)
        SurveyInvitation.all_orgs.bulk_create(rows, ignore_conflicts=True)
        send.run_count = run
        send.last_run_at = now
        send.problem = problem
        if problem == SEGMENT_DELETED and send.schedule == SendSchedule.RECURRING:
            # Its segment is gone: no later run could survey anyone; the admin sees why on the send.
            send.next_run_at, send.status = None, SendStatus.CANCELLED
            send.problem = f"{SEGMENT_DELETED} The recurring send was cancelled."
        elif send.schedule == SendSchedule.RECURRING and send.interval_weeks:
            step = timedelta(weeks=send.interval_weeks)
            following = moment + step
            while following <= now:  # a beat that was down for weeks runs once, then keeps the rhythm
                following += step
            send.next_run_at, send.status = following, SendStatus.ACTIVE
        else:
            send.next_run_at, send.status = None, SendStatus.DONE
        send.save(update_fields=["run_count", "last_run_at", "next_run_at", "status", "problem"])
    if deliver:
        result.delivered = deliver_due_invitations(send.organization_id, now=now, send_id=send.pk)
    return result


def _invitation(
    send: SurveySend, contact: Contact, run: int, status: str, when: datetime, reason: str = ""
) -> SurveyInvitation:
    return SurveyInvitation(
        organization_id=send.organization_id, send=send, survey_id=send.survey_id, account_id=contact.account_id,
        contact=contact, run=run, status=status, skip_reason=reason, scheduled_for=when,
    )  # fmt: skip


MAX_SEND_ATTEMPTS = 5  # failed tries of one invitation's email before it is skipped as ``send_failed``
SEND_FAILED = "send_failed"
FAILURES_BEFORE_PAUSE = 3  # consecutive failures end a delivery pass: the mail server is likely down


def deliver_due_invitations(organization_id: int, *, now: datetime | None = None, send_id: int | None = None) -> int:
    """Email every scheduled invitation that has fallen due (of one send, or all): a fresh token each,
    whose hash is stored with the expiry. A contact who unsubscribed or departed since the run is
    skipped now. Returns how many emails went out.

    **One transaction per email.** Each invitation is claimed (locked, ``skip_locked``), marked sent and
    handed to the mail server in its own transaction: an email that went out stays sent whatever happens
    to the next one, and one that failed is rolled back to scheduled, with ``attempts`` + 1 and its
    ``last_error``, for the next pass (the beat's, every 5 minutes) to resume with. After
    :data:`MAX_SEND_ATTEMPTS` failed tries it is skipped (reason ``send_failed``). After
    :data:`FAILURES_BEFORE_PAUSE` failures in a row the pass stops (the server is likely down) and leaves
    the rest scheduled, untried. Every send with a failure gets a ``delivery_problem`` the admin reads on
    the send; a later pass that emails its invitations without failure clears it. Safe to run twice."""
    now = now or timezone.now()
    org = Organization.objects.get(pk=organization_id)
    config = survey_settings(organization_id)
    rows = SurveyInvitation.objects.for_org(organization_id).filter(
        status=InvitationStatus.SCHEDULED, scheduled_for__lte=now
    )
    # A cancelled send or a deactivated survey sends nothing more; its waiting rows are skipped.
    stopped = rows.filter(Q(send__status=SendStatus.CANCELLED) | Q(survey__active=False))
    stopped.update(status=InvitationStatus.SKIPPED, skip_reason=CANCELLED)
    if send_id is not None:
        rows = rows.filter(send_id=send_id)
    due = list(
        rows.exclude(send__status=SendStatus.CANCELLED)
        .exclude(survey__active=False)
        .order_by("scheduled_for", "pk")
        .values_list("pk", flat=True)[:5000]
    )
    sent = in_a_row = 0
    today = timezone.localdate(now)
    delivered: set[int] = set()
    failed: dict[int, tuple[int, str]] = {}  # send id -> (failures, last error)
    mailer = get_connection()
    try:
        for pk in due:
            if in_a_row >= FAILURES_BEFORE_PAUSE:
                break
            claimed: SurveyInvitation | None = None
            try:
                with transaction.atomic():
                    claimed = (
                        SurveyInvitation.all_orgs.select_for_update(skip_locked=True, of=("self",))
                        .select_related("survey", "contact", "account", "account__owner")
                        .filter(pk=pk, status=InvitationStatus.SCHEDULED)
                        .first()
                    )
                    if claimed is None:  # sent (or being sent) by another pass meanwhile
                        continue
                    if _deliver_one(claimed, org, config, today, now, mailer):
                        sent += 1
                        delivered.add(claimed.send_id)
                in_a_row = 0
            except DatabaseError:
                raise
            except Exception as exc:  # the mail server refused or was unreachable: this one email only
                if claimed is None:
                    raise
                in_a_row += 1
                error = f"{type(exc).__name__}: {exc}"[:300]
                logger.warning("survey invitation %s of organization %s not sent: %s", pk, organization_id, error)
                _record_failure(claimed, error)
                count, _last = failed.get(claimed.send_id, (0, ""))
                failed[claimed.send_id] = (count + 1, error)
    finally:
        mailer.close()
    _report_delivery(organization_id, now, delivered, failed, paused=in_a_row >= FAILURES_BEFORE_PAUSE)
    return sent


def _deliver_one(
    invitation: SurveyInvitation, org: Organization, config: SurveySettings, today: Any, now: datetime,
    mailer: Any,
) -> bool:  # fmt: skip
    """Inside the caller's per-email transaction: skip the invitation (its contact may no longer be
    emailed), or mark it sent and hand its email to ``mailer`` (raising if the server refuses)."""
    contact = invitation.contact
    reason = contact_skip_reason(contact, today)
    if reason:
        SurveyInvitation.all_orgs.filter(pk=invitation.pk).update(status=InvitationStatus.SKIPPED, skip_reason=reason)
        return False
    token, digest = new_token()
    link = settings.PUBLIC_BASE_URL + reverse("survey-respond", args=[token])
    values = merge_values(contact=contact, account=invitation.account, organization=org)
    unsubscribe = unsubscribe_url(contact)
    rendered = render_invitation(invitation.survey, values, link=link, unsubscribe=unsubscribe)
    owner = invitation.account.owner
    message = EmailMultiAlternatives(
        subject=rendered.subject, body=rendered.text, to=[contact.email],
        reply_to=[owner.email] if owner is not None and owner.email else [],
        headers={"List-Unsubscribe": f"<{unsubscribe}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
        connection=mailer,
    )  # fmt: skip
    message.attach_alternative(rendered.html, "text/html")
    SurveyInvitation.all_orgs.filter(pk=invitation.pk).update(
        status=InvitationStatus.SENT, sent_at=now, token_hash=digest,
        expires_at=now + timedelta(days=config.link_days), last_error="",
    )  # fmt: skip
    # Last, still inside the transaction: a refusal rolls this one invitation back to scheduled.
    mailer.send_messages([message])
    return True


def _record_failure(invitation: SurveyInvitation, error: str) -> None:
    attempts = invitation.attempts + 1
    values: dict[str, Any] = {"attempts": attempts, "last_error": error}
    if attempts >= MAX_SEND_ATTEMPTS:
        values.update(status=InvitationStatus.SKIPPED, skip_reason=SEND_FAILED)
    SurveyInvitation.all_orgs.filter(pk=invitation.pk, status=InvitationStatus.SCHEDULED).update(**values)


def _report_delivery(
    organization_id: int, now: datetime, delivered: set[int], failed: dict[int, tuple[int, str]], *, paused: bool
) -> None:
    """Each send with a failed email gets its ``delivery_problem``; a send emailed without failure loses its."""
    sends = SurveySend.objects.for_org(organization_id)
    for send_pk, (count, error) in failed.items():
        text = (
            f"{count} email(s) could not be sent at {now:%Y-%m-%d %H:%M} UTC ({error})"
            f"{'; delivery paused after repeated failures' if paused else ''}. They stay scheduled and are "
            f"retried every few minutes; after {MAX_SEND_ATTEMPTS} failed tries an email is skipped (“Send failed”)."
        )
        sends.filter(pk=send_pk).update(delivery_problem=text[:300])
    cleared = delivered - set(failed)
    if cleared:
        sends.filter(pk__in=cleared).exclude(delivery_problem="").update(delivery_problem="")


def cancel_send(send: SurveySend) -> bool:
    """Cancel ``send``: no further run, and its drip emails still waiting are skipped (reason
    ``cancelled``, counted in the send's skips). A send that is scheduled, active, or done but with
    emails still waiting can be cancelled; answers whether anything changed."""
    with transaction.atomic():
        send = SurveySend.all_orgs.select_for_update().get(pk=send.pk)
        waiting = SurveyInvitation.all_orgs.filter(send_id=send.pk, status=InvitationStatus.SCHEDULED)
        if send.status == SendStatus.CANCELLED or (send.status == SendStatus.DONE and not waiting.exists()):
            return False
        send.status, send.next_run_at = SendStatus.CANCELLED, None
        send.save(update_fields=["status", "next_run_at"])
        waiting.update(status=InvitationStatus.SKIPPED, skip_reason=CANCELLED)
    return True


def revoke_links(send: SurveySend, *, by: Any = None, contact_ids: Iterable[int] | None = None) -> int:
    """Revoke the links of ``send`` that can still be answered (sent, not used, not revoked), or only those
    of ``contact_ids``: their page answers 410 from now on. Audit-logged (one entry, the invitations
    revoked); returns how many were revoked."""
    with transaction.atomic():
        rows = SurveyInvitation.all_orgs.filter(
            organization_id=send.organization_id, send_id=send.pk, status=InvitationStatus.SENT,
            used_at__isnull=True, revoked_at__isnull=True, token_hash__isnull=False,
        )  # fmt: skip
        if contact_ids is not None:
            rows = rows.filter(contact_id__in=list(contact_ids))
        ids = list(rows.select_for_update().values_list("pk", flat=True))
        if not ids:
            return 0
        SurveyInvitation.all_orgs.filter(pk__in=ids).update(revoked_at=timezone.now(), revoked_by=by)
        record_audit(
            send.organization_id, "survey_links.revoked", subject_type="survey_send", subject_id=send.pk,
            subject_label=str(send), actor=by, data={"invitations": ids},
        )  # fmt: skip
    return len(ids)


def can_cancel(send: SurveySend, scheduled: int) -> bool:
    """Whether the page offers Cancel: a send still to run, or done with ``scheduled`` emails waiting."""
    return send.status in (SendStatus.SCHEDULED, SendStatus.ACTIVE) or (
        send.status == SendStatus.DONE and scheduled > 0
    )


def due_sends(organization_id: int, now: datetime) -> list[int]:
    return list(
        SurveySend.objects.for_org(organization_id)
        .filter(status__in=(SendStatus.SCHEDULED, SendStatus.ACTIVE), next_run_at__lte=now)
        .values_list("pk", flat=True)
    )


def run_due_sends(organization_id: int, *, now: datetime | None = None) -> dict[str, int]:
    """The beat's work for one organization: every send whose run is due, then every due drip email."""
    now = now or timezone.now()
    runs = 0
    for send_id in due_sends(organization_id, now):
        send = SurveySend.objects.for_org(organization_id).get(pk=send_id)
        if not run_send(send, now=now, deliver=False).already_done:
            runs += 1
    return {"runs": runs, "delivered": deliver_due_invitations(organization_id, now=now)}


def create_send(survey: Survey, *, now: datetime | None = None, **values: Any) -> SurveySend:
    """A new send of ``survey`` (validated): its first run is due at ``next_run_at`` (now when empty)."""
    if (values.get("segment") is None) == (values.get("account") is None):
        raise ValidationError({"segment": "Target one segment or one account."})
    if values.get("schedule") == SendSchedule.RECURRING and not values.get("interval_weeks"):
        raise ValidationError({"interval_weeks": "A recurring send needs the weeks between runs."})
    values.setdefault("next_run_at", now or timezone.now())
    return SurveySend.objects.for_org(survey.organization_id).create(
        organization_id=survey.organization_id, survey=survey, **values
    )


def enrol_account(survey: Survey, account: Account, roles: Iterable[str], *, source: str = "") -> RunResult:
    """Survey the account's contacts holding ``roles`` (all when empty) now, within the throttle: the
    playbooks' ``enrol_survey`` action. One send targeting the account, run at once; its emails go out
    after the caller's transaction commits (a failing mail server cannot roll the caller back; what
    is left scheduled, the beat sends)."""
    if survey.organization_id != account.organization_id:
        raise ValidationError("The survey and the account belong to different organizations.")
    if not survey.active:
        return RunResult(already_done=True)
    send = create_send(survey, account=account, roles=sorted(set(roles)), source=source[:40])
    result = run_send(send, deliver=False)
    org_id, send_id = send.organization_id, send.pk
    transaction.on_commit(lambda: deliver_due_invitations(org_id, send_id=send_id), robust=True)
    return result


RUN_SENDS_TASK = "feedback.tasks.run_survey_sends"


def start_send(send: SurveySend) -> RunResult | None:
    """Start a new send that is due now (the survey page). One account's contacts are few: its run happens
    at once (the result is returned). A segment may hold thousands of contacts: the run is queued
    (:func:`queue_runs`)."""
    if send.account_id is not None:
        return run_send(send)
    queue_runs(send.organization_id)
    return None


def queue_runs(organization_id: int) -> None:
    """After the caller's transaction commits, queue one recorded ``run_survey_sends`` of the organization
    (its due runs, a new send's among them, then its due emails; named, not imported: tasks.py is the app's
    top). ``robust``: a broker that is down never fails the caller after its commit; the beat picks the send
    up within 5 minutes anyway. The API answers ``202`` with the send (docs/api.md)."""
    from cs_platform.celery import app as celery_app
    from cs_platform.jobs import create_job

    def queue() -> None:
        job = create_job(organization_id=organization_id, kind="run_survey_sends")
        celery_app.tasks[RUN_SENDS_TASK].delay(organization_id, job_id=job.pk)

    transaction.on_commit(queue, robust=True)


def find_survey(organization_id: int, ref: Any) -> Survey | None:
    """A survey of the organization by id or by name (what a playbook's ``enrol_survey`` names)."""
    rows = Survey.objects.for_org(organization_id)
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
        found = rows.filter(pk=int(ref)).first()
        if found is not None:
            return found
    return rows.filter(name=str(ref)).first() if ref not in (None, "") else None


# --- Figures ------------------------------------------------------------------------------------------


def send_counts(organization_id: int, send_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """Per send: ``recipients`` (contacts considered, all runs), ``skipped`` by reason, ``scheduled``,
    ``failing`` (of the scheduled, those whose email failed and is retried), ``sent`` (sent or answered),
    ``responded`` and ``response_rate`` = responded / sent (4 places, ``None`` when nothing was sent). One
    query whatever the number of sends."""
    ids = list(send_ids)
    out: dict[int, dict[str, Any]] = {
        pk: {
            "recipients": 0,
            "skipped": {},
            "scheduled": 0,
            "failing": 0,
            "sent": 0,
            "responded": 0,
            "response_rate": None,
        }  # fmt: skip
        for pk in ids
    }
    rows = (
        SurveyInvitation.objects.for_org(organization_id)
        .filter(send_id__in=ids)
        .order_by()
        .values("send_id", "status", "skip_reason")
        .annotate(n=Count("id"), failing=Count("id", filter=Q(attempts__gt=0)))
    )
    for row in rows:
        counts = out[row["send_id"]]
        counts["recipients"] += row["n"]
        if row["status"] == InvitationStatus.SKIPPED:
            counts["skipped"][row["skip_reason"]] = counts["skipped"].get(row["skip_reason"], 0) + row["n"]
        elif row["status"] == InvitationStatus.SCHEDULED:
            counts["scheduled"] += row["n"]
            counts["failing"] += row["failing"]
        else:
            counts["sent"] += row["n"]
            counts["responded"] += row["n"] if row["status"] == InvitationStatus.RESPONDED else 0
    for counts in out.values():
        if counts["sent"]:
            rate = Decimal(counts["responded"]) / Decimal(counts["sent"])
            counts["response_rate"] = float(rate.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))
    return out


def last_contacted(organization_id: int, contact_ids: Iterable[int]) -> dict[int, datetime]:
    rows = (
        SurveyInvitation.objects.for_org(organization_id)
        .filter(contact_id__in=list(contact_ids), sent_at__isnull=False)
        .values("contact_id")
        .annotate(last=Max("sent_at"))
    )
    return {row["contact_id"]: row["last"] for row in rows}


def skipped_totals(organization_id: int) -> Counter[str]:
    rows = (
        SurveyInvitation.objects.for_org(organization_id)
        .filter(status=InvitationStatus.SKIPPED)
        .values("skip_reason")
        .annotate(n=Count("id"))
    )
    return Counter({row["skip_reason"]: row["n"] for row in rows})
