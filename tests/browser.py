"""The browser harness shared by the screen-wide tests (phone layout, CSP, accessibility, requests).

One module seeds one organization (``tests/browser_seed.py``), serves it with a live server of its own and
reuses one headless Chromium for every test of the module, instead of seeding and launching per test:
pytest-django's ``live_server`` would flush the database after each test. ``walk()`` visits every screen as
a role at a viewport size and records, per screen, what the tests assert on: Content-Security-Policy
violations, requests to another host, axe-core violations and the phone-layout measurements.

Debian's ``/usr/bin/chromium`` only; never a downloaded browser.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connections
from django.test import override_settings

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}
AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
ROLES_ALL = ("admin", "leader", "csm", "viewer")

# Collected in the page before any of its own scripts run (init scripts are not subject to the page's CSP).
CSP_LISTENER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__cspViolations.push(e.violatedDirective + " " + (e.blockedURI || "inline") + " " +
    (e.sourceFile || "") + ":" + (e.lineNumber || ""));
});
"""

# The phone-layout measurements: horizontal overflow of the page, and whether anything covers the title.
LAYOUT_PROBE = """
() => {
  const doc = document.documentElement;
  const out = {scrollWidth: Math.max(doc.scrollWidth, document.body.scrollWidth), innerWidth: window.innerWidth};
  const h1 = document.querySelector("main h1") || document.querySelector("h1");
  out.title = h1 ? h1.textContent.trim().slice(0, 60) : null;
  // Scroll regions: every table scroller that scrolls at this width is a focusable, named region.
  out.unreachable = [...document.querySelectorAll("main .table-wrap, main .table-scroll")]
    .filter(el => el.scrollWidth > el.clientWidth + 1)
    .filter(el => el.tabIndex !== 0 || !(el.getAttribute("aria-label") || el.getAttribute("aria-labelledby")))
    .map(el => el.className + ": " + (el.querySelector("th") || el).textContent.trim().slice(0, 30));
  out.scrollers = [...document.querySelectorAll("main .table-wrap, main .table-scroll")]
    .filter(el => el.scrollWidth > el.clientWidth + 1).length;
  out.wide = [];
  if (out.scrollWidth > out.innerWidth) {
    // Name the culprits: elements reaching past the right edge whose parent does not.
    for (const el of document.querySelectorAll("body *")) {
      // Deepest first: an element past the edge none of whose children is (a visually-hidden span, a cell).
      const r = el.getBoundingClientRect();
      const past = c => c.getBoundingClientRect().right > window.innerWidth + 1;
      if (past(el) && ![...el.children].some(past) && out.wide.length < 5) {
        const name = el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + "." + el.className;
        out.wide.push(name + " → " + Math.round(r.right));
      }
    }
  }
  out.covered = [];
  if (h1) {
    const r = h1.getBoundingClientRect();
    const y = r.top + Math.min(r.height / 2, 10);
    const right = Math.min(r.right, window.innerWidth);
    for (const x of [r.left + 2, (r.left + right) / 2, right - 2]) {
      const hit = document.elementFromPoint(x, y);
      if (!hit || !(h1 === hit || h1.contains(hit))) {
        out.covered.push({x: Math.round(x), y: Math.round(y), by: hit ? hit.tagName + "." + hit.className : "nothing"});
      }
    }
  }
  return out;
}
"""

# axe-core: every rule it runs by default, plus the experimental label/name mismatch the issue found.
AXE_RUN = """
async () => {
  const result = await axe.run(document, {
    resultTypes: ["violations"],
    rules: {"label-content-name-mismatch": {enabled: true}},
  });
  return result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    targets: v.nodes.slice(0, 5).map(n =>
      n.target.join(" ") + " :: " + (n.failureSummary || "").split("\\n").slice(0, 2).join(" ")),
  }));
}
"""


def check_page(page: Any) -> None:
    """The page from its top: fits the width, nothing covers or hides its title, axe-core finds nothing
    serious or critical, and no Content-Security-Policy violation was reported."""
    page.evaluate("window.scrollTo(0, 0)")  # the title probe looks at the top of the page
    layout = page.evaluate(LAYOUT_PROBE)
    assert layout["scrollWidth"] <= layout["innerWidth"], layout
    assert not layout["covered"] and not layout["unreachable"], layout
    page.evaluate(AXE.read_text())  # through DevTools, not a <script>: the CSP does not apply
    serious = [v for v in page.evaluate(AXE_RUN) if v["impact"] in ("serious", "critical")]
    assert serious == [], json.dumps(serious, indent=1)
    assert page.evaluate("window.__cspViolations || []") == []


# --- The people and the sign-in of the per-feature browser tests (test_browser_*.py) ----------------------


@pytest.fixture
def admin(org: Any) -> Any:
    """The organization's admin who signs in through the form (ops@acme.example, :data:`tests.test_browser.PASSWORD`).
    A test module imports it (``from tests.browser import admin  # noqa: F401``) to use it as ``admin``."""
    from tests.test_browser import member_who_signs_in

    return member_who_signs_in(org, "admin", "ops@acme.example", "Olu", "Ops")


