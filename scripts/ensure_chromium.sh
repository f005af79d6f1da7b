#!/bin/sh
# Browser tests drive Debian's Chromium at /usr/bin/chromium (never a downloaded browser build).
# Install it when we can (root, or password-less sudo, on a system with apt-get); otherwise say so
# plainly: the browser tests then report themselves as skipped, the rest of the suite still runs.
set -eu
. "$(dirname "$0")/apt_install.sh"
CHROMIUM=/usr/bin/chromium
if [ -x "$CHROMIUM" ]; then
    exit 0
fi
if apt_install chromium && [ -x "$CHROMIUM" ]; then
    echo "Chromium installed at $CHROMIUM."
    exit 0
fi
echo "!! Chromium was not found at $CHROMIUM and could not be installed (that needs apt-get, and"
echo "!! root or password-less sudo). The browser tests (marker 'browser') are SKIPPED in this run."
echo "!! To run them: sudo apt-get install chromium"
