"""Admin services for the CTA catalogue (issue 12 §5, Admin): add, rename, deactivate and reactivate CTA types
and their reasons. Nothing is ever deleted: CTAs point at their type and reason (``PROTECT``), and the log
must keep reading. Built-in types can be renamed but not deactivated, since the default playbooks and the API
name them."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils.text import slugify

from accounts.models import Organization

from .models import CtaReason, CtaType
from .models_engine import Playbook

__all__ = ["CatalogueInUse", "add_cta_reason", "add_cta_type", "active_playbooks_using", "clean_label", "rename",
           "set_active"]  # fmt: skip


class CatalogueInUse(ValidationError):
    """Deactivating a CTA type or reason that an active playbook opens (the API answers ``409``)."""

    def __init__(self, item: CtaType | CtaReason, playbooks: list[str]) -> None:
        what = "type" if isinstance(item, CtaType) else "reason"
        super().__init__(
            f"The active playbook(s) {', '.join(playbooks)} open CTAs of this {what}: deactivate or change them first."
        )
        self.playbooks = playbooks


def active_playbooks_using(item: CtaType | CtaReason) -> list[str]:
    """The names of the organization's active playbooks whose ``open_cta`` action names ``item``."""
    if isinstance(item, CtaType):
        type_key, reason_key = item.key, None
    else:
        type_key, reason_key = item.type.key, item.key
    return [
        p.name
        for p in Playbook.objects.for_org(item.organization_id).filter(active=True).order_by("name")
        if any(isinstance(a, dict) and a.get("kind") == "open_cta" and a.get("type") == type_key
               and (reason_key is None or a.get("reason") == reason_key) for a in p.actions or [])
    ]  # fmt: skip


def clean_label(label: str) -> str:
    """A label with its whitespace collapsed; a ValidationError on ``label`` when empty or too long."""
    return _label(label)


def _label(label: str) -> str:
    label = " ".join((label or "").split())
    if not label:
        raise ValidationError({"label": "Give it a name."})
    if len(label) > 80:
        raise ValidationError({"label": "At most 80 characters."})
    return label


def _unique_key(label: str, taken: set[str], max_length: int) -> str:
    base = slugify(label).replace("-", "_")[: max_length - 4] or "custom"
    key, n = base, 2
    while key in taken:
        key, n = f"{base}_{n}", n + 1
    return key


@transaction.atomic
def add_cta_type(organization: Organization | int, label: str) -> CtaType:
    """A new (not built-in) CTA type; its key is derived from the label and never changes."""
    label = _label(label)
    types = CtaType.objects.for_org(organization)
    if types.filter(label__iexact=label).exists():
        raise ValidationError({"label": f"A type “{label}” exists already."})
    key = _unique_key(label, set(types.values_list("key", flat=True)), 40)
    position = (types.aggregate(m=Max("position"))["m"] or 0) + 1
    org_id = organization if isinstance(organization, int) else organization.pk
    return CtaType.objects.for_org(org_id).create(organization_id=org_id, key=key, label=label, position=position)


@transaction.atomic
def add_cta_reason(cta_type: CtaType, label: str) -> CtaReason:
    """A new reason of ``cta_type``; its key is derived from the label and never changes."""
    label = _label(label)
    reasons = CtaReason.objects.for_org(cta_type.organization_id).filter(type=cta_type)
    if reasons.filter(label__iexact=label).exists():
        raise ValidationError({"label": f"“{cta_type.label}” has a reason “{label}” already."})
    key = _unique_key(label, set(reasons.values_list("key", flat=True)), 60)
    position = (reasons.aggregate(m=Max("position"))["m"] or 0) + 1
    return CtaReason.objects.for_org(cta_type.organization_id).create(
        organization_id=cta_type.organization_id, type=cta_type, key=key, label=label, position=position
    )


def rename(item: CtaType | CtaReason, label: str) -> CtaType | CtaReason:
    """Change what users read; the key (used by playbooks and the API) stays."""
    item.label = _label(label)
    item.save(update_fields=["label"])
    return item


def set_active(item: CtaType | CtaReason, active: bool) -> CtaType | CtaReason:
    """Deactivate (hidden from new CTAs and filters; open CTAs stay) or reactivate a type or a reason. One that
    an active playbook opens cannot be deactivated (:class:`CatalogueInUse`)."""
    if isinstance(item, CtaType) and item.is_builtin and not active:
        raise ValidationError("Built-in types cannot be deactivated: default playbooks use them. Rename it instead.")
    if not active and item.is_active and (users := active_playbooks_using(item)):
        raise CatalogueInUse(item, users)
    item.is_active = active
    item.save(update_fields=["is_active"])
    return item
