# shellcheck shell=bash
# nginx (Debian) as the platform's router, and confd rendering its routes from the platform etcd.
#
#   etcd /devnginx/<ns>/<name>  --confd -watch-->  routes/pysteps-routes.conf  --reload-->  nginx
#
# confd's etcd watch can miss changes (after a failed render, under quick changes; see
# shared PLATFORM_NOTES), and v0.30.0 cannot combine -watch with -interval: testbed/confd-watch.sh
# restarts the watcher every $CONFD_RESYNC_SECONDS s, and a confd that starts renders
# everything (a full resync; an unchanged state costs a render and nothing else).
#
# The template and its documented key/value format: resources/confd/templates/nginx-routes.conf.tmpl
# (the same file production runs). confd is not packaged by Debian: it is built from the Go module
# proxy into $PYSTEPS_CACHE/confd/<version>/ once. To take an edited template: down confd, up confd.
tb_register nginx confd

NGINX_PORT=${TESTBED_NGINX_PORT:-28080}
NGINX_LISTEN="127.0.0.1:$NGINX_PORT"
NGINX_URL="http://$NGINX_LISTEN"
NGINX_TLS_PORT=${TESTBED_NGINX_TLS_PORT:-28443}
NGINX_TLS_LISTEN="127.0.0.1:$NGINX_TLS_PORT"
NGINX_PREFIX="$TESTBED_DIR/data/nginx"
NGINX_CONF="$NGINX_PREFIX/nginx.conf"
# check_cmd's config: nginx.conf with the routes include replaced by confd's staged file.
NGINX_CHECK_TEMPLATE="$NGINX_PREFIX/check.conf.in"
NGINX_ROUTES_DIR="$NGINX_PREFIX/routes"
NGINX_ROUTES_FILE="$NGINX_ROUTES_DIR/pysteps-routes.conf"
# A self-signed certificate for *.ctest.example.com, the HTTPS side of every route.
NGINX_TLS_DIR="$NGINX_PREFIX/tls"
NGINX_TLS_CERT="$NGINX_TLS_DIR/edge.crt"
NGINX_TLS_KEY="$NGINX_TLS_DIR/edge.key"
# One access log per app: <namespace>_<name>.access.log.
NGINX_APP_LOG_DIR="$TESTBED_DIR/log/nginx-apps"
# nginx's own pid file; run/nginx.pid is the test bed's (same process, kept apart so that
# nginx removing its file on exit never confuses tb_running).
NGINX_MASTER_PID="$TESTBED_DIR/run/nginx.master.pid"
# A server of the test bed's own, so that nginx_check works before confd rendered anything.
NGINX_HEALTH_HOST=nginx-health.testbed.invalid

CONFD_MODULE=github.com/abtreece/confd
CONFD_VERSION=v0.30.0
CONFD_BIN="$PYSTEPS_CACHE/confd/$CONFD_VERSION/confd"
CONFD_DIR="$TESTBED_DIR/data/confd"
CONFD_TEMPLATE="$TESTBED_ROOT/resources/confd/templates/nginx-routes.conf.tmpl"
ETCD_URL_FOR_CONFD="http://127.0.0.1:${TESTBED_ETCD_PORT:-22379}"
CONFD_RESYNC_SECONDS=${TESTBED_CONFD_RESYNC_SECONDS:-30}

# ---------------------------------------------------------------- nginx

# nginx_apt PKG...: tb_apt with service starts forbidden, as etcd_apt in 10-etcd.sh explains
# (Debian's nginx would otherwise start a system nginx on port 80 where no policy-rc.d exists).
nginx_apt() {
  local policy=/usr/sbin/policy-rc.d added="" rc=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# temporary, from pysteps testbed: no service starts during apt-get install\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    added=1
  fi
  (tb_apt "$@") || rc=$?
  [ -n "$added" ] && rm -f "$policy"
  [ $rc -eq 0 ] || tb_die "installing $* failed"
}

nginx_install() { nginx_apt nginx openssl; }  # openssl: the edge's test certificate

