"""The VoC dashboard, the survey admin and Account 360's responses panel (issue 13 §5)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from feedback.models import Survey, SurveyResponse, SurveySend

from .factories import AccountFactory, ContactFactory
from .survey_factories import make_survey

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _locmem_mail(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def answered(org, account, kind, score, comment="", days_ago=1, contact=None):
    return SurveyResponse.all_orgs.create(
        organization=org, account=account, contact=contact, kind=kind, score=score, comment=comment,
        responded_at=timezone.now() - dt.timedelta(days=days_ago),
    )  # fmt: skip


def test_the_dashboard_chart_and_table_show_the_same_numbers(client, org, bob):
    account = AccountFactory(organization=org, owner=bob, name="Initech")
    for score in (10, 9, 3):
        answered(org, account, "nps", score)
    answered(org, account, "csat", 5)
    client.force_login(bob)
    html = client.get(reverse("voice", args=[org.slug])).content.decode()
    month = timezone.localdate(timezone.now() - dt.timedelta(days=1)).strftime("%Y-%m")
    # (2 − 1) / 3 = 33.3 in the table, on the chart's point and in the KPI.
    assert re.search(rf'data-testid="nps-{month}">33.3<', html)
    assert f'data-value="33.3" data-month="{month}"' in html
    assert 'data-testid="kpi-nps">33.3<' in html and 'data-testid="kpi-csat">100.0%<' in html
    assert 'class="benchmark"' in html and "Benchmark 30" in html
    assert 'data-testid="dist-10">1<' in html and 'data-testid="dist-3">1<' in html


def test_detractors_show_with_their_open_cta_and_verbatims_search(client, org, bob):
    from playbooks.models import Cta, CtaReason, CtaType

    account = AccountFactory(organization=org, owner=bob, name="Initech")
    quiet = AccountFactory(organization=org, owner=bob, name="Quiet Co")
    ann = ContactFactory(account=account, name="Ann Lee")
    answered(org, account, "nps", 2, "Support takes days to answer", contact=ann)
    answered(org, quiet, "csat", 1, "Billing is confusing")
    answered(org, quiet, "nps", 10, "Love the dashboards")
    answered(org, quiet, "nps", 1, "Old complaint", days_ago=200)  # older than 90 days: not to follow up
    reason = CtaReason.objects.for_org(org).filter(type__key="risk").first()
    Cta.all_orgs.create(organization=org, account=account, type=CtaType.objects.for_org(org).get(key="risk"),
                        reason=reason, title="Call Initech about support", owner=bob)  # fmt: skip
    client.force_login(bob)
    html = client.get(reverse("voice", args=[org.slug])).content.decode()
    rows = html[html.index('data-testid="voc-detractors"') : html.index('data-testid="voc-verbatims"')]
    assert rows.count('data-testid="detractor-row"') == 2
    assert "Ann Lee" in rows and "Support takes days" in rows and "Billing is confusing" in rows
    assert "Call Initech about support" in rows and "No open CTA" in rows and "Old complaint" not in rows
    found = client.get(reverse("voice", args=[org.slug]), {"q": "dashboards"}).content.decode()
    verbatims = found[found.index('data-testid="voc-verbatims"') :]
    assert "Love the dashboards" in verbatims and "Billing is confusing" not in verbatims
    promoters = client.get(reverse("voice", args=[org.slug]), {"category": "detractor", "v_kind": "csat"})
    verbatims = promoters.content.decode()[promoters.content.decode().index('data-testid="voc-verbatims"') :]
    assert "Billing is confusing" in verbatims and "Support takes days" not in verbatims


def test_the_dashboard_shows_nothing_of_another_organization(client, org, other_org, bob):
    theirs = AccountFactory(organization=other_org, name="Their Co")
    answered(other_org, theirs, "nps", 0, "Their secret complaint")
    client.force_login(bob)
    html = client.get(reverse("voice", args=[org.slug])).content.decode()
    assert "Their secret complaint" not in html and "Their Co" not in html
    assert 'data-testid="kpi-nps">—<' in html


def test_survey_admin_is_for_admins_and_creates_previews_and_sends(client, org, alice, bob):
    client.force_login(bob)
    assert client.get(reverse("admin-surveys", args=[org.slug])).status_code == 403
    client.force_login(alice)
    body = {"action": "create", "survey-name": "Quarterly NPS", "survey-kind": "nps",
            "survey-question": "How likely are you to recommend us?", "survey-comment_question": "Why?",
            "survey-email_subject": "{{ account.name }}: a question",
            "survey-email_body": "Hi {{ contact.first_name }}", "survey-active": "on"}  # fmt: skip
    created = client.post(reverse("admin-surveys", args=[org.slug]), body)
    survey = Survey.all_orgs.get(organization=org, name="Quarterly NPS")
    assert created.status_code == 302
    bad_body = {**body, "survey-name": "X", "survey-email_body": "{{ account.arr }}"}
    bad = client.post(reverse("admin-surveys", args=[org.slug]), bad_body)
    assert bad.status_code == 400 and "is not a merge field" in bad.content.decode()
    page = client.get(reverse("admin-survey", args=[org.slug, survey.pk])).content.decode()
    assert "Hi Jordan" in page and "/s/&lt;your-link&gt;/" in page
    preview = client.get(reverse("admin-survey-page", args=[org.slug, survey.pk]))
    assert preview.status_code == 200 and b"How likely are you to recommend us?" in preview.content
    assert b"records nothing" in preview.content
    account = AccountFactory(organization=org, name="Initech")
    ContactFactory(account=account)
    ContactFactory(account=account, unsubscribed=True)
    sent = client.post(reverse("admin-survey", args=[org.slug, survey.pk]),
                       {"action": "send", "send-target": "account", "send-account": account.pk,
                        "send-schedule": "once", "send-drip_days": "0"})  # fmt: skip
    assert sent.status_code == 302
    assert len(mail.outbox) == 1
    send = SurveySend.all_orgs.get(survey=survey)
    page = client.get(reverse("admin-survey", args=[org.slug, survey.pk])).content.decode()
    row = page[page.index(f'data-testid="send-{send.pk}"') :].split("</tr>")[0]
    assert "Unsubscribed: 1" in row and re.search(r'class="num">2<', row)
    # Settings: the throttle is editable.
    client.post(reverse("admin-surveys", args=[org.slug]), {"action": "settings", "settings-throttle_days": "45",
                "settings-link_days": "14", "settings-nps_benchmark": "35", "settings-csat_benchmark": "80",
                "settings-ces_benchmark": "70"})  # fmt: skip
    from feedback.services import survey_settings

    assert (survey_settings(org.pk).throttle_days, survey_settings(org.pk).link_days) == (45, 14)


def test_account_360_shows_the_accounts_responses(client, org, bob):
    account = AccountFactory(organization=org, owner=bob)
    other = AccountFactory(organization=org, owner=bob)
    answered(org, account, "nps", 4, "Onboarding was rough")
    answered(org, other, "nps", 10, "Someone else's praise")
    client.force_login(bob)
    html = client.get(reverse("account-detail", args=[org.slug, account.pk])).content.decode()
    panel = html[html.index('data-testid="account-survey-responses"') :].split("</section>")[0]
    assert "Onboarding was rough" in panel and "Detractor" in panel and "Someone else" not in panel


def test_make_survey_helper_is_org_scoped(org, other_org):
    assert make_survey(org).organization_id == org.pk


def test_my_book_shows_new_detractors_of_my_accounts(client, org, bob, make_member):
    mine = AccountFactory(organization=org, owner=bob, name="Mine Co")
    theirs = AccountFactory(organization=org, owner=make_member(org, "csm").user, name="Theirs Co")
    answered(org, mine, "nps", 3, "Too slow")
    answered(org, mine, "nps", 2, "Ancient", days_ago=45)
    answered(org, mine, "nps", 10, "Great")
    answered(org, theirs, "nps", 0, "Not yours")
    client.force_login(bob)
    html = client.get(reverse("my-book", args=[org.slug]), {"scope": "mine"}).content.decode()
    panel = html[html.index('data-testid="book-detractors"') :].split("</section>")[0]
    assert panel.count('data-testid="book-detractor"') == 1 and "Too slow" in panel
    assert "Ancient" not in panel and "Not yours" not in panel and "Great" not in panel


def test_the_dashboard_counts_months_in_the_organizations_time_zone(client, org, bob):
    import time_machine

    org.time_zone = "Pacific/Kiritimati"  # UTC+14: already 1 December there
    org.save(update_fields=["time_zone"])
    account = AccountFactory(organization=org, owner=bob)
    client.force_login(bob)
    with time_machine.travel(dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC), tick=False):
        SurveyResponse.all_orgs.create(
            organization=org, account=account, kind="nps", score=10, responded_at=timezone.now()
        )
        html = client.get(reverse("voice", args=[org.slug]), {"months": 3}).content.decode()
    # The last month of the window is the organization's December, not the server's November.
    assert 'data-testid="nps-2026-12">100.0<' in html  # the answer of 1 December, local time
    assert 'data-testid="nps-2026-09"' not in html


def test_the_distribution_kind_and_the_verbatims_kind_are_independent(client, org, bob):
    account = AccountFactory(organization=org, owner=bob)
    answered(org, account, "nps", 9, "NPS comment")
    answered(org, account, "csat", 2, "CSAT comment")
    client.force_login(bob)
    url = reverse("voice", args=[org.slug])

    def verbatims(html):
        return html[html.index('data-testid="voc-verbatims"') :]

    # The distribution of CSAT does not filter the verbatims...
    html = client.get(url, {"kind": "csat"}).content.decode()
    assert 'data-testid="dist-2">1<' in html  # the CSAT distribution
    assert "NPS comment" in verbatims(html) and "CSAT comment" in verbatims(html)
    # ...and the verbatims' kind does not change the distribution.
    html = client.get(url, {"v_kind": "nps"}).content.decode()
    assert 'data-testid="dist-9">1<' in html  # the NPS distribution (the default)
    assert "NPS comment" in verbatims(html) and "CSAT comment" not in verbatims(html)
    both = client.get(url, {"kind": "csat", "v_kind": "nps"}).content.decode()
    assert 'data-testid="dist-2">1<' in both and "CSAT comment" not in verbatims(both)
    assert '<option value="nps" selected>' in verbatims(both)


def test_the_survey_admin_rounds_response_rates_half_up(client, org, alice):
    from feedback.models import InvitationStatus, SurveyInvitation
    from feedback.services import create_send

    contact = ContactFactory(account__organization=org)
    survey = make_survey(org)
    send = create_send(survey, account=contact.account)
    SurveyInvitation.all_orgs.bulk_create(
        SurveyInvitation(organization=org, send=send, survey=survey, account=contact.account, contact=contact,
                         run=run, scheduled_for=timezone.now(),
                         status=InvitationStatus.RESPONDED if run == 1 else InvitationStatus.SENT)
        for run in range(1, 81)
    )  # fmt: skip
    client.force_login(alice)
    # 1 / 80 = 1.25 %: half-up 1.3, where Python's round() gives 1.2 (and {% widthratio %} 1).
    listing = client.get(reverse("admin-surveys", args=[org.slug])).content.decode()
    assert f'data-testid="rate-{survey.pk}">1.3%<' in listing
    page = client.get(reverse("admin-survey", args=[org.slug, survey.pk])).content.decode()
    assert f'data-testid="send-rate-{send.pk}">1.3%<' in page
