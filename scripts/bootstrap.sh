#!/usr/bin/env bash
# Sets up a fresh Debian machine that has only Node 20 and npm: installs pnpm 10 (corepack's
# download fails its signature check on these machines) and the workspace's dependencies.
# Idempotent and quick when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
export TURBO_TELEMETRY_DISABLED=1
if ! command -v pnpm >/dev/null 2>&1 || [[ "$(pnpm --version 2>/dev/null)" != 10.* ]]; then
  echo "bootstrap: installing pnpm 10 with npm" >&2
  npm install --global --no-fund --no-audit pnpm@10 >&2
fi
pnpm install --frozen-lockfile --prefer-offline >&2