# nginx_cmd ARG...: our nginx binary with our prefix; -e keeps start-up errors off /var/log/nginx.
nginx_cmd() { nginx -e stderr -p "$NGINX_PREFIX/" "$@"; }

# nginx_main_conf ROUTES_INCLUDE: the whole config, including ROUTES_INCLUDE in http {}.
nginx_main_conf() {
  cat <<EOF
# Written by testbed/services/60-nginx.sh on every start of nginx: edits are lost.
daemon off;
# Root workers: the temp dirs below live in the repository, whose parents may be closed to nobody.
user root root;
worker_processes 1;
# An access log per app: a thousand routes hold a thousand log files open.
worker_rlimit_nofile 16384;
pid $NGINX_MASTER_PID;
error_log stderr notice;

events {
    worker_connections 512;
}

http {
    access_log $TESTBED_DIR/log/nginx-access.log;
    client_body_temp_path $NGINX_PREFIX/tmp/body;
    proxy_temp_path $NGINX_PREFIX/tmp/proxy;
    fastcgi_temp_path $NGINX_PREFIX/tmp/fastcgi;
    uwsgi_temp_path $NGINX_PREFIX/tmp/uwsgi;
    scgi_temp_path $NGINX_PREFIX/tmp/scgi;
    default_type application/octet-stream;
    # Host names up to 253 characters, and many of them (see the routes template's header).
    server_names_hash_bucket_size 512;
    server_names_hash_max_size 65536;
    map_hash_bucket_size 512;
    map_hash_max_size 65536;
    # Fail fast towards a dead upstream: tests poll, and a route to a stopped server is normal.
    proxy_connect_timeout 2s;

    server {
        listen $NGINX_LISTEN;
        server_name $NGINX_HEALTH_HOST;
        location = /health {
            return 200 "ok\n";
        }
        location / {
            return 404;
        }
    }

    include $1;
}
EOF
}

nginx_tls_cert() {
  [ -s "$NGINX_TLS_CERT" ] && [ -s "$NGINX_TLS_KEY" ] && return 0
  mkdir -p "$NGINX_TLS_DIR"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=*.ctest.example.com" \
    -addext "subjectAltName=DNS:*.ctest.example.com,DNS:*.example.com" \
    -keyout "$NGINX_TLS_KEY.tmp" -out "$NGINX_TLS_CERT.tmp" >/dev/null 2>&1 \
    || tb_die "openssl could not make the edge's test certificate"
  chmod 600 "$NGINX_TLS_KEY.tmp"
  mv "$NGINX_TLS_KEY.tmp" "$NGINX_TLS_KEY"
  mv "$NGINX_TLS_CERT.tmp" "$NGINX_TLS_CERT"
}

nginx_write_config() {
  mkdir -p "$NGINX_PREFIX"/tmp "$NGINX_ROUTES_DIR" "$NGINX_APP_LOG_DIR"
  nginx_tls_cert
  nginx_main_conf "$NGINX_ROUTES_DIR/*.conf" >"$NGINX_CONF"
  # @STAGED@ is replaced by the staged file's path in confd's check_cmd.
  nginx_main_conf "@STAGED@" >"$NGINX_CHECK_TEMPLATE"
}

# nginx_alive NAME: tb_running, and not a zombie. A daemon killed with SIGKILL stays a zombie
# until pid 1 reaps it (here up to ~1.5 s), and kill -0 succeeds on a zombie.
nginx_alive() {
  tb_running "$1" || return 1
  case "$(ps -o stat= -p "$(cat "$(tb_pidfile "$1")")" 2>/dev/null)" in Z* | "") return 1 ;; esac
}

# Our master alive and our server answering: the workers of a master killed with SIGKILL
# keep answering on the port, so the answer alone says nothing.
nginx_check() {
  nginx_alive nginx || return 1
  [ "$(curl -s -m 3 -H "Host: $NGINX_HEALTH_HOST" "$NGINX_URL/health")" = ok ]
}

