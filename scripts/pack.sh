#!/usr/bin/env bash
# Packs the six published packages as npm would publish them (a clean build of each, then
# `pnpm pack`, which turns workspace: ranges into versions) into packs/, for installing into your
# own project before the packages are on the registry:
#   npm install /path/to/kernel-attention/packs/*.tgz @tensorflow/tfjs
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
rm -rf packs && mkdir packs
for p in random-features feature-maps attention-core performer backend-webgpu backend-webgl; do
  (cd "packages/$p" && pnpm pack --pack-destination ../../packs >/dev/null)
done
ls -1 packs/*.tgz
