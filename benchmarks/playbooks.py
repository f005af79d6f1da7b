"""``python -m benchmarks.playbooks [--accounts N] [--sample S] [--keep-db]``.

The playbook engine at demo scale, on a throwaway database ``<name>_playbooks_bench`` next to the one in
``DATABASE_URL`` (created, migrated, dropped; Postgres only):

1. ``seed_demo`` with ``--accounts`` accounts (default 50,000: contacts, three years of contracts and
   renewals, activities, 60 days of usage, tickets, invoices, health history) — ``seed_seconds``;
2. 20 active playbooks over every trigger kind (14 time-based, 6 event-driven; see :data:`PLAYBOOKS`);
3. **one evaluation** (``playbooks.engine.evaluate_organization``, what the beat runs), timed three ways:
   the *matching* alone (``candidates`` of the 20 playbooks: one query each); a *day's* evaluation, as on
   a running engine: the occurrences matching now are recorded as fired on an earlier day (set-based, no
   actions) except those of 1 account in :data:`FRESH_EVERY`, which the evaluation fires (CTAs, tasks,
   notifications, the log); and the *steady state* (the next evaluation: nothing new);
4. the **naive baseline**, measured in the same run: the same matching per account in a Python loop —
   for each account, for each playbook, the same SQL narrowed to that account — over ``--sample``
   accounts (default 500), scaled linearly to all of them; its matches must equal the set-based ones for
   the sample (0 mismatches), which cross-checks the two.

Results print as a table and go to ``benchmarks/results/playbooks.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results" / "playbooks.json"
#: The evaluation fires the occurrences of 1 account in this many; the others fired "on an earlier day".
FRESH_EVERY = 100

HIGH_TOUCH = {"match": "all", "conditions": [{"field": "touch_model", "op": "eq", "value": "high"}]}
BIG = {"match": "all", "conditions": [{"field": "arr", "op": "gte", "value": "100000"}]}
TECH_TOUCH = {"match": "all", "conditions": [{"field": "touch_model", "op": "eq", "value": "tech"}]}


def cta(type_: str, reason: str, *titles: str) -> dict[str, Any]:
    return {"kind": "open_cta", "type": type_, "reason": reason,
            "tasks": [{"title": t, "due_in_days": 3 * (i + 1)} for i, t in enumerate(titles)]}  # fmt: skip


#: (name, trigger, params, conditions, actions): every trigger kind of spec §5.
PLAYBOOKS: list[tuple[str, str, dict[str, Any], dict[str, Any], list[dict[str, Any]]]] = [
    ("Renewal in 90 days", "renewal_due", {"days": 90}, {}, [cta("lifecycle", "renewal_prep", "Prep", "Call")]),
    ("Renewal in 120 days, high touch", "renewal_due", {"days": 120}, HIGH_TOUCH,
     [cta("lifecycle", "renewal_prep", "Exec review")]),
    ("No touch in 45 days, high touch", "no_touch", {"days": 45}, HIGH_TOUCH, [cta("risk", "no_touch", "Call")]),
    ("No touch in 90 days", "no_touch", {"days": 90}, {}, [cta("risk", "no_touch", "Email")]),
    ("Usage down 30 %", "usage_drop", {"percent": 30}, {}, [cta("risk", "usage_drop", "Check adoption")]),
    ("Usage down 50 %, big", "usage_drop", {"percent": 50, "metric": "events"}, BIG,
     [cta("risk", "usage_drop", "Escalate")]),
    ("Seats over licence", "seats_over", {}, {}, [cta("expansion", "seats_over_licence", "Upsell call")]),
    ("Health down 10 in 7 days", "health_drop", {"points": 10, "days": 7}, {}, [cta("risk", "health_drop", "Look")]),
    ("Health down 20 in 30 days", "health_drop", {"points": 20, "days": 30}, BIG,
     [cta("risk", "health_drop", "Plan")]),
    ("Invoice 30 days overdue", "invoice_overdue", {"days": 30}, {}, [cta("risk", "invoice_overdue", "Chase")]),
    ("Invoice 60 days overdue, big", "invoice_overdue", {"days": 60}, BIG, [cta("risk", "invoice_overdue", "Call")]),
    ("P1 ticket", "p1_ticket", {}, {}, [cta("risk", "p1_ticket", "Follow up")]),
    ("Stage stalled 90 days", "stage_unchanged", {"days": 90}, {}, [cta("lifecycle", "stage_stalled", "Review")]),
    ("Quarterly QBR, high touch", "schedule", {"every": "quarter"}, HIGH_TOUCH, [cta("lifecycle", "qbr", "QBR")]),
    ("Health red", "health_color", {"colors": ["red"]}, {}, [cta("risk", "health_red", "Call", "Cause", "Plan")]),
    ("Health yellow, big", "health_color", {"colors": ["yellow"]}, BIG, [cta("risk", "health_drop", "Check")]),
    ("Champion departed", "contact_departed", {}, {}, [cta("risk", "key_contact_departed", "New champion")]),
    ("Detractor", "survey_response", {"category": "detractor"}, {}, [cta("risk", "detractor", "Call back")]),
    ("New account", "account_created", {}, {}, [cta("lifecycle", "onboarding", "Kick-off")]),
    ("Tech touch welcome", "account_created", {}, TECH_TOUCH, [{"kind": "webhook"}]),
]  # fmt: skip


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.playbooks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=50_000, help="demo accounts (default 50000)")
    parser.add_argument("--sample", type=int, default=500, help="accounts of the naive baseline (default 500)")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the benchmark database")
    parser.add_argument(
        "--reuse", action="store_true", help="reuse a database kept by --keep-db (skips seeding; implies --keep-db)"
    )
    return parser.parse_args(argv)


def naive_matches(playbooks: list[Any], account_ids: list[int], now: Any) -> set[tuple[int, int, str]]:
    """The per-account loop: for each account, for each time-based playbook, the same matching SQL
    narrowed to that one account."""
    from playbooks.engine import candidates

    found = set()
    for pk in account_ids:
        for playbook in playbooks:
            rows = candidates(playbook, now=now, account_ids=[pk])
            if rows is None:
                continue
            found |= {(playbook.pk, r["account_id"], r["occurrence_key"]) for r in rows}
    return found


def bench(accounts: int, sample: int, *, reuse: bool = False) -> dict[str, Any]:
    from datetime import timedelta

    from django.db import connection
    from django.utils import timezone

    from accounts.demo import seed_demo
    from accounts.models import Account
    from playbooks.engine import candidates, evaluate_organization
    from playbooks.models import Cta, Playbook, PlaybookFiring
    from playbooks.validation import playbook_problems

    today = timezone.localdate()
    started = time.perf_counter()
    if reuse:
        from accounts.models import Organization
        from playbooks.models import AccountStageMark, CtaLog, Notification

        org = Organization.objects.get(slug="bench-playbooks")
        for model in (CtaLog, Notification, Cta, PlaybookFiring, Playbook, AccountStageMark):
            model.objects.for_org(org).all().delete()
    else:
        org = seed_demo(slug="bench-playbooks", accounts=accounts, seed=42, today=today).organization
    results: dict[str, Any] = {"accounts": accounts, "seed_seconds": round(time.perf_counter() - started, 1)}
    results["accounts"] = Account.objects.for_org(org).count()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")

    playbooks = []
    for name, trigger, params, conditions, actions in PLAYBOOKS:
        playbook = Playbook(organization=org, name=name, trigger=trigger, trigger_params=params,
                            conditions=conditions, actions=actions, active=True)  # fmt: skip
        problems = playbook_problems(playbook)
        assert not problems, (name, problems)
        playbook.save()
        playbooks.append(playbook)
    results["playbooks"] = {"active": len(playbooks), "time_based": sum(1 for p in playbooks if p.trigger in (
        "renewal_due", "no_touch", "usage_drop", "seats_over", "health_drop", "invoice_overdue", "p1_ticket",
        "stage_unchanged", "schedule"))}  # fmt: skip

    from playbooks.engine import sync_stage_marks

    sync_stage_marks(org.pk, today=today)  # the first run's one-off: every account's stage is first seen today
    now = timezone.now()
    started = time.perf_counter()
    matched = {}
    for playbook in playbooks:
        rows = candidates(playbook, now=now)
        matched[playbook.pk] = [] if rows is None else list(rows)
    matching_seconds = time.perf_counter() - started
    occurrences = {(pk, r["account_id"], r["occurrence_key"]) for pk, rows in matched.items() for r in rows}

    ids = list(Account.objects.for_org(org).order_by("pk").values_list("pk", flat=True))
    step = max(1, len(ids) // sample)
    sample_ids = ids[::step][:sample]
    started = time.perf_counter()
    naive = naive_matches(playbooks, sample_ids, now)
    naive_seconds = time.perf_counter() - started
    chosen = set(sample_ids)
    expected = {o for o in occurrences if o[1] in chosen}
    naive_scaled = naive_seconds / max(1, len(sample_ids)) * len(ids)
    results["matching"] = {
        "seconds": round(matching_seconds, 2),
        "queries": len(playbooks),
        "occurrences": len(occurrences),
        "naive_sample": len(sample_ids),
        "naive_sample_seconds": round(naive_seconds, 2),
        "naive_scaled_seconds": round(naive_scaled, 1),
        "speedup": round(naive_scaled / matching_seconds, 1) if matching_seconds else None,
        "mismatches": len(naive ^ expected),
    }

    # A running engine's day: what matched before has fired before. Record those occurrences as earlier
    # firings (set-based, no actions), except those of 1 account in 100, which the evaluation then fires.
    from playbooks.triggers import TRIGGERS

    by_pk = {p.pk: p for p in playbooks}
    earlier = [
        PlaybookFiring(
            organization_id=org.pk,
            playbook_id=pk,
            account_id=account_id,
            occurrence_key=key,
            outcome="fired",
            fired_at=now - timedelta(days=1),
            reason="benchmark: fired on an earlier day",
            condition_key=TRIGGERS[by_pk[pk].trigger].condition_key(pk),
        )  # fmt: skip
        for pk, account_id, key in occurrences
        if account_id % FRESH_EVERY
    ]
    PlaybookFiring.all_orgs.bulk_create(earlier, batch_size=5000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE playbooks_playbookfiring")
    started = time.perf_counter()
    first = evaluate_organization(org.pk, now=now)
    first_seconds = time.perf_counter() - started
    started = time.perf_counter()
    steady = evaluate_organization(org.pk, now=now)
    steady_seconds = time.perf_counter() - started
    results["evaluation"] = {
        "already_fired": len(earlier),
        "first_seconds": round(first_seconds, 2),
        "first": first,
        "ctas_open": Cta.objects.for_org(org).filter(status="open").count(),
        "firings": PlaybookFiring.objects.for_org(org).count(),
        "steady_seconds": round(steady_seconds, 2),
        "steady": steady,
        "naive_scaled_seconds": round(naive_scaled, 1),
        "speedup_steady": round(naive_scaled / steady_seconds, 1) if steady_seconds else None,
    }
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    sys.path.insert(0, str(ROOT))
    from benchmarks.pg import bench_database

    db = bench_database("playbooks", "benchmarks.playbooks")
    args.keep_db = args.keep_db or args.reuse
    db.create(fresh=not args.reuse)
    db.use()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cs_platform.settings")
    import django

    django.setup()
    from django.core.management import call_command

    try:
        print(f"Migrating {db.name}…", flush=True)
        call_command("migrate", verbosity=0)
        print(f"Seeding {args.accounts:,} accounts, then 20 playbooks…", flush=True)
        results = bench(args.accounts, args.sample, reuse=args.reuse)
    finally:
        if not args.keep_db:
            db.drop()
    results.update(database=db.name, python=platform.python_version(),
                   machine=f"{platform.machine()}, {os.cpu_count()} CPUs", load=os.getloadavg())  # fmt: skip
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, default=str) + "\n")
    m, e = results["matching"], results["evaluation"]
    print(f"seed_demo {results['accounts']:,} accounts: {results['seed_seconds']} s")
    print(
        f"matching, {results['playbooks']['active']} active playbooks ({m['queries']} queries): {m['seconds']} s, "
        f"{m['occurrences']:,} occurrences; naive per-account loop {m['naive_sample_seconds']} s for "
        f"{m['naive_sample']} accounts → {m['naive_scaled_seconds']} s scaled (×{m['speedup']}); "
        f"mismatches {m['mismatches']}"
    )
    print(
        f"evaluation with {e['already_fired']:,} occurrences fired earlier: {e['first_seconds']} s {e['first']}; "
        f"open CTAs {e['ctas_open']:,}"
    )
    print(f"steady-state evaluation: {e['steady_seconds']} s {e['steady']} (×{e['speedup_steady']} vs naive)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