nginx_endpoint() { echo "$NGINX_URL"; }

# nginx_kill_group: stop every nginx process of our process group, the master's pid. A master
# killed with SIGKILL leaves its workers running and holding the port, and tb_stop_pid only
# signals a group whose leader is alive; so look the group up by id, nginx processes only.
nginx_kill_group() {
  local pf pgid pids i
  pf=$(tb_pidfile nginx)
  [ -f "$pf" ] || return 0
  pgid=$(cat "$pf")
  [ -n "$pgid" ] || return 0
  pids=$(pgrep -g "$pgid" -x nginx || true)
  [ -n "$pids" ] || return 0
  # shellcheck disable=SC2086
  kill -TERM $pids 2>/dev/null || true
  for i in $(seq 1 100); do
    pids=$(pgrep -g "$pgid" -x nginx || true)
    [ -n "$pids" ] || return 0
    sleep 0.1
  done
  # shellcheck disable=SC2086
  kill -KILL $pids 2>/dev/null || true
}

nginx_start() {
  nginx_kill_group
  tb_stop_pid nginx
  nginx_write_config
  nginx_cmd -t -q -c "$NGINX_CONF" >>"$(tb_logfile nginx)" 2>&1 \
    || { tb_log "nginx refuses $NGINX_CONF:"; tail -n 20 "$(tb_logfile nginx)" >&2; return 1; }
  tb_daemon nginx nginx -e stderr -p "$NGINX_PREFIX/" -c "$NGINX_CONF"
  tb_wait nginx 20 nginx_check
}

nginx_stop() {
  nginx_kill_group
  tb_stop_pid nginx
  rm -f "$NGINX_MASTER_PID"
}

nginx_env() {
  echo "export PYSTEPS_NGINX_URL=$NGINX_URL"
  echo "export TESTBED_NGINX_ROUTES_FILE=$NGINX_ROUTES_FILE"
  echo "export TESTBED_NGINX_TLS_URL=https://$NGINX_TLS_LISTEN"
  echo "export TESTBED_NGINX_TLS_CERT=$NGINX_TLS_CERT"
  echo "export TESTBED_NGINX_APP_LOG_DIR=$NGINX_APP_LOG_DIR"
}

# ---------------------------------------------------------------- confd

# confd_install: build confd once per version into the cache. Not `go install module@version`:
# that also asks the proxy for the module's version list (to look for a deprecation notice),
# which the proxy here refuses with 403; downloading the exact version and building it from
# its own go.mod/go.sum works.
confd_install() {
  [ -x "$CONFD_BIN" ] && return 0
  command -v go >/dev/null || tb_die "confd needs Go to build $CONFD_MODULE@$CONFD_VERSION: install Go 1.22 or newer"
  local work src t0=$SECONDS
  tb_log "building confd $CONFD_VERSION ($CONFD_MODULE) into $(dirname "$CONFD_BIN"); a few minutes the first time"
  work=$(mktemp -d)
  src=$(cd "$work" && go mod download -json "$CONFD_MODULE@$CONFD_VERSION" \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -n "$src" ] && [ -d "$src" ] || { rm -rf "$work"; tb_die "go mod download $CONFD_MODULE@$CONFD_VERSION failed"; }
  # The module cache is read-only; build from a writable copy.
  cp -r "$src" "$work/src"
  chmod -R u+w "$work/src"
  mkdir -p "$(dirname "$CONFD_BIN")"
  if ! (cd "$work/src" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -buildvcs=false \
    -o "$CONFD_BIN.tmp" ./cmd/confd) >"$work/build.log" 2>&1; then
    tail -n 30 "$work/build.log" >&2
    rm -rf "$work" "$CONFD_BIN.tmp"
    tb_die "building confd $CONFD_VERSION failed"
  fi
  mv "$CONFD_BIN.tmp" "$CONFD_BIN"
  rm -rf "$work"
  tb_log "confd $CONFD_VERSION built in $((SECONDS - t0))s"
}

