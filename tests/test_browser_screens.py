"""Every screen, as every role, at 1440x900 and at 390x844, in real headless Chromium (issues #10 §3, §6 and
#19 §4, acceptance):

- no Content-Security-Policy violation (the policy has no 'unsafe-inline'): nothing inline was left behind;
- no request leaves the server (no CDN, no web font, no analytics);
- axe-core (vendored, tests/vendor/axe-core) finds no serious or critical violation;
- at phone width the page never scrolls sideways, nothing covers the title, and the menu opens and navigates.

One seeded organization and one Chromium serve the whole module (tests/browser.py); each role's walk at each
size is done once and shared by the assertions below.
"""

from __future__ import annotations

import pytest

from tests.browser import DESKTOP, PHONE, ROLES_ALL, Visit, harness, report, signed_in, walk  # noqa: F401

pytestmark = [pytest.mark.browser]

SIZES = ("desktop", "phone")


@pytest.fixture(scope="module")
def walks(harness):  # noqa: F811 (the imported fixture)
    """Lazily walked (role, size) → visits, shared by every test of the module."""
    done: dict[tuple[str, str], list[Visit]] = {}

    def get(role: str, size: str) -> list[Visit]:
        if (role, size) not in done:
            done[(role, size)] = walk(harness, role, size)
        return done[(role, size)]

    return get


@pytest.mark.parametrize("role", ROLES_ALL)
def test_every_screen_answers_as_expected(walks, role):
    visits = walks(role, "desktop")
    expected = {"not found": 404, "forbidden (403)": 403}
    wrong = [f"{v.label}: {v.status}" for v in visits if v.status != expected.get(v.screen, 200)]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("role", ROLES_ALL)
@pytest.mark.parametrize("size", SIZES)
def test_no_csp_violation_on_any_screen(walks, role, size):
    visits = walks(role, size)
    assert not any(v.csp for v in visits), "CSP violations:\n" + report(visits, "csp")


@pytest.mark.parametrize("role", ROLES_ALL)
@pytest.mark.parametrize("size", SIZES)
def test_no_screen_requests_another_host(walks, role, size):
    visits = walks(role, size)
    assert not any(v.external for v in visits), "requests to another host:\n" + report(visits, "external")


@pytest.mark.parametrize("role", ROLES_ALL)
@pytest.mark.parametrize("size", SIZES)
def test_axe_finds_no_serious_or_critical_violation(walks, role, size):
    visits = walks(role, size)
    for v in visits:
        v.serious = [a for a in v.axe if a["impact"] in ("serious", "critical")]
    assert not any(v.serious for v in visits), "axe-core:\n" + report(visits, "serious")


@pytest.mark.parametrize("role", ROLES_ALL)
def test_phone_layout_no_sideways_scroll_and_title_uncovered(walks, role):
    visits = walks(role, "phone")
    overflow = [f"{v.label}: {v.layout['scrollWidth']} px wide, {v.layout['wide']}" for v in visits
                if v.layout["scrollWidth"] > v.layout["innerWidth"]]  # fmt: skip
    covered = [f"{v.label}: {v.layout['title']!r} covered at {v.layout['covered']}" for v in visits
               if v.layout["covered"]]  # fmt: skip
    untitled = [v.label for v in visits if not v.layout["title"]]
    unreachable = [f"{v.label}: {v.layout['unreachable']}" for v in visits if v.layout["unreachable"]]
    assert any(v.layout["scrollers"] for v in visits)  # some table does scroll at phone width: the check ran
    assert not unreachable, "scrolling tables the keyboard cannot reach:\n" + "\n".join(unreachable)
    assert not overflow, "wider than the phone:\n" + "\n".join(overflow)
    assert not covered, "title covered:\n" + "\n".join(covered)
    assert not untitled, "no title:\n" + "\n".join(untitled)


def test_phone_menu_opens_by_keyboard_and_navigates(harness):  # noqa: F811
    sync_api = harness["sync_api"]
    expect = sync_api.expect
    page = signed_in(harness, "csm", PHONE)
    try:
        slug = harness["seeded"].org.slug
        button = page.get_by_role("button", name="Menu")
        nav = page.get_by_role("navigation", name="Main")
        expect(button).to_be_visible()
        expect(button).to_have_attribute("aria-expanded", "false")
        expect(nav).to_be_hidden()
        # Keyboard: the skip link first, then the brand, then the menu button.
        page.keyboard.press("Tab")
        page.keyboard.press("Tab")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.hasAttribute('data-menu-button')")
        page.keyboard.press("Enter")
        expect(button).to_have_attribute("aria-expanded", "true")
        expect(nav).to_be_visible()
        # Escape closes it and gives focus back to the button.
        page.keyboard.press("Escape")
        expect(nav).to_be_hidden()
        assert page.evaluate("document.activeElement.hasAttribute('data-menu-button')")
        # Open again and go to Portfolio.
        button.click()
        nav.get_by_role("link", name="Portfolio").click()
        page.wait_for_url(f"**/o/{slug}/portfolio/")
        expect(page.get_by_role("heading", level=1)).to_have_text("Portfolio")
        expect(page.get_by_role("button", name="Menu")).to_have_attribute("aria-expanded", "false")
    finally:
        page.context.close()


def test_desktop_shows_the_navigation_without_a_menu_button(harness):  # noqa: F811
    expect = harness["sync_api"].expect
    page = signed_in(harness, "csm", DESKTOP)
    try:
        expect(page.get_by_role("button", name="Menu")).to_be_hidden()
        nav = page.get_by_role("navigation", name="Main")
        expect(nav).to_be_visible()
        # Placeholders stay out of the navigation until they are built. The work queue (issue 12) and the
        # Voice of the customer (issue 13) are built.
        assert "Work queue" in nav.inner_text() and "Voice of the customer" in nav.inner_text()
    finally:
        page.context.close()


def test_api_docs_and_browsable_api_run_under_the_csp(harness):  # noqa: F811
    """Swagger UI (served locally by drf-spectacular-sidecar) and DRF's browsable API, signed in as an admin:
    no CSP violation, no request to another host, and the docs actually render the operations."""
    from tests.browser import CSP_LISTENER  # noqa: F401  (installed by signed_in)

    expect = harness["sync_api"].expect
    page = signed_in(harness, "admin", DESKTOP)
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    found = {}
    try:
        for path in ("/api/docs/", "/api/v1/", "/api/v1/accounts/", "/api/redoc/"):
            response = page.goto(harness["url"] + path)
            page.wait_for_load_state("networkidle")
            assert response.status == 200, path
            if path in ("/api/docs/", "/api/redoc/"):
                # The operations are drawn by Swagger UI's scripts: they ran. /api/redoc/ leads here.
                assert page.url.endswith("/api/docs/")
                expect(page.locator(".opblock").first).to_be_visible()
            else:
                expect(page.locator(".response-info")).to_be_visible()
            found[path] = page.evaluate("window.__cspViolations || []")
    finally:
        page.context.close()
    assert not any(found.values()), found
    assert [u for u in requests if not u.startswith(harness["url"]) and not u.startswith("data:")] == []
