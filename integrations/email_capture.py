"""Email to the timeline (issue 21 item 5): capture addresses, parsing, matching, the unmatched inbox.

Flow (docs/integrations.md "Email to the timeline"):

1. A message arrives at the SMTP listener (``integrations.smtp_listener``, ``manage.py email_listener``)
   for a capture address, or is fetched from the organization's IMAP mailbox (:func:`poll_mailbox`).
2. :func:`store_inbound` writes its raw bytes in an :class:`InboundEmail` row first (so nothing accepted is
   lost), then queues ``integrations.tasks.process_inbound_email`` with the row's id after commit.
3. :func:`process_inbound` parses it (Python's ``email`` package, ``policy=default``), drops the
   participants that are members or of a never-capture domain, deduplicates by ``Message-ID`` (a
   :class:`CapturedEmail` per organization and Message-ID), matches contacts by address, else an account by
   domain, else puts it in the unmatched inbox; a matched message becomes an ``email`` activity (a customer
   touch: the account's health is recomputed by the activity's ``post_save``, see health.triggers).
   The raw bytes are then emptied: only subject, participants, the first 2,000 characters of text and
   the attachment names are kept.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import re
import secrets
from dataclasses import dataclass, field
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.html import strip_tags

from accounts.choices import ActivityType
from accounts.models import Account, Activity, ActivityContact, Contact, Membership, Organization
from cs_platform.tenancy import org_scope

from .choices import CapturedEmailStatus, InboundOutcome, InboundSource
from .models import CapturedEmail, Connection, EmailCapture, InboundEmail

__all__ = [
    "BODY_LIMIT",
    "Parsed",
    "assign",
    "capture_address",
    "discard",
    "ensure_capture",
    "find_capture",
    "parse_message",
    "poll_mailbox",
    "process_inbound",
    "regenerate_token",
    "store_inbound",
]

BODY_LIMIT = 2000
SUBJECT_LIMIT = 500
FUTURE_SLACK = dt.timedelta(days=1)
#: "From: Jane <jane@x.example>" / "To: …" / "Cc: …" lines of an inline forward (Gmail, Outlook, Apple Mail).
FORWARDED_LINE = re.compile(r"^\s*>?\s*(?:From|To|Cc|De|Von|À|An)\s*:\s*(.+@.+)$", re.MULTILINE)
DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


# --- Capture settings ----------------------------------------------------------------------------------


def _new_token() -> str:
    return secrets.token_hex(10)


def capture_address(capture: EmailCapture, organization: Organization | None = None) -> str:
    org = organization or capture.organization
    return f"{org.slug}+{capture.token}@{settings.CAPTURE_DOMAIN}"


def default_never_capture(organization_id: int) -> list[str]:
    """The organization's own domains: those of its members' emails."""
    emails = Membership.all_orgs.filter(organization_id=organization_id).values_list("user__email", flat=True)
    return sorted({e.rsplit("@", 1)[1].lower() for e in emails if e and "@" in e})


def ensure_capture(organization: Organization) -> EmailCapture:
    """The organization's capture settings, created on first use (never-capture: the members' domains)."""
    capture = EmailCapture.all_orgs.filter(organization=organization).first()
    if capture is not None:
        return capture
    try:
        with transaction.atomic():
            return EmailCapture.all_orgs.create(
                organization=organization, token=_new_token(),
                never_capture_domains=default_never_capture(organization.pk),
            )  # fmt: skip
    except IntegrityError:
        return EmailCapture.all_orgs.get(organization=organization)


def regenerate_token(capture: EmailCapture) -> EmailCapture:
    """A new capture address; the old one is refused (550) from now on."""
    capture.token = _new_token()
    capture.save(update_fields=["token", "updated_at"])
    return capture


def clean_domains(values: list[str] | str) -> tuple[list[str], list[str]]:
    """``(domains, problems)``: lower-cased, deduplicated, each a plausible domain name."""
    items = re.split(r"[\s,]+", values) if isinstance(values, str) else list(values or [])
    domains, problems = set(), []
    for item in items:
        d = str(item).strip().lower().lstrip("@").rstrip(".")
        if not d:
            continue
        if not DOMAIN_RE.match(d):
            problems.append(f"{item!r} is not a domain name")
        else:
            domains.add(d)
    return sorted(domains), problems


def find_capture(address: str) -> EmailCapture | None:
    """The capture settings a recipient address routes to (``slug+token@CAPTURE_DOMAIN``), or ``None``.

    The slug names the organization (not a tenant table); the token is then compared inside its scope."""
    try:
        parsed = Address(addr_spec=address.strip().strip("<>"))
    except (ValueError, IndexError, TypeError):
        return None
    if parsed.domain.lower() != settings.CAPTURE_DOMAIN.lower() or "+" not in parsed.username:
        return None
    slug, token = parsed.username.lower().rsplit("+", 1)
    if not token:
        return None
    org = Organization.objects.filter(slug__iexact=slug).first()
    if org is None:
        return None
    with org_scope(org.pk):
        capture = EmailCapture.all_orgs.filter(organization=org, enabled=True).first()
    if capture is None or not secrets.compare_digest(capture.token, token):
        return None
    capture.organization = org
    return capture


# --- Storing and queueing ------------------------------------------------------------------------------


def store_inbound(organization_id: int, raw: bytes, source: str, envelope_from: str = "") -> InboundEmail:
    """Store the raw message first, then queue its processing once the row is committed.

    The queueing is ``robust``: with the broker down the stored row still counts as accepted (the
    listener answers 250, the poller marks it seen) and ``requeue_unprocessed`` queues it again later."""
    from .tasks import process_inbound_email

    with org_scope(organization_id), transaction.atomic():
        row = InboundEmail.all_orgs.create(
            organization_id=organization_id, source=source, raw=raw, size=len(raw), envelope_from=envelope_from[:320]
        )
        transaction.on_commit(lambda: process_inbound_email.delay(organization_id, row.pk), robust=True)
    return row


def waiting_count(organization_id: int) -> int:
    """Stored messages of the organization not processed yet (shown to the admin beside the counters)."""
    return InboundEmail.all_orgs.filter(organization_id=organization_id, processed_at__isnull=True).count()


def requeue_unprocessed(limit: int = 500) -> int:
    """Queue again the stored messages still unprocessed ``EMAIL_CAPTURE_REQUEUE_AFTER`` seconds after they
    arrived (the broker was down when they were stored, or the message was lost); every organization's,
    oldest first. ``process_inbound`` is idempotent, so a message queued twice is processed once. Only a
    day back: a message that still fails after a day of retries stays counted as waiting on the Email
    capture page (``waiting_count``) instead of being queued every minute forever."""
    from .tasks import process_inbound_email

    now = timezone.now()
    cutoff = now - timezone.timedelta(seconds=settings.EMAIL_CAPTURE_REQUEUE_AFTER)
    rows = list(
        InboundEmail.all_orgs.filter(
            processed_at__isnull=True, received_at__lt=cutoff, received_at__gte=now - timezone.timedelta(days=1)
        )
        .order_by("received_at")
        .values_list("organization_id", "pk")[:limit]
    )
    for organization_id, pk in rows:
        process_inbound_email.delay(organization_id, pk)
    return len(rows)


# --- Parsing -------------------------------------------------------------------------------------------


@dataclass
class Parsed:
    message_id: str
    subject: str
    from_address: str
    participants: list[dict[str, str]]
    sent_at: dt.datetime | None
    body: str
    attachment_names: list[str] = field(default_factory=list)


def _header(msg: EmailMessage, name: str) -> str:
    try:
        value = msg.get(name)
    except (ValueError, IndexError, TypeError):  # a header the registry cannot parse: treated as absent
        return ""
    return str(value or "").strip()


def _text_of(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        text = part.get_content()
    except (LookupError, ValueError, AssertionError):
        payload = part.get_payload(decode=True) or b""
        text = payload.decode("utf-8", "replace")
    if not isinstance(text, str):
        return ""
    if part.get_content_subtype() == "html":
        text = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", text)
        text = html.unescape(strip_tags(text))
    text = re.sub(r"[ \t]+", " ", text.replace("\r\n", "\n"))
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def parse_message(raw: bytes) -> Parsed:
    """What is kept of a message: never an attachment's body (only its file name)."""
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    message_id = _header(msg, "Message-ID")[:998]
    if not message_id:  # no Message-ID: the content's digest stands in, so a resend still dedupes
        message_id = f"<sha256-{hashlib.sha256(raw).hexdigest()}@retain.invalid>"
    participants: list[dict[str, str]] = []
    seen: set[str] = set()
    for name in ("From", "To", "Cc"):
        values = [str(v) for v in msg.get_all(name, [])]
        for display, address in getaddresses(values):
            address = address.strip().lower()
            if "@" not in address or address in seen or _domain(address) == settings.CAPTURE_DOMAIN.lower():
                continue  # capture addresses are not participants
            seen.add(address)
            participants.append({"name": display[:200], "address": address[:320], "field": name.lower()})
    body = _text_of(msg)
    # A forwarded message (CSM forwards a customer's mail to the capture address): its own From/To/Cc —
    # an attached message/rfc822 part's headers, else the "From: …" lines of an inline forward — are
    # participants too, marked ``forwarded``.
    forwarded: list[str] = []
    for part in msg.walk():
        if part.get_content_type() == "message/rfc822":
            inner = part.get_payload()
            inner = inner[0] if isinstance(inner, list) and inner else inner
            if hasattr(inner, "get_all"):
                for name in ("From", "To", "Cc"):
                    forwarded += [str(v) for v in inner.get_all(name, [])]
    if not forwarded:
        forwarded = FORWARDED_LINE.findall(body)
    for _display, address in getaddresses(forwarded):
        address = address.strip().lower()
        if "@" in address and address not in seen and _domain(address) != settings.CAPTURE_DOMAIN.lower():
            seen.add(address)
            participants.append({"name": _display[:200], "address": address[:320], "field": "forwarded"})
    sent_at = None
    date = _header(msg, "Date")
    if date:
        try:
            sent_at = parsedate_to_datetime(date)
            if sent_at.tzinfo is None:
                sent_at = sent_at.replace(tzinfo=dt.UTC)
        except (TypeError, ValueError, IndexError):
            sent_at = None
    names = []
    for part in msg.iter_attachments():
        filename = part.get_filename()
        names.append((filename or f"unnamed {part.get_content_type()}")[:255])
    from_address = next((p["address"] for p in participants if p["field"] == "from"), "")
    return Parsed(
        message_id=message_id,
        subject=_header(msg, "Subject")[:SUBJECT_LIMIT],
        from_address=from_address,
        participants=participants,
        sent_at=sent_at,
        body=body[:BODY_LIMIT],
        attachment_names=names,
    )


