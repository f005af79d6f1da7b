"""``python -m benchmarks.playbooks [--accounts N] [--sample S] [--repeat R] [--first] [--latency-samples L]
[--keep-db] [--reuse]``.

The playbook engine at demo scale, on a throwaway database ``<name>_playbooks_bench`` next to the one in
``DATABASE_URL`` (created, migrated, dropped; Postgres only):

1. ``seed_demo`` with ``--accounts`` accounts (default 50,000: contacts, three years of contracts and
   renewals, activities, 60 days of usage, tickets, invoices, health history) — ``seed_seconds``;
   ``--reuse`` measures again on a database kept by ``--keep-db`` (its playbook rows are deleted first);
2. 20 active playbooks over every trigger kind (14 time-based, 6 event-driven; see :data:`PLAYBOOKS`);
3. ``--repeat`` times (default 1), naive and optimised alternately, so each repetition gives a *paired* ratio
   on a machine whose load drifts:

   * the *matching* alone (``candidates`` of the 20 playbooks: one query each), and the **naive baseline**:
     the same matching per account in a Python loop — for each account, for each playbook, the same SQL
     narrowed to that account — over ``--sample`` accounts (default 500), scaled linearly to all of them;
     its matches must equal the set-based ones for the sample (0 mismatches), which cross-checks the two;
   * a *day's* evaluation (``playbooks.engine.evaluate_organization``, what the beat runs), as on a running
     engine: the occurrences matching now are recorded as fired on an earlier day (set-based, no actions)
     except those of 2 accounts in :data:`FRESH_EVERY`. The occurrences of one of the two are first fired
     **one by one** (``engine.fire`` per occurrence: the firing baseline), then the evaluation fires those
     of the other **set-based** (CTAs, tasks, log, notifications in bulk);
   * the *steady state*: the next evaluation, nothing new to fire (what most beat runs are);
   * with ``--first``, once after the rounds: the *first evaluation* on the book (nothing recorded before:
     every occurrence matching now fires, CTAs and all);
4. with ``REDIS_URL`` set: **event → CTA latency** with a real Celery worker (a subprocess, solo pool, on a
   queue of its own, against the benchmark database): ``--latency-samples`` times (default 7), a green
   account of the big organization is overridden to red (``health.color_changed``, committed), and the
   time until its risk CTA exists is measured — polled from here (wall clock from the commit) and on the
   server (``Cta.opened_at − DomainEvent.occurred_at``). Before each sample the worker is let go idle
   (the previous sample's debounced segment refresh runs first), so each sample measures the dispatch on
   a free worker.

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
#: Of this many accounts, 1 is fired one by one and 1 set-based; the others' occurrences fired "on an earlier day".
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
    parser.add_argument("--repeat", type=int, default=1, help="paired naive/optimised repetitions (default 1)")
    parser.add_argument("--latency-samples", type=int, default=7, help="event → CTA samples (default 7; 0: none)")
    parser.add_argument("--first", action="store_true", help="also time a first evaluation (every occurrence fires)")
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


def clean(org_id: int, *, playbooks: bool) -> None:
    """Delete what the engine wrote for the organization (and its playbooks and stage marks when
    ``playbooks``): one ``DELETE … WHERE organization_id`` per table, children first, in one transaction.

    Not ``Model.objects.delete()``: Django's collector reads every CTA and firing into Python to cascade and
    to null the foreign keys, one batch at a time. A lock held by another session (a forgotten shell on the
    kept database) makes it fail after ``lock_timeout`` with the blocking sessions named, instead of waiting."""
    from django.db import connection, transaction

    from playbooks.models import AccountStageMark, Cta, CtaLog, CtaTask, Notification, Playbook, PlaybookFiring

    models = [CtaLog, Notification, CtaTask, PlaybookFiring, Cta]
    models += [Playbook, AccountStageMark] if playbooks else []
    # Statistics first: the foreign keys are checked at COMMIT, one lookup per deleted CTA in each table that
    # references it; with statistics taken while those tables were nearly empty, each lookup is planned as
    # a sequential scan (48,000 CTAs × 4 tables of ~50,000 rows: hours, the "stalled clean-up").
    analyze(*models)
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '20s'")
            for model in models:
                cursor.execute(f'DELETE FROM "{model._meta.db_table}" WHERE organization_id = %s', [org_id])
    except Exception:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid, state, now() - xact_start, left(query, 120) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            print("Clean-up failed; other sessions on the benchmark database:", cursor.fetchall(), file=sys.stderr)
        raise
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE " + ", ".join(f'"{m._meta.db_table}"' for m in models))


def analyze(*models: Any) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for model in models:
            cursor.execute(f'ANALYZE "{model._meta.db_table}"')


def one_round(org: Any, playbooks: list[Any], sample: int) -> dict[str, Any]:
    """One paired repetition: matching and its naive loop, one-by-one firing, a day's evaluation, steady state."""
    from datetime import timedelta

    from django.utils import timezone

    from accounts.models import Account
    from playbooks import engine
    from playbooks.engine import candidates, evaluate_organization
    from playbooks.models import Cta, CtaLog, CtaTask, Notification, PlaybookFiring
    from playbooks.triggers import TRIGGERS

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

    # A running engine's day: what matched before has fired before. Record those occurrences as earlier
    # firings (set-based, no actions), except those of 2 accounts in 100: one fired one by one (the
    # baseline), the other by the evaluation (set-based).
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
        if account_id % FRESH_EVERY > 1
    ]
    PlaybookFiring.all_orgs.bulk_create(earlier, batch_size=5000)
    analyze(PlaybookFiring, Cta, CtaTask, CtaLog, Notification)
    one_by_one = [(pk, a, k) for pk, a, k in occurrences if a % FRESH_EVERY == 1]
    accounts = Account.objects.for_org(org).in_bulk({a for _, a, _ in one_by_one})
    started = time.perf_counter()
    for pk, account_id, key in one_by_one:
        engine.fire(by_pk[pk], accounts[account_id], key, reason=f"benchmark ({key}).", now=now, in_cooldown=False)
    one_by_one_seconds = time.perf_counter() - started

    started = time.perf_counter()
    first = evaluate_organization(org.pk, now=now)
    first_seconds = time.perf_counter() - started
    started = time.perf_counter()
    steady = evaluate_organization(org.pk, now=now)
    steady_seconds = time.perf_counter() - started
    fired = first["fired"] + first["suppressed"]
    per_firing_naive = one_by_one_seconds / max(1, len(one_by_one))
    # The naive day: the per-account matching loop, then every fresh occurrence fired one by one.
    naive_day = naive_scaled + per_firing_naive * fired
    return {
        "matching": {
            "seconds": round(matching_seconds, 2),
            "queries": len(playbooks),
            "occurrences": len(occurrences),
            "naive_sample": len(sample_ids),
            "naive_sample_seconds": round(naive_seconds, 2),
            "naive_scaled_seconds": round(naive_scaled, 1),
            "speedup": round(naive_scaled / matching_seconds, 1) if matching_seconds else None,
            "mismatches": len(naive ^ expected),
        },
        "evaluation": {
            "already_fired": len(earlier),
            "one_by_one_fired": len(one_by_one),
            "one_by_one_seconds": round(one_by_one_seconds, 2),
            "first_seconds": round(first_seconds, 2),
            "first": first,
            "ctas_open": Cta.objects.for_org(org).filter(status="open").count(),
            "firings": PlaybookFiring.objects.for_org(org).count(),
            "steady_seconds": round(steady_seconds, 2),
            "steady": steady,
            "naive_day_seconds": round(naive_day, 1),
            "speedup_day": round(naive_day / first_seconds, 1) if first_seconds else None,
            "speedup_steady": round(naive_scaled / steady_seconds, 1) if steady_seconds else None,
            "firing_ms_one_by_one": round(1000 * per_firing_naive, 1),
            "firing_ms_set_based": round(1000 * max(0.0, first_seconds - steady_seconds) / max(1, fired), 1),
        },
    }


