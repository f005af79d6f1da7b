# Sourced by scripts/ensure_chromium.sh and scripts/ensure_dovecot.sh (POSIX sh).
# apt_install PACKAGE: install a Debian package when this user can (a system with apt-get, and root or
# password-less sudo). Returns non-zero when it cannot or the install fails; the caller then says so plainly.
# Leaves SUDO ("" or "sudo -n") set for the caller's follow-up commands.
apt_install() {
    command -v apt-get >/dev/null 2>&1 || return 1
    if [ "$(id -u)" = 0 ]; then
        SUDO=""
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        return 1
    fi
    echo "$1 is missing: installing Debian's $1 package for the tests..."
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq \
        && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$1" >/dev/null
}
