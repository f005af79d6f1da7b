"""Forms and focus in real headless Chromium (issue #19 §5): after a validation error focus and view are on the
first error at its field; after a save, on the confirmation; anchors clear the sticky header; focus rings of
segmented toggles are not clipped; sorting, filtering and logging an activity never drop focus to <body>."""

from __future__ import annotations

import pytest

from tests.browser import DESKTOP, PHONE, harness, signed_in  # noqa: F401  (fixture)

pytestmark = [pytest.mark.browser]

IN_VIEW_UNCOVERED = """
el => {
  const r = el.getBoundingClientRect();
  const x = r.left + Math.min(r.width / 2, 40), y = r.top + Math.min(r.height / 2, 8);
  const hit = document.elementFromPoint(x, y);
  return {top: r.top, bottom: r.bottom, height: window.innerHeight,
          visible: r.top >= 0 && r.bottom <= window.innerHeight, uncovered: !!hit && (hit === el || el.contains(hit))};
}
"""


def active(page) -> dict:
    return page.evaluate(
        "() => { const a = document.activeElement; return {tag: a.tagName, id: a.id, name: a.name || '',"
        " text: (a.textContent || '').trim().slice(0, 40), testid: a.getAttribute('data-testid') || ''}; }"
    )


def test_override_form_error_then_save_focus(harness):  # noqa: F811
    seeded = harness["seeded"]
    page = signed_in(harness, "admin", DESKTOP)
    try:
        page.goto(f"{harness['url']}/o/{seeded.org.slug}/accounts/{seeded.red_account}/")
        page.get_by_text("Override colour").click()
        form = page.get_by_test_id("override-form")
        colour = form.get_by_label("Colour")
        assert colour.input_value() == ""  # no default: the user chooses
        form.get_by_label("Reason").select_option("other")
        form.get_by_role("button", name="Save override").click()  # no colour, no "why"
        page.wait_for_load_state("load")
        # Focus and view on the first error, at its field (the colour), clear of the sticky header.
        assert active(page)["name"] == "color"
        where = page.get_by_test_id("override-form").get_by_label("Colour").evaluate(IN_VIEW_UNCOVERED)
        assert where["visible"] and where["uncovered"], where

        form = page.get_by_test_id("override-form")
        form.get_by_label("Colour").select_option("yellow")
        form.get_by_label("Reason").select_option("other")
        form.get_by_label("Why").fill("Exec sponsor re-engaged last week")
        form.get_by_role("button", name="Save override").click()
        page.wait_for_load_state("load")
        flash = page.locator("#flash")
        assert "Health overridden to yellow" in flash.inner_text()
        assert active(page)["id"] == "flash", (active(page), page.url)
        where = flash.evaluate(IN_VIEW_UNCOVERED)
        assert where["visible"] and where["uncovered"], where
    finally:
        page.context.close()


def test_anchor_lands_below_the_sticky_header(harness):  # noqa: F811
    seeded = harness["seeded"]
    page = signed_in(harness, "csm", DESKTOP)
    try:
        page.goto(f"{harness['url']}/o/{seeded.org.slug}/accounts/{seeded.red_account}/#renewals")
        header_bottom = page.locator(".topbar").evaluate("el => el.getBoundingClientRect().bottom")
        title = page.locator("#h-renewals")
        top = title.evaluate("el => el.getBoundingClientRect().top")
        assert page.evaluate("window.scrollY") > 0  # it did scroll to the anchor
        assert top >= header_bottom, (top, header_bottom)
        assert title.evaluate(IN_VIEW_UNCOVERED)["uncovered"]
    finally:
        page.context.close()


def test_sorting_and_filtering_keep_focus_on_the_control(harness):  # noqa: F811
    seeded = harness["seeded"]
    page = signed_in(harness, "leader", DESKTOP)
    try:
        page.goto(f"{harness['url']}/o/{seeded.org.slug}/?scope=all")
        table = page.get_by_test_id("accounts-table")
        table.get_by_role("link", name="ARR").focus()
        page.keyboard.press("Enter")
        page.wait_for_url("**ordering=*arr**")
        now = active(page)
        assert now["tag"] == "A" and now["text"].startswith("ARR"), now

        page.get_by_label("Touch").select_option("high")
        page.get_by_role("button", name="Apply").click()
        page.wait_for_url("**touch_model=high**")
        now = active(page)
        assert now["tag"] == "BUTTON" and now["text"] == "Apply", now

        # The Mine / All toggle: focus stays on it, and its ring is not clipped by the group.
        page.get_by_role("group", name="Whose accounts").get_by_role("link", name="Mine").focus()
        page.keyboard.press("Enter")
        page.wait_for_url("**scope=mine**")
        now = active(page)
        assert now["text"] == "Mine", now
        toggle = page.get_by_role("group", name="Whose accounts")
        assert toggle.evaluate("el => getComputedStyle(el).overflow") == "visible"
        ring = page.evaluate("getComputedStyle(document.activeElement).boxShadow")
        assert ring and ring != "none"
    finally:
        page.context.close()


def test_logging_an_activity_keeps_focus_off_body(harness):  # noqa: F811
    seeded = harness["seeded"]
    page = signed_in(harness, "csm", PHONE)
    try:
        page.goto(f"{harness['url']}/o/{seeded.org.slug}/accounts/{seeded.red_account}/")
        page.get_by_label("Type").select_option("call")
        page.get_by_label("Summary").fill("Called about the Nordic rollout.")
        with page.expect_response(lambda r: r.url.endswith("/activities/")):
            page.get_by_role("button", name="Log activity").click()
        harness["sync_api"].expect(page.locator("#timeline")).to_contain_text("Called about the Nordic rollout.")
        now = active(page)
        assert now["tag"] != "BODY", now
        assert now["text"] == "Logged.", now
    finally:
        page.context.close()
