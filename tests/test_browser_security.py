"""The security pages in a real headless Chromium, at desktop width and at 390×844 (a phone):
inviting a person, accepting the emailed link as a newcomer, and the sign-in lockout message.

Uses Debian's ``/usr/bin/chromium`` (never a downloaded browser) and pytest-django's ``live_server``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.core import mail
from django.db import connections

from accounts.models import Invitation, Membership

from .test_browser import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS, _wait_for_request_threads

sync_api = pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PASSWORD = "correct horse battery"
VIEWPORTS = {"desktop": {"width": 1440, "height": 900}, "phone": {"width": 390, "height": 844}}


@pytest.fixture(params=list(VIEWPORTS))
def browser(request, live_server, monkeypatch):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (make test installs Debian's chromium when it can)")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        contexts = []

        def new_page():
            context = chromium.new_context(viewport=VIEWPORTS[request.param])
            contexts.append(context)
            page = context.new_page()
            page.set_default_timeout(10_000)
            return page

        try:
            yield request.param, new_page
        finally:
            for context in contexts:
                context.close()
            chromium.close()
            _wait_for_request_threads()
            connections.close_all()


def sign_in(page, base: str, username: str, password: str) -> None:
    page.goto(base + "/login/")
    page.get_by_label("Email or username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def fits_the_width(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_invite_then_accept_as_a_newcomer(org, alice, live_server, browser):
    width, new_page = browser
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    alice.set_password(PASSWORD)
    alice.save()
    admin = new_page()
    sign_in(admin, live_server.url, alice.username, PASSWORD)
    admin.wait_for_url(f"**/o/{org.slug}/")
    admin.goto(f"{live_server.url}/o/{org.slug}/admin/")
    form = admin.locator("form", has=admin.get_by_role("button", name="Send invitation"))
    form.get_by_label("Email").fill("Newcomer@Example.com")
    form.get_by_label("Role").select_option("csm")
    form.get_by_role("button", name="Send invitation").click()
    sync_api.expect(admin.get_by_role("status")).to_contain_text("Invitation sent to newcomer@example.com")
    sync_api.expect(admin.get_by_test_id("invitations")).to_contain_text("newcomer@example.com")
    admin.screenshot(path=str(SCREENSHOTS / f"admin_invitations_{width}.png"), full_page=True)
    assert not Membership.all_orgs.filter(user__email="newcomer@example.com").exists()

    (message,) = mail.outbox
    link = re.search(r"http://\S+/invitations/[A-Za-z0-9_-]+/", message.body).group(0)
    newcomer = new_page()  # another browser: no session
    newcomer.goto(link)
    sync_api.expect(newcomer.get_by_role("heading", level=1)).to_have_text(f"Join {org.name}")
    assert fits_the_width(newcomer)
    newcomer.screenshot(path=str(SCREENSHOTS / f"invitation_{width}.png"), full_page=True)
    newcomer.get_by_label("Your name").fill("New Comer")
    newcomer.get_by_label("New password", exact=True).fill("a-long-enough-passphrase-42")
    newcomer.get_by_label("New password confirmation").fill("a-long-enough-passphrase-42")
    newcomer.get_by_test_id("create-account").click()
    newcomer.wait_for_url(f"**/o/{org.slug}/")
    assert Membership.all_orgs.get(user__email="newcomer@example.com").role == "csm"

    # The link works once.
    used = new_page()
    used.goto(link)
    sync_api.expect(used.get_by_test_id("invitation-problem")).to_have_text("This invitation has already been used.")
    assert Invitation.all_orgs.get(email="newcomer@example.com").status == "accepted"


def test_lockout_message_on_the_sign_in_page(org, bob, live_server, browser, settings):
    width, new_page = browser
    bob.set_password(PASSWORD)
    bob.save()
    page = new_page()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in(page, live_server.url, bob.username, "wrong password")
    sign_in(page, live_server.url, bob.username, PASSWORD)
    alert = page.get_by_test_id("locked-out")
    sync_api.expect(alert).to_contain_text("Too many failed sign-in attempts")
    sync_api.expect(alert).to_contain_text("try again in")
    assert alert.get_attribute("role") == "alert"
    assert "/login/" in page.url and fits_the_width(page)
    page.screenshot(path=str(SCREENSHOTS / f"login_locked_{width}.png"), full_page=True)
