"""OpenAPI schema and the docs page: generated without warnings, served from the app (no CDN)."""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_schema_generates_and_validates_without_warnings(tmp_path):
    # --fail-on-warn turns every drf-spectacular warning (an unresolvable field, a missing auth
    # extension, an untyped path parameter) into an error.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yml"))
    assert (tmp_path / "schema.yml").stat().st_size > 10_000


def test_schema_documents_resources_auth_and_errors(client):
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    schema = response.json()
    assert schema["components"]["securitySchemes"]["apiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schema["components"]["securitySchemes"]["apiKey"]["description"],
    }
    paths = schema["paths"]
    for resource in ("accounts", "contacts", "products", "contracts", "activities", "teams", "users"):
        assert f"/api/v1/{resource}/" in paths
        assert f"/api/v1/{resource}/{{id}}/" in paths
        assert paths[f"/api/v1/{resource}/"]["get"]["tags"] == [resource]
    for resource in ("accounts", "contacts", "products", "contracts"):
        upsert = paths[f"/api/v1/{resource}/external/{{external_value}}/"]["put"]
        assert {"200", "201", "400", "403"} <= set(upsert["responses"])
    for resource in ("activities", "teams", "users"):  # no external id: no upsert route
        assert f"/api/v1/{resource}/external/{{external_value}}/" not in paths
    assert "/api/v1/me/" in paths
    arr = paths["/api/v1/accounts/{id}/arr/"]["get"]
    assert any(p["name"] == "date" for p in arr["parameters"])
    listing = paths["/api/v1/accounts/"]["get"]
    params = {p["name"] for p in listing["parameters"]}
    assert {"q", "owner", "touch_model", "tag", "lifecycle_stage", "ordering", "page", "page_size"} <= params
    assert "X-Organization" in params
    assert listing["responses"]["400"]["content"]["application/json"]["schema"]["$ref"].endswith("/Error")


