#!/usr/bin/env bash
# eng/run.sh -- runs the whole Library: installs what is missing from the distribution's packages
# (PostgreSQL, Redis, RabbitMQ; MailDev from npm; the .NET tools), builds, and runs the AppHost (Library.AppHost),
# which starts and watches everything else: the servers (containers where a container runtime
# answers, processes from the distribution's packages where none does), 2 replicas of every
# service, the gateway on a fixed port, and the Aspire dashboard. Prints the gateway's and the
# dashboard's URLs once the gateway is healthy.
#
#   eng/run.sh               in the foreground (the AppHost's log on screen) until Ctrl-C
#   eng/run.sh start         in the background; returns once the gateway is healthy
#   eng/run.sh stop          stops a background run (the AppHost stops every resource it started)
#   eng/run.sh status        every resource with its state and health (aspire describe)
#   eng/run.sh logs [name]   a resource's console log (aspire logs), e.g. logs lendingservice
#   eng/run.sh rolling-restart [all|userservice|bookservice|lendingservice|gateway]
#                            restarts the replicas in waves, one of each service at a time, each back
#                            to /health Healthy before the next wave (all: every service, then the
#                            gateway's replicas one at a time): the AppHost's "Rolling
#                            restart" resource command, run through the Aspire CLI (aspire resource)
#   eng/run.sh backup [DIR]  one consistent pg_dump of every service database (process mode), with
#                            manifest.json, into DIR (default <repo>/backups/<UTC time>/); the
#                            Library running or stopped (the dashboard's postgres "Back up" does it too)
#   eng/run.sh restore DIR [--replace]   a backup onto LIBRARY_DATA_DIR with the Library stopped;
#                            refuses (exit 3) a folder that holds data unless --replace (eng/lib/backup.sh)
#   eng/run.sh help
#
# What stays in bash, and why: installing the servers' packages (the AppHost cannot apt-get), and
# the background start/stop verbs (a process id and a log file). Ports, replicas, health waits,
# environment keys and start order are the AppHost's. The fault-injection harness with a
# PostgreSQL standby and failover is eng/processes.sh (see its header).
#
# Environment (defaults):
#   LIBRARY_GATEWAY_PORT (8080)   LIBRARY_REPLICAS (2: of each service)   LIBRARY_GATEWAY_REPLICAS (2:
#   gateway processes behind its one port)   LIBRARY_DATA_DIR (<repo>/.local: the
#   servers' data in process mode, kept across runs)   LIBRARY_SERVERS (auto | process | container)
#   LIBRARY_CATALOG (data/sample-catalog.json, loaded into an empty catalog; "none")
#   LIBRARY_NO_BUILD=1 (use the last Release build)   LIBRARY_DASHBOARD_URL (http://localhost:15180)
# Secrets (database, Redis, RabbitMQ, admin passwords) are the AppHost's parameters, generated
# once and kept in its user secrets: `dotnet user-secrets list --project Library.AppHost` shows
# them (the admin's password is `Parameters:admin-password`), and so does the dashboard.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=lib/servers.sh
source "$ROOT/eng/lib/servers.sh"
# shellcheck source=lib/common.sh
source "$ROOT/eng/lib/common.sh"
# shellcheck source=lib/backup.sh
source "$ROOT/eng/lib/backup.sh"

STATE="$(realpath -m "${LIBRARY_DATA_DIR:-$ROOT/.local}")/run"   # the background run's pid and log
PID_FILE="$STATE/apphost.pid"
LOG_FILE="$STATE/apphost.log"
APPHOST="$ROOT/Library.AppHost/Library.AppHost.csproj"
GATEWAY_PORT="${LIBRARY_GATEWAY_PORT:-8080}"
START_TIMEOUT="${LIBRARY_START_TIMEOUT:-300}"
export ASPIRE_CLI_TELEMETRY_OPTOUT=1 DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 NO_COLOR=1

log() { printf '[run] %s\n' "$*" >&2; }
die() { printf '[run] ERROR: %s\n' "$*" >&2; exit 1; }

APPHOST_EXE="$ROOT/Library.AppHost/bin/Release/net10.0/Library.AppHost"

# What the AppHost's "http" launch profile sets (the AppHost runs as itself, not under
# `dotnet run`, so that the process a stop signals is the AppHost): the dashboard on
# http://localhost:15180, its OTLP and resource endpoints, Development (user secrets: the
# generated passwords are kept there).
apphost_env() {
  cd "$ROOT/Library.AppHost"
  export ASPNETCORE_ENVIRONMENT=Development DOTNET_ENVIRONMENT=Development \
    ASPNETCORE_URLS="${LIBRARY_DASHBOARD_URL:-http://localhost:15180}" \
    ASPIRE_DASHBOARD_OTLP_ENDPOINT_URL="${LIBRARY_DASHBOARD_OTLP_URL:-http://localhost:19180}" \
    ASPIRE_RESOURCE_SERVICE_ENDPOINT_URL="${LIBRARY_DASHBOARD_RESOURCES_URL:-http://localhost:20180}" \
    ASPIRE_ALLOW_UNSECURED_TRANSPORT=true
  [[ -x "$APPHOST_EXE" ]] || die "$APPHOST_EXE not found (build first, or drop LIBRARY_NO_BUILD=1)"
}

