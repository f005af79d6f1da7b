"""Email to the timeline through a real IMAP mailbox (issue 21: "a real local mail server started by the
tests"): Debian's Dovecot started per test (tests/dovecot_helpers.py), messages delivered into it with IMAP
``APPEND``, the organization's capture mailbox pointed at it, and the poller run through its production
entry, the Celery task ``integrations.tasks.poll_capture_mailbox`` (eager here; the worker test at the
end runs it on a real ``celery worker``).

The connection is the production one: ``email_capture.guarded_mailbox`` (the outbound guard's address
check, the checked address pinned, TLS with the certificate verified against ``OUTBOUND_CA_BUNDLE``).
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import Activity
from cs_platform import outbound
from integrations import email_capture as ec
from integrations import tasks
from integrations.choices import CapturedEmailStatus, InboundOutcome
from integrations.models import CapturedEmail, EmailCapture, InboundEmail
from tests import worker_process

from .dovecot_helpers import CERT_NAME, IMAP_MARKS, running_dovecot
from .email_capture_helpers import message
from .factories import AccountFactory, ContactFactory, MembershipFactory, UserFactory

pytestmark = [*IMAP_MARKS]


@pytest.fixture
def dovecot():
    with running_dovecot() as server:
        yield server


@pytest.fixture
def setup(org, dovecot, settings):
    """An organization whose capture mailbox is the test Dovecot (loopback allowed, its CA trusted)."""
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    settings.OUTBOUND_CA_BUNDLE = dovecot.ca_file
    MembershipFactory(organization=org, role="csm", user=UserFactory(username="cs@acme.test", email="cs@acme.test"))
    capture = ec.ensure_capture(org)
    capture.never_capture_domains = ["acme.test", "lawfirm.example"]
    capture.save(update_fields=["never_capture_domains"])
    account = AccountFactory(organization=org, domain="customer.example")
    contact = ContactFactory(account=account, email="Jane@Customer.example")
    other = AccountFactory(organization=org, domain="other.example")
    ec.set_mailbox(capture, host=dovecot.host, port=dovecot.port, user=dovecot.user, password=dovecot.password)
    return {"org": org, "capture": capture, "account": account, "contact": contact, "other": other}


def poll(org, django_capture_on_commit_callbacks) -> int:
    """The production entry, eager: the poll task, then each stored message's processing task on commit."""
    with django_capture_on_commit_callbacks(execute=True):
        return tasks.poll_capture_mailbox.delay(org.pk).get()


def raw(**kwargs) -> bytes:
    return message(to="cs@acme.test", **kwargs).as_bytes()


def test_polled_messages_become_activities_the_inbox_or_skips_and_are_marked_seen(
    setup, dovecot, eager, django_capture_on_commit_callbacks
):
    org, account, other = setup["org"], setup["account"], setup["other"]
    dovecot.append(raw(sender="jane@customer.example", subject="By contact", message_id="<c1@customer.example>"))
    dovecot.append(raw(sender="bob@other.example", subject="By domain", message_id="<d1@other.example>"))
    dovecot.append(raw(sender="who@nowhere.example", subject="Unknown", message_id="<u1@nowhere.example>"))
    dovecot.append(raw(sender="counsel@lawfirm.example", subject="Privileged", message_id="<n1@lawfirm.example>"))
    assert len(dovecot.flags()) == 4 and all("S" not in f for f in dovecot.flags().values())

    assert poll(org, django_capture_on_commit_callbacks) == 4

    by_contact = Activity.all_orgs.get(organization=org, type="email", summary__contains="By contact")
    assert by_contact.account_id == account.pk
    assert list(by_contact.contacts.values_list("pk", flat=True)) == [setup["contact"].pk]
    by_domain = Activity.all_orgs.get(organization=org, type="email", summary__contains="By domain")
    assert by_domain.account_id == other.pk
    assert Activity.all_orgs.filter(organization=org, type="email").count() == 2
    unknown = CapturedEmail.all_orgs.get(organization=org, message_id="<u1@nowhere.example>")
    assert unknown.status == CapturedEmailStatus.UNMATCHED and unknown.activity_id is None
    # A never-capture domain: nothing kept but the outcome.
    assert not CapturedEmail.all_orgs.filter(organization=org, subject="Privileged").exists()
    outcomes = sorted(InboundEmail.all_orgs.filter(organization=org).values_list("source", "outcome"))
    assert outcomes == sorted(
        [("imap", InboundOutcome.CAPTURED)] * 2 + [("imap", InboundOutcome.UNMATCHED), ("imap", InboundOutcome.SKIPPED)]
    )
    # On the server: every message flagged \Seen and left in INBOX (the poller marks seen, never moves).
    flags = dovecot.flags()
    assert len(flags) == 4 and all("S" in f for f in flags.values()), flags
    capture = EmailCapture.all_orgs.get(pk=setup["capture"].pk)
    assert capture.last_poll_ok is True and capture.last_poll_message == "4 new messages"
    assert (capture.captured_count, capture.unmatched_count, capture.skipped_count) == (2, 1, 1)

    # The next poll finds nothing unseen: nothing is processed twice.
    assert poll(org, django_capture_on_commit_callbacks) == 0
    assert InboundEmail.all_orgs.filter(organization=org).count() == 4
    capture.refresh_from_db()
    assert capture.last_poll_ok is True and capture.last_poll_message == "0 new messages"


