"""The structured scorecard editor (``/o/<slug>/admin/scorecards/<id>/``): the form round-trips the
definition, a preview writes nothing, a save stores exactly what was edited as version N+1, rows are
added and removed, errors land on the field they concern, roles and tenancy, a pinned query count."""

from __future__ import annotations

import copy
import datetime as dt
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import Segment
from feedback.models import SurveyResponse
from health.defaults import DEFAULT_SCORECARD
from health.editor import known_usage_metrics
from health.models import CsmPulse, HealthScore, Scorecard, ScorecardVersion
from health.services import recompute_health

from .factories import AccountFactory
from .signal_factories import UsageMetricFactory

pytestmark = pytest.mark.django_db

# session, user, membership, card, versions, usage metric names, org switcher, segments, notification bell,
# and renewals' backtest section (health.scorecard_sections): the latest finished backtest, the running count
EDITOR_QUERIES = 11


class FormFields(HTMLParser):
    """The fields a browser would submit from the editor form (selected options, checked boxes), plus
    the error messages that follow each field inside its cell."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}
        self.in_form = False
        self.select: str | None = None
        self.first_option: str | None = None
        self.textarea: str | None = None
        self.errors: dict[str, list[str]] = {}
        self.last_field: str | None = None
        self.in_error = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and a.get("data-testid") == "scorecard-form":
            self.in_form = True
        if not self.in_form:
            return
        if tag == "input" and a.get("name"):
            kind = a.get("type", "text")
            if kind == "checkbox" and "checked" not in a:
                pass
            elif kind != "submit":
                self.fields[a["name"]] = a.get("value", "")
            self.last_field = a["name"]
        elif tag == "select":
            self.select, self.first_option = a["name"], None
            self.last_field = a["name"]
        elif tag == "option" and self.select:
            if self.first_option is None:
                self.first_option = a.get("value", "")
            if "selected" in a:
                self.fields[self.select] = a.get("value", "")
        elif tag == "textarea":
            self.textarea = a["name"]
            self.fields[self.textarea] = ""
            self.last_field = a["name"]
        elif tag in ("div", "span") and "field-error" in (a.get("class") or ""):
            self.in_error = True

    def handle_endtag(self, tag):
        if tag == "form" and self.in_form:
            self.in_form = False
        if tag == "select" and self.select:
            self.fields.setdefault(self.select, self.first_option or "")
            self.select = None
        if tag == "textarea":
            self.textarea = None
        if tag in ("div", "span"):
            self.in_error = False

    def handle_data(self, data):
        if self.textarea:
            self.fields[self.textarea] += data
        elif self.in_error and self.last_field:
            self.errors.setdefault(self.last_field, []).append(data.strip())


def parse(response) -> FormFields:
    parser = FormFields()
    parser.feed(response.content.decode())
    return parser


def default_card(org) -> Scorecard:
    return Scorecard.all_orgs.get(organization=org, is_default=True)


def component_index(fields: dict[str, str], key: str) -> int:
    return next(i for i in range(int(fields["components-TOTAL"])) if fields[f"components-{i}-key"] == key)


@pytest.fixture
def editor(client, org, alice):
    client.force_login(alice)
    return reverse("admin-scorecard", args=[org.slug, default_card(org).pk])


@pytest.fixture
def promoter(org):
    """An account scored by two components: a yellow CSM pulse (50 points, weight 10) and an NPS of
    100 (100 points, weight 15): (10·50 + 15·100) / 25 = 80, green."""
    account = AccountFactory(organization=org, name="Promoter Inc", arr=Decimal("7000"))
    now = timezone.now()
    CsmPulse.all_orgs.create(organization=org, account=account, color="yellow", created_at=now)
    SurveyResponse.all_orgs.create(organization=org, account=account, kind="nps", score=10, responded_at=now)
    recompute_health(org, as_of=timezone.localdate(), latest=True)
    score = HealthScore.all_orgs.get(account=account)
    assert (score.score, score.color) == (Decimal("80.0"), "green")
    return account


class TestEditAndSave:
    def test_unchanged_form_reproduces_the_definition(self, client, org, editor):
        fields = parse(client.get(editor)).fields
        assert fields["components-TOTAL"] == "8" and "editor" not in fields
        assert fields["components-0-x0"] == "0.1" and fields["components-0-x100"] == "0.6"
        response = client.post(editor, {**fields, "action": "save"})
        assert response.status_code == 302
        assert ScorecardVersion.all_orgs.filter(scorecard=default_card(org)).count() == 1  # nothing changed
        page = client.get(editor).content.decode()
        assert "the definition did not change" in page

    def test_weight_and_linear_param_preview_then_save(self, client, org, alice, editor, promoter):
        fields = parse(client.get(editor)).fields
        nps = component_index(fields, "nps")
        fields[f"components-{nps}-weight"] = "5"
        fields[f"components-{nps}-x100"] = "200"
        # NPS 100 now scores (100 + 50) / 250 · 100 = 60; (10·50 + 5·60) / 15 = 53.3: yellow.
        preview = client.post(editor, {**fields, "action": "preview"})
        assert preview.status_code == 200
        result = preview.context["preview"]
        assert result["changes"] == [{"from": "green", "to": "yellow", "accounts": 1, "arr": "7000.00"}]
        assert result["examples"][0]["score_after"] == 53.3
        html = preview.content.decode()
        assert 'data-testid="preview-changes"' in html and "Promoter Inc" in html
        assert ScorecardVersion.all_orgs.filter(organization=org).count() == 1  # nothing written
        assert HealthScore.all_orgs.get(account=promoter).color == "green"
        kept = parse(preview).fields  # the form keeps what was typed
        assert kept[f"components-{nps}-weight"] == "5" and kept[f"components-{nps}-x100"] == "200"

        missing_note = client.post(editor, {**kept, "action": "save"})
        assert missing_note.status_code == 400
        assert parse(missing_note).errors["note"] == ["Say what changed: the note is stored with the new version."]
        assert ScorecardVersion.all_orgs.filter(organization=org).count() == 1

        saved = client.post(editor, {**kept, "note": "NPS counts less", "action": "save"})
        assert saved.status_code == 302
        version = Scorecard.all_orgs.get(pk=default_card(org).pk).current_version
        expected = copy.deepcopy(DEFAULT_SCORECARD)
        expected["components"][nps]["weight"] = 5
        expected["components"][nps]["function"]["x100"] = 200
        assert (version.number, version.note, version.created_by) == (2, "NPS counts less", alice)
        assert version.definition == expected
        recompute_health(org, as_of=timezone.localdate(), latest=True)
        score = HealthScore.all_orgs.get(account=promoter)
        assert (score.score, score.color) == (Decimal("53.3"), "yellow")  # the preview was right
        history = client.get(editor).content.decode()
        assert "NPS counts less" in history and "v2" in history

    def test_add_a_band_row(self, client, org, editor):
        fields = parse(client.get(editor)).fields
        financial = component_index(fields, "financial")
        assert fields[f"components-{financial}-bands-TOTAL"] == "3"
        added = client.post(editor, {**fields, "action": f"add-band-{financial}"})
        assert added.status_code == 200 and added.context["preview"] is None
        fields = parse(added).fields
        assert fields[f"components-{financial}-bands-TOTAL"] == "4"
        assert fields[f"components-{financial}-bands-3-max"] == ""
        fields[f"components-{financial}-bands-3-max"] = "90"
        fields[f"components-{financial}-bands-3-score"] = "10"
        saved = client.post(editor, {**fields, "note": "A band for 61–90 days", "action": "save"})
        assert saved.status_code == 302
        definition = default_card(org).current_version.definition
        assert definition["components"][financial]["function"] == {
            "type": "bands",
            "bands": [
                {"max": 0, "score": 100},
                {"max": 30, "score": 60},
                {"max": 60, "score": 30},
                {"max": 90, "score": 10},
            ],
            "else": 0,
        }

    def test_remove_rows_and_add_a_usage_component_in_a_group(self, client, org, editor):
        UsageMetricFactory(organization=org, account=AccountFactory(organization=org), metric="logins", value=3)
        fields = parse(client.get(editor)).fields
        relationship = component_index(fields, "relationship")
        assert fields[f"components-{relationship}-points-TOTAL"] == "4"
        fields = parse(client.post(editor, {**fields, "action": f"remove-point-{relationship}-3"})).fields
        assert fields[f"components-{relationship}-points-TOTAL"] == "3"
        fields = parse(client.post(editor, {**fields, "action": "add-group"})).fields
        fields.update({"groups-0-name": "Product", "groups-0-weight": "40"})
        page = client.post(editor, {**fields, "action": "add-component"})
        assert 'value="logins"' in page.content.decode()  # offered in the metric list
        fields = parse(page).fields
        assert fields["components-TOTAL"] == "9" and fields["groups-0-key"] == "product"
        fields.update({
            "components-8-name": "Weekly logins", "components-8-signal": "usage", "components-8-metric": "logins",
            "components-8-weight": "30", "components-8-group": "product", "components-8-type": "linear",
            "components-8-x0": "0", "components-8-x100": "50",
            "components-0-group": "product",
        })  # fmt: skip
        preview = client.post(editor, {**fields, "action": "preview"})
        assert preview.status_code == 200, parse(preview).errors
        state = preview.context["state"]
        # top level: product 40 + the other ungrouped weights 75 = 115; product split 25 : 30
        assert round(state.components[8].share, 1) == round(40 / 115 * 30 / 55 * 100, 1)
        assert round(state.components[1].share, 1) == round(15 / 115 * 100, 1)
        fields = parse(preview).fields
        assert fields["components-8-key"] == "weekly_logins"
        assert client.post(editor, {**fields, "note": "Logins", "action": "save"}).status_code == 302
        definition = default_card(org).current_version.definition
        assert definition["groups"] == [{"key": "product", "name": "Product", "weight": 40}]
        assert definition["components"][8] == {
            "key": "weekly_logins", "name": "Weekly logins", "group": "product", "signal": "usage:logins",
            "weight": 30, "function": {"type": "linear", "x0": 0, "x100": 50},
        }  # fmt: skip
        assert definition["components"][0]["group"] == "product"
        assert "departed" not in definition["components"][relationship]["function"]["points"]

    def test_settings_are_saved(self, client, org, alice):
        segment = Segment.all_orgs.get(organization=org, name="Tech touch")
        client.force_login(alice)
        client.post(reverse("admin-scorecards", args=[org.slug]), {"name": "Tech", "position": 5, "is_active": "on"})
        card = Scorecard.all_orgs.get(organization=org, name="Tech")
        url = reverse("admin-scorecard", args=[org.slug, card.pk])
        fields = parse(client.get(url)).fields
        fields.update({"name": "Tech touch", "segment": str(segment.pk), "position": "7"})
        fields.pop("is_active", None)
        assert client.post(url, {**fields, "action": "save"}).status_code == 302
        card.refresh_from_db()
        assert (card.name, card.segment, card.position, card.is_active) == ("Tech touch", segment, 7, False)
        assert card.versions.count() == 1  # settings only: no new version


class TestErrors:
    def test_invalid_params_show_on_their_fields_and_save_nothing(self, client, org, editor):
        fields = parse(client.get(editor)).fields
        adoption = component_index(fields, "adoption")
        financial = component_index(fields, "financial")
        fields[f"components-{adoption}-x100"] = fields[f"components-{adoption}-x0"]
        fields[f"components-{adoption}-weight"] = "heavy"
        fields[f"components-{financial}-bands-2-max"] = "10"  # below the previous threshold (30)
        fields["note"] = "Broken"
        response = client.post(editor, {**fields, "action": "save"})
        assert response.status_code == 400
        errors = parse(response).errors
        assert errors[f"components-{adoption}-x100"] == ["must differ from x0"]
        assert errors[f"components-{adoption}-weight"] == ["must be a number"]
        assert errors[f"components-{financial}-bands-2-max"] == ["thresholds must increase"]
        assert f"components-{adoption}-x0" not in errors
        assert ScorecardVersion.all_orgs.filter(organization=org).count() == 1
        kept = parse(response).fields
        assert kept[f"components-{adoption}-weight"] == "heavy"  # what was typed stays
        preview = client.post(editor, {**fields, "action": "preview"})
        assert preview.status_code == 400 and preview.context["preview"] is None

    def test_categorical_signal_needs_categories(self, client, org, editor):
        fields = parse(client.get(editor)).fields
        pulse = component_index(fields, "csm_pulse")
        fields[f"components-{pulse}-type"] = "linear"
        fields[f"components-{pulse}-x0"], fields[f"components-{pulse}-x100"] = "0", "1"
        response = client.post(editor, {**fields, "action": "preview"})
        assert response.status_code == 400
        assert "use 'categorical'" in parse(response).errors[f"components-{pulse}-type"][0]

    def test_json_view_feeds_the_same_validation(self, client, org, editor):
        fields = parse(client.get(editor)).fields
        bad = copy.deepcopy(DEFAULT_SCORECARD)
        bad["components"][2]["function"]["low"] = 9  # above high (6)
        import json

        response = client.post(
            editor, {**fields, "editor": "json", "definition": json.dumps(bad), "note": "x", "action": "save"}
        )
        assert response.status_code == 400
        parsed = parse(response)
        assert parsed.errors["components-2-high"] == ["must be at least low"]  # mapped onto the table too
        assert "components.2.function.high: must be at least low" in parsed.errors["definition"]
        assert ScorecardVersion.all_orgs.filter(organization=org).count() == 1
        # An unknown group or signal typed in the JSON stays selected in the table, with its error.
        bad = copy.deepcopy(DEFAULT_SCORECARD)
        bad["components"][0].update({"group": "ghost", "signal": "mood"})
        response = client.post(editor, {**fields, "editor": "json", "definition": json.dumps(bad), "action": "preview"})
        parsed = parse(response)
        assert (parsed.fields["components-0-group"], parsed.fields["components-0-signal"]) == ("ghost", "mood")
        assert parsed.errors["components-0-group"] == ["unknown group 'ghost'"]
        assert parsed.errors["components-0-signal"][0].startswith("unknown signal 'mood'")
        # A row button while the JSON box is ticked saves nothing.
        good = json.dumps(DEFAULT_SCORECARD | {"components": DEFAULT_SCORECARD["components"][:2]})
        kept = client.post(
            editor, {**fields, "editor": "json", "definition": good, "note": "x", "action": "add-band-6"}
        )
        assert kept.status_code == 200 and ScorecardVersion.all_orgs.filter(organization=org).count() == 1


class TestAccess:
    def test_roles_and_tenancy(self, client, org, other_org, alice, bob, charlie, make_member):
        url = reverse("admin-scorecard", args=[org.slug, default_card(org).pk])
        viewer = make_member(org, "viewer").user
        leader = make_member(org, "leader").user
        for user in (bob, viewer, leader):
            client.force_login(user)
            assert client.get(url).status_code == 403
            assert client.post(url, {"action": "preview"}).status_code == 403
        client.force_login(charlie)
        assert client.get(url).status_code == 404
        client.force_login(alice)
        assert client.get(reverse("admin-scorecard", args=[org.slug, default_card(other_org).pk])).status_code == 404
        assert (
            client.post(
                reverse("admin-scorecard", args=[org.slug, default_card(other_org).pk]), {"action": "save"}
            ).status_code
            == 404
        )
        assert ScorecardVersion.all_orgs.filter(organization=other_org).count() == 1

    def test_new_scorecard_starts_as_a_copy_of_the_default(self, client, org, alice, editor):
        segment = Segment.all_orgs.get(organization=org, name="Tech touch")
        fields = parse(client.get(editor)).fields
        fields["components-0-weight"] = "40"
        client.post(editor, {**fields, "note": "Adoption matters more", "action": "save"})
        response = client.post(
            reverse("admin-scorecards", args=[org.slug]),
            {"name": "Onboarding", "segment": segment.pk, "position": 10, "is_active": "on"},
        )
        card = Scorecard.all_orgs.get(organization=org, name="Onboarding")
        assert response.status_code == 302 and response.url.endswith(f"/admin/scorecards/{card.pk}/")
        assert card.segment == segment and card.current_version.number == 1
        assert card.current_version.definition == default_card(org).current_version.definition
        assert card.current_version.note == "Created as a copy of Default v2"
        duplicate = client.post(reverse("admin-scorecards", args=[org.slug]), {"name": "Onboarding", "position": 1})
        assert duplicate.status_code == 400


def test_every_builtin_signal_has_a_label():
    from health.defaults import BUILTIN_SIGNALS
    from health.editor import SIGNAL_LABELS

    assert list(SIGNAL_LABELS) == list(BUILTIN_SIGNALS)


class TestQueries:
    def test_editor_page_query_count_is_constant(self, client, org, editor, django_assert_num_queries):
        with django_assert_num_queries(EDITOR_QUERIES):
            assert client.get(editor).status_code == 200
        # More components, more versions, more accounts and metrics: the same number of queries.
        fields = parse(client.get(editor)).fields
        for _ in range(3):
            fields = parse(client.post(editor, {**fields, "action": "add-component"})).fields
        for i in (8, 9, 10):
            prefix = f"components-{i}-"
            fields.update({prefix + "name": f"Metric {i}", prefix + "signal": "usage", prefix + "metric": f"m{i}",
                           prefix + "x0": "0", prefix + "x100": "9"})  # fmt: skip
        assert client.post(editor, {**fields, "note": "More", "action": "save"}).status_code == 302
        for n in range(20):
            account = AccountFactory(organization=org)
            UsageMetricFactory(organization=org, account=account, metric=f"m{n % 7}", date=dt.date(2026, 11, 1))
        with CaptureQueriesContext(connection) as queries:
            response = client.get(editor)
        assert response.status_code == 200 and len(response.context["state"].components) == 11
        assert len(queries) == EDITOR_QUERIES

    def test_known_usage_metrics_one_query_distinct_sorted(self, org, other_org, django_assert_num_queries):
        account = AccountFactory(organization=org)
        for day in range(3):
            for metric in ("sessions", "events", "event:Export"):
                UsageMetricFactory(organization=org, account=account, metric=metric, date=dt.date(2026, 11, 1 + day))
        UsageMetricFactory(organization=other_org, account=AccountFactory(organization=other_org), metric="secret")
        with django_assert_num_queries(1):
            assert known_usage_metrics(org.pk) == ["event:Export", "events", "sessions"]
        assert known_usage_metrics(other_org.pk) == ["secret"]
