# shellcheck shell=bash
# A real Kubernetes control plane on loopback: its own etcd, kube-apiserver, kube-controller-manager
# and kube-scheduler of one release built from the Go module proxy, and kwok playing the kubelet of
# two nodes with loopback InternalIPs. Deployments really roll out: the controller manager makes the
# ReplicaSets, the scheduler binds the pods, kwok makes them Running/Ready (or fails them on purpose:
# image tags `never-ready` and `crash`, see testbed/kwok/README.md).
#
# TLS everywhere with a CA made by openssl at the first start ($TESTBED_DIR/data/kube/pki), RBAC on.
# Builds are cached in $PYSTEPS_CACHE/{kube,kube-etcd,kwok}/<version>/bin and skipped when present.
tb_register kube_etcd kube_apiserver kube_controller_manager kube_scheduler kwok

KUBE_BUILD_DIR="$TESTBED_ROOT/testbed/build/kube"
KUBE_ETCD_BUILD_DIR="$TESTBED_ROOT/testbed/build/kube-etcd"
# The versions are the ones the committed build modules pin; the caches are keyed by them.
KUBE_VERSION=$(sed -n 's#^require k8s\.io/kubernetes \(v[0-9.]*\)$#\1#p' "$KUBE_BUILD_DIR/go.mod")
KUBE_ETCD_VERSION=$(sed -n 's#^require go\.etcd\.io/etcd/server/v3 \(v[0-9.]*\)$#\1#p' "$KUBE_ETCD_BUILD_DIR/go.mod")
KWOK_VERSION=v0.7.0
KUBE_BIN="$PYSTEPS_CACHE/kube/$KUBE_VERSION/bin"
KUBE_ETCD_BIN="$PYSTEPS_CACHE/kube-etcd/$KUBE_ETCD_VERSION/bin"
KWOK_BIN="$PYSTEPS_CACHE/kwok/$KWOK_VERSION/bin"

KUBE_ETCD_PORT=22389
KUBE_ETCD_PEER_PORT=22390
KUBE_API_PORT=26443
KUBE_CM_PORT=20257
KUBE_SCHED_PORT=20259
KWOK_PORT=20247
KUBE_API_URL="https://127.0.0.1:$KUBE_API_PORT"
KUBE_NAMESPACE=team-a # the restricted user's only namespace
KUBE_RESTRICTED_USER=pysteps-ci
# Nodes kwok manages: name:InternalIP:podCIDR. Pod IPs are loopback too, so nothing that follows an
# address taken from the cluster can leave the machine. The price: the apiserver refuses loopback
# addresses in EndpointSlices/Endpoints, so a Service gets none (event FailedToUpdateEndpointSlices);
# reach an app through its nodes' InternalIPs and NodePort instead.
KUBE_NODES="kwok-node-1:127.0.0.11:127.0.101.0/24 kwok-node-2:127.0.0.12:127.0.102.0/24"
# Service ClusterIPs are only data here: no kube-proxy runs, nothing routes to this range.
KUBE_SERVICE_CIDR=10.96.0.0/16

KUBE_DIR="$TESTBED_DIR/data/kube"
KUBE_PKI="$KUBE_DIR/pki"
KUBE_ADMIN_KUBECONFIG="$KUBE_DIR/admin.kubeconfig"
KUBE_RESTRICTED_KUBECONFIG="$KUBE_DIR/restricted.kubeconfig"

# ---------------------------------------------------------------- builds (cached by version)

