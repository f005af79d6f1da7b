"""Content-Security-Policy (issue #10 §6): the header is on every page, allows nothing inline, and no
template needs 'unsafe-inline' — no style="" attribute, no <style> element, no inline <script> body, no
on*="" handler, no javascript: URL. Runtime violations are caught over every screen in Chromium
(tests/test_browser_screens.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from tests.factories import AccountFactory

TEMPLATE_DIRS = [Path(settings.BASE_DIR) / "templates"] + [
    Path(settings.BASE_DIR) / app / "templates"
    for app in ("accounts", "health", "renewals", "playbooks", "feedback", "value")
]
# Python modules that write markup (inline SVG charts, template tags): same rules for their strings.
MARKUP_MODULES = ["health/charts.py", "renewals/charts.py", "accounts/templatetags", "renewals/templatetags"]

COMMENTS = re.compile(r"{%\s*comment\s*%}.*?{%\s*endcomment\s*%}|{#.*?#}|<!--.*?-->", re.S)
INLINE = {
    "style attribute": re.compile(r"""<[^>]*\sstyle\s*=\s*["']""", re.I),
    "<style> element": re.compile(r"<style[\s>]", re.I),
    "event handler attribute": re.compile(r"""<[^>]*\son[a-z]+\s*=\s*["']""", re.I),
    "javascript: URL": re.compile(r"""=\s*["']\s*javascript:""", re.I),
}
SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script>", re.I | re.S)


def inline_uses(text: str) -> list[str]:
    """What in ``text`` would need 'unsafe-inline' (or 'unsafe-hashes') under the policy."""
    text = COMMENTS.sub("", text)
    found = [f"{name}: {m.group(0)[:80]!r}" for name, pattern in INLINE.items() for m in pattern.finditer(text)]
    for attrs, body in SCRIPT.findall(text):
        executable = "src=" not in attrs and not re.search(r"type\s*=\s*[\"']application/(ld\+)?json", attrs)
        if executable or body.strip() and "src=" in attrs:
            found.append(f"inline <script>: {body.strip()[:80]!r}")
    return found


def template_files() -> list[Path]:
    return sorted(p for d in TEMPLATE_DIRS if d.exists() for p in d.rglob("*.html"))


def test_the_scanner_catches_each_kind_of_inline_code():
    assert inline_uses('<div style="width: 3px">') and inline_uses("<style>a{}</style>")
    assert inline_uses("<script>alert(1)</script>") and inline_uses('<form onsubmit="return x()">')
    assert inline_uses('<a href="javascript:void(0)">')
    assert not inline_uses('<script src="/static/js/retain.js" defer></script>')
    assert not inline_uses('<script type="application/json" id="x">{"a": 1}</script>')
    assert not inline_uses('{# style="x" #}{% comment %}<style>{% endcomment %}<svg><rect fill="red"/></svg>')


def test_no_template_needs_unsafe_inline():
    files = template_files()
    assert len(files) > 30  # the scan covers the project's templates, not an empty directory
    offenders = {str(p.relative_to(settings.BASE_DIR)): inline_uses(p.read_text()) for p in files}
    offenders = {k: v for k, v in offenders.items() if v}
    assert offenders == {}


def test_no_markup_written_in_python_needs_unsafe_inline():
    base = Path(settings.BASE_DIR)
    paths = [p for m in MARKUP_MODULES for p in ([base / m] if m.endswith(".py") else (base / m).glob("*.py"))]
    assert paths
    offenders = {str(p): inline_uses(p.read_text()) for p in paths if p.exists()}
    assert {k: v for k, v in offenders.items() if v} == {}


def _policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in header.split(";") if part.strip()}


def test_the_policy_allows_nothing_inline_and_no_other_host():
    policy = settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]
    for directive in ("default-src", "script-src", "style-src", "connect-src", "font-src", "img-src"):
        sources = policy.get(directive, policy["default-src"])
        assert "'unsafe-inline'" not in sources and "'unsafe-eval'" not in sources
        assert all(s in ("'self'", "data:", "'none'") for s in sources), (directive, sources)
    assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]


@pytest.mark.django_db
def test_the_header_is_on_every_kind_of_page(client, org, alice, make_member):
    account = AccountFactory(organization=org, owner=alice)
    anonymous = [reverse("login"), "/api/docs/", "/no-such-page/"]
    for url in anonymous:
        response = client.get(url)
        assert "'unsafe-inline'" not in response["Content-Security-Policy"], url
        assert _policy(response)["script-src"] == ["'self'"], url
    client.force_login(alice)
    pages = [
        reverse("my-book", args=[org.slug]),
        reverse("account-detail", args=[org.slug, account.pk]),
        reverse("portfolio", args=[org.slug]),
        reverse("renewals", args=[org.slug]),
        reverse("admin-members", args=[org.slug]),
        reverse("admin-api-keys", args=[org.slug]),
        "/api/v1/",
        "/api/docs/?script=",  # Swagger UI's init script, served as a file
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        assert _policy(response)["style-src"] == ["'self'"], url
    viewer = make_member(org, "viewer").user
    client.force_login(viewer)
    forbidden = client.get(reverse("admin-members", args=[org.slug]))
    assert forbidden.status_code == 403 and "Content-Security-Policy" in forbidden


@pytest.mark.django_db
def test_rendered_pages_carry_no_inline_code(client, org, alice):
    """The templates are clean, and so is what views and template tags put into them."""
    account = AccountFactory(organization=org, owner=alice)
    from integrations.services import create_connection

    sync = create_connection(org, kind="hubspot", name="HubSpot", credentials={"access_token": "t"}).syncs.get(
        object_name="companies"
    )
    client.force_login(alice)
    for url in (
        reverse("admin-connectors", args=[org.slug]),
        reverse("admin-connector-sync", args=[org.slug, sync.pk]),
        reverse("admin-email-capture", args=[org.slug]),
        reverse("my-book", args=[org.slug]),
        reverse("account-detail", args=[org.slug, account.pk]),
        reverse("portfolio", args=[org.slug]),
        reverse("renewals", args=[org.slug]),
        reverse("admin-api-keys", args=[org.slug]),
        reverse("admin-playbook-new", args=[org.slug]),
        "/api/docs/",
        "/api/v1/accounts/",
    ):
        html = client.get(url, HTTP_ACCEPT="text/html").content.decode()
        assert inline_uses(html) == [], url
