#!/usr/bin/env bash
# Builds commands of the Kubernetes release this module's go.mod requires into OUTDIR:
#   testbed/build/kube/build.sh OUTDIR [COMMAND...]
# Without COMMANDs: the control plane (kube-apiserver, kube-controller-manager, kube-scheduler,
# kubectl), which the test bed caches in $PYSTEPS_CACHE/kube/<version>/bin. The real node's
# kubelet and kube-proxy are built by the same module (`build.sh OUTDIR kubelet kube-proxy`, cached
# in $PYSTEPS_CACHE/kube-node/<version>/bin), so they share the Go build cache and the versions.
# Static binaries (CGO_ENABLED=0) with the tags Kubernetes' own release build uses, and the
# version stamped in with -ldflags: without it the server reports v0.0.0 and clients misjudge it.
set -euo pipefail
out=${1:?usage: build.sh OUTDIR [COMMAND...]}
shift
commands=("$@")
[ ${#commands[@]} -gt 0 ] || commands=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
pkgs=()
for c in "${commands[@]}"; do
  [[ $c =~ ^[a-z-]+$ ]] || { echo "not a Kubernetes command: '$c'" >&2; exit 2; }
  pkgs+=("k8s.io/kubernetes/cmd/$c")
done
cd "$(dirname "$0")"
version=$(sed -n 's/^require k8s\.io\/kubernetes \(v[0-9.]*\)$/\1/p' go.mod)
[[ $version =~ ^v([0-9]+)\.([0-9]+)\.[0-9]+$ ]] || { echo "go.mod names no k8s.io/kubernetes version" >&2; exit 1; }
major=${BASH_REMATCH[1]} minor=${BASH_REMATCH[2]}
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
done
mkdir -p "$out.tmp"
CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" go build -trimpath -tags selinux,notest -ldflags "$ldflags" \
  -o "$out.tmp/" "${pkgs[@]}"
# Move into place only when all built, so a half-finished build is never taken for a cache hit.
rm -rf "$out"
mv "$out.tmp" "$out"
