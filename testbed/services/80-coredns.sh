# shellcheck shell=bash
# CoreDNS, built from the Go module proxy, for the tests that run a rendered Corefile
# (`pysteps dns render`). Nothing runs here: each test starts its own CoreDNS on a loopback port
# with the Corefile it rendered, so this "service" is the cached binary, and it is "up" when that
# binary runs. The build is cached in $PYSTEPS_CACHE/coredns/<version>/bin and skipped when present.
# Cold (empty Go caches): 8 min of CPU and ~1.6 GB of modules (CoreDNS links every plugin, cloud
# SDKs included); measured 19-22 min wall on 2 busy cores, a few minutes on idle ones. Warm: <1 s.
tb_register coredns

COREDNS_VERSION=v1.14.7
COREDNS_BIN="$PYSTEPS_CACHE/coredns/$COREDNS_VERSION/bin"

coredns_install() {
  # _kube_build (70-kube.sh) is the test bed's cached, locked, timed Go build.
  _kube_build CoreDNS "$COREDNS_VERSION" "$COREDNS_BIN" coredns \
    "$TESTBED_ROOT/testbed/build/coredns/build.sh" "$COREDNS_VERSION" "$COREDNS_BIN"
}

coredns_check() { "$COREDNS_BIN/coredns" -version 2>/dev/null | grep -q "CoreDNS-${COREDNS_VERSION#v}"; }

coredns_endpoint() { echo "$COREDNS_BIN/coredns (started by each test on its own loopback port)"; }

coredns_start() { coredns_check; }

coredns_stop() { :; }

coredns_env() {
  echo "export TESTBED_COREDNS=$COREDNS_BIN/coredns"
  echo "export TESTBED_COREDNS_VERSION=$COREDNS_VERSION"
}
