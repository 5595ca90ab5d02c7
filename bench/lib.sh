# shellcheck shell=bash
# Shared by the bench/ scripts (source it): ports, the stack (own or already running), tokens,
# test data through the API, wrk runs and their figures, resident memory, and the results table.
#
# Each scenario script works alone (it starts its own stack with eng/processes.sh and prints its rows
# as a table) or inside bench/run.sh (BENCH_USE_RUNNING=1: it uses the stack run.sh started, or
# one you started yourself, and appends its rows to run.sh's table, $BENCH_RESULTS).
#
# Environment:
#   BENCH_USE_RUNNING=1   use a running stack instead of starting one; then
#     BENCH_URL           its gateway (default http://127.0.0.1:$LIBRARY_GATEWAY_PORT)
#     BENCH_SERVICE_URL   one book-service replica, for the direct reads (default :$LIBRARY_BOOKSERVICE_PORT)
#     LIBRARY_DATA_DIR    its data folder (pids for RSS, PostgreSQL for pgbench and checks, admin password)
#     LIBRARY_ADMIN_EMAIL / LIBRARY_ADMIN_PASSWORD (default: the password kept in the data folder)
#     It must have been started with the raised limits (RateLimiting__*, see bench_limits) or
#     the load gets 429s, which the rows show as non-2xx.
#   BENCH_KEEP=1          keep the work folder (wrk outputs, logs, the stack's data) afterwards
#   Ports of an own stack (defaults apart from eng/processes.sh's and eng/test.sh's): LIBRARY_GATEWAY_PORT
#   8182, LIBRARY_{USER,BOOK,LENDING}SERVICE_PORT 5621/5721/5821, LIBRARY_PG_PORT 49432,
#   LIBRARY_REDIS_PORT 49379, LIBRARY_RABBITMQ_PORT 49672 (+1, +2).

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BENCH_ROOT="$(cd "$BENCH_DIR/.." && pwd)"
# shellcheck source=../eng/lib/servers.sh
source "$BENCH_ROOT/eng/lib/servers.sh"
# shellcheck source=../eng/lib/common.sh
source "$BENCH_ROOT/eng/lib/common.sh"

export LIBRARY_GATEWAY_PORT="${LIBRARY_GATEWAY_PORT:-8182}"
# One gateway process (eng/processes.sh runs two by default): the figures stay comparable with
# earlier runs, and a second gateway would take CPU from the two cores being measured.
export LIBRARY_GATEWAY_REPLICAS="${LIBRARY_GATEWAY_REPLICAS:-1}"
export LIBRARY_USERSERVICE_PORT="${LIBRARY_USERSERVICE_PORT:-5621}"
export LIBRARY_BOOKSERVICE_PORT="${LIBRARY_BOOKSERVICE_PORT:-5721}"
export LIBRARY_LENDINGSERVICE_PORT="${LIBRARY_LENDINGSERVICE_PORT:-5821}"
export LIBRARY_PG_PORT="${LIBRARY_PG_PORT:-49432}"
export LIBRARY_REDIS_PORT="${LIBRARY_REDIS_PORT:-49379}"
export LIBRARY_RABBITMQ_PORT="${LIBRARY_RABBITMQ_PORT:-49672}"
BENCH_URL="${BENCH_URL:-http://127.0.0.1:$LIBRARY_GATEWAY_PORT}"
BENCH_SERVICE_URL="${BENCH_SERVICE_URL:-http://127.0.0.1:$LIBRARY_BOOKSERVICE_PORT}"
export BENCH_URL BENCH_SERVICE_URL

bench_log() { printf '[bench] %s\n' "$*" >&2; }
bench_die() { printf '[bench] ERROR: %s\n' "$*" >&2; exit 1; }

bench_machine() {
  # shellcheck disable=SC1091
  echo "$(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)), $(free -g | awk '/Mem:/{print $2}') GiB, $(. /etc/os-release && echo "$PRETTY_NAME"), kernel $(uname -r), .NET $(dotnet --version)"
}

bench_need_tools() {
  command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
  command -v pgbench >/dev/null || bench_die "pgbench not found (apt-get install postgresql-client)"
}

