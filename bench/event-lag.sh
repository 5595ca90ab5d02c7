#!/usr/bin/env bash
# Event lag of the bus: a burst of 1,000 events committed by 10 writers in one service, consumed
# by another through RabbitMQ; prints p50/p90/p99 of (event raised -> consumer's transaction).
# Runs the real test (tests/Library.EventBus.Tests) on servers eng/test.sh starts.
#   bench/event-lag.sh [runs]   (default 3)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
runs="${1:-3}"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
for _ in $(seq "$runs"); do
  LIBRARY_BENCH_OUT="$out" "$ROOT/eng/test.sh" --filter "FullyQualifiedName~A_burst_of_1000_events" >/dev/null 2>&1 \
    || { echo "the lag test failed; run eng/test.sh to see why" >&2; exit 1; }
done
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r)"
cat "$out"
