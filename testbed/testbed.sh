#!/usr/bin/env bash
# The local platform of real services on loopback: up | status | down | env | install [SERVICE...]
#
#   up       install what is missing, start what is down, wait until each answers,
#            then write $TESTBED_DIR/env (idempotent)
#   status   one line per service: name, ok|down, endpoint; exit 1 if any is down
#   down     stop every service, leave no process behind
#   install  only install (packages, cached builds)
#
# With SERVICE names, only those (in the test bed's order).
set -euo pipefail
# shellcheck source=testbed/lib.sh
source "$(dirname "$0")/lib.sh"
for f in "$TESTBED_ROOT"/testbed/services/*.sh; do
  # shellcheck disable=SC1090
  source "$f"
done

cmd=${1:-status}
shift || true
selected=("$@")
[ ${#selected[@]} -eq 0 ] && selected=("${TESTBED_SERVICES[@]}")
for s in "${selected[@]}"; do
  printf '%s\n' "${TESTBED_SERVICES[@]}" | grep -qx "$s" || tb_die "unknown service '$s' (known: ${TESTBED_SERVICES[*]})"
done

in_order() {  # the selected services in the test bed's order (or reversed with -r)
  local s list=()
  for s in "${TESTBED_SERVICES[@]}"; do
    printf '%s\n' "${selected[@]}" | grep -qx "$s" && list+=("$s")
  done
  if [ "${1:-}" = -r ]; then printf '%s\n' "${list[@]}" | tac; else printf '%s\n' "${list[@]}"; fi
}

write_env() {
  local s tmp out="$TESTBED_DIR/env"
  umask 077  # the env files hold credentials
  for s in "${TESTBED_SERVICES[@]}"; do
    "${s}_env" >"$TESTBED_DIR/env.d/$s.env"
  done
  tmp=$(mktemp "$out.XXXXXX")  # several `up`s may run at once
  {
    echo "# Written by testbed/testbed.sh; source it. Endpoints and credentials of the local platform."
    echo "export TESTBED_DIR=$TESTBED_DIR"
    cat "$TESTBED_DIR"/env.d/*.env
  } >"$tmp"
  chmod 600 "$tmp"
  mv "$tmp" "$out"
}

case "$cmd" in
  install)
    tb_dirs
    for s in $(in_order); do "${s}_install"; done
    ;;
  up)
    tb_dirs
    for s in $(in_order); do
      t0=$SECONDS
      "${s}_install"
      if "${s}_check" >/dev/null 2>&1; then
        tb_log "$s already up"
      else
        tb_log "starting $s"
        "${s}_start" || tb_die "$s failed to start (log: $(tb_logfile "$s"))"
        tb_log "$s up in $((SECONDS - t0))s"
      fi
    done
    write_env
    tb_log "environment written to $TESTBED_DIR/env"
    ;;
  status)
    rc=0
    for s in $(in_order); do
      if "${s}_check" >/dev/null 2>&1; then state=ok; else state=down; rc=1; fi
      printf '%-26s %-5s %s\n' "$s" "$state" "$("${s}_endpoint")"
    done
    exit $rc
    ;;
  down)
    for s in $(in_order -r); do
      "${s}_stop" || tb_log "stopping $s reported an error"
    done
    ;;
  env)
    tb_dirs
    write_env
    cat "$TESTBED_DIR/env"
    ;;
  *)
    tb_die "usage: testbed/testbed.sh up|status|down|install|env [SERVICE...]"
    ;;
esac
