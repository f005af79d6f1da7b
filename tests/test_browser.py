"""End to end in a real headless Chromium: sign in, My book, Account 360, log an activity inline with htmx.

Uses Debian's ``/usr/bin/chromium`` (never a downloaded browser) and pytest-django's ``live_server``.
Screenshots land in ``var/screenshots/`` for a human look at the design.
"""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections
from django.utils import timezone

from accounts.services import refresh_current_arr
from tests.factories import (
    AccountFactory,
    ActivityFactory,
    ContactFactory,
    ContractFactory,
    ContractLineFactory,
    MembershipFactory,
    ObjectiveFactory,
    ProductFactory,
    SuccessPlanFactory,
    UserFactory,
)

sync_api = pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
PASSWORD = "correct horse battery"


def member_who_signs_in(org, role: str, email: str, first_name: str, last_name: str):
    """A user of ``org`` with ``role`` who can sign in with :data:`PASSWORD` (the browser tests' people)."""
    user = UserFactory(username=email, email=email, first_name=first_name, last_name=last_name)
    user.set_password(PASSWORD)
    user.save()
    MembershipFactory(organization=org, user=user, role=role)
    return user


@pytest.fixture
def book(org):
    """A CSM with a realistic book: accounts across touch models, contracts, contacts, a plan, a timeline."""
    today = timezone.localdate()
    dana = UserFactory(
        username="dana@acme.example", email="dana@acme.example", first_name="Dana", last_name="Whitfield"
    )
    dana.set_password(PASSWORD)
    dana.save()
    MembershipFactory(organization=org, user=dana, role="csm")
    colleague = MembershipFactory(
        organization=org, role="csm", user=UserFactory(first_name="Sam", last_name="Okafor")
    ).user
    platform = ProductFactory(organization=org, sku="PLAT", name="Platform", product_line="Core")
    analytics = ProductFactory(organization=org, sku="ANLX", name="Analytics add-on", product_line="Add-ons")
    support = ProductFactory(organization=org, sku="PREM", name="Premium support", product_line="Services")
    specs = [
        (
            "Northwind Logistics",
            "northwind.example",
            "high",
            "adoption",
            "Logistics",
            "EMEA",
            120,
            1500,
            40,
            ["strategic"],
        ),
        ("Blue Harbor Health", "blueharbor.example", "high", "renewal", "Healthcare", "NA", 40, 2400, 300, ["at-risk"]),
        ("Cobalt Robotics", "cobalt.example", "low", "mature", "Manufacturing", "NA", 60, 900, 150, []),
        ("Delta Freight", "deltafreight.example", "low", "onboarding", "Logistics", "APAC", 25, 1100, 75, ["new"]),
        ("Evergreen Schools", "evergreen.example", "tech", "adoption", "Education", "NA", 15, 600, 500, []),
        ("Fjord Analytics", "fjord.example", "low", "mature", "Software", "EMEA", 35, 1000, 220, ["reference"]),
        ("Granite Insurance", "granite.example", "high", "adoption", "Financial services", "EMEA", 200, 1300, 20, []),
    ]
    accounts = []
    for i, (name, domain, touch, stage, industry, region, qty, price, days_left, tags) in enumerate(specs):
        account = AccountFactory(
            organization=org,
            owner=dana,
            name=name,
            domain=domain,
            touch_model=touch,
            lifecycle_stage=stage,
            industry=industry,
            region=region,
            tags=tags,
            employees=qty * 40,
            customer_since=dt.date(2021 + i % 4, 1 + i, 15),
        )
        contract = ContractFactory(
            account=account,
            number=f"C-{2000 + i}",
            start_date=today - dt.timedelta(days=365 - days_left),
            end_date=today + dt.timedelta(days=days_left),
            seats=qty,
            auto_renew=i % 2 == 0,
        )
        ContractLineFactory(
            contract=contract, product=platform, quantity=Decimal(qty), annual_unit_price=Decimal(price)
        )
        if touch == "high":
            ContractLineFactory(
                contract=contract,
                product=analytics,
                quantity=Decimal(qty),
                annual_unit_price=Decimal("300"),
                discount=Decimal("0.15"),
            )
            ContractLineFactory(
                contract=contract, product=support, quantity=Decimal(1), annual_unit_price=Decimal(18000)
            )
        accounts.append(account)
    AccountFactory(organization=org, owner=colleague, name="Someone Else's Co")
    northwind = accounts[0]
    ContactFactory(account=northwind, name="Priya Raman", title="VP Operations", roles=["champion", "power_user"])
    ContactFactory(account=northwind, name="Marcus Lee", title="CFO", roles=["economic_buyer"])
    ContactFactory(
        account=northwind,
        name="Helen Ortiz",
        title="COO",
        roles=["executive_sponsor"],
        is_active=False,
        departed_at=today - dt.timedelta(days=20),
    )
    ContactFactory(account=northwind, name="Tom Becker", title="Dispatcher lead", roles=["end_user"])
    now = timezone.now()
    ActivityFactory(
        account=northwind,
        author=dana,
        type="qbr",
        sentiment="positive",
        occurred_at=now - dt.timedelta(days=12),
        summary="Q3 business review: on-time delivery up 6 pts; agreed to pilot route analytics in Nordics.",
    )
    ActivityFactory(
        account=northwind,
        author=dana,
        type="email",
        occurred_at=now - dt.timedelta(days=30),
        summary="Sent renewal timeline and the analytics add-on proposal to Marcus.",
    )
    ActivityFactory(
        account=northwind,
        author=colleague,
        type="note",
        occurred_at=now - dt.timedelta(days=41),
        summary="Helen Ortiz is leaving at month end; need a new executive sponsor.",
    )
    plan = SuccessPlanFactory(account=northwind, next_review_at=today + dt.timedelta(days=30))
    ObjectiveFactory(
        plan=plan,
        title="Cut late deliveries",
        customer_measure="Late deliveries per week",
        baseline="140",
        target="60",
        status="on_track",
        progress=55,
        due_date=today + dt.timedelta(days=90),
    )
    ObjectiveFactory(
        plan=plan,
        title="Roll out to Nordic depots",
        customer_measure="Depots live",
        baseline="0",
        target="12",
        status="at_risk",
        progress=25,
        due_date=today + dt.timedelta(days=60),
    )
    refresh_current_arr(org)
    return {"user": dana, "accounts": accounts, "northwind": northwind}


