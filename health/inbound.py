"""Inbound webhooks: ``POST /hooks/<org-slug>/tracker/`` (Jira's "issue updated") and ``POST
/hooks/<org-slug>/helpdesk/`` (a ticket upserted by its external id). docs/api.md, "Inbound webhooks".

Why here: the helpdesk hook writes tickets (health's), the tracker hook moves feature requests (feedback's,
below health), and health already hosts inbound ingestion (the ``/v1/`` tracking API). Both hooks share the
verification, the rate limit and the delivery log below.

Every request, once its organization's hook is known, is logged (:class:`InboundDelivery`) with its outcome;
a refused one is answered a 4xx JSON body ``{"detail": reason, "code": ...}`` and changes nothing. Order of the
checks: method, hook enabled (404), size (413), signature (401), rate limit (429), JSON (400), shape (400),
meaning (422: unmapped status, unknown issue or account). A helpdesk ticket older (``updated_at``) than the
stored one is accepted but ignored: ``200`` with outcome ``stale``, logged as such. A request refused before
its signature is verified (size, signature) is counted against its client address's own budget (429 once
spent), never against the organization's, and only the first such refusal of a rate window is logged;
refused rows are pruned against their own cap (``InboundDelivery.KEEP_REFUSED``) so they never evict
accepted deliveries.

Signature: ``X-Hub-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>`` (the header Jira sends when its
webhook has a secret); ``X-Retain-Signature`` is accepted too. The secret is derived, never stored (see
``health.models_inbound``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, transaction
from django.db.models import Subquery
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.views.decorators.csrf import csrf_exempt

from accounts.models import Organization
from cs_platform.ratelimit import count, parse_rate
from cs_platform.tenancy import org_scope
from feedback.requests import RequestError, apply_tracker_status

from .models import InboundDelivery, InboundHook, InboundOutcome, InboundSource
from .tickets import TicketInputError, parse_helpdesk_ticket, upsert_ticket

__all__ = [
    "MAX_BODY_BYTES",
    "enable_hook",
    "helpdesk",
    "hook_secret",
    "rotate_secret",
    "sign",
    "tracker",
]

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024
SIGNATURE_HEADERS = ("HTTP_X_HUB_SIGNATURE", "HTTP_X_RETAIN_SIGNATURE")
ISSUE_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]*-[0-9]+$")
TRACKER_EVENTS = ("jira:issue_updated",)
_SALT = "retain.health.inbound-hook"


# --- Secrets --------------------------------------------------------------------------------------


def hook_secret(hook: InboundHook) -> str:
    """The hook's signing secret, derived from ``SECRET_KEY``, the organization, the source and the salt."""
    digest = salted_hmac(_SALT, f"{hook.organization_id}:{hook.source}:{hook.secret_salt}", algorithm="sha256")
    return "whin_" + digest.hexdigest()


def enable_hook(organization_id: int, source: str, *, by: Any = None) -> InboundHook:
    """The organization's hook for ``source``, created (with a fresh secret) and switched on if needed."""
    hook, created = InboundHook.all_orgs.get_or_create(
        organization_id=organization_id,
        source=source,
        defaults={"secret_salt": secrets.token_hex(16), "created_by": by if getattr(by, "pk", None) else None},
    )
    if not created and not hook.is_active:
        hook.is_active = True
        hook.save(update_fields=["is_active"])
    return hook


def rotate_secret(hook: InboundHook) -> str:
    """A new secret (the old one stops working at once); returns it."""
    hook.secret_salt = secrets.token_hex(16)
    hook.rotated_at = timezone.now()
    hook.save(update_fields=["secret_salt", "rotated_at"])
    return hook_secret(hook)


def sign(secret: str, body: bytes) -> str:
    """The signature header value a sender computes: ``sha256=<hex>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# --- Rate limit -----------------------------------------------------------------------------------


def _rate() -> tuple[int, int]:
    return parse_rate(getattr(settings, "INBOUND_HOOK_RATE", "120/min"), name="INBOUND_HOOK_RATE")


def _reserve(organization_id: int, source: str) -> tuple[int | None, bool]:
    """Count one *verified* (correctly signed) request against the organization's budget for the source."""
    limit, period = _rate()
    verdict = count(f"retain:inbound:{organization_id}:{source}", limit, period)
    return verdict.wait, verdict.first_refusal


