#!/usr/bin/env bash
# Builds CoreDNS VERSION from the Go module proxy into OUTDIR/coredns (the test bed passes
# $PYSTEPS_CACHE/coredns/<version>/bin). CoreDNS's own go.mod has no replace directives, so plain
# `go install module@version` works and builds exactly the dependency set CoreDNS pinned in its
# go.sum: no local main module is needed. Static binary; the version is CoreDNS's own constant.
set -euo pipefail
version=${1:?usage: build.sh VERSION OUTDIR}
out=${2:?usage: build.sh VERSION OUTDIR}
rm -rf "$out.tmp"
mkdir -p "$out.tmp"
CGO_ENABLED=0 GOBIN="$out.tmp" GOFLAGS="-buildvcs=false" \
  go install -trimpath -ldflags "-s -w" "github.com/coredns/coredns@$version"
"$out.tmp/coredns" -version >/dev/null
rm -rf "$out"
mv "$out.tmp" "$out"
