# shellcheck shell=bash
# Docker registry (Debian docker-registry, distribution 2.8) on loopback with htpasswd auth, the
# way a Harbor-like registry asks for a login. Plain HTTP: engines trust 127.0.0.0/8 without TLS.
#
# User `pysteps` with a random password generated once per test bed (bcrypt in the htpasswd
# file, the clear text only in a 0600 file under $TESTBED_DIR and in its env). Never printed.
tb_register registry

REGISTRY_ADDR=${TESTBED_REGISTRY_ADDR:-127.0.0.1:25000}
REGISTRY_USER=pysteps
REGISTRY_DATA="$TESTBED_DIR/data/registry"
REGISTRY_AUTH_DIR="$TESTBED_DIR/data/registry-auth"

registry_install() { tb_apt docker-registry apache2-utils curl; }

_registry_code() { curl -s -o /dev/null -m 3 -w '%{http_code}' "http://$REGISTRY_ADDR/v2/"; }

# Answering, and answering like a registry that wants a login.
registry_check() { tb_running registry && [ "$(_registry_code 2>/dev/null)" = 401 ]; }

registry_endpoint() { echo "http://$REGISTRY_ADDR"; }

_registry_credentials() {
  local pw
  mkdir -p "$REGISTRY_AUTH_DIR"
  chmod 700 "$REGISTRY_AUTH_DIR"
  if [ ! -s "$REGISTRY_AUTH_DIR/password" ]; then
    (umask 077 && head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$REGISTRY_AUTH_DIR/password")
  fi
  if [ ! -s "$REGISTRY_AUTH_DIR/htpasswd" ] || [ "$REGISTRY_AUTH_DIR/password" -nt "$REGISTRY_AUTH_DIR/htpasswd" ]; then
    pw=$(cat "$REGISTRY_AUTH_DIR/password")
    # -i: the password comes on standard input, never on a command line; -B: bcrypt.
    printf '%s' "$pw" | (umask 077 && htpasswd -iBc "$REGISTRY_AUTH_DIR/htpasswd" "$REGISTRY_USER") \
      >/dev/null 2>&1 || { tb_log "registry: htpasswd failed"; return 1; }
  fi
}

_registry_config() {
  local secret
  secret=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
  (umask 077 && cat >"$REGISTRY_AUTH_DIR/config.yml" <<EOF
version: 0.1
log:
  level: info
  fields:
    service: registry
storage:
  filesystem:
    rootdirectory: $REGISTRY_DATA
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: $REGISTRY_ADDR
  secret: $secret
  headers:
    X-Content-Type-Options: [nosniff]
auth:
  htpasswd:
    realm: pysteps-testbed
    path: $REGISTRY_AUTH_DIR/htpasswd
EOF
  )
}

registry_start() {
  mkdir -p "$REGISTRY_DATA"
  _registry_credentials || return 1
  _registry_config
  tb_stop_pid registry
  tb_daemon registry docker-registry serve "$REGISTRY_AUTH_DIR/config.yml"
  tb_wait registry 30 registry_check
}

registry_stop() { tb_stop_pid registry; }

registry_env() {
  echo "export PYSTEPS_REGISTRY=$REGISTRY_ADDR"
  echo "export PYSTEPS_REGISTRY_USERNAME=$REGISTRY_USER"
  if [ -s "$REGISTRY_AUTH_DIR/password" ]; then
    echo "export PYSTEPS_REGISTRY_PASSWORD=$(cat "$REGISTRY_AUTH_DIR/password")"
  fi
}
