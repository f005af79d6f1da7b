"""The import pages in real headless Chromium, at desktop width and on a phone (390×844): a bad file's
run page goes from "waiting" to a red failure with "Upload a corrected file" (htmx polling, no green
message left behind, no traceback), the corrected upload opens on the same kind, and a file over the
organization's size limit is refused in the form."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from django.db import connections

from accounts.models import JobRun
from cs_platform.imports import COLUMNS
from cs_platform.imports.tasks import run_import

sync_api = pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
PASSWORD = "correct horse battery"
HEADER = ",".join(COLUMNS["accounts"])
BAD = f"{HEADER}\nA1,Acme Rockets,,,,lots,,,,,\n"


@pytest.fixture(params=[(1440, 900), (390, 844)], ids=["desktop", "phone"])
def page(request, live_server, monkeypatch, settings, tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (make test installs Debian's chromium when it can)")
    settings.MEDIA_ROOT = tmp_path / "media"
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    # The test plays the worker: it runs the queued import itself, so nothing goes to a broker.
    monkeypatch.setattr(run_import, "delay", lambda *args, **kwargs: None)
    width, height = request.param
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport={"width": width, "height": height})
        tab = context.new_page()
        tab.set_default_timeout(10_000)
        try:
            yield tab
        finally:
            context.close()
            browser.close()
            for thread in threading.enumerate():
                if "process_request_thread" in thread.name:
                    thread.join(5)
            connections.close_all()


def fits_the_screen(tab, selector: str) -> bool:
    """The element (and all it holds) is within the viewport's width: nothing of it needs a sideways scroll."""
    return tab.evaluate(
        """(selector) => [document.querySelector(selector), ...document.querySelectorAll(selector + ' *')]
            .every(e => e.getBoundingClientRect().right <= window.innerWidth + 1)""",
        selector,
    )


def test_a_failed_import_offers_a_corrected_upload_and_an_oversize_file_is_refused(page, live_server, org, alice):
    alice.set_password(PASSWORD)
    alice.save()
    page.goto(live_server.url + "/login/")
    page.get_by_label("Email or username").fill(alice.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**/o/{org.slug}/")

    page.goto(f"{live_server.url}/o/{org.slug}/admin/imports/")
    sync_api.expect(page.get_by_test_id("import-limits")).to_contain_text("Up to 50 MB and 1,000,000 rows per file")
    page.get_by_label("Kind").select_option("accounts")
    page.get_by_label("CSV file", exact=True).set_input_files(
        files=[{"name": "q3.csv", "mimeType": "text/csv", "buffer": BAD.encode()}]
    )
    page.get_by_role("button", name="Upload and import").click()
    page.wait_for_url("**/admin/jobs/*/")
    status = page.locator("#job-status")
    sync_api.expect(status).to_have_attribute("data-status", "queued")
    sync_api.expect(page.get_by_test_id("import-outcome")).to_contain_text("Waiting for a worker to import q3.csv")
    assert page.locator(".flash-success").count() == 0

    run = JobRun.all_orgs.get(organization=org, kind="import_csv")
    run_import(org.pk, job_id=run.pk)  # the worker
    sync_api.expect(status).to_have_attribute("data-status", "failed", timeout=8_000)
    outcome = page.get_by_role("alert").filter(has_text="Failed.")
    sync_api.expect(outcome).to_contain_text("Nothing was imported")
    sync_api.expect(page.get_by_test_id("job-errors")).to_contain_text("lots")
    assert page.get_by_role("button", name="Run again").count() == 0
    assert "Traceback" not in page.content() and page.locator(".flash-success").count() == 0
    corrected = page.get_by_role("link", name="Upload a corrected file")
    sync_api.expect(corrected).to_be_visible()
    assert fits_the_screen(page, "#job-status")

    corrected.click()
    page.wait_for_url("**/admin/imports/?kind=accounts")
    sync_api.expect(page.get_by_label("Kind")).to_have_value("accounts")

    org.import_max_bytes = 1024
    org.save(update_fields=["import_max_bytes"])
    big = (BAD * 40).encode()
    page.get_by_label("CSV file", exact=True).set_input_files(
        files=[{"name": "big.csv", "mimeType": "text/csv", "buffer": big}]
    )
    page.get_by_role("button", name="Upload and import").click()
    refusal = page.get_by_test_id("upload-refused")
    sync_api.expect(refusal).to_contain_text("larger than 1 KB, this organization's limit per upload")
    assert fits_the_screen(page, "[data-testid=import-form]")
    assert JobRun.all_orgs.filter(organization=org).count() == 1