# The work folder of this script: outputs, and the stack's data when we start one. Nested
# scripts (run.sh -> borrow.sh) share their parent's.
bench_workdir() {
  if [[ -z "${BENCH_WORK:-}" ]]; then
    BENCH_WORK="$(mktemp -d /tmp/library-bench.XXXXXX)"
    chmod 755 "$BENCH_WORK"   # the servers run as postgres and rabbitmq under it
    BENCH_OWN_WORK=1
  fi
  export BENCH_WORK
  mkdir -p "$BENCH_WORK"
  if [[ -z "${BENCH_RESULTS:-}" ]]; then
    BENCH_RESULTS="$BENCH_WORK/results.tsv"
    BENCH_PRINTS_TABLE=1
    : >"$BENCH_RESULTS"
  fi
  export BENCH_RESULTS
}

# Rate limits raised through the gateway's configuration keys (API.md, "Limits"); eng/processes.sh
# passes the environment on to the gateway. Nothing is switched off: the limiters still run.
bench_limits() {
  export RateLimiting__AnonymousPerMinute="${RateLimiting__AnonymousPerMinute:-1000000000}"
  export RateLimiting__UserPerMinute="${RateLimiting__UserPerMinute:-1000000000}"
  export RateLimiting__LoginPerMinute="${RateLimiting__LoginPerMinute:-100000}"
  export RateLimiting__LoginPerIpPerMinute="${RateLimiting__LoginPerIpPerMinute:-100000}"
  export RateLimiting__RegisterPerMinute="${RateLimiting__RegisterPerMinute:-100000}"
}

# ----------------------------------------------------------------------------- the stack

BENCH_STACK_OWN=""
BENCH_CHILD_PIDS=()

# What a script started: its background processes (by pid), its own stack, its own work folder.
bench_cleanup_now() {
  local p
  # Only our own children: a pid whose parent is no longer this shell may be someone else's now.
  for p in "${BENCH_CHILD_PIDS[@]+"${BENCH_CHILD_PIDS[@]}"}"; do
    [[ "$(ps -o ppid= -p "$p" 2>/dev/null | tr -d ' ')" == "$$" ]] && kill "$p" 2>/dev/null || true
  done
  BENCH_CHILD_PIDS=()
  if [[ -n "$BENCH_STACK_OWN" ]]; then "$BENCH_ROOT/eng/processes.sh" stop >/dev/null 2>&1 || true; BENCH_STACK_OWN=""; fi
  # A script's own tidying once its processes are gone (BENCH_AFTER_STOP: a command, run once).
  if [[ -n "${BENCH_AFTER_STOP:-}" ]]; then "$BENCH_AFTER_STOP" || true; BENCH_AFTER_STOP=""; fi
  if [[ -n "${BENCH_OWN_WORK:-}" ]]; then
    if [[ "${BENCH_KEEP:-0}" == 1 ]]; then bench_log "kept $BENCH_WORK"; else rm -rf "$BENCH_WORK"; fi
  fi
}
bench_cleanup() { local rc=$?; trap - EXIT; bench_cleanup_now; exit "$rc"; }

# Builds the services (Release) once; eng/processes.sh then starts them with LIBRARY_NO_BUILD=1 so
# start times never include MSBuild.
bench_build() {
  [[ "${BENCH_NO_BUILD:-0}" == 1 ]] && return 0
  bench_log "building (Release)"
  library_build_settings 2>/dev/null; dotnet build "$BENCH_ROOT/Library.sln" -c Release -nologo -v q -clp:ErrorsOnly >/dev/null
}

