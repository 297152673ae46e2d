#!/usr/bin/env bash
# The whole test suite on a fresh machine (Debian/Ubuntu): system packages, Python packages, tests.
set -euo pipefail
cd "$(dirname "$0")/.."

# Read aloud needs espeak-ng (Dutch voice) and opusenc (Telegram voice notes are OGG/Opus);
# the browser tests need Debian's Chromium and ChromeDriver; the agenda PDF needs a Unicode font
# (DejaVu Sans, the default PDF_FONT).
if ! command -v espeak-ng >/dev/null || ! command -v opusenc >/dev/null \
    || ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null \
    || [ ! -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]; then
    SUDO=""
    if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
        espeak-ng opus-tools chromium chromium-driver fonts-dejavu-core >/dev/null
fi

python3 -m pip install --quiet --disable-pip-version-check -e '.[test]'
python3 -m pytest -q "$@"
