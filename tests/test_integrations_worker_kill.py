"""Issue 21 (HubSpot and Salesforce acceptance) with issue 16's fault rule: a Celery worker SIGKILLed in the
middle of a CRM sync (HubSpot companies, Salesforce Accounts), and a new worker started, completes the sync by
the broker's own redelivery with the result of an undisturbed sync and no duplicate.

The local vendor (``tests/fake_hubspot.py``, ``tests/fake_salesforce.py``) runs in this process; the worker (a
real ``celery worker`` subprocess, ``tests/worker_process.py``) reaches it on loopback
(``OUTBOUND_ALLOWED_NETWORKS`` in its environment). The kill lands once the run has committed at least two
pages (each page's rows, counters and cursor commit together); nothing re-enqueues by hand: the redelivered
``run_sync`` message resumes from the run's stored cursor (HubSpot's ``after``, Salesforce's
``nextRecordsUrl``). The reference is the same sync of the same records in another organization, run in this
process.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from accounts.models import Account
from accounts.services import create_organization
from integrations import services
from integrations.choices import JobStatus
from integrations.models import SyncRun
from integrations.sync import execute_run
from tests import worker_process

from .fake_hubspot import TOKEN as HUBSPOT_TOKEN
from .fake_hubspot import FakeHubSpot
from .fake_salesforce import TOKEN as SALESFORCE_TOKEN
from .fake_salesforce import FakeSalesforce, sfid

pytestmark = [*worker_process.WORKER_MARKS, pytest.mark.django_db(transaction=True)]

COMPANIES = 2500  # 25 pages of 100: the worker is still paging when the test sees the second page land

#: The broker's redelivery (``worker_process.REDELIVERY``'s mechanism) with limits long enough for a task's
#: 20 pages (``sync.PAGES_PER_TASK``) on a loaded CI machine: an unacknowledged message returns after 50 s.
REDELIVERY = {
    **worker_process.REDELIVERY,
    "CELERY_TASK_SOFT_TIME_LIMIT": "40",
    "CELERY_TASK_TIME_LIMIT": "45",
    "CELERY_VISIBILITY_TIMEOUT": "50",
}


def _accounts(org) -> list[tuple]:
    return sorted(Account.all_orgs.filter(organization=org).values_list("external_id", "name", "parent__external_id"))


@contextmanager
def hubspot_vendor() -> Iterator[tuple[str, str, dict[str, str], str]]:
    """HubSpot with 2,500 companies (a hierarchy), 100 a page."""
    with FakeHubSpot() as hubspot:
        for i in range(1, COMPANIES + 1):
            parent = f"{i // 10:05d}" if i % 10 and i > 10 else ""
            hubspot.add_company(f"{i:05d}", hs_parent_company_id=parent)
        yield "hubspot", hubspot.url, {"access_token": HUBSPOT_TOKEN}, "companies"


@contextmanager
def salesforce_vendor() -> Iterator[tuple[str, str, dict[str, str], str]]:
    """Salesforce with 2,500 Accounts (a hierarchy), 100 a queryMore batch."""
    with FakeSalesforce() as salesforce:
        salesforce.batch_size = 100
        for i in range(1, COMPANIES + 1):
            parent = i // 10 if i % 10 and i > 10 else None
            salesforce.add_account(i, ParentId=sfid("Account", parent) if parent else None)
        yield "salesforce", salesforce.url, {"access_token": SALESFORCE_TOKEN}, "accounts"


VENDORS = {"hubspot": hubspot_vendor, "salesforce": salesforce_vendor}


@pytest.mark.parametrize("vendor", sorted(VENDORS))
def test_a_worker_killed_mid_crm_sync_finishes_on_redelivery_without_duplicates(
    vendor, settings, tmp_path, monkeypatch
):
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    killed_org = create_organization(slug="killed", name="Killed")[0]
    reference_org = create_organization(slug="reference", name="Reference")[0]
    with VENDORS[vendor]() as (kind, url, credentials, object_name):

        def connect(org):
            connection = services.create_connection(org, kind=kind, name=kind, base_url=url, credentials=credentials)
            return connection.syncs.get(object_name=object_name)

        reference_run = services.start_run(connect(reference_org))
        assert execute_run(reference_run.pk, max_pages=10_000, sleep=lambda s: None) is True
        reference = _accounts(reference_org)
        assert len(reference) == COMPANIES
        assert sum(1 for _, _, parent in reference if parent) == sum(1 for i in range(11, COMPANIES + 1) if i % 10)

        with worker_process.own_queue(monkeypatch, f"retain-fault-sync-{vendor}") as queue:
            run = _killed_and_redelivered(connect(killed_org), queue, tmp_path)

    finished = SyncRun.all_orgs.get(pk=run.pk)
    assert finished.status == JobStatus.SUCCEEDED, finished.error
    # The same accounts, names and hierarchy as the undisturbed sync: nothing lost, nothing twice.
    assert _accounts(killed_org) == reference
    assert (finished.created, finished.failed) == (COMPANIES, 0)


def _killed_and_redelivered(sync, queue: str, tmp_path) -> SyncRun:
    """Start the sync on a worker, SIGKILL it after two committed pages, start a new worker, wait for the end."""
    log = tmp_path / "worker.log"
    env = {**REDELIVERY, "CELERY_TASK_DEFAULT_QUEUE": queue, "OUTBOUND_ALLOWED_NETWORKS": "127.0.0.0/8"}
    killed_org = sync.organization
    worker = None
    started = time.monotonic()
    try:
        worker = worker_process.start_worker(queue, log, **env)
        run = services.start_run(sync)  # queued on commit, to the test's own queue
        paging = SyncRun.all_orgs.filter(pk=run.pk, status=JobStatus.RUNNING, pages__gte=2)
        worker_process.wait(paging.exists, 60, "the sync to commit its second page", log)
        worker_process.kill(worker)
        killed = SyncRun.all_orgs.get(pk=run.pk)
        assert killed.status == JobStatus.RUNNING, "the sync finished before the kill"
        assert 0 < Account.all_orgs.filter(organization=killed_org).count() < COMPANIES
        killed_at = time.monotonic() - started

        # --- a new worker: the broker redelivers the killed worker's message by itself ------------------
        worker = worker_process.start_worker(queue, log, **env)
        done = SyncRun.all_orgs.filter(pk=run.pk, status__in=[JobStatus.SUCCEEDED, JobStatus.FAILED])
        worker_process.wait(done.exists, 120, "the redelivered sync to finish", log)
        print(f"\nkilled after {killed_at:.1f}s; redelivered and done after {time.monotonic() - started:.1f}s")
    finally:
        worker_process.stop(worker)
        worker_process.end_other_backends()
        worker_process.forget_messages(queue)
    return run