@pytest.fixture
def browser_page(live_server, monkeypatch):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (make test installs Debian's chromium when it can)")
    # Playwright's sync API runs an event loop in this thread; Django's ORM calls from the test are still sync.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1440, "height": 900})
        page = context.new_page()
        page.set_default_timeout(10_000)
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        try:
            yield page, requests
        finally:
            context.close()
            browser.close()
            _wait_for_request_threads()
            # ORM calls made while Playwright's loop ran opened a connection of their own (greenlets carry
            # their own context); close it here, or the test database cannot be dropped at the end.
            connections.close_all()


def _wait_for_request_threads(timeout: float = 5.0) -> None:
    """Let the live server's request threads finish, so their database connections are closed before the
    test database is dropped (keep-alive sockets end only when the browser goes away)."""
    for thread in threading.enumerate():
        if "process_request_thread" in thread.name:
            thread.join(timeout)


def test_sign_in_my_book_account_360_and_log_activity_inline(org, book, live_server, browser_page):
    page, requests = browser_page
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    northwind = book["northwind"]
    northwind.refresh_from_db()
    assert northwind.arr == Decimal("180000") + Decimal("30600") + Decimal("18000")

    # Sign in through the form; land on My book.
    page.goto(live_server.url + "/")
    assert "/login/" in page.url
    page.get_by_label("Email or username").fill("dana@acme.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/o/{org.slug}/")
    table = page.get_by_test_id("accounts-table")
    row = table.get_by_role("row").filter(has_text="Northwind Logistics")
    assert "$228,600" in row.inner_text()
    assert "Someone Else's Co" not in table.inner_text()  # My book: owner = me
    assert "7 live accounts" in page.get_by_test_id("summary").inner_text()  # the set it counts, said

    # Keyboard: "/" focuses the search box.
    page.locator("body").click(position={"x": 700, "y": 880})
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.name") == "q"
    page.keyboard.press("Escape")
    page.screenshot(path=str(SCREENSHOTS / "my_book.png"), full_page=True)
    page.get_by_role("link", name="All accounts").click()
    page.wait_for_url("**scope=all**")
    assert "Someone Else's Co" in page.get_by_test_id("accounts-table").inner_text()
    page.screenshot(path=str(SCREENSHOTS / "all_accounts.png"), full_page=True)
    page.get_by_role("link", name="Mine").click()

    # Sort by ARR (biggest first), then open Account 360 from the list.
    page.get_by_role("link", name="ARR").click()
    page.wait_for_url("**ordering=-arr**")
    first_row = page.get_by_test_id("accounts-table").locator("tbody tr").first
    assert "Granite Insurance" in first_row.inner_text()
    page.get_by_role("link", name="Northwind Logistics").click()
    page.wait_for_url(f"**/o/{org.slug}/accounts/{northwind.pk}/")
    assert page.get_by_test_id("account-arr").inner_text() == "$228,600"
    assert page.evaluate("typeof window.htmx") == "object"

    # Log an activity inline: htmx swaps the timeline, the page does not reload.
    page.evaluate("window.__noReload = true")
    timeline = page.locator("#timeline")
    assert timeline.get_by_test_id("activity").count() == 3
    page.get_by_label("Type").select_option("call")
    page.get_by_label("Sentiment").select_option("neutral")
    page.get_by_label("Summary").fill("Called Priya about the Nordic rollout; depot list by Friday.")
    page.get_by_label("Priya Raman").check()
    with page.expect_response(lambda r: r.url.endswith("/activities/") and r.request.method == "POST") as posted:
        page.get_by_role("button", name="Log activity").click()
    assert posted.value.status == 200
    newest = page.locator("#timeline").get_by_test_id("activity").first
    sync_api.expect(newest).to_contain_text("Called Priya about the Nordic rollout")
    sync_api.expect(page.locator("#timeline").get_by_test_id("activity")).to_have_count(4)
    assert page.evaluate("window.__noReload") is True
    assert "With Priya Raman" in newest.inner_text()
    assert page.get_by_label("Summary").input_value() == ""  # a fresh form for the next entry
    from accounts.models import Activity

    logged = Activity.all_orgs.get(summary__startswith="Called Priya")
    assert (logged.account_id, logged.author_id) == (northwind.pk, book["user"].pk)
    page.screenshot(path=str(SCREENSHOTS / "account_360.png"), full_page=True)

    # Every asset came from the app itself: CSS, htmx, JS, icon. No CDN, no external call.
    assert requests, "no request recorded"
    outside = [url for url in requests if not url.startswith(live_server.url)]
    assert outside == []
    assert any(url.endswith("/static/css/retain.css") for url in requests)
    assert any("/static/django_htmx/htmx-2" in url for url in requests)


def test_admin_creates_api_key_and_watches_a_job_run_finish(org, alice, live_server, browser_page):
    from accounts.models import ApiKey, JobRun

    page, requests = browser_page
    alice.set_password(PASSWORD)
    alice.save()
    run = JobRun.all_orgs.create(
        organization=org,
        kind="import_accounts",
        status="running",
        started_at=timezone.now(),
        progress_total=2000,
        progress_done=700,
        params={"file": "accounts.csv"},
    )
    page.goto(live_server.url + "/login/")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "login.png"))
    page.get_by_label("Email or username").fill(alice.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**/o/{org.slug}/")
    page.get_by_role("link", name="Portfolio").click()
    sync_api.expect(page.get_by_test_id("arr-at-risk")).to_contain_text("ARR at risk")
    page.screenshot(path=str(SCREENSHOTS / "portfolio.png"))
    page.get_by_role("link", name="Admin").click()
    sync_api.expect(page.get_by_test_id("members")).to_contain_text(alice.email)
    page.screenshot(path=str(SCREENSHOTS / "admin_members.png"), full_page=True)
    page.get_by_role("link", name="API keys").click()
    page.get_by_label("Name").fill("CRM sync")
    page.get_by_label("Role").select_option("csm")
    page.get_by_role("button", name="Create key").click()
    raw = page.locator("#raw-key").inner_text()
    assert ApiKey.authenticate(raw).name == "CRM sync"
    page.screenshot(path=str(SCREENSHOTS / "admin_api_keys.png"), full_page=True)

    # The job run page polls while the run is live and stops once it is finished.
    page.goto(f"{live_server.url}/o/{org.slug}/admin/jobs/{run.pk}/")
    sync_api.expect(page.locator("#job-status")).to_have_attribute("data-status", "running")
    JobRun.all_orgs.filter(pk=run.pk).update(
        status="succeeded", progress_done=2000, finished_at=timezone.now(), counts={"created": 1990, "updated": 10}
    )
    sync_api.expect(page.locator("#job-status")).to_have_attribute("data-status", "succeeded", timeout=8_000)
    assert "1990" in page.locator("#job-status").inner_text()
    assert page.locator("#job-status[hx-trigger]").count() == 0
    page.screenshot(path=str(SCREENSHOTS / "admin_job_run.png"), full_page=True)
    assert [url for url in requests if not url.startswith(live_server.url)] == []