def sign_in(page: Any, live_server: Any, org: Any, user: Any) -> None:
    """Sign ``user`` (made by ``member_who_signs_in``) in through the login form; waits for the org's home."""
    from tests.test_browser import PASSWORD

    page.goto(live_server.url + "/login/")
    page.get_by_label("Email or username").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**/o/{org.slug}/")


@dataclass
class Screen:
    """A page to visit: its name, its path and the roles that see it (others are expected to get a 403)."""

    name: str
    path: str
    admin_only: bool = False
    #: Roles besides admin that open an ``admin_only`` screen (the playbook pages: leaders read them).
    readers: tuple[str, ...] = ()


def screens(seeded: Any) -> list[Screen]:
    """Every screen of the product, with real object ids from the seeded organization."""
    o = f"/o/{seeded.org.slug}"
    return [
        Screen("my book", f"{o}/?scope=mine"),
        Screen("all accounts", f"{o}/?scope=all"),
        Screen("account 360 (red)", f"{o}/accounts/{seeded.red_account}/"),
        Screen("portfolio", f"{o}/portfolio/"),
        Screen("time to value", f"{o}/reports/time-to-value/"),
        Screen("time to value (accounts at risk)", f"{o}/reports/time-to-value/?show=at_risk"),
        Screen("renewals", f"{o}/renewals/"),
        Screen("lifetime value", f"{o}/reports/lifetime-value/"),
        Screen("renewal (open)", f"{o}/renewals/{seeded.open_renewal}/"),
        Screen("renewal (closed)", f"{o}/renewals/{seeded.closed_renewal}/"),
        Screen("work queue", f"{o}/work/"),
        Screen("voice of the customer", f"{o}/voice/"),
        Screen("know the details", f"{o}/reports/details/?period=last_year"),
        Screen("know the details accounts", f"{o}/reports/details/revenue-pareto/top80/"),
        Screen("work queue (snoozed)", f"{o}/work/?status=snoozed"),
        Screen("notifications", f"{o}/work/notifications/"),
        Screen("not found", f"{o}/accounts/999999999/"),
        Screen("admin members", f"{o}/admin/", admin_only=True),
        Screen("admin api keys", f"{o}/admin/api-keys/", admin_only=True),
        Screen("admin write keys", f"{o}/admin/write-keys/", admin_only=True),
        Screen("admin imports", f"{o}/admin/imports/", admin_only=True),
        Screen("admin jobs", f"{o}/admin/jobs/", admin_only=True),
        Screen("admin job run", f"{o}/admin/jobs/{seeded.job_run}/", admin_only=True),
        Screen("admin segments", f"{o}/admin/segments/", admin_only=True),
        Screen("admin segment editor", f"{o}/admin/segments/new/", admin_only=True),
        Screen("admin segment", f"{o}/admin/segments/{seeded.segment}/", admin_only=True),
        Screen("admin segment draft", f"{o}/admin/segments/{seeded.segment}/versions/2/", admin_only=True),
        Screen("admin scorecards", f"{o}/admin/scorecards/", admin_only=True),
        Screen("admin scorecard editor", f"{o}/admin/scorecards/{seeded.scorecard}/", admin_only=True),
        Screen(
            "admin scorecard backtests",
            f"{o}/admin/scorecards/{seeded.scorecard}/backtests/",
            admin_only=True,
            readers=("leader",),
        ),
        Screen("admin webhooks", f"{o}/admin/webhooks/", admin_only=True),
        Screen("admin webhook", f"{o}/admin/webhooks/{seeded.webhook}/", admin_only=True),
        Screen("unsubscribe", f"/u/{seeded.unsubscribe_token}/"),
        Screen("feature requests", f"{o}/voice/requests/"),
        Screen("feature request", f"{o}/voice/requests/{seeded.feature_request}/"),
        Screen("admin integrations", f"{o}/admin/integrations/", admin_only=True),
        Screen("admin connectors", f"{o}/admin/integrations/connectors/", admin_only=True),
        Screen("email capture", f"{o}/admin/integrations/email/"),
        Screen(
            "admin connector sync", f"{o}/admin/integrations/connectors/syncs/{seeded.object_sync}/", admin_only=True
        ),
        Screen("admin cta types", f"{o}/admin/cta-types/", admin_only=True),
        Screen("admin email templates", f"{o}/admin/email-templates/", admin_only=True),
        Screen("admin surveys", f"{o}/admin/surveys/", admin_only=True),
        Screen("admin email template", f"{o}/admin/email-templates/{seeded.email_template}/", admin_only=True),
        Screen("admin playbooks", f"{o}/admin/playbooks/", admin_only=True, readers=("leader",)),
        Screen("admin playbook", f"{o}/admin/playbooks/{seeded.playbook}/", admin_only=True, readers=("leader",)),
        Screen("admin playbook preview", f"{o}/admin/playbooks/{seeded.playbook}/?preview=1", admin_only=True),
        Screen("admin new playbook", f"{o}/admin/playbooks/new/", admin_only=True),
        Screen("admin audit log", f"{o}/admin/audit/", admin_only=True),
        Screen(
            "admin playbook draft",
            f"{o}/admin/playbooks/{seeded.playbook}/versions/2/",
            admin_only=True,
            readers=("leader",),
        ),
        # Last: the screen the other roles open to see the 403 page (see screens_for).
        Screen("admin key features", f"{o}/admin/features/", admin_only=True),
    ]


