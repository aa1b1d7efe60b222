#!/usr/bin/env bash
# `npm run demo -- [flags]`: sets up the workspace when needed (quiet when it is), then runs the
# demo directly (no pnpm wrapper, so a bad flag ends with the demo's own message and exit code).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
cd apps/cli
exec ../../node_modules/.bin/tsx --conditions=@kernel-attention/source src/main.ts "$@"
