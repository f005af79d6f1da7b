"""docs/openapi-inbound.yaml (the OpenAPI of the endpoints outside /api/: event ingestion and inbound
webhooks, fuzzed by scripts/api_fuzz.py) matches the URLconf: every documented path resolves to its view,
and every ingestion and hook route is documented."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from django.urls import resolve

from health import inbound, ingest
from health.inbound_urls import hook_urlpatterns
from health.ingest_urls import urlpatterns as ingest_urlpatterns
from integrations import webhooks
from integrations.hook_urls import hook_urlpatterns as connector_hook_urlpatterns

DOCUMENT = Path(__file__).resolve().parent.parent / "docs" / "openapi-inbound.yaml"
VIEWS = {
    "/v1/batch": ingest.batch,
    "/v1/track": ingest.track,
    "/v1/identify": ingest.identify,
    "/v1/group": ingest.group,
    "/hooks/{org_slug}/tracker/": inbound.tracker,
    "/hooks/{org_slug}/helpdesk/": inbound.helpdesk,
    "/hooks/{org_slug}/stripe/": webhooks.stripe_hook,
}


def document() -> dict:
    return yaml.safe_load(DOCUMENT.read_text())


def test_every_documented_path_resolves_to_its_view():
    paths = document()["paths"]
    assert set(paths) == set(VIEWS)
    for path, view in VIEWS.items():
        match = resolve(path.replace("{org_slug}", "demo"))
        assert match.func is view, path
        assert list(paths[path]) == ["post"]  # every one is POST only (others: 405)


def test_every_ingestion_and_hook_route_is_documented():
    documented = set(document()["paths"])
    routes = {f"/v1/{p.pattern}" for p in ingest_urlpatterns if p.name != "not-found"}
    for pattern in [*hook_urlpatterns, *connector_hook_urlpatterns]:
        routes.add("/hooks/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", str(pattern.pattern)))
    assert routes == documented


def test_the_document_is_valid_openapi_for_schemathesis():
    import schemathesis

    schema = schemathesis.openapi.from_dict(document())
    operations = {f"{op.ok().method.upper()} {op.ok().path}" for op in schema.get_all_operations()}
    assert operations == {f"POST {path}" for path in VIEWS}
