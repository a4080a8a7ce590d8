#!/usr/bin/env bash
# Install a headless-capable Chromium for the chart rendering test.
# Idempotent: exits at once when /usr/bin/chromium already exists.
# Needs root (apt-get); only package registries are reachable, which is enough.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install_chromium.sh: /usr/bin/chromium is missing and this is not root;" \
         "run 'sudo apt-get install chromium' (or this script as root)" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium
test -x /usr/bin/chromium
