"""Security finding 8: uploads had no size limit and were never deleted (120 MB accepted; a 60 MB dry
run took 340 MB of worker memory).

Now: a size and a row limit per organization (server defaults, the operator's override), refused at
the door with the reason (413 / 400 JSON on the API, a form error on the page) before anything is
queued; the parse streams with memory bounded whatever the file's size; the uploaded file is deleted
when its run ends (the error report stays on the run).
"""

from __future__ import annotations

import io
import tracemalloc
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import OperationalError
from django.http.multipartparser import MultiPartParser
from django.middleware.csrf import _get_new_csrf_string
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from accounts import import_kinds
from accounts.choices import JobStatus
from accounts.models import Account, Activity, Contract, ContractLine, JobRun
from cs_platform.imports import COLUMNS, ImportLimits, ImportRefused, count_rows, import_csv, import_limits, reading
from cs_platform.imports import tasks as import_tasks
from cs_platform.imports.tasks import run_import
from cs_platform.imports.uploads import CappedUploadHandler, UploadTooLarge, discard_upload, store_text
from cs_platform.jobs import create_job

from .factories import AccountFactory

pytestmark = pytest.mark.django_db

HEADER = ",".join(COLUMNS["accounts"])


def accounts_csv(rows: int, *, pad: int = 0) -> str:
    lines = [f"{HEADER},notes"] + [f"A{i},Account {i},,,,,,,,,,{'x' * pad}" for i in range(rows)]
    return "\n".join(lines) + "\n"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def stored(media) -> list[Path]:
    root = Path(media) / "imports"
    return sorted(root.rglob("*.csv")) if root.exists() else []


def limit(org, *, max_bytes: int | None = None, max_rows: int | None = None):
    org.import_max_bytes, org.import_max_rows = max_bytes, max_rows
    org.save(update_fields=["import_max_bytes", "import_max_rows"])


# --- The limits ----------------------------------------------------------------------------------


def test_limits_default_to_the_server_settings_and_the_operator_may_override_them(org, settings):
    settings.IMPORT_MAX_BYTES, settings.IMPORT_MAX_ROWS = 50 * 1024 * 1024, 1_000_000
    assert import_limits(org) == ImportLimits(max_bytes=50 * 1024 * 1024, max_rows=1_000_000)
    limit(org, max_bytes=200 * 1024 * 1024, max_rows=3_000_000)  # what the operator sets in django-admin
    assert import_limits(org) == ImportLimits(max_bytes=200 * 1024 * 1024, max_rows=3_000_000)


def test_the_page_shows_the_limits(client, org, alice):
    limit(org, max_bytes=5 * 1024 * 1024, max_rows=20_000)
    client.force_login(alice)
    page = client.get(reverse("admin-imports", args=[org.slug])).content.decode()
    assert "Up to 5 MB and 20,000 rows per file" in page


# --- Refused at the door -------------------------------------------------------------------------------


def test_page_refuses_a_file_over_the_size_limit_with_a_form_error(client, org, alice, media):
    limit(org, max_bytes=1024)
    client.force_login(alice)
    body = {"kind": "accounts", "file": SimpleUploadedFile("big.csv", accounts_csv(200).encode())}
    response = client.post(reverse("admin-imports", args=[org.slug]), body)
    assert response.status_code == 413
    page = response.content.decode()
    assert 'data-testid="upload-refused"' in page and "larger than 1 KB" in page
    assert not JobRun.all_orgs.exists() and stored(media) == []