# bench_stack_up -- an own stack (eng/processes.sh start, sample catalog, 2 replicas, raised limits),
# or checks the running one (BENCH_USE_RUNNING=1). Sets BENCH_URL, LIBRARY_DATA_DIR.
bench_stack_up() {
  bench_workdir
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
  if [[ "${BENCH_USE_RUNNING:-0}" == 1 ]]; then
    curl -sf -m 5 "$BENCH_URL/health" >/dev/null || bench_die "no healthy gateway at $BENCH_URL (BENCH_URL)"
    [[ -n "${LIBRARY_DATA_DIR:-}" && -d "$LIBRARY_DATA_DIR/run" ]] \
      || bench_die "set LIBRARY_DATA_DIR to the running stack's data folder (pids, secrets, PostgreSQL)"
    export LIBRARY_DATA_DIR
    return 0
  fi
  bench_limits
  export LIBRARY_DATA_DIR="$BENCH_WORK/stack"
  export LIBRARY_ADMIN_EMAIL="${LIBRARY_ADMIN_EMAIL:-bench-admin@library.local}"
  export LIBRARY_ADMIN_PASSWORD="${LIBRARY_ADMIN_PASSWORD:-bench-$(od -An -vtx1 -N8 /dev/urandom | tr -d ' \n')}"
  bench_build
  bench_log "starting the stack (data: $LIBRARY_DATA_DIR)"
  BENCH_STACK_OWN=1
  LIBRARY_NO_BUILD=1 "$BENCH_ROOT/eng/processes.sh" start >"$BENCH_WORK/run-start.log" 2>&1 \
    || { tail -30 "$BENCH_WORK/run-start.log" >&2; bench_die "eng/processes.sh start failed"; }
}

bench_admin_password() {
  if [[ -n "${LIBRARY_ADMIN_PASSWORD:-}" ]]; then echo "$LIBRARY_ADMIN_PASSWORD"; return; fi
  tr -d '[:space:]' <"$LIBRARY_DATA_DIR/secrets/admin.password"
}

# A fresh librarian (the admin) access token; tokens live 15 minutes, so each scenario logs in.
bench_token() {
  curl -sf -X POST "$BENCH_URL/api/auth/login" -H 'content-type: application/json' \
    -d "{\"email\":\"${LIBRARY_ADMIN_EMAIL:-admin@library.local}\",\"password\":\"$(bench_admin_password)\"}" \
    | bench_json "['accessToken']"
}

bench_json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

bench_psql() { pg_psql "$LIBRARY_DATA_DIR" "$@"; }

# ----------------------------------------------------------------------------- test data

# A run tag keeps e-mails unique when a running stack is benchmarked twice.
BENCH_TAG="${BENCH_TAG:-$(date +%s)}"
export BENCH_TAG

# bench_titles TOKEN COUNT COPIES LABEL -> prints COUNT new title IDs (one a line). ISBNs come
# from a counter kept with the stack's data, started at a random point (a running stack may
# already hold an earlier run's titles).
bench_titles() {
  local next f="$LIBRARY_DATA_DIR/bench-isbn.next"
  [[ -s "$f" ]] || echo $((10000000 + (RANDOM * 32768 + RANDOM) % 80000000)) >"$f"
  read -r next <"$f"
  echo $((next + $2)) >"$f"
  python3 "$BENCH_DIR/api.py" titles "$BENCH_URL" "$1" "$2" "$3" "$4" "$next" || bench_die "could not create the titles '$4'"
}

# bench_readers COUNT -> prints COUNT new reader IDs, registered through the API
bench_readers() {
  python3 "$BENCH_DIR/api.py" readers "$BENCH_URL" "$1" "$BENCH_TAG.$RANDOM" || bench_die "could not register the readers"
}

# bench_replicated TABLE FILE -- waits until lendingdb's TABLE (titles | readers) holds every ID
# in FILE (they arrive by events), at most 60 s.
bench_replicated() {
  local table=$1 file=$2 want have ids deadline=$((SECONDS + 60))
  want="$(wc -l <"$file")"
  ids="$(sed "s/.*/'&'/" "$file" | paste -sd,)"
  while :; do
    have="$(bench_psql -d lendingdb -Atc "SELECT count(*) FROM $table WHERE id IN ($ids)")"
    ((have >= want)) && return 0
    ((SECONDS < deadline)) || { bench_log "only $have of $want $table reached the lending service"; return 0; }
    sleep 0.5
  done
}