# --- Matching and processing ---------------------------------------------------------------------------


def _domain(address: str) -> str:
    return address.rsplit("@", 1)[1].lower() if "@" in address else ""


def _excluded(address: str, never: set[str], members: set[str]) -> bool:
    domain = _domain(address)
    return (
        address in members
        or domain == settings.CAPTURE_DOMAIN.lower()
        or any(domain == d or domain.endswith("." + d) for d in never)
    )


def match(organization_id: int, external: list[str]) -> tuple[Account | None, list[Contact]]:
    """Contacts by address (the first external participant with a contact wins the account), else an
    account by the participants' domains, else ``(None, [])``."""
    contacts = (
        Contact.all_orgs.filter(organization_id=organization_id)
        .annotate(address=Lower("email"))
        .filter(address__in=external)
        .select_related("account")
        .order_by("pk")
    )
    by_address: dict[str, list[Contact]] = {}
    for contact in contacts:
        by_address.setdefault(contact.address, []).append(contact)
    for address in external:
        found = by_address.get(address)
        if found:
            account = found[0].account
            same = [c for cs in by_address.values() for c in cs if c.account_id == account.pk]
            return account, sorted(set(same), key=lambda c: c.pk)
    for address in external:
        domain = _domain(address)
        account = (
            Account.all_orgs.filter(organization_id=organization_id, domain__iexact=domain).order_by("pk").first()
            or Account.all_orgs.filter(organization_id=organization_id, domain__iexact=f"www.{domain}")
            .order_by("pk")
            .first()
        )
        if account is not None:
            return account, []
    return None, []


