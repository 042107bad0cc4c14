#!/usr/bin/env bash
# OpenIM SDK compatibility suite: OpenIM's own client SDKs, unmodified, as black-box judges of a real Palaver.
#
#   tests/compat/run.sh                     the whole suite (what CI runs)
#   tests/compat/run.sh test/02-direct.test.js   one file; extra arguments go to `node --test`
#
# Installs what it needs on a fresh machine: Debian's chromium (when /usr/bin/chromium is missing) and the pinned
# npm devDependencies (`npm ci`: @openim/wasm-client-sdk, @openim/client-sdk, playwright-core; never committed).
# Builds the server (`cargo build -p palaver`), then runs every test/*.test.js with Node's test runner, one file
# at a time, within COMPAT_TIMEOUT seconds (default 1200).
#
# Environment: COMPAT_CLUSTER (run every file on that many nodes sharing PostgreSQL + NATS; 50-cluster.test.js
# always runs the core scenarios on two), COMPAT_DATABASE_URL, COMPAT_NATS_URL, COMPAT_ARTIFACTS (where logs go; default a new folder under $TMPDIR), COMPAT_SOAK_MESSAGES (default 1000),
# COMPAT_SDK_LOG_LEVEL (the Go core's log level in the browser console logs, default 5 = debug), PALAVER_BIN.
set -euo pipefail
cd "$(dirname "$0")"
COMPAT_DIR=$(pwd)
REPO_ROOT=$(cd ../.. && pwd)

if [ ! -x /usr/bin/chromium ]; then
  echo "== installing Debian's chromium"
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium </dev/null
fi

# npm ci when node_modules is missing or older than the lock file (npm ci writes node_modules/.package-lock.json).
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "== npm ci"
  npm ci --no-audit --no-fund </dev/null
fi

# PostgreSQL and NATS for the cluster scenarios (50-cluster.test.js).
"$REPO_ROOT/scripts/cluster-services"

echo "== cargo build -p palaver"
(cd "$REPO_ROOT" && cargo build -p palaver)

export COMPAT_ARTIFACTS=${COMPAT_ARTIFACTS:-${TMPDIR:-/tmp}/palaver-compat-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$COMPAT_ARTIFACTS"
echo "== OpenIM SDK compatibility suite (artifacts: $COMPAT_ARTIFACTS)"

if [ $# -eq 0 ]; then set -- test/*.test.js; fi
status=0
timeout --kill-after=30 "${COMPAT_TIMEOUT:-1200}" \
  node --experimental-websocket --test --test-force-exit --test-concurrency=1 --test-reporter=spec "$@" </dev/null || status=$?

node lib/summary.js "$COMPAT_ARTIFACTS" > "$COMPAT_ARTIFACTS/routes-summary.txt" || true
if [ "$status" -ne 0 ]; then
  [ "$status" -eq 124 ] && echo "compat: timed out after ${COMPAT_TIMEOUT:-1200} s"
  echo
  cat "$COMPAT_ARTIFACTS/routes-summary.txt"
  echo
  echo "compat: FAILED (exit $status). Artifacts, one folder per test file (server.log, console-*.log,"
  echo "http-*.jsonl, events-*.json, routes.json): $COMPAT_ARTIFACTS"
fi
exit "$status"
