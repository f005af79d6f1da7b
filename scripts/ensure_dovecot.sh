#!/bin/sh
# The IMAP capture tests (marker 'imap') run a real Dovecot, Debian's dovecot-imapd, started by the tests
# themselves as a subprocess with their own configuration on a free loopback port (tests/dovecot_helpers.py).
# Install it when we can (root, or password-less sudo, on a system with apt-get); otherwise say so
# plainly: the IMAP tests then report themselves as skipped, the rest of the suite still runs.
# The package's own system service is never left running (no daemon on ports 143/993): the tests need
# only the binaries.
set -eu
. "$(dirname "$0")/apt_install.sh"
DOVECOT=/usr/sbin/dovecot
if [ -x "$DOVECOT" ] && [ -x /usr/lib/dovecot/imap ]; then
    exit 0
fi
if apt_install dovecot-imapd && [ -x "$DOVECOT" ]; then
    # The package may have started (and enabled) the system service: stop it, the tests start their own.
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        $SUDO systemctl disable --now dovecot.service dovecot.socket >/dev/null 2>&1 || true
    elif command -v invoke-rc.d >/dev/null 2>&1; then
        $SUDO invoke-rc.d dovecot stop >/dev/null 2>&1 || true
    fi
    echo "Dovecot installed at $DOVECOT (system service not running; the tests start their own)."
    exit 0
fi
echo "!! Dovecot was not found at $DOVECOT and could not be installed (that needs apt-get, and"
echo "!! root or password-less sudo). The IMAP capture tests (marker 'imap') are SKIPPED in this run."
echo "!! To run them: sudo apt-get install dovecot-imapd && sudo systemctl disable --now dovecot"
