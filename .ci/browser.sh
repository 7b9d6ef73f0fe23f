#!/usr/bin/env bash
# Debian's headless Chromium and its driver, for the browser tests (tests/browser.py): installed only when missing.
set -euo pipefail
if [ -x /usr/bin/chromedriver ] && { [ -x /usr/bin/chromium ] || command -v chromium >/dev/null; }; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver
