#!/usr/bin/env bash
# Configures and builds, with warnings as errors (STATEGATE_WERROR: this is the development
# and CI build; a plain `cmake` build leaves it off). Usage: scripts/build.sh [--sanitize]
#   default      -> build/       (Release: the production build, as users build it)
#   --sanitize   -> build-asan/  (Debug + AddressSanitizer + UndefinedBehaviorSanitizer)
set -euo pipefail
cd "$(dirname "$0")/.."

dir=build
args=(-DSTATEGATE_WERROR=ON)
if [[ ${1:-} == --sanitize ]]; then
  dir=build-asan
  # -g1: line tables only, enough for the sanitizers' stack traces; full debug info made
  # this build's compiles and links much of CI's time.
  args+=(-DSTATEGATE_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG=-g1)
else
  args+=(-DCMAKE_BUILD_TYPE=Release)
fi
cmake -S . -B "$dir" -G Ninja "${args[@]}" >/dev/null
ninja -C "$dir" -j "$(nproc)"
