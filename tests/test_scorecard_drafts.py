"""Scorecards as drafts (issue 14 item 4): drafts never change scores, diff field by field against the
published version, preview, publish (audited, with a note), rollback (a new version copying the
previous published one), the versions API (roles, 409 on published versions) and the audit log API."""

from __future__ import annotations

import copy
import csv
import io
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone

from cs_platform.models import AuditEntry
from health import drafts
from health.defaults import DEFAULT_SCORECARD
from health.models import CsmPulse, HealthScore, Scorecard, ScorecardVersion
from health.services import recompute_health, save_scorecard_version

from .factories import AccountFactory

pytestmark = pytest.mark.django_db
API = "/api/v1/scorecards/"


def default_card(org) -> Scorecard:
    return Scorecard.all_orgs.get(organization=org, is_default=True)


def pulse_only(yellow: int) -> dict:
    """The CSM pulse alone, a yellow pulse worth ``yellow`` points."""
    return {
        "components": [
            {
                "key": "csm_pulse",
                "name": "CSM pulse",
                "group": None,
                "signal": "csm_pulse",
                "weight": 1,
                "function": {"type": "categorical", "points": {"green": 100, "yellow": yellow, "red": 0}},
            }
        ]
    }


@pytest.fixture
def yellow_account(org):
    account = AccountFactory(organization=org, arr=Decimal("12000"))
    CsmPulse.all_orgs.create(organization=org, account=account, color="yellow", created_at=timezone.now())
    return account


def score_of(account) -> Decimal | None:
    return HealthScore.all_orgs.get(account=account).score