# For the profilers (bench/allocations.sh, bench/cpu-profile.sh): PROFILE_PID is SERVICE's replica 0
# and PROFILE_REPLICAS how many it has; the borrow path is warmed (JIT, pools), then bench/borrow.sh's
# load runs in the background (PROFILE_LOAD, its wrk output OUT/wrk.txt) for SAMPLE_SECONDS + 10 s,
# and this returns 5 s into it, so the caller samples the middle of the load.
#   bench_profile_load SERVICE SAMPLE_SECONDS CONNECTIONS OUT WHAT   (WHAT: the log's "sampling ..." words)
bench_profile_load() {
  local service=$1 seconds=$2 connections=$3 out=$4 what=$5 pidfile load_seconds
  pidfile="$LIBRARY_DATA_DIR/run/$service-0.pid"
  [[ -s "$pidfile" ]] || bench_die "no $service-0 in this stack ($pidfile)"
  read -r PROFILE_PID <"$pidfile"
  PROFILE_REPLICAS="$(find "$LIBRARY_DATA_DIR/run" -name "$service-*.pid" | wc -l)"
  BORROW_DATA="$BENCH_LENDING/borrow-data.lua" wrk -t2 -c4 -d3s -s "$BENCH_DIR/borrow.lua" "$BENCH_URL" >/dev/null
  load_seconds=$((seconds + 10))
  bench_log "borrow/return through the gateway: $connections connections, ${load_seconds} s; $what $service-0 (pid $PROFILE_PID) for ${seconds} s from the 5th"
  BORROW_DATA="$BENCH_LENDING/borrow-data.lua" bench_wrk "$out/wrk.txt" "$connections" "$load_seconds" "$BENCH_URL" "$BENCH_DIR/borrow.lua" &
  PROFILE_LOAD=$!
  sleep 5
}

# The requests of the profile's load (OUT/wrk.txt) that reached one replica while it was sampled
# (the gateway spreads them over the replicas).
bench_profile_requests() { # OUT SAMPLE_SECONDS
  local rps _
  read -r rps _ < <(bench_wrk_fields "$1/wrk.txt")
  awk -v r="$rps" -v s="$2" -v n="$PROFILE_REPLICAS" 'BEGIN { printf "%.0f", r * s / n }'
}

# bench_lending_data -> the titles and readers the lending scenarios share, made once per stack:
# $BENCH_LENDING/titles (BENCH_TITLES x BENCH_COPIES), readers (BENCH_READERS), and
# borrow-data.lua for bench/borrow.lua. Needs BENCH_TOKEN.
bench_lending_data() {
  BENCH_LENDING="$LIBRARY_DATA_DIR/bench-lending"
  export BENCH_LENDING
  [[ -s "$BENCH_LENDING/borrow-data.lua" ]] && return 0
  mkdir -p "$BENCH_LENDING"
  local titles="${BENCH_TITLES:-100}" copies="${BENCH_COPIES:-1000}" readers="${BENCH_READERS:-500}"
  bench_log "creating $titles titles x $copies copies and registering $readers readers"
  bench_titles "$BENCH_TOKEN" "$titles" "$copies" "Bench Title" >"$BENCH_LENDING/titles.tmp"
  bench_readers "$readers" >"$BENCH_LENDING/readers.tmp"
  [[ "$(wc -l <"$BENCH_LENDING/readers.tmp")" == "$readers" ]] || bench_die "not every reader could register"
  bench_replicated titles "$BENCH_LENDING/titles.tmp"
  bench_replicated readers "$BENCH_LENDING/readers.tmp"
  mv "$BENCH_LENDING/titles.tmp" "$BENCH_LENDING/titles"
  mv "$BENCH_LENDING/readers.tmp" "$BENCH_LENDING/readers"
  {
    printf 'return { token = os.getenv("BENCH_TOKEN"),\ntitles = {'
    sed 's/.*/"&",/' "$BENCH_LENDING/titles" | tr -d '\n'
    printf '},\nreaders = {'
    sed 's/.*/"&",/' "$BENCH_LENDING/readers" | tr -d '\n'
    printf '} }\n'
  } >"$BENCH_LENDING/borrow-data.lua"
}

# ----------------------------------------------------------------------------- wrk

# bench_wrk OUT CONNECTIONS SECONDS URL [LUA] -- wrk with latency percentiles and a 30 s timeout
# (wrk's default of 2 s drops slow answers from the percentiles as "timeouts").
bench_wrk() {
  local out=$1 c=$2 d=$3 url=$4 lua=${5:-} t=2
  ((c < 2)) && t=1
  wrk -t"$t" -c"$c" -d"${d}s" --timeout 30s --latency ${lua:+-s "$lua"} "$url" >"$out"
}

