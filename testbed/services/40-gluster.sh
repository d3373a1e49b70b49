# shellcheck shell=bash
# GlusterFS: one glusterd (no daemonizing, -N) and a one-brick volume that apps' code lives on.
#
# glusterd is a machine-wide singleton: it keeps its state in /var/lib/glusterd and listens on
# 24007, whichever clone of the repository started it. So the brick lives at a fixed place
# outside the repository ($GLUSTER_STATE/brick), and `up` checks that an existing volume named
# $GLUSTER_VOLUME really uses that brick; a volume left by an older layout (brick gone, other
# path) is deleted and created again. The volume holds test data only.
#
# 127.0.0.1 is refused as a brick host by glusterd; 127.0.0.2 (also loopback) is accepted.
tb_register gluster

GLUSTER_HOST=${TESTBED_GLUSTER_HOST:-127.0.0.2}
GLUSTER_VOLUME=${TESTBED_GLUSTER_VOLUME:-pysteps}
GLUSTER_STATE=${TESTBED_GLUSTER_STATE:-/var/lib/pysteps-testbed/gluster}
GLUSTER_BRICK="$GLUSTER_STATE/brick"
# glusterd's own pid file, at a fixed place: a glusterd started by another clone is still ours.
GLUSTER_PIDFILE=/run/pysteps-testbed-glusterd.pid
# Where glusterd keeps the pid files of the brick (glusterfsd) and helper (glusterfs) processes
# it spawns; they leave glusterd's process group, so `down` stops them by these pids.
GLUSTER_RUNDIR=/var/run/gluster

gluster_cli() { timeout 30 gluster --mode=script "$@"; }

gluster_install() { tb_apt glusterfs-server libgfapi0; }

gluster_glusterd_pid() {
  local pid
  pid=$(cat "$GLUSTER_PIDFILE" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

# The volume is started and its one brick is online.
gluster_check() {
  local xml
  xml=$(gluster_cli volume status "$GLUSTER_VOLUME" --xml 2>/dev/null) || return 1
  grep -q '<opRet>0</opRet>' <<<"$xml" || return 1
  grep -q "<path>$GLUSTER_BRICK</path>" <<<"$xml" || return 1
  grep -q '<status>1</status>' <<<"$xml"
}

gluster_endpoint() { echo "gluster://$GLUSTER_HOST/$GLUSTER_VOLUME (brick $GLUSTER_BRICK)"; }

# The brick recorded for the volume in glusterd's state, e.g. 127.0.0.2:/var/lib/.../brick.
gluster_recorded_brick() {
  gluster_cli volume info "$GLUSTER_VOLUME" --xml 2>/dev/null \
    | sed -n 's:.*<brick uuid="[^"]*">[^<]*<name>\([^<]*\)</name>.*:\1:p' | head -n 1
}

gluster_glusterd_up() { gluster_cli volume list >/dev/null 2>&1; }

gluster_start() {
  mkdir -p "$GLUSTER_STATE" "$GLUSTER_RUNDIR" /var/log/glusterfs
  if ! gluster_glusterd_pid >/dev/null; then
    tb_stop_pid gluster
    # -N: stay in the foreground, so tb_daemon owns the process and its log.
    tb_daemon gluster glusterd -N --log-level=WARNING --log-file=- --pid-file="$GLUSTER_PIDFILE"
  fi
  tb_wait gluster 60 gluster_glusterd_up || return 1

  local want="$GLUSTER_HOST:$GLUSTER_BRICK" have
  have=$(gluster_recorded_brick)
  if [ -n "$have" ] && { [ "$have" != "$want" ] || [ ! -d "$GLUSTER_BRICK" ]; }; then
    tb_log "gluster: volume $GLUSTER_VOLUME has brick '$have' (want '$want', or brick gone): recreating"
    gluster_cli volume stop "$GLUSTER_VOLUME" force >>"$(tb_logfile gluster)" 2>&1 || true
    gluster_cli volume delete "$GLUSTER_VOLUME" >>"$(tb_logfile gluster)" 2>&1 \
      || { tb_log "gluster: could not delete volume $GLUSTER_VOLUME"; return 1; }
    have=""
  fi
  if [ -z "$have" ]; then
    # A brick directory keeps the id of the volume it belonged to (extended attributes), and
    # glusterd refuses it for a new volume: start from an empty directory.
    rm -rf "$GLUSTER_BRICK"
    mkdir -p "$GLUSTER_BRICK"
    gluster_cli volume create "$GLUSTER_VOLUME" "$want" force >>"$(tb_logfile gluster)" 2>&1 \
      || { tb_log "gluster: volume create failed"; tail -n 20 "$(tb_logfile gluster)" >&2; return 1; }
  fi
  # `start force` also starts a brick process that died while the volume stayed "Started".
  gluster_cli volume start "$GLUSTER_VOLUME" force >>"$(tb_logfile gluster)" 2>&1 || true
  tb_wait gluster 60 gluster_check
}

gluster_stop() {
  local pid pf i mnt
  # FUSE mounts of our volume (tests mount it as the nodes would): their glusterfs client
  # processes end with the unmount.
  while IFS= read -r mnt; do
    umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true
  done < <(awk -v src="$GLUSTER_HOST:/$GLUSTER_VOLUME" '$1 == src && $3 == "fuse.glusterfs" {print $2}' /proc/mounts)
  pid=$(gluster_glusterd_pid) || pid=""
  tb_stop_pid gluster
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$GLUSTER_PIDFILE"
  # Brick and helper processes that glusterd spawned, found by the pid files it wrote for them.
  [ -d "$GLUSTER_RUNDIR" ] || return 0
  while IFS= read -r pf; do
    pid=$(cat "$pf" 2>/dev/null) || continue
    case "$pid" in '' | *[!0-9]*) continue ;; esac
    if kill -0 "$pid" 2>/dev/null && grep -qa gluster "/proc/$pid/cmdline" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$pf"
  done < <(find "$GLUSTER_RUNDIR" -name '*.pid' -type f 2>/dev/null)
}

gluster_env() {
  echo "export PYSTEPS_GLUSTER_HOST=$GLUSTER_HOST"
  echo "export PYSTEPS_GLUSTER_VOLUME=$GLUSTER_VOLUME"
  echo "export TESTBED_GLUSTER_BRICK=$GLUSTER_BRICK"
}
