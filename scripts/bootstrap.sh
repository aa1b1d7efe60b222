#!/usr/bin/env bash
# Sets up a fresh Debian machine that has only Node 20 and npm: installs pnpm 10 (corepack's
# download fails its signature check on these machines) and the workspace's dependencies.
# With --gpu (the test suite) it also installs Debian's chromium, whose SwiftShader Vulkan
# driver runs WebGPU on the CPU for the core:webgpu tests. Idempotent and quick when all is there.
set -euo pipefail
cd "$(dirname "$0")/.."
export TURBO_TELEMETRY_DISABLED=1
if ! command -v pnpm >/dev/null 2>&1 || [[ "$(pnpm --version 2>/dev/null)" != 10.* ]]; then
  echo "bootstrap: installing pnpm 10 with npm" >&2
  npm install --global --no-fund --no-audit pnpm@10 >&2
fi
if [[ "${1:-}" == "--gpu" && ! -f /usr/lib/chromium/vk_swiftshader_icd.json ]]; then
  echo "bootstrap: installing Debian's chromium (SwiftShader Vulkan driver for the WebGPU tests)" >&2
  if [[ "$(id -u)" -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap: need root and apt-get to install chromium; install it and re-run" >&2
    exit 1
  fi
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2
fi
pnpm install --frozen-lockfile --prefer-offline >&2
