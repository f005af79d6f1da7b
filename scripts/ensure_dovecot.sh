#!/bin/sh
# The IMAP capture tests (marker 'imap') run a real Dovecot, Debian's dovecot-imapd, started by the tests
# themselves as a subprocess with their own configuration on a free loopback port (tests/dovecot_helpers.py).
# Install it when we can (root, or password-less sudo, on a system with apt-get); otherwise say so
# plainly: the IMAP tests then report themselves as skipped, the rest of the suite still runs.
# The package's own system service is never left running (no daemon on ports 143/993): the tests need
# only the binaries.
set -eu
DOVECOT=/usr/sbin/dovecot
if [ -x "$DOVECOT" ] && [ -x /usr/lib/dovecot/imap ]; then
    exit 0
fi
if command -v apt-get >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        SUDO=""
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        SUDO="none"
    fi
    if [ "$SUDO" != "none" ]; then
        echo "Dovecot is missing: installing Debian's dovecot-imapd package for the IMAP capture tests..."
        if $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq \
            && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends dovecot-imapd \
                >/dev/null && [ -x "$DOVECOT" ]; then
            # The package may have started (and enabled) the system service: stop it, the tests start their own.
            if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
                $SUDO systemctl disable --now dovecot.service dovecot.socket >/dev/null 2>&1 || true
            elif command -v invoke-rc.d >/dev/null 2>&1; then
                $SUDO invoke-rc.d dovecot stop >/dev/null 2>&1 || true
            fi
            echo "Dovecot installed at $DOVECOT (system service not running; the tests start their own)."
            exit 0
        fi
    fi
fi
echo "!! Dovecot was not found at $DOVECOT and could not be installed (that needs apt-get, and"
echo "!! root or password-less sudo). The IMAP capture tests (marker 'imap') are SKIPPED in this run."
echo "!! To run them: sudo apt-get install dovecot-imapd && sudo systemctl disable --now dovecot"
