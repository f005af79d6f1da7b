"""Template context of the work queue: the notification bell's unread count, on every page of an organization."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from .ctas import unread_count


def notifications(request: HttpRequest) -> dict[str, Any]:
    """``unread_notifications``: the signed-in member's unread count in the page's organization, read only if
    the template shows it (one indexed COUNT)."""
    org = getattr(request, "organization", None)
    if org is None or not request.user.is_authenticated:
        return {}
    return {"unread_notifications": SimpleLazyObject(lambda: unread_count(org, request.user))}
