#!/usr/bin/env bash
# System packages the tests need beyond pip: Debian's chromium and its driver,
# which tests/test_demo.py drives headless. Installs only what is missing (so a
# second run does nothing and needs no root); apt-get needs root (or sudo).
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  echo "install_test_deps.sh: error: ${missing[*]} missing and apt-get needs root; run this script as root" >&2
  exit 1
fi
echo "install_test_deps.sh: installing ${missing[*]} (Debian packages)"
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver
