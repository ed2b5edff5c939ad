#!/usr/bin/env bash
# make demo: a blue/green release of podinfo with Pennant on a local control plane, start to finish.
# Builds (once, cached) and starts etcd, kube-apiserver, kube-controller-manager, kube-scheduler and
# kwok on 127.0.0.1, runs the controller, releases a new image and shows what `kubectl describe
# canary` shows. Everything it started is stopped on exit, Ctrl-C or failure.
set -euo pipefail
cd "$(dirname "$0")/.."

STARTED=$(date +%s)
say() { printf '\n\033[1m[demo %ss] %s\033[0m\n' "$(( $(date +%s) - STARTED ))" "$*"; }

CONTROLLER_PID=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$CONTROLLER_PID" ]; then kill "$CONTROLLER_PID" 2>/dev/null || true; wait "$CONTROLLER_PID" 2>/dev/null || true; fi
  hack/local-cluster.sh down || true
  if [ $rc -ne 0 ]; then echo "demo failed (exit $rc); controller log: bin/demo-controller.log" >&2; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "Starting a local Kubernetes control plane (the first run compiles it from Go modules, about 10 minutes)"
KUBECONFIG=$(hack/local-cluster.sh up)
export KUBECONFIG
KUBECTL="$(hack/local-cluster.sh assets)/kubectl"
k() { "$KUBECTL" "$@"; }

say "Building Pennant"
mkdir -p bin
go build -o bin/pennant ./cmd/pennant

say "Installing the flagger.app CRDs"
k apply --server-side -f config/crd/bases >/dev/null
k wait --for=condition=Established crd --all --timeout=60s >/dev/null

say "Running the controller (logs: bin/demo-controller.log)"
bin/pennant -kubeconfig="$KUBECONFIG" -mesh-provider=kubernetes -log-level=info -port=18080 \
  > bin/demo-controller.log 2>&1 &
CONTROLLER_PID=$!

say "Applying podinfo and its Canary"
k apply -f examples/demo/podinfo.yaml >/dev/null
k apply -f examples/demo/canary.yaml
phase() { k -n test get canary podinfo -o jsonpath='{.status.phase}' 2>/dev/null || true; }
controller_alive() {
  kill -0 "$CONTROLLER_PID" 2>/dev/null && return 0
  echo "the controller exited:" >&2; tail -20 bin/demo-controller.log >&2; return 1
}
wait_phase() {
  local want=$1 limit=$2 i last=""
  for i in $(seq "$limit"); do
    local p; p=$(phase)
    [ "$p" != "$last" ] && { echo "  canary/podinfo: ${p:-<none>}"; last=$p; }
    case " $want " in *" $p "*) return 0 ;; esac
    controller_alive || return 1
    sleep 1
  done
  echo "timed out waiting for phase $want" >&2
  return 1
}
wait_phase Initialized 120
k -n test get deploy,svc

say "Releasing podinfo 6.0.1"
k -n test set image deployment/podinfo podinfod=ghcr.io/stefanprodan/podinfo:6.0.1
last=""
for i in $(seq 300); do
  line=$(k -n test get canary podinfo -o jsonpath='{.status.phase} iterations={.status.iterations}')
  [ "$line" != "$last" ] && { echo "  canary/podinfo: $line"; last=$line; }
  case "$line" in Succeeded*|Failed*) break ;; esac
  controller_alive || exit 1
  sleep 1
done

say "kubectl describe canary podinfo (events)"
k -n test describe canary podinfo | sed -n '/^Events:/,$p'

say "Summary"
echo "  phase:          $(phase)"
echo "  primary image:  $(k -n test get deploy podinfo-primary -o jsonpath='{.spec.template.spec.containers[0].image}')"
echo "  target replicas: $(k -n test get deploy podinfo -o jsonpath='{.spec.replicas}')"
echo "  apex selector:  $(k -n test get svc podinfo -o jsonpath='{.spec.selector}')"
echo "  conditions:     $(k -n test get canary podinfo -o jsonpath='{range .status.conditions[*]}{.type}={.status} {end}')"
[ "$(phase)" = Succeeded ]