# _kube_build WHAT VERSION BINDIR EXPECTED_BINARIES BUILD_CMD...: run BUILD_CMD unless every expected
# binary is already in BINDIR; print and record how long the build took.
_kube_build() {
  local what=$1 version=$2 bindir=$3 expected=$4 b missing=0 t0 secs log
  shift 4
  for b in $expected; do [ -x "$bindir/$b" ] || missing=1; done
  if [ $missing -eq 0 ]; then
    [ -n "${_KUBE_SAID_CACHED[$what]:-}" ] && return 0
    _KUBE_SAID_CACHED[$what]=1
    tb_log "$what $version: cached in $bindir (its build took $(cat "$bindir/../build-seconds" 2>/dev/null || echo "?")s)"
    return 0
  fi
  command -v go >/dev/null || tb_die "$what needs Go to build (go is not on PATH)"
  mkdir -p "$(dirname "$bindir")"
  # One build at a time per version (two test beds on one machine share the cache): wait for a
  # build under way, then use what it made.
  local lock
  exec {lock}>"$(dirname "$bindir")/build.lock"
  flock "$lock"
  missing=0
  for b in $expected; do [ -x "$bindir/$b" ] || missing=1; done
  if [ $missing -eq 0 ]; then
    exec {lock}>&-
    return 0
  fi
  log="$(dirname "$bindir")/build.log"
  tb_log "building $what $version: no cached binaries (Kubernetes takes 10-30 min on 2 cores; log: $log)"
  t0=$SECONDS
  if ! "$@" >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    tb_die "building $what $version failed (log: $log)"
  fi
  secs=$((SECONDS - t0))
  _KUBE_BUILT=1
  echo "$secs" >"$(dirname "$bindir")/build-seconds"
  exec {lock}>&-
  tb_log "build of $what $version took ${secs}s (no cached binaries; now cached in $bindir)"
}
declare -A _KUBE_SAID_CACHED=()

_kube_install_tools() { tb_apt openssl curl ca-certificates; }

_kube_install_kube() {
  _kube_install_tools
  _kube_build Kubernetes "$KUBE_VERSION" "$KUBE_BIN" \
    "kube-apiserver kube-controller-manager kube-scheduler kubectl" \
    "$KUBE_BUILD_DIR/build.sh" "$KUBE_BIN"
}

_kwok_go_install() {
  mkdir -p "$KWOK_BIN.tmp"
  CGO_ENABLED=0 GOBIN="$KWOK_BIN.tmp" go install -trimpath -ldflags "-s -w" \
    "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  rm -rf "$KWOK_BIN"
  mv "$KWOK_BIN.tmp" "$KWOK_BIN"
}

# ---------------------------------------------------------------- certificates and kubeconfigs

# _kube_cert NAME SUBJECT EXTENSIONS: a key and a certificate signed by the test bed's CA.
_kube_cert() {
  local name=$1 subj=$2 ext=$3
  openssl genrsa -out "$KUBE_PKI/$name.key" 2048 2>/dev/null
  openssl req -new -key "$KUBE_PKI/$name.key" -subj "$subj" -out "$KUBE_PKI/$name.csr" 2>/dev/null
  printf '%s\n' "$ext" >"$KUBE_PKI/$name.ext"
  openssl x509 -req -in "$KUBE_PKI/$name.csr" -CA "$KUBE_PKI/ca.crt" -CAkey "$KUBE_PKI/ca.key" \
    -CAcreateserial -days 3650 -sha256 -extfile "$KUBE_PKI/$name.ext" -out "$KUBE_PKI/$name.crt" 2>/dev/null
  rm -f "$KUBE_PKI/$name.csr" "$KUBE_PKI/$name.ext"
}

