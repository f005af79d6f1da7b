"""The base API machinery: protected methods, error flattening."""

from __future__ import annotations

import pytest

from accounts.models import Account
from cs_platform.api.exceptions import flatten_errors
from cs_platform.api.viewsets import OrgAPIView, OrgScopedViewSet


@pytest.mark.parametrize("method", ["get_queryset", "get_object", "get_permissions", "initial"])
def test_scoping_methods_cannot_be_overridden(method):
    with pytest.raises(TypeError, match="protected"):
        type("Sneaky", (OrgScopedViewSet,), {"queryset": Account.all_orgs.all(), method: lambda self: None})


def test_org_api_view_resolution_cannot_be_skipped():
    with pytest.raises(TypeError, match="protected"):
        type("Sneaky", (OrgAPIView,), {"initial": lambda self, request: None})


def test_nested_errors_are_flattened_to_dotted_paths():
    lines = [{}, {"product": ["Bad."], "discount": ["Too big."]}]
    errors = {"name": ["Required."], "lines": lines, "roles": {0: ["x"]}}
    assert flatten_errors(errors) == {
        "name": ["Required."],
        "lines.1.product": ["Bad."],
        "lines.1.discount": ["Too big."],
        "roles.0": ["x"],
    }
    assert flatten_errors(["Whole object is wrong."]) == {"non_field_errors": ["Whole object is wrong."]}
