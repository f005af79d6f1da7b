"""Email to the timeline (issue 21 item 5): parsing, matching, dedupe, never-capture, the unmatched inbox, the
SMTP listener's door (550 / 552, a real aiosmtpd Controller on loopback) and the IMAP poller (fake mailbox).

The end-to-end acceptance with a real Celery worker is tests/test_email_capture_worker.py.
"""

from __future__ import annotations

import smtplib

import pytest
from django.db import connection as db_connection
from django.utils import timezone

from accounts.models import Activity
from cs_platform.tenancy import org_scope
from integrations import email_capture as ec
from integrations.choices import CapturedEmailStatus, InboundOutcome, InboundSource
from integrations.models import CapturedEmail, Connection, EmailCapture, InboundEmail

from .email_capture_helpers import listener, message
from .factories import AccountFactory, ContactFactory, MembershipFactory, UserFactory


@pytest.fixture
def setup(org):
    csm = MembershipFactory(organization=org, role="csm", user=UserFactory(username="cs@acme.test"))
    capture = ec.ensure_capture(org)
    account = AccountFactory(organization=org, domain="customer.example")
    contact = ContactFactory(account=account, email="Jane@Customer.example")
    other = AccountFactory(organization=org, domain="other.example")
    return {"org": org, "csm": csm, "capture": capture, "account": account, "contact": contact, "other": other}


def deliver(org, msg) -> tuple[str, InboundEmail]:
    row = ec.store_inbound(org.pk, msg.as_bytes(), InboundSource.SMTP)
    outcome = ec.process_inbound(org.pk, row.pk)
    row.refresh_from_db()
    return outcome, row


def test_capture_address_and_defaults(setup):
    capture, org = setup["capture"], setup["org"]
    address = ec.capture_address(capture)
    assert address == f"acme+{capture.token}@capture.localhost"
    assert len(capture.token) == 20
    assert capture.never_capture_domains == ["acme.test"]  # the members' own domain
    assert ec.find_capture(address).pk == capture.pk
    assert ec.find_capture(address.upper()).pk == capture.pk
    assert ec.find_capture(f"acme+{'0' * 20}@capture.localhost") is None
    assert ec.find_capture(f"globex+{capture.token}@capture.localhost") is None
    assert ec.find_capture(f"acme+{capture.token}@elsewhere.example") is None
    old = address
    ec.regenerate_token(capture)
    assert ec.find_capture(old) is None and ec.find_capture(ec.capture_address(capture)).pk == capture.pk
    assert ec.ensure_capture(org).pk == capture.pk


def test_contact_match_becomes_an_email_activity(setup):
    org, account, contact = setup["org"], setup["account"], setup["contact"]
    msg = message(sender="Jane <jane@customer.example>", to="cs@acme.test", cc=ec.capture_address(setup["capture"]))
    outcome, row = deliver(org, msg)
    assert outcome == InboundOutcome.CAPTURED
    activity = Activity.all_orgs.get(organization=org)
    assert activity.account_id == account.pk and activity.type == "email"
    assert activity.author_id == setup["csm"].user_id  # the member among the participants
    assert list(activity.contacts.values_list("pk", flat=True)) == [contact.pk]
    assert "Renewal questions" in activity.summary and "a few questions" in activity.summary
    assert activity.is_customer_touch
    captured = CapturedEmail.all_orgs.get(organization=org)
    assert captured.status == CapturedEmailStatus.MATCHED and captured.activity_id == activity.pk
    assert {p["address"] for p in captured.participants} == {"jane@customer.example", "cs@acme.test"}
    assert bytes(row.raw) == b"" and row.captured_id == captured.pk  # the raw message is not kept
    assert EmailCapture.all_orgs.get(organization=org).captured_count == 1


def test_same_message_id_twice_changes_nothing(setup):
    org = setup["org"]
    msg = message(sender="jane@customer.example", to="cs@acme.test", message_id="<same@mail.example>")
    assert deliver(org, msg)[0] == InboundOutcome.CAPTURED
    again = message(sender="jane@customer.example", to="cs@acme.test", message_id="<same@mail.example>", body="x")
    outcome, row = deliver(org, again)
    assert outcome == InboundOutcome.DUPLICATE
    assert Activity.all_orgs.filter(organization=org).count() == 1
    assert CapturedEmail.all_orgs.filter(organization=org).count() == 1
    assert EmailCapture.all_orgs.get(organization=org).duplicate_count == 1
    # Idempotent task: processing the same row again changes nothing either.
    assert ec.process_inbound(org.pk, row.pk) == InboundOutcome.DUPLICATE
    assert EmailCapture.all_orgs.get(organization=org).duplicate_count == 1