# The CA and every certificate are made once per test bed (at the first start); a half-made set
# (no `complete` marker) is made anew.
_kube_pki() {
  if [ -f "$KUBE_PKI/complete" ]; then
    _kube_pki_front_proxy
    return 0
  fi
  rm -rf "$KUBE_PKI"
  mkdir -p "$KUBE_PKI"
  chmod 700 "$KUBE_PKI"
  tb_log "kube: making a CA and certificates in $KUBE_PKI"
  openssl genrsa -out "$KUBE_PKI/ca.key" 2048 2>/dev/null
  openssl req -x509 -new -key "$KUBE_PKI/ca.key" -subj "/CN=pysteps-testbed-ca" -days 3650 -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$KUBE_PKI/ca.crt" 2>/dev/null
  local client="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
  _kube_cert apiserver "/CN=kube-apiserver" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:${KUBE_SERVICE_CIDR%.0/*}.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  _kube_cert admin "/O=system:masters/CN=pysteps-testbed-admin" "$client"
  _kube_cert controller-manager "/CN=system:kube-controller-manager" "$client"
  _kube_cert scheduler "/CN=system:kube-scheduler" "$client"
  _kube_cert kwok "/O=system:masters/CN=kwok" "$client"
  _kube_cert restricted "/CN=$KUBE_RESTRICTED_USER" "$client"
  # The key pair that signs and checks service-account tokens.
  openssl genrsa -out "$KUBE_PKI/sa.key" 2048 2>/dev/null
  openssl rsa -in "$KUBE_PKI/sa.key" -pubout -out "$KUBE_PKI/sa.pub" 2>/dev/null
  _kube_pki_front_proxy
  chmod 600 "$KUBE_PKI"/*.key
  touch "$KUBE_PKI/complete"
}

# The client certificate the apiserver's aggregation layer presents to extension apiservers; with
# it the apiserver publishes the request-header CA that the controller manager and scheduler read.
_kube_pki_front_proxy() {
  [ -f "$KUBE_PKI/front-proxy-client.crt" ] && return 0
  _kube_cert front-proxy-client "/CN=front-proxy-client" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
  chmod 600 "$KUBE_PKI/front-proxy-client.key"
}

# _kube_kubeconfig FILE CERT_NAME [NAMESPACE]: a self-contained kubeconfig (certificates embedded).
_kube_kubeconfig() {
  local file=$1 cert=$2 ns=${3:-default}
  (
    umask 077
    cat >"$file.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: pysteps-testbed
  cluster:
    server: $KUBE_API_URL
    certificate-authority-data: $(base64 -w0 <"$KUBE_PKI/ca.crt")
users:
- name: $cert
  user:
    client-certificate-data: $(base64 -w0 <"$KUBE_PKI/$cert.crt")
    client-key-data: $(base64 -w0 <"$KUBE_PKI/$cert.key")
contexts:
- name: $cert@pysteps-testbed
  context:
    cluster: pysteps-testbed
    user: $cert
    namespace: $ns
current-context: $cert@pysteps-testbed
EOF
  )
  mv "$file.tmp" "$file"
}

_kube_kubeconfigs() {
  _kube_pki
  _kube_kubeconfig "$KUBE_ADMIN_KUBECONFIG" admin
  _kube_kubeconfig "$KUBE_DIR/controller-manager.kubeconfig" controller-manager
  _kube_kubeconfig "$KUBE_DIR/scheduler.kubeconfig" scheduler
  _kube_kubeconfig "$KUBE_DIR/kwok.kubeconfig" kwok
  _kube_kubeconfig "$KUBE_RESTRICTED_KUBECONFIG" restricted "$KUBE_NAMESPACE"
}

_kubectl() { "$KUBE_BIN/kubectl" --kubeconfig "$KUBE_ADMIN_KUBECONFIG" --request-timeout=10s "$@"; }

# _kube_https_ok URL: a component's HTTPS endpoint answers 200 (apiserver: checked against our CA).
_kube_https_ok() {
  curl -fsS -m 3 -o /dev/null --cacert "$KUBE_PKI/ca.crt" --cert "$KUBE_PKI/admin.crt" \
    --key "$KUBE_PKI/admin.key" "$1"
}
# Controller manager and scheduler serve with a self-signed certificate made in memory; only
# their health is asked, which they allow without credentials.
_kube_local_ok() { [ "$(curl -ksS -m 3 "$1" 2>/dev/null)" = ok ]; }

# The version a running controller manager or scheduler reports in its build-info metric (they
# serve no /version); reading metrics needs credentials, which they check with the apiserver.
_kube_component_version() {
  curl -ksS -m 3 --cert "$KUBE_PKI/admin.crt" --key "$KUBE_PKI/admin.key" "$1/metrics" 2>/dev/null |
    sed -n 's/^kubernetes_build_info{.*git_version="\([^"]*\)".*/\1/p'
}

# ---------------------------------------------------------------- kube_etcd

kube_etcd_install() {
  _KUBE_T0=${_KUBE_T0:-$SECONDS}
  _kube_install_tools
  _kube_build etcd "$KUBE_ETCD_VERSION" "$KUBE_ETCD_BIN" etcd "$KUBE_ETCD_BUILD_DIR/build.sh" "$KUBE_ETCD_BIN"
}

kube_etcd_check() {
  tb_running kube_etcd && curl -fsS -m 3 "http://127.0.0.1:$KUBE_ETCD_PORT/health" | grep -q '"health":"true"'
}

kube_etcd_endpoint() {
  local v
  v=$(curl -fsS -m 3 "http://127.0.0.1:$KUBE_ETCD_PORT/version" 2>/dev/null | sed -n 's/.*"etcdserver":"\([^"]*\)".*/\1/p')
  echo "http://127.0.0.1:$KUBE_ETCD_PORT (${v:+etcd v}${v:-version unknown: not answering})"
}

kube_etcd_start() {
  _KUBE_T0=${_KUBE_T0:-$SECONDS}
  mkdir -p "$TESTBED_DIR/data/kube-etcd"
  tb_stop_pid kube_etcd
  # fsync off: this etcd holds only a test cluster, and fsync dominates its latency on a busy disk.
  tb_daemon kube_etcd "$KUBE_ETCD_BIN/etcd" --name kube \
    --data-dir "$TESTBED_DIR/data/kube-etcd" \
    --listen-client-urls "http://127.0.0.1:$KUBE_ETCD_PORT" \
    --advertise-client-urls "http://127.0.0.1:$KUBE_ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$KUBE_ETCD_PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$KUBE_ETCD_PEER_PORT" \
    --initial-cluster "kube=http://127.0.0.1:$KUBE_ETCD_PEER_PORT" \
    --unsafe-no-fsync --quota-backend-bytes 2147483648 --log-level warn
  tb_wait kube_etcd 60 kube_etcd_check
}

kube_etcd_stop() { tb_stop_pid kube_etcd; }

kube_etcd_env() { :; }

# ---------------------------------------------------------------- kube_apiserver

kube_apiserver_install() { _kube_install_kube; }

kube_apiserver_check() {
  tb_running kube_apiserver && _kube_https_ok "$KUBE_API_URL/readyz"
}

# The version the running server reports (not the one we meant to build).
_kube_server_version() {
  curl -fsS -m 3 --cacert "$KUBE_PKI/ca.crt" "$KUBE_API_URL/version" 2>/dev/null |
    sed -n 's/^ *"gitVersion": "\(.*\)",$/\1/p'
}

kube_apiserver_endpoint() {
  local v
  v=$(_kube_server_version)
  echo "$KUBE_API_URL (${v:-version unknown: not answering})"
}

kube_apiserver_start() {
  _KUBE_T0=${_KUBE_T0:-$SECONDS}
  kube_etcd_check || tb_die "kube_apiserver needs kube_etcd: run 'testbed/testbed.sh up kube_etcd'"
  mkdir -p "$KUBE_DIR"
  _kube_kubeconfigs
  tb_stop_pid kube_apiserver
  # Logs and exec go to a node's InternalIP (loopback), never to its name: resolving a node
  # name would send a DNS query off the machine.
  tb_daemon kube_apiserver "$KUBE_BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$KUBE_ETCD_PORT" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$KUBE_API_PORT" \
    --tls-cert-file "$KUBE_PKI/apiserver.crt" --tls-private-key-file "$KUBE_PKI/apiserver.key" \
    --client-ca-file "$KUBE_PKI/ca.crt" \
    --requestheader-client-ca-file "$KUBE_PKI/ca.crt" --requestheader-allowed-names front-proxy-client \
    --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
    --requestheader-extra-headers-prefix X-Remote-Extra- \
    --proxy-client-cert-file "$KUBE_PKI/front-proxy-client.crt" \
    --proxy-client-key-file "$KUBE_PKI/front-proxy-client.key" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$KUBE_PKI/sa.pub" \
    --service-account-signing-key-file "$KUBE_PKI/sa.key" \
    --authorization-mode RBAC \
    --service-cluster-ip-range "$KUBE_SERVICE_CIDR" \
    --endpoint-reconciler-type none \
    --kubelet-preferred-address-types InternalIP \
    --allow-privileged=true --profiling=false \
    --cert-dir "$KUBE_DIR/apiserver-certs"
  tb_wait kube_apiserver 120 kube_apiserver_check || return 1
  _kube_bootstrap
}

# Objects every test relies on, made idempotently (server-side apply): the restricted user's
# namespace and rights, and the nodes kwok manages.
_kube_bootstrap() {
  local log
  log=$(tb_logfile kube_apiserver)
  # RBAC's bootstrap roles are written by the apiserver just after it turns ready; wait for them
  # so the controller manager and scheduler do not start unauthorized.
  tb_wait kube_apiserver 60 _kubectl get clusterrolebinding system:kube-controller-manager || return 1
  if ! _kube_bootstrap_objects >>"$log" 2>&1; then
    tail -n 20 "$log" >&2
    tb_log "kube: creating the namespace, RBAC and nodes failed"
    return 1
  fi
}

_kube_bootstrap_objects() {
  local n name ip cidr
  sed "s/@NAMESPACE@/$KUBE_NAMESPACE/g; s/@USER@/$KUBE_RESTRICTED_USER/g" \
    "$TESTBED_ROOT/testbed/kube/restricted-rbac.yaml" |
    _kubectl apply --server-side --force-conflicts --field-manager pysteps-testbed -f -
  for n in $KUBE_NODES; do
    IFS=: read -r name ip cidr <<<"$n"
    _kubectl apply --server-side --force-conflicts --field-manager pysteps-testbed -f - <<EOF
apiVersion: v1
kind: Node
metadata:
  name: $name
  annotations:
    kwok.x-k8s.io/node: fake
  labels:
    kubernetes.io/hostname: $name
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    type: kwok
spec:
  podCIDR: $cidr
  podCIDRs: [$cidr]
EOF
    # Status is a subresource: the addresses are set there, before or after kwok initializes it.
    _kubectl patch node "$name" --subresource status --type merge -p "{\"status\":{\"addresses\":[
      {\"type\":\"InternalIP\",\"address\":\"$ip\"},{\"type\":\"Hostname\",\"address\":\"$name\"}]}}"
  done
}

kube_apiserver_stop() { tb_stop_pid kube_apiserver; }

kube_apiserver_env() {
  echo "export KUBECONFIG=$KUBE_ADMIN_KUBECONFIG"
  echo "export PYSTEPS_KUBECONFIG_RESTRICTED=$KUBE_RESTRICTED_KUBECONFIG"
  echo "export TESTBED_KUBE_NAMESPACE=$KUBE_NAMESPACE"
  echo "export TESTBED_KUBE_VERSION=$KUBE_VERSION"
  echo "export TESTBED_KUBECTL=$KUBE_BIN/kubectl"
  echo "export TESTBED_KUBE_NODE_IPS=$(for n in $KUBE_NODES; do IFS=: read -r _ ip _ <<<"$n"; printf '%s,' "$ip"; done | sed 's/,$//')"
  # Image tags whose pods kwok fails on purpose (testbed/kwok/pod-stages.yaml).
  echo "export TESTBED_KUBE_TAG_NEVER_READY=never-ready"
  echo "export TESTBED_KUBE_TAG_CRASH=crash"
}

# ---------------------------------------------------------------- kube_controller_manager

kube_controller_manager_install() { _kube_install_kube; }

kube_controller_manager_check() {
  tb_running kube_controller_manager && _kube_local_ok "https://127.0.0.1:$KUBE_CM_PORT/healthz"
}

kube_controller_manager_endpoint() {
  local v
  v=$(_kube_component_version "https://127.0.0.1:$KUBE_CM_PORT")
  echo "https://127.0.0.1:$KUBE_CM_PORT (${v:-version unknown: not answering})"
}

kube_controller_manager_start() {
  kube_apiserver_check || tb_die "kube_controller_manager needs kube_apiserver: run 'testbed/testbed.sh up kube_apiserver'"
  local kc="$KUBE_DIR/controller-manager.kubeconfig"
  tb_stop_pid kube_controller_manager
  # Each controller acts with its own service account (as kubeadm sets it up), so RBAC applies.
  tb_daemon kube_controller_manager "$KUBE_BIN/kube-controller-manager" \
    --kubeconfig "$kc" --authentication-kubeconfig "$kc" --authorization-kubeconfig "$kc" \
    --bind-address 127.0.0.1 --secure-port "$KUBE_CM_PORT" \
    --leader-elect=false --controllers '*' --use-service-account-credentials \
    --service-account-private-key-file "$KUBE_PKI/sa.key" --root-ca-file "$KUBE_PKI/ca.crt" \
    --cluster-signing-cert-file "$KUBE_PKI/ca.crt" --cluster-signing-key-file "$KUBE_PKI/ca.key" \
    --service-cluster-ip-range "$KUBE_SERVICE_CIDR" --allocate-node-cidrs=false \
    --profiling=false
  tb_wait kube_controller_manager 90 kube_controller_manager_check
}

kube_controller_manager_stop() { tb_stop_pid kube_controller_manager; }

kube_controller_manager_env() { :; }

# ---------------------------------------------------------------- kube_scheduler

kube_scheduler_install() { _kube_install_kube; }

kube_scheduler_check() {
  tb_running kube_scheduler && _kube_local_ok "https://127.0.0.1:$KUBE_SCHED_PORT/healthz"
}

kube_scheduler_endpoint() {
  local v
  v=$(_kube_component_version "https://127.0.0.1:$KUBE_SCHED_PORT")
  echo "https://127.0.0.1:$KUBE_SCHED_PORT (${v:-version unknown: not answering})"
}

kube_scheduler_start() {
  kube_apiserver_check || tb_die "kube_scheduler needs kube_apiserver: run 'testbed/testbed.sh up kube_apiserver'"
  local kc="$KUBE_DIR/scheduler.kubeconfig"
  tb_stop_pid kube_scheduler
  tb_daemon kube_scheduler "$KUBE_BIN/kube-scheduler" \
    --kubeconfig "$kc" --authentication-kubeconfig "$kc" --authorization-kubeconfig "$kc" \
    --bind-address 127.0.0.1 --secure-port "$KUBE_SCHED_PORT" --leader-elect=false --profiling=false
  tb_wait kube_scheduler 90 kube_scheduler_check
}

kube_scheduler_stop() { tb_stop_pid kube_scheduler; }

kube_scheduler_env() { :; }

# ---------------------------------------------------------------- kwok

kwok_install() {
  _kube_install_kube # kubectl, to check the nodes
  _kube_build kwok "$KWOK_VERSION" "$KWOK_BIN" kwok _kwok_go_install
}

# Every node we made is Ready (kwok answers for it).
_kube_nodes_ready() {
  local want have
  want=$(echo "$KUBE_NODES" | wc -w)
  have=$(_kubectl get nodes -l type=kwok \
    -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c '^True$' || true)
  [ "$have" -ge "$want" ]
}

kwok_check() {
  tb_running kwok && [ "$(curl -fsS -m 3 "http://127.0.0.1:$KWOK_PORT/healthz" 2>/dev/null)" = ok ] &&
    _kube_nodes_ready
}

kwok_endpoint() {
  local nodes=""
  kube_apiserver_check 2>/dev/null && nodes=$(_kubectl get nodes -l type=kwok -o jsonpath='{range .items[*]}{.metadata.name}@{.status.addresses[?(@.type=="InternalIP")].address} Ready={.status.conditions[?(@.type=="Ready")].status}, {end}' 2>/dev/null)
  nodes=${nodes%, }
  echo "http://127.0.0.1:$KWOK_PORT (kwok $KWOK_VERSION; nodes: ${nodes:-unknown})"
}

kwok_start() {
  kube_apiserver_check || tb_die "kwok needs kube_apiserver: run 'testbed/testbed.sh up kube_apiserver'"
  _kube_bootstrap_objects >>"$(tb_logfile kube_apiserver)" 2>&1 || tb_die "kwok: creating the nodes failed"
  tb_stop_pid kwok
  # Only nodes annotated kwok.x-k8s.io/node=fake are kwok's; its own node stages make them Ready
  # and keep their leases; the pod stages are ours (testbed/kwok/pod-stages.yaml).
  tb_daemon kwok "$KWOK_BIN/kwok" \
    --kubeconfig "$KUBE_DIR/kwok.kubeconfig" \
    --config "$TESTBED_ROOT/testbed/kwok/pod-stages.yaml" \
    --manage-all-nodes=false --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
    --node-lease-duration-seconds 40 \
    --cidr 127.0.100.0/24 --node-ip 127.0.0.11 \
    --server-address "127.0.0.1:$KWOK_PORT"
  tb_wait kwok 90 kwok_check || return 1
  if [ -n "${_KUBE_T0:-}" ]; then
    if [ -n "${_KUBE_BUILT:-}" ]; then
      tb_log "kube: control plane ready, nodes Ready, $((SECONDS - _KUBE_T0))s after it began (cold: builds included)"
    else
      tb_log "kube: control plane ready, nodes Ready, $((SECONDS - _KUBE_T0))s after it began (warm start: cached binaries)"
    fi
  fi
}

kwok_stop() { tb_stop_pid kwok; }

kwok_env() { :; }