class TestServices:
    def test_a_draft_changes_no_score(self, org, alice, yellow_account):
        card = default_card(org)
        save_scorecard_version(card, pulse_only(50), user=alice, note="Pulse only")
        recompute_health(org, latest=True)
        assert score_of(yellow_account) == Decimal("50.0")
        draft = drafts.create_draft(card, pulse_only(90), user=alice, note="Kinder")
        assert draft.is_draft and draft.number == 3
        assert draft.state_for(Scorecard.all_orgs.get(pk=card.pk).current_version_id) == "draft"
        recompute_health(org, latest=True)
        assert score_of(yellow_account) == Decimal("50.0")  # the draft is not scored
        assert Scorecard.all_orgs.get(pk=card.pk).current_version.number == 2

    def test_one_open_draft_per_scorecard(self, org, alice):
        card = default_card(org)
        first = drafts.create_draft(card, pulse_only(60), user=alice)
        with pytest.raises(drafts.DraftExists) as refused:
            drafts.create_draft(card, pulse_only(70), user=alice)
        assert refused.value.draft.pk == first.pk
        changed = drafts.update_draft(first, pulse_only(70), user=alice, note="70 then")
        assert changed.definition == pulse_only(70) and changed.note == "70 then"

    def test_invalid_definitions_are_refused(self, org, alice):
        from health.scoring import DefinitionError

        with pytest.raises(DefinitionError):
            drafts.create_draft(default_card(org), {"components": [{"key": "x", "signal": "mood"}]}, user=alice)
        assert not ScorecardVersion.all_orgs.filter(published_at__isnull=True).exists()

    def test_diff_is_field_by_field_against_the_published_version(self, org, alice):
        card = default_card(org)
        definition = copy.deepcopy(DEFAULT_SCORECARD)
        adoption = next(c for c in definition["components"] if c["key"] == "adoption")
        adoption["weight"] = 40
        definition["components"] = [c for c in definition["components"] if c["key"] != "nps"]
        draft = drafts.create_draft(card, definition, user=alice)
        rows = {row["path"]: row for row in drafts.diff_version(draft)}
        assert rows["components[adoption].weight"] == {
            "path": "components[adoption].weight",
            "change": "changed",
            "before": next(c for c in DEFAULT_SCORECARD["components"] if c["key"] == "adoption")["weight"],
            "after": 40,
        }
        assert {row["change"] for path, row in rows.items() if path.startswith("components[nps]")} == {"removed"}
        assert all(p.startswith(("components[adoption].weight", "components[nps]")) for p in rows)
        published = Scorecard.all_orgs.get(pk=card.pk).current_version
        assert drafts.diff_version(published) == []

    def test_preview_names_accounts_changing_colour_with_arr(self, org, alice, yellow_account):
        card = default_card(org)
        save_scorecard_version(card, pulse_only(50), user=alice, note="Pulse only")
        recompute_health(org, latest=True)
        preview = drafts.preview_version(drafts.create_draft(card, pulse_only(90), user=alice))
        assert preview["accounts_changing"] == 1 and preview["arr_changing"] == "12000.00"
        assert preview["changes"] == [{"from": "yellow", "to": "green", "accounts": 1, "arr": "12000.00"}]

    def test_publish_is_audited_and_scores_change_on_the_next_recompute(self, org, alice, yellow_account):
        card = default_card(org)
        save_scorecard_version(card, pulse_only(50), user=alice, note="Pulse only")
        recompute_health(org, latest=True)
        draft = drafts.create_draft(card, pulse_only(90), user=alice, note="Kinder")
        with pytest.raises(ValueError):
            drafts.publish(draft, user=alice, note="  ")
        published = drafts.publish(draft, user=alice, note="Yellow is fine")
        card.refresh_from_db()
        assert card.current_version_id == published.pk and published.published_by == alice
        assert published.publish_note == "Yellow is fine"
        entry = AuditEntry.all_orgs.filter(organization=org, action="scorecard.published").first()
        assert (entry.subject_type, entry.subject_id, entry.actor, entry.note) == (
            "scorecard",
            str(card.pk),
            alice,
            "Yellow is fine",
        )
        assert entry.changes == [
            {"path": "components[csm_pulse].function.points.yellow", "change": "changed", "before": 50, "after": 90}
        ]
        assert entry.data == {"version": 3, "previous_version": 2}
        recompute_health(org, latest=True)
        assert score_of(yellow_account) == Decimal("90.0")
        with pytest.raises(drafts.NotADraft):
            drafts.update_draft(published, pulse_only(10), user=alice)
        with pytest.raises(drafts.NotADraft):
            drafts.publish(published, user=alice, note="again")

    def test_publish_queues_a_recompute_after_commit(self, org, alice, django_capture_on_commit_callbacks):
        from cs_platform.organizations import JobRun

        draft = drafts.create_draft(default_card(org), pulse_only(90), user=alice)
        with django_capture_on_commit_callbacks() as callbacks:
            drafts.publish(draft, user=alice, note="Now")
        assert len(callbacks) == 1
        before = JobRun.all_orgs.filter(organization=org, kind="recompute_health").count()
        try:
            callbacks[0]()
        except Exception:  # noqa: BLE001 - no broker needed: the recorded job is what is checked
            pass
        assert JobRun.all_orgs.filter(organization=org, kind="recompute_health").count() == before + 1

    def test_rollback_restores_the_previous_definition_as_a_new_version(self, org, alice, yellow_account):
        card = default_card(org)
        save_scorecard_version(card, pulse_only(50), user=alice, note="Pulse only")  # v2
        recompute_health(org, latest=True)
        drafts.publish(drafts.create_draft(card, pulse_only(90), user=alice), user=alice, note="Kinder")  # v3
        recompute_health(org, latest=True)
        assert score_of(yellow_account) == Decimal("90.0")
        restored = drafts.rollback(card, user=alice, note="Too kind")
        card.refresh_from_db()
        assert (restored.number, restored.restores.number) == (4, 2)
        assert restored.definition == pulse_only(50) and card.current_version_id == restored.pk
        states = {v.number: v.state_for(card.current_version_id) for v in card.versions.all()}
        assert states == {1: "superseded", 2: "superseded", 3: "superseded", 4: "published"}
        entry = AuditEntry.all_orgs.filter(organization=org, action="scorecard.rolled_back").get()
        assert entry.note == "Too kind" and entry.data == {"version": 4, "previous_version": 3, "restores_version": 2}
        assert entry.changes[0]["before"] == 90 and entry.changes[0]["after"] == 50
        recompute_health(org, latest=True)
        assert score_of(yellow_account) == Decimal("50.0")

    def test_nothing_to_roll_back_and_a_failed_publish_leaves_no_trace(self, org, alice):
        card = default_card(org)
        with pytest.raises(drafts.NothingToRollBack):
            drafts.rollback(card, user=alice, note="Undo")
        draft = drafts.create_draft(card, pulse_only(90), user=alice)
        with pytest.raises(RuntimeError), transaction.atomic():
            drafts.publish(draft, user=alice, note="Then crash")
            raise RuntimeError
        draft.refresh_from_db()
        assert draft.is_draft and not AuditEntry.all_orgs.filter(action="scorecard.published", note="Then crash")

    def test_save_scorecard_version_publishes_and_audits(self, org, alice):
        card = default_card(org)
        version = save_scorecard_version(card, pulse_only(50), user=alice, note="Direct")
        assert version.published_at is not None and version.publish_note == "Direct"
        assert AuditEntry.all_orgs.get(organization=org, action="scorecard.published").data["version"] == 2


