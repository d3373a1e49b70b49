# shellcheck shell=bash
# A real Kubernetes node beside kwok's simulated ones: pods that really run.
#
#   kubelet + kube-proxy  built from the same k8s.io/kubernetes module as the control plane
#                         (testbed/build/kube), cached in $PYSTEPS_CACHE/kube-node/<version>/bin
#   containerd 1.6 (CRI)  Debian's, with its own config, root, state and socket: it never meets
#                         the test bed's Docker Engine (which runs a containerd of its own)
#   runc                  Debian's, cgroupfs driver (no systemd on these machines)
#   CNI bridge            Debian's containernetworking-plugins; bridge pysteps-cni0 on
#                         $NODE_POD_CIDR, made by the test bed; no masquerade, no forwarding
#   pause image           a tiny static Go program (testbed/build/pause) imported into
#                         containerd's k8s.io namespace: nothing can be pulled here
#   code volume           the GlusterFS volume FUSE-mounted at /mnt/<volume>, where code-mode
#                         pods find it (hostPath)
#
# Why Kubernetes 1.34: this machine kind has cgroup v1 (hybrid), which kubelets from 1.35 on
# refuse unless told `failCgroupV1: false`, and Debian 12's containerd is 1.6, which 1.34 still
# accepts fully; 1.34 is also the control plane's own version, so no version skew at all.
#
# The node's address: kubelet refuses a loopback node IP, and this kernel has no dummy links, so
# the node's InternalIP is the gateway address of the pods' bridge, which the test bed makes
# (before the CNI plugin would) and removes. Packets to it never leave the machine. kube-proxy
# (iptables mode) serves NodePorts on that address only (nodePortAddresses), so the kwok nodes'
# loopback addresses stay untouched.
#
# The node is registered TAINTED ($NODE_TAINT_KEY=true:NoSchedule) and labelled
# ($NODE_LABEL_KEY=true): everything else keeps landing on kwok's nodes; an app that wants the
# real node sets `node_selector` and `tolerations` in its spec. kwok manages only nodes annotated
# kwok.x-k8s.io/node=fake (and only their pods), so it never touches this node or its pods.
#
# `stop` (and `testbed.sh down`) leaves nothing behind: pods drained, the Node object deleted,
# processes ended, every mount under the node's directories and the volume unmounted, network
# namespaces, pysteps-cni0 and its veths, every KUBE-* / CNI-* iptables chain removed, the
# kubelet's cgroups removed and the kernel settings the kubelet changed put back.
tb_register node

NODE_NAME=real-node-1
NODE_POD_CIDR=10.244.13.0/24
NODE_IP=10.244.13.1 # the bridge's gateway address (host-local IPAM keeps .1 for it)
NODE_BRIDGE=pysteps-cni0
NODE_LABEL_KEY=pysteps.testbed/real-node
NODE_TAINT_KEY=pysteps.testbed/real-node
NODE_DRAIN_TAINT_KEY=pysteps.testbed/stopping
NODE_KUBELET_PORT=20250
NODE_KUBELET_HEALTHZ_PORT=20248
NODE_PROXY_HEALTHZ_PORT=20256
NODE_PROXY_METRICS_PORT=20249
NODE_CGROUP_ROOT=/pysteps-node
NODE_PAUSE_IMAGE=pysteps.local/pause:1
NODE_RUNTIME_IMAGE_PATH=runtime/busybox:1

NODE_BIN="$PYSTEPS_CACHE/kube-node/$KUBE_VERSION/bin"
NODE_DIR="$TESTBED_DIR/data/node"
# Unix socket paths are limited to 108 bytes: the state (sockets, netns mounts, runc state) goes
# under /run, one directory per test bed.
NODE_STATE="/run/pysteps-node-$(printf '%s' "$TESTBED_DIR" | sha256sum | cut -c1-10)"
NODE_SOCK="$NODE_STATE/containerd.sock"
NODE_KUBECONFIG="$NODE_DIR/kubelet.kubeconfig"
NODE_PROXY_KUBECONFIG="$NODE_DIR/kube-proxy.kubeconfig"
# The kernel settings the kubelet changes (it sets them when protectKernelDefaults is false).
NODE_SYSCTLS="vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys kernel.keys.root_maxbytes"

