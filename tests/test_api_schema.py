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
