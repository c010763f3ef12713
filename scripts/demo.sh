#!/usr/bin/env bash
# Sets everything up and runs the main job: installs dependencies, builds, starts the
# gateway on embedded RocksDB, and drives a short demo and workload against it with
# stategate-cli and stategate-bench. Stops the gateway it started when done.
#   STATEGATE_ADDR   where to listen (default 127.0.0.1:7700)
#   STATEGATE_DATA   data directory (default ./stategate-data)
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
bash scripts/build.sh

addr=${STATEGATE_ADDR:-127.0.0.1:7700}
data=${STATEGATE_DATA:-./stategate-data}
log=$(mktemp /tmp/stategate-demo.XXXXXX.log)
build/bin/stategate --listen "$addr" --data-dir "$data" >"$log" 2>&1 &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT

cli() { build/bin/stategate-cli --addr "$addr" "$@"; }
for _ in $(seq 100); do cli handshake >/dev/null 2>&1 && break; sleep 0.1; done

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
step "stategate-cli handshake"; cli handshake
step "echo -n 'Ada Lovelace' | stategate-cli put user:1 name"; echo -n 'Ada Lovelace' | cli put user:1 name
step "echo -n 'ada@example.org' | stategate-cli put user:1 email"; echo -n 'ada@example.org' | cli put user:1 email
step "stategate-cli get user:1 name"; cli get user:1 name; echo
step "stategate-cli get user:1"; cli get user:1
big=$(mktemp)
head -c $((3 * 1024 * 1024 + 17)) /dev/urandom >"$big"
step "stategate-cli put user:1 avatar < 3 MiB of random bytes   (travels as 4 chunks)"
cli put user:1 avatar <"$big"
step "stategate-cli get user:1 avatar | cmp - original"
cli get user:1 avatar | cmp - "$big" && echo "identical ($(stat -c %s "$big") bytes)"
rm -f "$big"
step "stategate-cli delete user:1 email"; cli delete user:1 email
step "stategate-cli get user:1 email"; cli get user:1 email || echo "(exit $?: NOT_FOUND, as expected)"
step "stategate-cli scan"; cli scan
step "stategate-bench --concurrency 16 --duration 2   (1 KiB values; Handshake = empty-call baseline)"
build/bin/stategate-bench --addr "$addr" --concurrency 16 --duration 2 --records 2000
printf '\nGateway log: %s\n' "$log"
