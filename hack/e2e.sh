#!/usr/bin/env bash
# hack/e2e.sh: Pennant's end-to-end crash and outage tests (test/crash) on a private local control
# plane, called by `make e2e`. Like hack/test.sh, but with a longer timeout, only ./test/crash/ and the
# `e2e` build tag (the campaign files carry it so that `make test` does not run them).
#
# Environment:
#   GO_TEST_FLAGS   extra flags for go test (e.g. "-run TestCrash -v")
set -euo pipefail
cd "$(dirname "$0")/.."
STARTED=$(date +%s)
# hack/test.sh does the installing, the private ports and the cleanup; only the packages differ.
rc=0
GO_TEST_PKGS=./test/crash/ GO_TEST_FLAGS="-tags e2e -timeout 30m -parallel 4 -v ${GO_TEST_FLAGS:-}" hack/test.sh || rc=$?
echo "[e2e] took $(( $(date +%s) - STARTED ))s (exit $rc)" >&2
exit "$rc"
