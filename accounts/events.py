"""Domain events of the accounts app (docs/events.md), recorded through the core outbox.

``account.created`` / ``account.updated`` are recorded on every ``Account.save()`` (API, pages,
admin, services). Set-based writes do not send ``post_save``, so CSV imports (``bulk_create``/COPY)
and the ARR refresh (``bulk_update`` of derived figures) record no per-row events: an import of
50,000 accounts must not become 50,000 webhook calls, and derived ARR figures are not an edit.

``contact.departed`` is recorded when ``Contact.save()`` turns an existing, active contact inactive
(``is_active`` false or ``departed_at`` set): the API and the admin. The contacts CSV import writes
in bulk and records its departures itself, set-based, with the same payload (:func:`departed_data`;
see :class:`accounts.import_kinds.ContactKind`).

The handlers run inside the save's transaction (``OrgScopedModel.save`` wraps every save in
``transaction.atomic(savepoint=False)``), so the row and its event commit together, in autocommit too.

Connected in ``AccountsConfig.ready``; only the core (:mod:`cs_platform.events`) is imported.
"""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_save, pre_save

from cs_platform.events import record_event

from .choices import KEY_CONTACT_ROLES
from .models import Account, Contact

__all__ = ["account_data", "connect", "contact_data", "departed_data"]


def account_data(account: Account) -> dict[str, Any]:
    """The payload of ``account.*`` events (ids and fields, no related rows fetched)."""
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
    name = "account.created" if created else "account.updated"
    record_event(instance.organization_id, name, instance.pk, account_data(instance))


def _is_active(is_active: bool, departed_at: Any) -> bool:
    return bool(is_active) and departed_at is None


def contact_data(contact: Contact) -> dict[str, Any]:
    """The payload of ``contact.departed``."""
    account = Contact._meta.get_field("account").get_cached_value(contact, None)  # no query when loaded
    if account is None:
        external_id = Account.all_orgs.filter(pk=contact.account_id).values_list("external_id", flat=True).first()
    else:
        external_id = account.external_id
    return departed_data(contact, external_id)


def departed_data(contact: Contact, account_external_id: str | None) -> dict[str, Any]:
    """The payload of ``contact.departed`` when the account's external id is known already (the contacts
    import names it in every row): no query."""
    external_id = account_external_id
    roles = list(contact.roles or [])
    return {
        "id": contact.pk,
        "external_id": contact.external_id,
        "name": contact.name,
        "email": contact.email,
        "title": contact.title,
        "roles": roles,
        "key_role": any(role in KEY_CONTACT_ROLES for role in roles),
        "account": contact.account_id,
        "account_external_id": external_id,
        "departed_at": contact.departed_at,
    }


def contact_saving(sender: type[Contact], instance: Contact, raw: bool = False, **kwargs: Any) -> None:
    # Only a save that leaves the contact inactive can be a departure: read the stored state then only.
    instance._retain_was_active = False  # type: ignore[attr-defined]
    if raw or instance.pk is None or _is_active(instance.is_active, instance.departed_at):
        return
    stored = Contact.all_orgs.filter(pk=instance.pk).values_list("is_active", "departed_at").first()
    instance._retain_was_active = stored is not None and _is_active(*stored)  # type: ignore[attr-defined]


def contact_saved(sender: type[Contact], instance: Contact, created: bool, raw: bool = False, **kwargs: Any) -> None:
    if raw or created or not getattr(instance, "_retain_was_active", False):
        return
    instance._retain_was_active = False  # type: ignore[attr-defined]
    record_event(instance.organization_id, "contact.departed", instance.pk, contact_data(instance))


def connect() -> None:
    post_save.connect(account_saved, sender=Account, dispatch_uid="accounts.events.account_saved")
    pre_save.connect(contact_saving, sender=Contact, dispatch_uid="accounts.events.contact_saving")
    post_save.connect(contact_saved, sender=Contact, dispatch_uid="accounts.events.contact_saved")
