#!/usr/bin/env bash
# Builds the etcd server this module's go.mod requires into OUTDIR/etcd (the test bed passes
# $PYSTEPS_CACHE/kube-etcd/<version>/bin). Static binary; the version is etcd's own constant.
set -euo pipefail
out=${1:?usage: build.sh OUTDIR}
cd "$(dirname "$0")"
mkdir -p "$out.tmp"
CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" go build -trimpath -ldflags "-s -w" -o "$out.tmp/etcd" go.etcd.io/etcd/server/v3
rm -rf "$out"
mv "$out.tmp" "$out"
