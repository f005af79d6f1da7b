"""The public survey response page ``/s/<token>/`` (no sign-in: the token is the credential).

It shows the organization's name and the survey's question, nothing else of the organization's data
(not the contact, not the account, never an answer). It is a page of its own (``feedback/respond.html``,
not the app shell): no script at all, so it makes no call of any kind, authenticated or not; it works at
phone size and from the keyboard (native radio buttons in a fieldset). ``GET`` changes nothing (mail
scanners follow links); ``POST`` records the answer and uses the token up. States and their status:
open 200, answered 200 (the thank-you), already used 410, revoked 410, expired 410, unknown 404, invalid score 400,
too many requests 429 (``SURVEY_PAGE_RATE`` per client address).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from cs_platform.rls import system_context
from cs_platform.tenancy import org_scope

from .models import SCORE_RANGES, SurveyKind
from .ratelimit import take
from .services import AnswerError, answer_invitation, lookup_invitation

LABELS = {
    SurveyKind.NPS: ("Not at all likely", "Extremely likely"),
    SurveyKind.CSAT: ("Very unsatisfied", "Very satisfied"),
    SurveyKind.CES: ("Very difficult", "Very easy"),
}
STATUS = {"unknown": 404, "used": 410, "revoked": 410, "expired": 410}


def _page(request: HttpRequest, context: dict, status: int = 200) -> HttpResponse:
    response = render(request, "feedback/respond.html", context, status=status)
    response["Referrer-Policy"] = "no-referrer"  # the token must not leak to another site
    response["X-Robots-Tag"] = "noindex"
    return response


@never_cache
@csrf_exempt  # no session is involved: the unguessable, single-use token in the URL is the credential
@require_http_methods(["GET", "POST"])
def respond(request: HttpRequest, token: str) -> HttpResponse:
    wait = take(request, "survey-page", settings.SURVEY_PAGE_RATE)
    if wait is not None:
        response = _page(request, {"state": "throttled", "wait": wait}, status=429)
        response["Retry-After"] = str(wait)
        return response
    # The token names the organization (row-level security: looked up as a system read, then scoped).
    with system_context("survey page: the invitation token names its organization"):
        found = lookup_invitation(token)
    if found.state != "open" or found.invitation is None:
        org = found.invitation.organization if found.invitation is not None else None
        return _page(request, {"state": found.state, "org_name": org.name if org else ""}, STATUS[found.state])
    with org_scope(found.invitation.organization_id):
        return _respond_open(request, token, found.invitation)


def _respond_open(request: HttpRequest, token: str, invitation: Any) -> HttpResponse:
    survey = invitation.survey
    low, high = SCORE_RANGES[survey.kind]
    context = {
        "state": "open", "org_name": invitation.organization.name, "question": survey.question,
        "comment_question": survey.comment_question, "scores": list(range(low, high + 1)),
        "labels": LABELS[survey.kind], "token": token, "kind": survey.kind,
    }  # fmt: skip
    if request.method == "POST":
        try:
            answer_invitation(token, request.POST.get("score"), request.POST.get("comment", ""))
        except AnswerError as exc:
            if exc.state in STATUS:
                return _page(request, {"state": exc.state, "org_name": context["org_name"]}, STATUS[exc.state])
            context.update(error=str(exc), comment=request.POST.get("comment", "")[:5000])
            return _page(request, context, status=400)
        return _page(request, {"state": "thanks", "org_name": context["org_name"]})
    return _page(request, context)
