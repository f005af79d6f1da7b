"""The one door for outbound HTTP: every call Retain makes to a URL a tenant chose goes through here.

Webhook deliveries use it today; the CRM connectors and Slack will reuse it. It stops Retain from
being turned into a tool against its own network (server-side request forgery), and keeps one
tenant's slow receiver from holding everybody's background work.

**The address rules** (:func:`address_problem`). A request may go only to a public internet
address. Refused, in IPv4 and IPv6 and whatever the spelling (``127.1``, ``2130706433``,
``0x7f.1``, ``[::ffff:127.0.0.1]``...): loopback, private (RFC 1918, unique-local, carrier-grade
NAT), link-local, multicast and broadcast, unspecified (``0.0.0.0``, ``::``), documentation,
benchmarking and other reserved ranges, the IPv6 transition ranges that embed an IPv4 address
(6to4, Teredo, NAT64), and the cloud metadata services (``169.254.169.254``, ``fd00:ec2::254``,
Azure's ``168.63.129.16``, ...). Host names that name the metadata service or Retain itself (any
name in ``ALLOWED_HOSTS``) are refused before any lookup. The operator may allow private networks
for on-premise receivers with ``OUTBOUND_ALLOWED_NETWORKS``; unspecified, multicast and metadata
addresses stay refused even then.

**Checked address = connected address.** :func:`request` resolves the host once, refuses the whole
request if *any* answer is not allowed, and opens the TCP connection to the very address it checked
(urllib3's connection classes, given the IP). Nothing resolves the name a second time, so a DNS
answer that changes between check and connect (DNS rebinding) changes nothing. For ``https`` the
TLS handshake still sends the host name (SNI) and the certificate is verified against the host
name, not the IP. Redirects are never followed. The response body is never read: callers get the
status code, the duration and, on failure, a reason in plain words.

**Why not a library.** ``advocate`` is unmaintained (last release 2020). ``requests-hardened``
(Saleor) pins the checked address the same way, but it can only allow loopback, not an operator's
private networks, checks only the first DNS answer and relies on the running Python's
``is_private`` table (which changed in 3.11.10/3.12.4); ``drawbridge`` and ``safehttpx`` are young
or async-only. The technique is small (resolve, check, connect to the IP with ``server_hostname``
and ``assert_hostname`` set), so it lives here on top of urllib3, with the rules in one table and
tests for every address form.

**Vendor APIs** (:class:`GuardedPool`). Connectors (``integrations``) need the response body. A
``GuardedPool`` is a urllib3 ``RequestMethods`` (the interface of ``urllib3.PoolManager``: ``request``,
``urlopen``), so an official vendor client built on urllib3 (``hubspot-api-client``'s generated
``rest.py``) is given one as its ``pool_manager`` and every call it makes goes through the same rules:
the host is judged and resolved **once** for the pool's life (one sync run), every answer checked,
and the connection opened to the checked address with the host name kept for ``Host``, SNI and
certificate checks. Redirects are not followed, a body is read up to ``OUTBOUND_MAX_RESPONSE_BYTES``
(``ResponseTooLarge`` past it), each call is bounded by the connect and total timeouts. It raises
:class:`OutboundRefused` for a refused address (never sends) and urllib3's errors for network trouble.

**Fairness** (:func:`org_slot`). At most ``OUTBOUND_ORG_CONCURRENCY`` outbound calls per
organization run at once, across every worker (a lease in Redis, or in the process without it).
A task that finds its organization's slots taken does not wait: it is queued again a moment later
and the worker takes the next message, which may be another organization's. Calls connect within
``OUTBOUND_CONNECT_TIMEOUT`` and end within ``OUTBOUND_TIMEOUT`` whatever the receiver does.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import logging
import re
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from django.conf import settings
from django.http.request import validate_host

__all__ = [
    "IPAddress",
    "OutboundRefused",
    "GuardedPool",
    "OutboundResult",
    "ResponseTooLarge",
    "Target",
    "acquire_slot",
    "address_problem",
    "check_url",
    "checked_addresses",
    "host_of",
    "org_slot",
    "parse_url",
    "release_slot",
    "request",
    "resolve",
]

logger = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
#: ``resolver(host, port, timeout)`` → the addresses the name resolves to (strings). Injected in tests.
Resolver = Callable[[str, int, float], list[str]]

# --- The address rules --------------------------------------------------------------------------

#: Cloud metadata services: refused always, even inside an allowed network.
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, DigitalOcean, OpenStack...
        "169.254.170.2",  # AWS ECS task metadata
        "169.254.169.253",  # AWS VPC DNS
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "fd00:ec2::253",
        "100.100.100.200",  # Alibaba Cloud
        "168.63.129.16",  # Azure WireServer (a public address!)
        "192.0.0.192",  # Oracle Cloud
    )
)
#: Host names of metadata services (refused before any lookup).
METADATA_NAMES: frozenset[str] = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "metadata.azure.com",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.tencentyun.com",
    }
)


def _nets(*cidrs: str) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(c) for c in cidrs)


# Each group's words become the refusal reason. The table follows the IANA special-purpose address
# registries rather than the running Python's ipaddress flags, whose tables changed between patch
# releases; ``is_global`` is checked as well, as a second opinion.
_LOOPBACK = _nets("127.0.0.0/8", "::1/128")
_PRIVATE = _nets("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
_LINK_LOCAL = _nets("169.254.0.0/16", "fe80::/10", "fec0::/10")
_RESERVED_V4 = _nets(
    "0.0.0.0/8",  # "this network"
    "192.0.0.0/24",  # IETF protocol assignments
    "192.0.2.0/24",  # documentation
    "192.88.99.0/24",  # 6to4 relay anycast
    "198.18.0.0/15",  # benchmarking
    "198.51.100.0/24",  # documentation
    "203.0.113.0/24",  # documentation
    "240.0.0.0/4",  # reserved, and 255.255.255.255
)
#: IPv6: only global unicast (2000::/3) is public, minus these ranges inside it.
_GLOBAL_V6 = ipaddress.ip_network("2000::/3")
_RESERVED_V6 = _nets(
    "2001::/23",  # IETF protocol assignments, Teredo (2001::/32) included
    "2001:db8::/32",  # documentation
    "2002::/16",  # 6to4: embeds an IPv4 address
    "3fff::/20",  # documentation
)
_MULTICAST = _nets("224.0.0.0/4", "ff00::/8")


@functools.lru_cache(maxsize=16)
def _parse_networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def allowed_networks() -> tuple[Network, ...]:
    """The operator's ``OUTBOUND_ALLOWED_NETWORKS`` (parsed once per distinct value)."""
    return _parse_networks(tuple(getattr(settings, "OUTBOUND_ALLOWED_NETWORKS", ()) or ()))


def _in(ip: IPAddress, nets: tuple[Network, ...]) -> bool:
    return any(ip.version == net.version and ip in net for net in nets)


def address_problem(ip: IPAddress | str) -> str | None:
    """Why an outbound call may not go to ``ip`` (plain words), or ``None`` when it may."""
    ip = ipaddress.ip_address(ip) if isinstance(ip, str) else ip
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            ip = ipaddress.IPv6Address(str(ip).split("%", 1)[0])
        if ip.ipv4_mapped is not None:  # ::ffff:127.0.0.1 is 127.0.0.1
            ip = ip.ipv4_mapped
    # Never, whatever the operator allowed: nothing legitimate answers there.
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if ip.is_unspecified:
        return "an unspecified address (0.0.0.0 or ::)"
    if _in(ip, _MULTICAST):
        return "a multicast address"
    if _in(ip, allowed_networks()):
        return None
    if _in(ip, _LOOPBACK):
        return "a loopback address"
    if _in(ip, _LINK_LOCAL):
        return "a link-local address"
    if _in(ip, _PRIVATE):
        return "a private network address"
    if isinstance(ip, ipaddress.IPv4Address):
        if _in(ip, _RESERVED_V4):
            return "a reserved address"
    elif ip not in _GLOBAL_V6 or _in(ip, _RESERVED_V6):
        return "a reserved address"
    if not ip.is_global:
        return "a reserved address"
    return None


# --- URLs ---------------------------------------------------------------------------------------


