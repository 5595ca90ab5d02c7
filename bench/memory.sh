#!/usr/bin/env bash
# bench/memory.sh -- what each process of the stack holds in memory, at start and after a load,
# for one or more configurations of the same stack run one after the other (A/B in one session).
#
#   bench/memory.sh [CONFIG...]      default: one configuration, "as-is"
#
# A CONFIG is LABEL[@ROOT][:VAR=value,VAR=value...]:
#   LABEL   a name for the table
#   ROOT    the tree whose eng/processes.sh and build output (<Project>/bin/Release/net10.0) run;
#           default this repository (built by bench_build unless BENCH_NO_BUILD=1). Another tree
#           is used as it is (a baseline build, or a copy with published ReadyToRun output).
#   VAR=... environment of every .NET process of that run (e.g. DOTNET_GCgen0size=0x400000)
#   e.g.  bench/memory.sh base@/work/base-4baedb4 now "gen0:DOTNET_GCgen0size=0x400000"
#
# Each configuration: a fresh data folder, eng/processes.sh start (timed, build excluded), the
# figures of every process at start, the load (bench/run.sh BENCH_MEMORY_LOAD against the running
# stack, default "catalog contention borrow lag" with the durations below), the figures again,
# eng/processes.sh stop. Figures per process, from /proc/<pid>/status and smaps_rollup: RSS, PSS
# (RSS with each shared page divided by the processes sharing it), anon (heap, GC heap, stacks),
# file (mapped assemblies and native libraries: clean, shared), shmem (JIT'd code and the
# runtime's loader heaps: W^X maps them twice through a memfd), threads.
#
# Durations: BENCH_CATALOG_SECONDS (8), BENCH_BORROW_SECONDS (15), BENCH_LAG_SAMPLES (20),
# BENCH_LAG_SECONDS (15). BENCH_MEMORY_ROUNDS (1): with 2, the configurations run A B A B.
# BENCH_MEMORY_GCDUMP="lendingservice-0 ..." (instances as in the pid files; "all" for every .NET
# one): after the load, the heap by type of each (dotnet-gcdump report, which forces a full
# blocking GC; the 25 largest types into $BENCH_WORK/gcdump-LABEL-INSTANCE.txt and the log), then
# the figures once more as phase "after-gc": what RSS the garbage held, against what is live.
# BENCH_MEMORY_SETTLE=N (0): N seconds after the load (and the heap dumps), the figures once more
# as phase "settled": what a process keeps once quiet (the services' idle trim: IdleMemoryTrim.cs).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CONFIGS=("$@")
((${#CONFIGS[@]})) || CONFIGS=("as-is")
LOAD="${BENCH_MEMORY_LOAD:-catalog contention borrow lag}"
ROUNDS="${BENCH_MEMORY_ROUNDS:-1}"

bench_workdir
trap 'memory_stop; bench_cleanup' EXIT
trap 'exit 130' INT TERM
bench_need_tools
bench_limits
export LIBRARY_ADMIN_EMAIL="${LIBRARY_ADMIN_EMAIL:-bench-admin@library.local}"
export LIBRARY_ADMIN_PASSWORD="${LIBRARY_ADMIN_PASSWORD:-bench-$(od -An -vtx1 -N8 /dev/urandom | tr -d ' \n')}"
export BENCH_CATALOG_SECONDS="${BENCH_CATALOG_SECONDS:-8}" BENCH_BORROW_SECONDS="${BENCH_BORROW_SECONDS:-15}"
export BENCH_LAG_SAMPLES="${BENCH_LAG_SAMPLES:-20}" BENCH_LAG_SECONDS="${BENCH_LAG_SECONDS:-15}"
OUT="$BENCH_WORK/memory.tsv"
: >"$OUT"
CURRENT_ROOT=""

memory_stop() {
  [[ -n "$CURRENT_ROOT" ]] || return 0
  "$CURRENT_ROOT/eng/processes.sh" stop >/dev/null 2>&1 || true
  CURRENT_ROOT=""
}

# snapshot LABEL PHASE -- one line per process: label phase instance rss pss anon file shmem threads (KiB)
snapshot() {
  local f inst pid
  for f in "$LIBRARY_DATA_DIR"/run/*.pid; do
    [[ -e "$f" ]] || continue
    inst="$(basename "$f" .pid)"; read -r pid <"$f" || continue
    [[ -r "/proc/$pid/smaps_rollup" ]] || continue
    awk -v l="$1" -v ph="$2" -v i="$inst" '
      FILENAME ~ /status$/ && /^VmRSS:/   { rss = $2 }
      FILENAME ~ /status$/ && /^RssAnon:/ { anon = $2 }
      FILENAME ~ /status$/ && /^RssFile:/ { file = $2 }
      FILENAME ~ /status$/ && /^RssShmem:/ { shm = $2 }
      FILENAME ~ /status$/ && /^Threads:/ { thr = $2 }
      FILENAME ~ /smaps_rollup$/ && /^Pss:/ { pss = $2 }
      END { printf "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\n", l, ph, i, rss, pss, anon, file, shm, thr }
    ' "/proc/$pid/status" "/proc/$pid/smaps_rollup" >>"$OUT" 2>/dev/null || true
  done
}

# heap_dumps LABEL -- dotnet-gcdump's heap by type of the instances named in BENCH_MEMORY_GCDUMP.
heap_dumps() {
  local f inst pid tool="${DOTNET_GCDUMP:-$(command -v dotnet-gcdump || echo "$HOME/.dotnet/tools/dotnet-gcdump")}"
  [[ -x "$tool" ]] || { bench_log "dotnet-gcdump not found (dotnet tool install -g dotnet-gcdump): no heap dumps"; return 0; }
  for f in "$LIBRARY_DATA_DIR"/run/*.pid; do
    [[ -e "$f" ]] || continue
    inst="$(basename "$f" .pid)"; read -r pid <"$f" || continue
    [[ "$BENCH_MEMORY_GCDUMP" == all && "$inst" =~ service|gateway ]] || [[ " $BENCH_MEMORY_GCDUMP " == *" $inst "* ]] || continue
    "$tool" report -p "$pid" >"$BENCH_WORK/gcdump-$1-$inst.txt" 2>&1 || true
    bench_log "$1 $inst: heap by type after a full GC (largest first)"
    head -28 "$BENCH_WORK/gcdump-$1-$inst.txt" >&2
  done
}

run_config() { # CONFIG
  local spec="$1" label root envs kv t0 start_ms
  label="${spec%%[@:]*}"
  root="$BENCH_ROOT"
  [[ "$spec" == *@* ]] && { root="${spec#*@}"; root="${root%%:*}"; }
  envs=""
  [[ "$spec" == *:* ]] && envs="${spec#*:}"
  local -a envv=()
  if [[ -n "$envs" ]]; then IFS=',' read -r -a envv <<<"$envs"; fi
  for kv in "${envv[@]+"${envv[@]}"}"; do [[ "$kv" == *=* ]] || bench_die "bad VAR=value '$kv' in '$spec'"; done
  [[ -x "$root/eng/processes.sh" ]] || bench_die "$root/eng/processes.sh not found"
  export LIBRARY_DATA_DIR="$BENCH_WORK/stack-$label-$RANDOM"
  bench_log "=== $label: $root ${envv[*]+${envv[*]}}"
  t0=$(($(date +%s%N) / 1000000))
  CURRENT_ROOT="$root"
  env "${envv[@]+"${envv[@]}"}" LIBRARY_NO_BUILD=1 "$root/eng/processes.sh" start >"$BENCH_WORK/start-$label.log" 2>&1 \
    || { tail -30 "$BENCH_WORK/start-$label.log" >&2; bench_die "$label: eng/processes.sh start failed"; }
  start_ms=$(($(date +%s%N) / 1000000 - t0))
  # eng/processes.sh's own figure excludes the servers' install; ours is the whole wall time.
  printf '%s\tstart-ms\t-\t%d\t%s\n' "$label" "$start_ms" \
    "$(sed -n 's/^\[run\] services healthy after \([0-9.]*\) s.*/\1/p' "$BENCH_WORK/start-$label.log" | tail -n1)" >>"$OUT"
  snapshot "$label" start
  # shellcheck disable=SC2086
  BENCH_USE_RUNNING=1 BENCH_NO_BUILD=1 BENCH_RESULTS="$BENCH_WORK/rows-$label.tsv" \
    "$BENCH_DIR/run.sh" $LOAD >"$BENCH_WORK/load-$label.log" 2>&1 || bench_log "$label: the load reported a failure (see $BENCH_WORK/load-$label.log)"
  snapshot "$label" after
  [[ -z "${BENCH_MEMORY_GCDUMP:-}" ]] || { heap_dumps "$label"; snapshot "$label" after-gc; }
  if ((${BENCH_MEMORY_SETTLE:-0} > 0)); then sleep "$BENCH_MEMORY_SETTLE"; snapshot "$label" settled; fi
  grep -v '^rss' "$BENCH_WORK/rows-$label.tsv" 2>/dev/null | sed "s/^/$label\tload\t/" >>"$OUT" || true
  memory_stop
}

[[ "${BENCH_NO_BUILD:-0}" == 1 ]] || bench_build
for ((r = 1; r <= ROUNDS; r++)); do
  for c in "${CONFIGS[@]}"; do run_config "$c"; done
done

echo
echo "Memory per process, $(date -u '+%Y-%m-%d %H:%M UTC'), $(git -C "$BENCH_ROOT" rev-parse --short HEAD 2>/dev/null || echo "$BENCH_ROOT"), load: $LOAD"
echo "machine: $(bench_machine); $(uptime | sed 's/.*load average/load average/')"
python3 - "$OUT" <<'PY'
import sys, collections
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
mib = lambda k: f"{int(k) / 1024:.0f}"
labels = list(dict.fromkeys(r[0] for r in rows))
for label in labels:
    print(f"\n### {label}\n")
    for r in rows:
        if r[0] == label and r[1] == "start-ms":
            print(f"start: {int(r[3]) / 1000:.1f} s wall (servers included), services healthy after {r[4] or '?'} s\n")
    print("| process | phase | RSS | PSS | anon | file | shmem | threads |")
    print("|---|---|--:|--:|--:|--:|--:|--:|")
    tot = collections.defaultdict(lambda: [0, 0])
    for r in rows:
        if r[0] == label and r[1] in ("start", "after", "after-gc", "settled"):
            print(f"| {r[2]} | {r[1]} | {mib(r[3])} | {mib(r[4])} | {mib(r[5])} | {mib(r[6])} | {mib(r[7])} | {r[8]} |")
            tot[r[1]][0] += int(r[3]); tot[r[1]][1] += int(r[4])
    for ph, (rss, pss) in tot.items():
        print(f"| **all** | {ph} | {mib(rss)} | {mib(pss)} | | | | |")
    load = [r[2:] for r in rows if r[0] == label and r[1] == "load"]
    if load:
        print("\nload figures:")
        for l in load:
            print("  " + " | ".join(c for c in l if c))
PY
