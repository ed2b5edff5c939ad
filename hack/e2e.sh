#!/usr/bin/env bash
# hack/e2e.sh: Pennant's end-to-end tests, called by `make e2e` (and by .ci/run after `make test`):
#   crash    test/crash: the crash campaign and API server outages with the real pennant binary
#   traffic  test/traffic: releases through a real proxy (Traefik) under real load, with the traffic
#            each version served measured; inside hack/netns.sh's namespace, where the pods' IPs are
#            served by real processes, on a control plane whose deleted pods drain (KWOK_GRACEFUL_DELETE)
# Each runs on a private local control plane (hack/test.sh), with the `e2e` build tag that keeps these
# files out of `make test`.
#
# Environment:
#   E2E_SUITES      which suites to run (default "crash traffic")
#   GO_TEST_FLAGS   extra flags for go test (e.g. "-run TestCanary")
set -euo pipefail
cd "$(dirname "$0")/.."
STARTED=$(date +%s)
say() { echo "[e2e $(( $(date +%s) - STARTED ))s] $*" >&2; }

# Everything that needs the network first: the namespace of the traffic suite reaches no registry.
hack/deps.sh
hack/local-cluster.sh build
hack/traefik.sh build > /dev/null
go mod download

rc=0
for suite in ${E2E_SUITES:-crash traffic}; do
  say "suite $suite"
  case $suite in
    crash)
      GO_TEST_PKGS=./test/crash/ GO_TEST_FLAGS="-tags e2e -timeout 30m -parallel 4 -v ${GO_TEST_FLAGS:-}" hack/test.sh || rc=$? ;;
    traffic)
      KWOK_GRACEFUL_DELETE=1 GO_TEST_PKGS=./test/traffic/... GO_TEST_FLAGS="-tags e2e -timeout 30m -v ${GO_TEST_FLAGS:-}" \
        hack/netns.sh hack/test.sh || rc=$? ;;
    *) say "unknown suite $suite"; rc=2 ;;
  esac
done
say "took $(( $(date +%s) - STARTED ))s (exit $rc)"
exit "$rc"
