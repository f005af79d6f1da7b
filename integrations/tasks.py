"""Thin Celery tasks of the integrations app: they take ids, call ``integrations.sync`` and requeue.

- ``run_sync(organization_id, run_id)``: applies a few pages of the run (``sync.PAGES_PER_TASK``), then
  queues itself again until the run is over. It holds one of the organization's outbound slots
  (``cs_platform.outbound.org_slot``) while it runs; when the organization's slots are all taken it
  is queued again a moment later instead of waiting, so one organization's big sync never starves
  another's. Safe to retry: the run resumes from its stored cursor (acks_late; a killed worker's
  message is redelivered).
- ``queue_due_syncs()``: the beat entry (every minute) that starts the scheduled runs.
"""

from __future__ import annotations

import random

from cs_platform.outbound import org_slot
from cs_platform.tasks import org_task, sweep_task

from . import services, sync
from .choices import RunMode
from .models import SyncRun

BUSY_RETRY_SECONDS = 5.0


@org_task(name="integrations.tasks.run_sync", max_retries=5)
def run_sync(organization_id: int, run_id: int) -> None:
    run = SyncRun.all_orgs.get(pk=run_id, organization_id=organization_id)
    with org_slot(organization_id) as token:
        if token is None:
            services.queue_run(run, countdown=BUSY_RETRY_SECONDS + random.uniform(0, 2))
            return
        finished = sync.execute_run(run_id)
    if not finished:
        services.queue_run(run)


@sweep_task("beat: queue_due_syncs over every organization", name="integrations.tasks.queue_due_syncs")
def queue_due_syncs() -> int:
    """Beat entry (every minute): start the scheduled runs of every organization (services.queue_due_syncs)."""
    return services.queue_due_syncs()


# --- Email to the timeline -------------------------------------------------------------------------------


@org_task(name="integrations.tasks.process_inbound_email", max_retries=5)
def process_inbound_email(organization_id: int, inbound_id: int) -> str:
    """One stored message → an email activity, the unmatched inbox, a duplicate or a skip (idempotent)."""
    from .email_capture import process_inbound

    return process_inbound(organization_id, inbound_id)


@org_task(name="integrations.tasks.poll_capture_mailbox", max_retries=2)
def poll_capture_mailbox(organization_id: int) -> int:
    """Fetch the unseen messages of one organization's capture mailbox (IMAP)."""
    from .email_capture import poll_mailbox

    return poll_mailbox(organization_id)


@sweep_task("beat: poll every organization's capture mailbox", name="integrations.tasks.poll_all_capture_mailboxes")
def poll_all_capture_mailboxes() -> int:
    """Beat entry: one ``poll_capture_mailbox`` per organization with an enabled capture and a mailbox."""
    from .models import EmailCapture

    org_ids = list(
        EmailCapture.all_orgs.filter(enabled=True, mailbox__isnull=False, mailbox__paused=False)
        .values_list("organization_id", flat=True)
        .order_by("organization_id")
    )
    for org_id in org_ids:
        poll_capture_mailbox.delay(org_id)
    return len(org_ids)


@sweep_task(
    "beat: queue again the stored messages still unprocessed", name="integrations.tasks.requeue_unprocessed_emails"
)
def requeue_unprocessed_emails() -> int:
    """Beat entry (every minute): ``email_capture.requeue_unprocessed`` (nothing accepted is lost when the
    broker was down as a message was stored)."""
    from .email_capture import requeue_unprocessed

    return requeue_unprocessed()


@org_task(name="integrations.tasks.push_salesforce_accounts", max_retries=3)
def push_salesforce_accounts(organization_id: int, connection_id: int) -> None:
    """Deprecated alias, kept only so that messages queued before the push paths were folded together (the
    old ``sync._queue_push`` sent this name for Salesforce) are not lost: it starts the ``mode=push`` run of
    the connection's accounts sync, which ``run_sync`` executes like every push. Nothing queues this name
    any more; remove it one release after the deploy."""
    from .models import ObjectSync

    sync = (
        ObjectSync.all_orgs.select_related("connection")
        .filter(organization_id=organization_id, connection_id=connection_id, object_name="accounts")
        .first()
    )
    if sync is None:
        return
    try:
        services.start_run(sync, mode=RunMode.PUSH)
    except services.RunRefused:
        pass  # paused, no credentials, or a run is open (a sync in both directions queues its own push)
