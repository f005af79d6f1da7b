"""seed_demo's playbooks (issue 12 §7): the default playbooks are installed, run through the engine and fill
the work queue; the evaluation run again duplicates nothing; the same seed gives the same queue."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.urls import reverse

from accounts.demo import seed_demo
from accounts.models import Membership
from cs_platform.events import dispatch
from cs_platform.models import DomainEvent
from playbooks.demo import DEFAULT_PLAYBOOKS, EXTRA_PLAYBOOKS
from playbooks.emails import validate_template_source
from playbooks.engine import evaluate_organization, preview
from playbooks.models import Cta, CtaTask, EmailTemplate, FiringOutcome, Notification, Playbook, PlaybookFiring

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 11, 23)
NOW = dt.datetime(2026, 11, 23, 12, tzinfo=dt.UTC)
ACCOUNTS = 150


@pytest.fixture
def demo():
    with time_machine.travel(NOW, tick=False):
        yield seed_demo(slug="demo", accounts=ACCOUNTS, seed=42, today=TODAY)


def queue(org):
    return list(
        Cta.objects.for_org(org)
        .order_by("account__external_id", "type__key", "reason__key")
        .values_list("account__external_id", "type__key", "reason__key", "status", "outcome", "owner__email")
    )


def test_every_default_playbook_is_installed_active_and_fired(demo):
    org = demo.organization
    playbooks = {p.name: p for p in Playbook.objects.for_org(org)}
    assert set(playbooks) == {name for name, *_ in DEFAULT_PLAYBOOKS} | set(EXTRA_PLAYBOOKS)
    for name, *_ in DEFAULT_PLAYBOOKS:
        playbook = playbooks[name]
        assert playbook.active, name
        fired = PlaybookFiring.objects.for_org(org).filter(playbook=playbook, outcome=FiringOutcome.FIRED)
        assert fired.exists(), f"{name} never fired"
        # Through the engine: each firing's CTA carries the playbook as its source.
        assert Cta.objects.for_org(org).filter(source="playbook", source_ref=str(playbook.pk)).exists(), name
    assert not playbooks[EXTRA_PLAYBOOKS[0]].active
    assert not PlaybookFiring.objects.for_org(org).filter(playbook=playbooks[EXTRA_PLAYBOOKS[0]]).exists()
    # Its email template passes the editor's validation, and its preview counts the emails it would send.
    template = EmailTemplate.objects.for_org(org).get(pk=playbooks[EXTRA_PLAYBOOKS[0]].actions[0]["template"])
    validate_template_source(template.subject, field="subject")
    validate_template_source(template.body)
    with time_machine.travel(NOW, tick=False):
        assert preview(playbooks[EXTRA_PLAYBOOKS[0]])["emails"] > 0
    # Red health → risk CTA with 3 tasks; the reds were announced as events and dispatched (receipts).
    red = Cta.objects.for_org(org).filter(source_ref=str(playbooks["Health turned red"].pk)).first()
    assert red.type.key == "risk" and CtaTask.objects.for_org(org).filter(cta=red).count() == 3
    events = DomainEvent.objects.for_org(org).filter(name="health.color_changed")
    assert events.exists() and not events.filter(dispatched_at__isnull=True).exists()
    # Every CTA the demo holds came from a playbook: none written by hand.
    assert not Cta.objects.for_org(org).exclude(source="playbook").exists()


def test_the_queue_is_full_and_meaningful(demo, client):
    org = demo.organization
    ctas = Cta.objects.for_org(org)
    owners = set(ctas.filter(status="open").values_list("owner_id", flat=True))
    csms = set(Membership.objects.for_org(org).filter(role="csm").values_list("user_id", flat=True))
    assert len(owners & csms) >= 3  # several CSMs have work
    assert ctas.filter(status="completed").exclude(outcome="").exists()
    assert ctas.filter(status="open", snoozed_until__gt=TODAY).exists()
    assert CtaTask.objects.for_org(org).filter(done_at__isnull=False, cta__status="open").exists()
    notifications = Notification.objects.for_org(org)
    assert notifications.filter(read_at__isnull=True).exists() and notifications.filter(read_at__isnull=False).exists()
    # A demo CSM's work queue page shows their CTAs.
    owner_id = (
        ctas.filter(status="open", snoozed_until__isnull=True).order_by("pk").values_list("owner_id", flat=True)[0]
    )
    member = Membership.objects.for_org(org).select_related("user").get(user_id=owner_id)
    mine = ctas.filter(owner_id=owner_id, status="open", snoozed_until__isnull=True).order_by("pk").first()
    client.force_login(member.user)
    with time_machine.travel(NOW, tick=False):
        page = client.get(reverse("work", args=[org.slug]))
    assert page.status_code == 200
    assert mine.title in page.content.decode()


def test_running_again_duplicates_nothing(demo):
    org = demo.organization
    before = (Cta.objects.for_org(org).count(), CtaTask.objects.for_org(org).count())
    fired = PlaybookFiring.objects.for_org(org).filter(outcome=FiringOutcome.FIRED).count()
    with time_machine.travel(NOW, tick=False):
        totals = evaluate_organization(org.pk)
        # The events again (a redelivery): their occurrences are recorded, nothing fires twice.
        DomainEvent.all_orgs.filter(organization=org).update(dispatched_at=None)
        from cs_platform.models import EventReceipt

        EventReceipt.all_orgs.filter(organization=org).delete()
        dispatch(org.pk)
    assert totals["fired"] == 0
    assert (Cta.objects.for_org(org).count(), CtaTask.objects.for_org(org).count()) == before
    assert PlaybookFiring.objects.for_org(org).filter(outcome=FiringOutcome.FIRED).count() == fired


def test_same_seed_same_queue_and_reseed_replaces(demo):
    org = demo.organization
    first = queue(org)
    with time_machine.travel(NOW, tick=False):
        again = seed_demo(slug="demo", accounts=ACCOUNTS, seed=42, today=TODAY)
    assert queue(org) == first
    assert again.counts["ctas"] == demo.counts["ctas"] == len(first)
    assert Playbook.objects.for_org(org).count() == len(DEFAULT_PLAYBOOKS) + len(EXTRA_PLAYBOOKS)
