"""A real IMAP server for the capture tests: Debian's Dovecot (``dovecot-imapd``, installed by
``scripts/ensure_dovecot.sh`` from ``make test``), started as a subprocess with a configuration of its own.

:func:`running_dovecot` writes, in a fresh temporary directory, a ``dovecot.conf`` that listens on a free
loopback port (IMAP over TLS only, as the capture poller speaks: ``imaps``), a self-signed certificate for
``127.0.0.1`` and ``imap.customer.example`` (the tests point ``OUTBOUND_CA_BUNDLE`` at it), a passwd-file
user with a known password (plaintext authentication allowed, inside TLS, on loopback) and a Maildir.
Dovecot runs in the foreground (``dovecot -F -c <conf>``); the fixture waits until the port answers and
stops it (SIGTERM, then SIGKILL) afterwards. Nothing of the system's Dovecot is used or touched.

Privilege separation: as root, Dovecot refuses to run its login processes as root, so they run as the
package's own users (``dovenull`` for the login process, ``dovecot`` for the internal services) and the
mail user's uid is ``dovecot``'s (``first_valid_uid`` lowered to it). As another user every process runs
as that user (Dovecot's unprivileged mode). Either way the temporary directory is made traversable.
"""

from __future__ import annotations

import datetime as dt
import imaplib
import ipaddress
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

DOVECOT = "/usr/sbin/dovecot"
AVAILABLE = os.path.exists(DOVECOT) and os.path.exists("/usr/lib/dovecot/imap")
NEEDS = "needs Debian's dovecot-imapd (/usr/sbin/dovecot): `make test` installs it (scripts/ensure_dovecot.sh)"

#: Markers of a test that runs a real Dovecot: under RETAIN_REQUIRE_SERVICES=1 it may not skip.
IMAP_MARKS = [pytest.mark.imap, pytest.mark.skipif(not AVAILABLE, reason=NEEDS)]

#: A name the certificate also carries: tests resolve it to 127.0.0.1 to exercise the guard's pinning.
CERT_NAME = "imap.customer.example"


@dataclass
class Dovecot:
    """A running test Dovecot: where it listens, its one user, the CA file that trusts its certificate."""

    host: str
    port: int
    user: str
    password: str
    ca_file: str
    directory: Path
    process: subprocess.Popen

    @property
    def log(self) -> str:
        path = self.directory / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    @contextmanager
    def client(self) -> Iterator[imaplib.IMAP4_SSL]:
        """A logged-in ``imaplib`` client (certificate verified against :attr:`ca_file`), INBOX selected."""
        context = ssl.create_default_context(cafile=self.ca_file)
        imap = imaplib.IMAP4_SSL(self.host, self.port, ssl_context=context, timeout=10)
        try:
            imap.login(self.user, self.password)
            imap.select("INBOX")
            yield imap
        finally:
            try:
                imap.logout()
            except (imaplib.IMAP4.error, OSError):
                pass

    def append(self, raw: bytes, folder: str = "INBOX") -> None:
        """Deliver a message into the mailbox the way a mail client files one (IMAP ``APPEND``, unseen)."""
        with self.client() as imap:
            status, data = imap.append(folder, None, None, raw)
            assert status == "OK", data

    def flags(self) -> dict[str, str]:
        """``{Message-ID: flags}`` of every message in INBOX, read from the Maildir itself (``new/``: not yet
        seen by any client; ``cur/<name>:2,<flags>``: ``S`` once marked ``\\Seen``). Read from disk rather than
        over IMAP: after a failed login Dovecot delays the next one from the same address (auth penalty)."""
        from email.parser import BytesHeaderParser

        result: dict[str, str] = {}
        maildir = self.directory / "home" / "Maildir"
        for sub in ("new", "cur"):
            for path in sorted((maildir / sub).glob("*")) if (maildir / sub).exists() else []:
                headers = BytesHeaderParser().parsebytes(path.read_bytes())
                flags = path.name.split(":2,", 1)[1] if ":2," in path.name else ""
                result[str(headers["Message-ID"]).strip()] = flags
        return result


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate (its own CA) for 127.0.0.1 and :data:`CERT_NAME`, valid for a day."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Retain test Dovecot")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName(CERT_NAME)]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def _users() -> tuple[str, str, str, int, int]:
    """``(internal user, internal group, login user, mail uid, mail gid)`` that this Dovecot can run as."""
    if os.geteuid() == 0:
        internal = pwd.getpwnam("dovecot")
        pwd.getpwnam("dovenull")  # the package creates both; a KeyError here says the install is broken
        import grp

        return "dovecot", grp.getgrgid(internal.pw_gid).gr_name, "dovenull", internal.pw_uid, internal.pw_gid
    import grp

    me = pwd.getpwuid(os.geteuid())
    group = grp.getgrgid(os.getegid()).gr_name
    return me.pw_name, group, me.pw_name, os.geteuid(), os.getegid()


def _config(directory: Path, port: int, cert: Path, key: Path, mail_uid: int, mail_gid: int) -> str:
    internal_user, internal_group, login_user, _uid, _gid = _users()
    return f"""# Written by tests/dovecot_helpers.py: a throwaway Dovecot for one test.
instance_name = retain-test-{port}
base_dir = {directory}/run
state_dir = {directory}/state
log_path = {directory}/dovecot.log
listen = 127.0.0.1
protocols = imap
default_internal_user = {internal_user}
default_internal_group = {internal_group}
default_login_user = {login_user}
first_valid_uid = {mail_uid}
first_valid_gid = {mail_gid}
ssl = required
ssl_cert = <{cert}
ssl_key = <{key}
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
passdb {{
  driver = passwd-file
  args = {directory}/passwd
}}
userdb {{
  driver = passwd-file
  args = {directory}/passwd
}}
mail_location = maildir:{directory}/home/Maildir
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {port}
    ssl = yes
  }}
  chroot =
}}
service anvil {{
  chroot =
}}
"""


@contextmanager
def running_dovecot(user: str = "capture", password: str = "s3cret-imap") -> Iterator[Dovecot]:
    """Start a Dovecot of its own (see the module's docstring), yield it, stop it and delete its files."""
    directory = Path(tempfile.mkdtemp(prefix="retain-dovecot-"))
    directory.chmod(0o755)  # the mail and login processes may run as other users (root: dovecot, dovenull)
    process = None
    try:
        _internal, _group, _login, mail_uid, mail_gid = _users()
        home = directory / "home"
        home.mkdir()
        if os.geteuid() == 0:
            os.chown(home, mail_uid, mail_gid)
        (directory / "passwd").write_text(f"{user}:{{PLAIN}}{password}:{mail_uid}:{mail_gid}::{home}::\n")
        cert, key = _certificate(directory)
        port = _free_port()
        conf = directory / "dovecot.conf"
        conf.write_text(_config(directory, port, cert, key, mail_uid, mail_gid))
        process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(conf)],
            stdout=(directory / "stdout.log").open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped as one, never the test's
        )
        server = Dovecot("127.0.0.1", port, user, password, str(cert), directory, process)
        deadline = time.monotonic() + 20
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"dovecot exited with {process.returncode}:\n"
                    f"{(directory / 'stdout.log').read_text(errors='replace')}\n{server.log}"
                )
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"dovecot did not listen on 127.0.0.1:{port} within 20 s:\n{server.log}"
                    ) from None
                time.sleep(0.05)
        yield server
    finally:
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)  # the master stops its children itself
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        shutil.rmtree(directory, ignore_errors=True)
