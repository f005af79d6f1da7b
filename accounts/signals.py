"""Keep each account's current ARR in step with contract changes (see services.mark_arr_dirty), and give a
user who signs in for the first time a landing organization."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from .models import Contract, ContractLine
from .services import mark_arr_dirty, settle_landing_organization


@receiver([post_save, post_delete], sender=ContractLine)
@receiver([post_save, post_delete], sender=Contract)
def contract_changed(sender: type, instance: Contract | ContractLine, **kwargs: Any) -> None:
    if isinstance(instance, ContractLine):
        account_id = Contract.all_orgs.filter(pk=instance.contract_id).values_list("account_id", flat=True).first()
    else:
        account_id = instance.account_id
    mark_arr_dirty(instance.organization_id, account_id)


@receiver(user_logged_in)
def signed_in(sender: type, request: Any, user: Any, **kwargs: Any) -> None:
    # Settled at sign-in, so that opening that organization's pages afterwards writes nothing.
    settle_landing_organization(user)
