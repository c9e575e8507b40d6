#!/usr/bin/env bash
# `make run`: migrate, seed when empty, start the local PBX, serve; stop the PBX on the way out.
set -euo pipefail
BIN="$(dirname "$0")/../.venv/bin"
"$BIN/hotline" pbx install
"$BIN/hotline" db upgrade
"$BIN/hotline" seed --if-empty --customers "${DEMO_CUSTOMERS:-2000}" --show-logins
"$BIN/hotline" pbx start
trap '"$BIN/hotline" pbx stop' EXIT
echo "open http://127.0.0.1:${HOTLINE_HTTP_PORT:-8080}/  (demo logins above; Ctrl-C stops the server and the PBX)"
"$BIN/hotline" serve