def test_same_message_id_in_another_org_is_its_own(setup, other_org):
    ec.ensure_capture(other_org)
    AccountFactory(organization=other_org, domain="customer.example")
    msg = message(sender="jane@customer.example", to="x@globex.test", message_id="<shared@mail.example>")
    assert deliver(setup["org"], msg)[0] == InboundOutcome.CAPTURED
    with org_scope(other_org):
        assert deliver(other_org, msg)[0] == InboundOutcome.CAPTURED


def test_account_by_domain_when_no_contact(setup):
    outcome, _ = deliver(setup["org"], message(sender="bob@other.example", to="cs@acme.test"))
    assert outcome == InboundOutcome.CAPTURED
    assert Activity.all_orgs.get(organization=setup["org"]).account_id == setup["other"].pk


def test_unknown_sender_lands_in_the_unmatched_inbox_and_an_admin_assigns_it(setup):
    org = setup["org"]
    outcome, _ = deliver(org, message(sender="who@unknown.example", to="cs@acme.test"))
    assert outcome == InboundOutcome.UNMATCHED
    assert not Activity.all_orgs.filter(organization=org).exists()
    row = CapturedEmail.all_orgs.get(organization=org)
    assert row.status == CapturedEmailStatus.UNMATCHED and row.account_id is None
    activity = ec.assign(row, setup["account"], user=setup["csm"].user)
    assert activity.account_id == setup["account"].pk and activity.type == "email"
    assert row.status == CapturedEmailStatus.MATCHED and row.activity_id == activity.pk
    with pytest.raises(ec.InboxError):
        ec.assign(row, setup["other"])
    assert Activity.all_orgs.filter(organization=org).count() == 1


def test_discard_erases_the_text_and_keeps_the_dedupe_key(setup):
    org = setup["org"]
    deliver(org, message(sender="who@unknown.example", to="cs@acme.test", message_id="<gone@x.example>"))
    row = CapturedEmail.all_orgs.get(organization=org)
    ec.discard(row)
    assert row.status == CapturedEmailStatus.DISCARDED and row.body_excerpt == ""
    again = message(sender="who@unknown.example", to="cs@acme.test", message_id="<gone@x.example>")
    assert deliver(org, again)[0] == InboundOutcome.DUPLICATE


def test_never_capture_domains_are_skipped_and_counted(setup):
    org, capture = setup["org"], setup["capture"]
    capture.never_capture_domains = ["acme.test", "lawyers.example"]
    capture.save()
    # Internal mail (members only) and a never-capture domain: not captured, nothing kept, counted.
    assert deliver(org, message(sender="cs@acme.test", to="boss@acme.test"))[0] == InboundOutcome.SKIPPED
    outcome, row = deliver(org, message(sender="counsel@lawyers.example", to="cs@acme.test"))
    assert outcome == InboundOutcome.SKIPPED and bytes(row.raw) == b""
    assert deliver(org, message(sender="x@mail.lawyers.example", to="cs@acme.test"))[0] == InboundOutcome.SKIPPED
    assert not CapturedEmail.all_orgs.filter(organization=org).exists()
    assert EmailCapture.all_orgs.get(organization=org).skipped_count == 3
    # A customer alongside a never-capture participant is captured; the lawyer is not matched on.
    msg = message(sender="counsel@lawyers.example", to="cs@acme.test", cc="jane@customer.example")
    assert deliver(org, msg)[0] == InboundOutcome.CAPTURED


def test_body_cap_html_and_attachment_names_only(setup):
    org = setup["org"]
    secret = b"ATTACHMENT-BODY-" * 100
    long_body = "word " * 1000
    msg = message(sender="jane@customer.example", to="cs@acme.test", body=long_body, attachment=("plan.pdf", secret))
    deliver(org, msg)
    row = CapturedEmail.all_orgs.get(organization=org)
    assert len(row.body_excerpt) == 2000 and row.body_excerpt.startswith("word word")
    assert row.attachment_names == ["plan.pdf"]
    stored = str(CapturedEmail.all_orgs.filter(pk=row.pk).values().get()) + Activity.all_orgs.get().summary
    assert "ATTACHMENT-BODY" not in stored
    assert not InboundEmail.all_orgs.filter(organization=org).exclude(raw=b"").exists()

    parsed = ec.parse_message(
        b"From: a@customer.example\r\nTo: b@acme.test\r\nSubject: hi\r\nContent-Type: text/html\r\n\r\n"
        b"<html><style>p{}</style><p>Hello &amp; <b>welcome</b></p><script>x()</script></html>"
    )
    assert parsed.body == "Hello & welcome"
    assert parsed.message_id.startswith("<sha256-")  # no Message-ID: the content's digest dedupes


