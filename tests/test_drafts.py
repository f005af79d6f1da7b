"""Configuration as drafts for segments and playbooks (issue 14 item 4): a draft changes nothing live, publishing
applies it and is audited with the diff, rolling back restores the previous content as a new version, only drafts
change (409 otherwise), and another organization's versions are out of reach."""

from __future__ import annotations

from decimal import Decimal

import pytest

from accounts import segment_drafts
from accounts.models import Account, Segment, SegmentMembership, SegmentVersion
from accounts.segment_membership import refresh_memberships
from cs_platform.models import AuditEntry
from playbooks import drafts as playbook_drafts
from playbooks import engine
from playbooks.models import Playbook, PlaybookVersion

from .factories import AccountFactory

pytestmark = pytest.mark.django_db

BIG = {"match": "all", "conditions": [{"field": "arr", "op": "gte", "value": "100000"}]}
SMALLER = {"match": "all", "conditions": [{"field": "arr", "op": "gte", "value": "50000"}]}
ACTIONS = [{"kind": "open_cta", "type": "risk", "reason": "health_red"}]


def with_arr(org, arr: str, **kwargs) -> Account:
    account = AccountFactory(organization=org, **kwargs)
    Account.all_orgs.filter(pk=account.pk).update(arr=Decimal(arr))
    return account


def members(segment: Segment) -> set[int]:
    return set(SegmentMembership.all_orgs.filter(segment=segment).values_list("account_id", flat=True))


@pytest.fixture
def admin_client(api, org, make_member):
    user = make_member(org, "admin").user
    client = api(org, "admin", user)
    client.user = user
    return client


def test_segment_draft_preview_publish_rollback_through_the_api(admin_client, org):
    big, mid = with_arr(org, "150000.00"), with_arr(org, "60000.00")
    with_arr(org, "1000.00")
    made = admin_client.post("/api/v1/segments/", {"name": "Big", "rules": BIG}, format="json")
    assert made.status_code == 201, made.content
    segment = Segment.all_orgs.get(pk=made.json()["id"])
    refresh_memberships(org.pk)
    assert members(segment) == {big.pk}
    base = f"/api/v1/segments/{segment.pk}"
    (created,) = admin_client.get(f"{base}/versions/").json()["results"]  # the create was "create and publish"
    assert (created["number"], created["state"], created["rules"]) == (1, "published", BIG)

    draft = admin_client.post(f"{base}/versions/", {"rules": SMALLER, "note": "widen"}, format="json")
    assert draft.status_code == 201, draft.content
    assert draft.json()["state"] == "draft" and draft.json()["name"] == "Big" and draft.json()["number"] == 2
    # Nothing live changed: the segment's rules, and its members even after a refresh.
    segment.refresh_from_db()
    assert segment.rules == BIG
    refresh_memberships(org.pk)
    assert members(segment) == {big.pk}

    diff = admin_client.get(f"{base}/versions/2/diff/").json()
    assert diff == {
        "version": 2, "against": 1,
        "changes": [{"path": "rules.conditions[0].value", "change": "changed", "before": "100000", "after": "50000"}],
    }  # fmt: skip
    preview = admin_client.post(f"{base}/versions/2/preview/").json()
    assert preview["accounts"] == 2 and preview["arr"] == "210000.00"
    assert preview["entering"]["accounts"] == 1 and preview["entering"]["arr"] == "60000.00"
    assert [row["id"] for row in preview["entering"]["sample"]] == [mid.pk]
    assert preview["leaving"] == {"accounts": 0, "arr": "0.00", "sample": []}

    refused = admin_client.post(f"{base}/versions/2/publish/", {}, format="json")
    assert refused.status_code == 400 and "note" in refused.json()["errors"]
    published = admin_client.post(f"{base}/versions/2/publish/", {"note": "Mid-market too"}, format="json")
    assert published.status_code == 200, published.content
    assert published.json()["state"] == "published" and published.json()["published_by"] == (
        admin_client.user.get_full_name() or admin_client.user.email
    )
    segment.refresh_from_db()
    assert segment.rules == SMALLER
    refresh_memberships(org.pk)
    assert members(segment) == {big.pk, mid.pk}
    entry = AuditEntry.all_orgs.filter(organization=org, action="segment.published").latest("occurred_at")
    assert entry.subject_id == str(segment.pk) and entry.note == "Mid-market too" and entry.actor == admin_client.user
    assert entry.changes == diff["changes"] and entry.data["version"] == 2
    states = dict(SegmentVersion.all_orgs.filter(segment=segment).values_list("number", "state"))
    assert states == {1: "superseded", 2: "published"}

    # Only drafts change or publish: 409 JSON.
    for method, url, body in (("patch", f"{base}/versions/2/", {"rules": BIG}),
                              ("post", f"{base}/versions/1/publish/", {"note": "x"})):  # fmt: skip
        response = getattr(admin_client, method)(url, body, format="json")
        assert response.status_code == 409, (url, response.content)
        assert response["Content-Type"] == "application/json" and "draft" in response.json()["detail"]

    rolled = admin_client.post(f"{base}/rollback/", {"note": "Too many accounts"}, format="json")
    assert rolled.status_code == 201, rolled.content
    assert (rolled.json()["number"], rolled.json()["state"], rolled.json()["rules"]) == (3, "published", BIG)
    segment.refresh_from_db()
    assert segment.rules == BIG
    refresh_memberships(org.pk)
    assert members(segment) == {big.pk}
    entry = AuditEntry.all_orgs.filter(organization=org, action="segment.rolled_back").get()
    assert entry.data == {"version": 3, "restored_version": 1, "previous_version": 2}
    assert entry.changes[0]["before"] == "50000" and entry.changes[0]["after"] == "100000"
    assert [v["number"] for v in admin_client.get(f"{base}/versions/").json()["results"]] == [3, 2, 1]
    assert admin_client.get(f"{base}/versions/9/").status_code == 404