class OutboundRefused(Exception):
    """The URL or its address is not allowed; ``reason`` says why in plain words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Target:
    """A parsed, syntactically acceptable URL. ``host`` is a canonical IP (``ip`` set) or a lower-case
    ASCII name without trailing dot; ``host_header`` is what the receiver sees in ``Host``."""

    scheme: str
    host: str
    port: int
    path: str
    ip: IPAddress | None
    host_header: str


_NAME_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
# WHATWG URL: a host whose last label is a number is an IPv4 address (127.1, 0x7f.1, 2130706433).
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")


def _legacy_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """``127.1``, ``0x7f.0.0.1``, ``0177.0.0.1``, ``2130706433``: what inet_aton (and so the system
    resolver, curl and browsers) read as an IPv4 address. ``None`` if the host is not numeric."""
    labels = host.split(".")
    if not _NUMERIC_LABEL.match(labels[-1]):
        return None
    if not all(_NUMERIC_LABEL.match(label) for label in labels):
        raise OutboundRefused("The host is neither a valid name nor a valid IPv4 address.")
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        raise OutboundRefused("The host is neither a valid name nor a valid IPv4 address.") from None


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def parse_url(url: str) -> Target:
    """Syntax only: an absolute ``http``/``https`` URL with a valid host, a valid port and no
    credentials. IP literals are decoded (every spelling) but not yet judged."""
    url = (url or "").strip()
    if any(ch in url for ch in "\x00\r\n\t "):
        raise OutboundRefused("The URL contains spaces or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
        raw_host = parts.hostname or ""
    except ValueError:
        raise OutboundRefused("This is not a valid URL (check the host and the port).") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise OutboundRefused("Use an http:// or https:// URL.")
    if not raw_host:
        raise OutboundRefused("The URL needs a host name.")
    if parts.username is not None or parts.password is not None:
        raise OutboundRefused("Do not put credentials in the URL; verify the signature instead.")
    if port == 0:
        raise OutboundRefused("This is not a valid URL (check the host and the port).")
    port = port or (443 if scheme == "https" else 80)
    # The request line is ASCII: percent-encode anything else, keeping what is already encoded.
    path = quote(parts.path or "/", safe="/%:@!$&'()*+,;=~-._")
    if parts.query:
        path += "?" + quote(parts.query, safe="/%:@!$&'()*+,;=?~-._")

    host = raw_host.rstrip(".")  # urlsplit already dropped the brackets of an IPv6 literal
    ip = _ip_literal(host)
    if ip is None:
        try:
            host = host.encode("idna").decode("ascii").lower()
        except UnicodeError:
            raise OutboundRefused("The host is not a valid host name.") from None
        ip = _legacy_ipv4(host)
        if ip is None and not all(_NAME_LABEL.match(label) for label in host.split(".")):
            raise OutboundRefused("The host is not a valid host name.")
    if ip is not None:
        host = str(ip)
        shown = f"[{host}]" if ip.version == 6 else host
    else:
        shown = host
    default_port = 443 if scheme == "https" else 80
    host_header = shown if port == default_port else f"{shown}:{port}"
    return Target(scheme=scheme, host=host, port=port, path=path, ip=ip, host_header=host_header)


def host_of(url: str) -> str:
    """The host (and a non-default port) of a URL, for people who may not see the full URL: the path
    and query of a webhook URL often carry a token. Empty when the URL cannot be parsed."""
    try:
        return parse_url(url).host_header
    except OutboundRefused:
        return ""


def _own_host_names() -> list[str]:
    """``ALLOWED_HOSTS`` patterns that are names: a URL naming Retain itself is refused. IP literals in
    the list are judged by the address rules instead ('*' names nothing)."""
    names = []
    for pattern in getattr(settings, "ALLOWED_HOSTS", []):
        bare = pattern.strip("[]").lstrip(".")
        if pattern == "*" or not bare:
            continue
        try:
            ipaddress.ip_address(bare)
        except ValueError:
            names.append(pattern.lower())
    return names


def name_problem(host: str) -> str | None:
    """Why a host *name* is refused before any lookup, or ``None``."""
    if host in METADATA_NAMES:
        return "The host is a cloud metadata service."
    if host == "localhost" or host.endswith(".localhost"):
        return "The host is this machine (localhost)."
    if validate_host(host, _own_host_names()):
        return "The host is Retain itself."
    return None


def _refusal(target: Target, problem: str, *, resolved: bool, subject: str = "") -> OutboundRefused:
    named = f"{subject} {target.host}" if subject else ""
    if resolved:
        return OutboundRefused(f"Address not allowed: {named or 'the host name'} resolves to {problem}.")
    return OutboundRefused(f"Address not allowed: {named or target.host} is {problem}.")


def _hint() -> str:
    return (
        " Retain connects only to public internet addresses; an operator can allow a private network "
        "with OUTBOUND_ALLOWED_NETWORKS."
    )


def _judge(target: Target, addresses: list[IPAddress], *, resolved: bool, subject: str = "") -> None:
    for ip in addresses:
        problem = address_problem(ip)
        if problem is not None:
            error = _refusal(target, problem, resolved=resolved, subject=subject)
            if "metadata" not in problem and "unspecified" not in problem and "multicast" not in problem:
                error.reason += _hint()
            raise error


def system_resolver(host: str, port: int, timeout: float) -> list[str]:
    """The system resolver, bounded in time (``getaddrinfo`` itself has no timeout). Raises
    ``socket.gaierror`` for an unknown name and ``TimeoutError`` past ``timeout``."""
    box: dict[str, Any] = {}

    def lookup() -> None:
        try:
            box["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except Exception as exc:  # noqa: BLE001 - handed to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=lookup, name="outbound-resolve", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"resolving {host} took more than {timeout} s")
    if "error" in box:
        raise box["error"]
    seen: list[str] = []
    for family, _type, _proto, _canon, sockaddr in box["infos"]:
        if family in (socket.AF_INET, socket.AF_INET6) and sockaddr[0] not in seen:
            seen.append(sockaddr[0])
    return seen


def resolve(target: Target, *, resolver: Resolver | None = None, timeout: float | None = None) -> list[IPAddress]:
    """The addresses to connect to: the literal itself, or every answer of one lookup of the name."""
    if target.ip is not None:
        return [target.ip]
    timeout = timeout if timeout is not None else _connect_timeout()
    answers = (resolver or system_resolver)(target.host, target.port, timeout)
    addresses = []
    for answer in answers:
        ip = ipaddress.ip_address(answer.split("%", 1)[0])
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise socket.gaierror(socket.EAI_NONAME, "no address")
    return addresses


def checked_addresses(
    target: Target, *, resolver: Resolver | None = None, timeout: float | None = None, subject: str = ""
) -> list[IPAddress]:
    """The guard's check of one connection: a refused name, then one lookup (or the literal) whose every
    answer must be allowed. Answers the addresses to connect to (never look the name up again). Raises
    ``OutboundRefused`` (``subject`` names the host in its reason, e.g. "the mailbox host"), ``TimeoutError``
    or ``OSError`` when the name does not resolve. Used by :func:`request`, :class:`GuardedPool` and the
    email capture's IMAP poll."""
    if target.ip is None and (problem := name_problem(target.host)):
        raise OutboundRefused(problem)
    addresses = resolve(target, resolver=resolver, timeout=timeout)
    _judge(target, addresses, resolved=target.ip is None, subject=subject)
    return addresses