def screens_for(seeded: Any, role: str) -> list[Screen]:
    """The screens a role opens: everything for an admin; for others the shared screens plus one admin
    page, which must answer the 403 page inside the navigation."""
    every = screens(seeded)
    if role == "admin":
        return every
    return [s for s in every if not s.admin_only or role in s.readers] + [Screen("forbidden (403)", every[-1].path)]


@dataclass
class Visit:
    """What one screen showed at one size as one role."""

    role: str
    size: str
    screen: str
    path: str
    status: int | None = None
    csp: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)
    axe: list[dict] = field(default_factory=list)
    layout: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.role} @ {self.size} · {self.screen} ({self.path})"


@pytest.fixture(scope="module")
def harness(django_db_setup, django_db_blocker) -> Iterator[dict]:
    """Seed once, serve it, launch Chromium once; flush the database at the end (as a transactional test
    would), so the rest of the suite starts from an empty database.

    The tests using it carry no ``django_db`` mark: its per-test transaction would hold SQLite's shared
    in-memory database locked against the live server's thread. pytest-django then creates the test database
    only if another selected test needs one, so this fixture creates it itself when it is missing."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (make test installs Debian's chromium when it can)")
    from pytest_django.live_server_helper import LiveServer

    from tests.browser_seed import seed

    # Playwright's sync API runs an event loop in this thread; the ORM calls of the tests stay synchronous.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with django_db_blocker.unblock():
        from django.core.cache import cache
        from django.db import connection
        from django.test.utils import setup_databases, teardown_databases

        own_db = None
        if not _is_test_database(connection.settings_dict["NAME"]):
            own_db = setup_databases(verbosity=0, interactive=False, aliases={"default"})

        cache.clear()
        # The suite's fast hasher (tests/conftest.py) is on while the tests log in: hash with it too.
        with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
            seeded = seed()
        server = LiveServer("localhost")
        pw = sync_api.sync_playwright().start()
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield {"seeded": seeded, "url": server.url, "browser": browser, "sync_api": sync_api}
        finally:
            browser.close()
            pw.stop()
            server.stop()
            connections.close_all()
            call_command("flush", interactive=False, verbosity=0)
            cache.clear()
            if own_db is not None:
                teardown_databases(own_db, verbosity=0)
            if previous is None:
                os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
            else:
                os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


def _is_test_database(name: str) -> bool:
    """True once Django's test runner has pointed the connection at the test database."""
    return str(name).startswith(("test_", "file:memorydb")) or str(name) == ":memory:"


def signed_in(harness: dict, role: str, viewport: dict) -> Any:
    """A fresh browser context (its own cookies) signed in as ``role`` through the login form."""
    seeded = harness["seeded"]
    context = harness["browser"].new_context(viewport=viewport)
    context.add_init_script(CSP_LISTENER)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(harness["url"] + "/login/")
    page.get_by_label("Email or username").fill(seeded.username(role))
    page.get_by_label("Password").fill(seeded_password())
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**/o/{seeded.org.slug}/**")
    return page


def seeded_password() -> str:
    from tests.browser_seed import PASSWORD

    return PASSWORD


def walk(harness: dict, role: str, size: str, *, axe: bool = True) -> list[Visit]:
    """Visit every screen of ``role`` at ``size`` ("desktop" or "phone") in one signed-in context."""
    seeded = harness["seeded"]
    viewport = DESKTOP if size == "desktop" else PHONE
    page = signed_in(harness, role, viewport)
    visits = []
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    try:
        for screen in screens_for(seeded, role):
            requests.clear()
            # "load": the deferred scripts (retain.js) have run; every asset was requested.
            response = page.goto(harness["url"] + screen.path, wait_until="load")
            v = Visit(role=role, size=size, screen=screen.name, path=screen.path)
            v.status = response.status if response else None
            v.csp = page.evaluate("window.__cspViolations || []")
            v.layout = page.evaluate(LAYOUT_PROBE)
            if axe:
                # evaluate() goes through the DevTools protocol, not a <script> element: the CSP does not apply.
                page.evaluate(AXE.read_text())
                v.axe = page.evaluate(AXE_RUN)
            v.external = [u for u in requests if not u.startswith(harness["url"]) and not u.startswith("data:")]
            visits.append(v)
    finally:
        page.context.close()
    return visits


def report(visits: list[Visit], attribute: str) -> str:
    """A readable failure message: one line per screen with what was found."""
    lines = []
    for v in visits:
        found = getattr(v, attribute)
        if found:
            lines.append(f"- {v.label}: {json.dumps(found, indent=None)[:1500]}")
    return "\n".join(lines)