def _summary(captured: CapturedEmail) -> str:
    people = ", ".join(p["address"] for p in captured.participants if p["field"] in ("to", "cc"))
    head = f"Email: {captured.subject or '(no subject)'}\nFrom: {captured.from_address}\nTo: {people}"
    inner = ", ".join(p["address"] for p in captured.participants if p["field"] == "forwarded")
    if inner:
        head += f"\nForwarded: {inner}"
    if captured.attachment_names:
        head += "\nAttachments: " + ", ".join(captured.attachment_names)
    return f"{head}\n\n{captured.body_excerpt}".strip()


def _author_id(organization_id: int, captured: CapturedEmail) -> int | None:
    addresses = [p["address"] for p in captured.participants]
    if not addresses:
        return None
    members = dict(
        Membership.all_orgs.filter(organization_id=organization_id, user__email__in=addresses).values_list(
            "user__email", "user_id"
        )
    )
    for address in addresses:  # the sender first
        if address in members:
            return members[address]
    return None


def _create_activity(captured: CapturedEmail, account: Account, contacts: list[Contact]) -> Activity:
    org_id = captured.organization_id
    activity = Activity.all_orgs.create(
        organization_id=org_id, account=account, type=ActivityType.EMAIL, occurred_at=captured.sent_at,
        author_id=_author_id(org_id, captured), summary=_summary(captured),
    )  # fmt: skip
    ActivityContact.all_orgs.bulk_create(
        [ActivityContact(organization_id=org_id, activity=activity, contact=c) for c in contacts]
    )
    return activity


