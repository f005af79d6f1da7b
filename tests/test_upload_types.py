"""Uploads are type-checked (issue 16 §5; cs_platform/imports/reading.py, check_csv_type).

Size and row limits are tested in tests/test_import_limits.py. Here: a file that is not CSV text, by its name
or by its content (a workbook renamed .csv, an image, a binary with NUL bytes), is refused on the API with a
400 JSON naming what it is, and on the page with that message in the form; nothing is queued or kept.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts.models import JobRun
from cs_platform.imports import COLUMNS

pytestmark = pytest.mark.django_db

CSV = (",".join(COLUMNS["accounts"]) + "\nA1,Account 1" + "," * (len(COLUMNS["accounts"]) - 2) + "\n").encode()
XLSX = b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00" + b"[Content_Types].xml" + bytes(range(256))
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64)
NUL_TEXT = b"external_id,name\nA1,Acme\x00\x00\x00\n"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def kept(media) -> list[Path]:
    root = Path(media)
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("accounts.xlsx", XLSX, "Only .csv files can be imported, not .xlsx: export the data as CSV UTF-8."),
        ("accounts.csv", XLSX, "This file is an Excel workbook or a ZIP archive, not CSV text: export the data as "
                               "CSV UTF-8."),
        ("logo.csv", PNG, "This file is a PNG image, not CSV text: export the data as CSV UTF-8."),
        ("dump.csv", NUL_TEXT, "This file is binary, not CSV text: export the data as CSV UTF-8."),
        ("run.exe", CSV, "Only .csv files can be imported, not .exe: export the data as CSV UTF-8."),
    ],
)  # fmt: skip
def test_the_api_refuses_a_file_that_is_not_csv_with_400_json(org, api, media, name, content, reason):
    upload = SimpleUploadedFile(name, content, content_type="text/csv")  # the declared type is not trusted
    response = api(org, "admin").post("/api/v1/imports/", {"kind": "accounts", "file": upload}, format="multipart")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["errors"]["file"] == [reason]
    assert not JobRun.all_orgs.exists() and kept(media) == []


def test_the_page_refuses_a_workbook_with_the_reason_in_the_form(client, org, alice, media):
    client.force_login(alice)
    upload = SimpleUploadedFile("accounts.csv", XLSX)
    response = client.post(reverse("admin-imports", args=[org.slug]), {"kind": "accounts", "file": upload})
    assert response.status_code == 400
    assert "This file is an Excel workbook or a ZIP archive, not CSV text" in response.content.decode()
    assert not JobRun.all_orgs.exists() and kept(media) == []


@pytest.mark.parametrize("name", ["accounts.csv", "ACCOUNTS.CSV", "export.txt", "accounts"])
def test_csv_text_under_a_csv_txt_or_bare_name_is_accepted(org, api, media, name):
    upload = SimpleUploadedFile(name, CSV)
    response = api(org, "admin").post(
        "/api/v1/imports/", {"kind": "accounts", "file": upload, "dry_run": True}, format="multipart"
    )
    assert response.status_code == 202, response.json()
