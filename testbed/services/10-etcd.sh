# shellcheck shell=bash
# The platform etcd (Debian etcd-server 3.4): the route registry confd watches. Serves the v3 API
# (gRPC and its JSON gateway under /v3/) and, with --enable-v2, the v2 keys API under /v2/keys.
# The two APIs are separate key spaces: confd (etcd backend = v3) only sees keys written through v3.
tb_register etcd

ETCD_CLIENT_PORT=${TESTBED_ETCD_PORT:-22379}
ETCD_PEER_PORT=${TESTBED_ETCD_PEER_PORT:-22380}
ETCD_URL="http://127.0.0.1:$ETCD_CLIENT_PORT"
ETCD_PEER_URL="http://127.0.0.1:$ETCD_PEER_PORT"
ETCD_DATA="$TESTBED_DIR/data/etcd"

# etcd_apt PKG...: tb_apt without letting a package's maintainer scripts start a system daemon.
# Debian's etcd-server (and nginx) would start one on 2379 (or 80) through invoke-rc.d unless
# policy-rc.d forbids it; the test bed runs its own instances on its own ports and data dirs,
# so a system daemon would only be a stray process. Docker-built Debian images ship a
# policy-rc.d that says 101 (forbidden); when it is absent we put one in place for the install.
etcd_apt() {
  local policy=/usr/sbin/policy-rc.d added=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# temporary, from pysteps testbed: no service starts during apt-get install\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    added=1
  fi
  # A subshell, so that tb_die inside tb_apt cannot skip the clean-up.
  local rc=0
  (tb_apt "$@") || rc=$?
  [ -n "$added" ] && rm -f "$policy"
  [ $rc -eq 0 ] || tb_die "installing $* failed"
}

etcd_install() { etcd_apt etcd-server etcd-client; }

# Our pid alive and our port healthy: a system etcd on 2379, if any, never counts.
etcd_check() {
  tb_running etcd || return 1
  curl -s -m 3 "$ETCD_URL/health" | grep -q '"health":"true"'
}

etcd_endpoint() { echo "$ETCD_URL"; }

etcd_start() {
  mkdir -p "$ETCD_DATA"
  chmod 700 "$ETCD_DATA"
  tb_stop_pid etcd
  # ETCD_* variables in the caller's environment would be read as flags by etcd; keep them out.
  local unset_etcd_vars=() v
  for v in $(compgen -e | grep '^ETCD_' || true); do unset_etcd_vars+=(-u "$v"); done
  tb_daemon etcd env "${unset_etcd_vars[@]}" etcd \
    --name pysteps-testbed \
    --data-dir "$ETCD_DATA" \
    --listen-client-urls "$ETCD_URL" \
    --advertise-client-urls "$ETCD_URL" \
    --listen-peer-urls "$ETCD_PEER_URL" \
    --initial-advertise-peer-urls "$ETCD_PEER_URL" \
    --initial-cluster "pysteps-testbed=$ETCD_PEER_URL" \
    --initial-cluster-state new \
    --enable-v2=true \
    --logger zap \
    --log-outputs stderr
  tb_wait etcd 30 etcd_check
}

etcd_stop() { tb_stop_pid etcd; }

etcd_env() {
  echo "export PYSTEPS_ETCD_URL=$ETCD_URL"
}
