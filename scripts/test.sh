#!/usr/bin/env bash
# Installs dependencies, builds, and runs every test: the whole suite on the normal build,
# then the unit and integration tests on an AddressSanitizer + UBSan build.
#
# Tests that need Redis or memcached share one local Redis Cluster (3 masters, 3 replicas)
# and one memcached: build/bin/stategate-testbed starts them after the build, and they are
# stopped on every way out of this script (SIGTERM to the PID started here). Their addresses
# are exported as STATEGATE_TEST_REDIS_CLUSTER and STATEGATE_TEST_MEMCACHED; when both are
# already set, those servers are used instead. (scripts/test-servers.sh does the same by
# hand.)
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
bash scripts/build.sh

if [[ -z ${STATEGATE_TEST_REDIS_CLUSTER:-} || -z ${STATEGATE_TEST_MEMCACHED:-} ]]; then
  servers=$(mktemp -d "${TMPDIR:-/tmp}/stategate-test-servers-XXXXXX")
  testbed_pid=""
  # Whether process $1 runs (an exited one waiting to be reaped does not).
  running() {
    local state
    read -r _ _ state _ 2>/dev/null <"/proc/$1/stat" || return 1
    [[ $state != Z ]]
  }
  stop_servers() {
    local status=$?
    if [[ -n $testbed_pid ]]; then
      kill -TERM "$testbed_pid" 2>/dev/null || true
      # It stops its servers and exits at once; SIGKILL it if it has not within 20 s (its
      # servers die with it).
      for _ in $(seq 200); do
        running "$testbed_pid" || break
        sleep 0.1
      done
      kill -KILL "$testbed_pid" 2>/dev/null || true
      wait "$testbed_pid" 2>/dev/null || true
    fi
    if ((status == 0)); then
      rm -rf "$servers"
    else
      echo "test servers' files and logs: $servers" >&2
    fi
    return "$status"
  }
  trap stop_servers EXIT
  # INT and TERM leave through the EXIT trap too.
  trap 'exit 130' INT
  trap 'exit 143' TERM

  # Its output goes to a file: it holds none of this script's output open.
  build/bin/stategate-testbed "$servers" </dev/null >>"$servers/testbed.log" 2>&1 &
  testbed_pid=$!
  until [[ -f $servers/env ]]; do
    if ! running "$testbed_pid"; then
      wait "$testbed_pid" || true
      testbed_pid=""
      echo "the test servers did not start; stategate-testbed's log:" >&2
      tail -n 50 "$servers/testbed.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  set -a
  # shellcheck source=/dev/null
  source "$servers/env"
  set +a
  echo "test servers: Redis Cluster $STATEGATE_TEST_REDIS_CLUSTER, memcached $STATEGATE_TEST_MEMCACHED"
fi

(cd build && ctest --output-on-failure --timeout 600 -j 2)

bash scripts/build.sh --sanitize
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd build-asan && ctest --output-on-failure --timeout 900 -j 2 -L 'unit|integration')
echo "all tests passed"
