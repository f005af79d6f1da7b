"""A contact answers a survey on the public page at phone size (390×844) using the keyboard only, then the
CSM sees the detractor on the VoC dashboard with the CTA that the detractor playbook opened (issue 13
acceptance). The public page is checked on the way: no console CSP violation, no request but the page and
its stylesheets (no script, so no call of any kind, authenticated or not), axe-core finds no serious
violation, nothing overflows. The seeded organization and Chromium come from the shared harness."""

from __future__ import annotations

import pytest

from tests.browser import CSP_LISTENER, PHONE, check_page, harness, signed_in  # noqa: F401

pytestmark = [pytest.mark.browser]


def test_a_detractor_answers_on_a_phone_and_the_csm_sees_it_with_its_cta(harness):  # noqa: F811
    from accounts.models import Account
    from cs_platform.events import dispatch
    from feedback.models import SurveyInvitation, SurveyResponse
    from feedback.services import create_send, new_token, run_send
    from playbooks.models import Cta, Playbook
    from tests.factories import ContactFactory
    from tests.survey_factories import make_survey

    seeded = harness["seeded"]
    org = seeded.org
    account = Account.all_orgs.get(pk=seeded.red_account)
    contact = ContactFactory(account=account, name="Pat Detractor", email="pat@initech.example")
    survey = make_survey(org, name="Browser NPS", question="How likely are you to recommend Acme Corp?")
    Playbook.all_orgs.create(
        organization=org, name="Detractor follow-up", trigger="survey_response",
        trigger_params={"category": "detractor"}, active=True,
        actions=[{"kind": "open_cta", "type": "risk", "reason": "detractor", "title": "Call back a detractor"}],
    )  # fmt: skip
    send = create_send(survey, account=account, roles=[])
    run_send(send, deliver=False)
    invitation = SurveyInvitation.all_orgs.get(send=send, contact=contact)
    token, digest = new_token()  # what the email would carry
    from django.utils import timezone

    SurveyInvitation.all_orgs.filter(pk=invitation.pk).update(
        status="sent",
        token_hash=digest,
        sent_at=timezone.now(),
        expires_at=timezone.now() + timezone.timedelta(days=30),
    )

    # The contact: no session, a phone, the keyboard.
    context = harness["browser"].new_context(viewport=PHONE)
    context.add_init_script(CSP_LISTENER)
    requests: list[str] = []
    context.on("request", lambda request: requests.append(request.url))
    page = context.new_page()
    try:
        page.goto(f"{harness['url']}/s/{token}/")
        check_page(page)
        assert page.get_by_test_id("survey-org").inner_text() == "Acme Corp"
        assert account.name not in page.content()
        assert [u for u in requests if not u.endswith((".css", ".svg", f"/s/{token}/"))] == [], requests
        page.keyboard.press("Tab")  # the first score
        for _ in range(3):
            page.keyboard.press("ArrowRight")  # 0 → 3
        assert page.get_by_test_id("score-3").is_checked()
        page.keyboard.press("Tab")
        page.keyboard.type("Support takes days to answer.")
        page.keyboard.press("Tab")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert page.get_by_test_id("survey-thanks").is_visible()
        check_page(page)
        # Used: the link now answers 410 and shows no answer.
        again = page.goto(f"{harness['url']}/s/{token}/")
        assert again.status == 410 and "Support takes days" not in page.content()
        assert not any("/api/" in u for u in requests)
    finally:
        context.close()

    response = SurveyResponse.all_orgs.get(invitation=invitation)
    assert (response.score, response.contact_id) == (3, contact.pk)
    dispatch(org.pk)  # the worker's part: the survey.response event reaches the playbook engine
    cta = Cta.all_orgs.get(organization=org, account=account, title="Call back a detractor")

    # The CSM's VoC dashboard at phone size: the detractor, with that CTA.
    page = signed_in(harness, "csm", PHONE)
    try:
        page.goto(f"{harness['url']}/o/{org.slug}/voice/")
        check_page(page)
        row = page.get_by_test_id("detractor-row").filter(has_text="Pat Detractor")
        assert row.count() == 1
        assert "Support takes days to answer." in row.inner_text()
        assert cta.title in row.get_by_test_id("detractor-cta-cell").inner_text()
    finally:
        page.context.close()


def test_survey_admin_pages_at_phone_size(harness):  # noqa: F811
    from tests.survey_factories import make_survey

    seeded = harness["seeded"]
    survey = make_survey(seeded.org, name="Phone admin NPS")
    page = signed_in(harness, "admin", PHONE)
    try:
        for path in (f"admin/surveys/{survey.pk}/", f"admin/surveys/{survey.pk}/page/", "voice/?kind=csat&q=support"):
            page.goto(f"{harness['url']}/o/{seeded.org.slug}/{path}")
            check_page(page)
        page.goto(f"{harness['url']}/o/{seeded.org.slug}/admin/surveys/{survey.pk}/")
        assert "a quick question" in page.get_by_test_id("preview-subject").inner_text()
        assert "/s/<your-link>/" in page.get_by_test_id("preview-body").inner_text()
    finally:
        page.context.close()