def test_a_message_dated_far_ahead_is_placed_at_its_arrival(setup):
    msg = message(sender="jane@customer.example", to="cs@acme.test")
    msg.replace_header("Date", "Mon, 1 Jan 2035 10:00:00 +0000")
    deliver(setup["org"], msg)
    assert Activity.all_orgs.get().occurred_at <= timezone.now()


@pytest.mark.django_db(transaction=True)
def test_the_listener_refuses_other_recipients_and_oversize(org, settings, eager):
    settings.EMAIL_CAPTURE_MAX_BYTES = 50_000
    capture = ec.ensure_capture(org)
    AccountFactory(organization=org, domain="customer.example")
    address = ec.capture_address(capture)
    with listener() as (host, port), smtplib.SMTP(host, port, timeout=10) as smtp:
        smtp.ehlo()
        assert smtp.has_extn("size") and smtp.esmtp_features["size"] == "50000"
        smtp.mail("jane@customer.example")
        code, _ = smtp.rcpt(f"acme+wrongtoken@{settings.CAPTURE_DOMAIN}")
        assert code == 550
        code, _ = smtp.rcpt("someone@customer.example")
        assert code == 550
        smtp.rset()
        big = message(sender="jane@customer.example", to=address, body="y" * 80_000)
        with pytest.raises(smtplib.SMTPException) as refused:
            smtp.sendmail("jane@customer.example", [address], big.as_bytes())
        assert "552" in str(refused.value)
        assert not InboundEmail.all_orgs.filter(organization=org).exists()
        # An accepted one is stored, then processed (eager here; the worker test runs a real worker).
        smtp.sendmail(
            "jane@customer.example", [address], message(sender="jane@customer.example", to=address).as_bytes()
        )
    row = InboundEmail.all_orgs.get(organization=org)
    assert (
        row.source == "smtp" and row.outcome == InboundOutcome.CAPTURED and row.envelope_from == "jane@customer.example"
    )
    assert Activity.all_orgs.filter(organization=org, type="email").count() == 1


class FakeMessage:
    def __init__(self, uid: str, msg) -> None:
        self.uid, self.obj = uid, msg


class FakeMailbox:
    """imap-tools' MailBox surface poll_mailbox uses: login → context manager, fetch, flag."""

    def __init__(self, messages) -> None:
        self.messages, self.seen, self.login_args = messages, set(), None

    def login(self, user, password, folder):
        self.login_args = (user, password, folder)
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def fetch(self, criteria, mark_seen, limit, bulk):
        assert mark_seen is False and "UNSEEN" in str(criteria)
        return [m for m in self.messages if m.uid not in self.seen]

    def flag(self, uid, flag, value):
        # Marked seen only once the message's row exists.
        assert InboundEmail.all_orgs.filter(raw__isnull=False).count() >= len(self.seen) + 1
        self.seen.add(uid)


def test_imap_poll_stores_then_marks_seen(setup, django_capture_on_commit_callbacks):
    org, capture = setup["org"], setup["capture"]
    connection = ec.set_mailbox(capture, host="imap.mail.example", user="capture", password="s3cret")
    with db_connection.cursor() as cursor:  # the column holds ciphertext only
        cursor.execute("SELECT credentials_encrypted FROM integrations_connection WHERE id = %s", [connection.pk])
        assert "s3cret" not in cursor.fetchone()[0]
    assert Connection.all_orgs.get(pk=connection.pk).credentials["password"] == "s3cret"
    box = FakeMailbox([FakeMessage("1", message(sender="jane@customer.example", to="capture@mail.example"))])
    assert ec.poll_mailbox(org.pk, mailbox_factory=lambda: box) == 1
    assert box.login_args == ("capture", "s3cret", "INBOX") and box.seen == {"1"}
    row = InboundEmail.all_orgs.get(organization=org)
    assert row.source == "imap"
    ec.process_inbound(org.pk, row.pk)
    assert Activity.all_orgs.get(organization=org).account_id == setup["account"].pk
    assert ec.poll_mailbox(org.pk, mailbox_factory=lambda: box) == 0  # nothing unseen left
    capture.refresh_from_db()
    assert capture.last_poll_ok is True and capture.last_poll_message == "0 new messages"


