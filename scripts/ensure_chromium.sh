#!/bin/sh
# Browser tests drive Debian's Chromium at /usr/bin/chromium (never a downloaded browser build).
# Install it when we can (root, or password-less sudo, on a system with apt-get); otherwise say so
# plainly: the browser tests then report themselves as skipped, the rest of the suite still runs.
set -eu
CHROMIUM=/usr/bin/chromium
if [ -x "$CHROMIUM" ]; then
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
        echo "Chromium is missing: installing Debian's chromium package for the browser tests..."
        if $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq \
            && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium \
                >/dev/null && [ -x "$CHROMIUM" ]; then
            echo "Chromium installed at $CHROMIUM."
            exit 0
        fi
    fi
fi
echo "!! Chromium was not found at $CHROMIUM and could not be installed (that needs apt-get, and"
echo "!! root or password-less sudo). The browser tests (marker 'browser') are SKIPPED in this run."
echo "!! To run them: sudo apt-get install chromium"