_node_code_mount() { echo "/mnt/${GLUSTER_VOLUME:?}"; }

# ---------------------------------------------------------------- install

_node_build_pause() {
  local out=$1 src="$TESTBED_ROOT/testbed/build/pause"
  mkdir -p "$out.tmp"
  (cd "$src" && CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -trimpath -ldflags "-s -w" -o "$out.tmp/pause" .)
  rm -rf "$out"
  mv "$out.tmp" "$out"
}

_node_pause_bin() {
  local key
  key=$(cat "$TESTBED_ROOT/testbed/build/pause/"* | sha256sum | cut -c1-12)
  echo "$PYSTEPS_CACHE/node-pause/$key/bin"
}

node_install() {
  tb_apt containerd runc containernetworking-plugins glusterfs-client iptables iproute2 curl
  _kube_install_kube
  _kube_build "Kubernetes node (kubelet, kube-proxy)" "$KUBE_VERSION" "$NODE_BIN" "kubelet kube-proxy" \
    "$KUBE_BUILD_DIR/build.sh" "$NODE_BIN" kubelet kube-proxy
  _kube_build "pause" "$(basename "$(dirname "$(_node_pause_bin)")")" "$(_node_pause_bin)" pause \
    _node_build_pause "$(_node_pause_bin)"
}

# ---------------------------------------------------------------- state

_nodectl() { _kubectl "$@"; }

_node_ready() {
  [ "$(_nodectl get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

_node_proxy_ok() { tb_http_ok "http://$NODE_IP:$NODE_PROXY_HEALTHZ_PORT/healthz"; }
_node_kubelet_ok() { [ "$(curl -fsS -m 3 "http://$NODE_IP:$NODE_KUBELET_HEALTHZ_PORT/healthz" 2>/dev/null)" = ok ]; }
_node_ctr() { ctr --address "$NODE_SOCK" --namespace k8s.io "$@"; }
_node_containerd_ok() { _node_ctr version >/dev/null 2>&1; }
_node_mounted() { awk -v m="$(_node_code_mount)" '$2 == m && $3 == "fuse.glusterfs" {f=1} END {exit !f}' /proc/mounts; }

node_check() {
  tb_running node_containerd && tb_running node_kubelet && tb_running node_proxy &&
    _node_containerd_ok && _node_kubelet_ok && _node_proxy_ok && _node_mounted && _node_ready
}

node_endpoint() {
  local info=""
  kube_apiserver_check 2>/dev/null &&
    info=$(_nodectl get node "$NODE_NAME" -o jsonpath='Ready={.status.conditions[?(@.type=="Ready")].status}, kubelet {.status.nodeInfo.kubeletVersion}, {.status.nodeInfo.containerRuntimeVersion}' 2>/dev/null)
  # Node objects no longer carry kube-proxy's version: ask the binary that runs.
  [ -n "$info" ] && info+=", kube-proxy $("$NODE_BIN/kube-proxy" --version 2>/dev/null | sed 's/^Kubernetes //') iptables, runc $(runc --version 2>/dev/null | sed -n 's/^runc version //p'), cgroup v1 cgroupfs"
  echo "$NODE_NAME@$NODE_IP (${info:-not registered}; pods $NODE_POD_CIDR on $NODE_BRIDGE; code volume at $(_node_code_mount))"
}

node_env() {
  echo "export TESTBED_NODE_NAME=$NODE_NAME"
  echo "export TESTBED_NODE_IP=$NODE_IP"
  # An app reaches the real node with node_selector {KEY: "true"} and a toleration of KEY.
  echo "export TESTBED_NODE_LABEL=$NODE_LABEL_KEY"
  echo "export TESTBED_NODE_TAINT=$NODE_TAINT_KEY"
  echo "export TESTBED_NODE_CODE_MOUNT=$(_node_code_mount)"
  echo "export TESTBED_NODE_STATE=$NODE_STATE"
  echo "export TESTBED_NODE_DIR=$NODE_DIR"
  echo "export TESTBED_RUNTIME_IMAGE=$REGISTRY_ADDR/$NODE_RUNTIME_IMAGE_PATH"
}

# ---------------------------------------------------------------- start

_node_certs() {
  [ -f "$KUBE_PKI/node-kubelet.crt" ] || _kube_cert node-kubelet "/O=system:nodes/CN=system:node:$NODE_NAME" \
    "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
  [ -f "$KUBE_PKI/node-proxy.crt" ] || _kube_cert node-proxy "/CN=system:kube-proxy" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
  chmod 600 "$KUBE_PKI"/node-*.key
  _kube_kubeconfig "$NODE_KUBECONFIG" node-kubelet
  _kube_kubeconfig "$NODE_PROXY_KUBECONFIG" node-proxy
}

# The apiserver authorizes with RBAC alone (no Node authorizer): the kubelet's user gets the
# system:node role, kube-proxy's the system:node-proxier role.
_node_rbac() {
  _nodectl apply --server-side --force-conflicts --field-manager pysteps-testbed -f - <<EOF
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: pysteps-testbed:node:$NODE_NAME
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:node}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: "system:node:$NODE_NAME"}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: pysteps-testbed:node-proxier
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:node-proxier}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: system:kube-proxy}
EOF
}

