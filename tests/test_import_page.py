"""The import upload page, the error report, and ``/api/v1/imports/``.

The upload enqueues its task when the request's transaction commits; here the commit callbacks run
(``django_capture_on_commit_callbacks(execute=True)``) with Celery eager, so the import runs inline.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts.choices import JobStatus
from accounts.models import Account, JobRun
from cs_platform.imports import COLUMNS
from cs_platform.imports.tasks import run_import
from cs_platform.jobs import create_job

pytestmark = pytest.mark.django_db

HEADER = ",".join(COLUMNS["accounts"])
GOOD = f"{HEADER}\nA1,Acme Rockets,acme.example,Aerospace,EMEA,250,,,high,adoption,2024-02-01\nA2,Beta,,,,,,A1,,,\n"
BAD = f"{HEADER}\nA1,Acme Rockets,,,,lots,,,,,\n,No id,,,,,,,sideways,,\n"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def upload(client, org, text: str, *, kind: str = "accounts", dry_run: bool = False, capture=None):
    body = {"kind": kind, "file": SimpleUploadedFile("accounts.csv", text.encode(), content_type="text/csv")}
    if dry_run:
        body["dry_run"] = "on"
    url = reverse("admin-imports", args=[org.slug])
    if capture is None:
        return client.post(url, body)
    with capture(execute=True):
        return client.post(url, body)


def last_run(org) -> JobRun:
    return JobRun.all_orgs.filter(organization=org, kind="import_csv").latest("pk")


def test_upload_runs_the_import_and_shows_the_job(client, org, alice, media, eager, django_capture_on_commit_callbacks):
    client.force_login(alice)
    page = client.get(reverse("admin-imports", args=[org.slug]))
    assert page.status_code == 200
    for kind in ("accounts", "contacts", "contracts", "usage", "tickets", "invoices", "activities"):
        assert f'value="{kind}"' in page.content.decode()

    response = upload(client, org, GOOD, capture=django_capture_on_commit_callbacks)
    run = last_run(org)
    assert response.status_code == 302
    assert response["Location"] == reverse("admin-job-detail", args=[org.slug, run.pk])
    assert run.status == JobStatus.SUCCEEDED, run.errors
    assert run.counts["created"] == 2
    assert run.params["kind"] == "accounts" and run.params["dry_run"] is False
    path = Path(run.params["path"])
    assert path.parent == Path(media) / "imports" / str(org.pk) and path.suffix == ".csv"
    assert not path.exists()  # deleted once the run ended
    assert run.params["filename"] == "accounts.csv"
    assert set(Account.objects.for_org(org).values_list("external_id", flat=True)) == {"A1", "A2"}
    assert Account.objects.for_org(org).get(external_id="A2").parent.external_id == "A1"

    detail = client.get(response["Location"])
    assert detail.status_code == 200
    assert '<progress class="progress" max="100"' in detail.content.decode()
    assert 'data-testid="import-outcome"' in detail.content.decode()
    listing = client.get(reverse("admin-imports", args=[org.slug])).content.decode()
    assert f"#{run.pk}" in listing and "Succeeded" in listing


def test_bad_file_fails_with_every_error_shown_and_a_downloadable_report(client, org, alice):
    client.force_login(alice)
    response = upload(client, org, BAD)
    run = last_run(org)
    assert run.status == JobStatus.QUEUED  # enqueued on commit, which a test transaction never reaches
    run_import(org.pk, job_id=run.pk)  # the worker's call, inline
    run.refresh_from_db()
    assert run.status == JobStatus.FAILED
    assert not Account.objects.for_org(org).exists()
    expected = {(2, "employees"), (3, "external_id"), (3, "touch_model")}
    assert {(e["line"], e["column"]) for e in run.errors} == expected

    detail = client.get(response["Location"]).content.decode()
    assert "Nothing was imported" in detail
    assert "sideways" in detail and "lots" in detail
    report = client.get(reverse("admin-job-errors-csv", args=[org.slug, run.pk]))
    assert report.status_code == 200
    assert report["Content-Type"].startswith("text/csv")
    assert "attachment" in report["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(b"".join(report.streaming_content).decode("utf-8-sig"))))
    assert {(int(r["line"]), r["column"]) for r in rows} == expected
    assert all(r["reason"] for r in rows)
    assert any("sideways" in r["reason"] for r in rows)


def test_dry_run_validates_and_imports_nothing(client, org, alice, eager, django_capture_on_commit_callbacks):
    client.force_login(alice)
    upload(client, org, GOOD, dry_run=True, capture=django_capture_on_commit_callbacks)
    run = last_run(org)
    assert run.status == JobStatus.SUCCEEDED
    assert run.params["dry_run"] is True
    assert run.counts["created"] == 2  # what a real run would do
    assert not Account.objects.for_org(org).exists()


def test_unsupported_or_missing_input_is_a_form_error(client, org, alice):
    from cs_platform.imports import UnsupportedKind, check_kind

    client.force_login(alice)
    for kind in ("usage", "tickets", "invoices"):
        try:
            check_kind(kind)
        except UnsupportedKind as exc:
            response = upload(client, org, GOOD, kind=kind)
            assert response.status_code == 400
            assert str(exc) in response.content.decode()
    response = client.post(reverse("admin-imports", args=[org.slug]), {"kind": "accounts"})
    assert response.status_code == 400
    assert not JobRun.all_orgs.filter(organization=org).exists() or all(
        r.params.get("kind") not in ("usage", "tickets", "invoices") for r in JobRun.all_orgs.filter(organization=org)
    )


def test_non_admins_get_403_and_other_orgs_jobs_are_404(client, org, other_org, make_member, alice, charlie):
    for role in ("leader", "csm", "viewer"):
        client.force_login(make_member(org, role).user)
        assert client.get(reverse("admin-imports", args=[org.slug])).status_code == 403
        assert upload(client, org, GOOD).status_code == 403
    assert not JobRun.all_orgs.exists()

    theirs = create_job(organization_id=other_org.pk, kind="import_csv", params={"kind": "accounts"})
    theirs.errors = [{"line": 2, "column": "name", "reason": "secret"}]
    theirs.save()
    client.force_login(alice)
    assert client.get(reverse("admin-job-detail", args=[org.slug, theirs.pk])).status_code == 404
    assert client.get(reverse("admin-job-errors-csv", args=[org.slug, theirs.pk])).status_code == 404
    assert f"#{theirs.pk}" not in client.get(reverse("admin-imports", args=[org.slug])).content.decode()


# --- /api/v1/imports/ --------------------------------------------------------------------------------


def test_api_post_is_202_with_the_run_and_runs_the_import(org, api, eager, django_capture_on_commit_callbacks):
    client = api(org, "admin")
    file = SimpleUploadedFile("accounts.csv", GOOD.encode(), content_type="text/csv")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/v1/imports/", {"kind": "accounts", "file": file}, format="multipart")
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["kind"] == "accounts" and body["dry_run"] is False and body["status"] == "queued"
    assert set(body) >= {"id", "status", "progress", "counts", "errors", "url"}
    assert response["Location"] == body["url"]
    detail = client.get(body["url"]).json()
    assert detail["status"] == "succeeded" and detail["counts"]["created"] == 2
    assert detail["progress"]["percent"] == 100
    assert Account.objects.for_org(org).count() == 2


def test_api_json_content_dry_run_and_errors(org, api):
    client = api(org, "admin")
    response = client.post("/api/v1/imports/", {"kind": "accounts", "content": BAD, "dry_run": True}, format="json")
    assert response.status_code == 202
    run_import(org.pk, job_id=response.json()["id"])
    detail = client.get(f"/api/v1/imports/{response.json()['id']}/").json()
    assert detail["status"] == "failed" and detail["dry_run"] is True
    assert {(e["line"], e["column"]) for e in detail["errors"]} == {
        (2, "employees"),
        (3, "external_id"),
        (3, "touch_model"),
    }

    assert client.post("/api/v1/imports/", {"kind": "accounts"}, format="json").status_code == 400
    both = client.post("/api/v1/imports/", {"kind": "nope", "content": GOOD}, format="json")
    assert both.status_code == 400 and "kind" in both.json()["errors"]


def test_api_post_is_admin_only_and_reads_are_for_everyone(org, api):
    admin = api(org, "admin")
    run = admin.post("/api/v1/imports/", {"kind": "accounts", "content": GOOD}, format="json").json()
    create_job(organization_id=org.pk, kind="refresh_current_arr")  # not an import: never listed
    for role in ("leader", "csm", "viewer"):
        client = api(org, role)
        file = SimpleUploadedFile("a.csv", GOOD.encode())
        assert (
            client.post("/api/v1/imports/", {"kind": "accounts", "file": file}, format="multipart").status_code == 403
        )
        listing = client.get("/api/v1/imports/")
        assert listing.status_code == 200
        assert [r["id"] for r in listing.json()["results"]] == [run["id"]]
        assert client.get(f"/api/v1/imports/{run['id']}/").status_code == 200
    assert JobRun.all_orgs.filter(organization=org, kind="import_csv").count() == 1
    assert admin.delete(f"/api/v1/imports/{run['id']}/").status_code == 405
    assert admin.patch(f"/api/v1/imports/{run['id']}/", {"status": "succeeded"}, format="json").status_code == 405


def test_api_imports_of_another_org_are_invisible(org, other_org, api):
    theirs = api(other_org, "admin").post("/api/v1/imports/", {"kind": "accounts", "content": GOOD}, format="json")
    client = api(org, "admin")
    assert client.get("/api/v1/imports/").json()["results"] == []
    assert client.get(f"/api/v1/imports/{theirs.json()['id']}/").status_code == 404


def test_a_stalled_import_is_shown_as_such_and_runs_again(
    client, org, alice, bob, media, eager, django_capture_on_commit_callbacks
):
    """A worker killed mid-import leaves its run 'running' for good; past the task time limit the page says
    it stalled, and "Run again" re-runs it (nothing of it was written, so that is safe)."""
    import datetime as dt

    from django.utils import timezone

    client.force_login(alice)
    upload(client, org, GOOD)  # queued; the task never ran (a worker that died before committing)
    run = last_run(org)
    JobRun.all_orgs.filter(pk=run.pk).update(
        status=JobStatus.RUNNING, attempts=1, started_at=timezone.now() - dt.timedelta(hours=2)
    )
    detail = client.get(reverse("admin-job-detail", args=[org.slug, run.pk])).content.decode()
    assert 'data-testid="job-stalled"' in detail and "Run again" in detail
    assert 'hx-trigger="every 2s"' not in detail  # a stalled run is not polled forever

    rerun = reverse("admin-job-rerun", args=[org.slug, run.pk])
    client.force_login(bob)
    assert client.post(rerun).status_code == 403
    client.force_login(alice)
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(rerun).status_code == 302
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED and run.attempts == 2
    assert Account.objects.for_org(org).count() == 2
    # A finished run cannot be re-run from the page.
    client.post(rerun)
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED and run.attempts == 2


def test_a_running_import_within_the_time_limit_is_not_stalled(client, org, alice, media):
    from django.utils import timezone

    client.force_login(alice)
    upload(client, org, GOOD)
    run = last_run(org)
    JobRun.all_orgs.filter(pk=run.pk).update(status=JobStatus.RUNNING, started_at=timezone.now())
    detail = client.get(reverse("admin-job-detail", args=[org.slug, run.pk])).content.decode()
    assert 'data-testid="job-stalled"' not in detail and "Run again" not in detail
