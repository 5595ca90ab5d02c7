#!/usr/bin/env bash
# Runs every test of the repository against real PostgreSQL, Redis, RabbitMQ and MailDev that it starts
# itself (own ports, a temporary data folder), then stops them. Ends with one line:
#   N passed, M failed[, K skipped]
# summed over every test project. Exit status is non-zero when anything failed or did not run.
#
#   eng/test.sh [extra dotnet test arguments, e.g. --filter "FullyQualifiedName~Gateway"]
#
# Builds Library.sln whole (the AppHost included; the test servers start meanwhile). Without extra
# arguments: the test projects in two lanes side by side (longest first); then, alone, the
# AppHost's tests (tests/Library.AppHost.Tests: the real AppHost under Aspire.Hosting.Testing,
# ~4 minutes here); then, alone, the fault-injection suite (tests/Library.FaultTests: the whole
# stack as real processes via eng/processes.sh, with servers and replicas killed under load, ~12
# minutes here; with it the backup and restore round trip of eng/run.sh on the AppHost, ~2
# minutes, on ports 8185/15185/19185/20185, LIBRARY_BACKUP_TEST_GATEWAY_PORT/_DASHBOARD_PORT/
# _OTLP_PORT/_RESOURCES_PORT), whose faults under load are timed; with extra arguments everything
# runs in one `dotnet test` as given. Every test process, and every service they start, runs with
# tiered PGO off (DOTNET_TieredPGO=0): they live for seconds to minutes, not long enough for the
# instrumented tier to pay for itself (the lending tests alone: 0.69-0.84x the CPU, 0.76-0.91x the
# time, in two alternating pairs); the services as `eng/run.sh` runs them keep the default. Before the counts it prints
# each phase's wall time, each project's, and each AppHost and fault test's duration (from the TRX
# files): where CI's time went.
#
# Environment: LIBRARY_TEST_PG_PORT (21432), LIBRARY_TEST_REDIS_PORT (21379),
# LIBRARY_TEST_RABBITMQ_PORT (21672; +1 and +2 are taken too; MailDev's SMTP +3 and web +4 unless
# SERVERS_MAIL_SMTP_PORT / SERVERS_MAIL_WEB_PORT say), LIBRARY_TEST_KEEP_DATA=1 keeps the
# data folder (logs) for a look afterwards, LIBRARY_TEST_FAULTS=0 leaves the fault suite out; its
# own ports: LIBRARY_FAULT_*_PORT (see tests/Library.FaultTests/RealLibrary.cs; 22xxx by default).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=lib/servers.sh
source "$ROOT/eng/lib/servers.sh"
# shellcheck source=lib/common.sh
source "$ROOT/eng/lib/common.sh"

# Fixed ports stay below Linux's ephemeral range (32768-60999): a listener there can find its
# port taken by some outgoing connection's source port (RabbitMQ then fails with eaddrinuse).
PG_PORT="${LIBRARY_TEST_PG_PORT:-21432}"
REDIS_PORT="${LIBRARY_TEST_REDIS_PORT:-21379}"
RABBIT_PORT="${LIBRARY_TEST_RABBITMQ_PORT:-21672}"
DATA="$(mktemp -d /tmp/library-test.XXXXXX)"
RESULTS="$ROOT/artifacts/test-results"