_node_network() {
  if ! ip link show "$NODE_BRIDGE" >/dev/null 2>&1; then
    ip link add "$NODE_BRIDGE" type bridge
  fi
  ip addr replace "$NODE_IP/${NODE_POD_CIDR#*/}" dev "$NODE_BRIDGE"
  ip link set "$NODE_BRIDGE" up
  mkdir -p "$NODE_DIR/cni/net.d" "$NODE_DIR/cni/ipam"
  # No ipMasq: pods talk to the host and to each other only; ip_forward stays as it is (off here),
  # so no pod packet can be routed off the machine.
  # Written beside and moved in: containerd watches the directory and reads half-written files.
  cat >"$NODE_DIR/cni/10-pysteps.conflist.tmp" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "pysteps-node",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$NODE_BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$NODE_POD_CIDR"}]],
        "dataDir": "$NODE_DIR/cni/ipam"
      }
    }
  ]
}
EOF
  cmp -s "$NODE_DIR/cni/10-pysteps.conflist.tmp" "$NODE_DIR/cni/net.d/10-pysteps.conflist" ||
    mv "$NODE_DIR/cni/10-pysteps.conflist.tmp" "$NODE_DIR/cni/net.d/10-pysteps.conflist"
  rm -f "$NODE_DIR/cni/10-pysteps.conflist.tmp"
}

_node_save_sysctls() {
  local f="$NODE_DIR/sysctl.saved" k
  [ -f "$f" ] && return 0
  for k in $NODE_SYSCTLS; do
    echo "$k=$(sysctl -n "$k")"
  done >"$f.tmp"
  mv "$f.tmp" "$f"
}

_node_containerd_config() {
  local password
  password=$(cat "$REGISTRY_AUTH_DIR/password")
  (
    umask 077 # it holds the registry login
    cat >"$NODE_DIR/containerd.toml" <<EOF
# Written by testbed/services/75-node.sh: the real node's containerd, apart from every other.
version = 2
root = "$NODE_DIR/containerd"
state = "$NODE_STATE/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "$NODE_SOCK"
[ttrpc]
  address = "$NODE_SOCK.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "$NODE_DIR/containerd-opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$NODE_PAUSE_IMAGE"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  netns_mounts_under_state_dir = true
  enable_selinux = false
  disable_apparmor = true
  # Lowering a process's oom_score_adj needs CAP_SYS_RESOURCE, which root lacks on these
  # machines (runc: "failed to update /proc/self/oom_score_adj: Permission denied"): keep every
  # container at or above containerd's own score.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        Root = "$NODE_STATE/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$NODE_DIR/cni/net.d"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".registry]
    [plugins."io.containerd.grpc.v1.cri".registry.mirrors."$REGISTRY_ADDR"]
      endpoint = ["http://$REGISTRY_ADDR"]
    [plugins."io.containerd.grpc.v1.cri".registry.configs."$REGISTRY_ADDR".auth]
      username = "$REGISTRY_USER"
      password = "$password"
EOF
  )
}

_node_start_containerd() {
  tb_running node_containerd && _node_containerd_ok && return 0
  tb_stop_pid node_containerd
  mkdir -p "$NODE_STATE" "$NODE_DIR/containerd" "$NODE_DIR/containerd-opt"
  _node_containerd_config
  tb_daemon node_containerd containerd --config "$NODE_DIR/containerd.toml" --log-level warn
  tb_wait node_containerd 60 _node_containerd_ok
}

