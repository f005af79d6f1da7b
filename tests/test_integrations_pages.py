"""Admin → Connectors pages: connect, test, mapping errors by path, dry run / run, history, roles."""

from __future__ import annotations

import pytest
from django.urls import reverse

from integrations.models import Connection, ObjectSync, SyncRun
from integrations.sync import execute_run

from .fake_hubspot import TOKEN, FakeHubSpot

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("loopback_allowed"),
]


def test_connect_test_dry_run_and_sync_from_the_page(client, org, alice, django_capture_on_commit_callbacks):
    client.force_login(alice)
    url = reverse("admin-connectors", args=[org.slug])
    with FakeHubSpot() as hubspot:
        for i in range(1, 6):
            hubspot.add_company(f"{i:04d}")
        hubspot.add_company("0006", numberofemployees="lots")
        response = client.post(url, {"kind": "hubspot", "name": "HubSpot", "base_url": hubspot.url,
                                     "cred_access_token": TOKEN})  # fmt: skip
        assert response.status_code == 302
        connection = Connection.objects.for_org(org).get()
        page = client.get(url).content.decode()
        assert TOKEN not in page and "access_token set (never shown)" in page
        action = reverse("admin-connection-action", args=[org.slug, connection.pk])
        tested = client.post(action, {"action": "test"}, follow=True).content.decode()
        assert "Connected: HubSpot answered" in tested
        sync = ObjectSync.objects.for_org(org).get(object_name="companies")
        sync_action = reverse("admin-connector-sync-action", args=[org.slug, sync.pk])
        with django_capture_on_commit_callbacks(execute=False):
            client.post(sync_action, {"action": "dry_run"})
        run = SyncRun.objects.for_org(org).get()
        assert run.mode == "dry_run"
        execute_run(run.pk, sleep=lambda s: None)
        detail = client.get(reverse("admin-connector-sync", args=[org.slug, sync.pk])).content.decode()
        assert "Dry run" in detail and "is not a whole number" in detail and "0006" in detail
        with django_capture_on_commit_callbacks(execute=False):
            client.post(sync_action, {"action": "run"})
        run = SyncRun.objects.for_org(org).filter(mode="sync").get()
        execute_run(run.pk, sleep=lambda s: None)
        run.refresh_from_db()
        assert (run.created, run.failed) == (5, 1)


def test_mapping_editor_reports_errors_by_path_and_keeps_the_text(client, org, alice):
    from integrations.services import create_connection

    sync = create_connection(org, kind="hubspot", name="HS", credentials={"access_token": "t"}).syncs.get(
        object_name="companies"
    )
    client.force_login(alice)
    url = reverse("admin-connector-sync", args=[org.slug, sync.pk])
    page = client.get(url).content.decode()
    assert "properties.numberofemployees" in page  # the defaults are shown
    bad = '{"fields": [{"target": "employees", "source": "properties.x", "transform": "roman"}]}'
    response = client.post(url, {"mapping": bad, "interval_minutes": "60"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "fields[0].transform" in html and "unknown transform" in html and "roman" in html
    broken = client.post(url, {"mapping": "{not json", "interval_minutes": "60"})
    assert broken.status_code == 400 and "not valid JSON" in broken.content.decode()
    good = '{"fields": [{"target": "name", "source": "properties.name"}]}'
    assert client.post(url, {"mapping": good, "interval_minutes": "30"}).status_code == 302
    sync.refresh_from_db()
    assert sync.mapping == {"fields": [{"target": "name", "source": "properties.name"}]} and sync.interval_minutes == 30


@pytest.mark.parametrize("role", ["leader", "csm", "viewer"])
def test_only_admins_open_the_pages(client, org, make_member, role):
    client.force_login(make_member(org, role).user)
    assert client.get(reverse("admin-connectors", args=[org.slug])).status_code == 403


def test_another_organizations_sync_is_a_404(client, org, other_org, alice):
    from integrations.services import create_connection

    theirs = create_connection(other_org, kind="hubspot", name="HS", credentials={"access_token": "t"}).syncs.get(
        object_name="companies"
    )
    client.force_login(alice)
    assert client.get(reverse("admin-connector-sync", args=[org.slug, theirs.pk])).status_code == 404
    action = reverse("admin-connector-sync-action", args=[org.slug, theirs.pk])
    assert client.post(action, {"action": "run"}).status_code == 404
    assert not SyncRun.all_orgs.exists()


def test_push_now_appears_for_a_sync_that_pushes_and_queues_a_push(
    client, org, alice, django_capture_on_commit_callbacks
):
    from integrations.services import create_connection

    connection = create_connection(org, kind="hubspot", name="HS", credentials={"access_token": "t"})
    companies = connection.syncs.get(object_name="companies")
    client.force_login(alice)
    url = reverse("admin-connectors", args=[org.slug])
    assert "Push now" not in client.get(url).content.decode()  # every sync only pulls
    action = reverse("admin-connector-sync-action", args=[org.slug, companies.pk])
    refused = client.post(action, {"action": "push", "back": "connectors"}, follow=True).content.decode()
    assert "set its direction to push or both" in refused and not SyncRun.all_orgs.exists()

    ObjectSync.all_orgs.filter(pk=companies.pk).update(direction="both")
    page = client.get(url).content.decode()
    assert page.count('data-testid="push-') == 1 and f'data-testid="push-{companies.pk}"' in page
    assert "Push now" in client.get(reverse("admin-connector-sync", args=[org.slug, companies.pk])).content.decode()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(action, {"action": "push", "back": "connectors"})
    assert response.status_code == 302 and response.url == url and len(callbacks) == 1
    run = SyncRun.objects.for_org(org).get()
    assert (run.mode, run.status, run.sync_id) == ("push", "queued", companies.pk)
