"""No secret reaches a log line (issue 16 §5; cs_platform/logging_filters.py).

Requests that fail in every way a public or authenticated caller can make them fail are sent through the
real middleware and views, and the output of the configured console handler (the one every logger reaches)
is searched for the API key, the write key, the Authorization header values, the password and the path
tokens. A view with a bug that copies the credentials into an exception proves the traceback is masked too.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import uuid

import pytest
from django.test import Client

from accounts.models import ApiKey, WriteKey
from cs_platform.logging_filters import MaskPathTokens, mask_tokens
from tests.factories import AccountFactory, ContactFactory

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple 42"


@pytest.fixture
def log_output():
    """What the console handler of settings.LOGGING writes, captured."""
    handler = next(h for h in logging.getLogger().handlers if any(isinstance(f, MaskPathTokens) for f in h.filters))
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    yield buffer
    handler.setStream(previous)


def test_failed_requests_log_no_key_token_or_password(org, alice, log_output, settings):
    settings.LOGIN_RATE = "100000/min"
    api_key, raw_api_key = ApiKey.issue(organization=org, role="admin")
    write_key, raw_write_key = WriteKey.issue(organization=org)
    api_key.revoke()
    write_key.revoke()
    basic = base64.b64encode(f"{raw_write_key}:".encode()).decode()
    contact = ContactFactory(organization=org, account=AccountFactory(organization=org))
    from accounts.mailing import unsubscribe_token

    unsubscribe = unsubscribe_token(contact)
    survey_token, invitation_token = uuid.uuid4().hex, uuid.uuid4().hex

    client = Client(raise_request_exception=False)
    assert client.get("/api/v1/accounts/", HTTP_AUTHORIZATION=f"Bearer {raw_api_key}").status_code == 401
    body = json.dumps({"type": "track", "event": "x", "userId": "u1", "writeKey": raw_write_key})
    track = client.post("/v1/track", data=body, content_type="application/json", HTTP_AUTHORIZATION=f"Basic {basic}")
    assert track.status_code == 401
    for _ in range(6):  # wrong password until django-axes locks the pair (it logs each failure)
        client.post("/login/", {"username": alice.email, "password": PASSWORD})
    assert client.get(f"/invitations/{invitation_token}/").status_code == 404
    assert client.get(f"/s/{survey_token}/").status_code in (404, 410)
    client.get(f"/u/{unsubscribe}x/")  # a tampered link: refused, logged as a 404

    output = log_output.getvalue()
    # The capture works: the failures were logged.
    assert "Unauthorized: /api/v1/accounts/" in output
    assert "Not Found: /invitations/***/" in output and "/s/***/" in output
    for secret in (raw_api_key, raw_api_key[4:], raw_write_key, basic, PASSWORD, survey_token, invitation_token,
                   unsubscribe):  # fmt: skip
        assert secret not in output


@pytest.mark.urls("tests.leaky_urls")
def test_a_bug_that_puts_credentials_in_an_exception_leaks_none_of_them(org, log_output):
    _key, raw = ApiKey.issue(organization=org, role="admin")
    client = Client(raise_request_exception=False)
    response = client.post(
        f"/leaky/?next=/invitations/{'t' * 30}/",
        {"password": "hunter2-and-more"},
        HTTP_AUTHORIZATION=f"Bearer {raw}",
    )
    assert response.status_code == 500
    output = log_output.getvalue()
    assert "Internal Server Error: /leaky/" in output and "RuntimeError: could not use Bearer ***" in output
    assert raw not in output and raw[4:] not in output
    assert "hunter2-and-more" not in output and "t" * 30 not in output


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("GET /s/AbC123tok/ HTTP/1.1", "AbC123tok"),
        ("GET /u/1:2:sig-nature/ 200", "1:2:sig-nature"),
        ('"GET /invitations/Zz_9-token/ HTTP/1.1" 200', "Zz_9-token"),
        ("key rtn_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopq used", "ABCDEFGHIJKLMNOP"),
        ("Authorization: Basic cnRuX2FiYzpkZWY=", "cnRuX2FiYzpkZWY="),
        ("username=a@b.c&password=s3cret!", "s3cret!"),
        ('{"password": "s3cret!", "x": 1}', "s3cret!"),
    ],
)
def test_each_kind_of_secret_is_masked(text, secret):
    assert secret not in mask_tokens(text) and "***" in mask_tokens(text)


def test_ordinary_words_are_left_alone():
    for text in ("basic information about the token expiry", "Bearer of good news", "GET /o/acme/ 200"):
        assert mask_tokens(text) == text
