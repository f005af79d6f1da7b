"""``python -m benchmarks.health [--accounts N] [--sample S] [--rebuild] [--drop]`` — health recompute at scale.

Spec §3 / issue #4 targets: ``recompute_health`` of an organization with 50,000 accounts (90 days of
daily usage, tickets, invoices, NPS responses, contacts, activities, CSM pulses) in < 20 s on Postgres,
and ≥ 20× faster than a naive per-account ORM loop measured in the same run.

1. Uses the database ``<name>_health_bench`` next to the one in ``DATABASE_URL`` (created and migrated
   when absent). The dataset is generated inside Postgres (``INSERT … SELECT`` over ``generate_series``,
   deterministic: values derive from the account id and day) and **kept**: the next run reuses it when
   the organization already holds ``--accounts`` accounts. ``--rebuild`` regenerates it; ``--drop``
   drops the database at the end.
2. Times ``health.services.recompute_health`` over the whole organization, twice (the second run is
   the steady state of the hourly schedule: it updates today's snapshots and the latest scores).
3. Times a naive loop over ``--sample`` accounts — per account: its signals with ORM queries, scored
   in Python with the same scoring functions, one ``update_or_create`` of the snapshot — and scales it
   to all accounts. The naive scores must equal the bulk ones (a correctness cross-check).
4. Prints both, the ratio, and writes ``benchmarks/results/health.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results" / "health.json"
SLUG = "bench-health"
DAYS = 90


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.health", description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=50_000, help="accounts (default 50000)")
    parser.add_argument("--sample", type=int, default=500, help="accounts of the naive loop (default 500)")
    parser.add_argument("--rebuild", action="store_true", help="regenerate the dataset even if present")
    parser.add_argument("--drop", action="store_true", help="drop the benchmark database at the end")
    return parser.parse_args(argv)


def prepare_database() -> tuple[str, Any]:
    """Create ``<name>_health_bench`` if needed (a built dataset is reused); returns (its URL, drop function)."""
    from .pg import bench_database

    db = bench_database("health", "benchmarks.health")
    db.create()
    return db.url, db.drop


# --- dataset ---------------------------------------------------------------------------------------


def build(org: Any, accounts: int, today: date) -> dict[str, int]:
    """Generate the dataset inside Postgres; returns row counts."""
    from django.db import connection, transaction

    from accounts.models import Account
    from health.models import HealthScore, HealthSnapshot

    org_id = org.pk
    params = {"org": org_id, "n": accounts, "today": today, "first": today - timedelta(days=DAYS - 1), "days": DAYS}
    steps = [
        (
            "accounts",
            """
            INSERT INTO accounts_account (organization_id, external_id, name, domain, industry, region,
                lifecycle_stage, touch_model, tags, custom_fields, icp_fit, referenceable, arr, hierarchy_arr,
                customer_since, churned_at, created_at, updated_at)
            SELECT %(org)s, 'BENCH-' || lpad(g::text, 6, '0'), 'Bench account ' || g, '', 'Software', 'EMEA',
                CASE WHEN g %% 40 = 0 THEN 'churned' ELSE 'mature' END,
                (ARRAY['high', 'low', 'tech'])[1 + g %% 3], '[]', '{}', false, false,
                (10 + g %% 200) * 400, (10 + g %% 200) * 400,
                %(today)s::date - (200 + g %% 900), NULL, now(), now()
            FROM generate_series(1, %(n)s) g
            """,
        ),
        (
            "contracts",
            """
            INSERT INTO accounts_contract (organization_id, account_id, number, start_date, end_date, status,
                auto_renew, currency, seats, arr, created_at, updated_at)
            SELECT %(org)s, a.id, 'BENCH-C-' || a.id, %(today)s::date - 200, %(today)s::date + 165, 'active',
                false, 'USD', 10 + a.id %% 200, (10 + a.id %% 200) * 400, now(), now()
            FROM accounts_account a WHERE a.organization_id = %(org)s
            """,
        ),
        (
            "usage metrics",
            """
            INSERT INTO health_usagemetric (organization_id, account_id, date, metric, value)
            SELECT %(org)s, a.id, %(first)s::date + i, m.metric,
                CASE m.metric
                    WHEN 'active_users' THEN floor((10 + a.id %% 200) * (0.05 + (a.id * 7 %% 10) / 14.0)
                        * (0.85 + 0.3 * ((a.id + i) %% 7) / 6.0))
                    ELSE floor((10 + a.id %% 200) * 12 * (1 + ((a.id %% 5) - 2) * 0.15 * i / 90.0)
                        * (0.9 + 0.2 * ((a.id * 3 + i) %% 5) / 4.0))
                END
            FROM accounts_account a
            CROSS JOIN generate_series(0, %(days)s - 1) i
            CROSS JOIN (VALUES ('active_users'), ('events')) m(metric)
            WHERE a.organization_id = %(org)s AND a.id %% 25 <> 0
            """,
        ),
        (
            "tickets",
            """
            INSERT INTO health_ticket (organization_id, account_id, external_id, opened_at, priority, status,
                resolved_at, subject)
            SELECT %(org)s, a.id, 'BENCH-T-' || a.id || '-' || k,
                %(today)s::timestamptz - ((k * 17 + a.id) %% 170) * interval '1 day' - interval '3 hours',
                CASE WHEN (a.id + k) %% 13 = 0 THEN 'P1' ELSE 'P3' END,
                CASE WHEN k = 1 AND a.id %% 4 = 0 THEN 'open' ELSE 'solved' END,
                CASE WHEN k = 1 AND a.id %% 4 = 0 THEN NULL
                     ELSE %(today)s::timestamptz - ((k * 17 + a.id) %% 170) * interval '1 day' + interval '1 day' END,
                ''
            FROM accounts_account a CROSS JOIN LATERAL generate_series(1, a.id %% 9) k
            WHERE a.organization_id = %(org)s
            """,
        ),
        (
            "invoices",
            """
            INSERT INTO health_invoice (organization_id, account_id, external_id, due_date, amount, currency, paid_at)
            SELECT %(org)s, a.id, 'BENCH-I-' || a.id || '-' || q, %(today)s::date - q * 91 + 40, 1000, 'USD',
                CASE WHEN q = 1 AND a.id %% 7 = 0 THEN NULL ELSE %(today)s::date - q * 91 + 35 END
            FROM accounts_account a CROSS JOIN generate_series(1, 4) q
            WHERE a.organization_id = %(org)s
            """,
        ),
        (
            "nps responses",
            """
            INSERT INTO feedback_surveyresponse (organization_id, account_id, kind, score, comment, responded_at)
            SELECT %(org)s, a.id, 'nps', (a.id * 3 + k * 5) %% 11, '',
                %(today)s::timestamptz - ((a.id + k * 60) %% 170) * interval '1 day'
            FROM accounts_account a CROSS JOIN generate_series(1, 2) k
            WHERE a.organization_id = %(org)s AND a.id %% 6 <> 0
            """,
        ),
        (
            "contacts",
            """
            INSERT INTO accounts_contact (organization_id, account_id, name, email, title, roles, seniority,
                is_active, departed_at, trained, unsubscribed, created_at, updated_at)
            SELECT %(org)s, a.id, 'Contact ' || k, '', '',
                (ARRAY['["champion"]', '["executive_sponsor"]', '["end_user"]'])[k]::jsonb, '',
                NOT (k = 1 AND a.id %% 9 = 0), CASE WHEN k = 1 AND a.id %% 9 = 0 THEN %(today)s::date - 30 END,
                false, false, now(), now()
            FROM accounts_account a CROSS JOIN generate_series(1, 2 + (a.id %% 2)) k
            WHERE a.organization_id = %(org)s
            """,
        ),
        (
            "activities",
            """
            INSERT INTO accounts_activity (organization_id, account_id, type, occurred_at, summary, sentiment,
                created_at)
            SELECT %(org)s, a.id, CASE WHEN k = 5 THEN 'note' ELSE 'call' END,
                %(today)s::timestamptz - (3 + (a.id %% 50) + k * 20) * interval '1 day', '', '', now()
            FROM accounts_account a CROSS JOIN generate_series(1, 5) k
            WHERE a.organization_id = %(org)s
            """,
        ),
        (
            "csm pulses",
            """
            INSERT INTO health_csmpulse (organization_id, account_id, color, reason_codes, note, created_at)
            SELECT %(org)s, a.id, (ARRAY['green', 'yellow', 'red'])[1 + a.id %% 3], '[]', '',
                %(today)s::timestamptz - (a.id %% 45) * interval '1 day'
            FROM accounts_account a
            WHERE a.organization_id = %(org)s AND a.id %% 2 = 0
            """,
        ),
    ]
    counts: dict[str, int] = {}
    with transaction.atomic():
        HealthSnapshot.all_orgs.filter(organization_id=org_id)._raw_delete(connection.alias)
        HealthScore.all_orgs.filter(organization_id=org_id)._raw_delete(connection.alias)
        Account.all_orgs.filter(organization_id=org_id).delete()
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit = off")
            for label, sql in steps:
                started = time.perf_counter()
                cursor.execute(sql, params)
                counts[label] = cursor.rowcount
                print(f"  {label:<15} {cursor.rowcount:>10,} rows  {time.perf_counter() - started:6.1f} s", flush=True)
    with connection.cursor() as cursor:
        for table in (
            "accounts_account",
            "accounts_contract",
            "health_usagemetric",
            "health_ticket",
            "health_invoice",
            "feedback_surveyresponse",
            "accounts_contact",
            "accounts_activity",
            "health_csmpulse",
        ):
            cursor.execute(f"VACUUM ANALYZE {table}")
    return counts


# --- naive baseline --------------------------------------------------------------------------------


def naive_signals(org: Any, account: Any, as_of: date) -> dict[str, Any]:
    """One account's signals with plain ORM queries (what a per-account loop would do)."""
    from django.db.models import Max, Min, Q, Sum

    from accounts.models import Activity, Contact, Contract
    from feedback.models import SurveyResponse
    from health.models import CsmPulse, Invoice, Ticket, UsageMetric

    def day(n: int) -> date:
        return as_of - timedelta(days=n - 1)

    end = datetime.combine(as_of + timedelta(days=1), datetime.min.time()).replace(tzinfo=__import__("datetime").UTC)
    usage = UsageMetric.objects.for_org(org).filter(account=account, date__lte=as_of, date__gte=day(60))
    tracked = usage.filter(metric__in=["active_users", "events"]).exists()
    seats = (
        Contract.objects.for_org(org)
        .filter(account=account, start_date__lte=as_of, end_date__gte=as_of)
        .exclude(status="cancelled")
        .aggregate(s=Sum("seats"))["s"]
    )
    peak = usage.filter(metric="active_users", date__gte=day(30)).aggregate(m=Max("value"))["m"] or 0
    adoption = float(peak) / seats if tracked and seats else None
    cur = usage.filter(metric="events", date__gte=day(30)).aggregate(s=Sum("value"))["s"] or 0
    prev = usage.filter(metric="events", date__lt=day(30)).aggregate(s=Sum("value"))["s"]
    trend = (float(cur) - float(prev)) / float(prev) * 100 if prev else None
    tickets = Ticket.objects.for_org(org).filter(account=account, opened_at__lt=end)
    ever = tickets.exists()
    support = tickets.filter(
        opened_at__gte=datetime.combine(day(90), datetime.min.time()).replace(tzinfo=end.tzinfo)
    ).count()
    open_p1 = (
        tickets.filter(priority="P1")
        .filter(Q(resolved_at__gte=end) | Q(resolved_at__isnull=True, status__in=["open", "pending"]))
        .count()
    )
    responses = list(
        SurveyResponse.objects.for_org(org)
        .filter(account=account, kind="nps", responded_at__lt=end)
        .filter(responded_at__gte=datetime.combine(day(180), datetime.min.time()).replace(tzinfo=end.tzinfo))
        .values_list("score", flat=True)
    )
    nps = (
        (sum(s >= 9 for s in responses) - sum(s <= 6 for s in responses)) / len(responses) * 100 if responses else None
    )
    last = (
        Activity.objects.for_org(org)
        .filter(account=account, occurred_at__lt=end)
        .exclude(type="note")
        .aggregate(m=Max("occurred_at"))["m"]
    )
    cadence = (org.touch_cadence_days or {}).get(account.touch_model)
    reference = last.date() if last else account.customer_since
    engagement = (as_of - reference).days / cadence if cadence and reference else None
    contacts = list(Contact.objects.for_org(org).filter(account=account))

    def active(c: Any) -> bool:
        return (c.departed_at is None and c.is_active) or (c.departed_at is not None and c.departed_at > as_of)

    champion = any("champion" in c.roles and active(c) for c in contacts)
    sponsor = any("executive_sponsor" in c.roles and active(c) for c in contacts)
    departed = any(
        ({"champion", "executive_sponsor", "economic_buyer"} & set(c.roles))
        and c.departed_at
        and day(90) <= c.departed_at <= as_of
        for c in contacts
    )
    relationship = None
    if contacts:
        relationship = "departed" if departed else {2: "both", 1: "one", 0: "none"}[champion + sponsor]
    invoices = Invoice.objects.for_org(org).filter(account=account, due_date__lte=as_of)
    oldest = invoices.filter(Q(due_date__lt=as_of) & (Q(paid_at__isnull=True) | Q(paid_at__gt=as_of))).aggregate(
        m=Min("due_date")
    )["m"]
    financial = ((as_of - oldest).days if oldest else 0) if invoices.exists() else None
    pulse = (
        CsmPulse.objects.for_org(org)
        .filter(account=account, created_at__lt=end, created_at__gte=end - timedelta(days=30))
        .order_by("-created_at", "-id")
        .first()
    )
    return {
        "adoption": adoption,
        "usage_trend": trend,
        "support": support if ever else None,
        "open_p1_tickets": open_p1,
        "nps": nps,
        "engagement": engagement,
        "relationship": relationship,
        "financial": financial,
        "csm_pulse": pulse.color if pulse else None,
    }


