"""The playbook ``send_email`` action (issue 12 §2): the admin's email template, sent through
``playbooks.emails.send_templated_email`` (merge fields, unsubscribed and departed contacts skipped, one-click
unsubscribe, a send log row per contact), validated (a template of this organization, active), counted by
the preview. Django's locmem email backend (the test settings) keeps the messages in ``mail.outbox``."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone

from cs_platform.events import dispatch
from playbooks.engine import preview
from playbooks.models import EmailSendLog, EmailTemplate, Playbook, PlaybookFiring
from playbooks.validation import playbook_problems

from .factories import AccountFactory, ContactFactory
from .signal_factories import HealthScoreFactory

pytestmark = pytest.mark.django_db


def template(org, **fields) -> EmailTemplate:
    values = {
        "name": f"Welcome {EmailTemplate.all_orgs.count()}",
        "subject": "Welcome to {{ account.name }}",
        "body": "Hi {{ contact.first_name }},\n\n{{ csm.name }} ({{ csm.email }}) is your CSM at {{ account.name }}.",
    }
    return EmailTemplate.all_orgs.create(organization=org, **{**values, **fields})


def email_playbook(org, tpl, roles=None, **fields) -> Playbook:
    action = {"kind": "send_email", "template": tpl.pk, **({"roles": roles} if roles is not None else {})}
    playbook = Playbook(organization=org, name=fields.pop("name", "Welcome"), trigger="account_created",
                        actions=[action], active=fields.pop("active", True), **fields)  # fmt: skip
    assert playbook_problems(playbook) == []
    playbook.save()
    return playbook


@pytest.fixture
def globex(org, bob):
    bob.first_name, bob.last_name = "Bob", "Builder"
    bob.save()
    return AccountFactory.build(organization=org, owner=bob, name="Globex & Co")


def contacts(account):
    return {
        "ann": ContactFactory(account=account, name="Ann Lee", email="ann@g.example", roles=["champion"]),
        "out": ContactFactory(account=account, name="Out", email="out@g.example", roles=["champion"],
                              unsubscribed=True),
        "gone": ContactFactory(account=account, name="Gone", email="gone@g.example", roles=["champion"],
                               is_active=False, departed_at=timezone.localdate() - dt.timedelta(days=3)),
        "user": ContactFactory(account=account, name="Ed User", email="ed@g.example", roles=["end_user"]),
    }  # fmt: skip


def fire_on_create(org, account, django_capture_on_commit_callbacks):
    """Create the account (account.created) and dispatch the event, running the commit hooks (the send)."""
    with django_capture_on_commit_callbacks(execute=True):
        account.save()
        people = contacts(account)
    with django_capture_on_commit_callbacks(execute=True):
        dispatch(org.pk)
    return people


def test_sends_the_template_with_merge_fields_and_one_click_unsubscribe(
    org, globex, django_capture_on_commit_callbacks
):
    tpl = template(org)
    playbook = email_playbook(org, tpl, roles=["champion"])
    people = fire_on_create(org, globex, django_capture_on_commit_callbacks)
    assert [m.to for m in mail.outbox] == [["ann@g.example"]]
    message = mail.outbox[0]
    assert message.subject == "Welcome to Globex & Co"
    assert (
        "Hi Ann," in message.body
        and f"Bob Builder ({globex.owner.email})" in message.body
        and "at Globex & Co." in message.body
    )
    assert "Globex &amp; Co" in message.alternatives[0][0]  # the HTML part escapes merge values
    unsubscribe = message.extra_headers["List-Unsubscribe"]
    assert unsubscribe.startswith("<") and "/u/" in unsubscribe
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "Unsubscribe: " + unsubscribe.strip("<>") in message.body
    firing = PlaybookFiring.objects.for_org(org).get(playbook=playbook)
    assert firing.results == [
        {"kind": "send_email", "template": tpl.pk, "status": "done", "sent": 1,
         "skipped": {"skipped_unsubscribed": 1, "skipped_departed": 1}},
    ]  # fmt: skip
    logged = dict(EmailSendLog.objects.for_org(org).values_list("contact_id", "status"))
    assert logged == {
        people["ann"].pk: "sent",
        people["out"].pk: "skipped_unsubscribed",
        people["gone"].pk: "skipped_departed",
    }


def test_no_roles_means_every_contact_still_skipping_unsubscribed_and_departed(
    org, globex, django_capture_on_commit_callbacks
):
    email_playbook(org, template(org))
    fire_on_create(org, globex, django_capture_on_commit_callbacks)
    assert sorted(m.to[0] for m in mail.outbox) == ["ann@g.example", "ed@g.example"]
    assert {m.subject for m in mail.outbox} == {"Welcome to Globex & Co"}


def test_nothing_is_sent_when_the_firing_rolls_back(org, globex, monkeypatch, django_capture_on_commit_callbacks):
    from playbooks import actions

    email_playbook(org, template(org), name="Mail then fail")
    Playbook.all_orgs.filter(organization=org).update(
        actions=[{"kind": "send_email", "template": EmailTemplate.all_orgs.get().pk}, {"kind": "webhook"}]
    )
    monkeypatch.setitem(actions._RUN, "webhook", lambda *a: 1 / 0)
    fire_on_create(org, globex, django_capture_on_commit_callbacks)
    assert mail.outbox == []
    assert not EmailSendLog.objects.for_org(org).exists()
    assert PlaybookFiring.objects.for_org(org).get().outcome == "skipped"


def test_a_template_deactivated_after_saving_sends_nothing(org, globex, django_capture_on_commit_callbacks):
    tpl = template(org)
    playbook = email_playbook(org, tpl)
    EmailTemplate.all_orgs.filter(pk=tpl.pk).update(is_active=False)
    fire_on_create(org, globex, django_capture_on_commit_callbacks)
    assert mail.outbox == []
    result = PlaybookFiring.objects.for_org(org).get(playbook=playbook).results[0]
    assert (result["status"], result["detail"]) == ("skipped", "the email template is inactive")


def test_validation_the_template_must_be_this_organizations_and_active(org, other_org):
    def problems(action):
        return dict(playbook_problems(Playbook(organization=org, name="x", trigger="account_created",
                                               actions=[{"kind": "send_email", **action}])))  # fmt: skip

    assert problems({"template": template(other_org).pk})["actions.0.template"] == "Unknown email template."
    assert "inactive" in problems({"template": template(org, is_active=False).pk})["actions.0.template"]
    assert "actions.0.template" in problems({})
    assert "actions.0.template" in problems({"template": True})
    assert problems({"template": template(org).pk, "roles": ["pilot"]}).keys() == {"actions.0.roles"}
    assert problems({"template": template(org).pk, "body": "inline"}) == {"actions.0.body": "Unknown field."}
    assert problems({"template": template(org).pk, "roles": ["champion"]}) == {}


def test_preview_counts_the_emails_that_would_go(org, bob):
    account = AccountFactory(organization=org, owner=bob)
    contacts(account)
    ContactFactory(
        account=account,
        name="Later",
        email="later@g.example",
        roles=["champion"],
        departed_at=timezone.localdate() + dt.timedelta(days=10),
    )  # leaves next week: still eligible
    ContactFactory(account=account, name="No address", email="", roles=["champion"])
    tpl = template(org)
    champions = email_playbook(org, tpl, roles=["champion"], active=False)
    champions.trigger = "health_color"
    champions.save()
    HealthScoreFactory(account=account, score=Decimal("20.0"))  # red
    assert preview(champions)["emails"] == 2  # Ann and Later
    EmailTemplate.all_orgs.filter(pk=tpl.pk).update(is_active=False)
    assert preview(champions)["emails"] == 0
    assert mail.outbox == [] and not EmailSendLog.all_orgs.exists()
