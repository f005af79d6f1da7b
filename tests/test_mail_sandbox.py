"""One merge-field sandbox (accounts.mailing) for playbooks' email templates and feedback's survey invitations
(code review, item 7): each app keeps its own fields and values, the validation and rendering are shared."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from accounts import mailing
from accounts.mailing import render_merge, validate_merge_source
from feedback.emails import render_invitation, validate_email_source
from playbooks.emails import validate_template_source

FIELDS = {"account.name": "", "contact.first_name": ""}


@pytest.mark.parametrize(
    "source",
    ["{% load static %}", "{% include 'base.html' %}", "{{ account.owner.password }}", "{{ settings.SECRET_KEY }}",
     "{{ account.name|safe }}", "{{ account", "{{ account }}"],
)  # fmt: skip
def test_both_apps_refuse_what_the_shared_sandbox_refuses(source):
    with pytest.raises(ValidationError):
        validate_merge_source(source, fields=FIELDS)
    with pytest.raises(ValidationError):
        validate_template_source(source)
    with pytest.raises(ValidationError):
        validate_email_source(source, field="email_body")


def test_survey_emails_take_their_own_fields_and_no_filter():
    validate_email_source("Hi {{ contact.first_name }} from {{ organization.name }} {# note #}", field="email_body")
    with pytest.raises(ValidationError, match="no filter is allowed here"):
        validate_email_source("{{ contact.first_name|upper }}", field="email_body")
    with pytest.raises(ValidationError, match="is not a merge field"):
        validate_email_source("{{ renewal.date }}", field="email_body")  # a playbooks field, not a survey one
    validate_template_source('{{ renewal.date|date:"j F Y" }} {{ contact.first_name|default:"there" }}')


def test_the_sandbox_escapes_values_in_html_only_and_never_runs_a_tag():
    values = {"account": {"name": "Tom & <Jerry>"}}
    assert render_merge("{{ account.name }} & co", values) == "Tom & <Jerry> & co"
    assert render_merge("{{ account.name }} & co", values, html_part=True) == "Tom &amp; &lt;Jerry&gt; &amp; co"
    assert mailing._SANDBOX.template_loaders == [] and mailing._SANDBOX.template_libraries == {}


def test_a_survey_invitation_renders_through_the_shared_sandbox():
    class Survey:
        email_subject = "{{ account.name }}:\na question"
        email_body = "Hi {{ contact.first_name }},\n\n<b>{{ organization.name }}</b> asks."
        question = "How likely?"

    values = {"contact.first_name": "Ann", "contact.name": "Ann Lee", "account.name": "A&B",
              "organization.name": "Acme <Corp>", "csm.name": ""}  # fmt: skip
    rendered = render_invitation(
        Survey(), values, link="https://r.example/s/tok/", unsubscribe="https://r.example/u/x/"
    )
    assert rendered.subject == "A&B: a question"
    assert rendered.text.startswith("Hi Ann,\n\n<b>Acme <Corp></b> asks.\n\nHow likely?")
    assert "<p>Hi Ann,</p>\n<p>&lt;b&gt;Acme &lt;Corp&gt;&lt;/b&gt; asks.</p>" in rendered.html
    assert "Unsubscribe: https://r.example/u/x/" in rendered.text
