#!/usr/bin/env bash
# `npm start`: sets up the workspace when needed, builds the docs site, then serves it. The server
# replaces this shell (exec) and stops when npm or the shell npm ran this in ends, so stopping
# npm start (Ctrl-C, or a signal to npm's PID) stops the server too.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
pnpm --filter @kernel-attention/docs run build
exec node apps/docs/scripts/serve.mjs --exit-with "$PPID" "$(ps -o ppid= -p "$PPID" | tr -d ' ')"
