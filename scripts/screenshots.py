"""Screenshots of the main screens over the seeded demo, at desktop (1440x900) and phone (390x844) widths.

    .venv/bin/python scripts/screenshots.py [--org demo] [--accounts 300] [--out docs/screenshots]

Uses the database the settings point at (DATABASE_URL, else the demo's SQLite file in RETAIN_VAR_DIR or
var/), migrates it, seeds the demo organization if it is missing (``seed_demo``, fixed random seed), serves
the app on a local port in this process and drives Debian's /usr/bin/chromium (never a downloaded browser):

- My book of the demo CSM with the most red accounts;
- Account 360 of that CSM's largest red account;
- Portfolio and Renewals, as the demo leader;
- with ``--integrations``: Admin → Connectors and the HubSpot companies sync page (history, a record that
  could not be applied), as the demo admin, after a real sync from the test suite's local HubSpot
  (``tests/fake_hubspot.py``; loopback is allowed to this process only, for that).

Each PNG is the top of the page, at most ``--max-height`` CSS pixels tall. The files are overwritten.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cs_platform.settings")

CHROMIUM = "/usr/bin/chromium"
SIZES = {"desktop": {"width": 1440, "height": 900}, "phone": {"width": 390, "height": 844}}


def serve() -> tuple[str, object]:
    """The app (with its static files) on a free local port, in a daemon thread."""
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler, get_internal_wsgi_application

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = ThreadedWSGIServer(("127.0.0.1", 0), Quiet, allow_reuse_address=True)
    server.set_app(StaticFilesHandler(get_internal_wsgi_application()))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}", server


def pick(org: object) -> dict[str, object]:
    """The demo people and the red account to show."""
    from django.db.models import Count, Q

    from accounts.models import Account, Membership

    members = Membership.all_orgs.filter(organization=org).select_related("user")
    csm = (
        members.filter(role="csm")
        .annotate(red=Count("user__owned_accounts", filter=Q(user__owned_accounts__health__color="red")))
        .order_by("-red", "pk")
        .first()
    )
    leader = members.filter(role="leader").order_by("pk").first() or members.filter(role="admin").first()
    red = (
        Account.all_orgs.filter(organization=org, owner=csm.user, health__color="red", churned_at__isnull=True)
        .order_by("-arr", "pk")
        .first()
    )
    return {"csm": csm.user, "leader": leader.user, "red": red}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--org", default="demo", help="demo organization slug (default: demo)")
    parser.add_argument("--accounts", type=int, default=300, help="accounts to seed when the demo is missing")
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"), help="where the PNGs go")
    parser.add_argument("--max-height", type=int, default=3200, help="tallest capture, CSS pixels")
    parser.add_argument("--integrations", action="store_true", help="also the Connectors pages (docs/integrations.md)")
    args = parser.parse_args()
    if args.integrations:
        os.environ["OUTBOUND_ALLOWED_NETWORKS"] = "127.0.0.0/8"  # the local HubSpot, in this process only

    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop here
    import django

    django.setup()
    from django.core.management import call_command

    from accounts.demo import DEMO_PASSWORD, seed_demo
    from accounts.models import Organization

    call_command("migrate", verbosity=0)
    org = Organization.objects.filter(slug=args.org).first()
    if org is None:
        print(f"seeding the demo organization {args.org!r} ({args.accounts} accounts)…")
        org = seed_demo(slug=args.org, accounts=args.accounts, seed=42, log=print).organization
    who = pick(org)
    if who["red"] is None:
        print("the demo has no red account owned by a CSM: nothing to show for Account 360", file=sys.stderr)
        return 1
    shots = [
        ("my_book", who["csm"], f"/o/{org.slug}/?scope=mine"),
        ("account_360_red", who["csm"], f"/o/{org.slug}/accounts/{who['red'].pk}/"),
        ("portfolio", who["leader"], f"/o/{org.slug}/portfolio/"),
        ("renewals", who["leader"], f"/o/{org.slug}/renewals/"),
    ]
    hubspot = None
    if args.integrations:
        hubspot, sync_id = connect_local_hubspot(org)
        admin = demo_admin(org)
        shots += [
            ("connectors", admin, f"/o/{org.slug}/admin/integrations/connectors/"),
            ("connector_sync", admin, f"/o/{org.slug}/admin/integrations/connectors/syncs/{sync_id}/"),
        ]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    base, server = serve()

    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        for size, viewport in SIZES.items():
            sessions: dict[int, object] = {}
            for name, user, path in shots:
                if user.pk not in sessions:
                    context = browser.new_context(viewport=viewport, device_scale_factor=1)
                    page = context.new_page()
                    page.goto(base + "/login/")
                    page.get_by_label("Email or username").fill(user.email)
                    page.get_by_label("Password").fill(DEMO_PASSWORD)
                    page.get_by_role("button", name="Sign in").click()
                    page.wait_for_url(f"**/o/{org.slug}/**")
                    sessions[user.pk] = page
                page = sessions[user.pk]
                page.goto(base + path)
                page.wait_for_load_state("networkidle")
                height = min(page.evaluate("document.documentElement.scrollHeight"), args.max_height)
                target = out / f"{name}_{size}.png"
                page.screenshot(
                    path=str(target),
                    full_page=True,
                    clip={"x": 0, "y": 0, "width": viewport["width"], "height": height},
                )
                print(f"wrote {target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}")
        browser.close()
    server.shutdown()
    if hubspot is not None:
        hubspot.__exit__(None, None, None)
    return 0


def demo_admin(org: object) -> object:
    """The demo organization's first admin (Admin pages)."""
    from accounts.models import Membership

    return Membership.all_orgs.filter(organization=org, role="admin").order_by("pk").first().user


def connect_local_hubspot(org: object) -> tuple[object, int]:
    """A HubSpot connection of the demo to the test suite's local HubSpot (40 companies, one malformed),
    tested and synced once, so the pages show a connection, a history and a record error."""
    from integrations.models import Connection
    from integrations.services import create_connection, start_run, test_connection
    from integrations.sync import execute_run
    from tests.fake_hubspot import TOKEN, FakeHubSpot

    hubspot = FakeHubSpot().__enter__()
    for i in range(1, 41):
        hubspot.add_company(str(9000 + i), name=f"Northwind {i}", industry="Software")
    hubspot.add_company("9999", name="Bad employees", numberofemployees="lots")
    Connection.all_orgs.filter(organization=org, kind="hubspot").delete()
    connection = create_connection(org, kind="hubspot", name="HubSpot", base_url=hubspot.url,
                                   credentials={"access_token": TOKEN})  # fmt: skip
    test_connection(connection)
    sync = connection.syncs.get(object_name="companies")
    execute_run(start_run(sync, mode="dry_run").pk)
    execute_run(start_run(sync, mode="sync").pk)
    return hubspot, sync.pk


if __name__ == "__main__":
    sys.exit(main())
