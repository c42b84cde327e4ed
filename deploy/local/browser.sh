#!/usr/bin/env bash
# Installs Debian's chromium for the console's browser tests (tests/e2e/test_console.py), once.
# Playwright drives it as it is; nothing else is downloaded. Needs root (or sudo) for apt-get.
set -euo pipefail
CHROMIUM=${ORDERSYNC_CHROMIUM:-/usr/bin/chromium}
if [ -x "$CHROMIUM" ]; then
  exit 0
fi
as_root=()
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "browser.sh: $CHROMIUM is missing; install Debian's chromium as root" >&2; exit 1; }
  as_root=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get install -y -q --no-install-recommends chromium fonts-liberation >/dev/null \
  || { "${as_root[@]}" apt-get update -qq && "${as_root[@]}" apt-get install -y -q --no-install-recommends chromium fonts-liberation >/dev/null; }
"$CHROMIUM" --version
