"""The audit log of configuration and access changes (docs/admin-guide.md, "Audit log").

Call :func:`record_audit` inside the transaction of the change: the entry commits or rolls back
with it. Entries are read by admins (API ``/api/v1/audit-log/``, page Admin → Audit log) and
exported as CSV; the product never edits or deletes them.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

from .models import AuditEntry

__all__ = ["record_audit"]


def _label(user: Any) -> str:
    if user is None or not getattr(user, "pk", None):
        return ""
    return (user.get_full_name() or "").strip() or user.get_username()


def record_audit(
    organization_id: int,
    action: str,
    *,
    subject_type: str,
    subject_id: int | str,
    subject_label: str = "",
    actor: Any = None,
    note: str = "",
    changes: list[dict[str, Any]] | None = None,
    data: dict[str, Any] | None = None,
) -> AuditEntry:
    """Write one audit entry for ``organization_id`` (``actor`` a user, or ``None`` for the system).

    ``changes`` and ``data`` are stored as JSON (dates and decimals become strings).
    """

    def jsonable(value: Any) -> Any:
        return json.loads(json.dumps(value, cls=DjangoJSONEncoder))

    return AuditEntry.all_orgs.create(
        organization_id=organization_id,
        action=action[:64],
        subject_type=subject_type[:32],
        subject_id=str(subject_id)[:64],
        subject_label=(subject_label or "")[:200],
        actor=actor if getattr(actor, "pk", None) else None,
        actor_label=_label(actor)[:200],
        note=(note or "")[:300],
        changes=jsonable(changes or []),
        data=jsonable(data or {}),
    )