def test_segment_draft_is_validated_and_a_patch_changes_only_the_draft(admin_client, org):
    segment = Segment.all_orgs.create(organization=org, name="Big", rules=BIG)  # no version yet (like defaults)
    base = f"/api/v1/segments/{segment.pk}"
    bad = admin_client.post(f"{base}/versions/", {"rules": {"match": "both"}}, format="json")
    assert bad.status_code == 400 and bad.json()["errors"]["rules"]
    taken = admin_client.post(f"{base}/versions/", {"name": "High touch"}, format="json")
    assert taken.status_code == 400 and "name" in taken.json()["errors"]
    draft = admin_client.post(f"{base}/versions/", {"description": "first"}, format="json").json()
    assert draft["number"] == 2  # version 1 is the baseline made from the live segment
    patched = admin_client.patch(f"{base}/versions/2/", {"rules": SMALLER, "note": "n"}, format="json")
    assert (
        patched.status_code == 200 and patched.json()["rules"] == SMALLER and patched.json()["description"] == "first"
    )
    segment.refresh_from_db()
    assert (segment.rules, segment.description) == (BIG, "")
    assert not AuditEntry.all_orgs.filter(organization=org, action__startswith="segment.").exists()
    conflict = admin_client.post(f"{base}/rollback/", {"note": "n"}, format="json")
    assert conflict.status_code == 409  # nothing published before the baseline


def test_api_put_and_editor_save_are_create_and_publish(admin_client, org):
    made = admin_client.post("/api/v1/segments/", {"name": "Big", "rules": BIG}, format="json").json()
    admin_client.patch(f"/api/v1/segments/{made['id']}/", {"position": 7}, format="json")  # not content: no version
    admin_client.patch(f"/api/v1/segments/{made['id']}/", {"rules": SMALLER}, format="json")
    versions = list(
        SegmentVersion.all_orgs.filter(segment_id=made["id"]).order_by("number").values_list("state", flat=True)
    )
    assert versions == ["superseded", "published"]
    segment_entries = AuditEntry.all_orgs.filter(organization=org, action__startswith="segment.")
    actions = list(segment_entries.order_by("pk").values_list("action", "data"))
    assert actions == [("segment.published", {"version": 1, "created": True}),
                       ("segment.published", {"version": 2, "created": False})]  # fmt: skip