def check_url(url: str, *, resolver: Resolver | None = None) -> Target:
    """The registration-time check, for early feedback: syntax, refused names, refused literal
    addresses, and a name that resolves *now* to a refused address. A name that does not resolve is
    accepted (its DNS may not exist yet); the check made at every call by :func:`request` is the one
    that counts."""
    target = parse_url(url)
    if target.ip is not None:
        _judge(target, [target.ip], resolved=False)
        return target
    problem = name_problem(target.host)
    if problem:
        raise OutboundRefused(problem)
    try:
        addresses = resolve(target, resolver=resolver, timeout=min(2.0, _connect_timeout()))
    except (OSError, ValueError):
        return target
    _judge(target, addresses, resolved=True)
    return target


# --- The request --------------------------------------------------------------------------------


@dataclass
class OutboundResult:
    """What came of one call: the HTTP status (``None`` when no answer), how long it took, and for a
    failure a reason in plain words. ``outcome`` is a stable code for programs: ``ok``, ``http_status``,
    ``refused_address``, ``dns``, ``connect_refused``, ``timeout``, ``tls``, ``network``."""

    status_code: int | None
    outcome: str
    error: str
    duration_ms: int
    address: str = ""  # the address connected to (for logs; never shown to tenants)

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _connect_timeout() -> float:
    return float(getattr(settings, "OUTBOUND_CONNECT_TIMEOUT", 3))


def _total_timeout() -> float:
    return float(getattr(settings, "OUTBOUND_TIMEOUT", 10))


