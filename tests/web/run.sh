#!/usr/bin/env bash
# Browser tests of the web client (/) and the admin console (/admin): headless Debian Chromium driven by
# playwright-core, against the real `palaver` binary.
#
#   tests/web/run.sh                       the whole suite (what scripts/test runs)
#   tests/web/run.sh test/chat.test.js     one file; extra arguments go to `node --test`
#
# Installs what it needs on a fresh machine: Debian's chromium (when /usr/bin/chromium is missing) and the pinned
# npm devDependency playwright-core (`npm ci`; never `npx playwright install`: Chromium comes from Debian). Builds
# the server (`cargo build -p palaver`), then runs test/*.test.js one file at a time within WEB_TIMEOUT seconds
# (default 600).
#
# Environment: WEB_ARTIFACTS (screenshots, browser console logs, server logs; default a new folder under $TMPDIR),
# WEB_SCREENSHOTS (also write the screenshots shown in the README there, e.g. docs/screenshots), PALAVER_BIN.
set -euo pipefail
# Relative paths given in the environment are relative to where the script was started.
case "${WEB_SCREENSHOTS:-}" in ''|/*) ;; *) WEB_SCREENSHOTS="$PWD/$WEB_SCREENSHOTS" ;; esac
case "${WEB_ARTIFACTS:-}" in ''|/*) ;; *) WEB_ARTIFACTS="$PWD/$WEB_ARTIFACTS" ;; esac
cd "$(dirname "$0")"
REPO_ROOT=$(cd ../.. && pwd)

SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
apt_install() {
  [ -n "${APT_UPDATED:-}" ] || { $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null; APT_UPDATED=1; }
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" </dev/null
}
if [ ! -x /usr/bin/chromium ]; then
  echo "== installing Debian's chromium"
  apt_install chromium
fi
# A colour emoji font, so that emoji in messages (and in the README's screenshots) are not empty boxes.
if ! fc-list 2>/dev/null | grep -qi emoji; then
  echo "== installing Debian's fonts-noto-color-emoji"
  apt_install fonts-noto-color-emoji || echo "web: no emoji font could be installed; screenshots will show boxes for emoji"
fi

# npm ci when node_modules is missing or older than the lock file (npm ci writes node_modules/.package-lock.json).
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "== npm ci"
  npm ci --no-audit --no-fund </dev/null
fi

echo "== cargo build -p palaver"
(cd "$REPO_ROOT" && cargo build -p palaver)

export WEB_ARTIFACTS=${WEB_ARTIFACTS:-${TMPDIR:-/tmp}/palaver-web-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$WEB_ARTIFACTS"
if [ -n "${WEB_SCREENSHOTS:-}" ]; then
  mkdir -p "$WEB_SCREENSHOTS"
  export WEB_SCREENSHOTS
fi
echo "== web client and console browser tests (artifacts: $WEB_ARTIFACTS)"

if [ $# -eq 0 ]; then set -- test/*.test.js; fi
status=0
timeout --kill-after=30 "${WEB_TIMEOUT:-600}" \
  node --test --test-force-exit --test-concurrency=1 --test-reporter=spec "$@" </dev/null || status=$?
if [ "$status" -ne 0 ]; then
  [ "$status" -eq 124 ] && echo "web: timed out after ${WEB_TIMEOUT:-600} s"
  echo "web: FAILED (exit $status). Artifacts (screenshots, console-*.log, server.log): $WEB_ARTIFACTS"
else
  echo "web: screenshots in $WEB_ARTIFACTS"
fi
exit "$status"
