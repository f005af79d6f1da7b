"""The recompute command, the Celery tasks (scheduled fan-out, recorded runs) and the debounced
per-account recompute (real Redis when REDIS_URL is set, as in CI)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts.choices import JobStatus
from accounts.models import JobRun
from cs_platform.jobs import create_job
from health import triggers
from health.models import CsmPulse, HealthScore, HealthSnapshot
from health.tasks import recompute_accounts, recompute_all_health, recompute_health_task

from .factories import AccountFactory, ContactFactory
from .signal_factories import TicketFactory

needs_redis = pytest.mark.skipif(not settings.REDIS_URL, reason="the debounce shares state through Redis")


@pytest.fixture
def clean_redis(org):
    client = triggers._redis()
    if client is not None:
        client.delete(*triggers._keys(org.pk))
    yield client
    if client is not None:
        client.delete(*triggers._keys(org.pk))


def pulse(account, color="green"):
    CsmPulse.all_orgs.create(organization=account.organization, account=account, color=color, created_at=timezone.now())


def test_command_recomputes_and_records_a_job(org, capsys):
    a = AccountFactory(organization=org)
    b = AccountFactory(organization=org, churned_at=dt.date(2025, 1, 1))
    pulse(a)
    pulse(b)
    call_command("recompute_health", "acme")
    out = capsys.readouterr().out
    assert "Recomputed health of 2 accounts of acme" in out
    assert "1 scored, 1 without a score (1 churned)" in out
    job = JobRun.objects.for_org(org).get(kind="recompute_health")
    assert job.status == JobStatus.SUCCEEDED and job.counts["accounts"] == 2 and job.counts["scored"] == 1
    assert job.progress_done == job.progress_total == 2
    assert HealthScore.objects.for_org(org).get(account=a).color == "green"


def test_command_refuses_unknown_org_and_bad_date(org):
    with pytest.raises(CommandError, match="no organization"):
        call_command("recompute_health", "nope")
    with pytest.raises(CommandError, match="not a YYYY-MM-DD"):
        call_command("recompute_health", "acme", "--as-of", "yesterday")


def test_command_as_of_a_past_day_writes_only_that_snapshot(org):
    a = AccountFactory(organization=org)
    pulse(a)
    call_command("recompute_health", "acme", "--as-of", (timezone.localdate() - dt.timedelta(days=3)).isoformat())
    assert HealthSnapshot.objects.for_org(org).filter(account=a).count() == 1
    assert not HealthScore.objects.for_org(org).filter(account=a).exists()


def test_scheduled_fan_out_records_a_run_per_org(org, other_org, eager):
    pulse(AccountFactory(organization=org))
    AccountFactory(organization=other_org)
    assert recompute_all_health.delay().get() == 2
    runs = JobRun.all_orgs.filter(kind="recompute_health")
    assert {r.organization_id: r.status for r in runs} == {org.pk: "succeeded", other_org.pk: "succeeded"}
    assert runs.get(organization=org).counts["scored"] == 1
    assert runs.get(organization=other_org).counts["scored"] == 0


def test_task_with_account_ids(org, eager):
    a, b = AccountFactory(organization=org), AccountFactory(organization=org)
    pulse(a)
    job = create_job(organization_id=org.pk, kind="recompute_health")
    recompute_health_task.delay(org.pk, [a.pk], job_id=job.pk)
    job.refresh_from_db()
    assert job.status == "succeeded" and job.counts["accounts"] == 1
    assert HealthScore.objects.for_org(org).filter(account=b).count() == 0


@needs_redis
@pytest.mark.redis
def test_changes_are_debounced_into_one_task_per_org(org, clean_redis, django_capture_on_commit_callbacks):
    a, b = AccountFactory(organization=org), AccountFactory(organization=org)
    sent = []

    def enqueue(org_id, ids, countdown):
        sent.append((org_id, ids, countdown))

    with django_capture_on_commit_callbacks(execute=True):
        triggers.schedule_recompute(org.pk, [a.pk], enqueue=enqueue)
    with django_capture_on_commit_callbacks(execute=True):
        triggers.schedule_recompute(org.pk, [b.pk, a.pk], enqueue=enqueue)
        triggers.schedule_recompute(org.pk, [None], enqueue=enqueue)
    assert sent == [(org.pk, None, triggers.DEBOUNCE_SECONDS)]  # one pending task collects both changes
    pulse(a)
    pulse(b)
    assert recompute_accounts.apply(args=(org.pk,)).get() == {
        "accounts": 2,
        "scored": 2,
        "unscored": 0,
        "churned": 0,
        "color_changes": 0,
    }
    assert triggers.take_pending(org.pk) == []
    # The run dropped the flag: the next change schedules a new task.
    with django_capture_on_commit_callbacks(execute=True):
        triggers.schedule_recompute(org.pk, [a.pk], enqueue=enqueue)
    assert len(sent) == 2


def test_rolled_back_changes_schedule_nothing(org, clean_redis, django_capture_on_commit_callbacks):
    sent = []
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        triggers.schedule_recompute(org.pk, [1], enqueue=lambda *args: sent.append(args))
    assert len(callbacks) == 1 and sent == []  # queued for commit only; a rollback drops it


def test_without_redis_each_transaction_sends_its_ids(org, settings, django_capture_on_commit_callbacks):
    settings.REDIS_URL = ""
    sent = []
    with django_capture_on_commit_callbacks(execute=True):
        triggers.schedule_recompute(org.pk, [3, 1, 3], enqueue=lambda *args: sent.append(args))
    assert sent == [(org.pk, [1, 3], triggers.DEBOUNCE_SECONDS)]


def test_signal_changes_trigger_a_recompute(org, eager, clean_redis, django_capture_on_commit_callbacks):
    account = AccountFactory(organization=org)
    with django_capture_on_commit_callbacks(execute=True):
        ContactFactory(account=account, roles=["champion", "executive_sponsor"])
        TicketFactory(account=account, opened_at=timezone.now(), priority="P3")
    score = HealthScore.objects.for_org(org).get(account=account)
    # relationship both (100) and support 1 ticket in band (100): 100.
    assert score.score == 100
    with django_capture_on_commit_callbacks(execute=True):
        TicketFactory(account=account, opened_at=timezone.now(), priority="P1")  # −25 per open P1
    score.refresh_from_db()
    assert float(score.score) == pytest.approx(100 * 10 / 20 + 75 * 10 / 20)


def test_usage_rollup_schedules_a_recompute_of_touched_accounts(
    org, eager, clean_redis, django_capture_on_commit_callbacks
):
    from health.tasks import rollup_usage_task

    from .signal_factories import UsageEventFactory

    used, idle = AccountFactory(organization=org), AccountFactory(organization=org)
    UsageEventFactory(account=used, timestamp=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        rollup_usage_task.delay(org.pk)
    assert HealthScore.objects.for_org(org).filter(account=used).exists()
    assert not HealthScore.objects.for_org(org).filter(account=idle).exists()


def test_a_csv_import_recomputes_the_organization_after_commit(
    org, eager, tmp_path, django_capture_on_commit_callbacks
):
    from cs_platform.imports import import_csv

    account = AccountFactory(organization=org, external_id="ACME-1")
    path = tmp_path / "tickets.csv"
    path.write_text(
        "external_id,account_external_id,opened_at,priority,status,resolved_at\n"
        "T-1,ACME-1,2026-11-01T10:00:00Z,P3,solved,2026-11-02T10:00:00Z\n"
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert import_csv(org, "tickets", path, dry_run=True).ok
    assert not HealthScore.objects.for_org(org).exists()  # a dry run writes nothing, schedules nothing
    with django_capture_on_commit_callbacks(execute=True):
        assert import_csv(org, "tickets", path).ok
    job = JobRun.objects.for_org(org).get(kind="recompute_health")
    assert job.params == {"trigger": "import:tickets"} and job.status == JobStatus.SUCCEEDED
    score = HealthScore.objects.for_org(org).get(account=account)
    support = next(
        c for c in HealthSnapshot.objects.for_org(org).get(account=account).components if c["key"] == "support"
    )
    assert score.score is not None and support["score"] is not None
