#!/usr/bin/env bash
# The whole test suite: lint + format check (biome), build and typecheck (tsc), then every vitest
# project (random-features, feature-maps, core on cpu and on wasm, the parity suite on WebGPU in
# Node over SwiftShader and in headless Chromium on webgl, webgpu and wasm, cli). Prints, last, one line
# "N passed, N failed" (vitest tests plus the lint and typecheck checks), also written to
# test-results/summary.txt for .ci/run.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p test-results
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}" # Dawn/Vulkan want one (mode 700)
chmod 700 "$XDG_RUNTIME_DIR" 2>/dev/null || true
rm -f test-results/vitest.json test-results/summary.txt
checks_failed=0
checks_passed=0
step() { # name, command...
  local name=$1; shift
  echo "── $name: $*"
  if "$@"; then checks_passed=$((checks_passed + 1)); else echo "── $name FAILED"; checks_failed=$((checks_failed + 1)); fi
}
[[ -n "${CI:-}" ]] && export NO_COLOR=1 # plain logs under CI (vitest and biome colour otherwise)
step lint pnpm exec biome ci ${CI:+--colors=off} .
step build pnpm exec tsc -b
step typecheck-tests pnpm exec tsc -p tsconfig.test.json
pnpm exec vitest run --reporter=default --reporter=json --outputFile.json=test-results/vitest.json
vitest_status=$?
node scripts/summarize.mjs test-results/vitest.json "$checks_passed" "$checks_failed" "$vitest_status" | tee test-results/summary.txt
[[ $checks_failed -eq 0 && $vitest_status -eq 0 ]]
