"""``/api/v1/cta-types/`` and ``/api/v1/email-templates/`` (issue 12 §6): validated like the rest; an inactive
CTA type (or reason) is refused when opening a CTA; built-in types stay active; a template in use is not
deleted. Isolation and roles: tests/test_api_isolation.py and tests/test_api_roles.py."""

from __future__ import annotations

import pytest

from playbooks.models import Cta, CtaReason, CtaType, EmailTemplate, Playbook

from .factories import AccountFactory

pytestmark = pytest.mark.django_db
API = "/api/v1"


@pytest.fixture
def admin(org, alice, api):
    return api(org, "admin", alice)


def test_cta_type_key_is_derived_and_fixed_and_reasons_are_listed(org, admin):
    created = admin.post(f"{API}/cta-types/", {"label": "  Partner   escalation ", "position": 9}, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["key"], body["label"], body["is_builtin"], body["is_active"], body["position"]) == (
        "partner_escalation", "Partner escalation", False, True, 9)  # fmt: skip
    changed = admin.patch(f"{API}/cta-types/{body['id']}/", {"label": "Partner issue", "key": "other"}, format="json")
    assert changed.status_code == 200 and changed.json()["key"] == "partner_escalation"  # key is read-only
    risk = admin.get(f"{API}/cta-types/", {"ordering": "position"}).json()["results"][0]
    assert risk["key"] == "risk" and {"key": "health_red"}.items() <= risk["reasons"][0].items()


def test_cta_type_validation(org, admin):
    assert admin.post(f"{API}/cta-types/", {"label": "   "}, format="json").json()["errors"] == {
        "label": ["This field may not be blank."]
    }
    long = admin.post(f"{API}/cta-types/", {"label": "x" * 81}, format="json")
    assert long.status_code == 400 and list(long.json()["errors"]) == ["label"]
    dup = admin.post(f"{API}/cta-types/", {"label": "RISK"}, format="json")
    assert dup.status_code == 400 and "exists already" in dup.json()["errors"]["label"][0]
    risk = CtaType.objects.for_org(org).get(key="risk")
    refused = admin.patch(f"{API}/cta-types/{risk.pk}/", {"is_active": False}, format="json")
    assert refused.status_code == 400 and "Built-in" in refused.json()["errors"]["is_active"][0]
    assert CtaType.objects.for_org(org).get(key="risk").is_active
    assert admin.post(f"{API}/cta-types/", {"label": "X", "organization": 1}, format="json").status_code == 400
    gone = admin.delete(f"{API}/cta-types/{risk.pk}/")
    assert gone.status_code == 405 and "deactivate" in gone.json()["detail"]


def test_opening_a_cta_of_an_inactive_type_or_reason_is_a_clear_400(org, admin):
    account = AccountFactory(organization=org)
    custom = admin.post(f"{API}/cta-types/", {"label": "Partner"}, format="json").json()
    from playbooks.cta_admin import add_cta_reason

    reason = add_cta_reason(CtaType.objects.for_org(org).get(pk=custom["id"]), "Partner left")
    admin.patch(f"{API}/cta-types/{custom['id']}/", {"is_active": False}, format="json")
    body = {"account": account.pk, "type": "partner", "reason": reason.pk, "title": "Call"}
    refused = admin.post(f"{API}/ctas/", body, format="json")
    assert refused.status_code == 400
    assert refused.json()["errors"] == {
        "type": ["The CTA type “Partner” is inactive: reactivate it or choose another type."]
    }
    assert not Cta.objects.for_org(org).exists()
    admin.patch(f"{API}/cta-types/{custom['id']}/", {"is_active": True}, format="json")
    CtaReason.all_orgs.filter(pk=reason.pk).update(is_active=False)
    refused = admin.post(f"{API}/ctas/", body, format="json")
    assert refused.status_code == 400 and "inactive" in refused.json()["errors"]["reason"][0]
    CtaReason.all_orgs.filter(pk=reason.pk).update(is_active=True)
    assert admin.post(f"{API}/ctas/", body, format="json").status_code == 201


def test_email_template_sources_are_validated(org, admin, alice):
    ok = {"name": "Check-in", "subject": "Hi {{ account.name }}", "body": 'Dear {{ contact.first_name|default:"you" }}'}
    created = admin.post(f"{API}/email-templates/", ok, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["created_by"] == alice.email
    for field, source in [("body", "{% include 'x.html' %}"), ("body", "{{ account.owner.password }}"),
                          ("subject", "{{ account.name|safe }}"), ("body", "{{ account.name")]:  # fmt: skip
        response = admin.post(f"{API}/email-templates/", {**ok, "name": f"Bad {source}", field: source}, format="json")
        assert response.status_code == 400, source
        assert list(response.json()["errors"]) == [field], source
    dup = admin.post(f"{API}/email-templates/", {**ok, "name": "check-IN"}, format="json")
    assert dup.json()["errors"] == {"name": ["Another template has this name."]}
    changed = admin.patch(f"{API}/email-templates/{created.json()['id']}/", {"body": "{% debug %}"}, format="json")
    assert changed.status_code == 400 and EmailTemplate.objects.for_org(org).get().body == ok["body"]


def test_a_template_a_playbook_sends_cannot_be_deleted(org, admin):
    template = EmailTemplate.all_orgs.create(organization=org, name="Welcome", subject="Hi", body="Hello")
    Playbook.all_orgs.create(organization=org, name="Welcome new champions", trigger="account_created",
                             actions=[{"kind": "send_email", "template": template.pk}])  # fmt: skip
    refused = admin.delete(f"{API}/email-templates/{template.pk}/")
    assert refused.status_code == 409 and "Welcome new champions" in refused.json()["detail"]
    assert EmailTemplate.objects.for_org(org).filter(pk=template.pk).exists()
    assert admin.patch(f"{API}/email-templates/{template.pk}/", {"is_active": False}, format="json").status_code == 200
    Playbook.all_orgs.filter(organization=org).delete()
    assert admin.delete(f"{API}/email-templates/{template.pk}/").status_code == 204
