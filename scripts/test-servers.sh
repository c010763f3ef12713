#!/usr/bin/env bash
# Starts or stops the real servers the tests share: a Redis Cluster (3 masters, 3 replicas)
# and a memcached on free 127.0.0.1 ports, run by build/bin/stategate-testbed.
#
#   scripts/test-servers.sh start STATE_DIR   # prints the env; STATE_DIR/env has it too
#   scripts/test-servers.sh stop STATE_DIR    # SIGTERM to the PID `start` recorded
#
# Use the addresses with:  set -a; source STATE_DIR/env; set +a
# Needs a build (scripts/build.sh). Exits non-zero when the servers do not come up; the
# reason is in STATE_DIR/testbed.log.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

usage() {
  echo "usage: $0 start|stop STATE_DIR" >&2
  exit 2
}
(($# == 2)) || usage
command=$1
state=$2
start_timeout=${STATEGATE_TESTBED_START_TIMEOUT:-90}

# Whether process $1 runs (an exited one waiting to be reaped does not).
running() {
  local state
  read -r _ _ state _ 2>/dev/null <"/proc/$1/stat" || return 1
  [[ $state != Z ]]
}

stop() {
  [[ -f $state/pid ]] || return 0
  local pid
  pid=$(<"$state/pid")
  if running "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    # It stops its servers by PID and exits; give it 20 s, then SIGKILL (its servers die
    # with it: they are started with PR_SET_PDEATHSIG).
    for _ in $(seq 200); do
      running "$pid" || break
      sleep 0.1
    done
    if running "$pid"; then
      echo "stategate-testbed (pid $pid) ignored SIGTERM; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$state/pid" "$state/env"
}

case $command in
  start)
    mkdir -p "$state"
    state=$(cd "$state" && pwd)
    if [[ -f $state/pid ]] && running "$(<"$state/pid")"; then
      echo "servers already running (pid $(<"$state/pid")); stop them first" >&2
      exit 1
    fi
    rm -f "$state/env"
    binary=$root/build/bin/stategate-testbed
    [[ -x $binary ]] || { echo "$binary missing: run scripts/build.sh" >&2; exit 1; }
    # It holds none of this shell's output open (so `... | tee` ends when the script does).
    "$binary" "$state" --start-timeout "$start_timeout" </dev/null >>"$state/testbed.log" 2>&1 &
    pid=$!
    echo "$pid" >"$state/pid"
    for _ in $(seq $((start_timeout * 10 + 50))); do
      [[ -f $state/env ]] && break
      if ! running "$pid"; then
        echo "stategate-testbed exited; its log:" >&2
        tail -n 50 "$state/testbed.log" >&2
        rm -f "$state/pid"
        exit 1
      fi
      sleep 0.1
    done
    if [[ ! -f $state/env ]]; then
      echo "the test servers did not come up within ${start_timeout}s; log:" >&2
      tail -n 50 "$state/testbed.log" >&2
      stop
      exit 1
    fi
    cat "$state/env"
    ;;
  stop)
    [[ -d $state ]] || exit 0
    stop
    ;;
  *)
    usage
    ;;
esac
