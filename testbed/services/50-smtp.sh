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
