"""The integrations API: credentials never answered, test and run actions admin-only, mapping validated
by path, sync runs with their per-record errors."""

from __future__ import annotations

import json

import pytest

from integrations import services
from integrations.models import Connection, ObjectSync, SyncRecordError, SyncRun

from .fake_hubspot import TOKEN, FakeHubSpot

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("loopback_allowed"),
]
API = "/api/v1"


@pytest.fixture
def hubspot():
    with FakeHubSpot() as fake:
        yield fake


def test_credentials_are_write_only_and_never_answered(org, api, hubspot):
    admin = api(org, "admin")
    created = admin.post(
        f"{API}/integrations/",
        {"kind": "hubspot", "name": "HubSpot", "base_url": hubspot.url, "credentials": {"access_token": TOKEN}},
        format="json",
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["has_credentials"] is True and body["credential_keys"] == ["access_token"]
    assert [s["object_name"] for s in body["syncs"]] == ["companies", "contacts", "deals"]
    pk = body["id"]
    answers = [
        created,
        admin.get(f"{API}/integrations/"),
        admin.get(f"{API}/integrations/{pk}/"),
        admin.get(f"{API}/integrations/?format=csv"),
        admin.patch(f"{API}/integrations/{pk}/", {"name": "HubSpot EU"}, format="json"),
        admin.post(f"{API}/integrations/{pk}/test/"),
        admin.get(f"{API}/integration-syncs/"),
    ]
    for response in answers:
        assert response.status_code in (200, 201)
        content = b"".join(response.streaming_content) if response.streaming else response.content
        assert TOKEN.encode() not in content and b'access_token":' not in content
    tested = answers[5].json()
    assert tested == {"ok": True, "message": "Connected: HubSpot answered the companies API (portal 4512345)."}
    # Replaced, never shown: a new token replaces the old one whole.
    admin.patch(f"{API}/integrations/{pk}/", {"credentials": {"access_token": "pat-new"}}, format="json")
    assert Connection.objects.for_org(org).get(pk=pk).credentials == {"access_token": "pat-new"}
    refused = admin.patch(f"{API}/integrations/{pk}/", {"credentials": {"password": "x"}}, format="json")
    assert refused.status_code == 400 and "credentials" in refused.json()["errors"]


def test_internal_base_url_is_refused_at_the_door(org, api, settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = []
    response = api(org, "admin").post(
        f"{API}/integrations/", {"kind": "hubspot", "name": "X", "base_url": "http://169.254.169.254/"}, format="json"
    )
    assert response.status_code == 400 and "base_url" in response.json()["errors"]


def test_mapping_errors_are_reported_by_path(org, api):
    connection = services.create_connection(org, kind="hubspot", name="HS", credentials={"access_token": "t"})
    sync = connection.syncs.get(object_name="companies")
    bad = {"fields": [{"target": "name", "source": "properties.name"}, {"target": "nope", "source": ""},
                      {"target": "employees", "source": "properties.n", "transform": "roman"}]}  # fmt: skip
    response = api(org, "admin").patch(f"{API}/integration-syncs/{sync.pk}/", {"mapping": bad}, format="json")
    assert response.status_code == 400
    messages = response.json()["errors"]["mapping"]
    assert any(m.startswith("fields[1].source:") for m in messages)
    assert any(m.startswith("fields[2].transform: unknown transform") for m in messages)
    good = {"fields": [{"target": "name", "source": "properties.name"},
                       {"target": "lifecycle_stage", "source": "properties.lifecyclestage",
                        "transform": {"map": {"customer": "adoption"}, "default": ""}, "wins": "retain"}]}  # fmt: skip
    ok = api(org, "admin").patch(f"{API}/integration-syncs/{sync.pk}/", {"mapping": good}, format="json")
    assert ok.status_code == 200 and ok.json()["mapping"] == good
    assert ok.json()["default_mapping"]["fields"][0]["target"] == "name"


@pytest.mark.parametrize("role", ["leader", "csm", "viewer"])
def test_only_admins_test_and_run(org, api, role, make_member):
    user = make_member(org, role).user
    connection = services.create_connection(org, kind="hubspot", name="HS", credentials={"access_token": "t"})
    sync = connection.syncs.get(object_name="companies")
    client = api(org, role, user)
    assert client.get(f"{API}/integrations/{connection.pk}/").status_code == 200
    assert client.post(f"{API}/integrations/{connection.pk}/test/").status_code == 403
    assert client.post(f"{API}/integration-syncs/{sync.pk}/run/", {"mode": "dry_run"}, format="json").status_code == 403
    assert not SyncRun.all_orgs.exists()


def test_run_queues_one_run_and_sync_runs_list_its_errors(org, api, django_capture_on_commit_callbacks):
    connection = services.create_connection(org, kind="hubspot", name="HS", credentials={"access_token": "t"})
    sync = connection.syncs.get(object_name="companies")
    admin = api(org, "admin")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        started = admin.post(f"{API}/integration-syncs/{sync.pk}/run/", {"mode": "dry_run"}, format="json")
    assert started.status_code == 202, started.json()
    assert started.json()["mode"] == "dry_run" and started.json()["status"] == "queued"
    assert len(callbacks) == 1
    again = admin.post(f"{API}/integration-syncs/{sync.pk}/run/", {"mode": "sync"}, format="json")
    assert again.status_code == 409 and "already" in again.json()["detail"]
    run = SyncRun.objects.for_org(org).get()
    SyncRecordError.all_orgs.create(organization=org, run=run, object_name="companies", external_id="42",
                                    field="employees", reason="'lots' is not a whole number")  # fmt: skip
    listed = admin.get(f"{API}/sync-runs/", {"sync": sync.pk}).json()["results"]
    assert listed[0]["record_errors"][0]["external_id"] == "42"
    assert ObjectSync.objects.for_org(org).get(pk=sync.pk).cursor == {}
    assert json.dumps(listed).find("access_token") == -1


def test_run_accepts_push_only_for_a_sync_that_pushes(org, api, django_capture_on_commit_callbacks):
    connection = services.create_connection(org, kind="hubspot", name="HS", credentials={"access_token": "t"})
    companies = connection.syncs.get(object_name="companies")
    admin = api(org, "admin")
    url = f"{API}/integration-syncs/{companies.pk}/run/"
    refused = admin.post(url, {"mode": "push"}, format="json")  # direction pull
    assert refused.status_code == 400 and "push or both" in refused.json()["errors"]["mode"][0]
    assert not SyncRun.all_orgs.exists()
    # contacts cannot push at all: the direction is refused at the door, and so is a push.
    contacts = connection.syncs.get(object_name="contacts")
    bad = admin.patch(f"{API}/integration-syncs/{contacts.pk}/", {"direction": "both"}, format="json")
    assert bad.status_code == 400 and "pull only" in bad.json()["errors"]["direction"][0]
    ObjectSync.all_orgs.filter(pk=contacts.pk).update(direction="both")
    nope = admin.post(f"{API}/integration-syncs/{contacts.pk}/run/", {"mode": "push"}, format="json")
    assert nope.status_code == 400 and "does not push contacts" in nope.json()["errors"]["mode"][0]

    ok = admin.patch(f"{API}/integration-syncs/{companies.pk}/", {"direction": "both"}, format="json")
    assert ok.status_code == 200 and ok.json()["direction"] == "both"
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        started = admin.post(url, {"mode": "push"}, format="json")
    assert started.status_code == 202, started.json()
    assert (started.json()["mode"], started.json()["status"]) == ("push", "queued") and len(callbacks) == 1
    assert admin.post(url, {"mode": "push"}, format="json").status_code == 409  # one open run per sync
    assert admin.post(url, {"mode": "pull"}, format="json").status_code == 400  # not a mode


@pytest.mark.parametrize("role", ["leader", "csm", "viewer"])
def test_only_admins_push(org, api, role, make_member):
    connection = services.create_connection(org, kind="hubspot", name="HS", credentials={"access_token": "t"})
    sync = connection.syncs.get(object_name="companies")
    ObjectSync.all_orgs.filter(pk=sync.pk).update(direction="push")
    client = api(org, role, make_member(org, role).user)
    assert client.post(f"{API}/integration-syncs/{sync.pk}/run/", {"mode": "push"}, format="json").status_code == 403
    assert client.patch(f"{API}/integration-syncs/{sync.pk}/", {"direction": "pull"}, format="json").status_code == 403
    assert not SyncRun.all_orgs.exists()


def test_another_organizations_sync_cannot_be_pushed(org, other_org, api):
    theirs = services.create_connection(other_org, kind="hubspot", name="HS", credentials={"access_token": "t"})
    sync = theirs.syncs.get(object_name="companies")
    ObjectSync.all_orgs.filter(pk=sync.pk).update(direction="both")
    response = api(org, "admin").post(f"{API}/integration-syncs/{sync.pk}/run/", {"mode": "push"}, format="json")
    assert response.status_code == 404
    assert not SyncRun.all_orgs.exists()


# The run action's query budget: the key and membership, the sync, the open-run check and lock, the run
# insert, (the first push of a push-only object) putting it on its schedule, and the answer's error and
# deletion lists — none of it grows with the organization's accounts or syncs (the push runs in the task).
RUN_PUSH_QUERIES = 11


def test_push_run_request_stays_within_its_query_budget(org, api, django_capture_on_commit_callbacks):
    from django.db import connection as db
    from django.test.utils import CaptureQueriesContext

    from .factories import AccountFactory

    admin = api(org, "admin")
    for n in (1, 40):
        conn = services.create_connection(org, kind="hubspot", name=f"HS{n}", credentials={"access_token": "t"})
        sync = conn.syncs.get(object_name="companies")
        ObjectSync.all_orgs.filter(pk=sync.pk).update(direction="push")
        AccountFactory.create_batch(n, organization=org)
        admin.get(f"{API}/integration-syncs/")  # warm-up: the key's last_used_at write happens once
        with CaptureQueriesContext(db) as ctx, django_capture_on_commit_callbacks(execute=False):
            response = admin.post(f"{API}/integration-syncs/{sync.pk}/run/", {"mode": "push"}, format="json")
        assert response.status_code == 202, response.json()
        assert len(ctx.captured_queries) == RUN_PUSH_QUERIES, "\n".join(q["sql"] for q in ctx.captured_queries)