def playbook_of(org, **fields) -> Playbook:
    body = {"name": "Big accounts", "trigger": "account_created", "conditions": BIG, "actions": ACTIONS, **fields}
    return Playbook.all_orgs.create(organization=org, **body)


def test_playbook_draft_does_not_fire_until_published_then_rolls_back(admin_client, org):
    big, mid = with_arr(org, "150000.00"), with_arr(org, "60000.00")
    playbook = playbook_of(org)
    base = f"/api/v1/playbooks/{playbook.pk}"
    assert engine.would_fire(playbook)[0] == [big.pk]

    draft = admin_client.post(f"{base}/versions/", {"conditions": SMALLER, "cooldown_days": 30}, format="json")
    assert draft.status_code == 201, draft.content
    assert draft.json()["trigger"] == "account_created" and draft.json()["number"] == 2
    live = Playbook.all_orgs.get(pk=playbook.pk)
    assert (live.conditions, live.cooldown_days) == (BIG, 0)
    assert sorted(engine.would_fire(live)[0]) == [big.pk]  # the engine still reads the published playbook

    paths = [row["path"] for row in admin_client.get(f"{base}/versions/2/diff/").json()["changes"]]
    assert paths == ["conditions.conditions[0].value", "cooldown_days"]
    preview = admin_client.post(f"{base}/versions/2/preview/").json()
    assert preview["matching"] == 2 and preview["arr"] == "210000.00"
    assert preview["published"]["accounts"] == 1 and preview["published"]["arr"] == "150000.00"
    assert preview["starting"]["accounts"] == 1 and [r["id"] for r in preview["starting"]["sample"]] == [mid.pk]
    assert preview["stopping"]["accounts"] == 0
    assert not AuditEntry.all_orgs.filter(organization=org, action__startswith="playbook.").exists()

    published = admin_client.post(f"{base}/versions/2/publish/", {"note": "Mid-market"}, format="json")
    assert published.status_code == 200, published.content
    live.refresh_from_db()
    assert (live.conditions, live.cooldown_days) == (SMALLER, 30)
    assert sorted(engine.would_fire(live)[0]) == sorted([big.pk, mid.pk])
    entry = AuditEntry.all_orgs.get(organization=org, action="playbook.published")
    assert [c["path"] for c in entry.changes] == paths and entry.note == "Mid-market"

    assert admin_client.patch(f"{base}/versions/2/", {"cooldown_days": 1}, format="json").status_code == 409
    rolled = admin_client.post(f"{base}/rollback/", {"note": "back"}, format="json")
    assert rolled.status_code == 201 and rolled.json()["conditions"] == BIG and rolled.json()["cooldown_days"] == 0
    live.refresh_from_db()
    assert (live.conditions, live.cooldown_days) == (BIG, 0)
    assert AuditEntry.all_orgs.filter(organization=org, action="playbook.rolled_back").count() == 1
    states = dict(PlaybookVersion.all_orgs.filter(playbook=playbook).values_list("number", "state"))
    assert states == {1: "superseded", 2: "superseded", 3: "published"}


def test_playbook_publish_revalidates_and_rollback_refuses_a_deleted_segment(admin_client, org, make_member):
    user = admin_client.user
    temp = Segment.all_orgs.create(organization=org, name="Temp", rules=BIG)
    playbook = playbook_of(org)
    first = playbook_drafts.create_draft(playbook, {"segment": temp.pk}, user=user)
    playbook_drafts.publish(first, user=user, note="on the temp segment")
    second = playbook_drafts.create_draft(playbook, {"segment": None}, user=user)
    playbook_drafts.publish(second, user=user, note="everyone")
    segment_id = temp.pk
    temp.delete()  # no playbook uses it live any more; versions never hold it back
    with pytest.raises(playbook_drafts.DraftInvalid) as exc:
        playbook_drafts.rollback(Playbook.all_orgs.get(pk=playbook.pk), user=user, note="back")
    assert exc.value.errors == {"segment": ["Unknown segment."]}
    stale = PlaybookVersion.all_orgs.create(
        organization=org,
        playbook=playbook,
        number=9,
        content={**playbook_drafts.content_of(playbook), "segment": segment_id},
    )
    response = admin_client.post(f"/api/v1/playbooks/{playbook.pk}/versions/9/publish/", {"note": "x"}, format="json")
    assert response.status_code == 400 and response.json()["errors"] == {"segment": ["Unknown segment."]}
    assert Playbook.all_orgs.get(pk=playbook.pk).segment_id is None
    stale.refresh_from_db()
    assert stale.state == "draft"