def test_the_same_message_id_again_changes_nothing(setup, dovecot, eager, django_capture_on_commit_callbacks):
    org = setup["org"]
    first = raw(sender="jane@customer.example", subject="Renewal", message_id="<same@customer.example>")
    dovecot.append(first)
    assert poll(org, django_capture_on_commit_callbacks) == 1
    activity = Activity.all_orgs.get(organization=org, type="email")

    # The same message filed again (a new UID, unseen), e.g. copied back by a mail client.
    dovecot.append(first)
    assert poll(org, django_capture_on_commit_callbacks) == 1
    assert list(Activity.all_orgs.filter(organization=org, type="email")) == [activity]
    assert CapturedEmail.all_orgs.filter(organization=org).count() == 1
    second = InboundEmail.all_orgs.filter(organization=org).order_by("-pk").first()
    assert second.outcome == InboundOutcome.DUPLICATE
    assert all("S" in f for f in dovecot.flags().values())


def test_a_wrong_password_is_recorded_for_the_admin(
    setup, dovecot, eager, django_capture_on_commit_callbacks, client, alice
):
    org, capture = setup["org"], setup["capture"]
    ec.set_mailbox(capture, host=dovecot.host, port=dovecot.port, user=dovecot.user, password="not-the-password")
    dovecot.append(raw(sender="jane@customer.example", message_id="<waiting@customer.example>"))

    assert poll(org, django_capture_on_commit_callbacks) == 0

    capture.refresh_from_db()
    assert capture.last_poll_ok is False
    assert capture.last_poll_message.startswith("MailboxLoginError: the mailbox refused the user name or password")
    assert "AUTHENTICATIONFAILED" in capture.last_poll_message
    assert not InboundEmail.all_orgs.filter(organization=org).exists()
    assert "S" not in dovecot.flags()["<waiting@customer.example>"]  # still waiting for the next poll
    # Shown to the admin on the Email capture page and in the API, not only in a log.
    client.force_login(alice)
    page = client.get(reverse("admin-email-capture", args=[org.slug])).content.decode()
    assert "the mailbox refused the user name or password" in page
    assert "pill-bad" in page


def test_an_untrusted_certificate_is_refused(setup, dovecot, eager, django_capture_on_commit_callbacks, settings):
    """imaplib verifies nothing by default; the poller does (here the test CA is not trusted)."""
    settings.OUTBOUND_CA_BUNDLE = ""
    dovecot.append(raw(sender="jane@customer.example", message_id="<tls@customer.example>"))
    logins = dovecot.log.count("Login:")
    assert poll(setup["org"], django_capture_on_commit_callbacks) == 0
    capture = EmailCapture.all_orgs.get(pk=setup["capture"].pk)
    assert capture.last_poll_ok is False
    assert capture.last_poll_message.startswith("SSLCertVerificationError: the TLS certificate of 127.0.0.1")
    assert dovecot.log.count("Login:") == logins  # no credentials were sent
    assert "S" not in dovecot.flags()["<tls@customer.example>"]