def first_evaluation(org: Any) -> dict[str, Any]:
    """The first evaluation after the playbooks are activated on a book: nothing recorded yet, so every
    occurrence matching now fires (set-based, in batches of ``engine.BATCH``)."""
    from django.utils import timezone

    from playbooks.engine import evaluate_organization
    from playbooks.models import Cta, CtaLog, CtaTask, Notification, PlaybookFiring

    clean(org.pk, playbooks=False)
    analyze(PlaybookFiring, Cta, CtaTask, CtaLog, Notification)
    started = time.perf_counter()
    counts = evaluate_organization(org.pk, now=timezone.now())
    seconds = time.perf_counter() - started
    fired = counts["fired"] + counts["suppressed"]
    return {"seconds": round(seconds, 1), "counts": counts, "ms_per_firing": round(1000 * seconds / max(1, fired), 2),
            "ctas_open": Cta.objects.for_org(org).filter(status="open").count()}  # fmt: skip


def bench(accounts: int, sample: int, *, reuse: bool = False, repeat: int = 1) -> tuple[Any, dict[str, Any]]:
    from django.utils import timezone

    from accounts.demo import seed_demo
    from accounts.models import Account
    from playbooks.engine import sync_stage_marks
    from playbooks.models import AccountStageMark, Playbook
    from playbooks.validation import playbook_problems

    today = timezone.localdate()
    started = time.perf_counter()
    if reuse:
        from accounts.models import Organization

        org = Organization.objects.get(slug="bench-playbooks")
        clean(org.pk, playbooks=True)
    else:
        org = seed_demo(slug="bench-playbooks", accounts=accounts, seed=42, today=today).organization
    # With --reuse: the clean-up's seconds (nothing is seeded).
    results: dict[str, Any] = {"accounts": accounts, "seed_seconds": round(time.perf_counter() - started, 1)}
    results["reused"] = reuse
    results["accounts"] = Account.objects.for_org(org).count()
    from django.db import connection

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

    sync_stage_marks(org.pk, today=today)  # the first run's one-off: every account's stage is first seen today
    analyze(AccountStageMark)
    rounds = []
    for i in range(repeat):
        if i:
            clean(org.pk, playbooks=False)
        rounds.append(one_round(org, playbooks, sample))
        m, e = rounds[-1]["matching"], rounds[-1]["evaluation"]
        print(f"  round {i + 1}: matching {m['seconds']} s (×{m['speedup']}), day {e['first_seconds']} s "
              f"(×{e['speedup_day']}), steady {e['steady_seconds']} s", flush=True)  # fmt: skip
    results["rounds"] = rounds
    results["matching"], results["evaluation"] = rounds[-1]["matching"], rounds[-1]["evaluation"]
    if repeat > 1:
        import statistics

        def spread(key: str, figure: str) -> list[float]:
            values = sorted(r[key][figure] for r in rounds)
            return [values[0], statistics.median(values), values[-1]]

        results["summary"] = {
            "matching_seconds": spread("matching", "seconds"),
            "matching_speedup": spread("matching", "speedup"),
            "day_seconds": spread("evaluation", "first_seconds"),
            "day_speedup": spread("evaluation", "speedup_day"),
            "steady_seconds": spread("evaluation", "steady_seconds"),
            "steady_speedup": spread("evaluation", "speedup_steady"),
            "firing_ms_one_by_one": spread("evaluation", "firing_ms_one_by_one"),
            "firing_ms_set_based": spread("evaluation", "firing_ms_set_based"),
        }
    return org, results