def test_versions_isolation_another_organization_is_out_of_reach(api, org, other_org):
    theirs_segment = Segment.all_orgs.create(organization=other_org, name="Theirs", rules=BIG)
    theirs_playbook = playbook_of(other_org)
    segment_drafts.create_draft(theirs_segment, {"rules": SMALLER}, user=None)
    playbook_drafts.create_draft(theirs_playbook, {"cooldown_days": 3}, user=None)
    client = api(org, "admin")
    for base in (f"/api/v1/segments/{theirs_segment.pk}", f"/api/v1/playbooks/{theirs_playbook.pk}"):
        for method, suffix in (("get", "versions/"), ("post", "versions/"), ("get", "versions/2/"),
                               ("patch", "versions/2/"), ("get", "versions/2/diff/"), ("post", "versions/2/preview/"),
                               ("post", "versions/2/publish/"), ("post", "rollback/")):  # fmt: skip
            response = getattr(client, method)(f"{base}/{suffix}", {"note": "x"}, format="json")
            assert response.status_code == 404, (method, base, suffix, response.status_code)
    assert SegmentVersion.all_orgs.filter(segment=theirs_segment).count() == 2
    assert Segment.all_orgs.get(pk=theirs_segment.pk).rules == BIG
    # A draft of my playbook naming their segment is refused like an unknown one.
    mine = playbook_of(org)
    response = client.post(f"/api/v1/playbooks/{mine.pk}/versions/", {"segment": theirs_segment.pk}, format="json")
    assert response.status_code == 400 and response.json()["errors"] == {"segment": ["Unknown segment."]}


@pytest.mark.parametrize("role", ["leader", "csm", "viewer"])
def test_versions_roles_members_read_admins_write(api, org, make_member, role):
    segment = Segment.all_orgs.create(organization=org, name="Big", rules=BIG)
    playbook = playbook_of(org)
    segment_drafts.create_draft(segment, {"rules": SMALLER}, user=None)
    playbook_drafts.create_draft(playbook, {"cooldown_days": 3}, user=None)
    client = api(org, role, make_member(org, role).user)
    for base in (f"/api/v1/segments/{segment.pk}", f"/api/v1/playbooks/{playbook.pk}"):
        for suffix in ("versions/", "versions/2/", "versions/2/diff/"):
            assert client.get(f"{base}/{suffix}").status_code == 200, (base, suffix)
        for method, suffix in (("post", "versions/"), ("patch", "versions/2/"), ("post", "versions/2/preview/"),
                               ("post", "versions/2/publish/"), ("post", "rollback/")):  # fmt: skip
            response = getattr(client, method)(f"{base}/{suffix}", {"note": "x"}, format="json")
            assert response.status_code == 403, (role, method, base, suffix)
    assert SegmentVersion.all_orgs.filter(segment=segment, state="draft").count() == 1
    admin = api(org, "admin", make_member(org, "admin").user)
    assert admin.post(f"/api/v1/segments/{segment.pk}/versions/", {}, format="json").status_code == 201