confd_write_config() {
  mkdir -p "$CONFD_DIR/conf.d" "$CONFD_DIR/templates"
  cp "$CONFD_TEMPLATE" "$CONFD_DIR/templates/"
  # confd reads /etc/confd/confd.toml unless told otherwise; ours keeps a host's file out.
  printf '# Written by testbed/services/60-nginx.sh; the flags in confd_start say it all.\n' \
    >"$CONFD_DIR/confd.toml"
  # check_cmd tests the staged file ({{.src}}) inside a whole nginx config before confd moves
  # it into place; the check config is named after the staged file, so no two checks share
  # one. reload_cmd only signals, the tests poll nginx for the result.
  cat >"$CONFD_DIR/conf.d/nginx-routes.toml" <<EOF
# Written by testbed/services/60-nginx.sh; see resources/confd/conf.d/nginx-routes.toml.example.
[template]
src = "$(basename "$CONFD_TEMPLATE")"
dest = "$NGINX_ROUTES_FILE"
keys = ["/devnginx"]
mode = "0644"
check_cmd = "sed 's|@STAGED@|{{.src}}|' '$NGINX_CHECK_TEMPLATE' > '{{.src}}.check' && nginx -e stderr -q -t -p '$NGINX_PREFIX/' -c '{{.src}}.check'; rc=\$?; rm -f '{{.src}}.check'; exit \$rc"
reload_cmd = "nginx -e stderr -p '$NGINX_PREFIX/' -c '$NGINX_CONF' -s reload"
EOF
}

confd_args() {
  printf '%s\n' -backend etcd -node "$ETCD_URL_FOR_CONFD" -confdir "$CONFD_DIR" \
    -config-file "$CONFD_DIR/confd.toml" -log-level info
}

confd_check() { nginx_alive confd && [ -f "$NGINX_ROUTES_FILE" ]; }

# confd_env_vars: the template's settings (see its header), as env(1) arguments.
confd_env_vars() {
  printf '%s\n' "NGINX_ROUTES_LISTEN=$NGINX_LISTEN" "NGINX_ROUTES_TLS_LISTEN=$NGINX_TLS_LISTEN" \
    "NGINX_ROUTES_TLS_CERT=$NGINX_TLS_CERT" "NGINX_ROUTES_TLS_KEY=$NGINX_TLS_KEY" \
    "NGINX_ROUTES_LOG_DIR=$NGINX_APP_LOG_DIR"
}

confd_endpoint() { echo "$CONFD_DIR (watching $ETCD_URL_FOR_CONFD/devnginx)"; }

confd_start() {
  nginx_alive nginx || { tb_log "confd reloads nginx: start it too (testbed/testbed.sh up nginx confd)"; return 1; }
  tb_stop_pid confd
  confd_write_config
  local args=() vars=() log
  mapfile -t args < <(confd_args)
  mapfile -t vars < <(confd_env_vars)
  log=$(tb_logfile confd)
  # One pass in the foreground first: a broken template, check or reload (or no etcd) fails
  # `up` here, with confd's own words, instead of in a watcher that keeps retrying.
  printf '\n=== %s onetime\n' "$(date -u +%FT%TZ)" >>"$log"
  if ! env "${vars[@]}" "$CONFD_BIN" -onetime "${args[@]}" >>"$log" 2>&1; then
    tb_log "confd -onetime failed; last lines of $log:"
    tail -n 20 "$log" >&2
    return 1
  fi
  tb_daemon confd env "${vars[@]}" "$TESTBED_ROOT/testbed/confd-watch.sh" "$CONFD_RESYNC_SECONDS" \
    "$CONFD_BIN" "${args[@]}"
  tb_wait confd 10 confd_check
}

confd_stop() { tb_stop_pid confd; }

confd_env() {
  echo "export TESTBED_CONFD_LOG=$(tb_logfile confd)"
  echo "export TESTBED_CONFD_RESYNC_SECONDS=$CONFD_RESYNC_SECONDS"
}
