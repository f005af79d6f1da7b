"""Real HTTP receivers on loopback for the outbound-guard and webhook tests, and a safety belt.

The belt (fixture ``loopback_only``; import ``loopback_only_fixture`` into a test module) makes every
socket ``connect`` of the test process to an address outside 127.0.0.0/8 and ::1 fail, and records
each attempt: even if the guard regressed, a test could never send traffic to a private or public
address, and a test can assert that no connection was even tried.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


class Receiver:
    """A real HTTP server on loopback. It answers the next queued status (200 when none), with
    ``reply`` as body; with ``hold`` set it waits for that event before answering (a slow receiver);
    ``drip`` sends the status line one byte at a time, ``drip`` seconds apart."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self.reply = b'{"ok": true}'
        self.hold: threading.Event | None = None
        self.drip: float = 0.0
        self.in_flight = 0
        self.max_in_flight = 0
        self.finished = 0
        self.sni: list[str | None] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                    receiver.in_flight += 1
                    receiver.max_in_flight = max(receiver.max_in_flight, receiver.in_flight)
                try:
                    receiver._answer(self)
                finally:
                    with receiver._lock:
                        receiver.in_flight -= 1
                        receiver.finished += 1

            do_GET = do_POST  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.server.handle_error = lambda request, client_address: None  # a client that hung up is expected
        if tls is not None:

            def record_sni(sslsock: Any, name: str | None, ctx: Any) -> None:
                self.sni.append(name)

            tls.sni_callback = record_sni
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.host, self.port = host, self.server.server_port
        self.scheme = "https" if tls is not None else "http"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        if self.hold is not None:
            self.hold.wait(60)  # bounded: a test that forgets to release never hangs the run
        code = self.statuses.pop(0) if self.statuses else 200
        if self.drip:
            with contextlib.suppress(OSError):
                for byte in f"HTTP/1.1 {code} OK\r\n".encode():
                    handler.wfile.write(bytes([byte]))
                    handler.wfile.flush()
                    time.sleep(self.drip)
            return
        if 300 <= code < 400:
            handler.send_response(code)
            handler.send_header("Location", "http://127.0.0.1:9/elsewhere")
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        handler.send_response(code)
        handler.send_header("Content-Length", str(len(self.reply)))
        handler.end_headers()
        handler.wfile.write(self.reply)

    def url(self, path: str = "/hook", host: str | None = None) -> str:
        return f"{self.scheme}://{host or self.host}:{self.port}{path}"

    def bodies(self, path: str | None = None) -> list[Any]:
        import json

        return [json.loads(r["body"]) for r in self.requests if path is None or r["path"] == path]

    def close(self) -> None:
        if self.hold is not None:
            self.hold.set()
        self.server.shutdown()
        self.server.server_close()


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    """Poll ``condition`` until true or ``timeout`` (a generous bound, never a speed claim)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def free_port_on(*hosts: str) -> int:
    """A TCP port free on every one of ``hosts`` (to run two listeners on one port, two addresses)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind((hosts[0], 0))
            port = probe.getsockname()[1]
        ok = True
        for host in hosts:
            with socket.socket() as other:
                try:
                    other.bind((host, port))
                except OSError:
                    ok = False
        if ok:
            return port
    raise RuntimeError("no common free port")


class Belt:
    """Records every outbound ``connect`` and refuses those leaving the machine."""

    def __init__(self) -> None:
        self.attempts: list[str] = []
        self.blocked: list[str] = []


@pytest.fixture(name="loopback_only")
def loopback_only_fixture(monkeypatch: pytest.MonkeyPatch) -> Iterator[Belt]:
    belt = Belt()
    original = socket.socket.connect

    def connect(sock: socket.socket, address: Any) -> Any:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            host = str(address[0]).split("%", 1)[0]
            belt.attempts.append(host)
            ip = ipaddress.ip_address(host)
            mapped = getattr(ip, "ipv4_mapped", None) or ip
            if not mapped.is_loopback:
                belt.blocked.append(host)
                raise ConnectionRefusedError(f"test safety belt: no traffic to {host}")
        return original(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    yield belt


@contextlib.contextmanager
def routed(app: Any, routes: dict[str, Any]) -> Iterator[None]:
    """Route tasks for the duration of the block. Celery caches its router, so the cache is dropped
    on the way in and out (both are re-read from ``task_routes`` on the next send)."""
    saved = app.conf.task_routes
    app.conf.task_routes = routes
    app.amqp.flush_routes()
    app.amqp.__dict__.pop("router", None)
    try:
        yield
    finally:
        app.conf.task_routes = saved
        app.amqp.flush_routes()
        app.amqp.__dict__.pop("router", None)


@pytest.fixture(name="receiver")
def receiver_fixture() -> Iterator[Receiver]:
    """A local receiver for the test, closed afterwards (import it: ``from .outbound_helpers import
    receiver_fixture  # noqa: F401``)."""
    r = Receiver()
    yield r
    r.close()


def clear_outbound_budgets(*org_ids: int) -> None:
    """Test-send budgets and outbound slots live in the cache/Redis, keyed by organization id, and ids can
    repeat between tests (SQLite reuses them after a rollback): start a test from zero."""
    from django.core.cache import cache

    from cs_platform import outbound
    from playbooks import services

    for org_id in org_ids:
        key = services.send_test_budget_key(org_id)
        cache.delete_many([key, f"{key}:opened"])
        parts = outbound._redis()
        if parts is not None:
            parts[1].delete(outbound.slot_key(org_id))
        outbound._local.leases.pop(org_id, None)
