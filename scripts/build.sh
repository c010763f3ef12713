#!/usr/bin/env bash
# Configures and builds. Usage: scripts/build.sh [--sanitize]
#   default      -> build/       (RelWithDebInfo)
#   --sanitize   -> build-asan/  (AddressSanitizer + UndefinedBehaviorSanitizer)
set -euo pipefail
cd "$(dirname "$0")/.."

dir=build
args=()
if [[ ${1:-} == --sanitize ]]; then
  dir=build-asan
  args+=(-DSTATEGATE_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug)
fi
cmake -S . -B "$dir" -G Ninja "${args[@]}" >/dev/null
ninja -C "$dir" -j "$(nproc)"
