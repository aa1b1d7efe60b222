#!/usr/bin/env bash
# Sets up a fresh Debian machine that has only Node 20 and npm: installs pnpm 10 (corepack's
# download fails its signature check on these machines) and the workspace's dependencies.
# With --gpu (the test suite) it also installs Debian's chromium, whose SwiftShader Vulkan
# driver runs WebGPU on the CPU for the core:webgpu tests. Idempotent, and silent and quick (no
# pnpm install) when the workspace was installed from the same lockfile and manifests.
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
  log=$(mktemp)
  # only chromium, what it needs and a font (none of its recommended daemons); apt's output goes
  # to a log
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends chromium fonts-liberation; } >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    echo "bootstrap: installing chromium failed (log above)" >&2
    exit 1
  fi
  echo "bootstrap: chromium $(dpkg-query -W -f='${Version}' chromium) installed" >&2
fi
# what the installed node_modules were made from: skip pnpm install when nothing changed
stamp_file=node_modules/.ka-bootstrap-stamp
manifests() {
  find . \( -name node_modules -o -name .git -o -name packs -o -name data \) -prune -o \
    -name package.json -print | sort
}
stamp=$( { node --version; pnpm --version; cat pnpm-lock.yaml pnpm-workspace.yaml $(manifests); } |
  sha256sum | cut -d' ' -f1)
if [[ -f "$stamp_file" && "$(cat "$stamp_file")" == "$stamp" ]]; then
  exit 0
fi
pnpm install --frozen-lockfile --prefer-offline >&2
echo "$stamp" >"$stamp_file"