def test_version_pages_roles_and_a_publish_needs_a_note(client, org, make_member):
    """Pages: admins review, publish (a note is required) and roll back; leaders read a playbook's versions (as
    they read the editor); other roles get 403; another organization's version is a 404."""
    admin = make_member(org, "admin").user
    segment = Segment.all_orgs.create(organization=org, name="Big", rules=BIG)
    playbook = playbook_of(org)
    segment_drafts.create_draft(segment, {"rules": SMALLER}, user=admin)
    playbook_drafts.create_draft(playbook, {"cooldown_days": 3}, user=admin)
    seg = f"/o/{org.slug}/admin/segments/{segment.pk}"
    pb = f"/o/{org.slug}/admin/playbooks/{playbook.pk}"
    for role, segment_status, playbook_status in (("leader", 403, 200), ("csm", 403, 403), ("viewer", 403, 403)):
        client.force_login(make_member(org, role).user)
        assert client.get(f"{seg}/versions/2/").status_code == segment_status, role
        assert client.get(f"{pb}/versions/2/").status_code == playbook_status, role
        assert client.post(f"{pb}/versions/2/publish/", {"note": "x"}).status_code == 403, role
        assert client.post(f"{seg}/rollback/", {"note": "x"}).status_code == 403, role
    client.force_login(admin)
    page = client.get(f"{seg}/versions/2/").content.decode()
    assert "rules.conditions[0].value" in page and 'data-testid="publish-form"' in page
    assert client.post(f"{seg}/versions/2/publish/", {"note": " "}).status_code == 400
    assert Segment.all_orgs.get(pk=segment.pk).rules == BIG
    assert client.post(f"{seg}/versions/2/publish/", {"note": "wider"}).status_code == 302
    assert Segment.all_orgs.get(pk=segment.pk).rules == SMALLER
    assert client.post(f"{seg}/rollback/", {"note": "back"}).status_code == 302
    assert Segment.all_orgs.get(pk=segment.pk).rules == BIG
    assert client.get(f"{seg}/versions/99/").status_code == 404


def test_editor_save_as_draft_then_edit_the_draft(client, org, make_member):
    admin = make_member(org, "admin").user
    client.force_login(admin)
    segment = Segment.all_orgs.create(organization=org, name="Big", rules=BIG)
    body = {"name": "Big", "description": "", "position": "3", "match": "all", "action": "draft",
            "cond-0-field": "arr", "cond-0-op": "gte", "cond-0-value": "50000"}  # fmt: skip
    url = f"/o/{org.slug}/admin/segments/{segment.pk}/"
    response = client.post(url, body)
    assert response.status_code == 302 and response["Location"].endswith(f"/segments/{segment.pk}/versions/2/")
    segment.refresh_from_db()
    assert (segment.rules, segment.position) == (BIG, 0)  # a draft changes nothing live, position included
    assert 'value="50000"' in client.get(url, {"version": 2}).content.decode()  # the editor opens the draft
    response = client.post(url, {**body, "version": "2", "cond-0-value": "70000"})
    assert response["Location"].endswith("/versions/2/")  # the same draft, changed
    assert SegmentVersion.all_orgs.get(segment=segment, number=2).content["rules"]["conditions"][0]["value"] == "70000"
    assert SegmentVersion.all_orgs.filter(segment=segment).count() == 2


def test_the_engine_fires_the_published_playbook_never_the_draft(org, make_member):
    """The beat's evaluation reads the live playbook: a draft widening its conditions fires nobody new until it
    is published; then the next evaluation fires for the accounts it added."""
    import datetime as dt

    from django.utils import timezone

    from playbooks.models import FiringOutcome, PlaybookFiring

    user = make_member(org, "admin").user
    big, mid = with_arr(org, "150000.00"), with_arr(org, "60000.00")
    playbook = playbook_of(org, trigger="no_touch", trigger_params={"days": 30}, active=True)
    later = timezone.now() + dt.timedelta(days=60)  # nobody touched in 30 days by then

    def fired() -> set[int]:
        rows = PlaybookFiring.all_orgs.filter(playbook=playbook, outcome=FiringOutcome.FIRED)
        return set(rows.values_list("account_id", flat=True))

    draft = playbook_drafts.create_draft(playbook, {"conditions": SMALLER}, user=user)
    engine.evaluate_organization(org.pk, now=later)
    assert fired() == {big.pk}
    playbook_drafts.publish(draft, user=user, note="mid-market too")
    engine.evaluate_organization(org.pk, now=later + dt.timedelta(minutes=15))
    assert fired() == {big.pk, mid.pk}
