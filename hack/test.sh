#!/usr/bin/env bash
# hack/test.sh: Pennant's tests on a real local control plane (called by `make test`).
#
# Installs what it needs, builds the control plane from Go modules when it is not cached
# (hack/local-cluster.sh build: about 10 minutes the first time), starts a private one on free
# loopback ports, runs `go test ./...` against it and always stops it again.
#
# Environment:
#   GO_TEST_FLAGS   extra flags for go test (e.g. "-run TestFoo -v")
#   GO_TEST_PKGS    packages to test (default ./...)
#   ETCD_PORT, API_PORT, KWOK_PORT, LOCAL_CLUSTER_DIR   fix the ports/state dir instead of picking free ones
set -euo pipefail

cd "$(dirname "$0")/.."
STARTED=$(date +%s)
say() { echo "[test $(( $(date +%s) - STARTED ))s] $*" >&2; }

# --- what the machine needs -------------------------------------------------------------------------
# Debian packages for commands the tests use: hack/deps.sh (add a line there when a test needs one).
# Inside hack/netns.sh's namespace (make e2e) no mirror is reachable: the caller installed them.
[ -n "${PENNANT_NETNS:-}" ] || hack/deps.sh
command -v go > /dev/null || { say "go is not installed (go.mod wants $(sed -n 's/^go //p' go.mod))"; exit 1; }

# --- a private control plane ------------------------------------------------------------------------
# Free ports and a state directory of its own, so that `make test` never touches a cluster started by
# `make cluster-up`/`make demo` or by another test run on the same machine.
port_free() { ! (exec 3<> "/dev/tcp/127.0.0.1/$1") 2> /dev/null; }
taken=" 23379 23380 27443 " # hack/local-cluster.sh's defaults, used by `make cluster-up` and `make demo`
pick_port() { # sets $1 to a port p with p and p+1 free (etcd's peer port is ETCD_PORT+1), unless already set
  local p i
  if [ -z "${!1:-}" ]; then
    for i in $(seq 100); do
      # Below Linux's ephemeral range (32768 and up by default): a port from it can be taken by any
      # outgoing connection while the apiserver is down (make e2e stops and starts it), and the
      # restarted apiserver could then not bind it again.
      p=$(( 20000 + RANDOM % 12000 ))
      case $taken in *" $p "*|*" $((p + 1)) "*|*" $((p - 1)) "*) continue ;; esac
      if port_free "$p" && port_free $((p + 1)); then taken="$taken$p "; break; fi
      p=
    done
    [ -n "$p" ] || { say "no free port found for $1"; return 1; }
    printf -v "$1" %s "$p"
  fi
  export "${1?}"
}
pick_port ETCD_PORT
pick_port API_PORT
pick_port KWOK_PORT
own_dir=
if [ -z "${LOCAL_CLUSTER_DIR:-}" ]; then LOCAL_CLUSTER_DIR=$(mktemp -d /tmp/pennant-test.XXXXXX); own_dir=1; fi
export LOCAL_CLUSTER_DIR

rc=1
cleanup() {
  trap - EXIT INT TERM
  hack/local-cluster.sh down || true
  if [ "$rc" = 0 ] && [ -n "$own_dir" ]; then
    rm -rf "$LOCAL_CLUSTER_DIR"
  elif [ "$rc" != 0 ]; then
    say "control plane logs kept in $LOCAL_CLUSTER_DIR"
  fi
}
test_pid=
on_signal() {
  rc=$1
  if [ -n "$test_pid" ]; then kill -TERM "$test_pid" 2> /dev/null || true; wait "$test_pid" 2> /dev/null || true; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'on_signal 130' INT
trap 'on_signal 143' TERM

say "building the control plane (cached after the first run)"
hack/local-cluster.sh build
say "starting the control plane in $LOCAL_CLUSTER_DIR (apiserver on 127.0.0.1:$API_PORT)"
hack/local-cluster.sh up > /dev/null
eval "$(hack/local-cluster.sh env)"
export KUBECONFIG KUBEBUILDER_ASSETS
export PENNANT_TEST_CLUSTER=1   # internal/testenv: use this cluster, not an API-server-only envtest

# -p 1: packages share the cluster (cluster-scoped CRDs are installed by each); tests isolate themselves
# by namespace. The machines have 2 cores, so little is lost.
say "go test ${GO_TEST_PKGS:-./...}"
rc=0
# In the background so that a signal reaches the trap at once, not after the tests.
# shellcheck disable=SC2086 # GO_TEST_FLAGS and GO_TEST_PKGS are word lists
go test -count=1 -timeout 20m -p 1 ${GO_TEST_FLAGS:-} ${GO_TEST_PKGS:-./...} &
test_pid=$!
wait "$test_pid" || rc=$?
test_pid=
# Fuzz targets, each for a bounded time (GO_FUZZ_TIME, default 10s), on full runs only: go test
# -fuzz takes one target of one package at a time.
if [ "$rc" = 0 ] && [ -z "${GO_TEST_PKGS:-}" ]; then
  for target in ./internal/canary/:FuzzPhaseMachine ./internal/controller/:FuzzValidate ./internal/loadtester/load/:FuzzParseHey ./internal/loadtester/shellwords/:FuzzSplit; do
    say "fuzz ${target#*:} for ${GO_FUZZ_TIME:-10s}"
    go test -run '^$' -fuzz "^${target#*:}\$" -fuzztime "${GO_FUZZ_TIME:-10s}" "${target%%:*}" &
    test_pid=$!
    wait "$test_pid" || rc=$?
    test_pid=
  done
fi
if [ "$rc" = 0 ]; then say "all tests passed"; else say "tests FAILED (exit $rc)"; fi
exit "$rc"