class TestVersionsApi:
    def test_draft_lifecycle(self, org, api, yellow_account):
        card = default_card(org)
        client = api(org, "admin")
        base = f"{API}{card.pk}/versions/"
        created = client.post(base, {"definition": pulse_only(90), "note": "Kinder"}, format="json")
        assert created.status_code == 201, created.json()
        body = created.json()
        assert (body["number"], body["state"], body["published_at"], body["note"]) == (2, "draft", None, "Kinder")
        assert client.post(base, {"definition": pulse_only(80)}, format="json").status_code == 409
        listed = client.get(base).json()["results"]
        assert [(v["number"], v["state"]) for v in listed] == [(2, "draft"), (1, "published")]
        patched = client.patch(f"{base}2/", {"definition": pulse_only(70)}, format="json")
        assert patched.status_code == 200 and patched.json()["definition"] == pulse_only(70)
        diff = client.get(f"{base}2/diff/").json()
        assert diff["version"] == 2 and diff["against"] == 1 and diff["changes"]
        preview = client.post(f"{base}2/preview/")
        assert preview.status_code == 200 and set(preview.json()) >= {"accounts_changing", "arr_changing", "changes"}
        assert client.post(f"{base}2/publish/", {}, format="json").status_code == 400
        published = client.post(f"{base}2/publish/", {"note": "Yellow is fine"}, format="json")
        assert published.status_code == 200 and published.json()["state"] == "published"
        assert published.json()["publish_note"] == "Yellow is fine"
        refused = client.patch(f"{base}2/", {"definition": pulse_only(10)}, format="json")
        assert refused.status_code == 409 and refused["Content-Type"].startswith("application/json")
        assert "only a draft" in refused.json()["detail"]
        assert client.post(f"{base}2/publish/", {"note": "again"}, format="json").status_code == 409
        assert client.patch(f"{base}1/", {"note": "x"}, format="json").status_code == 409
        rolled = client.post(f"{API}{card.pk}/rollback/", {"note": "Undo"}, format="json")
        assert rolled.status_code == 201, rolled.json()
        assert (rolled.json()["number"], rolled.json()["state"], rolled.json()["restores"]) == (3, "published", 1)
        assert rolled.json()["definition"] == DEFAULT_SCORECARD
        assert client.get(f"{base}2/").json()["state"] == "superseded"
        assert client.get(f"{base}99/").status_code == 404
        assert client.put(f"{base}2/", {}, format="json").status_code == 405
        assert client.delete(f"{base}2/").status_code == 405

    def test_rollback_without_history_is_409(self, org, api):
        response = api(org, "admin").post(f"{API}{default_card(org).pk}/rollback/", {"note": "x"}, format="json")
        assert response.status_code == 409 and "Nothing to roll back" in response.json()["detail"]

    def test_invalid_definition_is_400_per_path(self, org, api):
        bad = copy.deepcopy(DEFAULT_SCORECARD)
        bad["components"][2]["weight"] = -5
        response = api(org, "admin").post(f"{API}{default_card(org).pk}/versions/", {"definition": bad}, format="json")
        assert response.status_code == 400 and "definition.components.2.weight" in response.json()["errors"]

    @pytest.mark.parametrize("role", ["leader", "csm", "viewer"])
    def test_only_admins_write_every_member_reads(self, org, api, role, alice):
        card = default_card(org)
        draft = drafts.create_draft(card, pulse_only(90), user=alice)
        client = api(org, role)
        base = f"{API}{card.pk}/versions/"
        assert client.get(base).status_code == 200
        assert client.get(f"{base}{draft.number}/").status_code == 200
        assert client.get(f"{base}{draft.number}/diff/").status_code == 200
        assert client.post(base, {"definition": pulse_only(10)}, format="json").status_code == 403
        assert client.patch(f"{base}{draft.number}/", {"note": "x"}, format="json").status_code == 403
        assert client.post(f"{base}{draft.number}/preview/").status_code == 403
        assert client.post(f"{base}{draft.number}/publish/", {"note": "x"}, format="json").status_code == 403
        assert client.post(f"{API}{card.pk}/rollback/", {"note": "x"}, format="json").status_code == 403
        draft.refresh_from_db()
        assert draft.is_draft

    def test_another_organizations_scorecard_is_404(self, org, other_org, api, charlie):
        theirs = default_card(other_org)
        draft = drafts.create_draft(theirs, pulse_only(90), user=charlie)
        client = api(org, "admin")
        base = f"{API}{theirs.pk}/versions/"
        assert client.get(base).status_code == 404
        assert client.post(base, {"definition": pulse_only(10)}, format="json").status_code == 404
        for suffix in ("", "diff/"):
            assert client.get(f"{base}{draft.number}/{suffix}").status_code == 404
        assert client.patch(f"{base}{draft.number}/", {"note": "x"}, format="json").status_code == 404
        assert client.post(f"{base}{draft.number}/preview/").status_code == 404
        assert client.post(f"{base}{draft.number}/publish/", {"note": "x"}, format="json").status_code == 404
        assert client.post(f"{API}{theirs.pk}/rollback/", {"note": "x"}, format="json").status_code == 404
        # Mine lists only mine, even with their version numbers.
        mine = client.get(f"{API}{default_card(org).pk}/versions/").json()["results"]
        assert [v["scorecard"] for v in mine] == [default_card(org).pk]
        draft.refresh_from_db()
        assert draft.is_draft and draft.note == ""
        assert not AuditEntry.all_orgs.filter(organization=other_org).exists()