# The sandbox image: an OCI archive made here (one layer holding /pause), imported into the CRI's
# namespace. Skipped when containerd has it.
_node_import_pause() {
  _node_ctr images ls -q 2>/dev/null | grep -qx "$NODE_PAUSE_IMAGE" && return 0
  local d layer cfg man idx lsha csha msha
  d=$(mktemp -d)
  mkdir -p "$d/root" "$d/oci/blobs/sha256"
  cp "$(_node_pause_bin)/pause" "$d/root/pause"
  tar -C "$d/root" --owner=0 --group=0 --numeric-owner --mtime=@0 -cf "$d/layer.tar" pause
  lsha=$(sha256sum "$d/layer.tar" | cut -d' ' -f1)
  mv "$d/layer.tar" "$d/oci/blobs/sha256/$lsha"
  cfg='{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/pause"]},"rootfs":{"type":"layers","diff_ids":["sha256:'$lsha'"]}}'
  printf '%s' "$cfg" >"$d/cfg"
  csha=$(sha256sum "$d/cfg" | cut -d' ' -f1)
  mv "$d/cfg" "$d/oci/blobs/sha256/$csha"
  man='{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:'$csha'","size":'${#cfg}'},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:'$lsha'","size":'$(stat -c %s "$d/oci/blobs/sha256/$lsha")'}]}'
  printf '%s' "$man" >"$d/man"
  msha=$(sha256sum "$d/man" | cut -d' ' -f1)
  mv "$d/man" "$d/oci/blobs/sha256/$msha"
  idx='{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:'$msha'","size":'${#man}',"annotations":{"io.containerd.image.name":"'$NODE_PAUSE_IMAGE'","org.opencontainers.image.ref.name":"1"}}]}'
  printf '%s' "$idx" >"$d/oci/index.json"
  printf '{"imageLayoutVersion":"1.0.0"}' >"$d/oci/oci-layout"
  tar -C "$d/oci" -cf "$d/pause.tar" .
  _node_ctr images import --snapshotter overlayfs "$d/pause.tar" >>"$(tb_logfile node_containerd)" 2>&1 ||
    { rm -rf "$d"; tb_log "node: importing the pause image failed"; return 1; }
  rm -rf "$d"
}

# The code-mode runtime image (examples/hello/deploy-code.yaml) in the test bed's registry: the
# test bed's busybox base image, pushed once through the Docker Engine's API with the login.
_node_push_runtime_image() {
  local base target tag password auth
  base=$(docker_base_image)
  target="$REGISTRY_ADDR/${NODE_RUNTIME_IMAGE_PATH%:*}"
  tag=${NODE_RUNTIME_IMAGE_PATH#*:}
  password=$(cat "$REGISTRY_AUTH_DIR/password")
  auth=$(printf '{"username":"%s","password":"%s","serveraddress":"%s"}' "$REGISTRY_USER" \
    "$password" "$REGISTRY_ADDR" | base64 -w0 | tr '+/' '-_')
  # Credentials go to curl on its standard input (-K -), never on a command line.
  printf 'user = "%s:%s"\n' "$REGISTRY_USER" "$password" |
    curl -fsS -m 5 -K - -o /dev/null -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
      "http://$REGISTRY_ADDR/v2/${NODE_RUNTIME_IMAGE_PATH%:*}/manifests/$tag" 2>/dev/null && return 0
  curl -sf -m 10 --unix-socket "$DOCKER_SOCK" -X POST \
    "http://docker/images/$base/tag?repo=$target&tag=$tag" >/dev/null ||
    { tb_log "node: tagging $base as $target failed"; return 1; }
  printf 'header = "X-Registry-Auth: %s"\n' "$auth" |
    curl -sf -m 120 -K - --unix-socket "$DOCKER_SOCK" -X POST \
      "http://docker/images/$target/push?tag=$tag" >>"$(tb_logfile node_containerd)" 2>&1 ||
    { tb_log "node: pushing $target failed"; return 1; }
}

_node_mount_code() {
  local m
  m=$(_node_code_mount)
  if _node_mounted; then
    stat "$m" >/dev/null 2>&1 && return 0
    # The FUSE process of an earlier run was killed: "Transport endpoint is not connected".
    umount "$m" 2>/dev/null || umount -l "$m"
  fi
  mkdir -p "$m"
  mount -t glusterfs -o "log-file=$(tb_logfile node_glusterfs)" "$GLUSTER_HOST:/$GLUSTER_VOLUME" "$m"
}

_node_kubelet_config() {
  mkdir -p "$NODE_DIR/kubelet" "$NODE_DIR/pod-logs"
  printf 'nameserver 127.0.0.1\noptions ndots:1\n' >"$NODE_DIR/resolv.conf"
  cat >"$NODE_DIR/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: $NODE_KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: $NODE_IP
healthzPort: $NODE_KUBELET_HEALTHZ_PORT
containerRuntimeEndpoint: unix://$NODE_SOCK
cgroupDriver: cgroupfs
cgroupRoot: $NODE_CGROUP_ROOT
failSwapOn: false
podLogsDir: $NODE_DIR/pod-logs
resolvConf: $NODE_DIR/resolv.conf
clusterDomain: cluster.local
# The apiserver fetches logs from here anonymously (it has no kubelet client certificate);
# the kubelet listens on the node's own bridge address only.
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
  x509: {clientCAFile: $KUBE_PKI/ca.crt}
authorization: {mode: AlwaysAllow}
registerWithTaints:
- {key: $NODE_TAINT_KEY, value: "true", effect: NoSchedule}
serializeImagePulls: false
maxPods: 40
nodeStatusUpdateFrequency: 5s
syncFrequency: 10s
imageGCHighThresholdPercent: 95
imageGCLowThresholdPercent: 90
evictionHard: {memory.available: 200Mi, nodefs.available: 3%, imagefs.available: 3%, nodefs.inodesFree: 3%}
EOF
}

# The kubelet's cgroupRoot must exist in every hierarchy (cgroup v1: one per controller).
_node_cgroups() {
  local h
  for h in /sys/fs/cgroup/*/; do
    [ -d "$h" ] || continue
    mkdir -p "$h${NODE_CGROUP_ROOT#/}"
  done
  h=/sys/fs/cgroup/cpuset
  if [ -d "$h$NODE_CGROUP_ROOT" ] && [ -z "$(cat "$h$NODE_CGROUP_ROOT/cpuset.cpus")" ]; then
    cat "$h/cpuset.cpus" >"$h$NODE_CGROUP_ROOT/cpuset.cpus"
    cat "$h/cpuset.mems" >"$h$NODE_CGROUP_ROOT/cpuset.mems"
  fi
}

_node_start_kubelet() {
  tb_running node_kubelet && _node_kubelet_ok && return 0
  tb_stop_pid node_kubelet
  _node_cgroups
  _node_kubelet_config
  _node_save_sysctls
  tb_daemon node_kubelet "$NODE_BIN/kubelet" \
    --config "$NODE_DIR/kubelet.yaml" --kubeconfig "$NODE_KUBECONFIG" \
    --root-dir "$NODE_DIR/kubelet" --cert-dir "$NODE_DIR/kubelet-pki" \
    --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" \
    --node-labels "$NODE_LABEL_KEY=true,type=real" --v 1
  tb_wait node_kubelet 90 _node_kubelet_ok
}

_node_start_proxy() {
  tb_running node_proxy && _node_proxy_ok && return 0
  tb_stop_pid node_proxy
  cat >"$NODE_DIR/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $NODE_PROXY_KUBECONFIG}
mode: iptables
hostnameOverride: $NODE_NAME
healthzBindAddress: $NODE_IP:$NODE_PROXY_HEALTHZ_PORT
metricsBindAddress: $NODE_IP:$NODE_PROXY_METRICS_PORT
# NodePorts on the real node's address only: never on the loopback addresses of kwok's nodes.
nodePortAddresses: ["$NODE_IP/32"]
clusterCIDR: $NODE_POD_CIDR
detectLocalMode: ClusterCIDR
# Leave the machine's conntrack settings alone.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
iptables: {syncPeriod: 10s, minSyncPeriod: 0s, localhostNodePorts: false}
EOF
  tb_daemon node_proxy "$NODE_BIN/kube-proxy" --config "$NODE_DIR/kube-proxy.yaml" --v 1
  tb_wait node_proxy 60 _node_proxy_ok
}

# A node killed without `stop` (a session or CI machine whose processes were all killed, this
# clone's or another's) leaves pod sandboxes, their network namespaces with veths on the bridge
# (whose addresses a new node would hand out again), mounts and iptables rules: clear them before
# a node starts from nothing, so the new node never shares the bridge with dead pods.
_node_clear_leftovers() {
  tb_running node_containerd || tb_running node_kubelet && return 0
  local state pids veth
  pids=$(_node_leftover_pids | sort -u)
  # shellcheck disable=SC2086
  [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
  for state in /run/pysteps-node-*; do
    [ -d "$state" ] || continue
    pids=$(_node_pids_matching "-address $state/containerd.sock " | sort -u)
    # shellcheck disable=SC2086
    [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
    _node_unmount_under "$state"
    rm -rf "$state"
  done
  if ip link show "$NODE_BRIDGE" >/dev/null 2>&1; then
    for veth in $(ip -o link show master "$NODE_BRIDGE" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
      ip link del "$veth" 2>/dev/null || true
    done
    ip link del "$NODE_BRIDGE" 2>/dev/null || true
    _node_iptables_clean
  fi
  rm -rf "$NODE_DIR/cni/ipam"
}

node_start() {
  kube_apiserver_check || tb_die "node needs kube_apiserver: run 'testbed/testbed.sh up kube_apiserver'"
  gluster_check || tb_die "node needs gluster (the code volume): run 'testbed/testbed.sh up gluster'"
  registry_check || tb_die "node needs the registry: run 'testbed/testbed.sh up registry'"
  mkdir -p "$NODE_DIR"
  local log
  log=$(tb_logfile node_kubelet)
  _node_clear_leftovers >>"$log" 2>&1
  _node_certs >>"$log" 2>&1 || { tb_log "node: certificates failed"; return 1; }
  _node_rbac >>"$log" 2>&1 || { tb_log "node: RBAC bindings failed (log: $log)"; return 1; }
  _node_network >>"$log" 2>&1 || { tb_log "node: network setup failed (log: $log)"; return 1; }
  _node_mount_code >>"$log" 2>&1 || { tb_log "node: mounting the code volume failed (log: $log)"; return 1; }
  _node_start_containerd || return 1
  _node_import_pause || return 1
  if docker_check >/dev/null 2>&1; then _node_push_runtime_image || return 1; fi
  _node_start_kubelet || return 1
  # A node left tainted by an interrupted stop takes pods again.
  _nodectl taint node "$NODE_NAME" "$NODE_DRAIN_TAINT_KEY-" >/dev/null 2>&1 || true
  tb_wait node_kubelet 120 _node_ready || return 1
  _node_start_proxy || return 1
  tb_wait node_proxy 60 node_check
}

# ---------------------------------------------------------------- stop

# Pods on the node leave through the kubelet (so the CNI plugin tears their network down): taint
# the node so no new pod lands on it, delete its pods with a 1 s grace period, and wait until the
# kubelet confirms. (A NoExecute taint would evict them with their full 30 s grace period.)
_node_drain() {
  kube_apiserver_check >/dev/null 2>&1 || return 0
  _nodectl get node "$NODE_NAME" >/dev/null 2>&1 || return 0
  _nodectl taint node "$NODE_NAME" "$NODE_DRAIN_TAINT_KEY=true:NoSchedule" --overwrite >/dev/null 2>&1 || true
  tb_running node_kubelet || return 0
  local i left
  for i in $(seq 1 60); do
    left=$(_nodectl get pods -A --field-selector "spec.nodeName=$NODE_NAME" -o name 2>/dev/null | wc -l)
    [ "$left" -eq 0 ] && return 0
    _nodectl delete pods -A --field-selector "spec.nodeName=$NODE_NAME" --grace-period=1 --wait=false >/dev/null 2>&1 || true
    sleep 1
  done
  tb_log "node: $left pods still on $NODE_NAME after 60 s; removing them by force"
}

# _node_pids_matching TEXT: pids whose command line contains TEXT (bash only: a grep would match itself).
_node_pids_matching() {
  local p cmd
  for p in /proc/[0-9]*; do
    cmd=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
    [[ $cmd == *"$1"* ]] && echo "${p#/proc/}"
  done
  return 0
}

# Processes in the kubelet's cgroups (containers) and containerd's shims for our socket.
_node_leftover_pids() {
  local cg
  for cg in /sys/fs/cgroup/*"$NODE_CGROUP_ROOT"; do
    [ -d "$cg" ] && find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null
  done
  _node_pids_matching "-address $NODE_SOCK "
  return 0
}

_node_unmount_under() {
  local root=$1 m
  # Deepest first; lazily when busy.
  while IFS= read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done < <(awk -v r="$root/" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r)
}

# Remove every iptables/ip6tables rule and chain of kube-proxy, the kubelet and CNI (KUBE-*, CNI-*).
_node_iptables_clean() {
  local cmd t chain rule
  for cmd in iptables ip6tables; do
    command -v "$cmd" >/dev/null || continue
    for t in filter nat mangle raw; do
      "$cmd" -t "$t" -S >/dev/null 2>&1 || continue
      while IFS= read -r rule; do
        # shellcheck disable=SC2086
        "$cmd" -w 5 -t "$t" ${rule/-A /-D } 2>/dev/null || true
      done < <("$cmd" -w 5 -t "$t" -S 2>/dev/null | grep -E '^-A (PREROUTING|INPUT|FORWARD|OUTPUT|POSTROUTING) .*-j (KUBE|CNI)-')
      for chain in $("$cmd" -w 5 -t "$t" -S 2>/dev/null | sed -n 's/^-N \(\(KUBE\|CNI\)-[^ ]*\)$/\1/p'); do
        "$cmd" -w 5 -t "$t" -F "$chain" 2>/dev/null || true
      done
      for chain in $("$cmd" -w 5 -t "$t" -S 2>/dev/null | sed -n 's/^-N \(\(KUBE\|CNI\)-[^ ]*\)$/\1/p'); do
        "$cmd" -w 5 -t "$t" -X "$chain" 2>/dev/null || true
      done
    done
  done
}

node_stop() {
  local i left cg k v
  _node_drain
  tb_stop_pid node_proxy
  tb_stop_pid node_kubelet
  if kube_apiserver_check >/dev/null 2>&1; then
    _nodectl delete node "$NODE_NAME" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  fi
  # Whatever the drain left: containers through containerd, then containerd itself.
  if tb_running node_containerd && _node_containerd_ok; then
    for i in $(_node_ctr tasks ls -q 2>/dev/null); do
      _node_ctr tasks kill -s SIGKILL "$i" >/dev/null 2>&1 || true
    done
    sleep 0.5
    for i in $(_node_ctr containers ls -q 2>/dev/null); do
      _node_ctr tasks delete -f "$i" >/dev/null 2>&1 || true
      _node_ctr containers delete "$i" >/dev/null 2>&1 || true
    done
  fi
  tb_stop_pid node_containerd
  for i in 1 2 3 4 5 6 7 8 9 10; do
    left=$(_node_leftover_pids | sort -u)
    [ -z "$left" ] && break
    # shellcheck disable=SC2086
    kill -KILL $left 2>/dev/null || true
    sleep 0.3
  done
  _node_unmount_under "$NODE_DIR"
  _node_unmount_under "$NODE_STATE"
  if _node_mounted; then
    umount "$(_node_code_mount)" 2>/dev/null || umount -l "$(_node_code_mount)" 2>/dev/null || true
  fi
  rm -rf "$NODE_STATE"
  ip link del "$NODE_BRIDGE" 2>/dev/null || true
  rm -rf "$NODE_DIR/cni/ipam"
  if [ -x "$NODE_BIN/kube-proxy" ]; then
    "$NODE_BIN/kube-proxy" --cleanup --v 0 >>"$(tb_logfile node_proxy)" 2>&1 || true
  fi
  _node_iptables_clean
  for cg in /sys/fs/cgroup/*"$NODE_CGROUP_ROOT"; do
    [ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null
  done
  if [ -f "$NODE_DIR/sysctl.saved" ]; then
    while IFS='=' read -r k v; do sysctl -qw "$k=$v" >/dev/null 2>&1 || true; done <"$NODE_DIR/sysctl.saved"
    rm -f "$NODE_DIR/sysctl.saved"
  fi
  left=$(_node_leftover_pids | sort -u)
  [ -z "$left" ] || { tb_log "node: processes left behind: $left"; return 1; }
  return 0
}
