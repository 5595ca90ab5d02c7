#!/usr/bin/env bash
# bench/apphost-start.sh -- the AppHost's start-up, as `eng/run.sh start` does it (process mode,
# the built tree: LIBRARY_NO_BUILD=1): from the command to the gateway's first 200 on
# /api/books, on an empty data folder (initdb, RabbitMQ's first boot, migrations, the sample
# catalog loaded) and then on the same folder kept; then the resident memory of every process
# the AppHost runs (after the kept start, idle). Runs on its own ports (gateway 8184, dashboard
# 15184) so it does not disturb a running Library. An A/B in the same run: the services as their
# built executables (Library:RunBuildOutput=true, the default) against Aspire's default launch,
# `dotnet run --no-build` per replica (false), in alternating turns.
#
#   bench/apphost-start.sh [rounds]      rounds of (empty, kept) starts per launch; default 2
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROUNDS="${1:-2}"
WORK="$(mktemp -d /tmp/library-bench-start.XXXXXX)"
export LIBRARY_NO_BUILD=1 LIBRARY_GATEWAY_PORT=8184 LIBRARY_DASHBOARD_URL=http://localhost:15184 \
  LIBRARY_DASHBOARD_OTLP_URL=http://localhost:19184 LIBRARY_DASHBOARD_RESOURCES_URL=http://localhost:20184 \
  LIBRARY_SERVERS=process
trap 'LIBRARY_DATA_DIR="$WORK/data" "$ROOT/eng/run.sh" stop >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT

ms() { echo $((${EPOCHREALTIME/./} / 1000)); }

# one_start -> seconds from `eng/run.sh start` to the first 200 on /api/books
one_start() {
  local t0 code
  t0="$(ms)"
  LIBRARY_DATA_DIR="$WORK/data" "$ROOT/eng/run.sh" start >"$WORK/start.log" 2>&1 || { tail -30 "$WORK/start.log" >&2; exit 1; }
  until code="$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$LIBRARY_GATEWAY_PORT/api/books")" && [[ "$code" == 200 ]]; do sleep 0.1; done
  awk -v a="$t0" -v b="$(ms)" 'BEGIN { printf "%.1f", (b - a) / 1000 }'
}

rss_table() {
  # Every process of this run: the AppHost and all descendants of its orchestrator (DCP), which
  # starts the servers, the services and the dashboard. One row per service replica; the
  # servers summed over their processes (PostgreSQL's backends, RabbitMQ's beam and epmd).
  python3 - "$(cat "$WORK/data/run/apphost.pid")" <<'PY'
import os, re, sys
apphost = int(sys.argv[1])
procs = {}
for d in os.listdir("/proc"):
    if not d.isdigit(): continue
    try:
        stat = open(f"/proc/{d}/stat").read()
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        cmd = open(f"/proc/{d}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace").strip()
        rss = next((int(l.split()[1]) for l in open(f"/proc/{d}/status") if l.startswith("VmRSS:")), 0)
        # PSS: shared pages (DCP's one binary in every monitor, PostgreSQL's shared buffers in
        # every backend) divided among the processes that share them, so the total adds up.
        pss = next((int(l.split()[1]) for l in open(f"/proc/{d}/smaps_rollup") if l.startswith("Pss:")), 0)
        procs[int(d)] = (ppid, cmd, (rss, pss))
    except (OSError, ValueError, IndexError):
        pass
roots = [apphost] + [p for p, (pp, c, r) in procs.items() if re.search(rf"dcp start-apiserver .*--monitor {apphost}( |$)", c)]
tree, todo = set(), list(roots)
while todo:
    p = todo.pop()
    if p in tree or p not in procs: continue
    tree.add(p)
    todo += [c for c, (pp, _, _) in procs.items() if pp == p]
rows, count = {}, {}
def add(k, kb): rows[k] = (rows.get(k, (0, 0))[0] + kb[0], rows.get(k, (0, 0))[1] + kb[1])
for p in sorted(tree):
    _, cmd, rss = procs[p]
    exe = os.path.basename(cmd.split(" ")[0]) if cmd else ""
    if p == apphost: add("AppHost", rss)
    elif "tools/dcp monitor-process" in cmd: add("DCP process monitors", rss)
    elif "tools/dcp" in cmd: add("DCP (orchestrator)", rss)
    elif "Aspire.Dashboard" in cmd: add("dashboard", rss)
    elif exe == "postgres" or cmd.startswith("postgres:"): add("PostgreSQL (all processes)", rss)
    elif exe == "redis-server": add("Redis", rss)
    elif exe in ("beam.smp", "epmd", "erl_child_setup", "inet_gethost"): add("RabbitMQ (beam, epmd)", rss)
    elif re.match(r"Library\.(UserService|BookService|LendingService|Gateway)$", exe):
        count[exe] = count.get(exe, 0) + 1; add(f"{exe} #{count[exe]}", rss)
    elif exe in ("bash", "env", "setpriv"): add("wrappers", rss)
    else: add(f"other: {exe}", rss)
print("| process | RSS MiB | PSS MiB |\n|---|---|---|")
for k, (r, p) in rows.items(): print(f"| {k} | {r / 1024:.0f} | {p / 1024:.0f} |")
print(f"| **total** | **{sum(r for r, _ in rows.values()) / 1024:.0f}** | **{sum(p for _, p in rows.values()) / 1024:.0f}** |")
PY
}

# total_rss -> MiB of every process of this run (the AppHost and everything DCP started)
total_rss() { rss_table | awk -F'|' '/total/ { gsub(/[* ]/, "", $3); gsub(/[* ]/, "", $4); print $3 " / " $4 }'; }

printf '| round | services launched as | empty data folder: start -> first /api/books (s) | kept data folder (s) | RSS / PSS of every process, idle after start (MiB) |\n|---|---|---|---|---|\n'
for ((r = 1; r <= ROUNDS; r++)); do
  for mode in true false; do
    export Library__RunBuildOutput="$mode"
    rm -rf "$WORK/data"
    empty="$(one_start)"
    LIBRARY_DATA_DIR="$WORK/data" "$ROOT/eng/run.sh" stop >/dev/null 2>&1
    kept="$(one_start)"
    sleep 10   # idle, after the start-up's work
    rss="$(total_rss)"
    [[ "$mode" == true && $r == "$ROUNDS" ]] && rss_table >"$WORK/rss.md"
    printf '| %d | %s | %s | %s | %s |\n' "$r" "$([[ $mode == true ]] && echo "built executable" || echo "dotnet run")" "$empty" "$kept" "$rss"
    LIBRARY_DATA_DIR="$WORK/data" "$ROOT/eng/run.sh" stop >/dev/null 2>&1
  done
done
echo
echo "Every process after the last kept start (services as built executables):"
echo
cat "$WORK/rss.md"