class TestAuditLogApi:
    def test_admins_read_filter_and_export(self, org, other_org, api, alice, charlie):
        card = default_card(org)
        save_scorecard_version(card, pulse_only(50), user=alice, note='=HYPERLINK("http://evil")')
        drafts.rollback(card, user=alice, note="Undo")
        save_scorecard_version(default_card(other_org), pulse_only(50), user=charlie, note="Theirs")
        client = api(org, "admin")  # issuing the test's API key is audited too (the newest entry)
        rows = client.get("/api/v1/audit-log/").json()["results"]
        assert [r["action"] for r in rows] == ["api_key.created", "scorecard.rolled_back", "scorecard.published"]
        assert rows[2]["subject_label"] == card.name and rows[2]["actor"] == alice.pk
        only = client.get("/api/v1/audit-log/", {"action": "scorecard.published"}).json()["results"]
        assert [r["action"] for r in only] == ["scorecard.published"]
        both = client.get("/api/v1/audit-log/", {"action": "scorecard.published,scorecard.rolled_back"}).json()
        assert both["count"] == 2
        assert client.get("/api/v1/audit-log/", {"subject_type": "segment"}).json()["count"] == 0
        today = timezone.localdate()
        assert client.get("/api/v1/audit-log/", {"date_after": today.isoformat()}).json()["count"] == 3
        assert client.get("/api/v1/audit-log/", {"date_before": "2000-01-01"}).json()["count"] == 0
        exported = client.get("/api/v1/audit-log/", {"format": "csv"})
        assert exported.status_code == 200 and exported["Content-Type"].startswith("text/csv")
        table = list(csv.DictReader(io.StringIO(b"".join(exported.streaming_content).decode())))
        assert len(table) == 3
        published = next(r for r in table if r["action"] == "scorecard.published")
        assert published["note"].startswith("'=HYPERLINK")  # neutralised

    @pytest.mark.parametrize("role", ["leader", "csm", "viewer"])
    def test_only_admins(self, org, api, role):
        response = api(org, role).get("/api/v1/audit-log/")
        assert response.status_code == 403 and response["Content-Type"].startswith("application/json")

    def test_read_only(self, org, api):
        assert api(org, "admin").post("/api/v1/audit-log/", {}, format="json").status_code == 405


