#!/usr/bin/env bash
# make bench: Pennant's benchmarks on a private local control plane (see hack/test.sh), numbers printed.
set -euo pipefail
cd "$(dirname "$0")/.."
GO_TEST_PKGS=${GO_TEST_PKGS:-./test/bench/} \
GO_TEST_FLAGS=${GO_TEST_FLAGS:-"-run ^$ -bench . -benchtime 1x -timeout 15m"} \
  exec hack/test.sh