apphost_args() {
  local -a a=("--Library:GatewayPort=$GATEWAY_PORT")
  [[ -n "${LIBRARY_REPLICAS:-}" ]] && a+=("--Library:Replicas=$LIBRARY_REPLICAS")
  [[ -n "${LIBRARY_GATEWAY_REPLICAS:-}" ]] && a+=("--Library:GatewayReplicas=$LIBRARY_GATEWAY_REPLICAS")
  [[ -n "${LIBRARY_DATA_DIR:-}" ]] && a+=("--Library:DataDir=$(realpath -m "$LIBRARY_DATA_DIR")")
  [[ -n "${LIBRARY_SERVERS:-}" ]] && a+=("--Library:Servers=$LIBRARY_SERVERS")
  [[ -n "${LIBRARY_CATALOG:-}" ]] && a+=("--Library:Catalog=$LIBRARY_CATALOG")
  printf '%s\n' "${a[@]}"
}

prepare() {
  servers_install
  library_build_settings
  (cd "$ROOT" && dotnet tool restore >/dev/null)
  if [[ "${LIBRARY_NO_BUILD:-0}" != 1 ]]; then
    log "building (Release)"
    dotnet build "$APPHOST" -c Release -nologo -v q -clp:ErrorsOnly >&2
  fi
}

running_pid() {
  local pid
  [[ -s "$PID_FILE" ]] || return 1
  pid="$(cat "$PID_FILE")"
  [[ -e "/proc/$pid" ]] && grep -q Library.AppHost "/proc/$pid/cmdline" 2>/dev/null && echo "$pid"
}

# The gateway's port must be free: the gateway processes share it (SO_REUSEPORT), so another
# Library's gateway left on it would share it too, answer /health for this one and serve the
# other's data (a stack of eng/processes.sh left running did exactly that).
gateway_port_free() {
  (exec 3<>"/dev/tcp/127.0.0.1/$GATEWAY_PORT") 2>/dev/null || return 0
  local who
  who="$(ss -Hltnp "sport = :$GATEWAY_PORT" 2>/dev/null | grep -o 'users:.*' | head -n 1 || true)"
  die "port $GATEWAY_PORT is in use${who:+ ($who)}: stop what listens there (eng/processes.sh stop, eng/run.sh stop) or set LIBRARY_GATEWAY_PORT"
}

gateway_healthy() { curl -fsS -m 3 "http://127.0.0.1:$GATEWAY_PORT/health" 2>/dev/null | grep -q '"Healthy"'; }

# wait_ready PID LOG -> the gateway healthy, or the AppHost gone / the deadline passed
wait_ready() {
  local pid="$1" logf="$2" deadline=$((SECONDS + START_TIMEOUT))
  while ! gateway_healthy; do
    [[ -e "/proc/$pid" ]] || { tail -n 40 "$logf" >&2 2>/dev/null; die "the AppHost exited during start-up (log: $logf)"; }
    ((SECONDS < deadline)) || { tail -n 40 "$logf" >&2 2>/dev/null; die "the gateway was not healthy within $START_TIMEOUT s (eng/run.sh status, log: $logf)"; }
    sleep 1
  done
}