def test_overrides_set_and_cleared_are_audited(org, alice, yellow_account):
    from cs_platform.actors import Actor
    from health.overrides import clear_override, set_override

    actor = Actor(user=alice, organization=org, role="admin")
    override = set_override(yellow_account, color="red", reason_code="other", reason="Exec escalation", author=actor)
    clear_override(override, by=actor)
    entries = list(AuditEntry.all_orgs.filter(organization=org, subject_type="account").order_by("id"))
    assert [(e.action, e.subject_id, e.actor, e.subject_label) for e in entries] == [
        ("health_override.created", str(yellow_account.pk), alice, yellow_account.name),
        ("health_override.cleared", str(yellow_account.pk), alice, yellow_account.name),
    ]
    assert entries[0].note == "Exec escalation" and entries[0].data["color"] == "red"


class TestPages:
    """The editor's draft flow and Admin → Audit log, through the Django test client."""

    def test_save_draft_then_publish_with_a_note_then_roll_back(self, client, org, alice, yellow_account):
        from django.urls import reverse

        card = default_card(org)
        save_scorecard_version(card, pulse_only(50), user=alice, note="Pulse only")  # v2
        url = reverse("admin-scorecard", args=[org.slug, card.pk])
        client.force_login(alice)
        form = {"name": card.name, "position": card.position, "definition": __import__("json").dumps(pulse_only(90))}
        saved = client.post(url, {**form, "action": "save-draft"})
        assert saved.status_code == 302
        card.refresh_from_db()
        draft = drafts.open_draft(card)
        assert draft.number == 3 and card.current_version.number == 2  # nothing published
        page = client.get(url)
        html = page.content.decode()
        assert page.context["shown"].pk == draft.pk  # the editor opens on the draft
        assert 'data-path="components[csm_pulse].function.points.yellow"' in html
        assert 'data-testid="publish-form"' in html and "Publish version 3" in html
        assert client.get(url, {"preview": "draft"}).context["draft_preview"]["accounts_changing"] == 1
        action = reverse("admin-scorecard-draft-action", args=[org.slug, card.pk, "publish"])
        assert client.post(action, {"publish-note": "  "}).status_code == 302
        draft.refresh_from_db()
        assert draft.is_draft  # refused: no note
        assert client.post(action, {"publish-note": "Kinder"}).status_code == 302
        card.refresh_from_db()
        assert card.current_version.number == 3 and card.current_version.publish_note == "Kinder"
        rollback = reverse("admin-scorecard-draft-action", args=[org.slug, card.pk, "rollback"])
        html = client.get(url).content.decode()
        assert 'data-testid="rollback-form"' in html and "Roll back to version 2" in html and "data-confirm=" in html
        assert client.post(rollback, {"rollback-note": "Too kind"}).status_code == 302
        card.refresh_from_db()
        assert (card.current_version.number, card.current_version.restores.number) == (4, 2)
        assert (
            client.post(reverse("admin-scorecard-draft-action", args=[org.slug, card.pk, "nope"]), {}).status_code
            == 404
        )

    def test_draft_actions_admin_only_and_in_the_organization(self, client, org, other_org, alice, bob, charlie):
        from django.urls import reverse

        theirs = default_card(other_org)
        draft = drafts.create_draft(theirs, pulse_only(90), user=charlie)
        client.force_login(alice)
        url = reverse("admin-scorecard-draft-action", args=[org.slug, theirs.pk, "publish"])
        assert client.post(url, {"publish-note": "x"}).status_code == 404
        client.force_login(bob)
        mine = reverse("admin-scorecard-draft-action", args=[org.slug, default_card(org).pk, "rollback"])
        assert client.post(mine, {"rollback-note": "x"}).status_code == 403
        draft.refresh_from_db()
        assert draft.is_draft

    def test_audit_page_filters_and_exports(self, client, org, other_org, alice, bob, charlie):
        from django.urls import reverse

        card = default_card(org)
        save_scorecard_version(card, pulse_only(50), user=alice, note="@SUM(A1)")
        drafts.rollback(card, user=alice, note="Undo")
        save_scorecard_version(default_card(other_org), pulse_only(50), user=charlie, note="Theirs")
        url = reverse("admin-audit", args=[org.slug])
        client.force_login(bob)
        assert client.get(url).status_code == 403
        client.force_login(charlie)
        assert client.get(url).status_code == 404
        client.force_login(alice)
        page = client.get(url)
        html = page.content.decode()
        assert page.status_code == 200 and "Theirs" not in html
        assert 'data-action="scorecard.published"' in html and 'data-action="scorecard.rolled_back"' in html
        assert "components[csm_pulse]" in html
        only = client.get(url, {"action": "scorecard.rolled_back"}).content.decode()
        assert 'data-action="scorecard.published"' not in only and 'data-action="scorecard.rolled_back"' in only
        assert client.get(url, {"date_before": "2000-01-01"}).context["page"].paginator.count == 0
        assert client.get(url, {"date_after": "not-a-date"}).status_code == 400
        exported = client.get(url, {"export": "csv", "action": "scorecard.published"})
        text = b"".join(exported.streaming_content).decode().lstrip("\ufeff")
        table = list(csv.DictReader(io.StringIO(text)))
        assert [row["action"] for row in table] == ["scorecard.published"]
        assert table[0]["note"] == "'@SUM(A1)" and table[0]["actor"] == alice.get_full_name()