def test_the_beat_sweep_queues_one_poll_per_organization_with_a_mailbox(setup, other_org, monkeypatch):
    from integrations import tasks

    queued = []
    monkeypatch.setattr(tasks.poll_capture_mailbox, "delay", lambda org_id: queued.append(org_id))
    ec.ensure_capture(other_org)  # no mailbox: not polled
    ec.set_mailbox(setup["capture"], host="imap.mail.example", user="u", password="p")
    assert tasks.poll_all_capture_mailboxes() == 1
    assert queued == [setup["org"].pk]
    Connection.all_orgs.filter(pk=setup["capture"].mailbox_id).update(paused=True)
    assert tasks.poll_all_capture_mailboxes() == 0


def test_a_failing_mailbox_is_recorded_on_the_settings(setup):
    ec.set_mailbox(setup["capture"], host="imap.mail.example", user="u", password="p")

    def broken():
        raise ConnectionRefusedError("connection refused")

    assert ec.poll_mailbox(setup["org"].pk, mailbox_factory=broken) == 0
    capture = EmailCapture.all_orgs.get(pk=setup["capture"].pk)
    assert capture.last_poll_ok is False and "ConnectionRefusedError" in capture.last_poll_message


def test_a_forwarded_message_matches_on_its_original_participants(setup):
    org, account = setup["org"], setup["account"]
    address = ec.capture_address(setup["capture"])
    inline = message(
        sender="cs@acme.test", to=address, subject="Fwd: Renewal",
        body="FYI\n\n---------- Forwarded message ---------\nFrom: Jane <jane@customer.example>\n"
        "Date: Mon, 1 Dec 2026\nSubject: Renewal\nTo: cs@acme.test\n\nCan we talk?",
    )  # fmt: skip
    assert deliver(org, inline)[0] == InboundOutcome.CAPTURED
    activity = Activity.all_orgs.get(organization=org)
    assert activity.account_id == account.pk and activity.author_id == setup["csm"].user_id
    assert "Forwarded: jane@customer.example" in activity.summary

    original = message(sender="bob@other.example", to="cs@acme.test", subject="Question")
    attached = message(sender="cs@acme.test", to=address, subject="Fwd: Question", body="see attached")
    attached.add_attachment(original)  # message/rfc822
    assert deliver(org, attached)[0] == InboundOutcome.CAPTURED
    assert Activity.all_orgs.filter(organization=org, account=setup["other"]).count() == 1


def test_a_message_stored_while_the_broker_is_down_is_queued_again_by_the_sweep(
    setup, alice, client, monkeypatch, django_capture_on_commit_callbacks, eager
):
    """The queueing after the commit fails (the broker is unreachable: ``delay`` raises as kombu does): the
    message is still stored and accepted, the admin sees it waiting, and the beat's sweep processes it."""
    from django.urls import reverse
    from kombu.exceptions import OperationalError

    from integrations import tasks

    org = setup["org"]

    def raw(sender: str) -> bytes:
        return message(sender=sender, to="cs@acme.test").as_bytes()

    def broker_down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(tasks.process_inbound_email, "delay", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        row = ec.store_inbound(org.pk, raw("jane@customer.example"), InboundSource.SMTP)
    monkeypatch.undo()
    row.refresh_from_db()
    assert row.processed_at is None and ec.waiting_count(org.pk) == 1
    client.force_login(alice)
    page = client.get(reverse("admin-email-capture", args=[org.slug])).content.decode()
    assert 'data-testid="waiting-count"' in page and "1 waiting" in page

    assert ec.requeue_unprocessed() == 0  # not yet: the first queueing may still be on its way
    InboundEmail.all_orgs.filter(pk=row.pk).update(received_at=timezone.now() - timezone.timedelta(minutes=5))
    stale = ec.store_inbound(org.pk, raw("old@customer.example"), InboundSource.SMTP)
    InboundEmail.all_orgs.filter(pk=stale.pk).update(received_at=timezone.now() - timezone.timedelta(days=2))

    assert tasks.requeue_unprocessed_emails() == 1  # the day-old one is left counted, not queued forever
    row.refresh_from_db()
    assert row.processed_at is not None and row.outcome == InboundOutcome.CAPTURED
    assert Activity.objects.for_org(org).filter(account=setup["account"], type="email").count() == 1
    assert ec.requeue_unprocessed() == 0  # processed once, never again
    assert ec.waiting_count(org.pk) == 1  # the two-day-old message, still shown to the admin
