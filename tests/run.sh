#!/usr/bin/env bash
# The whole test suite on a fresh machine (Debian/Ubuntu): system packages, Python packages, tests.
set -euo pipefail
cd "$(dirname "$0")/.."

# Read aloud needs espeak-ng (Dutch voice) and opusenc (Telegram voice notes are OGG/Opus);
# the browser tests need Debian's Chromium and ChromeDriver; the agenda PDF needs a Unicode font
# (DejaVu Sans, the default PDF_FONT); tests/test_deploy_tls.py runs nginx and openssl (nginx is
# in /usr/sbin, not on a user's PATH on Debian).
if ! command -v espeak-ng >/dev/null || ! command -v opusenc >/dev/null \
    || ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null \
    || [ ! -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] \
    || { ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; } || ! command -v openssl >/dev/null; then
    SUDO=""
    if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
    # nginx's postinst starts the system nginx (root, port 80) where an init system runs, and a
    # failed start fails the install; the tests run their own. policy-rc.d's exit 101 says "start
    # no services" (Docker's images have one already; ours is removed again after the install).
    NO_START=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        NO_START=1
        trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
        $SUDO chmod 755 /usr/sbin/policy-rc.d
    fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
        espeak-ng opus-tools chromium chromium-driver fonts-dejavu-core nginx openssl >/dev/null
    if [ -n "$NO_START" ]; then $SUDO rm -f /usr/sbin/policy-rc.d && trap - EXIT; fi
fi

python3 -m pip install --quiet --disable-pip-version-check -e '.[test]'
python3 -m pytest -q "$@"