def naive_loop(org: Any, accounts: list[Any], as_of: date) -> tuple[float, dict[int, float | None]]:
    from django.utils import timezone

    from health.defaults import DEFAULT_SCORECARD
    from health.models import HealthSnapshot
    from health.scoring import score_account

    scores: dict[int, float | None] = {}
    started = time.perf_counter()
    for account in accounts:
        churned = account.churned_at is not None or account.lifecycle_stage == "churned"
        result = score_account(DEFAULT_SCORECARD, naive_signals(org, account, as_of), org.health_bands)
        score = None if churned else result.score
        HealthSnapshot.all_orgs.update_or_create(
            organization_id=org.pk,
            account_id=account.pk,
            date=as_of,
            defaults={
                "computed_at": timezone.now(),
                "score": score,
                "color": "" if churned else result.color,
                "components": [] if churned else result.components,
                "missing": [] if churned else result.missing,
            },
        )
        scores[account.pk] = score
    return time.perf_counter() - started, scores


# --- main ------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    sys.path.insert(0, str(ROOT))
    database_url, drop = prepare_database()
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cs_platform.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from accounts.models import Account
    from accounts.services import create_organization
    from health.models import HealthSnapshot, UsageMetric
    from health.services import recompute_health

    try:
        call_command("migrate", verbosity=0)
        org, _ = create_organization(slug=SLUG, name="Health benchmark")
        today = date.today()
        present = Account.objects.for_org(org).count()
        built_for = UsageMetric.objects.for_org(org).order_by("-date").values_list("date", flat=True).first()
        if args.rebuild or present != args.accounts or built_for != today:
            print(f"Generating {args.accounts:,} accounts with {DAYS} days of usage…", flush=True)
            started = time.perf_counter()
            build(org, args.accounts, today)
            print(f"  built in {time.perf_counter() - started:.1f} s", flush=True)
        else:
            print(f"Reusing the dataset of {present:,} accounts (--rebuild to regenerate).", flush=True)
        usage_rows = UsageMetric.objects.for_org(org).count()
        HealthSnapshot.all_orgs.filter(organization=org, date=today)._raw_delete(connection.alias)

        print("recompute_health (first run of the day: inserts)…", flush=True)
        first = recompute_health(org, as_of=today)
        print(f"  {first.seconds:.2f} s", flush=True)
        print("recompute_health (steady state: updates)…", flush=True)
        second = recompute_health(org, as_of=today)
        print(f"  {second.seconds:.2f} s", flush=True)
        bulk_scores = dict(HealthSnapshot.objects.for_org(org).filter(date=today).values_list("account_id", "score"))

        step = max(1, args.accounts // args.sample)
        sample = list(Account.objects.for_org(org).order_by("id")[::step][: args.sample])
        print(f"Naive per-account ORM loop over {len(sample)} accounts…", flush=True)
        naive_seconds, naive_scores = naive_loop(org, sample, today)
        scaled = naive_seconds * first.accounts / len(sample)
        mismatches = [
            pk
            for pk, score in naive_scores.items()
            if (None if bulk_scores.get(pk) is None else float(bulk_scores[pk])) != score
        ]
    finally:
        if args.drop:
            connection.close()
            drop()
    best = min(first.seconds, second.seconds)
    results = {
        "database": "postgresql",
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "accounts": first.accounts,
        "usage_rows": usage_rows,
        "scored": first.scored,
        "by_color": second.by_color,
        "recompute_first_s": round(first.seconds, 2),
        "recompute_steady_s": round(second.seconds, 2),
        "naive_sample": len(sample),
        "naive_sample_s": round(naive_seconds, 2),
        "naive_scaled_s": round(scaled, 1),
        "ratio": round(scaled / max(first.seconds, second.seconds), 1),
        "score_mismatches": len(mismatches),
        "phases_first_s": first.timings,
        "phases_steady_s": second.timings,
        "load_average": os.getloadavg(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print()
    print(f"Health recompute — {results['machine']}, {results['accounts']:,} accounts, {usage_rows:,} usage rows")
    print(f"  recompute_health, first run of the day   {first.seconds:8.2f} s   (target < 20 s)")
    print(f"  recompute_health, steady state           {second.seconds:8.2f} s")
    print(f"  naive loop, {len(sample)} accounts               {naive_seconds:8.2f} s")
    print(f"  naive loop scaled to {first.accounts:,} accounts   {scaled:8.1f} s")
    print(f"  speed-up (naive ÷ slower bulk run)        {results['ratio']:8.1f}×  (target ≥ 20×)")
    print(f"  naive vs bulk score mismatches           {len(mismatches):8d}   (must be 0)")
    print(f"  colours: {second.by_color}  (best bulk run {best:.2f} s)")
    print(f"  phases, first run (s): {first.timings}")
    print(f"  phases, steady state (s): {second.timings}")
    print(f"  load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())} (other work on the machine)")
    return 0 if not mismatches else 1


if __name__ == "__main__":
    raise SystemExit(main())
