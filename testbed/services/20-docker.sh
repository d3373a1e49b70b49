# shellcheck shell=bash
# Docker Engine (Debian docker.io 20.10) of our own, next to any other dockerd on the machine.
#
# Nothing is shared with a system engine: own socket, pid file, data root (vfs: works on any
# file system), exec root (short, under /run: it holds unix sockets, whose paths are limited
# to 108 bytes), config file, cgroup parent, and its own containerd started and supervised by
# this dockerd. No bridge and no iptables rules: only one engine can own docker0 and the
# nat/filter chains, and without them no container can send a packet off the machine.
# Builds still run (their RUN steps get network "none"); `docker run` needs no network flag.
# Pulls from outside registries fail at once, and its DNS goes to loopback (see docker_start).
#
# At `up`, the local base image is built (FROM scratch + Debian's static busybox) when it is
# missing: nothing can be pulled here. TESTBED_BASE_IMAGE names it.
tb_register docker

DOCKER_SOCK="$TESTBED_DIR/run/docker.sock"
DOCKER_DATA="$TESTBED_DIR/data/docker"
# One exec root per test bed: a clone in another folder gets another one.
DOCKER_EXEC_ROOT="/run/pysteps-docker-$(printf '%s' "$TESTBED_DIR" | sha256sum | cut -c1-10)"
DOCKER_CGROUP_PARENT="pysteps-docker-$(printf '%s' "$TESTBED_DIR" | sha256sum | cut -c1-10)"

