"""The Segment-compatible tracking API (spec §8): ``POST /v1/batch``, ``/v1/track``, ``/v1/identify``,
``/v1/group``. See ``docs/ingestion.md`` for the contract.

Plain Django views, not DRF: the endpoints speak Segment's protocol (HTTP Basic with the write key as
user name, ``{"success": true}``), not the REST API's. This module reads the request (auth, size
limits, gzip, JSON) and validates every event; :func:`health.services.ingest_events` stores them.
A request is all or nothing: one invalid event rejects the batch and nothing is stored.

Every answer is JSON, errors included (a ``/v1/`` path that does not exist too: :func:`not_found`), and
no body can make it answer ``500``: nesting, numbers, text and timestamps Postgres or the rollup could
not hold are refused at the door with their reason (a ``5xx`` makes Segment clients retry forever).
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import io
import json
import logging
import math
import re
import zlib
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import DatabaseError, OperationalError
from django.http import HttpRequest, JsonResponse, UnreadablePostError
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from accounts.models import ApiKey, WriteKey
from cs_platform.api.parsers import MAX_JSON_DEPTH, json_depth_exceeds
from cs_platform.tenancy import org_scope

from .services import EventError, IncomingEvent, IngestRejected, ingest_events, record_refusal

__all__ = ["batch", "group", "identify", "not_found", "parse_events", "track"]

logger = logging.getLogger(__name__)

MAX_EVENT_BYTES = 32 * 1024  # Segment's limit per event
MAX_BATCH_BYTES = 500 * 1024  # Segment's limit per request (after decompression)
MAX_ID = 200
MAX_EMAIL = 254  # RFC 5321's limit on a path; ProductUser.email holds it
STORED_TYPES = {"track", "identify", "group"}
# Known Segment calls that carry no usage Retain uses: accepted, not stored, reported in the response.
IGNORED_TYPES = {"page", "screen", "alias"}
# Below this difference between the client's sentAt and our clock we keep the client's timestamp:
# it is delivery latency, not a wrong clock (see docs/ingestion.md "Timestamps").
CLOCK_SKEW_TOLERANCE = timedelta(seconds=60)
LAST_USED_EVERY = timedelta(minutes=5)
#: An event dated further ahead of its receipt (after clock correction) cannot be counted: its day has
#: not begun. Wider than any time zone offset, so a local time sent as UTC still passes.
MAX_FUTURE = timedelta(hours=24)
#: JSON nesting deeper than this is refused (Segment payloads nest a few levels; deep nesting only
#: costs recursion, and Python's parser raises RecursionError near 1,000 levels).
MAX_DEPTH = MAX_JSON_DEPTH  # the REST API's limit: one rule for every JSON body
_SURROGATE = re.compile(rb"\\u[dD][89abcdefABCDEF]")


class _BadNumber(ValueError):
    pass


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _BadNumber(f"number {text[:40]} is out of range")
    return value


def _no_constant(name: str) -> Any:
    raise _BadNumber(f"{name} is not a JSON number")


def parse_body(body: bytes) -> Any:
    """The JSON document of a request body, or :class:`IngestRejected` (400) saying why not.

    Refused: invalid JSON, nesting deeper than :data:`MAX_DEPTH`, ``NaN``/``Infinity`` and numbers beyond
    a double (neither JSON nor storable), unpaired UTF-16 surrogates (not storable text), NUL characters.
    """
    if b"\\u0000" in body:
        # Postgres text and jsonb cannot hold NUL; refuse clearly rather than fail at insert time.
        raise IngestRejected("NUL characters (\\u0000) are not supported in events.")
    try:
        data = json.loads(body, parse_float=_finite, parse_constant=_no_constant)
    except RecursionError as exc:
        raise IngestRejected(f"Body is nested too deeply: at most {MAX_DEPTH} levels of arrays and objects.") from exc
    except _BadNumber as exc:
        raise IngestRejected(f"Body is not valid JSON: {exc}.") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise IngestRejected(f"Body is not valid JSON: {exc}") from exc
    if json_depth_exceeds(data, MAX_DEPTH):
        raise IngestRejected(f"Body is nested too deeply: at most {MAX_DEPTH} levels of arrays and objects.")
    if _SURROGATE.search(body):
        try:
            json.dumps(data, ensure_ascii=False).encode()
        except UnicodeEncodeError as exc:
            raise IngestRejected("Body contains an unpaired UTF-16 surrogate (\\ud800-\\udfff).") from exc
    return data


def _error(status: int, detail: str, errors: list[EventError] | None = None, code: str = "invalid_request"):
    # "code"/"message" are the fields Segment's own libraries log from an error body.
    body = {"detail": detail, "errors": [e.as_dict() for e in errors or []], "code": code, "message": detail}
    response = JsonResponse(body, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Basic realm="Retain event ingestion"'
    return response


def _write_key(request: HttpRequest) -> tuple[WriteKey | None, str]:
    """The live write key of the request's Basic credentials, or ``None`` and why."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        return None, "Authenticate with HTTP Basic: the write key as user name and an empty password."
    try:
        raw = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None, "Malformed HTTP Basic credentials."
    username = raw.partition(":")[0]
    if username.startswith(ApiKey.PREFIX):
        return None, "This is an API key; the tracking API takes a write key (rwk_…)."
    key = WriteKey.authenticate(username)
    if key is None:
        return None, "Unknown or revoked write key."
    return key, ""


