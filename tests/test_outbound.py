"""The outbound guard (cs_platform/outbound.py) against real listeners on loopback.

Every test runs inside the loopback-only safety belt (tests/outbound_helpers.py): a connection to
any address outside 127.0.0.0/8 and ::1 fails and is recorded, so ``belt.attempts`` proves whether
the guard let a connection be tried at all. Names are resolved by an injected resolver: the test
machines have no DNS, and a resolver whose answer changes is exactly what a rebinding attack is.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time

import pytest

from cs_platform import outbound

from .outbound_helpers import Receiver, free_port_on, loopback_only_fixture  # noqa: F401 - fixture

pytestmark = pytest.mark.usefixtures("loopback_only")


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def resolver_for(table: dict[str, list[str]], calls: list[str] | None = None):
    def resolve(host: str, port: int, timeout: float) -> list[str]:
        if calls is not None:
            calls.append(host)
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return list(table[host])

    return resolve


# --- Every spelling of a refused address ----------------------------------------------------------

REFUSED = [
    ("http://127.0.0.1:{port}/hook", "loopback"),
    ("http://127.1:{port}/hook", "loopback"),
    ("http://2130706433:{port}/hook", "loopback"),
    ("http://0x7f.1:{port}/hook", "loopback"),
    ("http://0x7f000001:{port}/hook", "loopback"),
    ("http://0177.0.0.1:{port}/hook", "loopback"),
    ("http://127.000.000.001:{port}/hook", "loopback"),
    ("http://0.0.0.0:{port}/hook", "unspecified"),
    ("http://0:{port}/hook", "unspecified"),
    ("http://[::]:{port}/hook", "unspecified"),
    ("http://[::1]:{port}/hook", "loopback"),
    ("http://[0:0:0:0:0:0:0:1]:{port}/hook", "loopback"),
    ("http://[::ffff:127.0.0.1]:{port}/hook", "loopback"),
    ("http://[::ffff:7f00:1]:{port}/hook", "loopback"),
    ("http://[::127.0.0.1]:{port}/hook", "reserved"),  # IPv4-compatible (deprecated)
    ("http://[64:ff9b::7f00:1]:{port}/hook", "reserved"),  # NAT64
    ("http://[2002:7f00:1::1]:{port}/hook", "reserved"),  # 6to4
    ("http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", "reserved"),  # Teredo
    ("http://169.254.169.254/latest/meta-data/", "metadata"),
    ("http://[fd00:ec2::254]/latest/meta-data/", "metadata"),
    ("http://168.63.129.16/machine", "metadata"),
    ("http://100.100.100.200/latest/meta-data", "metadata"),
    ("http://192.0.0.192/", "metadata"),
    ("http://169.254.1.1/", "link-local"),
    ("http://[fe80::1]/", "link-local"),
    ("http://10.0.0.1/", "private"),
    ("http://10.255.255.53/", "private"),
    ("http://172.16.5.4/", "private"),
    ("http://192.168.1.1/", "private"),
    ("http://100.64.0.1/", "private"),
    ("http://[fc00::1]/", "private"),
    ("http://[fd12:3456::1]/", "private"),
    ("http://224.0.0.251/", "multicast"),
    ("http://[ff02::1]/", "multicast"),
    ("http://255.255.255.255/", "reserved"),
    ("http://240.0.0.1/", "reserved"),
    ("http://192.0.2.10/", "reserved"),
    ("http://198.18.0.1/", "reserved"),
]
REFUSED_NAMES = [
    ("http://localhost:{port}/hook", "localhost"),
    ("http://LOCALHOST.:{port}/hook", "localhost"),
    ("http://api.localhost:{port}/hook", "localhost"),
    ("http://metadata.google.internal/computeMetadata/v1/", "metadata"),
    ("http://metadata.google.internal./computeMetadata/v1/", "metadata"),
    ("http://metadata/computeMetadata/v1/", "metadata"),
    ("http://testserver/api/v1/accounts/", "Retain itself"),  # a name in ALLOWED_HOSTS
]


@pytest.mark.parametrize("template,words", REFUSED + REFUSED_NAMES)
def test_every_spelling_is_refused_at_delivery_without_a_connection(receiver, loopback_only, template, words):
    calls: list[str] = []
    result = outbound.request("POST", template.format(port=receiver.port), body=b"{}", resolver=resolver_for({}, calls))
    assert (result.status_code, result.outcome) == (None, "refused_address")
    assert words in result.error, result.error
    assert loopback_only.attempts == []  # not even a connection attempt
    assert receiver.requests == []
    assert calls == []  # literals and refused names are never looked up


@pytest.mark.parametrize("template,words", REFUSED + REFUSED_NAMES)
def test_every_spelling_is_refused_at_registration(template, words):
    with pytest.raises(outbound.OutboundRefused) as refused:
        outbound.check_url(template.format(port=8080), resolver=resolver_for({}))
    assert words in refused.value.reason
    assert "Errno" not in refused.value.reason and "Error" not in refused.value.reason


@pytest.mark.parametrize(
    "url",
    ["https://8.8.8.8/hook", "http://1.1.1.1:8443/x", "https://[2606:4700:4700::1111]/", "http://93.184.215.14/"],
)
def test_public_addresses_are_allowed(url):
    target = outbound.check_url(url)
    assert target.ip is not None and outbound.address_problem(target.ip) is None


def test_a_name_is_judged_by_every_address_it_resolves_to():
    public = resolver_for({"hooks.example.test": ["8.8.8.8"]})
    assert outbound.check_url("https://hooks.example.test/x", resolver=public).host == "hooks.example.test"
    for answers, words in (
        (["10.1.2.3"], "private"),
        (["8.8.8.8", "127.0.0.1"], "loopback"),  # one bad answer refuses the whole name
        (["169.254.169.254"], "metadata"),
        (["::ffff:192.168.0.1"], "private"),
    ):
        resolver = resolver_for({"hooks.example.test": answers})
        with pytest.raises(outbound.OutboundRefused) as refused:
            outbound.check_url("https://hooks.example.test/x", resolver=resolver)
        assert "resolves to" in refused.value.reason and words in refused.value.reason
        result = outbound.request("POST", "https://hooks.example.test/x", resolver=resolver)
        assert result.outcome == "refused_address" and words in result.error


@pytest.mark.parametrize(
    "url,words",
    [
        ("file:///etc/passwd", "http"),
        ("gopher://127.0.0.1:6379/_FLUSHALL", "http"),
        ("http://user:pw@example.com/", "credentials"),
        ("http://[::1/", "not a valid URL"),
        ("http://example.com:99999/", "not a valid URL"),
        ("http://example.com:0/", "not a valid URL"),
        ("http://exa mple.com/", "spaces"),
        ("http://1.2.3.4.5/", "IPv4"),
        ("http://ex_ample..com/", "not a valid host"),
        ("http:///path-only", "host"),
    ],
)
def test_malformed_urls_are_refused_in_words(url, words):
    with pytest.raises(outbound.OutboundRefused) as refused:
        outbound.check_url(url)
    assert words in refused.value.reason


# --- The real listener: refused unless allow-listed -------------------------------------------------


def test_a_loopback_receiver_is_reached_only_when_the_operator_allows_its_network(receiver, settings, loopback_only):
    url = receiver.url()
    assert outbound.request("POST", url, body=b"{}").outcome == "refused_address"
    assert receiver.requests == [] and loopback_only.attempts == []

    settings.OUTBOUND_ALLOWED_NETWORKS = ["10.0.0.0/8"]  # another network: still refused
    assert outbound.request("POST", url, body=b"{}").outcome == "refused_address"

    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    result = outbound.request("POST", url, body=b'{"a":1}', headers={"X-Test": "1"})
    assert (result.status_code, result.outcome, result.error, result.ok) == (200, "ok", "", True)
    (seen,) = receiver.requests
    assert seen["body"] == b'{"a":1}' and seen["headers"]["X-Test"] == "1"
    assert seen["headers"]["Host"] == f"127.0.0.1:{receiver.port}"
    # Allowing a network never allows what nothing legitimate answers on.
    settings.OUTBOUND_ALLOWED_NETWORKS = ["0.0.0.0/0", "::/0"]
    for url in ("http://169.254.169.254/", "http://0.0.0.0:1/", "http://224.0.0.1/"):
        assert outbound.request("POST", url).outcome == "refused_address"


def test_localhost_and_the_apps_own_names_stay_refused_even_when_loopback_is_allowed(receiver, settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    settings.ALLOWED_HOSTS = ["retain.example.test", ".corp.example.test", "127.0.0.1"]
    resolver = resolver_for({"retain.example.test": ["127.0.0.1"], "app.corp.example.test": ["127.0.0.1"]})
    for name in ("localhost", "retain.example.test", "app.corp.example.test"):
        result = outbound.request("POST", receiver.url(host=name), resolver=resolver)
        assert result.outcome == "refused_address", name
    assert receiver.requests == []
    # An IP literal in ALLOWED_HOSTS is judged by the address rules (here: an allowed network).
    assert outbound.request("POST", receiver.url()).ok


# --- DNS rebinding: the checked address is the connected address ------------------------------------


def test_rebinding_cannot_move_the_connection_after_the_check(settings, loopback_only):
    """The resolver answers an allowed address first, then loopback (a rebinding attacker's DNS). Two
    real listeners share one port on 127.0.0.2 (the allowed one) and 127.0.0.1 (the forbidden one):
    the request must reach 127.0.0.2, and the name must have been resolved exactly once."""
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.2/32"]
    port = free_port_on("127.0.0.2", "127.0.0.1")
    allowed, forbidden = Receiver("127.0.0.2", port), Receiver("127.0.0.1", port)
    answers = iter([["127.0.0.2"], ["127.0.0.1"], ["127.0.0.1"], ["127.0.0.1"]])
    calls: list[str] = []

    def rebinding(host: str, port: int, timeout: float) -> list[str]:
        calls.append(host)
        return next(answers)

    try:
        result = outbound.request("POST", f"http://rebind.example.test:{port}/hook", body=b"{}", resolver=rebinding)
        assert result.ok, result.error
        assert result.address == "127.0.0.2"
        assert calls == ["rebind.example.test"]
        assert len(allowed.requests) == 1 and forbidden.requests == []
        assert loopback_only.attempts == ["127.0.0.2"]
        assert allowed.requests[0]["headers"]["Host"] == f"rebind.example.test:{port}"
        # The next call resolves again and gets the rebinding answer: refused, nothing sent.
        again = outbound.request("POST", f"http://rebind.example.test:{port}/hook", body=b"{}", resolver=rebinding)
        assert again.outcome == "refused_address" and "loopback" in again.error
        assert forbidden.requests == [] and loopback_only.attempts == ["127.0.0.2"]
    finally:
        allowed.close()
        forbidden.close()


# --- TLS: connect to the checked IP, but SNI and certificate checks use the host name -----------------


@pytest.fixture
def tls_receiver(tmp_path):
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("hooks.example.test")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    receiver = Receiver(tls=context)
    receiver.ca_file = str(ca_file)
    yield receiver
    receiver.close()


def test_https_pins_the_address_and_verifies_the_certificate_against_the_name(tls_receiver, settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    resolver = resolver_for({"hooks.example.test": ["127.0.0.1"], "evil.example.test": ["127.0.0.1"]})
    good = outbound.request(
        "POST",
        tls_receiver.url(host="hooks.example.test"),
        body=b"{}",
        resolver=resolver,
        ca_certs=tls_receiver.ca_file,
    )
    assert good.ok, good.error
    assert tls_receiver.sni == ["hooks.example.test"]
    assert tls_receiver.requests[0]["headers"]["Host"] == f"hooks.example.test:{tls_receiver.port}"

    # Same address, another name: the certificate does not cover it, so nothing is sent.
    bad = outbound.request(
        "POST", tls_receiver.url(host="evil.example.test"), body=b"{}", resolver=resolver, ca_certs=tls_receiver.ca_file
    )
    assert (bad.status_code, bad.outcome) == (None, "tls")
    assert bad.error == "TLS failed: the receiver's certificate is not valid for this host name."
    # And an untrusted CA (the system store does not know the test CA) fails the same way.
    untrusted = outbound.request("POST", tls_receiver.url(host="hooks.example.test"), resolver=resolver)
    assert untrusted.outcome == "tls" and "could not be verified" in untrusted.error
    assert len(tls_receiver.requests) == 1


# --- Redirects, bodies, failures in plain words -----------------------------------------------------


def test_redirects_are_not_followed_and_bodies_are_never_read(receiver, settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    receiver.statuses = [302, 500]
    moved = outbound.request("POST", receiver.url(), body=b"{}")
    assert (moved.status_code, moved.outcome) == (302, "http_status")
    assert moved.error == "The receiver answered HTTP 302, a redirect; redirects are not followed."
    receiver.reply = b"root:x:0:0:root:/root:/bin/bash INTERNAL-SECRET"
    failed = outbound.request("POST", receiver.url(), body=b"{}")
    assert (failed.status_code, failed.error) == (500, "The receiver answered HTTP 500.")
    assert "INTERNAL-SECRET" not in repr(failed)
    assert len(receiver.requests) == 2


def test_failures_are_reported_in_plain_words(settings, receiver):
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    refused = outbound.request("POST", f"http://127.0.0.1:{closed_port}/")
    assert (refused.outcome, refused.error) == ("connect_refused", "The receiver refused the connection.")

    unknown = outbound.request("POST", "http://nowhere.example.test/", resolver=resolver_for({}))
    assert (unknown.outcome, unknown.error) == ("dns", "The host name could not be resolved.")

    # A listener that accepts and closes without answering.
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]

        def accept_and_close() -> None:
            conn, _ = server.accept()
            conn.recv(65536)
            conn.close()

        threading.Thread(target=accept_and_close, daemon=True).start()
        closed = outbound.request("POST", f"http://127.0.0.1:{port}/", body=b"{}")
    assert closed.outcome == "network"
    assert closed.error == "The connection failed before the receiver answered."
    for result in (refused, unknown, closed):
        assert "Errno" not in result.error and "Error" not in result.error


def test_a_slow_receiver_is_cut_off_by_the_deadline(receiver, settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    receiver.hold = threading.Event()  # never answers until released
    result = outbound.request("POST", receiver.url(), body=b"{}", timeout=1)
    assert (result.status_code, result.outcome) == (None, "timeout")
    assert result.error == "Timed out: the receiver did not answer within 1 s."
    receiver.hold.set()


def test_a_receiver_dripping_its_answer_is_cut_off_by_the_deadline(receiver, settings):
    """Each byte arrives before the read timeout, so only a deadline over the whole call ends it."""
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    receiver.drip = 0.4  # "HTTP/1.1 200 OK\r\n" would take about 7 s
    started = time.monotonic()
    result = outbound.request("POST", receiver.url(), body=b"{}", timeout=1.5)
    assert (result.status_code, result.outcome) == (None, "timeout")
    assert time.monotonic() - started < 6  # cut well before the drip could finish (generous bound)


# --- Per-organization slots -------------------------------------------------------------------------


def _clear_slots(org_ids: list[int]) -> None:
    parts = outbound._redis()
    if parts is not None:
        parts[1].delete(*[outbound.slot_key(i) for i in org_ids])
    for i in org_ids:
        outbound._local.leases.pop(i, None)


@pytest.mark.parametrize("backend", ["local", pytest.param("redis", marks=pytest.mark.redis)])
def test_org_slots_limit_calls_per_organization(settings, backend):
    if backend == "redis" and not settings.REDIS_URL:
        pytest.skip("REDIS_URL is not set")
    if backend == "local":
        settings.REDIS_URL = ""
    settings.OUTBOUND_ORG_CONCURRENCY = 2
    org_a, org_b = 910_001, 910_002
    _clear_slots([org_a, org_b])
    try:
        first, second = outbound.acquire_slot(org_a), outbound.acquire_slot(org_a)
        assert first and second and first != second
        assert outbound.acquire_slot(org_a) is None  # the third waits
        assert outbound.slots_held(org_a) == 2
        with outbound.org_slot(org_b) as other:  # another organization is not affected
            assert other is not None
        assert outbound.slots_held(org_b) == 0
        outbound.release_slot(org_a, first)
        third = outbound.acquire_slot(org_a)
        assert third is not None
        outbound.release_slot(org_a, second)
        outbound.release_slot(org_a, third)
        assert outbound.slots_held(org_a) == 0
    finally:
        _clear_slots([org_a, org_b])


@pytest.mark.parametrize("backend", ["local", pytest.param("redis", marks=pytest.mark.redis)])
def test_a_lease_of_a_worker_that_died_expires(settings, backend):
    if backend == "redis" and not settings.REDIS_URL:
        pytest.skip("REDIS_URL is not set")
    org = 910_003
    settings.OUTBOUND_ORG_CONCURRENCY = 1
    if backend == "local":
        settings.REDIS_URL = ""
    _clear_slots([org])
    try:
        if backend == "local":
            assert outbound._local.acquire(org, 1, 100) is not None  # a 0.1 s lease, never released
        else:
            _url, _client, script = outbound._redis()
            assert int(script(keys=[outbound.slot_key(org)], args=[1, 100, "dead-worker"])) == 1
        assert outbound.acquire_slot(org) is None
        time.sleep(0.25)
        token = outbound.acquire_slot(org)
        assert token is not None
        outbound.release_slot(org, token)
    finally:
        _clear_slots([org])


def test_an_unreachable_slot_store_fails_open_rather_than_losing_the_call(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    token = outbound.acquire_slot(910_004)
    assert token == outbound.UNLIMITED
    outbound.release_slot(910_004, token)  # no error either


def test_a_path_that_is_not_ascii_is_sent_percent_encoded(receiver, settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    result = outbound.request("POST", receiver.url("/hooks/café?q=ü&already=%20x"), body=b"{}")
    assert result.ok, result.error
    assert receiver.requests[0]["path"] == "/hooks/caf%C3%A9?q=%C3%BC&already=%20x"


def test_a_receiver_that_never_accepts_the_connection_times_out_at_connect(settings):
    """A listener whose accept queue is full drops new connection attempts, like a black hole."""
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        port = server.getsockname()[1]
        fillers = []
        for _ in range(3):  # fill the queue (never accepted)
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        try:
            result = outbound.request("POST", f"http://127.0.0.1:{port}/", body=b"{}", connect_timeout=1)
        finally:
            for filler in fillers:
                filler.close()
    assert (result.status_code, result.outcome) == (None, "timeout")
    assert result.error == "Timed out: no connection within 1 s."