_docker_busybox_version() {
  local v
  v=$(dpkg-query -W -f='${Version}' busybox-static 2>/dev/null) || return 1
  v=${v#*:}                 # drop the epoch
  printf 'busybox-%s\n' "${v//[^A-Za-z0-9_.-]/-}"  # a valid tag: [A-Za-z0-9_.-]
}

docker_base_image() {
  local v
  v=$(_docker_busybox_version) || return 1
  echo "pysteps/base:$v"
}

docker_install() {
  tb_apt docker.io busybox-static curl
  # The engine may be up already (then `up` does not start it): the base image is still ensured.
  if docker_check >/dev/null 2>&1; then _docker_ensure_base_image; fi
}

_docker_curl() { curl -sf -m 5 --unix-socket "$DOCKER_SOCK" "http://docker$1"; }

docker_check() { tb_running docker && [ "$(_docker_curl /_ping 2>/dev/null)" = OK ]; }

docker_endpoint() { echo "unix://$DOCKER_SOCK"; }

# _docker_leftovers: pids of processes that belong to this engine and outlived dockerd: its
# containerd and shims (their command lines name our exec root) and the containers' processes
# (in our cgroup parent). Nothing else on the machine matches either.
_docker_leftovers() {
  local p cg cmd
  for p in /proc/[0-9]*; do
    # Bash builtins only: a grep started here would itself carry the pattern on its command line.
    cmd=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
    [[ $cmd == *"$DOCKER_EXEC_ROOT/"* ]] && echo "${p#/proc/}"
  done
  for cg in /sys/fs/cgroup/*/"$DOCKER_CGROUP_PARENT" /sys/fs/cgroup/"$DOCKER_CGROUP_PARENT"; do
    [ -d "$cg" ] && find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null
  done
  return 0
}

docker_stop() {
  local pf pid i left
  pf=$(tb_pidfile docker)
  pid=$(cat "$pf" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    # dockerd stops its containers (10 s grace each) and then its containerd.
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 300); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pf"
  # After a crash (or the KILL above) containerd, shims and containers may remain: end them.
  for i in 1 2 3 4 5 6 7 8 9 10; do
    left=$(_docker_leftovers | sort -u)
    [ -z "$left" ] && break
    # shellcheck disable=SC2086
    kill -KILL $left 2>/dev/null || true
    sleep 0.3
  done
  left=$(_docker_leftovers | sort -u)
  [ -z "$left" ] || { tb_log "docker: processes left behind: $left"; return 1; }
  return 0
}

_docker_ensure_base_image() {
  local image ctx p
  image=$(docker_base_image) || tb_die "busybox-static is not installed"
  if _docker_curl "/images/$image/json" >/dev/null 2>&1; then
    return 0
  fi
  tb_log "docker: building base image $image"
  ctx=$(mktemp -d)
  mkdir -p "$ctx/rootfs/bin" "$ctx/rootfs/etc" "$ctx/rootfs/tmp" "$ctx/rootfs/var/www" "$ctx/rootfs/root"
  cp /bin/busybox "$ctx/rootfs/bin/busybox"
  for p in $(/bin/busybox --list-full); do
    [ "$p" = bin/busybox ] && continue
    mkdir -p "$ctx/rootfs/$(dirname "$p")"
    ln -sf /bin/busybox "$ctx/rootfs/$p"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' \
    >"$ctx/rootfs/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$ctx/rootfs/etc/group"
  chmod 1777 "$ctx/rootfs/tmp"
  cat >"$ctx/Dockerfile" <<'EOF'
FROM scratch
COPY rootfs/ /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CMD ["/bin/sh"]
EOF
  # The engine's build API directly: no dependency on a docker CLI (or its version) being here.
  if ! tar -C "$ctx" -cf - . \
    | curl -sf -m 300 --unix-socket "$DOCKER_SOCK" -X POST -H 'Content-Type: application/x-tar' \
      --data-binary @- "http://docker/build?t=$image&rm=1&forcerm=1" \
      >>"$(tb_logfile docker)" 2>&1; then
    rm -rf "$ctx"
    tb_log "docker: building $image failed; see $(tb_logfile docker)"
    return 1
  fi
  rm -rf "$ctx"
  if ! _docker_curl "/images/$image/json" >/dev/null; then
    tb_log "docker: $image missing after its build; last lines of $(tb_logfile docker):"
    tail -n 20 "$(tb_logfile docker)" >&2
    return 1
  fi
}

docker_start() {
  mkdir -p "$DOCKER_DATA" "$DOCKER_EXEC_ROOT"
  # Our own (empty) config file, so /etc/docker/daemon.json of a system engine never applies.
  [ -f "$TESTBED_DIR/data/docker-daemon.json" ] || echo '{}' >"$TESTBED_DIR/data/docker-daemon.json"
  docker_stop >/dev/null 2>&1 || true
  # Pulls of a missing FROM image (or any image) would reach out to Docker Hub: every
  # non-loopback registry goes to a proxy on a closed loopback port instead, so the engine
  # fails fast (Go never proxies loopback hosts: our registry on 127.0.0.1 is reached
  # directly). The engine still resolves registry names (to match them against insecure
  # CIDRs), so it runs in a mount namespace of its own where /etc/resolv.conf names a resolver
  # on loopback: not even a DNS query leaves the machine. Its mounts stay in that namespace
  # and vanish with its last process.
  printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n' >"$TESTBED_DIR/data/docker-resolv.conf"
  tb_daemon docker unshare --mount --propagation private -- \
    sh -c 'mount --bind "$0" /etc/resolv.conf && exec "$@"' "$TESTBED_DIR/data/docker-resolv.conf" \
    env HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 \
    NO_PROXY=127.0.0.0/8,localhost dockerd \
    --config-file "$TESTBED_DIR/data/docker-daemon.json" \
    --storage-driver=vfs \
    --data-root "$DOCKER_DATA" \
    --exec-root "$DOCKER_EXEC_ROOT" \
    --pidfile "$TESTBED_DIR/run/dockerd.pid" \
    -H "unix://$DOCKER_SOCK" \
    --bridge=none --iptables=false --ip-forward=false --ip-masq=false \
    --cgroup-parent="$DOCKER_CGROUP_PARENT"
  tb_wait docker 120 docker_check || return 1
  _docker_ensure_base_image
}

docker_env() {
  local base
  echo "export DOCKER_HOST=unix://$DOCKER_SOCK"
  if base=$(docker_base_image 2>/dev/null); then
    echo "export TESTBED_BASE_IMAGE=$base"
  fi
}
