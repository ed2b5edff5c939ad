#!/usr/bin/env bash
# make bench: Pennant's benchmarks, numbers printed: test/bench on a private local control plane (see
# hack/test.sh), then the traffic of a release through Traefik (test/traffic's BenchmarkReleaseTraffic,
# inside hack/netns.sh as make e2e runs it), and the comparative judge against Flagger's thresholds on
# 10,000 simulated releases per scenario (internal/judge, no cluster). BENCH_SUITES="judge bench traffic"
# selects (default all three).
set -euo pipefail
cd "$(dirname "$0")/.."
rc=0
for suite in ${BENCH_SUITES:-judge bench traffic}; do
  case $suite in
    judge)
      go test ./internal/judge/ -run '^$' -bench BenchmarkJudgeVersusThresholds -benchtime 1x || rc=$? ;;
    bench)
      GO_TEST_PKGS=${GO_TEST_PKGS:-./test/bench/} \
      GO_TEST_FLAGS=${GO_TEST_FLAGS:-"-run ^$ -bench . -benchtime 1x -timeout 90m"} \
        hack/test.sh || rc=$? ;;
    traffic)
      hack/deps.sh && hack/local-cluster.sh build && hack/traefik.sh build > /dev/null && go mod download
      KWOK_GRACEFUL_DELETE=1 GO_TEST_PKGS=./test/traffic/ GO_TEST_FLAGS="-tags e2e -run ^$ -bench . -benchtime 1x -timeout 15m -v" \
        hack/netns.sh hack/test.sh || rc=$? ;;
    *) echo "unknown suite $suite" >&2; rc=2 ;;
  esac
done
exit "$rc"
