# shellcheck shell=bash
# SMTP on loopback that keeps every message it receives as a file (testbed/smtp_store.py).
tb_register smtp

SMTP_PORT=${TESTBED_SMTP_PORT:-22525}
SMTP_STORE="$TESTBED_DIR/data/smtp/messages"

smtp_install() { [ -x "$TESTBED_ROOT/.venv/bin/python" ] || tb_die "smtp needs the virtualenv: run 'make venv'"; }

smtp_check() { tb_tcp_open 127.0.0.1 "$SMTP_PORT" && tb_running smtp; }

smtp_endpoint() { echo "smtp://127.0.0.1:$SMTP_PORT (store: $SMTP_STORE)"; }

smtp_start() {
  mkdir -p "$SMTP_STORE"
  tb_stop_pid smtp
  tb_daemon smtp "$TESTBED_ROOT/.venv/bin/python" "$TESTBED_ROOT/testbed/smtp_store.py" \
    --host 127.0.0.1 --port "$SMTP_PORT" --store "$SMTP_STORE"
  tb_wait smtp 30 tb_tcp_open 127.0.0.1 "$SMTP_PORT"
}

smtp_stop() { tb_stop_pid smtp; }

smtp_env() {
  echo "export PYSTEPS_SMTP_HOST=127.0.0.1"
  echo "export PYSTEPS_SMTP_PORT=$SMTP_PORT"
  echo "export TESTBED_SMTP_STORE=$SMTP_STORE"
}

# The same store behind STARTTLS and SMTPS, with a certificate the test bed makes (its own CA,
# server certificate for 127.0.0.1 and localhost) and one login (AUTH only after TLS; a client
# may also send without login). A second process, so the plain listener above never restarts.
tb_register smtp_tls

SMTP_STARTTLS_PORT=${TESTBED_SMTP_STARTTLS_PORT:-22587}
SMTP_SSL_PORT=${TESTBED_SMTP_SSL_PORT:-22465}
SMTP_TLS_DIR="$TESTBED_DIR/data/smtp/tls"
SMTP_CREDENTIALS="$TESTBED_DIR/data/smtp/credentials"

smtp_tls_certs() {
  local d=$SMTP_TLS_DIR
  [ -s "$d/server.crt" ] && [ -s "$d/ca.crt" ] && return 0
  mkdir -p "$d"
  chmod 700 "$d"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=pysteps testbed smtp CA" \
    -keyout "$d/ca.key" -out "$d/ca.crt" >/dev/null 2>&1 || tb_die "openssl: cannot make the smtp CA"
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
    -keyout "$d/server.key" -out "$d/server.csr" >/dev/null 2>&1 || tb_die "openssl: cannot make the smtp key"
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$d/server.ext"
  openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
    -days 3650 -extfile "$d/server.ext" -out "$d/server.crt" >/dev/null 2>&1 \
    || tb_die "openssl: cannot sign the smtp server certificate"
}

smtp_tls_install() {
  smtp_install
  command -v openssl >/dev/null || tb_apt openssl
  mkdir -p "$(dirname "$SMTP_CREDENTIALS")"
  smtp_tls_certs
  if [ ! -s "$SMTP_CREDENTIALS" ]; then
    (umask 077; printf 'pysteps-ci:%s\n' "$(openssl rand -hex 16)" >"$SMTP_CREDENTIALS")
  fi
}

smtp_tls_check() {
  tb_tcp_open 127.0.0.1 "$SMTP_STARTTLS_PORT" && tb_tcp_open 127.0.0.1 "$SMTP_SSL_PORT" && tb_running smtp_tls
}

smtp_tls_endpoint() { echo "smtp+starttls://127.0.0.1:$SMTP_STARTTLS_PORT smtps://127.0.0.1:$SMTP_SSL_PORT"; }

smtp_tls_start() {
  mkdir -p "$SMTP_STORE"
  tb_stop_pid smtp_tls
  tb_daemon smtp_tls "$TESTBED_ROOT/.venv/bin/python" "$TESTBED_ROOT/testbed/smtp_store.py" \
    --host 127.0.0.1 --starttls-port "$SMTP_STARTTLS_PORT" --ssl-port "$SMTP_SSL_PORT" \
    --cert "$SMTP_TLS_DIR/server.crt" --key "$SMTP_TLS_DIR/server.key" \
    --credentials "$SMTP_CREDENTIALS" --store "$SMTP_STORE"
  tb_wait smtp_tls 30 smtp_tls_check
}

smtp_tls_stop() { tb_stop_pid smtp_tls; }

smtp_tls_env() {
  echo "export TESTBED_SMTP_STARTTLS_PORT=$SMTP_STARTTLS_PORT"
  echo "export TESTBED_SMTP_SSL_PORT=$SMTP_SSL_PORT"
  echo "export TESTBED_SMTP_CA_FILE=$SMTP_TLS_DIR/ca.crt"
  if [ -s "$SMTP_CREDENTIALS" ]; then
    echo "export TESTBED_SMTP_USERNAME=$(cut -d: -f1 "$SMTP_CREDENTIALS")"
    echo "export TESTBED_SMTP_PASSWORD=$(cut -d: -f2- "$SMTP_CREDENTIALS")"
  fi
}
