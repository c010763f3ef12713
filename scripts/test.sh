#!/usr/bin/env bash
# Installs dependencies, builds, and runs every test: the whole suite on the normal build,
# then the unit and integration tests on an AddressSanitizer + UBSan build.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
bash scripts/build.sh
(cd build && ctest --output-on-failure --timeout 600 -j 2)

bash scripts/build.sh --sanitize
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd build-asan && ctest --output-on-failure --timeout 900 -j 2 -L 'unit|integration')
echo "all tests passed"
