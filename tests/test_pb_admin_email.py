"""Admin pages of the work queue (CTA types and reasons, email templates with a rendered preview), the
templated-email services (sandboxed rendering, sending by role, skipping unsubscribed and departed contacts,
the one-click unsubscribe link) — issue 12 §2 and §5."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.urls import reverse

from accounts.models import Contact
from playbooks.emails import (
    read_unsubscribe_token,
    render_email,
    send_templated_email,
    unsubscribe_token,
    validate_template_source,
)
from playbooks.models import CtaReason, CtaType, EmailSendLog, EmailTemplate

from .factories import AccountFactory, ContactFactory

pytestmark = pytest.mark.django_db


# --- CTA types and reasons -----------------------------------------------------------------------------


def test_admin_adds_renames_and_deactivates_types_and_reasons(client, org, alice):
    client.force_login(alice)
    page = reverse("admin-cta-types", args=[org.slug])
    assert client.get(page).status_code == 200
    client.post(reverse("admin-cta-type-add", args=[org.slug]), {"label": "Advocacy"})
    advocacy = CtaType.objects.for_org(org).get(label="Advocacy")
    assert (advocacy.key, advocacy.is_builtin) == ("advocacy", False)
    client.post(reverse("admin-cta-reason-add", args=[org.slug, advocacy.pk]), {"label": "Case study"})
    reason = CtaReason.objects.for_org(org).get(type=advocacy)
    assert reason.key == "case_study"
    client.post(reverse("admin-cta-item-rename", args=[org.slug, "reason", reason.pk]), {"label": "Reference call"})
    reason.refresh_from_db()
    assert (reason.label, reason.key) == ("Reference call", "case_study")  # the key never changes
    client.post(reverse("admin-cta-item-toggle", args=[org.slug, "reason", reason.pk]))
    client.post(reverse("admin-cta-item-toggle", args=[org.slug, "type", advocacy.pk]))
    reason.refresh_from_db()
    advocacy.refresh_from_db()
    assert not reason.is_active and not advocacy.is_active
    html = client.get(page).content.decode()
    assert "Reference call" in html and "Reactivate" in html
    # Duplicates and empty names are refused with a message, nothing created.
    response = client.post(reverse("admin-cta-type-add", args=[org.slug]), {"label": "advocacy"}, follow=True)
    assert "exists already" in response.content.decode()
    client.post(reverse("admin-cta-type-add", args=[org.slug]), {"label": "  "})
    assert CtaType.objects.for_org(org).filter(label__iexact="advocacy").count() == 1


def test_builtin_types_can_be_renamed_not_deactivated(client, org, alice):
    client.force_login(alice)
    risk = CtaType.objects.for_org(org).get(key="risk")
    client.post(reverse("admin-cta-item-toggle", args=[org.slug, "type", risk.pk]))
    client.post(reverse("admin-cta-item-rename", args=[org.slug, "type", risk.pk]), {"label": "Churn risk"})
    risk.refresh_from_db()
    assert risk.is_active and risk.label == "Churn risk" and risk.key == "risk"


@pytest.mark.parametrize("role", ["csm", "leader", "viewer"])
def test_cta_type_and_template_writes_are_admins_only(client, org, make_member, role):
    client.force_login(make_member(org, role).user)
    risk = CtaType.objects.for_org(org).get(key="risk")
    template = EmailTemplate.objects.for_org(org).create(organization=org, name="T", subject="S", body="B")
    posts = [
        (reverse("admin-cta-type-add", args=[org.slug]), {"label": "X"}),
        (reverse("admin-cta-reason-add", args=[org.slug, risk.pk]), {"label": "X"}),
        (reverse("admin-cta-item-rename", args=[org.slug, "type", risk.pk]), {"label": "X"}),
        (reverse("admin-cta-item-toggle", args=[org.slug, "type", risk.pk]), {}),
        (reverse("admin-email-templates", args=[org.slug]), {"name": "N", "subject": "S", "body": "B"}),
        (reverse("admin-email-template", args=[org.slug, template.pk]), {"name": "N", "subject": "S", "body": "B"}),
        (reverse("admin-email-template-toggle", args=[org.slug, template.pk]), {}),
    ]
    for url, data in posts:
        assert client.post(url, data).status_code == 403, url
    assert client.get(reverse("admin-email-template", args=[org.slug, template.pk])).status_code == 403
    risk.refresh_from_db()
    template.refresh_from_db()
    assert risk.label == "Risk" and template.name == "T" and template.is_active
    assert not CtaType.objects.for_org(org).filter(label="X").exists()


def test_admin_of_another_org_cannot_reach_these_objects(client, org, other_org, charlie):
    client.force_login(charlie)
    risk = CtaType.objects.for_org(org).get(key="risk")
    template = EmailTemplate.objects.for_org(org).create(organization=org, name="T", subject="S", body="B")
    # Through their own organization's URLs: another org's ids are 404.
    assert (
        client.post(
            reverse("admin-cta-item-rename", args=[other_org.slug, "type", risk.pk]), {"label": "X"}
        ).status_code
        == 404
    )
    assert client.get(reverse("admin-email-template", args=[other_org.slug, template.pk])).status_code == 404
    assert client.post(reverse("admin-email-template-toggle", args=[other_org.slug, template.pk])).status_code == 404
    # Through the other organization's URLs: not a member, 404.
    assert client.get(reverse("admin-cta-types", args=[org.slug])).status_code == 404
    risk.refresh_from_db()
    assert risk.label == "Risk"


# --- Email templates: validation, sandbox, preview --------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "{% include 'base.html' %}",
        "{% load static %}",
        "{% debug %}",
        "{{ account.owner.password }}",
        "{{ settings.SECRET_KEY }}",
        "{{ account.name|safe }}",
        "{{ contact.first_name|default:'x' }}",  # single quotes: refused, one simple form only
        "{{ account }}",
        "{{ account.name",
    ],
)
def test_validation_refuses_anything_but_merge_fields(source):
    with pytest.raises(ValidationError):
        validate_template_source(source)


def test_validation_accepts_merge_fields_and_whitelisted_filters():
    validate_template_source(
        'Hi {{ contact.first_name|default:"there" }}, {{ account.name }} renews on {{ renewal.date|date:"j F Y" }}. '
        "{{ csm.name|upper }} {# a note #}"
    )


@pytest.fixture
def acme_account(org, bob):
    return AccountFactory(organization=org, owner=bob, name="Tom & <Jerry> Ltd", next_renewal_date=dt.date(2027, 3, 1))


def test_render_escapes_merge_values_in_html_and_keeps_text_plain(org, bob, acme_account):
    bob.first_name, bob.last_name = "Bob", "Stone"
    bob.save()
    contact = ContactFactory(account=acme_account, name="Ann <b>Lee</b>", email="ann@example.com")
    template = EmailTemplate(
        organization=org,
        name="Renewal",
        subject='{{ account.name }} renews\non {{ renewal.date|date:"j M Y" }}',
        body=(
            'Hi {{ contact.first_name }},\n\n{{ account.name }} renews on {{ renewal.date|date:"j F Y" }}.\n'
            "{{ csm.name }}"
        ),
    )
    rendered = render_email(template, acme_account, contact, unsubscribe="https://r.example/u/tok/")
    assert rendered.subject == "Tom & <Jerry> Ltd renews on 1 Mar 2027"  # one line: no header injection
    assert "Tom &amp; &lt;Jerry&gt; Ltd renews on 1 March 2027." in rendered.html
    assert "<p>Hi Ann,</p>" in rendered.html and "Bob Stone" in rendered.html
    assert "<Jerry>" not in rendered.html and "<b>" not in rendered.html
    assert rendered.text.startswith("Hi Ann,\n\nTom & <Jerry> Ltd renews on 1 March 2027.\nBob Stone")
    assert "Unsubscribe: https://r.example/u/tok/" in rendered.text
    assert 'href="https://r.example/u/tok/"' in rendered.html


def test_admin_writes_a_template_and_previews_it_against_an_account(client, org, alice, bob, acme_account):
    ContactFactory(account=acme_account, name="Gone Person", email="g@example.com", departed_at=dt.date(2025, 1, 1))
    ContactFactory(account=acme_account, name="Zoe Park", email="zoe@example.com")
    AccountFactory(organization=org, name="Another Co")
    client.force_login(alice)
    url = reverse("admin-email-templates", args=[org.slug])
    bad = client.post(url, {"name": "Bad", "subject": "Hi", "body": "{% debug %}"})
    assert bad.status_code == 400 and "only merge fields" in bad.content.decode()
    response = client.post(
        url, {"name": "Check-in", "subject": "Hello {{ account.name }}", "body": "Hi {{ contact.first_name }}!"}
    )
    template = EmailTemplate.objects.for_org(org).get(name="Check-in")
    assert response.status_code == 302 and template.created_by == alice
    page = client.get(reverse("admin-email-template", args=[org.slug, template.pk]), {"account": "jerry"})
    html = page.content.decode()
    assert page.context["preview_account"] == acme_account
    assert page.context["preview_contact"].name == "Zoe Park"  # the departed contact is never the preview's
    assert "Hello Tom &amp; &lt;Jerry&gt; Ltd" in html and "Hi Zoe!" in html
    edit = client.post(
        reverse("admin-email-template", args=[org.slug, template.pk]),
        {"name": "Check-in", "subject": "Hey", "body": "{{ account.secret }}"},
    )
    assert edit.status_code == 400
    template.refresh_from_db()
    assert template.body == "Hi {{ contact.first_name }}!"
    client.post(reverse("admin-email-template-toggle", args=[org.slug, template.pk]))
    template.refresh_from_db()
    assert not template.is_active


# --- Sending and unsubscribing -------------------------------------------------------------------------


def test_send_goes_to_contacts_by_role_and_skips_unsubscribed_and_departed(org, bob, acme_account, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.PUBLIC_BASE_URL = "https://retain.example.com"
    bob.email = "bob@acme.example"
    bob.save()
    champion = ContactFactory(account=acme_account, name="Cara Champ", email="cara@x.example", roles=["champion"])
    ContactFactory(account=acme_account, name="Una Sub", email="una@x.example", roles=["champion"], unsubscribed=True)
    ContactFactory(
        account=acme_account,
        name="Dan Gone",
        email="dan@x.example",
        roles=["champion"],
        departed_at=dt.date(2025, 5, 1),
    )
    ContactFactory(account=acme_account, name="Ina Active", email="ina@x.example", roles=["champion"], is_active=False)
    ContactFactory(account=acme_account, name="No Mail", email="", roles=["decision_maker"])
    ContactFactory(account=acme_account, name="User Only", email="u@x.example", roles=["user"])
    template = EmailTemplate.objects.for_org(org).create(
        organization=org, name="QBR", subject="QBR for {{ account.name }}", body="Hi {{ contact.first_name }}"
    )
    result = send_templated_email(template, acme_account, ["champion", "decision_maker"])
    assert result.sent == 1
    assert result.skipped == {"skipped_unsubscribed": 1, "skipped_departed": 2, "skipped_no_email": 1}
    (message,) = mail.outbox
    assert message.to == ["cara@x.example"] and message.reply_to == ["bob@acme.example"]
    assert message.subject == "QBR for Tom & <Jerry> Ltd"
    link = message.extra_headers["List-Unsubscribe"].strip("<>")
    assert link.startswith("https://retain.example.com/u/")
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert link in message.body and message.alternatives[0][1] == "text/html"
    assert read_unsubscribe_token(link.rsplit("/u/", 1)[1].rstrip("/")) == (org.pk, champion.pk)
    statuses = sorted(EmailSendLog.objects.for_org(org).values_list("status", flat=True))
    assert statuses == ["sent", "skipped_departed", "skipped_departed", "skipped_no_email", "skipped_unsubscribed"]
    # An inactive template sends nothing.
    template.is_active = False
    template.save()
    assert send_templated_email(template, acme_account, ["champion"]).sent == 0 and len(mail.outbox) == 1


def test_send_refuses_a_template_of_another_org(org, other_org, acme_account):
    template = EmailTemplate.objects.for_org(other_org).create(organization=other_org, name="T", subject="S", body="B")
    with pytest.raises(ValidationError):
        send_templated_email(template, acme_account, [])


def test_one_click_unsubscribe(client, org, acme_account):
    contact = ContactFactory(account=acme_account, email="c@x.example")
    url = reverse("email-unsubscribe", args=[unsubscribe_token(contact)])
    page = client.get(url)  # a link scanner's GET changes nothing
    assert page.status_code == 200 and 'data-testid="confirm-unsubscribe"' in page.content.decode()
    assert not Contact.objects.for_org(org).get(pk=contact.pk).unsubscribed
    # RFC 8058: the mail client POSTs "List-Unsubscribe=One-Click" without a CSRF token or a session.
    client.handler.enforce_csrf_checks = True
    done = client.post(url, {"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200 and 'data-testid="unsubscribed"' in done.content.decode()
    assert Contact.objects.for_org(org).get(pk=contact.pk).unsubscribed
    assert client.post(url).status_code == 200  # idempotent


def test_forged_or_foreign_unsubscribe_tokens_change_nothing(client, org, acme_account):
    contact = ContactFactory(account=acme_account, email="c@x.example")
    token = unsubscribe_token(contact)
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert client.post(reverse("email-unsubscribe", args=[forged])).status_code == 404
    from django.core import signing

    wrong_org = signing.dumps({"o": org.pk + 999, "c": contact.pk}, salt="retain.playbooks.unsubscribe", compress=True)
    assert client.post(reverse("email-unsubscribe", args=[wrong_org])).status_code == 404
    assert not Contact.objects.for_org(org).get(pk=contact.pk).unsubscribed