def _count(capture_id: int, outcome: str) -> None:
    column = {
        InboundOutcome.CAPTURED: "captured_count",
        InboundOutcome.UNMATCHED: "unmatched_count",
        InboundOutcome.DUPLICATE: "duplicate_count",
        InboundOutcome.SKIPPED: "skipped_count",
    }.get(outcome)
    if column:
        EmailCapture.all_orgs.filter(pk=capture_id).update(**{column: F(column) + 1})


def process_inbound(organization_id: int, inbound_id: int) -> str:
    """Turn one stored message into an activity, an unmatched inbox row, a duplicate or a skip.

    Idempotent: a processed row is left alone, and a Message-ID already captured is a duplicate."""
    with transaction.atomic():
        inbound = InboundEmail.all_orgs.select_for_update().get(pk=inbound_id, organization_id=organization_id)
        if inbound.processed_at is not None:
            return inbound.outcome
        capture = EmailCapture.all_orgs.get(organization_id=organization_id)
        outcome, reason, captured = _process(capture, bytes(inbound.raw))
        inbound.outcome, inbound.reason, inbound.captured = outcome, reason[:300], captured
        inbound.processed_at = timezone.now()
        if outcome != InboundOutcome.FAILED:
            inbound.raw = b""  # attachment bodies and the rest of the text are never kept
        if captured is not None:
            inbound.message_id = captured.message_id
        inbound.save(update_fields=["outcome", "reason", "captured", "processed_at", "raw", "message_id"])
        _count(capture.pk, outcome)
    return outcome


def _process(capture: EmailCapture, raw: bytes) -> tuple[str, str, CapturedEmail | None]:
    org_id = capture.organization_id
    try:
        parsed = parse_message(raw)
    except Exception as exc:  # noqa: BLE001 - a message we cannot read is recorded, never dropped
        return InboundOutcome.FAILED, f"could not parse: {type(exc).__name__}", None
    existing = CapturedEmail.all_orgs.filter(organization_id=org_id, message_id=parsed.message_id).first()
    if existing is not None:
        return InboundOutcome.DUPLICATE, "Message-ID already captured", existing
    never = {d.lower() for d in capture.never_capture_domains or []}
    members = {
        e.lower() for e in Membership.all_orgs.filter(organization_id=org_id).values_list("user__email", flat=True) if e
    }
    external = [p["address"] for p in parsed.participants if not _excluded(p["address"], never, members)]
    if not external:
        return InboundOutcome.SKIPPED, "no participant outside the never-capture domains and the members", None
    now = timezone.now()
    sent_at = parsed.sent_at if parsed.sent_at and parsed.sent_at <= now + FUTURE_SLACK else now
    account, contacts = match(org_id, external)
    try:
        with transaction.atomic():
            captured = CapturedEmail.all_orgs.create(
                organization_id=org_id, message_id=parsed.message_id, subject=parsed.subject,
                from_address=parsed.from_address, participants=parsed.participants, sent_at=sent_at,
                body_excerpt=parsed.body, attachment_names=parsed.attachment_names,
                status=CapturedEmailStatus.MATCHED if account else CapturedEmailStatus.UNMATCHED, account=account,
            )  # fmt: skip
    except IntegrityError:  # the same Message-ID processed concurrently
        existing = CapturedEmail.all_orgs.get(organization_id=org_id, message_id=parsed.message_id)
        return InboundOutcome.DUPLICATE, "Message-ID already captured", existing
    if account is None:
        return InboundOutcome.UNMATCHED, "no contact or account domain matched", captured
    captured.activity = _create_activity(captured, account, contacts)
    captured.save(update_fields=["activity"])
    return InboundOutcome.CAPTURED, f"on account {account.pk}", captured


# --- The unmatched inbox ---------------------------------------------------------------------------------


class InboxError(ValueError):
    """The captured email is not in the unmatched inbox (already assigned or discarded)."""