def test_swagger_ui_is_served_locally(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in assets
    assert not [url for url in assets if url.startswith(("http://", "https://", "//"))]
    for asset in assets:
        if asset.startswith("/static/"):
            served = client.get(asset)
            assert served.status_code == 200, asset
            assert b"".join(served.streaming_content if served.streaming else [served.content])


# --- the document tells the truth: one test per class of mismatch the fuzzer found -------------------


@pytest.fixture
def schema(client):
    return client.get("/api/schema/", {"format": "json"}).json()


def operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                yield path, method, operation


def test_every_operation_documents_the_errors_it_can_answer(schema):
    for path, method, operation in operations(schema):
        codes = set(operation["responses"])
        # Every operation resolves the organization first: a malformed header (400), a foreign one (404); and
        # any may lose the database or Redis for a moment (503, tests/test_api_unavailable.py).
        assert {"400", "401", "403", "404", "414", "429", "503"} <= codes, (method, path, codes)
        if method == "delete":
            assert "409" in codes, path  # deleting a row still in use
        if "requestBody" in operation:
            assert {"413", "415"} <= codes, (method, path)
        for code, response in operation["responses"].items():
            if code >= "400" and code != "414":  # errors are JSON, ``?format=csv`` or not
                assert list(response["content"]) == ["application/json"], (method, path, code)
    listing = schema["paths"]["/api/v1/accounts/"]["get"]["responses"]["404"]["description"]
    assert "page" in listing  # "Invalid page." past the last page
    metrics = schema["paths"]["/api/v1/metrics/retention/"]["get"]["responses"]
    assert metrics["400"]["content"]["application/json"]["schema"]["$ref"].endswith("/Error")


def test_x_organization_header_declares_what_it_accepts(schema):
    for path, _method, operation in operations(schema):
        (header,) = [p for p in operation["parameters"] if p["name"] == "X-Organization"]
        assert header["in"] == "header" and not header.get("required")
        assert header["schema"] == {"type": "string", "pattern": "^[-a-zA-Z0-9_]+$", "maxLength": 60}, path


def test_ordering_is_an_enum_of_the_allowed_fields(schema):
    from accounts.api.views import AccountViewSet

    listing = {p["name"]: p for p in schema["paths"]["/api/v1/accounts/"]["get"]["parameters"]}
    ordering = listing["ordering"]
    assert ordering["style"] == "form" and ordering["explode"] is False  # ordering=-arr,name
    expected = {f"{sign}{field}" for field in AccountViewSet.ordering_fields for sign in ("", "-")}
    assert set(ordering["schema"]["items"]["enum"]) == expected
    for path, _method, operation in operations(schema):
        for parameter in operation["parameters"]:
            if parameter["name"] == "ordering":
                assert parameter["schema"]["items"]["enum"], path


def test_filters_are_typed_as_their_form_fields_validate(schema):
    params = {
        path: {p["name"]: p["schema"] for p in schema["paths"][path]["get"]["parameters"]}
        for path in ("/api/v1/accounts/", "/api/v1/tickets/", "/api/v1/contracts/", "/api/v1/health-scores/")
    }
    accounts = params["/api/v1/accounts/"]
    assert accounts["parent"] == {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}
    assert accounts["segment"]["type"] == "integer"
    assert accounts["churned"] == {"type": "boolean"}
    assert accounts["renewal_after"] == {"type": "string", "format": "date"}
    assert accounts["touch_model"]["items"]["enum"] == ["high", "low", "tech"]
    assert accounts["owner"]["pattern"] == "^(me|[0-9]+)$"
    assert accounts["arr_min"] == {"type": "number", "maximum": 1e50}
    assert params["/api/v1/tickets/"]["account"]["type"] == "integer"
    assert params["/api/v1/tickets/"]["open"] == {"type": "boolean"}  # a method filter, no longer "string"
    assert set(params["/api/v1/tickets/"]["status"]["items"]["enum"]) == {"open", "pending", "solved", "closed"}
    assert params["/api/v1/contracts/"]["active_on"] == {"type": "string", "format": "date"}
    assert params["/api/v1/health-scores/"]["trend"]["enum"] == ["down", "flat", "up"]
    page_size = params["/api/v1/accounts/"]["page_size"]
    assert (page_size["minimum"], page_size["maximum"]) == (1, 500)
    for path, _method, operation in operations(schema):
        for parameter in operation["parameters"]:
            if parameter["in"] == "query":
                assert parameter["schema"].get("type"), (path, parameter["name"])
                # Sent empty, an optional value means "not sent" (``ordering=`` the default order); a repeated
                # parameter (``status=open&status=pending``) has no empty form.
                repeated = parameter["schema"]["type"] == "array" and parameter.get("explode", True)
                expected = not repeated and not parameter.get("required")
                assert parameter.get("allowEmptyValue", False) is expected, (path, parameter["name"])


def test_request_bodies_refuse_unknown_fields_and_say_so(schema, org, api):
    components = schema["components"]["schemas"]
    for name in ("AccountRequest", "PatchedAccountRequest", "ContractLineRequest", "RenewalCloseRequest"):
        assert components[name]["additionalProperties"] is False, name
    response = api(org).post("/api/v1/accounts/", {"name": "A", "nmae": "typo"}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == {"nmae": ["Unknown field."]}


def test_only_lists_page_and_filter(schema):
    history = schema["paths"]["/api/v1/renewals/{id}/history/"]["get"]
    assert history["responses"]["200"]["content"]["application/json"]["schema"]["type"] == "array"
    assert {p["name"] for p in history["parameters"]} == {"id", "format", "X-Organization"}
    deliveries = schema["paths"]["/api/v1/webhooks/{id}/deliveries/"]["get"]
    assert {p["name"] for p in deliveries["parameters"]} >= {"page", "page_size", "status", "event_type"}
    assert "is_active" not in {p["name"] for p in deliveries["parameters"]}  # the endpoints' filter, not its log
    body = deliveries["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert body.endswith("/PaginatedWebhookDeliveryList")
    chat = schema["paths"]["/api/v1/chat-channels/{id}/deliveries/"]["get"]
    assert {p["name"] for p in chat["parameters"]} >= {"page", "page_size", "status", "message_kind"}
    assert "is_active" not in {p["name"] for p in chat["parameters"]}
    ref = chat["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert ref.endswith("/PaginatedChatDeliveryList")


def test_the_chat_webhook_url_is_write_only_in_the_schema(schema):
    components = schema["components"]["schemas"]
    assert "webhook_url" not in components["ChatChannel"]["properties"]
    assert "webhook_url" in components["ChatChannelRequest"]["properties"]


def _model_path(model, attrs):
    """Whether a serializer field's source can be null, and whether it is a choice that may be blank."""
    from django.core.exceptions import FieldDoesNotExist

    nullable = blank_choice = False
    for index, attr in enumerate(attrs):
        try:
            field = model._meta.get_field(attr)
        except FieldDoesNotExist:
            return None  # a property or method: typed by hand
        nullable |= field.null
        if field.is_relation and index < len(attrs) - 1:
            model = field.related_model
        else:
            blank_choice = bool(field.choices) and field.blank
    return nullable, blank_choice


def test_read_only_fields_are_as_nullable_as_the_model_behind_them():
    """A read-only field whose source can be null (``parent.external_id`` with no parent, an unset
    ``created_by``) must say ``nullable``, and have no ``default``: DRF skips a defaulted field on a
    PATCH, so the response would lack a property the document requires."""
    import importlib
    import inspect

    from rest_framework import serializers

    offenders = []
    for module_name in ("accounts.api.serializers", "health.api.serializers", "playbooks.api.serializers",
                        "renewals.api.serializers"):  # fmt: skip
        module = importlib.import_module(module_name)
        for name, cls in vars(module).items():
            if not (inspect.isclass(cls) and issubclass(cls, serializers.ModelSerializer)):
                continue
            if cls.__module__ != module_name:  # imported base classes
                continue
            for field_name, field in cls(context={}).fields.items():
                skipped = (serializers.SerializerMethodField, serializers.BaseSerializer)
                if not field.read_only or isinstance(field, skipped):
                    continue
                found = _model_path(cls.Meta.model, field.source_attrs)
                if found is None:
                    continue
                nullable, blank_choice = found
                if nullable and not field.allow_null:
                    offenders.append(f"{name}.{field_name}: not nullable")
                if blank_choice and not getattr(field, "allow_blank", True):
                    offenders.append(f"{name}.{field_name}: blank choice not allowed")
                if len(field.source_attrs) > 1 and field.default is not serializers.empty:
                    offenders.append(f"{name}.{field_name}: a default drops it from PATCH responses")
    assert offenders == []


def test_patch_response_has_every_documented_field(org, api):
    client = api(org)
    account = client.post("/api/v1/accounts/", {"name": "Orphan"}, format="json").json()
    patched = client.patch(f"/api/v1/accounts/{account['id']}/", {"region": "EMEA"}, format="json")
    assert patched.status_code == 200
    assert patched.json()["parent_external_id"] is None
    assert set(patched.json()) == set(account)


def test_allow_header_lists_exactly_the_documented_methods(schema, org, api):
    from tests.factories import AccountFactory

    client = api(org)
    AccountFactory(organization=org)
    for path, item in schema["paths"].items():
        documented = {method.upper() for method in item if method in ("get", "post", "put", "patch", "delete")}
        url = path.replace("{id}", "1").replace("{external_value}", "x").replace("{link_id}", "1")
        url = re.sub(r"\{[a-z_]+\}", "1", url)  # nested resources: the parent's id, a version number
        allow = client.options(url)["Allow"]
        advertised = {method.strip() for method in allow.split(",")} - {"HEAD", "OPTIONS"}
        assert advertised == documented, (path, allow)