# bench_wrk_fields FILE -> "REQ_PER_S P50_MS P99_MS NON2XX SOCKET_ERRORS"
bench_wrk_fields() {
  awk 'function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /m$/) return v * 60000; if (v ~ /s$/) return v * 1000; return v + 0 }
    /Requests\/sec/ { rps = $2 }
    /^ +50%/ { p50 = ms($2) } /^ +99%/ { p99 = ms($2) }
    /Non-2xx/ { non2xx = $NF }
    /Socket errors/ { gsub(",", ""); errors = $4 + $6 + $8 + $10 }
    END { printf "%.1f %.3f %.3f %d %d\n", rps, p50, p99, non2xx, errors }' "$1"
}

# ----------------------------------------------------------------------------- figures

fmt_ms() { awk -v v="$1" 'BEGIN { if (v == "") print "-"; else if (v < 10) printf "%.2f ms\n", v; else if (v < 100) printf "%.1f ms\n", v; else if (v < 10000) printf "%.0f ms\n", v; else printf "%.1f s\n", v / 1000 }'; }
fmt_rate() { awk -v v="$1" -v u="${2:-/s}" 'BEGIN { s = sprintf("%.0f", v); if (v < 100) s = sprintf("%.1f", v); while (s ~ /^[0-9]{4}/) sub(/[0-9]{3}($|[,.])/, ",&", s); print s u }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "-"; else printf "%.2f\n", a / b }'; }

# bench_row SCENARIO WHAT RATE P50 P99 NOTES -- one row of the table (figures already formatted)
bench_row() {
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "${6:-}" >>"$BENCH_RESULTS"
}

# bench_wrk_row SCENARIO WHAT FILE NOTES -- a row from a wrk output; prints its req/s
bench_wrk_row() {
  local rps p50 p99 non2xx errors notes=$4
  read -r rps p50 p99 non2xx errors < <(bench_wrk_fields "$3")
  ((non2xx > 0)) && notes="$notes; NON-2XX: $non2xx"
  ((errors > 0)) && notes="$notes; SOCKET ERRORS: $errors"
  bench_row "$1" "$2" "$(fmt_rate "$rps")" "$(fmt_ms "$p50")" "$(fmt_ms "$p99")" "$notes"
  echo "$rps"
}

# bench_rss LABEL -- resident memory (VmRSS) of every process of the stack, from its pid files
bench_rss() {
  local f inst pid kb total=0 notes=""
  local -A by=()
  for f in "$LIBRARY_DATA_DIR"/run/*.pid; do
    [[ -e "$f" ]] || continue
    inst="$(basename "$f" .pid)"; read -r pid <"$f" || continue
    kb="$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null)" || continue
    [[ -n "$kb" ]] || continue
    total=$((total + kb))
    by[${inst%-*}]+="${by[${inst%-*}]:+/}$((kb / 1024))"
  done
  for inst in userservice bookservice lendingservice gateway; do
    [[ -n "${by[$inst]:-}" ]] && notes+="${notes:+, }${inst%service} ${by[$inst]}"
  done
  bench_row rss "RSS after $1" "$((total / 1024)) MiB" "" "" "MiB per replica: $notes"
}

# bench_table -- the rows so far as one Markdown table
bench_table() {
  python3 - "$BENCH_RESULTS" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1], encoding="utf-8") if l.strip()]
head = ["scenario", "what", "rate / value", "p50", "p99", "notes"]
rows = [head] + [r + [""] * (6 - len(r)) for r in rows]
w = [max(len(r[i]) for r in rows) for i in range(6)]
def line(r): return "| " + " | ".join(c.ljust(w[i]) if i in (0, 1, 5) else c.rjust(w[i]) for i, c in enumerate(r)) + " |"
print(line(rows[0]))
print("|" + "|".join(("-" * (w[i] + 1) + ":") if i in (2, 3, 4) else "-" * (w[i] + 2) for i in range(6)) + "|")
for r in rows[1:]:
    print(line(r))
PY
}

# Standalone scripts end with this: the table of their own rows.
bench_finish() {
  if [[ -n "${BENCH_PRINTS_TABLE:-}" ]]; then
    echo
    echo "machine: $(bench_machine)"
    bench_table
  fi
}
