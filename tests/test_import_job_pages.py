"""Security finding 7: import job pages showed Python tracebacks with server paths, kept a green
"Importing…" message on a failed import and offered "Run again" on a file that failed validation.

Members (viewers included, through the API) see plain reasons only; the traceback goes to the log. A
failed import says so and offers to upload a corrected file.
"""

from __future__ import annotations

import csv
import io
import json
import logging

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts.choices import JobStatus
from accounts.models import JobRun
from cs_platform.imports import COLUMNS
from cs_platform.imports import tasks as import_tasks
from cs_platform.imports.tasks import run_import
from cs_platform.jobs import create_job, internal_error_message

pytestmark = pytest.mark.django_db

HEADER = ",".join(COLUMNS["accounts"])
GOOD = f"{HEADER}\nA1,Acme Rockets,acme.example,Aerospace,EMEA,250,,,high,adoption,2024-02-01\n"
BAD = f"{HEADER}\nA1,Acme Rockets,,,,lots,,,,,\n"
SERVER_PATH = "/srv/retain/var/media/imports/1/0b9e.csv"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def upload(client, org, text: str, *, name: str = "accounts.csv", dry_run: bool = False):
    body = {"kind": "accounts", "file": SimpleUploadedFile(name, text.encode(), content_type="text/csv")}
    if dry_run:
        body["dry_run"] = "on"
    return client.post(reverse("admin-imports", args=[org.slug]), body)


def last_run(org) -> JobRun:
    return JobRun.all_orgs.filter(organization=org, kind="import_csv").latest("pk")


def leaks(text: str) -> list[str]:
    return [word for word in ("Traceback", "/srv/", 'File "', "OSError", "Errno", ".py") if word in text]


def test_a_crashed_import_shows_a_plain_reason_and_logs_the_traceback(client, api, org, alice, monkeypatch, caplog):
    client.force_login(alice)
    upload(client, org, GOOD)
    run = last_run(org)

    def crash(*args, **kwargs):
        raise OSError(f"[Errno 28] No space left on device: '{SERVER_PATH}'")

    monkeypatch.setattr(import_tasks, "import_csv", crash)
    with caplog.at_level(logging.ERROR), pytest.raises(OSError):
        run_import(org.pk, job_id=run.pk)
    run.refresh_from_db()
    assert run.status == JobStatus.FAILED
    assert run.errors == [{"error": internal_error_message(run.pk)}]

    # The operator's copy, in the log: the exception, its text and where it happened.
    logged = [r for r in caplog.records if r.exc_info and r.exc_info[0] is OSError]
    assert logged and SERVER_PATH in str(logged[0].exc_info[1]) and f"job run {run.pk}" in logged[0].getMessage()

    page = client.get(reverse("admin-job-detail", args=[org.slug, run.pk])).content.decode()
    assert leaks(page) == []
    assert internal_error_message(run.pk) in page
    assert 'data-testid="import-outcome"' in page and "Failed." in page
    assert "Upload the file again" in page and "Run again" not in page
    report = client.get(reverse("admin-job-errors-csv", args=[org.slug, run.pk]))
    assert leaks(b"".join(report.streaming_content).decode()) == []
    for role in ("viewer", "csm", "admin"):
        body = api(org, role).get(f"/api/v1/imports/{run.pk}/").json()
        assert body["errors"] == [{"error": internal_error_message(run.pk)}]
        assert leaks(json.dumps(body)) == []


def test_runs_recorded_with_a_traceback_before_the_fix_show_none(client, api, org, alice):
    run = create_job(organization_id=org.pk, kind="import_csv", params={"kind": "accounts", "path": SERVER_PATH})
    run.status = JobStatus.FAILED
    run.errors = [
        {
            "error": f"[Errno 2] No such file or directory: '{SERVER_PATH}'",
            "traceback": 'Traceback (most recent call last):\n  File "/srv/retain/accounts/tasks.py", line 52\n'
            + SERVER_PATH,
        }
    ]
    run.save()
    client.force_login(alice)
    page = client.get(reverse("admin-job-detail", args=[org.slug, run.pk])).content.decode()
    assert leaks(page) == [] and internal_error_message(run.pk) in page
    assert SERVER_PATH not in page  # the run's parameters show no server path either
    body = api(org, "viewer").get(f"/api/v1/imports/{run.pk}/").content.decode()
    assert leaks(body) == []
    listing = api(org, "viewer").get("/api/v1/imports/").content.decode()
    assert leaks(listing) == []
    report = client.get(reverse("admin-job-errors-csv", args=[org.slug, run.pk]))
    rows = list(csv.reader(io.StringIO(b"".join(report.streaming_content).decode("utf-8-sig"))))
    assert rows[1][2] == internal_error_message(run.pk)


def test_a_failed_validation_shows_the_failure_and_offers_a_corrected_upload(client, org, alice):
    client.force_login(alice)
    response = upload(client, org, BAD, name="q3-accounts.csv")
    run = last_run(org)
    # The run's page says what is happening; no green message that would outlive the outcome.
    queued = client.get(response["Location"]).content.decode()
    assert "flash-success" not in queued
    assert "Waiting for a worker to import q3-accounts.csv" in queued

    run_import(org.pk, job_id=run.pk)
    page = client.get(response["Location"]).content.decode()
    assert "flash-success" not in page and "Importing" not in page
    assert 'role="alert"' in page and "Failed." in page and "lots" in page
    upload_again = reverse("admin-imports", args=[org.slug]) + "?kind=accounts"
    assert f'href="{upload_again}"' in page and "Upload a corrected file" in page
    assert "Run again" not in page
    # Running the same bad file again is refused (and its file is gone anyway).
    client.post(reverse("admin-job-rerun", args=[org.slug, run.pk]))
    run.refresh_from_db()
    assert run.status == JobStatus.FAILED and run.attempts == 1
    # The corrected upload starts from the same kind.
    form = client.get(upload_again).content.decode()
    assert '<option value="accounts" selected>' in form


def test_the_run_page_names_the_file_not_the_server_path(client, org, alice):
    client.force_login(alice)
    upload(client, org, GOOD, name="accounts-june.csv", dry_run=True)
    run = last_run(org)
    run_import(org.pk, job_id=run.pk)
    page = client.get(reverse("admin-job-detail", args=[org.slug, run.pk])).content.decode()
    assert "accounts-june.csv" in page and run.params["path"] not in page
    assert "Dry run: the file is valid" in page and "Upload it again to import it" in page


def test_a_transient_error_is_shown_in_plain_words(org):
    from cs_platform.jobs import run_job

    job = create_job(organization_id=org.pk, kind="import_csv")
    with pytest.raises(RuntimeError), run_job(job.pk) as recorder:
        recorder.retry_in = 8.0
        raise RuntimeError('could not connect to server at "db.internal" (10.0.3.7), port 5432')
    job.refresh_from_db()
    assert "10.0.3.7" not in str(job.errors) and "db.internal" not in str(job.errors)
    assert job.errors[0]["error"].startswith("A temporary problem reaching the database")
