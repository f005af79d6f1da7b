"""Model signals that emit webhook events.

``account.created`` / ``account.updated`` fire on every ``Account.save()`` (API, pages, admin,
services). Set-based writes do not send ``post_save``, so CSV imports (``bulk_create``/COPY) and
the ARR refresh (``bulk_update`` of derived figures) emit no per-row webhooks: an import of
50,000 accounts must not become 50,000 HTTP calls, and derived ARR figures are not an edit.
"""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_save

from accounts.models import Account

from .models import EventType
from .services import emit


def account_data(account: Account) -> dict[str, Any]:
    """The ``data`` object of ``account.*`` events (ids and fields, no related rows fetched)."""
    return {
        "id": account.pk,
        "external_id": account.external_id,
        "name": account.name,
        "domain": account.domain,
        "industry": account.industry,
        "region": account.region,
        "parent": account.parent_id,
        "owner": account.owner_id,
        "lifecycle_stage": account.lifecycle_stage,
        "touch_model": account.touch_model,
        "tags": account.tags,
        "arr": account.arr,
        "customer_since": account.customer_since,
        "churned_at": account.churned_at,
    }


def account_saved(sender: type[Account], instance: Account, created: bool, raw: bool = False, **kwargs: Any) -> None:
    if raw:  # loaddata: not a change anyone made now
        return
    event = EventType.ACCOUNT_CREATED if created else EventType.ACCOUNT_UPDATED
    emit(instance.organization_id, event, account_data(instance))


def connect() -> None:
    post_save.connect(account_saved, sender=Account, dispatch_uid="playbooks.account_saved")