def test_the_size_check_still_asks_for_the_csrf_token(org, alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    body = {"kind": "accounts", "file": SimpleUploadedFile("a.csv", accounts_csv(2).encode())}
    assert client.post(reverse("admin-imports", args=[org.slug]), body).status_code == 403
    assert not JobRun.all_orgs.exists()


def test_page_refuses_a_file_over_the_row_limit_and_keeps_nothing(client, org, alice, media):
    limit(org, max_rows=3)
    client.force_login(alice)
    upload = SimpleUploadedFile("four.csv", accounts_csv(4).encode())
    response = client.post(reverse("admin-imports", args=[org.slug]), {"kind": "accounts", "file": upload})
    assert response.status_code == 400
    assert "more than 3 rows" in response.content.decode()
    assert not JobRun.all_orgs.exists() and stored(media) == []
    exactly = SimpleUploadedFile("three.csv", (accounts_csv(3) + "\n,,,,,,,,,,,\n").encode())  # blank rows free
    assert (
        client.post(reverse("admin-imports", args=[org.slug]), {"kind": "accounts", "file": exactly}).status_code == 302
    )


def test_api_refuses_over_size_uploads_with_413_json(org, api, media):
    limit(org, max_bytes=1024)
    client = api(org, "admin")
    file = SimpleUploadedFile("big.csv", accounts_csv(200).encode())
    response = client.post("/api/v1/imports/", {"kind": "accounts", "file": file}, format="multipart")
    assert response.status_code == 413
    assert response["Content-Type"].startswith("application/json")
    assert "larger than 1 KB" in response.json()["detail"]
    inline = client.post("/api/v1/imports/", {"kind": "accounts", "content": accounts_csv(200)}, format="json")
    assert inline.status_code == 413 and "larger than 1 KB" in inline.json()["detail"]
    assert not JobRun.all_orgs.exists() and stored(media) == []


def test_api_session_upload_over_the_ceiling_is_413_before_the_csrf_check(org, alice, settings, media):
    settings.IMPORT_MAX_BYTES = 2048  # the ceiling, while the session's organization is not known yet
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(alice)
    # A browser session has a CSRF cookie: the check then reads the body (for the form's token) before
    # the view knows the organization, so the server-wide ceiling applies there.
    client.cookies[settings.CSRF_COOKIE_NAME] = _get_new_csrf_string()
    file = SimpleUploadedFile("big.csv", accounts_csv(300).encode())
    response = client.post("/api/v1/imports/", {"kind": "accounts", "file": file}, format="multipart")
    assert response.status_code == 413 and response["Content-Type"].startswith("application/json")
    assert stored(media) == []


def test_api_refuses_too_many_rows_and_unreadable_files_with_400_json(org, api, media):
    limit(org, max_rows=3)
    client = api(org, "admin")
    response = client.post("/api/v1/imports/", {"kind": "accounts", "content": accounts_csv(4)}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"]["file"] == ["The file has more than 3 rows, this organization's limit per file."]
    latin1 = SimpleUploadedFile("latin1.csv", (accounts_csv(1) + "A9,Café,,,,,,,,,,\n").encode("latin-1"))
    response = client.post("/api/v1/imports/", {"kind": "accounts", "file": latin1}, format="multipart")
    assert response.status_code == 400
    assert response.json()["errors"]["file"] == ["Line 3: the file is not UTF-8 text (save it as CSV UTF-8)."]
    assert not JobRun.all_orgs.exists() and stored(media) == []


def test_the_upload_handler_refuses_before_reading_a_declared_oversize_body():
    body = io.BytesIO(b"x" * 10_000)
    meta = {"CONTENT_TYPE": "multipart/form-data; boundary=B", "CONTENT_LENGTH": "10000000"}
    handler = CappedUploadHandler(None, 1024)
    with pytest.raises(UploadTooLarge):
        MultiPartParser(meta, body, [handler]).parse()
    assert body.tell() == 0  # not a byte read


def test_the_upload_handler_cuts_off_a_body_that_passes_the_limit():
    handler = CappedUploadHandler(None, lambda: 100_000)
    handler.handle_raw_input(None, {}, 0, b"B")  # no declared length (chunked): counted as it comes
    for start in range(0, 100_000, 10_000):
        assert handler.receive_data_chunk(b"x" * 10_000, start) == b"x" * 10_000
    with pytest.raises(UploadTooLarge):
        handler.receive_data_chunk(b"x", 100_000)


def test_the_worker_enforces_the_row_limit_too(org, tmp_path):
    path = tmp_path / "a.csv"
    path.write_text(accounts_csv(5))
    result = import_csv(org, "accounts", path, max_rows=4)
    assert not result.ok and result.rows == 4
    assert [(e.line, e.reason) for e in result.errors] == [
        (6, "the file has more than 4 rows, this organization's limit per file")
    ]
    assert not Account.objects.for_org(org).exists()


def test_unreadable_files_are_reported_with_their_line(org, tmp_path, monkeypatch):
    path = tmp_path / "a.csv"
    path.write_bytes(accounts_csv(2).encode() + b"A7,Caf\xe9,,,,,,,,,,\n")
    result = import_csv(org, "accounts", path)
    assert [(e.line, e.reason) for e in result.errors] == [(4, "the file is not UTF-8 text (save it as CSV UTF-8)")]
    monkeypatch.setattr(reading, "MAX_RECORD_CHARS", 200)
    path.write_text(accounts_csv(2) + f'A8,"{"y" * 150}\n{"y" * 150}",,,,,,,,,,\n')
    result = import_csv(org, "accounts", path)
    assert [(e.line, e.reason) for e in result.errors] == [(4, "a row longer than 200 characters: is this a CSV file?")]
    with pytest.raises(ImportRefused, match="Line 4: a row longer than 200 characters"):
        count_rows(path, limit=10)
    path.write_text("x" * 10_000)  # no newline at all: never read whole
    assert import_csv(org, "accounts", path).errors[0].reason.startswith("a row longer than 200 characters")


# --- Deleted when the run ends -------------------------------------------------------------------------


def run_of(org, text: str, *, dry_run: bool = False) -> tuple[JobRun, Path]:
    path = store_text(org, text)
    job = create_job(
        organization_id=org.pk, kind="import_csv", params={"kind": "accounts", "path": str(path), "dry_run": dry_run}
    )
    return job, path


@pytest.mark.parametrize("case", ["succeeded", "dry run", "bad rows"])
def test_the_upload_is_deleted_when_the_run_ends_and_the_error_report_stays(org, case):
    text = accounts_csv(2) if case != "bad rows" else accounts_csv(1) + ",No id,,,,,,,,,,\n"
    job, path = run_of(org, text, dry_run=case == "dry run")
    assert path.is_file()
    run_import(org.pk, job_id=job.pk)
    job.refresh_from_db()
    assert not path.exists()
    if case == "bad rows":
        assert job.status == JobStatus.FAILED
        assert job.errors == [{"line": 3, "column": "external_id", "reason": "is required"}]
    else:
        assert job.status == JobStatus.SUCCEEDED


def test_the_upload_is_deleted_when_the_run_crashes(org, monkeypatch):
    job, path = run_of(org, accounts_csv(2))
    monkeypatch.setattr(import_tasks, "import_csv", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        run_import(org.pk, job_id=job.pk)
    assert not path.exists()
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED


def test_the_upload_stays_while_a_retry_is_coming_and_the_retry_reads_it(org, monkeypatch):
    job, path = run_of(org, accounts_csv(2))
    real, calls = import_tasks.import_csv, []

    def flaky(*args, **kwargs):
        calls.append(path.is_file())
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return real(*args, **kwargs)

    monkeypatch.setattr(import_tasks, "import_csv", flaky)
    monkeypatch.setattr("cs_platform.tasks.retry_delay", lambda *a, **k: 0)
    run_import.apply((org.pk,), {"job_id": job.pk}, throw=False)  # retries inline
    job.refresh_from_db()
    assert calls == [True, True]  # the second try found the file
    assert job.status == JobStatus.SUCCEEDED and job.attempts == 2
    assert not path.exists()


def test_a_file_that_is_gone_fails_with_a_plain_reason(org):
    job, path = run_of(org, accounts_csv(1))
    path.unlink()
    with pytest.raises(Exception, match="no longer on the server"):
        run_import(org.pk, job_id=job.pk)
    job.refresh_from_db()
    assert job.errors == [
        {"error": "The uploaded file is no longer on the server (an upload is deleted when its run ends). "
         "Upload the file again."}
    ]  # fmt: skip


def test_only_uploads_are_ever_deleted(org, tmp_path):
    outside = tmp_path / "operator.csv"
    outside.write_text(accounts_csv(1))
    assert discard_upload(outside) is False and outside.exists()  # a path given to the import_csv command
    inside = store_text(org, accounts_csv(1))
    assert discard_upload(inside) is True and not inside.exists()
    assert discard_upload(inside) is False


# --- Memory bounded whatever the file's size ------------------------------------------------------------


def peak_memory(org, kind: str, path: Path) -> int:
    tracemalloc.start()
    try:
        result = import_csv(org, kind, path, dry_run=True)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        assert result.ok, result.errors[:3]


def test_memory_does_not_grow_with_the_size_of_the_rows(org, tmp_path):
    """Activities whose summaries make a 4× bigger file (16 MB vs 4 MB) take about the same memory, far
    below the file's size: rows are streamed, written in batches bounded in characters
    (``BATCH_CHARS``), and duplicates are checked by 8-byte digests rather than by the summaries."""
    AccountFactory(organization=org, external_id="A1")
    peaks = {}
    for rows in (500, 2000):
        path = tmp_path / f"activities-{rows}.csv"
        with path.open("w") as out:
            out.write(",".join(COLUMNS["activities"]) + "\n")
            for i in range(rows):
                day, minute = divmod(i, 1440)
                when = f"2024-01-{day + 1:02d}T{minute // 60:02d}:{minute % 60:02d}:00"
                out.write(f"A1,call,{when},,{i} {'summary ' * 1000}\n")
        peaks[rows] = (peak_memory(org, "activities", path), path.stat().st_size)
    (small, small_size), (big, big_size) = peaks[500], peaks[2000]
    assert big_size > 4 * small_size > 15_000_000
    assert big < small * 1.5 + 2_000_000, (small, big)
    assert big < big_size / 2, (big, big_size)


def test_contract_lines_are_written_bucket_by_bucket_with_the_same_result(org, other_org, tmp_path, monkeypatch):
    """A big contracts file is split by contract number into temporary files so that only one bucket of
    lines is in memory; the result is the same as in one piece."""
    lines = [",".join(COLUMNS["contracts"])]
    for n in range(12):
        for sku in ("S1", "S2", "S3")[: n % 3 + 1]:
            lines.append(f"A1,C-{n},2024-01-01,2024-12-31,active,{sku},Product {sku},{n + 1},100.50,0.1,")
    path = tmp_path / "contracts.csv"
    path.write_text("\n".join(lines) + "\n")
    outcomes = []
    for organization, bucket_rows in ((org, 1_000_000), (other_org, 2)):
        AccountFactory(organization=organization, external_id="A1")
        monkeypatch.setattr(import_kinds, "CONTRACT_BUCKET_ROWS", bucket_rows)
        result = import_csv(organization, "contracts", path)
        assert result.ok, result.errors
        contracts = sorted(Contract.objects.for_org(organization).values_list("number", "arr"))
        lines_ = sorted(
            ContractLine.objects.for_org(organization).values_list(
                "contract__number", "product__sku", "quantity", "arr"
            )
        )
        outcomes.append((result.counts(), contracts, lines_))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0]["created"] == 24 and len(outcomes[0][1]) == 12


def test_activities_of_one_file_are_still_deduplicated(org, tmp_path):
    AccountFactory(organization=org, external_id="A1")
    path = tmp_path / "a.csv"
    row = "A1,call,2024-01-01,,same summary"
    path.write_text("\n".join([",".join(COLUMNS["activities"]), row, row, "A1,call,2024-01-01,,other"]) + "\n")
    result = import_csv(org, "activities", path)
    assert (result.created, result.unchanged) == (2, 1)
    assert Activity.objects.for_org(org).count() == 2