summary() { # LOG SECONDS
  local login="" i
  # The AppHost logs the dashboard's login URL once the dashboard is up, which can come a few
  # seconds after the gateway's first Healthy (it did in a start on a fresh clone).
  for ((i = 0; i < 30; i++)); do
    login="$(grep -o 'http://[^ ]*/login?t=[0-9a-f]*' "$1" 2>/dev/null | tail -n 1 || true)"
    [[ -n "$login" ]] && break
    sleep 1
  done
  cat >&2 <<EOF
[run] the Library is up in $2 s
[run]   gateway (the web page, /docs, /api/...):  http://127.0.0.1:$GATEWAY_PORT/
[run]   dashboard (resources, logs, traces):      ${login:-see the AppHost log}
[run]   mail catcher (the notices mailed):        the dashboard's "mail" resource, its http endpoint
[run]   admin: the email and password are the AppHost's parameters admin-email / admin-password:
[run]          dotnet user-secrets list --project Library.AppHost   (or the dashboard's parameters)
EOF
}

cmd_foreground() {
  local started=$SECONDS
  mkdir -p "$STATE"
  gateway_port_free
  prepare
  mapfile -t args < <(apphost_args)
  log "starting the AppHost (Ctrl-C stops it and everything it started)"
  # The AppHost's log goes to the screen and to a file the summary reads the dashboard URL from.
  apphost_env
  "$APPHOST_EXE" "${args[@]}" > >(tee "$LOG_FILE") 2>&1 &
  local pid=$!
  trap 'kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; exit 130' INT TERM
  ( wait_ready "$pid" "$LOG_FILE" && summary "$LOG_FILE" $((SECONDS - started)) ) &
  wait "$pid"
}

cmd_start() {
  local started=$SECONDS pid
  if pid="$(running_pid)"; then
    log "already running (pid $pid)"; summary "$LOG_FILE" 0; return 0
  fi
  mkdir -p "$STATE"
  gateway_port_free
  prepare
  mapfile -t args < <(apphost_args)
  [[ -f "$LOG_FILE" ]] && mv -f "$LOG_FILE" "$LOG_FILE.1"
  apphost_env
  # Its own session (a terminal's Ctrl-C or hang-up does not reach it); the pid is the AppHost's.
  setsid "$APPHOST_EXE" "${args[@]}" </dev/null >"$LOG_FILE" 2>&1 &
  pid=$!
  echo "$pid" >"$PID_FILE"
  log "AppHost started (pid $pid, log $LOG_FILE); waiting for the gateway"
  wait_ready "$pid" "$LOG_FILE"
  summary "$LOG_FILE" $((SECONDS - started))
}

cmd_stop() {
  local pid i
  pid="$(running_pid)" || { log "not running"; return 0; }
  log "stopping the AppHost (pid $pid) and everything it started"
  kill -TERM "$pid"
  for ((i = 0; i < 600; i++)); do [[ -e "/proc/$pid" ]] || break; sleep 0.1; done
  [[ -e "/proc/$pid" ]] && { log "still running after 60 s: SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; }
  # The AppHost leaves the teardown to its orchestrator (DCP, which watches the AppHost's pid):
  # wait until it has stopped every service and server, so a `start` right after finds the
  # ports and the data folder free.
  for ((i = 0; i < 900; i++)); do
    pgrep -f -- "dcp start-apiserver --monitor $pid( |$)" >/dev/null || break
    sleep 0.1
  done
  rm -f "$PID_FILE"
  log "stopped"
}

cmd_status() {
  running_pid >/dev/null || { log "not running"; exit 3; }
  (cd "$ROOT" && dotnet aspire describe --non-interactive --nologo --apphost "$APPHOST")
  gateway_healthy || exit 3
}

cmd_logs() {
  (cd "$ROOT" && dotnet aspire logs --non-interactive --nologo --apphost "$APPHOST" "$@")
}

# The AppHost's rolling-restart command: on the operations resource for everything, on one of a
# project's replicas for that project (a name with replicas is not unique; the CLI needs an id).
cmd_rolling_restart() { # [all|SERVICE]
  local which="${1:-all}" target started=$SECONDS
  running_pid >/dev/null || { log "not running"; exit 3; }
  case "$which" in
    all) target=operations ;;
    userservice | bookservice | lendingservice | gateway)
      target="$(cd "$ROOT" && dotnet aspire describe --format Json --non-interactive --nologo --apphost "$APPHOST" \
        | python3 -c 'import json, sys
doc = json.load(sys.stdin)
items = doc.get("resources", []) if isinstance(doc, dict) else doc
ids = sorted(r.get("name", "") for r in items if r.get("displayName", r.get("name")) == sys.argv[1])
print(ids[0] if ids else "")' "$which")" || true
      [[ -n "$target" ]] || die "no running resource named $which (eng/run.sh status)" ;;
    *) die "usage: eng/run.sh rolling-restart [all|userservice|bookservice|lendingservice|gateway]" ;;
  esac
  log "rolling restart of $which, one replica at a time (progress: eng/run.sh logs ${target%%-*}, or the dashboard)"
  (cd "$ROOT" && dotnet aspire resource "$target" rolling-restart --non-interactive --nologo --apphost "$APPHOST")
  log "rolling restart of $which done in $((SECONDS - started)) s"
}

DATA_DIR="$(realpath -m "${LIBRARY_DATA_DIR:-$ROOT/.local}")"

cmd_backup() { # [DIR]
  backup_run "$DATA_DIR" "${1:-$ROOT/backups/$(date -u +%Y%m%dT%H%M%SZ)}"
}

cmd_restore() { # DIR [--replace]
  [[ -n "${1:-}" && ( -z "${2:-}" || "${2:-}" == --replace ) ]] || die "usage: eng/run.sh restore DIR [--replace]"
  if pid="$(running_pid)"; then log "ERROR: the Library runs on $DATA_DIR (pid $pid): eng/run.sh stop first"; exit 3; fi
  restore_run "$DATA_DIR" "$1" "${2:-}"
}

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }

case "${1:-}" in
  "") cmd_foreground ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  logs) shift; cmd_logs "$@" ;;
  rolling-restart) shift; cmd_rolling_restart "$@" ;;
  backup) shift; cmd_backup "$@" ;;
  restore) shift; cmd_restore "$@" ;;
  help | -h | --help) usage ;;
  *) usage >&2; exit 2 ;;
esac