def _connection(target: Target, ip: IPAddress, timeout: float, ca_certs: str | None) -> Any:
    from urllib3.connection import HTTPConnection, HTTPSConnection

    if target.scheme == "http":
        return HTTPConnection(str(ip), target.port, timeout=timeout)
    # Connect to the checked IP, but present and verify the host name: SNI and certificate checks are
    # about the name the tenant registered, never the address.
    name = target.host if target.ip is None else str(target.ip)
    return HTTPSConnection(
        str(ip),
        target.port,
        timeout=timeout,
        cert_reqs="CERT_REQUIRED",
        server_hostname=name,
        assert_hostname=name,
        ca_certs=ca_certs or getattr(settings, "OUTBOUND_CA_BUNDLE", "") or None,
    )


def _classify(exc: BaseException, phase: str, connect_timeout: float, timeout: float) -> tuple[str, str]:
    """(outcome, plain words) for a failure; never Python's exception text."""
    from urllib3.exceptions import ConnectTimeoutError, NewConnectionError, ProtocolError, ReadTimeoutError
    from urllib3.util.ssl_match_hostname import CertificateError

    causes: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and len(causes) < 6:
        causes.append(seen)
        seen = seen.__cause__ or seen.__context__
    if any(isinstance(c, CertificateError) or getattr(c, "verify_code", None) == 62 for c in causes):
        return "tls", "TLS failed: the receiver's certificate is not valid for this host name."
    if any(isinstance(c, ssl.SSLCertVerificationError) for c in causes):
        return "tls", (
            "TLS failed: the receiver's certificate could not be verified "
            "(expired, self-signed or from an unknown authority)."
        )
    if any(isinstance(c, ssl.SSLError) for c in causes):
        return "tls", "TLS failed: the secure connection could not be set up."
    if any(isinstance(c, ConnectionRefusedError) for c in causes):
        return "connect_refused", "The receiver refused the connection."
    if any(isinstance(c, (ConnectTimeoutError, TimeoutError, socket.timeout, ReadTimeoutError)) for c in causes):
        if phase == "connect":
            return "timeout", f"Timed out: no connection within {connect_timeout:g} s."
        return "timeout", f"Timed out: the receiver did not answer within {timeout:g} s."
    if any(isinstance(c, NewConnectionError) for c in causes) or phase == "connect":
        return "network", "The receiver could not be reached."
    if any(isinstance(c, ProtocolError) for c in causes):
        return "network", "The connection was closed before the receiver answered."
    return "network", "The connection failed before the receiver answered."


def request(
    method: str,
    url: str,
    *,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
    resolver: Resolver | None = None,
    connect_timeout: float | None = None,
    timeout: float | None = None,
    ca_certs: str | None = None,
) -> OutboundResult:
    """Send one request through the guard. Never raises for network trouble or a refused address:
    the result says what happened. Redirects are not followed; the response body is not read.

    ``timeout`` bounds the whole call after the connection is made (a receiver that drips its answer
    a byte at a time is cut off), ``connect_timeout`` each connection attempt.
    """
    started = time.monotonic()
    connect_timeout = _connect_timeout() if connect_timeout is None else connect_timeout
    timeout = _total_timeout() if timeout is None else timeout

    def result(status: int | None, outcome: str, error: str, address: str = "") -> OutboundResult:
        return OutboundResult(status, outcome, error, int((time.monotonic() - started) * 1000), address)

    try:
        target = parse_url(url)
        try:
            addresses = checked_addresses(target, resolver=resolver, timeout=connect_timeout)
        except TimeoutError:
            return result(None, "timeout", "Timed out: the host name could not be resolved in time.")
        except (OSError, ValueError):
            return result(None, "dns", "The host name could not be resolved.")
    except OutboundRefused as exc:
        logger.warning("outbound call refused: %s (%s)", exc.reason, host_of(url) or "unparsable URL")
        return result(None, "refused_address", exc.reason)

    send_headers = {**(headers or {}), "Host": target.host_header}
    outcome: tuple[str, str] = ("network", "The receiver could not be reached.")
    for ip in addresses[:3]:  # every answer was checked; try the first few in order
        conn = _connection(target, ip, connect_timeout, ca_certs)
        try:
            try:
                conn.connect()
            except Exception as exc:  # noqa: BLE001 - classified into plain words
                outcome = _classify(exc, "connect", connect_timeout, timeout)
                continue
            conn.timeout = timeout  # from here on each read may wait up to the whole budget
            conn.sock.settimeout(timeout)
            # A hard deadline for everything after connecting: read timeouts apply per socket read,
            # so without it a receiver sending one byte every few seconds could hold the worker.
            remaining = max(0.1, timeout - (time.monotonic() - started))
            expired = threading.Event()
            watchdog = threading.Timer(remaining, _cut, args=(conn.sock, expired))
            watchdog.daemon = True
            watchdog.start()
            try:
                conn.request(method, target.path, body=body, headers=send_headers)
                response = conn.getresponse()
                status = response.status
            except Exception as exc:  # noqa: BLE001
                kind, words = _classify(exc, "read", connect_timeout, timeout)
                if expired.is_set():
                    kind, words = "timeout", f"Timed out: the receiver did not answer within {timeout:g} s."
                return result(None, kind, words, str(ip))
            finally:
                watchdog.cancel()
        finally:
            with contextlib.suppress(Exception):
                conn.close()
        if 200 <= status < 300:
            return result(status, "ok", "", str(ip))
        words = f"The receiver answered HTTP {status}."
        if 300 <= status < 400:
            words = f"The receiver answered HTTP {status}, a redirect; redirects are not followed."
        return result(status, "http_status", words, str(ip))
    return result(None, *outcome)


