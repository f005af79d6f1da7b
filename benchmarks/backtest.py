"""``python -m benchmarks.backtest [--renewals N] [--sample S] [--rebuild] [--drop]`` — a scorecard backtest at scale.

Issue 14 target: a backtest over 10,000 closed renewals in < 30 s on Postgres, with a naive per-renewal ORM
loop measured beside it in the same run.

1. Uses the database ``<name>_backtest_bench`` next to the one in ``DATABASE_URL`` (created and migrated when
   absent). The dataset is generated inside Postgres (``INSERT … SELECT`` over ``generate_series``,
   deterministic: values derive from the account id): ``--renewals`` accounts, each with one contract and its
   closed renewal, due dates spread over two years (730 distinct days, so 730 distinct as-of days), and the
   signals known around each renewal's as-of day (90 days before the due date): daily usage on every other day
   of the 60 days before, tickets, NPS responses, activities and CSM pulses. Outcomes depend on a hidden
   health of the account that also drives its usage, NPS and tickets, with noise (17 % churned, 15 % contracted). Kept
   between runs: ``--rebuild`` regenerates it, ``--drop`` drops the database at the end.
2. Times ``renewals.backtest.run_backtest`` of the default scorecard's current version over every renewal
   (the job's work: load the signals as of each as-of day, score, every figure, the weight suggestion, store).
3. Times the naive loop over ``--sample`` renewals — per renewal: read it with the ORM, ``load_signals`` of its
   one account as of its as-of day, score it — and scales it to all renewals. The naive scores must equal
   the backtest's (a correctness cross-check).
4. Prints both and the ratio, and writes ``benchmarks/results/backtest.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results" / "backtest.json"
SLUG = "bench-backtest"
HORIZON = 90
FIRST_DUE = date(2024, 1, 1)
DAYS = 730


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.backtest", description=__doc__.split("\n\n")[0])
    parser.add_argument("--renewals", type=int, default=10_000, help="closed renewals (default 10000)")
    parser.add_argument("--sample", type=int, default=300, help="renewals of the naive loop (default 300)")
    parser.add_argument("--rebuild", action="store_true", help="regenerate the dataset even if present")
    parser.add_argument("--drop", action="store_true", help="drop the benchmark database at the end")
    return parser.parse_args(argv)


# A hidden health per account, 0–99 (h), and its noisy outcome. Usage, NPS and tickets follow h.
STEPS = [
    (
        "accounts",
        """
        INSERT INTO accounts_account (organization_id, external_id, name, domain, industry, region,
            lifecycle_stage, touch_model, tags, custom_fields, icp_fit, referenceable, arr, hierarchy_arr,
            customer_since, churned_at, created_at, updated_at)
        SELECT %(org)s, 'BT-' || lpad(g::text, 6, '0'), 'Backtest account ' || g, '', 'Software', 'EMEA',
            'mature', (ARRAY['high', 'low', 'tech'])[1 + g %% 3], '[]', '{}', false, false,
            (10 + g %% 200) * 400, (10 + g %% 200) * 400,
            %(first_due)s::date - 800, NULL, now(), now()
        FROM generate_series(1, %(n)s) g
        """,
    ),
    (
        "contracts",
        """
        INSERT INTO accounts_contract (organization_id, account_id, number, start_date, end_date, status,
            auto_renew, currency, seats, arr, created_at, updated_at)
        SELECT %(org)s, a.id, 'BT-C-' || a.id, %(first_due)s::date + (a.id %% %(days)s)::int - 364,
            %(first_due)s::date + (a.id %% %(days)s)::int, 'ended', false, 'USD', 10 + a.id %% 200,
            (10 + a.id %% 200) * 400, now(), now()
        FROM accounts_account a WHERE a.organization_id = %(org)s
        """,
    ),
    (
        "renewals",
        """
        INSERT INTO renewals_renewal (organization_id, account_id, contract_id, due_date, current_arr, forecast_arr,
            forecast_category, probability, stage, csm_call, final_call, notes, outcome, closed_on, timing,
            new_arr, churn_notes, created_at, updated_at)
        SELECT %(org)s, c.account_id, c.id, c.end_date, c.arr, c.arr, 'likely', 70,
            CASE WHEN o.outcome = 'churned' THEN 'lost' ELSE 'won' END, '', '', '', o.outcome, c.end_date, 'on_time',
            CASE o.outcome WHEN 'churned' THEN 0 WHEN 'contracted' THEN c.arr * 0.8 WHEN 'expanded' THEN c.arr * 1.2
                ELSE c.arr END,
            '', now(), now()
        FROM accounts_contract c
        CROSS JOIN LATERAL (SELECT (c.account_id * 7919) %% 100 AS h, (c.account_id * 104729) %% 100 AS noise) x
        CROSS JOIN LATERAL (SELECT CASE
            WHEN x.h + (x.noise - 50) * 0.6 < 15 THEN 'churned'
            WHEN x.h + (x.noise - 50) * 0.6 < 30 THEN 'contracted'
            WHEN x.h > 80 THEN 'expanded'
            ELSE 'renewed' END AS outcome) o
        WHERE c.organization_id = %(org)s
        """,
    ),
    (
        "usage metrics",
        """
        INSERT INTO health_usagemetric (organization_id, account_id, date, metric, value)
        SELECT %(org)s, c.account_id, c.end_date - %(horizon)s - i * 2, m.metric,
            CASE m.metric
                WHEN 'active_users' THEN
                    floor((10 + c.account_id %% 200) * (0.1 + ((c.account_id * 7919) %% 100) / 110.0))
                ELSE floor((10 + c.account_id %% 200) * 12 * (0.6 + ((c.account_id * 7919) %% 100) / 100.0
                    * (1 - i / 60.0)))
            END
        FROM accounts_contract c
        CROSS JOIN generate_series(0, 29) i
        CROSS JOIN (VALUES ('active_users'), ('events')) m(metric)
        WHERE c.organization_id = %(org)s AND c.account_id %% 25 <> 0
        """,
    ),
    (
        "tickets",
        """
        INSERT INTO health_ticket (organization_id, account_id, external_id, opened_at, priority, status,
            resolved_at, subject)
        SELECT %(org)s, c.account_id, 'BT-T-' || c.account_id || '-' || k,
            (c.end_date - %(horizon)s - ((k * 11 + c.account_id) %% 80)::int)::timestamptz + interval '9 hours',
            CASE WHEN (c.account_id + k) %% 13 = 0 THEN 'P1' ELSE 'P3' END, 'solved',
            (c.end_date - %(horizon)s - ((k * 11 + c.account_id) %% 80)::int + 2)::timestamptz, ''
        FROM accounts_contract c
        CROSS JOIN LATERAL generate_series(1, (100 - (c.account_id * 7919) %% 100) / 15) k
        WHERE c.organization_id = %(org)s
        """,
    ),
    (
        "nps responses",
        """
        INSERT INTO feedback_surveyresponse (organization_id, account_id, kind, score, comment, responded_at)
        SELECT %(org)s, c.account_id, 'nps', least(10, ((c.account_id * 7919) %% 100) / 9 + k - 1), '',
            (c.end_date - %(horizon)s - ((c.account_id + k * 50) %% 170)::int)::timestamptz + interval '10 hours'
        FROM accounts_contract c CROSS JOIN generate_series(1, 2) k
        WHERE c.organization_id = %(org)s AND c.account_id %% 6 <> 0
        """,
    ),
    (
        "activities",
        """
        INSERT INTO accounts_activity (organization_id, account_id, type, occurred_at, summary, sentiment, created_at)
        SELECT %(org)s, c.account_id, 'call',
            (c.end_date - %(horizon)s - (3 + (c.account_id %% 50) + k * 20)::int)::timestamptz + interval '11 hours',
            '', '', now()
        FROM accounts_contract c CROSS JOIN generate_series(1, 3) k
        WHERE c.organization_id = %(org)s
        """,
    ),
    (
        "csm pulses",
        """
        INSERT INTO health_csmpulse (organization_id, account_id, color, reason_codes, note, created_at)
        SELECT %(org)s, c.account_id,
            CASE WHEN (c.account_id * 7919) %% 100 < 25 THEN 'red' WHEN (c.account_id * 7919) %% 100 < 60 THEN 'yellow'
                ELSE 'green' END, '[]', '',
            (c.end_date - %(horizon)s - (c.account_id %% 25)::int)::timestamptz + interval '12 hours'
        FROM accounts_contract c
        WHERE c.organization_id = %(org)s AND c.account_id %% 2 = 0
        """,
    ),
]


def build(org: Any, n: int) -> dict[str, int]:
    """Generate the dataset inside Postgres; returns row counts."""
    from django.db import connection, transaction

    from accounts.models import Account

    params = {"org": org.pk, "n": n, "first_due": FIRST_DUE, "days": DAYS, "horizon": HORIZON}
    counts: dict[str, int] = {}
    with transaction.atomic():
        Account.all_orgs.filter(organization_id=org.pk).delete()
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit = off")
            for label, sql in STEPS:
                started = time.perf_counter()
                cursor.execute(sql, params)
                counts[label] = cursor.rowcount
                print(f"  {label:<15} {cursor.rowcount:>10,} rows  {time.perf_counter() - started:6.1f} s", flush=True)
    with connection.cursor() as cursor:
        for table in ("accounts_account", "accounts_contract", "renewals_renewal", "health_usagemetric",
                      "health_ticket", "feedback_surveyresponse", "accounts_activity", "health_csmpulse"):  # fmt: skip
            cursor.execute(f"VACUUM ANALYZE {table}")
    return counts


def naive_loop(org: Any, definition: dict[str, Any], renewal_ids: list[int]) -> tuple[float, dict[int, float | None]]:
    """Per renewal: the ORM row, ``load_signals`` of its account as of its as-of day, the score."""
    import math

    from health.analytics import load_signals
    from health.scoring import score_frame, signals_of
    from renewals.models import Renewal

    metrics = sorted(s.split(":", 1)[1] for s in signals_of(definition) if s.startswith("usage:"))
    scores: dict[int, float | None] = {}
    started = time.perf_counter()
    for pk in renewal_ids:
        renewal = Renewal.objects.for_org(org).get(pk=pk)
        as_of = renewal.due_date - timedelta(days=HORIZON)
        signals = load_signals(org, as_of, [renewal.account_id], usage_metrics=metrics)
        score = float(score_frame(definition, signals, org.health_bands)["score"].iloc[0])
        scores[pk] = None if math.isnan(score) else score
    return time.perf_counter() - started, scores


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    sys.path.insert(0, str(ROOT))
    from benchmarks.pg import bench_database

    db = bench_database("backtest", "benchmarks.backtest")
    db.create()
    db.use()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cs_platform.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from accounts.services import create_organization
    from cs_platform.tenancy import org_scope
    from health.defaults import ensure_default_scorecard
    from renewals.backtest import run_backtest
    from renewals.models import Backtest, Renewal

    try:
        call_command("migrate", verbosity=0)
        org, _ = create_organization(slug=SLUG, name="Backtest benchmark")
        present = Renewal.objects.for_org(org).exclude(outcome="").count()
        if args.rebuild or present != args.renewals:
            print(f"Generating {args.renewals:,} closed renewals with their signals…", flush=True)
            started = time.perf_counter()
            rows = build(org, args.renewals)
            print(f"  built in {time.perf_counter() - started:.1f} s", flush=True)
        else:
            rows = {"renewals": present}
            print(f"Reusing the dataset of {present:,} renewals (--rebuild to regenerate).", flush=True)
        card = ensure_default_scorecard(org.pk)
        version = card.current_version
        window = {"date_from": FIRST_DUE, "date_to": FIRST_DUE + timedelta(days=DAYS)}
        with org_scope(org):
            backtest = Backtest.objects.create(scorecard=card, scorecard_version=version, horizon_days=HORIZON,
                                               **window)  # fmt: skip
            print("run_backtest over every renewal…", flush=True)
            started = time.perf_counter()
            result = run_backtest(org, backtest)
            seconds = time.perf_counter() - started
            print(f"  {seconds:.2f} s", flush=True)
            frame = backtest.frame  # the scored renewals of that run
            bulk = dict(zip(frame["renewal_id"], frame["score"], strict=True))
            ids = sorted(Renewal.objects.exclude(outcome="").values_list("pk", flat=True))
            step = max(1, len(ids) // args.sample)
            sample = ids[::step][: args.sample]
            print(f"Naive per-renewal ORM loop over {len(sample)} renewals…", flush=True)
            naive_seconds, naive = naive_loop(org, version.definition, sample)
    finally:
        if args.drop:
            connection.close()
            db.drop()
    scaled = naive_seconds * result["in_window"] / len(sample)
    mismatches = [pk for pk, score in naive.items() if bulk.get(pk) != score and not (score is None and pk not in bulk)]
    results = {
        "database": "postgresql",
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "rows": rows,
        "renewals": result["in_window"],
        "scored": result["scored"],
        "skipped": result["skipped"],
        "auc": result["auc"],
        "auc_ci": [result["auc_ci_low"], result["auc_ci_high"]],
        "suggestion_holdout_auc": {
            k: result["suggestion"].get(k) for k in ("auc_current_holdout", "auc_suggested_holdout")
        },  # fmt: skip
        "backtest_s": round(seconds, 2),
        "phases_s": result["timings"],
        "naive_sample": len(sample),
        "naive_sample_s": round(naive_seconds, 2),
        "naive_scaled_s": round(scaled, 1),
        "ratio": round(scaled / seconds, 1),
        "score_mismatches": len(mismatches),
        "load_average": os.getloadavg(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print()
    print(f"Scorecard backtest — {results['machine']}, {results['renewals']:,} closed renewals")
    print(f"  run_backtest (load, score, figures, suggestion, store)  {seconds:8.2f} s   (target < 30 s)")
    print(f"  naive loop, {len(sample)} renewals                           {naive_seconds:8.2f} s")
    print(f"  naive loop scaled to {results['renewals']:,} renewals              {scaled:8.1f} s")
    print(f"  speed-up (naive ÷ backtest)                              {results['ratio']:8.1f}×")
    print(f"  naive vs backtest score mismatches                       {len(mismatches):8d}   (must be 0)")
    print(f"  phases (s): {result['timings']}")
    print(f"  scored {result['scored']:,}, skipped {result['skipped']}, AUC {result['auc']} {results['auc_ci']}")
    print(f"  suggestion, held-out AUC current → suggested: {results['suggestion_holdout_auc']}")
    print(f"  load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())} (other work on the machine)")
    return 0 if not mismatches else 1


if __name__ == "__main__":
    raise SystemExit(main())