def test_a_mailbox_host_on_an_internal_address_is_refused_unless_allowed(
    setup, dovecot, eager, django_capture_on_commit_callbacks, settings, monkeypatch
):
    """The IMAP connection is an outbound call: the guard's address rules apply before any connection, and
    the address checked is the address connected to (a name resolved once, then pinned)."""
    org, capture = setup["org"], setup["capture"]
    lookups = []

    def resolver(host, port, timeout):
        lookups.append(host)
        return ["127.0.0.1"] if host == CERT_NAME else []

    monkeypatch.setattr(outbound, "system_resolver", resolver)
    ec.set_mailbox(capture, host=CERT_NAME, port=dovecot.port, user=dovecot.user, password=dovecot.password)
    dovecot.append(raw(sender="jane@customer.example", message_id="<guard@customer.example>"))
    connections = dovecot.log.count("imap-login:")

    settings.OUTBOUND_ALLOWED_NETWORKS = []
    assert poll(org, django_capture_on_commit_callbacks) == 0
    capture.refresh_from_db()
    assert capture.last_poll_ok is False
    assert capture.last_poll_message == (
        f"OutboundRefused: Address not allowed: the mailbox host {CERT_NAME} resolves to a loopback address. "
        "Retain connects only to public internet addresses; an operator can allow a private network with "
        "OUTBOUND_ALLOWED_NETWORKS."
    )
    # An IP literal is judged without a lookup; a metadata address never, whatever is allowed.
    ec.set_mailbox(capture, host="127.0.0.1", port=dovecot.port, user=dovecot.user, password=dovecot.password)
    assert poll(org, django_capture_on_commit_callbacks) == 0
    capture.refresh_from_db()
    assert "the mailbox host 127.0.0.1 is a loopback address" in capture.last_poll_message
    assert dovecot.log.count("imap-login:") == connections  # Dovecot never saw a connection
    settings.OUTBOUND_ALLOWED_NETWORKS = ["0.0.0.0/0"]
    with pytest.raises(outbound.OutboundRefused, match="metadata"):
        ec.mailbox_address("169.254.169.254", 993)
    with pytest.raises(outbound.OutboundRefused, match="localhost"):
        ec.mailbox_address("localhost", 993)

    # Allowed: the name is resolved once and the checked address is the one connected to, while the
    # certificate is verified against the name (the test certificate carries it).
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    ec.set_mailbox(capture, host=CERT_NAME, port=dovecot.port, user=dovecot.user, password=dovecot.password)
    lookups.clear()
    assert poll(org, django_capture_on_commit_callbacks) == 1
    assert lookups == [CERT_NAME]
    assert Activity.all_orgs.filter(organization=org, type="email").count() == 1


# --- A real worker --------------------------------------------------------------------------------------


@pytest.fixture
def queue(monkeypatch):
    with worker_process.own_queue(monkeypatch, "retain-imap-test") as name:
        yield name


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.worker
@pytest.mark.skipif(not worker_process.AVAILABLE, reason=worker_process.NEEDS)
@pytest.mark.django_db(transaction=True)
def test_the_beat_poll_on_a_real_worker_reaches_the_timeline(org, dovecot, queue, tmp_path, settings):
    """The beat entry queues the poll; a ``celery worker`` subprocess connects to Dovecot, stores the
    message, processes it (a second task) and the activity appears; the message is marked seen."""
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    settings.OUTBOUND_CA_BUNDLE = dovecot.ca_file
    capture = ec.ensure_capture(org)
    account = AccountFactory(organization=org, domain="customer.example")
    ContactFactory(account=account, email="jane@customer.example")
    ec.set_mailbox(capture, host=dovecot.host, port=dovecot.port, user=dovecot.user, password=dovecot.password)
    dovecot.append(raw(sender="jane@customer.example", message_id="<worker@customer.example>"))

    with worker_process.running(
        queue, tmp_path, OUTBOUND_ALLOWED_NETWORKS="127.0.0.0/8", OUTBOUND_CA_BUNDLE=dovecot.ca_file
    ) as (_process, log):
        assert tasks.poll_all_capture_mailboxes() == 1
        worker_process.wait(
            lambda: Activity.all_orgs.filter(account=account, type="email").exists(), 60, "the email activity", log
        )
        worker_process.wait(
            lambda: "S" in dovecot.flags()["<worker@customer.example>"], 30, "the message marked seen", log
        )
    capture.refresh_from_db()
    assert capture.last_poll_ok is True and capture.last_poll_message == "1 new message"
    assert worker_process.succeeded(log, "integrations.tasks.poll_capture_mailbox") == 1
