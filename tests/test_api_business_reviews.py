"""``/api/v1/business-reviews/``: start, list, retrieve, close, the report as JSON and as a PDF; the roles
(spec §1: writes follow the account), isolation of the extra routes, and the OpenAPI description.

The people are tests/test_api_roles.py's: alice (admin), lena (leader of North), bob (csm in North),
dave (csm in South, another leader's team), vic (viewer)."""

from __future__ import annotations

import datetime as dt
import io

import pytest
import time_machine
from pypdf import PdfReader

from accounts.models import Activity
from value.models import BusinessReview

from .factories import AccountFactory, ObjectiveFactory, SuccessPlanFactory
from .test_api_roles import ALLOWED, client_for, people  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db
API = "/api/v1/business-reviews"
CLOSE = {"held_on": "2026-10-14", "summary": "Agreed the plan", "next_review_on": "2027-01-14",
         "next_objectives": [{"title": "Expand to finance", "measure": "Finance users", "baseline": "0",
                              "target": "25", "due_date": "2027-01-14"}]}  # fmt: skip


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(dt.datetime(2026, 10, 15, 12, tzinfo=dt.UTC), tick=False):
        yield


def review_of(org, owner, **kwargs) -> BusinessReview:
    account = AccountFactory(organization=org, owner=owner, name="Initech")
    plan = SuccessPlanFactory(organization=org, account=account)
    ObjectiveFactory(organization=org, plan=plan, title="Cut first-response time", baseline="9", target="4",
                     current="6", progress=60)  # fmt: skip
    return BusinessReview.all_orgs.create(
        organization=org, account=account, period_start=dt.date(2026, 7, 1), period_end=dt.date(2026, 9, 30), **kwargs
    )


@pytest.mark.parametrize("role", ["admin", "leader", "csm", "viewer"])
@pytest.mark.parametrize("book", ["own", "other"])
def test_roles_start_and_close_follow_the_account(role, book, org, people, client_for):  # noqa: F811
    owner = people["bob" if book == "own" else "dave"]
    allowed = ALLOWED[(role, book)]
    client = client_for(role)
    account = AccountFactory(organization=org, owner=owner)
    started = client.post(f"{API}/", {"account": account.pk}, format="json")
    assert started.status_code == (201 if allowed else 403), started.json()
    if allowed:
        # The period defaults to the last full quarter.
        assert (started.json()["period_start"], started.json()["period_end"]) == ("2026-07-01", "2026-09-30")
    review = review_of(org, owner)
    closed = client.post(f"{API}/{review.pk}/close/", CLOSE, format="json")
    assert closed.status_code == (200 if allowed else 403), closed.json()
    review.refresh_from_db()
    assert review.status == ("closed" if allowed else "open")
    assert Activity.all_orgs.filter(account=review.account, type="qbr").count() == (1 if allowed else 0)
    # Everyone reads, the report and its PDF included.
    assert client.get(f"{API}/{review.pk}/").status_code == 200
    assert client.get(f"{API}/{review.pk}/report/").status_code == 200
    assert client.get(f"{API}/{review.pk}/pdf/").status_code == 200


def test_viewer_key_without_user_and_refused_methods(org, people, api):  # noqa: F811
    review = review_of(org, people["bob"])
    viewer = api(org, "viewer")
    assert viewer.post(f"{API}/", {"account": review.account_id}, format="json").status_code == 403
    assert viewer.post(f"{API}/{review.pk}/close/", CLOSE, format="json").status_code == 403
    admin = api(org, "admin", people["admin"])
    for method in ("patch", "put", "delete"):
        response = getattr(admin, method)(f"{API}/{review.pk}/", {"summary": "x"}, format="json")
        assert response.status_code == 405 and response.json()["detail"]
    assert BusinessReview.all_orgs.filter(pk=review.pk, summary="").exists()


