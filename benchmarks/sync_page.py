"""``python -m benchmarks.sync_page [--accounts N] [--pages P]``: one connector page's apply, timed.

Applies pages of 100 HubSpot records through ``integrations.sync.apply_records`` (map, ``target.current``,
the import kind's check/finish/write), each page in a transaction that is rolled back, in an organization
that already holds ``--accounts`` accounts with a hierarchy (every account but the tens names
``i // 10`` as parent, as in ``benchmarks.integrations``): what a page costs in the middle of a large
initial sync. Companies: new accounts naming existing parents; contacts: new contacts of existing
accounts. Prints, per object, the median wall time and Python CPU time per page and the queries per page
(``CaptureQueriesContext``, BEGIN/SAVEPOINT/COMMIT included). The fake HubSpot runs in this process (the
fetch is not timed). Throwaway database ``<name>_sync_page_bench`` (created, migrated, dropped).

To compare with another checkout, run this file with that checkout as the working directory (the code
measured is imported from the current directory).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time


def measure(accounts: int, pages: int) -> None:
    from django.conf import settings
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from accounts.import_kinds import AccountKind
    from accounts.models import Organization
    from cs_platform.imports.engine import import_rows
    from integrations import services
    from integrations.mapping import effective_mapping
    from integrations.models import ObjectSync
    from integrations.sync import apply_records, build_connector
    from integrations.targets import get_target
    from tests.fake_hubspot import TOKEN, FakeHubSpot

    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    fake = FakeHubSpot()
    for i in range(accounts + 1, accounts + 100 * pages + 1):
        fake.add_company(f"{i:06d}", hs_parent_company_id=f"{i // 10:06d}", industry="Software", country="France")
    for i in range(1, 100 * pages + 1):
        fake.add_contact(f"{i:07d}", company=f"{i % accounts + 1:06d}", jobtitle="Buyer")
    org = Organization.objects.create(name="Sync page bench", slug=f"sync-page-{os.getpid()}")
    header = list(AccountKind.columns)
    rows = []
    for i in range(1, accounts + 1):
        cells = dict.fromkeys(header, "")
        cells.update(external_id=f"{i:06d}", name=f"Company {i}")
        cells["parent_external_id"] = f"{i // 10:06d}" if i > 10 and i % 10 else ""
        rows.append((i + 1, [cells[c] for c in header]))
    started = time.monotonic()
    assert import_rows(org, "accounts", header, rows, run_hooks=False).created == accounts
    print(f"{accounts:,} accounts loaded in {time.monotonic() - started:.1f} s", flush=True)
    with fake:
        conn = services.create_connection(
            org, kind="hubspot", name="HubSpot", base_url=fake.url, credentials={"access_token": TOKEN}
        )
        connector = build_connector(conn, sleep=lambda s: None)
        for name in ("companies", "contacts"):
            sync = ObjectSync.objects.for_org(org).get(connection=conn, object_name=name)
            run = services.start_run(sync)
            run.refresh_from_db()
            spec = connector.object(name)
            mapping = effective_mapping(sync.mapping, spec.default_mapping)
            target = get_target(spec.target)
            cursor: dict = {}
            fetched = []
            for _ in range(pages):
                page = connector.fetch_page(spec, cursor, mapping)
                fetched.append(page)
                cursor = page.next_cursor or {}
            wall, cpu, queries = [], [], []
            for page in fetched * 2:
                with CaptureQueriesContext(connection) as captured:
                    t, c = time.perf_counter(), time.process_time()
                    with transaction.atomic():
                        apply_records(run, spec, target, mapping, page.records, connector=connector)
                        transaction.set_rollback(True)
                    wall.append((time.perf_counter() - t) * 1000)
                    cpu.append((time.process_time() - c) * 1000)
                queries.append(len(captured.captured_queries))
            assert run.failed == 0 and run.created == 200 * pages, (run.created, run.failed)
            print(
                f"{name}: page of 100 applied in {statistics.median(wall):.1f} ms wall (median of {len(wall)}, "
                f"min {min(wall):.1f}), {statistics.median(cpu):.1f} ms Python CPU; queries per page "
                f"{min(queries)}–{max(queries)}",
                flush=True,
            )
        connector.http.close()
    print(f"load average: {os.getloadavg()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sync_page", description=__doc__)
    parser.add_argument("--accounts", type=int, default=50_000)
    parser.add_argument("--pages", type=int, default=10)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    sys.path.insert(0, os.getcwd())
    from benchmarks.pg import bench_database

    db = bench_database("sync_page", "benchmarks.sync_page")
    db.create(fresh=True)
    db.use()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cs_platform.settings")
    import django

    django.setup()
    from django.core.management import call_command

    try:
        call_command("migrate", verbosity=0)
        measure(args.accounts, args.pages)
    finally:
        db.drop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
