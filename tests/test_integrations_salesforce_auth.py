"""Salesforce's OAuth refresh token flow ("OAuth 2.0 Refresh Token Flow for Renewed Sessions",
https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_refresh_token_flow.htm) against the local
Salesforce's ``POST /services/oauth2/token``: a ``401 INVALID_SESSION_ID`` with a refresh token (+ the
Connected App's client id and secret) stored triggers one refresh through the outbound guard and one retry;
the new access token is stored encrypted; a refused refresh fails the run with the reason.
"""

from __future__ import annotations

import pytest
from django.db import connection as db

from accounts.models import Account
from integrations import services
from integrations.choices import JobStatus
from integrations.models import Connection

from .connector_helpers import connect, run, sync_of
from .fake_salesforce import CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, TOKEN, FakeSalesforce

pytestmark = [
    pytest.mark.django_db(transaction=False),
    pytest.mark.usefixtures("loopback_allowed"),
]

TOKEN_PATH = "/services/oauth2/token"


@pytest.fixture
def sf():
    with FakeSalesforce() as fake:
        fake.batch_size = 100
        for i in range(1, 251):
            fake.add_account(i)
        yield fake


def creds(**overrides: str) -> dict[str, str]:
    return {
        "access_token": TOKEN, "refresh_token": REFRESH_TOKEN, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
        **overrides,
    }  # fmt: skip


def stored_column(conn: Connection) -> str:
    with db.cursor() as cursor:
        cursor.execute("SELECT credentials_encrypted FROM integrations_connection WHERE id = %s", [conn.pk])
        return cursor.fetchone()[0]


def test_an_expired_token_mid_sync_is_refreshed_once_stored_encrypted_and_the_request_retried(org, sf):
    conn = connect(org, "salesforce", "Salesforce", sf.url, creds())
    sync = sync_of(conn, "accounts")
    r = services.start_run(sync)
    from integrations.sync import execute_run

    assert execute_run(r.pk, max_pages=1, sleep=lambda s: None) is False
    sf.expire_token()  # the session times out between two queryMore calls
    assert execute_run(r.pk, max_pages=100, sleep=lambda s: None) is True
    r.refresh_from_db()
    assert r.status == JobStatus.SUCCEEDED, r.error
    assert r.created == 250 and Account.objects.for_org(org).count() == 250
    assert sf.count("POST", TOKEN_PATH) == 1 and len(sf.issued) == 1
    data_calls = [req for req in sf.requests if req[1] != TOKEN_PATH]
    # The query, the refused queryMore, the same queryMore again, the last queryMore (the accounts name no
    # owner: no User query); the run's count includes the token call: it went through the run's ConnectorHttp
    # (the outbound guard's pool, the token bucket), like every other request.
    assert len(data_calls) == 4 and r.request_count == 5
    conn.refresh_from_db()
    assert conn.credentials["access_token"] == sf.issued[0]
    assert conn.credentials["refresh_token"] == REFRESH_TOKEN  # kept: Salesforce does not rotate it here
    raw = stored_column(conn)
    assert sf.issued[0] not in raw and REFRESH_TOKEN not in raw  # ciphertext only
    # The next run uses the stored token: no refresh.
    again = run(sync_of(conn, "accounts"))
    assert again.status == JobStatus.SUCCEEDED and sf.count("POST", TOKEN_PATH) == 1


def test_a_refused_refresh_fails_the_run_with_the_reason_and_never_loops(org, sf):
    conn = connect(org, "salesforce", "Salesforce", sf.url, creds(refresh_token="revoked"))
    sf.expire_token()
    r = run(sync_of(conn, "accounts"))
    assert r.status == JobStatus.FAILED
    assert "refused to refresh" in r.error and "invalid_grant" in r.error and "revoked" not in r.error
    assert sf.count("POST", TOKEN_PATH) == 1  # one try, no retry loop
    assert sync_of(conn, "accounts").cursor == {}
    conn.refresh_from_db()
    assert conn.credentials["access_token"] == TOKEN  # nothing stored

    conn2 = connect(org, "salesforce", "Wrong client", sf.url, creds(client_secret="nope"))
    r2 = run(sync_of(conn2, "accounts"))
    assert r2.status == JobStatus.FAILED and "invalid_client" in r2.error and "nope" not in r2.error


def test_without_a_refresh_token_a_401_says_to_replace_the_token(org, sf):
    conn = connect(org, "salesforce", "Salesforce", sf.url, {"access_token": TOKEN})
    sf.expire_token()
    r = run(sync_of(conn, "accounts"))
    assert r.status == JobStatus.FAILED and "INVALID_SESSION_ID" in r.error and "replace it" in r.error
    assert sf.count("POST", TOKEN_PATH) == 0


def test_test_connection_refreshes_too(org, sf):
    conn = connect(org, "salesforce", "Salesforce", sf.url, creds())
    sf.expire_token()
    ok, message = services.test_connection(conn)
    assert ok, message
    assert sf.count("POST", TOKEN_PATH) == 1
    conn.refresh_from_db()
    assert conn.credentials["access_token"] == sf.issued[0]


def test_a_refreshed_token_refused_again_fails_the_run_after_one_refresh(org, sf):
    conn = connect(org, "salesforce", "Salesforce", sf.url, creds())
    sf.issue_unusable_tokens = True
    sf.expire_token()
    r = run(sync_of(conn, "accounts"))
    assert r.status == JobStatus.FAILED and "again after this run refreshed" in r.error
    assert sf.count("POST", TOKEN_PATH) == 1 and r.request_count == 3  # refused, token, refused again