def assign(captured: CapturedEmail, account: Account, *, user: Any = None) -> Activity:
    """Put an unmatched email on ``account``'s timeline (an ``email`` activity)."""
    if account.organization_id != captured.organization_id:
        raise InboxError("That account is not in this organization.")
    with transaction.atomic():
        row = CapturedEmail.all_orgs.select_for_update().get(pk=captured.pk)
        if row.status != CapturedEmailStatus.UNMATCHED:
            raise InboxError("This email is no longer in the unmatched inbox.")
        row.activity = _create_activity(row, account, [])
        row.account, row.status, row.resolved_by = account, CapturedEmailStatus.MATCHED, user
        row.save(update_fields=["activity", "account", "status", "resolved_by"])
    captured.refresh_from_db()
    return row.activity


def discard(captured: CapturedEmail, *, user: Any = None) -> None:
    """Drop an unmatched email from the inbox (its text is erased; the Message-ID stays, so a resend of
    the same message is still a duplicate)."""
    with transaction.atomic():
        row = CapturedEmail.all_orgs.select_for_update().get(pk=captured.pk)
        if row.status != CapturedEmailStatus.UNMATCHED:
            raise InboxError("This email is no longer in the unmatched inbox.")
        row.status, row.resolved_by, row.body_excerpt, row.attachment_names = (
            CapturedEmailStatus.DISCARDED, user, "", []
        )  # fmt: skip
        row.save(update_fields=["status", "resolved_by", "body_excerpt", "attachment_names"])
    captured.refresh_from_db()


# --- IMAP polling ----------------------------------------------------------------------------------------

IMAP_KIND = "imap"
POLL_LIMIT = 200  # messages per poll; the rest waits for the next one


def set_mailbox(
    capture: EmailCapture, *, host: str, port: int = 993, user: str, password: str, folder: str = "INBOX",
    by: Any = None,
) -> Connection:  # fmt: skip
    """Create or replace the capture mailbox: a Connection of kind ``imap`` (credentials — host, port, user,
    password, folder — encrypted at rest like every connection's). It is not a sync connector: the
    Connectors page and the ``integrations`` API leave it out; the Email capture page manages it."""
    connection = capture.mailbox
    if connection is None:
        connection = Connection(
            organization_id=capture.organization_id, kind=IMAP_KIND, name=f"Email capture mailbox {capture.pk}",
            base_url=f"https://{host}", created_by=by,
        )  # fmt: skip
    connection.base_url = f"https://{host}"
    connection.credentials = {"host": host, "port": str(port), "user": user, "password": password, "folder": folder}
    connection.save()
    if capture.mailbox_id != connection.pk:
        capture.mailbox = connection
        capture.save(update_fields=["mailbox", "updated_at"])
    return connection


def remove_mailbox(capture: EmailCapture) -> None:
    if capture.mailbox_id:
        Connection.all_orgs.filter(pk=capture.mailbox_id).delete()
        capture.mailbox = None


def mailbox_problem(host: str) -> str | None:
    """The outbound guard's verdict on the mailbox host (no internal addresses), or ``None``: the early
    feedback of the settings form. A name that does not resolve yet is accepted here; the check that
    counts is :func:`mailbox_address`, made at every poll."""
    from cs_platform.outbound import OutboundRefused, check_url

    try:
        check_url(f"https://{_url_host(host)}/")
    except OutboundRefused as exc:
        return str(exc)
    return None


def _url_host(host: str) -> str:
    host = (host or "").strip()
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def mailbox_address(host: str, port: int) -> tuple[str, str]:
    """``(name, ip)``: the mailbox host checked by the outbound guard's address rules
    (``cs_platform.outbound``: no loopback, private, link-local or metadata address unless the operator
    allows the network with ``OUTBOUND_ALLOWED_NETWORKS``), resolved once. The poll then connects to
    that checked ``ip`` (never a second lookup, so a DNS answer that changes in between cannot point it
    inside) and verifies the TLS certificate against ``name``. Raises ``OutboundRefused`` with the
    reason in plain words, ``OSError`` when the name does not resolve."""
    from cs_platform.outbound import checked_addresses, parse_url

    target = parse_url(f"https://{_url_host(host)}:{int(port)}/")  # syntax, every spelling of an IP literal
    addresses = checked_addresses(target, subject="the mailbox host")
    return target.host, str(addresses[0])