def _cut(sock: socket.socket | None, expired: threading.Event) -> None:
    """Watchdog: end a call that ran out of time (the blocked read returns at once)."""
    expired.set()
    if sock is not None:
        with contextlib.suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


# --- Guarded pool for vendor APIs (bodies read) ----------------------------------------------------


class ResponseTooLarge(Exception):
    """The answer's body is larger than ``OUTBOUND_MAX_RESPONSE_BYTES``."""


def _max_response_bytes() -> int:
    return int(getattr(settings, "OUTBOUND_MAX_RESPONSE_BYTES", 32 * 1024 * 1024))


def _request_methods_base() -> type:
    from urllib3._request_methods import RequestMethods

    return RequestMethods


class GuardedPool(_request_methods_base()):  # type: ignore[misc]
    """A ``urllib3.PoolManager`` look-alike whose every request passes the address rules.

    ``GuardedPool().request("GET", url, fields=...)`` answers a ``urllib3.HTTPResponse`` with its body
    read (``.data``, ``.status``, ``.headers``). Hosts are checked and resolved once per pool, then the
    checked address is reused (keep-alive); make one pool per run. ``resolver`` is injected in tests.
    """

    def __init__(self, *, resolver: Resolver | None = None, ca_certs: str | None = None) -> None:
        super().__init__(headers=None)
        self.resolver = resolver
        self.ca_certs = ca_certs
        self._pools: dict[tuple[str, str, int], Any] = {}
        self._lock = threading.Lock()

    def _pool_for(self, target: Target) -> Any:
        key = (target.scheme, target.host, target.port)
        with self._lock:
            pool = self._pools.get(key)
        if pool is not None:
            return pool
        ip = checked_addresses(target, resolver=self.resolver, timeout=_connect_timeout())[0]
        from urllib3 import HTTPConnectionPool, HTTPSConnectionPool

        host = str(ip)
        if target.scheme == "http":
            pool = HTTPConnectionPool(host, target.port, maxsize=2, block=False)
        else:
            name = target.host if target.ip is None else str(target.ip)
            pool = HTTPSConnectionPool(
                host,
                target.port,
                maxsize=2,
                block=False,
                cert_reqs="CERT_REQUIRED",
                server_hostname=name,
                assert_hostname=name,
                ca_certs=self.ca_certs or getattr(settings, "OUTBOUND_CA_BUNDLE", "") or None,
            )
        with self._lock:
            self._pools[key] = pool
        return pool

    def urlopen(self, method: str, url: str, redirect: bool = False, **kw: Any) -> Any:
        """One request through the guard (``RequestMethods.request`` encodes ``fields`` and calls this)."""
        from urllib3 import HTTPResponse, Timeout

        target = parse_url(url)
        pool = self._pool_for(target)
        headers = {**(kw.get("headers") or {}), "Host": target.host_header}
        response = pool.urlopen(
            method,
            target.path,
            body=kw.get("body"),
            headers=headers,
            redirect=False,
            retries=False,
            preload_content=False,
            timeout=Timeout(connect=_connect_timeout(), read=_total_timeout()),
        )
        limit = _max_response_bytes()
        try:
            data = response.read(limit + 1)
        finally:
            response.release_conn()
        if len(data) > limit:
            raise ResponseTooLarge(f"The answer is larger than {limit} bytes.")
        return HTTPResponse(
            body=data,
            headers=response.headers,
            status=response.status,
            reason=response.reason,
            preload_content=True,
            request_method=method,
        )

    def clear(self) -> None:
        with self._lock:
            pools, self._pools = self._pools, {}
        for pool in pools.values():
            with contextlib.suppress(Exception):
                pool.close()


