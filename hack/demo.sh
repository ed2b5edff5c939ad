#!/usr/bin/env bash
# make demo: Pennant releasing podinfo through a real proxy under real load, start to finish.
#
# Builds (once, cached) the local control plane and Traefik from Go modules, then, in a network
# namespace of its own (hack/netns.sh: the pods' IPs are served by real processes), starts the control
# plane, Traefik, Prometheus, one process per pod and pennant, and runs test/traffic/cmd/demo: a good
# canary release (weights 10% → 50%, promotion), a bad one rolled back on its 500s, a release driven
# from kubectl pennant (paused, resumed, promoted), and an A/B release by header on the Gateway API,
# printing what `kubectl describe canary` shows and the share of requests
# each version really served. Everything it started is stopped on exit, Ctrl-C or failure.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${PENNANT_NETNS:-}" ]; then
  STARTED=$(date +%s)
  say() { printf '\n\033[1m[demo %ss] %s\033[0m\n' "$(( $(date +%s) - STARTED ))" "$*"; }
  hack/deps.sh
  say "Building the local control plane (the first run compiles it from Go modules, about 10 minutes)"
  hack/local-cluster.sh build
  say "Building Traefik (the first run compiles it from its Go module, a few minutes)"
  TRAEFIK=$(hack/traefik.sh build)
  say "Building pennant, the pods' processes and the demo"
  mkdir -p bin
  go build -o bin/pennant ./cmd/pennant
  go build -o bin/pods ./test/traffic/cmd/pods
  go build -o bin/kubectl-pennant ./cmd/kubectl-pennant
  go build -o bin/pennant-demo ./test/traffic/cmd/demo
  GATEWAY_API_CRDS=$(go list -m -f '{{.Dir}}' sigs.k8s.io/gateway-api)/config/crd/standard
  export TRAEFIK GATEWAY_API_CRDS
  exec hack/netns.sh "$0" "$@"
fi

# Inside the namespace: a control plane of its own (no port is taken here), stopped whatever happens.
export LOCAL_CLUSTER_DIR=${LOCAL_CLUSTER_DIR:-$(mktemp -d /tmp/pennant-demo.XXXXXX)} KWOK_GRACEFUL_DELETE=1
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  hack/local-cluster.sh down > /dev/null 2>&1 || true
  case $rc in
    0) rm -rf "$LOCAL_CLUSTER_DIR" ;;
    130) rm -rf "$LOCAL_CLUSTER_DIR"; echo "demo interrupted; the control plane is stopped" >&2 ;;
    *) echo "demo failed (exit $rc); logs: bin/demo-logs/ and $LOCAL_CLUSTER_DIR" >&2 ;;
  esac
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM
printf '\n\033[1m[demo] Starting a local Kubernetes control plane\033[0m\n'
KUBECONFIG=$(hack/local-cluster.sh up)
export KUBECONFIG
rm -rf bin/demo-logs
# In the background so that Ctrl-C reaches the trap (which stops the demo and the control plane).
bin/pennant-demo -kubeconfig="$KUBECONFIG" -root=. -dir=bin/demo-logs -pennant=bin/pennant -pods=bin/pods -plugin=bin/kubectl-pennant \
  -traefik="$TRAEFIK" -gateway-api-crds="$GATEWAY_API_CRDS" -prometheus="$(command -v prometheus)" &
demo=$!
trap 'kill -INT $demo 2> /dev/null; wait $demo; exit 130' INT TERM
wait $demo