def _read_body(request: HttpRequest, limit: int) -> bytes:
    """The (decompressed) body, at most ``limit`` bytes, else :class:`IngestRejected` 413/400."""
    too_big = IngestRejected(f"Request body exceeds {limit // 1024} KB.", status=413)
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limit:
        raise too_big
    try:
        body = request.read(limit + 1)
    except (UnreadablePostError, OSError) as exc:
        raise IngestRejected("The request body could not be read (the connection was interrupted).") from exc
    if len(body) > limit:
        raise too_big
    encoding = request.META.get("HTTP_CONTENT_ENCODING", "").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding != "gzip":
        raise IngestRejected(f"Unsupported Content-Encoding {encoding!r} (gzip is accepted).", status=415)
    try:
        # Read at most limit + 1 bytes: a small compressed body may inflate to gigabytes.
        with gzip.GzipFile(fileobj=io.BytesIO(body)) as stream:
            data = stream.read(limit + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise IngestRejected(f"Body is not valid gzip: {exc}") from exc
    if len(data) > limit:
        raise too_big
    return data


def _parse_time(value: Any) -> datetime | None:
    """An ISO-8601 string as an aware UTC datetime (naive means UTC); ``None`` if unparseable or if it
    falls outside the calendar once in UTC (years 1 to 9999)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        return None


def _uncountable(timestamp: datetime, received_at: datetime, tz: tzinfo) -> str | None:
    """Why an event with this (corrected) timestamp cannot be counted exactly, or ``None``."""
    if timestamp - received_at > MAX_FUTURE:
        return (
            f"timestamp {timestamp.isoformat()} is more than {MAX_FUTURE.total_seconds() / 3600:g} hours after "
            "the event was received: a day that has not begun cannot be counted (fix the sender's clock, or "
            "send sentAt so Retain can correct it)"
        )
    try:
        timestamp.astimezone(tz)
    except OverflowError:
        return f"timestamp {timestamp.isoformat()} falls outside the calendar in the organization's time zone"
    return None


def _as_id(value: Any) -> str | None:
    """Segment ids may be strings or numbers; anything else is not an id."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
    return None


def _derived_message_id(raw: dict[str, Any], timestamp: datetime) -> str:
    """A deterministic id for an event sent without ``messageId``: its content and effective timestamp."""
    content = {k: v for k, v in raw.items() if k not in ("sentAt", "receivedAt", "writeKey")}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    digest = hashlib.sha256(f"{canonical}|{timestamp.isoformat()}".encode()).hexdigest()
    return f"derived-{digest[:40]}"


def parse_events(
    raw_events: list[Any],
    *,
    received_at: datetime,
    batch_sent_at: datetime | None = None,
    batch_context: dict[str, Any] | None = None,
    default_type: str | None = None,
    check_sizes: bool = True,
    tz: tzinfo = UTC,
) -> tuple[list[IncomingEvent], list[EventError], list[EventError]]:
    """Validate raw events; returns (valid events, errors, ignored calls such as ``page``).

    Besides their shape, events must be countable: a timestamp that cannot be placed on a day of the
    organization's time zone (``tz``) that has begun is an error, so no accepted event is left uncounted.
    """
    valid: list[IncomingEvent] = []
    errors: list[EventError] = []
    ignored: list[EventError] = []
    for index, raw in enumerate(raw_events):
        if not isinstance(raw, dict):
            errors.append(EventError(index, None, "event must be a JSON object"))
            continue
        message_id = raw.get("messageId")
        shown_id = message_id if isinstance(message_id, str) else None
        problems: list[str] = []

        def fail(reason: str, _problems: list[str] = problems) -> None:
            _problems.append(reason)

        if check_sizes and len(json.dumps(raw, separators=(",", ":")).encode()) > MAX_EVENT_BYTES:
            errors.append(EventError(index, shown_id, f"event exceeds {MAX_EVENT_BYTES // 1024} KB"))
            continue
        kind = raw.get("type", default_type)
        if default_type and kind != default_type:
            fail(f"type {kind!r} sent to the /v1/{default_type} endpoint")
        if kind in IGNORED_TYPES:
            ignored.append(EventError(index, shown_id, f"{kind} calls are accepted but not used by Retain"))
            continue
        if kind not in STORED_TYPES:
            fail(f"unknown type {kind!r} (expected one of: track, identify, group, page, screen, alias)")
        if message_id is not None and (not isinstance(message_id, str) or not message_id or len(message_id) > MAX_ID):
            fail(f"messageId must be a non-empty string of at most {MAX_ID} characters")
        user_id = _as_id(raw.get("userId")) if raw.get("userId") is not None else ""
        anonymous_id = _as_id(raw.get("anonymousId")) if raw.get("anonymousId") is not None else ""
        if user_id is None or len(user_id) > MAX_ID:
            fail(f"userId must be a string of at most {MAX_ID} characters")
        if anonymous_id is None or len(anonymous_id) > MAX_ID:
            fail(f"anonymousId must be a string of at most {MAX_ID} characters")
        if not user_id and not anonymous_id:
            fail("userId or anonymousId is required")
        name = raw.get("event", "")
        if kind == "track" and (not isinstance(name, str) or not name.strip() or len(name) > MAX_ID):
            fail(f"track needs an event name (a string of 1 to {MAX_ID} characters)")
        group_id = ""
        if kind == "group":
            group_id = _as_id(raw.get("groupId")) or ""
            if not group_id or len(group_id) > 120:
                fail("group needs a groupId (the account's external_id, at most 120 characters)")
        payload_key = "properties" if kind == "track" else "traits"
        payload = raw.get(payload_key)
        if payload is None:
            payload = {}
        if not isinstance(payload, dict):
            fail(f"{payload_key} must be an object")
            payload = {}
        context = raw.get("context")
        if context is None:
            context = batch_context or {}
        if not isinstance(context, dict):
            fail("context must be an object")
            context = {}

        if "timestamp" in raw and raw["timestamp"] is not None:
            timestamp = _parse_time(raw["timestamp"])
            if timestamp is None:
                fail(f"timestamp {str(raw['timestamp'])[:80]!r} is not an ISO-8601 date-time (years 1 to 9999)")
                timestamp = received_at
            else:
                sent_at = _parse_time(raw.get("sentAt")) or batch_sent_at
                # Events forwarded with their own receivedAt were corrected upstream already.
                if sent_at is not None and "receivedAt" not in raw:
                    skew = received_at - sent_at
                    if abs(skew) > CLOCK_SKEW_TOLERANCE:
                        try:
                            timestamp = timestamp + skew
                        except OverflowError:
                            fail("timestamp falls outside the calendar once corrected by sentAt")
                            timestamp = received_at
                why = _uncountable(timestamp, received_at, tz)
                if why:
                    fail(why)
        else:
            timestamp = received_at

        email = title = display = ""
        hint = _as_id(context.get("groupId")) or ""
        if kind == "identify":
            email = payload.get("email") or ""
            if email:
                try:
                    if not isinstance(email, str) or len(email) > MAX_EMAIL:
                        raise ValidationError("not a string of at most 254 characters")
                    validate_email(email)
                except ValidationError:
                    fail(f"traits.email {str(email)[:80]!r} is not an email address (at most {MAX_EMAIL} characters)")
                    email = ""
            first, last = payload.get("firstName"), payload.get("lastName")
            joined = " ".join(str(p) for p in (first, last) if p)
            display = str(payload.get("name") or joined or "")
            title = str(payload.get("title") or "")
            company = payload.get("company")
            if not hint and isinstance(company, dict):
                hint = _as_id(company.get("id")) or ""
        elif kind == "group":
            display = str(payload.get("name") or "")

        if problems:
            errors.append(EventError(index, shown_id, "; ".join(problems)))
            continue
        valid.append(
            IncomingEvent(
                index=index,
                type=kind,
                message_id=message_id or _derived_message_id(raw, timestamp),
                timestamp=timestamp,
                user_id=user_id or "",
                anonymous_id=anonymous_id or "",
                event=name if kind == "track" else "",
                group_id=group_id,
                group_hint=hint[:120],
                properties=payload,
                email=email,
                name=display,
                title=title,
                derived_id=not message_id,
            )
        )
    return valid, errors, ignored


def _handle(request: HttpRequest, endpoint: str | None) -> JsonResponse:
    if request.method != "POST":
        response = _error(405, "Use POST.", code="method_not_allowed")
        response["Allow"] = "POST"
        return response
    key, why = _write_key(request)
    if key is None:
        return _error(401, why, code="unauthorized")
    # Everything after the key's lookup runs in its organization's scope: under Postgres row-level security
    # (cs_platform.rls) the refusal counters, the events and the key's last use are written only there.
    with org_scope(key.organization):
        return _handle_for(request, endpoint, key)


def _handle_for(request: HttpRequest, endpoint: str | None, key: WriteKey) -> JsonResponse:
    organization = key.organization
    received_at = timezone.now()
    raw_count = 0
    try:
        body = _read_body(request, MAX_BATCH_BYTES if endpoint is None else MAX_EVENT_BYTES)
        data = parse_body(body)
        if not isinstance(data, dict):
            raise IngestRejected("Body must be a JSON object.")
        batch_sent_at = None
        if data.get("sentAt") is not None:
            batch_sent_at = _parse_time(data["sentAt"])
            if batch_sent_at is None:
                raise IngestRejected(f"sentAt {str(data['sentAt'])[:80]!r} is not an ISO-8601 date-time.")
        if endpoint is None:
            raw_events = data.get("batch")
            if not isinstance(raw_events, list) or not raw_events:
                raise IngestRejected('Body must have a non-empty "batch" list of events.')
            context = data.get("context") if isinstance(data.get("context"), dict) else None
        else:
            raw_events, context = [data], None
        raw_count = len(raw_events)
        events, errors, ignored = parse_events(
            raw_events,
            received_at=received_at,
            batch_sent_at=batch_sent_at,
            batch_context=context,
            default_type=endpoint,
            # The whole body is within one event's limit: no event can exceed it.
            check_sizes=len(body) > MAX_EVENT_BYTES,
            tz=ZoneInfo(organization.time_zone or "UTC"),
        )
        if errors:
            too_big = [e for e in errors if e.reason.startswith("event exceeds")]
            status = 413 if too_big and len(too_big) == len(errors) else 400
            noun = "event is" if len(errors) == 1 else "events are"
            raise IngestRejected(
                f"{len(errors)} {noun} invalid; nothing was stored (a batch is stored whole or not at all).",
                errors,
                status=status,
            )
        with org_scope(organization):
            result = ingest_events(organization, events, ignored=len(ignored))
    except IngestRejected as rejected:
        code = {413: "payload_too_large", 415: "unsupported_encoding"}.get(rejected.status, "invalid_request")
        try:
            record_refusal(organization, rejected.status, rejected.detail, rejected.errors, raw_count)
        except DatabaseError:
            logger.exception("could not record a refused request of organization %s", organization.pk)
        return _error(rejected.status, rejected.detail, rejected.errors, code=code)
    except DatabaseError:
        # Nothing was stored (one transaction); a Segment client retries a 5xx.
        logger.exception("events of organization %s could not be stored", organization.pk)
        response = _error(503, "Events could not be stored; retry later.", code="unavailable")
        response["Retry-After"] = "5"
        return response
    if key.last_used_at is None or received_at - key.last_used_at > LAST_USED_EVERY:
        # At most one write per key every few minutes, not one per request.
        WriteKey.all_orgs.filter(pk=key.pk).update(last_used_at=received_at)
    body_out: dict[str, Any] = {"success": True}
    if ignored:
        body_out["ignored"] = [e.as_dict() for e in ignored]
    if result.accounts_created:
        body_out["accountsCreated"] = result.accounts_created
    if result.duplicates:
        body_out["duplicates"] = result.duplicates  # already stored (a retry): not counted again
    if result.unattributed:
        # Stored, counted once a group call links their user to an account.
        body_out["unattributed"] = result.unattributed
    return JsonResponse(body_out)


def _json_errors(view: Any) -> Any:
    """Whatever goes wrong, ``/v1/`` answers JSON: an unexpected error is logged and answered ``500``
    in the protocol's error shape (never Django's HTML page)."""

    def wrapped(request: HttpRequest) -> JsonResponse:
        try:
            return view(request)
        except OperationalError:
            # The database is unreachable (a restart, a failover) before or after the batch's transaction:
            # nothing was stored; a Segment client retries a 5xx.
            logger.warning("tracking API: the database is unreachable", exc_info=True)
            response = _error(503, "Events could not be stored; retry later.", code="unavailable")
            response["Retry-After"] = "5"
            return response
        except Exception:
            logger.exception("unexpected error in the tracking API")
            return _error(500, "Internal error; nothing was stored. Retry later.", code="internal_error")

    wrapped.__doc__ = view.__doc__
    wrapped.__name__ = view.__name__
    return csrf_exempt(wrapped)


@_json_errors
def batch(request: HttpRequest) -> JsonResponse:
    """``POST /v1/batch``: ``{"batch": [event, ...], "sentAt"?, "context"?}``, at most 500 KB."""
    return _handle(request, None)


@_json_errors
def track(request: HttpRequest) -> JsonResponse:
    """``POST /v1/track``: one track event, at most 32 KB."""
    return _handle(request, "track")


@_json_errors
def identify(request: HttpRequest) -> JsonResponse:
    """``POST /v1/identify``: one identify event, at most 32 KB."""
    return _handle(request, "identify")


@_json_errors
def group(request: HttpRequest) -> JsonResponse:
    """``POST /v1/group``: one group event, at most 32 KB."""
    return _handle(request, "group")


@_json_errors
def not_found(request: HttpRequest) -> JsonResponse:
    """Any other path under ``/v1/``: a JSON ``404`` naming the endpoints."""
    return _error(
        404,
        f"No such endpoint: {request.path[:200]}. The tracking API has POST /v1/batch, /v1/track, /v1/identify "
        "and /v1/group.",
        code="not_found",
    )
