# shellcheck shell=bash
# Shared helpers for the local test bed. Sourced by testbed/testbed.sh and the service files.
#
# Layout:
#   $TESTBED_DIR           runtime state, git-ignored (default: <repo>/.testbed)
#     env                  the one shell-sourceable file with every endpoint and credential
#     env.d/<svc>.env      each service's part of it
#     run/<svc>.pid        pid files
#     log/<svc>.log        service logs
#     data/<svc>/          service data
#   $PYSTEPS_CACHE         heavy downloads and builds, kept across clones (default: ~/.cache/pysteps)
#
# Every service file in testbed/services/NN-name.sh registers its services with
# `tb_register NAME` and defines, for each NAME:
#   NAME_install   idempotent: installs what is missing (apt, go builds into the cache)
#   NAME_start     starts it if down, then waits until it answers (tb_wait); non-zero on failure
#   NAME_check     exit 0 when the service answers right now
#   NAME_endpoint  one word: where it answers (URL, host:port, socket)
#   NAME_stop      stops it and leaves no process behind
#   NAME_env       prints `export KEY=value` lines for $TESTBED_DIR/env

TESTBED_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export TESTBED_ROOT
export TESTBED_DIR=${TESTBED_DIR:-$TESTBED_ROOT/.testbed}
export PYSTEPS_CACHE=${PYSTEPS_CACHE:-$HOME/.cache/pysteps}
export DEBIAN_FRONTEND=noninteractive

TESTBED_SERVICES=()

tb_register() { TESTBED_SERVICES+=("$@"); }

tb_log() { printf 'testbed: %s\n' "$*" >&2; }

tb_die() { printf 'testbed: error: %s\n' "$*" >&2; exit 1; }

tb_dirs() {
  mkdir -p "$TESTBED_DIR"/{run,log,data,env.d} "$PYSTEPS_CACHE"
}

# tb_apt PKG...: install the Debian packages that are missing; `apt-get update` at most once per run.
tb_apt() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ -z "${_TB_APT_UPDATED:-}" ]; then
    tb_log "apt-get update"
    apt-get -o DPkg::Lock::Timeout=300 update -qq >/dev/null || tb_die "apt-get update failed"
    _TB_APT_UPDATED=1
  fi
  tb_log "apt-get install ${missing[*]}"
  apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || tb_die "apt-get install ${missing[*]} failed"
}

tb_pidfile() { echo "$TESTBED_DIR/run/$1.pid"; }
tb_logfile() { echo "$TESTBED_DIR/log/$1.log"; }

# tb_running NAME: the process recorded in NAME's pid file is alive.
tb_running() {
  local pf pid
  pf=$(tb_pidfile "$1")
  [ -f "$pf" ] || return 1
  pid=$(cat "$pf")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  # A process killed a moment ago can linger as a zombie that kill -0 still finds.
  case "$(ps -o stat= -p "$pid" 2>/dev/null)" in Z*|"") return 1 ;; esac
}

# tb_daemon NAME CMD...: start CMD in its own session, log to NAME's log, pid to NAME's pid file.
tb_daemon() {
  local name=$1; shift
  local log
  log=$(tb_logfile "$name")
  printf '\n=== %s start %s\n' "$(date -u +%FT%TZ)" "$*" >>"$log"
  setsid "$@" >>"$log" 2>&1 </dev/null &
  echo $! >"$(tb_pidfile "$name")"
}

# tb_stop_pid NAME: TERM the process group of NAME, wait up to 15 s, then KILL.
tb_stop_pid() {
  local name=$1 pf pid i
  pf=$(tb_pidfile "$name")
  [ -f "$pf" ] || return 0
  pid=$(cat "$pf")
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 150); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pf"
}

# tb_wait NAME SECONDS CMD...: poll CMD until it succeeds; on time-out print NAME's log tail and fail.
tb_wait() {
  local name=$1 timeout=$2; shift 2
  local deadline=$((SECONDS + timeout))
  while [ $SECONDS -lt $deadline ]; do
    if "$@" >/dev/null 2>&1; then return 0; fi
    if [ -f "$(tb_pidfile "$name")" ] && ! tb_running "$name"; then
      break
    fi
    sleep 0.3
  done
  tb_log "$name did not come up within ${timeout}s; last lines of $(tb_logfile "$name"):"
  tail -n 40 "$(tb_logfile "$name")" >&2 2>/dev/null || true
  return 1
}

# tb_tcp_open HOST PORT: something listens there.
tb_tcp_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# tb_http_ok URL: the URL answers with a 2xx/3xx/401.
tb_http_ok() {
  local code
  code=$(curl -s -o /dev/null -m 3 -w '%{http_code}' "$1") || return 1
  case "$code" in 2*|3*|401) return 0 ;; *) return 1 ;; esac
}
