#!/usr/bin/env bash
# The browser tests drive Debian's Chromium (with its translations, for the Chinese-UI test,
# and a CJK font so Chinese renders in screenshots) and Debian's Firefox ESR (the newest apt
# offers: the security suite's when it is configured). Install what is missing when we may
# (root with apt-get); otherwise the browser tests skip and say why.
set -euo pipefail
packages=(chromium chromium-driver chromium-l10n fonts-wqy-zenhei firefox-esr)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing for the browser tests: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "missing ${missing[*]} and cannot install here: some browser tests will be skipped" >&2
fi