# --- Per-organization concurrency ---------------------------------------------------------------

SLOT_PREFIX = "retain:outbound:slots"
#: The token handed out when the slot store is unreachable (see :func:`acquire_slot`).
UNLIMITED = "unlimited"

# Atomic in Redis: drop expired leases (a worker that died), then take a slot if one is free. Server
# time, so workers on several hosts need no synchronised clocks.
_ACQUIRE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
  return 1
end
return 0
"""


def _lease_ms() -> int:
    # Longer than any call can last, so a lease is never lost under a running call; a crashed
    # worker's lease frees itself after that.
    return int((_connect_timeout() * 3 + _total_timeout() + 30) * 1000)


def _limit() -> int:
    return max(1, int(getattr(settings, "OUTBOUND_ORG_CONCURRENCY", 2)))


def _redis() -> Any | None:
    url = getattr(settings, "REDIS_URL", "")
    if not url:
        return None
    import redis

    cached = getattr(_redis, "cached", None)
    if cached is None or cached[0] != url:
        client = redis.Redis.from_url(url)
        cached = (url, client, client.register_script(_ACQUIRE_LUA))
        _redis.cached = cached  # type: ignore[attr-defined]
    return cached


class _LocalSlots:
    """The same leases inside one process: the demo (no Redis) runs one outbound worker process."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.leases: dict[int, dict[str, float]] = {}

    def acquire(self, organization_id: int, limit: int, lease_ms: int) -> str | None:
        now = time.monotonic()
        with self.lock:
            leases = {t: exp for t, exp in self.leases.get(organization_id, {}).items() if exp > now}
            self.leases[organization_id] = leases
            if len(leases) >= limit:
                return None
            token = uuid.uuid4().hex
            leases[token] = now + lease_ms / 1000
            return token

    def release(self, organization_id: int, token: str) -> None:
        with self.lock:
            self.leases.get(organization_id, {}).pop(token, None)

    def held(self, organization_id: int) -> int:
        now = time.monotonic()
        with self.lock:
            return sum(1 for exp in self.leases.get(organization_id, {}).values() if exp > now)


_local = _LocalSlots()


def slot_key(organization_id: int) -> str:
    return f"{SLOT_PREFIX}:{organization_id}"


def acquire_slot(organization_id: int) -> str | None:
    """A lease on one of the organization's ``OUTBOUND_ORG_CONCURRENCY`` slots, or ``None`` when all
    are taken (then come back later rather than wait: the worker has other messages to serve)."""
    redis_parts = _redis()
    if redis_parts is None:
        return _local.acquire(organization_id, _limit(), _lease_ms())
    import redis

    _url, _client, script = redis_parts
    token = uuid.uuid4().hex
    try:
        taken = script(keys=[slot_key(organization_id)], args=[_limit(), _lease_ms(), token])
    except redis.RedisError as exc:
        # Fail open: a delivery must not be lost or stuck because the slot store is unreachable;
        # only fairness is degraded until it is back.
        logger.warning("outbound slots unavailable (%s); calling without a slot", type(exc).__name__)
        return UNLIMITED
    return token if int(taken) == 1 else None


def release_slot(organization_id: int, token: str) -> None:
    redis_parts = _redis()
    if redis_parts is None:
        _local.release(organization_id, token)
        return
    if token == UNLIMITED:
        return
    import redis

    with contextlib.suppress(redis.RedisError):  # the lease expires by itself
        redis_parts[1].zrem(slot_key(organization_id), token)


def slots_held(organization_id: int) -> int:
    """How many of the organization's slots are leased now (for tests and operators)."""
    redis_parts = _redis()
    if redis_parts is None:
        return _local.held(organization_id)
    client = redis_parts[1]
    now_s, now_us = client.time()
    return int(client.zcount(slot_key(organization_id), now_s * 1000 + now_us // 1000 + 1, "+inf"))


@contextlib.contextmanager
def org_slot(organization_id: int) -> Iterator[str | None]:
    """``with org_slot(org_id) as token:`` — ``token`` is ``None`` when the organization already has
    its limit of calls in flight; the slot is released on leaving the block."""
    token = acquire_slot(organization_id)
    try:
        yield token
    finally:
        if token is not None:
            release_slot(organization_id, token)