def test_close_then_report_is_frozen_and_second_close_is_400(org, people, api):  # noqa: F811
    review = review_of(org, people["bob"])
    client = api(org, "csm", people["bob"])
    response = client.post(f"{API}/{review.pk}/close/", CLOSE, format="json")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["held_on"], body["next_review_on"], body["closed_by"]) == (
        "closed", "2026-10-14", "2027-01-14", people["bob"].email,
    )  # fmt: skip
    report = client.get(f"{API}/{review.pk}/report/").json()
    assert [(o["title"], o["current"], o["progress"]) for o in report["objectives"]] == [
        ("Cut first-response time", "6", 60)
    ]
    again = client.post(f"{API}/{review.pk}/close/", CLOSE, format="json")
    assert again.status_code == 400 and "status" in again.json()["errors"]
    assert Activity.all_orgs.filter(account=review.account, type="qbr").count() == 1
    # The plan's new objective does not enter the frozen report.
    assert [o["title"] for o in client.get(f"{API}/{review.pk}/report/").json()["objectives"]] == [
        "Cut first-response time"
    ]


def test_bad_input_is_a_400_with_field_errors(org, people, api):  # noqa: F811
    review = review_of(org, people["bob"])
    client = api(org, "admin", people["admin"])
    bad_period = client.post(
        f"{API}/", {"account": review.account_id, "period_start": "2026-09-30", "period_end": "2026-07-01"},
        format="json",
    )  # fmt: skip
    assert bad_period.status_code == 400 and "period_end" in bad_period.json()["errors"]
    half = client.post(f"{API}/", {"account": review.account_id, "period_start": "2026-09-30"}, format="json")
    assert half.status_code == 400 and "period_end" in half.json()["errors"]
    bad_close = client.post(f"{API}/{review.pk}/close/", {"held_on": "2026-01-01", "summary": "x"}, format="json")
    assert bad_close.status_code == 400 and "held_on" in bad_close.json()["errors"]
    no_title = client.post(f"{API}/{review.pk}/close/", {**CLOSE, "next_objectives": [{"title": ""}]}, format="json")
    assert no_title.status_code == 400
    review.refresh_from_db()
    assert review.status == "open"


def test_pdf_is_a_pdf_and_its_errors_are_json(org, other_org, people, api):  # noqa: F811
    review = review_of(org, people["bob"])
    client = api(org, "csm", people["bob"])
    response = client.get(f"{API}/{review.pk}/pdf/", HTTP_ACCEPT="application/pdf")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith('attachment; filename="qbr-initech-2026-09-30.pdf"')
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages)
    assert "Initech" in text and "Cut first-response time" in text
    missing = client.get(f"{API}/{review.pk + 1000}/pdf/", HTTP_ACCEPT="application/pdf")
    assert missing.status_code == 404 and missing["Content-Type"].startswith("application/json")
    assert missing.json()["detail"]


def test_isolation_of_the_extra_routes(org, other_org, people, api, charlie):  # noqa: F811
    theirs = review_of(other_org, charlie)
    client = api(org, "admin", people["admin"])
    for path in ("report/", "pdf/"):
        assert client.get(f"{API}/{theirs.pk}/{path}").status_code == 404
    assert client.post(f"{API}/{theirs.pk}/close/", CLOSE, format="json").status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == "open"
    assert client.post(f"{API}/", {"account": theirs.account_id}, format="json").status_code == 400


def test_schema_declares_the_pdf_and_the_report(client):
    schema = client.get("/api/schema/", {"format": "json"}).json()
    pdf = schema["paths"]["/api/v1/business-reviews/{id}/pdf/"]["get"]["responses"]
    assert list(pdf["200"]["content"]) == ["application/pdf"]
    assert pdf["200"]["content"]["application/pdf"]["schema"] == {"type": "string", "format": "binary"}
    assert list(pdf["404"]["content"]) == ["application/json"]
    report = schema["paths"]["/api/v1/business-reviews/{id}/report/"]["get"]["responses"]["200"]
    ref = report["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert {"objectives", "usage", "health", "support", "nps", "renewal", "previous", "benchmark"} <= set(
        schema["components"]["schemas"][ref]["properties"]
    )
    close = schema["paths"]["/api/v1/business-reviews/{id}/close/"]["post"]
    assert "requestBody" in close and "200" in close["responses"]
    paths = schema["paths"]["/api/v1/business-reviews/{id}/"]
    assert set(paths) & {"put", "patch", "delete"} == set()
