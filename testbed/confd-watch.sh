#!/usr/bin/env bash
# confd-watch.sh SECONDS CONFD_ARGS...: run `confd -watch CONFD_ARGS...` and restart it every
# SECONDS. The test bed's confd service (testbed/services/60-nginx.sh) runs this.
#
# Why: confd's etcd watch can miss changes (after a failed render, under quick successive
# changes, deleted keys: see shared PLATFORM_NOTES), and confd v0.30.0 cannot combine -watch
# with -interval. A confd that starts renders everything it reads, so a restart is a full
# resync. One confd at a time writes the file: a second, periodic confd beside the watcher
# races it and can put an older snapshot back over a newer one. In production the same is
# systemd's Restart=always with RuntimeMaxSec=, or a supervisor's periodic restart.
set -uo pipefail
period=$1
shift
child=""
stop() {
  [ -n "$child" ] && kill -KILL "$child" 2>/dev/null
  exit 0
}
trap stop TERM INT
while true; do
  "$@" -watch &
  child=$!
  sleep "$period" &
  wait $!
  # TERM first; a watcher that is stuck (or stopped) gets KILL after 5 s.
  kill -TERM "$child" 2>/dev/null
  for _ in $(seq 1 50); do
    kill -0 "$child" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$child" 2>/dev/null
  wait "$child" 2>/dev/null
done
