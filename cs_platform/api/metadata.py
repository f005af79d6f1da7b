"""``OPTIONS`` of the org-scoped API: DRF's description of the writable fields, safe on every route."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions
from rest_framework.metadata import SimpleMetadata
from rest_framework.request import clone_request


class OrgMetadata(SimpleMetadata):
    """DRF looks the object up to describe ``PUT``; on a route that names no object (the upsert route
    ``…/external/<value>/``) that lookup is a programming error and ``OPTIONS`` answered 500. There the
    body is described after the permission check alone."""

    def determine_actions(self, request: Any, view: Any) -> dict[str, Any]:
        lookup = getattr(view, "lookup_url_kwarg", None) or getattr(view, "lookup_field", None)
        if lookup in getattr(view, "kwargs", {}):
            return super().determine_actions(request, view)
        actions = {}
        for method in sorted({"PUT", "POST"} & set(view.allowed_methods)):
            view.request = clone_request(request, method)
            try:
                view.check_permissions(view.request)
            except (exceptions.APIException, PermissionDenied, Http404):
                continue
            finally:
                view.request = request
            actions[method] = self.get_serializer_info(view.get_serializer())
        return actions