# --- Event → CTA latency, with a real worker ---------------------------------------------------------------


def _worker_idle(client: Any, queue: str) -> bool:
    """Nothing waiting in the queue and nothing reserved by the worker (ETA/countdown tasks included)."""
    if client.llen(queue):
        return False
    for raw in client.hvals("unacked"):
        try:
            if json.loads(raw)[2] == queue:
                return False
        except (ValueError, IndexError):
            continue
    return True


def _wait(predicate: Any, timeout: float, what: str) -> float:
    started = time.perf_counter()
    while not predicate():
        if time.perf_counter() - started > timeout:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)
    return time.perf_counter() - started


def event_latency(org: Any, samples: int, *, queue: str, db_url: str) -> dict[str, Any]:
    """``samples`` times: a green account turns red (a health override, committed with its
    ``health.color_changed``), and the time until the worker has opened its risk CTA."""
    import statistics
    import subprocess

    import redis
    from django.db import transaction

    from accounts.choices import Role
    from accounts.models import Membership
    from cs_platform.actors import Actor
    from cs_platform.models import DomainEvent
    from health.models import HealthScore
    from health.overrides import set_override
    from playbooks.models import Cta

    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    log = RESULTS.parent / "playbooks-worker.log"
    environ = {**os.environ, "DATABASE_URL": db_url, "CELERY_TASK_DEFAULT_QUEUE": queue}
    environ.pop("CELERY_TASK_ALWAYS_EAGER", None)
    cmd = [sys.executable, "-m", "celery", "-A", "cs_platform", "worker", "--pool=solo", "-Q", queue,
           "--concurrency=1", "-l", "info", "--without-heartbeat", "--without-gossip", "--without-mingle"]  # fmt: skip
    log.write_text("")
    worker = subprocess.Popen(cmd, cwd=ROOT, env=environ, stdout=log.open("ab"), stderr=subprocess.STDOUT)
    admin = Membership.objects.for_org(org).filter(role=Role.ADMIN).select_related("user").first()
    actor = Actor(organization=org, role=Role.ADMIN, user=admin.user if admin else None)
    wall, server, idle_waits = [], [], []
    try:
        _wait(lambda: "ready." in log.read_text(), 120, "the worker to start")
        # Green accounts with no open risk CTA; each sample turns a different one red.
        candidates = list(
            HealthScore.objects.for_org(org)
            .filter(color="green", account__churned_at__isnull=True)
            .exclude(account__ctas__status="open", account__ctas__reason__key="health_red")
            .order_by("account_id")
            .select_related("account")[:samples]
        )
        for health in candidates:
            idle_waits.append(round(_wait(lambda: _worker_idle(client, queue), 180, "the worker to go idle"), 2))
            account = health.account
            with transaction.atomic():
                set_override(account, color="red", reason_code="other", reason="benchmark", author=actor)
            committed = time.perf_counter()
            ctas = Cta.objects.for_org(org).filter(account=account, reason__key="health_red", status="open")
            _wait(ctas.exists, 60, "the risk CTA")
            wall.append(time.perf_counter() - committed)
            event = DomainEvent.objects.for_org(org).filter(name="health.color_changed", subject_id=str(account.pk))
            occurred = event.order_by("-occurred_at").values_list("occurred_at", flat=True).first()
            opened = ctas.values_list("opened_at", flat=True).get()
            server.append((opened - occurred).total_seconds())
            print(f"  event → CTA: {wall[-1]:.3f} s (server {server[-1]:.3f} s)", flush=True)
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
        client.delete(queue, f"_kombu.binding.{queue}")

    def figures(values: list[float]) -> dict[str, Any]:
        return {"median": round(statistics.median(values), 3), "max": round(max(values), 3),
                "min": round(min(values), 3), "all": [round(v, 3) for v in values]}  # fmt: skip

    return {"samples": len(wall), "wall": figures(wall), "server": figures(server), "idle_waits": idle_waits,
            "target_seconds": 2}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    sys.path.insert(0, str(ROOT))
    from benchmarks.pg import bench_database

    db = bench_database("playbooks", "benchmarks.playbooks")
    args.keep_db = args.keep_db or args.reuse
    db.create(fresh=not args.reuse)
    db.use()
    queue = f"retain-bench-playbooks-{os.getpid()}"
    # The dispatch messages of this process go to the benchmark worker's own queue, nobody else's.
    os.environ["CELERY_TASK_DEFAULT_QUEUE"] = queue
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cs_platform.settings")
    import django

    django.setup()
    from django.core.management import call_command

    try:
        print(f"Migrating {db.name}…", flush=True)
        call_command("migrate", verbosity=0)
        print(f"Seeding {args.accounts:,} accounts, then 20 playbooks…" if not args.reuse else
              "Reusing the kept database, then 20 playbooks…", flush=True)  # fmt: skip
        org, results = bench(args.accounts, args.sample, reuse=args.reuse, repeat=max(1, args.repeat))
        if args.first:
            print("First evaluation: every occurrence fires…", flush=True)
            results["first_evaluation"] = first_evaluation(org)
        if args.latency_samples and os.environ.get("REDIS_URL"):
            print(f"Event → CTA latency, {args.latency_samples} samples, real worker…", flush=True)
            results["latency"] = event_latency(org, args.latency_samples, queue=queue, db_url=db.url)
        elif args.latency_samples:
            print("Event → CTA latency skipped: set REDIS_URL (the worker's broker).", flush=True)
    finally:
        if not args.keep_db:
            db.drop()
    results.update(database=db.name, python=platform.python_version(),
                   machine=f"{platform.machine()}, {os.cpu_count()} CPUs", load=os.getloadavg())  # fmt: skip
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, default=str) + "\n")
    m, e = results["matching"], results["evaluation"]
    what = "clean-up of the kept database" if results["reused"] else "seed_demo"
    print(f"{what}, {results['accounts']:,} accounts: {results['seed_seconds']} s")
    print(
        f"matching, {results['playbooks']['active']} active playbooks ({m['queries']} queries): {m['seconds']} s, "
        f"{m['occurrences']:,} occurrences; naive per-account loop {m['naive_sample_seconds']} s for "
        f"{m['naive_sample']} accounts → {m['naive_scaled_seconds']} s scaled (×{m['speedup']}); "
        f"mismatches {m['mismatches']}"
    )
    print(
        f"one by one: {e['one_by_one_fired']} occurrences fired in {e['one_by_one_seconds']} s "
        f"({e['firing_ms_one_by_one']} ms each)"
    )
    print(
        f"a day's evaluation with {e['already_fired']:,} occurrences fired earlier: {e['first_seconds']} s "
        f"{e['first']} (≈ {e['firing_ms_set_based']} ms per firing); open CTAs {e['ctas_open']:,}; naive day "
        f"{e['naive_day_seconds']} s (×{e['speedup_day']})"
    )
    print(f"steady-state evaluation: {e['steady_seconds']} s {e['steady']} (×{e['speedup_steady']} vs naive)")
    if "summary" in results:
        print("over the rounds, [min, median, max]:")
        for key, values in results["summary"].items():
            print(f"  {key}: {values}")
    if "first_evaluation" in results:
        f = results["first_evaluation"]
        print(f"first evaluation (nothing fired before): {f['seconds']} s {f['counts']} ({f['ms_per_firing']} ms per "
              f"occurrence); open CTAs {f['ctas_open']:,}")  # fmt: skip
    if "latency" in results:
        lat = results["latency"]
        wall, server = lat["wall"], lat["server"]
        print(f"event → CTA ({lat['samples']} samples): wall median {wall['median']} s, max {wall['max']} s; "
              f"server median {server['median']} s, max {server['max']} s")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
