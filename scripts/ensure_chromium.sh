#!/usr/bin/env bash
# The browser tests drive Debian's Chromium. Install it when we may (root with apt-get);
# otherwise the browser tests skip and say why.
set -euo pipefail
if [ -x /usr/lib/chromium/chromium ]; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's chromium for the browser tests"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
else
  echo "chromium is not installed and cannot be installed here: browser tests will be skipped" >&2
fi
