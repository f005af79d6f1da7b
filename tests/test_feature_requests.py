"""Feature requests (issue 13 §3): ranking by ARR at stake, merging keeps every link, a status change notifies
the linked accounts' CSMs through the event consumer, the API (links, status, merge) and its roles."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Account, Segment, SegmentMembership
from cs_platform.events import dispatch
from cs_platform.models import DomainEvent
from feedback import requests as svc
from feedback.models_requests import FeatureRequest, FeatureRequestChange, FeatureRequestLink
from playbooks.models import Notification

from .factories import AccountFactory
from .renewal_factories import contract_with_lines, renewal_for

pytestmark = pytest.mark.django_db
TODAY = dt.date(2026, 12, 5)


def acct(org, owner=None, *, arr="0", renews=None, churned=None, **kw):
    account = AccountFactory(organization=org, owner=owner, **kw)
    Account.all_orgs.filter(pk=account.pk).update(arr=Decimal(arr), next_renewal_date=renews, churned_at=churned)
    account.refresh_from_db()
    return account


def test_ranking_sums_active_arr_then_renewal_proximity(org, bob):
    # A: two active accounts 100k + 50k, and a churned 900k that must not count → 150k at stake.
    # B: one active 150k account renewing in 30 days → the same 150k, but renewing soon: ranks above A.
    # C: one active 200k account → first. D: no link → 0, last.
    a1, a2 = acct(org, bob, arr="100000"), acct(org, bob, arr="50000", renews=TODAY + dt.timedelta(days=200))
    gone = acct(org, bob, arr="900000", churned=TODAY - dt.timedelta(days=3))
    b1 = acct(org, bob, arr="150000", renews=TODAY + dt.timedelta(days=30))
    c1 = acct(org, bob, arr="200000")
    reqs = {name: svc.create_request(org, title=name) for name in "ABCD"}
    for account in (a1, a2, gone):
        svc.link_account(reqs["A"], account)
    svc.link_account(reqs["B"], b1)
    svc.link_account(reqs["C"], c1)

    with CaptureQueriesContext(connection) as queries:
        board = list(svc.ranked(org, today=TODAY))
    assert len(queries) == 1  # one grouped query, whatever the number of requests
    assert [fr.title for fr in board] == ["C", "B", "A", "D"]
    figures = {fr.title: (fr.arr_at_stake, fr.renewing_arr, fr.active_accounts, fr.linked_accounts) for fr in board}
    assert figures["A"] == (Decimal("150000"), Decimal("0"), 2, 3)
    assert figures["B"] == (Decimal("150000"), Decimal("150000"), 1, 1)
    assert figures["D"] == (Decimal("0"), Decimal("0"), 0, 0)
    assert board[2].next_renewal == TODAY + dt.timedelta(days=200)


def test_ranking_by_segment_counts_only_its_members(org, bob):
    inside, outside = acct(org, bob, arr="10000"), acct(org, bob, arr="70000")
    segment = Segment.all_orgs.create(organization=org, name="Enterprise")
    SegmentMembership.all_orgs.create(organization=org, segment=segment, account=inside, entered_at=timezone.now())
    fr = svc.create_request(org, title="Audit log")
    other = svc.create_request(org, title="Only outside")
    svc.link_account(fr, inside)
    svc.link_account(fr, outside)
    svc.link_account(other, outside)
    board = list(svc.ranked(org, segment_id=segment.pk, today=TODAY))
    assert [(r.title, r.arr_at_stake) for r in board] == [("Audit log", Decimal("10000"))]
    assert list(svc.ranked(org, today=TODAY).values_list("arr_at_stake", flat=True))[0] == Decimal("80000")


def test_another_organizations_links_never_count(org, other_org, bob):
    fr = svc.create_request(org, title="SSO")
    svc.link_account(fr, acct(org, bob, arr="1000"))
    foreign = acct(other_org, None, arr="999999")
    with pytest.raises(svc.RequestError):
        svc.link_account(fr, foreign)
    assert svc.ranked(org).get(pk=fr.pk).arr_at_stake == Decimal("1000")


def test_merge_moves_every_link_and_keeps_the_higher_importance(org, bob, alice):
    shared, only_dup, only_surv = acct(org, bob), acct(org, bob), acct(org, bob)
    survivor = svc.create_request(org, title="PDF export")
    duplicate = svc.create_request(org, title="Export to PDF", external_issue_key="prod-9")
    older = svc.create_request(org, title="Printable dashboards")
    svc.link_account(survivor, shared, importance="low")
    svc.link_account(survivor, only_surv, importance="medium")
    svc.link_account(duplicate, shared, importance="critical", comment="Blocks the renewal", blocked_deal="OPP-1")
    svc.link_account(duplicate, only_dup, importance="high")
    svc.merge_requests(older, duplicate)  # a duplicate merged earlier into the duplicate
    before = {shared.pk, only_dup.pk, only_surv.pk}

    svc.merge_requests(duplicate, survivor, by=alice)

    links = {link.account_id: link for link in FeatureRequestLink.all_orgs.filter(request=survivor)}
    assert set(links) == before  # no link lost
    assert links[shared.pk].importance == "critical"  # the higher of low and critical
    assert links[shared.pk].comment == "Blocks the renewal" and links[shared.pk].blocked_deal == "OPP-1"
    assert links[only_dup.pk].importance == "high"
    assert not FeatureRequestLink.all_orgs.filter(request=duplicate).exists()
    duplicate.refresh_from_db()
    older.refresh_from_db()
    survivor.refresh_from_db()
    assert duplicate.merged_into_id == survivor.pk and older.merged_into_id == survivor.pk
    assert survivor.external_issue_key == "PROD-9"
    assert FeatureRequestChange.all_orgs.filter(request=survivor, kind="absorbed", by=alice).exists()
    assert [fr.pk for fr in svc.ranked(org)] == [survivor.pk]  # merged requests leave the board
    with pytest.raises(svc.RequestError):
        svc.merge_requests(survivor, duplicate)  # into a merged request
    with pytest.raises(svc.RequestError):
        svc.change_status(duplicate, "planned")  # a merged request is frozen


def test_status_change_notifies_linked_csms_through_the_consumer(
    org, alice, bob, make_member, django_capture_on_commit_callbacks
):
    carol = make_member(org, "csm", first_name="Carol").user
    nobody = make_member(org, "csm", first_name="Nobody").user  # owns nothing linked
    b1, b2, c1 = acct(org, bob, arr="10"), acct(org, bob, arr="20"), acct(org, carol, arr="30")
    acct(org, nobody, arr="40")
    fr = svc.create_request(org, title="Offline mode")
    for account in (b1, b2, c1):
        svc.link_account(fr, account)

    with django_capture_on_commit_callbacks(execute=True):
        assert svc.change_status(fr, "planned", by=alice, note="Q1 roadmap")
    event = DomainEvent.all_orgs.get(name="feature_request.status_changed")
    assert event.payload["from"] == "new" and event.payload["to"] == "planned"
    assert sorted(a["owner"] for a in event.payload["accounts"]) == sorted([bob.pk, bob.pk, carol.pk])
    assert event.payload["arr_at_stake"] == "60.00"
    assert FeatureRequestChange.all_orgs.get(request=fr, kind="status").by == alice

    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        dispatch(org.pk)
    notes = Notification.all_orgs.filter(organization=org).order_by("user_id")
    assert sorted(n.user_id for n in notes) == sorted([bob.pk, carol.pk])  # each CSM once, not alice, not nobody
    assert all("Offline mode" in n.message and "Planned" in n.message for n in notes)
    assert all(n.url.endswith(f"/voice/requests/{fr.pk}/") for n in notes)
    assert sorted(m.to[0] for m in mail.outbox) == sorted([bob.email, carol.email])
    bob_mail = next(m for m in mail.outbox if m.to == [bob.email])
    assert b1.name in bob_mail.body and b2.name in bob_mail.body and c1.name not in bob_mail.body

    with django_capture_on_commit_callbacks(execute=True):
        dispatch(org.pk)  # again: the receipt makes it once
    assert Notification.all_orgs.filter(organization=org).count() == 2
    assert not svc.change_status(fr, "planned")  # no change, no event
    assert DomainEvent.all_orgs.filter(name="feature_request.status_changed").count() == 1


def test_blocked_renewal_must_be_the_accounts(org, bob):
    contract = contract_with_lines(org)
    renewal = renewal_for(contract)
    account = contract.account
    other = acct(org, bob)
    fr = svc.create_request(org, title="EU hosting")
    link, created = svc.link_account(fr, account, blocked_renewal_id=renewal.pk)
    assert created and link.blocked_renewal_id == renewal.pk
    with pytest.raises(svc.RequestError, match="No renewal"):
        svc.link_account(fr, other, blocked_renewal_id=renewal.pk)
    _, created = svc.link_account(fr, account, importance="critical")
    assert not created
    assert FeatureRequestLink.all_orgs.filter(request=fr).count() == 1


# --- API ------------------------------------------------------------------------------------------

API = "/api/v1/feature-requests/"


def test_api_create_link_status_merge(org, alice, bob, api, make_member):
    admin = api(org, "admin", alice)
    csm = api(org, "csm", bob)
    mine = acct(org, bob, arr="5000")
    dave = make_member(org, "csm").user
    theirs = acct(org, dave, arr="7000")

    created = csm.post(API, {"title": "SSO", "type": "feature", "external_issue_key": " prod-7 "}, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["status"] == "new" and body["external_issue_key"] == "PROD-7" and body["created_by"] == bob.email
    pk = body["id"]
    assert csm.post(API, {"title": "X", "status": "shipped"}, format="json").json()["status"] == "new"
    assert csm.post(API, {"title": "X", "organization": 1}, format="json").status_code == 400

    linked = csm.post(f"{API}{pk}/links/", {"account": mine.pk, "importance": "high"}, format="json")
    assert linked.status_code == 201, linked.json()
    assert linked.json()["requested_by"] == bob.email
    assert csm.post(f"{API}{pk}/links/", {"account": theirs.pk}, format="json").status_code == 403
    again = csm.post(f"{API}{pk}/links/", {"account": mine.pk, "importance": "critical"}, format="json")
    assert again.status_code == 200 and again.json()["importance"] == "critical"

    detail = admin.get(f"{API}{pk}/").json()
    assert detail["arr_at_stake"] == "5000.00" and [link["account"] for link in detail["links"]] == [mine.pk]

    assert csm.post(f"{API}{pk}/status/", {"status": "planned"}, format="json").status_code == 403
    assert admin.post(f"{API}{pk}/status/", {"status": "bogus"}, format="json").status_code == 400
    moved = admin.post(f"{API}{pk}/status/", {"status": "planned", "note": "Roadmap"}, format="json")
    assert moved.status_code == 200 and moved.json()["status"] == "planned"
    assert csm.patch(f"{API}{pk}/", {"title": "Renamed"}, format="json").status_code == 403

    survivor = admin.post(API, {"title": "Single sign-on"}, format="json").json()["id"]
    admin.post(f"{API}{survivor}/links/", {"account": theirs.pk}, format="json")
    merged = admin.post(f"{API}{pk}/merge/", {"into": survivor}, format="json")
    assert merged.status_code == 200, merged.json()
    assert {link["account"] for link in merged.json()["links"]} == {mine.pk, theirs.pk}
    assert merged.json()["arr_at_stake"] == "12000.00"
    assert admin.post(f"{API}{pk}/merge/", {"into": survivor}, format="json").status_code == 400
    assert admin.get(f"{API}?merged=false").json()["count"] == 2  # "X" and the survivor
    assert [r["id"] for r in admin.get(f"{API}?merged=true").json()["results"]] == [pk]
    listed = admin.get(f"{API}?account={mine.pk}").json()["results"]
    assert [r["id"] for r in listed] == [survivor]

    by_account = {link["account"]: link["id"] for link in merged.json()["links"]}
    assert csm.delete(f"{API}{survivor}/links/{by_account[theirs.pk]}/").status_code == 403
    assert csm.delete(f"{API}{survivor}/links/{by_account[mine.pk]}/").status_code == 204
    assert list(FeatureRequestLink.all_orgs.filter(request_id=survivor).values_list("account_id", flat=True)) == [
        theirs.pk
    ]


def test_api_refuses_another_organizations_account_and_request(org, other_org, alice, api):
    admin = api(org, "admin", alice)
    fr = svc.create_request(org, title="Mine")
    theirs = svc.create_request(other_org, title="Theirs")
    foreign_account = acct(other_org)
    linked = admin.post(f"{API}{fr.pk}/links/", {"account": foreign_account.pk}, format="json")
    assert linked.status_code == 400 and "account" in linked.json()["errors"]
    merged = admin.post(f"{API}{fr.pk}/merge/", {"into": theirs.pk}, format="json")
    assert merged.status_code == 400
    assert admin.post(f"{API}{theirs.pk}/status/", {"status": "planned"}, format="json").status_code == 404
    assert FeatureRequest.all_orgs.get(pk=theirs.pk).status == "new"


def test_deleting_a_request_deletes_its_merged_duplicates_and_links(org, alice, api, bob):
    survivor, duplicate = svc.create_request(org, title="Keep"), svc.create_request(org, title="Dup")
    svc.link_account(duplicate, acct(org, bob))
    svc.merge_requests(duplicate, survivor)
    assert api(org, "admin", alice).delete(f"{API}{survivor.pk}/").status_code == 204
    assert not FeatureRequest.all_orgs.filter(organization=org).exists()  # the duplicate does not come back
    assert not FeatureRequestLink.all_orgs.filter(organization=org).exists()


def test_a_title_is_one_line_and_a_stored_newline_never_breaks_the_notification_email(
    org, alice, bob, api, django_capture_on_commit_callbacks
):
    assert svc.create_request(org, title="  Offline\nmode \t now ").title == "Offline mode now"
    admin = api(org, "admin", alice)
    created = admin.post(API, {"title": "SSO\r\nlogin", "type": "feature"}, format="json")
    assert created.status_code == 201 and created.json()["title"] == "SSO login"
    edited = admin.patch(f"{API}{created.json()['id']}/", {"title": "SSO\n\nfor all"}, format="json")
    assert edited.status_code == 200 and edited.json()["title"] == "SSO for all"

    fr = svc.create_request(org, title="Legacy")
    svc.link_account(fr, acct(org, bob, arr="10"))
    FeatureRequest.all_orgs.filter(pk=fr.pk).update(title="Legacy\nrow")  # stored before titles were cleaned
    fr.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        assert svc.change_status(fr, "planned", by=alice)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        dispatch(org.pk)
    assert [m.to for m in mail.outbox] == [[bob.email]]
    assert mail.outbox[0].subject == "[Retain] Legacy row: Planned"