def _tls_context() -> Any:
    """Certificates verified (imaplib's own default verifies nothing): the system CAs, or the operator's
    ``OUTBOUND_CA_BUNDLE`` for a mail server with a private CA."""
    import ssl

    return ssl.create_default_context(cafile=getattr(settings, "OUTBOUND_CA_BUNDLE", "") or None)


def guarded_mailbox(host: str, port: int, *, timeout: float = 30) -> Any:
    """An imap-tools ``MailBox`` (IMAP over TLS) connected to the address :func:`mailbox_address` checked,
    with SNI and certificate verification for the host name. Raises before any connection when the
    guard refuses the host."""
    import imaplib
    import socket

    from imap_tools import MailBox

    name, ip = mailbox_address(host, port)

    class PinnedIMAP4SSL(imaplib.IMAP4_SSL):
        def _create_socket(self, timeout: float | None) -> Any:
            sock = socket.create_connection((ip, self.port), timeout)
            return self.ssl_context.wrap_socket(sock, server_hostname=self.host)

    class GuardedMailBox(MailBox):
        def _get_mailbox_client(self) -> imaplib.IMAP4:
            return PinnedIMAP4SSL(name, port, ssl_context=self._ssl_context, timeout=self._timeout)

    return GuardedMailBox(name, port, timeout=timeout, ssl_context=_tls_context())


def _poll_error(exc: BaseException, host: str, port: int) -> str:
    """What the admin reads on the Email capture page (and the API's ``last_poll_message``)."""
    import socket
    import ssl

    from imap_tools.errors import MailboxFolderSelectError, MailboxLoginError

    from cs_platform.outbound import OutboundRefused

    name = type(exc).__name__
    if isinstance(exc, MailboxLoginError):
        said = str(exc).split("Data:", 1)[-1].strip()
        text = f"the mailbox refused the user name or password (server said: {said})"
    elif isinstance(exc, MailboxFolderSelectError):
        text = "the folder could not be opened (check its name)"
    elif isinstance(exc, OutboundRefused):
        text = exc.reason
    elif isinstance(exc, ssl.SSLCertVerificationError):
        text = f"the TLS certificate of {host} could not be verified ({exc.verify_message})"
    elif isinstance(exc, ConnectionRefusedError):
        text = f"connection refused by {host}:{port}"
    elif isinstance(exc, socket.gaierror):
        text = f"the host name {host} does not resolve"
    elif isinstance(exc, TimeoutError):
        text = f"{host}:{port} did not answer in time"
    else:
        text = str(exc)
    return f"{name}: {text}"[:300]


def poll_mailbox(organization_id: int, *, mailbox_factory: Any = None) -> int:
    """Fetch the unseen messages of the organization's capture mailbox (imap-tools), store each, then mark
    it seen (``\\Seen``, left in its folder); returns how many were stored. A message is marked seen only
    after its row is committed, so a crash in between fetches it again (and the Message-ID dedupes it).

    The connection goes through the outbound guard (:func:`guarded_mailbox`): the host is checked and
    resolved once, the checked address is the one connected to, and the certificate is verified. The
    outcome of the run (``N new messages`` or the error in plain words) is recorded on the capture
    settings (``last_poll_at``, ``last_poll_ok``, ``last_poll_message``), which the Email capture page and
    the API show. ``mailbox_factory`` (tests) replaces the connection entirely."""
    from imap_tools import AND, MailMessageFlags

    capture = EmailCapture.all_orgs.select_related("mailbox").get(organization_id=organization_id)
    connection: Connection | None = capture.mailbox
    if connection is None or connection.paused:
        return 0
    creds = connection.credentials
    host, port = creds.get("host", ""), int(creds.get("port") or 993)
    stored = 0
    try:
        factory = mailbox_factory or (lambda: guarded_mailbox(host, port, timeout=30))
        with factory().login(creds.get("user", ""), creds.get("password", ""), creds.get("folder") or "INBOX") as box:
            for msg in box.fetch(AND(seen=False), mark_seen=False, limit=POLL_LIMIT, bulk=True):
                store_inbound(organization_id, msg.obj.as_bytes(), InboundSource.IMAP)
                box.flag(msg.uid, MailMessageFlags.SEEN, True)
                stored += 1
        ok, message = True, f"{stored} new message{'s' if stored != 1 else ''}"
    except Exception as exc:  # noqa: BLE001 - recorded on the settings for the admin page
        ok, message = False, _poll_error(exc, host, port)
    EmailCapture.all_orgs.filter(pk=capture.pk).update(
        last_poll_at=timezone.now(), last_poll_ok=ok, last_poll_message=message
    )
    return stored