def _client_address(request: HttpRequest) -> str:
    return str(request.META.get("REMOTE_ADDR") or "unknown")[:64]


def _reserve_unverified(request: HttpRequest, organization_id: int, source: str) -> int | None:
    """Count one request refused before its signature was verified (unsigned, badly signed, too big) against
    its client address's own budget, so a flood of them never spends the organization's (Jira's) budget."""
    limit, period = _rate()
    key = f"retain:inbound:unverified:{organization_id}:{source}:{_client_address(request)}"
    return count(key, limit, period).wait


def _first_unverified_refusal(organization_id: int, source: str) -> bool:
    """Whether this is the window's first unverified refusal for the hook (the only one logged)."""
    _limit, period = _rate()
    return bool(cache.add(f"retain:inbound:unverified-logged:{organization_id}:{source}", 1, timeout=period))


# --- The views ------------------------------------------------------------------------------------


class Refused(Exception):
    def __init__(self, status: int, detail: str, code: str, errors: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.code, self.errors = status, detail, code, errors


def _answer(status: int, body: dict[str, Any]) -> JsonResponse:
    return JsonResponse(body, status=status)


def _log(hook: InboundHook, body: bytes, outcome: str, status: int, reason: str, reference: str = "",
         changed: int = 0) -> None:  # fmt: skip
    try:
        with transaction.atomic():
            InboundDelivery.all_orgs.create(
                organization_id=hook.organization_id,
                source=hook.source,
                outcome=outcome,
                status_code=status,
                reason=reason[:500],
                reference=reference[:120],
                changed=changed,
                body_sha256=hashlib.sha256(body).hexdigest() if body else "",
                body_bytes=len(body),
            )
            # Refused/throttled rows are pruned against their own cap, accepted ones against theirs: refusals
            # (which anyone knowing the URL can cause) never evict an accepted delivery.
            refused = (InboundOutcome.REFUSED, InboundOutcome.THROTTLED)
            same_kind = InboundDelivery.all_orgs.filter(organization_id=hook.organization_id)
            if outcome in refused:
                same_kind, keep = same_kind.filter(outcome__in=refused), InboundDelivery.KEEP_REFUSED
            else:
                same_kind, keep = same_kind.exclude(outcome__in=refused), InboundDelivery.KEEP
            oldest_kept = same_kind.order_by("-id").values_list("id", flat=True)[keep - 1 : keep]
            same_kind.filter(id__lt=Subquery(oldest_kept)).delete()
    except DatabaseError:
        logger.exception("could not log an inbound %s delivery of organization %s", hook.source, hook.organization_id)


def _verify(request: HttpRequest, hook: InboundHook, body: bytes) -> None:
    header = next((request.META[h] for h in SIGNATURE_HEADERS if request.META.get(h)), "")
    if not header:
        raise Refused(401, "Unsigned request: send X-Hub-Signature: sha256=<HMAC-SHA256 of the body>.", "unsigned")
    scheme, _, digest = header.strip().partition("=")
    if scheme.lower() != "sha256" or not digest:
        raise Refused(401, "The signature must look like sha256=<hex digest>.", "bad_signature")
    digest = digest.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", digest):  # compare_digest refuses non-ASCII str (TypeError)
        raise Refused(401, "The signature must look like sha256=<64 hex digits>.", "bad_signature")
    expected = sign(hook_secret(hook), body).partition("=")[2]
    if not hmac.compare_digest(expected, digest):
        raise Refused(401, "The signature does not match the body (wrong secret, or the body was altered).",
                      "bad_signature")  # fmt: skip


def _json(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise Refused(400, "The body is not valid JSON (UTF-8).", "invalid_json") from None


def _tracker(hook: InboundHook, data: Any) -> tuple[int, dict[str, Any], str, str, int, str]:
    """(status, body, outcome, reference, changed, reason) for a verified tracker payload."""
    if not isinstance(data, dict):
        raise Refused(400, "The body must be a JSON object.", "invalid_payload")
    event = data.get("webhookEvent")
    if not isinstance(event, str):
        raise Refused(400, 'Missing "webhookEvent" (Jira sends "jira:issue_updated").', "invalid_payload")
    if event not in TRACKER_EVENTS:
        raise Refused(422, f"The event {event[:60]!r} is not handled; send jira:issue_updated.", "unhandled_event")
    issue = data.get("issue")
    key = issue.get("key") if isinstance(issue, dict) else None
    if not isinstance(key, str) or not ISSUE_KEY.match(key) or len(key) > 64:
        raise Refused(400, 'Missing or malformed "issue.key" (a key such as PROD-42).', "invalid_payload")
    fields = issue.get("fields")
    status = fields.get("status") if isinstance(fields, dict) else None
    name = status.get("name") if isinstance(status, dict) else None
    if not isinstance(name, str) or not name.strip():
        raise Refused(
            400,
            'Missing "issue.fields.status.name".',
            "invalid_payload",
        )
    url = ""
    self_url = issue.get("self")
    if self_url is not None:
        parts = urlsplit(self_url) if isinstance(self_url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise Refused(400, '"issue.self" must be the issue\'s http(s) address.', "invalid_payload")
        url = f"{parts.scheme}://{parts.netloc}/browse/{key.upper()}"
    try:
        result = apply_tracker_status(
            hook.organization_id, issue_key=key, tracker_status=name[:80], status_map=hook.status_map, issue_url=url
        )
    except RequestError as refused:
        code = "unmapped_status" if refused.field == "status" else "unknown_issue"
        raise Refused(422, str(refused), code) from None
    outcome = InboundOutcome.APPLIED if result.changed else InboundOutcome.IGNORED
    body = {"outcome": outcome, "issue": key.upper(), "status": result.status, "matched": result.matched,
            "changed": result.changed}  # fmt: skip
    return 200, body, outcome, key.upper(), len(result.changed), ""


def _helpdesk(hook: InboundHook, data: Any) -> tuple[int, dict[str, Any], str, str, int, str]:
    try:
        external_id, values = parse_helpdesk_ticket(hook.organization_id, data)
    except TicketInputError as invalid:
        raise Refused(invalid.status, "The ticket is not valid; nothing was stored.", "invalid_payload",
                      invalid.errors) from None  # fmt: skip
    result = upsert_ticket(hook.organization_id, external_id, values)
    status = 201 if result.outcome == "created" else 200
    body: dict[str, Any] = {"outcome": result.outcome, "ticket": result.ticket.pk, "id": external_id}
    if result.outcome == "stale":  # an out-of-order delivery: accepted (the sender must not retry it), ignored
        stored = result.ticket.updated_at
        assert stored is not None
        body["updated_at"] = stored.isoformat().replace("+00:00", "Z")
        reason = (f"Out of order: updated_at {values['updated_at'].isoformat()} is older than the stored "
                  f"{stored.isoformat()}; nothing was changed.")  # fmt: skip
        return status, body, InboundOutcome.STALE, external_id, 0, reason
    outcome = InboundOutcome.IGNORED if result.outcome == "unchanged" else InboundOutcome.APPLIED
    return status, body, outcome, external_id, 0 if result.outcome == "unchanged" else 1, ""


HANDLERS = {InboundSource.TRACKER: _tracker, InboundSource.HELPDESK: _helpdesk}


def _receive(request: HttpRequest, org_slug: str, source: str) -> JsonResponse:
    if request.method != "POST":
        response = _answer(405, {"detail": "Use POST.", "code": "method_not_allowed"})
        response["Allow"] = "POST"
        return response
    # The organization first (not a tenant table), then everything else inside its scope: under Postgres
    # row-level security (cs_platform.rls) a tenant row is visible, and writable, only there.
    organization = Organization.objects.filter(slug=org_slug).first()
    if organization is None:
        return _answer(404, {"detail": f"No {source} webhook is enabled here.", "code": "not_found"})
    with org_scope(organization):
        return _receive_for(request, organization, source)


def _receive_for(request: HttpRequest, organization: Organization, source: str) -> JsonResponse:
    hook = (
        InboundHook.objects.for_org(organization)
        .filter(source=source, is_active=True)
        .select_related("organization")
        .first()
    )
    if hook is None:  # the same answer for an unknown organization: nothing to probe
        return _answer(404, {"detail": f"No {source} webhook is enabled here.", "code": "not_found"})
    body = b""
    try:
        # Before the organization's budget is charged: the size and the signature. A request that fails them
        # spends only its client address's budget, and only the window's first such refusal is logged.
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
            if length > MAX_BODY_BYTES:
                raise Refused(413, f"The body exceeds {MAX_BODY_BYTES // 1024} KB.", "payload_too_large")
            body = request.body
            if len(body) > MAX_BODY_BYTES:
                raise Refused(413, f"The body exceeds {MAX_BODY_BYTES // 1024} KB.", "payload_too_large")
        except ValueError:
            raise Refused(400, "Content-Length must be a number of bytes.", "invalid_payload") from None
        except RequestDataTooBig:  # the server's DATA_UPLOAD_MAX_MEMORY_SIZE is below MAX_BODY_BYTES
            raise Refused(413, "The body exceeds the server's upload limit.", "payload_too_large") from None
        _verify(request, hook, body)
    except Refused as refused:
        wait = _reserve_unverified(request, hook.organization_id, source)
        if wait is not None:
            response = _answer(429, {"detail": f"Too many requests; retry in {wait} s.", "code": "throttled"})
            response["Retry-After"] = str(wait)
            return response
        if _first_unverified_refusal(hook.organization_id, source):
            _log(hook, body, InboundOutcome.REFUSED, refused.status, refused.detail + " (later unverified "
                 "refusals of this window are not logged)")  # fmt: skip
        return _answer(refused.status, {"detail": refused.detail, "code": refused.code})
    wait, first_refusal = _reserve(hook.organization_id, source)
    if wait is not None:
        if first_refusal:  # one row per window, not one per request of a flood
            _log(hook, b"", InboundOutcome.THROTTLED, 429, "Rate limit reached (later refusals of this window "
                 "are not logged).")  # fmt: skip
        response = _answer(429, {"detail": f"Too many requests; retry in {wait} s.", "code": "throttled"})
        response["Retry-After"] = str(wait)
        return response
    try:
        data = _json(body)
        with org_scope(hook.organization):
            status, answer, outcome, reference, changed, reason = HANDLERS[source](hook, data)
    except Refused as refused:
        _log(hook, body, InboundOutcome.REFUSED, refused.status, refused.detail)
        answer = {"detail": refused.detail, "code": refused.code}
        if refused.errors:
            answer["errors"] = refused.errors
        return _answer(refused.status, answer)
    _log(hook, body, outcome, status, reason, reference, changed)
    return _answer(status, answer)


def _json_errors(source: str) -> Any:
    def view(request: HttpRequest, org_slug: str) -> JsonResponse:
        try:
            return _receive(request, org_slug, source)
        except Exception:
            logger.exception("unexpected error in the inbound %s webhook", source)
            return _answer(500, {"detail": "Internal error; nothing was changed. Retry later.", "code": "internal"})

    view.__name__ = f"inbound_{source}"
    return csrf_exempt(view)


tracker = _json_errors(InboundSource.TRACKER)
helpdesk = _json_errors(InboundSource.HELPDESK)


def organization_hooks(organization: Organization) -> dict[str, InboundHook | None]:
    """The organization's hooks by source (the admin page)."""
    hooks = {h.source: h for h in InboundHook.objects.for_org(organization)}
    return {source: hooks.get(source) for source in InboundSource.values}