def test_score_line_marks_scorecard_changes_with_text():
    import datetime as dt

    from health.charts import score_line

    days = [dt.date(2026, 11, d) for d in (1, 2, 3)]
    history = [{"date": d, "score": 60.0, "color": "yellow"} for d in days]
    svg = str(score_line(history, markers=[{"date": days[1], "label": "Default v2 published"}]))
    assert svg.count('class="scorecard-change"') == 1
    assert 'data-date="2026-11-02"' in svg and 'data-label="Default v2 published"' in svg
    assert "Nov 2: Default v2 published" in svg  # the tooltip
    assert "a published scorecard changed" in svg  # the legend
    assert "scorecard changed on Nov 2 (Default v2 published)" in svg  # the chart's name
    assert "scorecard-change" not in str(score_line(history))
    # A day outside the plotted range is not drawn.
    outside = str(score_line(history, markers=[{"date": dt.date(2026, 12, 1), "label": "later"}]))
    assert 'class="scorecard-change"' not in outside


def test_scorecard_changes_per_day_for_the_account(org, alice, yellow_account):
    card = default_card(org)
    recompute_health(org, latest=True)
    save_scorecard_version(card, pulse_only(50), user=alice, note="v2")
    drafts.rollback(card, user=alice, note="back")
    today = timezone.localdate()
    changes = drafts.scorecard_changes(yellow_account, since=today, until=today)
    assert len(changes) == 1 and changes[0]["date"] == today
    assert changes[0]["label"].endswith("Default v2 published; Default v3 rolled back to v1")
    other = AccountFactory(organization=org)  # never scored: no scorecard scored it
    assert drafts.scorecard_changes(other, since=today, until=today) == []