SUMMARY=""
# Each phase's wall time, printed together at the end (before the counts): where CI's time goes.
PHASES=()
phase_done() { # NAME START_SECONDS
  PHASES+=("$(printf '%-34s %4d s' "$1" $((SECONDS - $2)))")
  echo "[test] $1 took $((SECONDS - $2)) s" >&2
}
cleanup() {
  local status=$?
  # A start still running beside a build that failed: let it finish, then stop what it started.
  [[ -z "${servers_pid:-}" ]] || wait "$servers_pid" 2>/dev/null || true
  servers_stop_all "$DATA" || true
  if ((${#PHASES[@]})); then
    echo "[test] phases (wall time; total $((SECONDS - started)) s):" >&2
    printf '[test]   %s\n' "${PHASES[@]}" >&2
  fi
  if [[ "${LIBRARY_TEST_KEEP_DATA:-0}" == 1 ]]; then
    echo "[test] data and server logs kept in $DATA" >&2
  else
    rm -rf "$DATA"
  fi
  # The counts are the very last line, after everything the shutdown printed.
  [[ -n "$SUMMARY" ]] && echo "$SUMMARY"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

started=$SECONDS
export DOTNET_TieredPGO=0
servers_install
# The browser tests drive Debian's Chromium (Playwright cannot download its own browsers here).
if ! command -v chromium >/dev/null 2>&1; then
  echo "[test] installing chromium for the browser tests" >&2
  (apt-get install -y -qq chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }) \
    || echo "[test] chromium could not be installed: the browser tests will fail" >&2
fi
# The servers start beside the build (their start waits mostly on initdb's and Erlang's disk
# and boot; the build is the compiler's), not before it.
servers_start_all "$DATA" "$PG_PORT" "$REDIS_PORT" "$RABBIT_PORT" &
servers_pid=$!
phase_done "servers (install)" "$started"

library_build_settings
SOLUTION="$ROOT/Library.sln"

rm -rf "$RESULTS" "$ROOT/artifacts/contract"
mkdir -p "$RESULTS"
echo "[test] building $SOLUTION" >&2
build_started=$SECONDS
dotnet build "$SOLUTION" -c Release -nologo -clp:ErrorsOnly -p:RunAnalyzers=true
phase_done "build (restore, compile, analyzers; the servers start meanwhile)" "$build_started"
servers_wait=$SECONDS
wait "$servers_pid" || { echo "[test] the servers did not start (see above)" >&2; servers_pid=""; exit 1; }
servers_pid=""
LIBRARY_TEST_POSTGRES="$(pg_superuser_cs "$DATA" "$PG_PORT")"
LIBRARY_TEST_REDIS="$(redis_cs "$DATA" "$REDIS_PORT")"
LIBRARY_TEST_RABBITMQ="$(rabbitmq_cs "$DATA" "$RABBIT_PORT")"
read -r MAIL_SMTP_PORT MAIL_WEB_PORT < <(mail_ports "$RABBIT_PORT")
LIBRARY_TEST_MAIL="$(mail_cs "$MAIL_SMTP_PORT")"
LIBRARY_TEST_MAIL_API="http://127.0.0.1:$MAIL_WEB_PORT"
export LIBRARY_TEST_POSTGRES LIBRARY_TEST_REDIS LIBRARY_TEST_RABBITMQ LIBRARY_TEST_MAIL LIBRARY_TEST_MAIL_API
phase_done "servers ready after the build" "$servers_wait"

test_status=0
FAULTS="$ROOT/tests/Library.FaultTests/Library.FaultTests.csproj"
tests_started=$SECONDS
if (($# > 0)); then
  dotnet test "$SOLUTION" -c Release --no-build -nologo \
    --logger "trx" --logger "console;verbosity=normal" --results-directory "$RESULTS" "$@" || test_status=$?
  phase_done "dotnet test $*" "$tests_started"
else
  # Every other test project of the solution, in two lanes (this machine has two cores), each
  # lane's projects one after the other, the longest first (each lane takes the next project when
  # it is the shorter so far), so that neither lane idles at the end while the other still runs.
  # The times are the last CI run's, in seconds; a project not listed counts 60.
  declare -A EXPECTED=([Library.LendingService.Tests]=278 [Library.FuzzTests]=177 [Library.BrowserTests]=136
    [Library.Gateway.Tests]=136 [Library.BookService.Tests]=95 [Library.UserService.Tests]=52 [Library.EventBus.Tests]=42)
  mapfile -t others < <(grep -o 'tests\\[A-Za-z.]*\\[A-Za-z.]*\.csproj' "$SOLUTION" | tr '\\' / | sed 's|^tests/\([^/]*\)/.*|\1|' \
    | grep -vx 'Library.FaultTests\|Library.AppHost.Tests\|Library.TestSupport' \
    | while read -r p; do echo "${EXPECTED[$p]:-60} $p"; done | sort -rn | cut -d' ' -f2)
  lane=("" ""); load=(0 0)
  for p in "${others[@]}"; do
    i=$((load[0] <= load[1] ? 0 : 1)); lane[i]+=" $p"; load[i]=$((load[i] + ${EXPECTED[$p]:-60}))
  done
  run_lane() { # PROJECT... -> each in turn; fails if any failed
    local p rc=0
    for p in "$@"; do
      echo "[test] $p" >&2
      dotnet test "$ROOT/tests/$p/$p.csproj" -c Release --no-build -nologo \
        --logger "trx;LogFileName=$p.trx" --logger "console;verbosity=normal" --results-directory "$RESULTS" || rc=1
    done
    return "$rc"
  }
  echo "[test] two lanes:${lane[0]} |${lane[1]}" >&2
  # shellcheck disable=SC2086 # the lanes are space-separated project names
  run_lane ${lane[0]} & lane0=$!
  # shellcheck disable=SC2086
  run_lane ${lane[1]} & lane1=$!
  wait "$lane0" || test_status=1
  wait "$lane1" || test_status=1
  phase_done "the other test projects" "$tests_started"
  # The AppHost's own tests start the whole Library under Aspire (process mode: its own servers,
  # data folder and ports) and a browser: alone. (A third lane beside the two above made the
  # phase 888 s against 440 + 230 s one after the other: two cores are already busy.)
  echo "[test] the AppHost (Aspire.Hosting.Testing: the whole Library as the run command starts it)" >&2
  apphost_started=$SECONDS
  dotnet test "$ROOT/tests/Library.AppHost.Tests/Library.AppHost.Tests.csproj" -c Release --no-build -nologo \
    --logger "trx;LogFileName=Library.AppHost.Tests.trx" --logger "console;verbosity=normal" --results-directory "$RESULTS" || test_status=$?
  phase_done "AppHost tests" "$apphost_started"
  if [[ "${LIBRARY_TEST_FAULTS:-1}" != 0 ]]; then
    # Alone: its faults under load are timed. With it, the backup and restore round trip.
    echo "[test] fault-injection suite (the whole stack as processes, faults under load)" >&2
    faults_started=$SECONDS
    dotnet test "$FAULTS" -c Release --no-build -nologo \
      --logger "trx;LogFileName=Library.FaultTests.trx" --logger "console;verbosity=normal" --results-directory "$RESULTS" || test_status=$?
    phase_done "fault-injection suite" "$faults_started"
    if [[ -s "$ROOT/artifacts/fault-results.md" ]]; then
      echo "[test] fault-injection results (artifacts/fault-results.md, details in artifacts/fault-details.txt):" >&2
      cat "$ROOT/artifacts/fault-results.md" "$ROOT/artifacts/fault-details.txt" >&2 2>/dev/null || true
    fi
  else
    echo "[test] LIBRARY_TEST_FAULTS=0: the fault-injection suite is left out" >&2
  fi
fi

# The contract check's coverage: answers the OpenAPI documents promise that no test produced
# (a report; `eng/contract-coverage.py --gate` makes it fail).
python3 "$ROOT/eng/contract-coverage.py" >&2 || true

# One line with the counts summed over every project's TRX file (printed last, by cleanup).
SUMMARY="$(python3 - "$RESULTS" <<'PY'

import glob, sys, xml.etree.ElementTree as ET
ns = {"t": "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"}
passed = failed = skipped = 0
files = glob.glob(sys.argv[1] + "/**/*.trx", recursive=True)
for f in files:
    c = ET.parse(f).getroot().find("t:ResultSummary/t:Counters", ns)
    passed += int(c.get("passed", 0))
    failed += int(c.get("failed", 0)) + int(c.get("error", 0)) + int(c.get("timeout", 0)) + int(c.get("aborted", 0))
    skipped += int(c.get("notExecuted", 0))
    # Name what failed, so the tail of a CI log says which test to look at.
    for r in ET.parse(f).getroot().iter("{%s}UnitTestResult" % ns["t"]):
        if r.get("outcome") not in ("Passed", "NotExecuted"):
            msg = r.find("t:Output/t:ErrorInfo/t:Message", ns)
            first = (msg.text or "").strip().splitlines()[0][:300] if msg is not None and msg.text else ""
            print(f"FAILED ({r.get('outcome')}, {r.get('duration', '?')}): {r.get('testName')}: {first}", file=sys.stderr)
# Where the time went: each project's wall time (its TRX's start to finish), and each test of
# the suites that run alone (the fault suite, the AppHost), in the order they ran.
from datetime import datetime
def when(text):
    head, _, rest = text.partition(".")
    return datetime.fromisoformat(head + "." + rest[:6] + rest[-6:])
def seconds(duration):
    h, m, sec = duration.split(":")
    return int(h) * 3600 + int(m) * 60 + float(sec)
runs = []
for f in files:
    root = ET.parse(f).getroot()
    results = list(root.iter("{%s}UnitTestResult" % ns["t"]))
    times = root.find("t:Times", ns)
    if not results or times is None:
        continue
    parts = results[0].get("testName").split(".")
    project = ".".join(parts[:3] if parts[2] == "Tests" else parts[:2])
    runs.append((when(times.get("start")), project, len(results), (when(times.get("finish")) - when(times.get("start"))).total_seconds(), results))
for start, project, count, wall, results in sorted(runs, key=lambda r: r[0]):
    print(f"[test] {project}: {count} tests, {wall:.0f} s (from {start:%H:%M:%S})", file=sys.stderr)
    if project in ("Library.FaultTests", "Library.AppHost.Tests"):
        for r in sorted(results, key=lambda r: r.get("startTime")):
            print(f"[test]     {seconds(r.get('duration', '0:0:0')):6.1f} s  {r.get('testName')[len(project) + 1:][:110]}", file=sys.stderr)
print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed or not files or passed == 0 else 0)
PY
)" || test_status=1
exit "$test_status"
