#!/usr/bin/env bash
# hack/local-cluster.sh: a real Kubernetes control plane on 127.0.0.1 for Pennant's tests and demo.
#
# No Docker, no kubelet, no downloads outside the Go module proxy: etcd, the Kubernetes components
# (one multi-call binary for kube-apiserver, kube-controller-manager, kube-scheduler and kubectl)
# and kwok (a fake kubelet that makes pods Ready) are compiled from Go modules once and cached.
#
#   hack/local-cluster.sh build   compile into the cache when missing (idempotent)
#   hack/local-cluster.sh up      build if needed, start everything, print the kubeconfig path
#   hack/local-cluster.sh down    stop what `up` started
#   hack/local-cluster.sh env     print KUBECONFIG and KUBEBUILDER_ASSETS exports
#   hack/local-cluster.sh assets  print the binaries directory (usable as KUBEBUILDER_ASSETS)
#   hack/local-cluster.sh stop-apiserver   stop only the kube-apiserver (etcd keeps the state)
#   hack/local-cluster.sh start-apiserver  start it again on the same port and PKI
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-1.35.4}
ETCD_VERSION=${ETCD_VERSION:-3.5.21}
KWOK_VERSION=${KWOK_VERSION:-0.8.0}
CACHE=${PENNANT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pennant}
BIN=$CACHE/control-plane/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION
STATE=${LOCAL_CLUSTER_DIR:-/tmp/pennant-cluster}
ETCD_PORT=${ETCD_PORT:-23379}
API_PORT=${API_PORT:-27443}
KWOK_PORT=${KWOK_PORT:-11247}
KUBECONFIG_FILE=$STATE/kubeconfig
PKI=$STATE/pki
STARTED=$(date +%s)

say() { echo "[local-cluster $(( $(date +%s) - STARTED ))s] $*" >&2; }

# Go builds print nothing for minutes; a heartbeat shows a newcomer that the cold build is alive.
with_heartbeat() {
  local what=$1; shift
  ( while sleep 30; do say "still building $what..."; done ) &
  local beat=$!
  local rc=0
  "$@" || rc=$?
  kill "$beat" 2>/dev/null || true
  wait "$beat" 2>/dev/null || true
  return $rc
}

compile_etcd() {
  local dir=$CACHE/src/etcd-$ETCD_VERSION
  mkdir -p "$dir"
  cd "$dir"
  # etcd's server module carries replace directives, so `go install pkg@version` refuses it;
  # a scratch module that depends on it builds fine.
  printf 'module pennant.local/etcd\n\ngo 1.24\n' > go.mod
  printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' > tools.go
  go get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" >/dev/null
  go mod tidy >/dev/null
  go build -trimpath -ldflags='-s -w' -o "$BIN/etcd.partial" go.etcd.io/etcd/server/v3
  mv "$BIN/etcd.partial" "$BIN/etcd"
}

compile_kubernetes() {
  local dir=$CACHE/src/kubernetes-$K8S_VERSION upstream minor flags pkg
  mkdir -p "$dir/cmd/k8s"
  cd "$dir"
  upstream=$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  minor=${K8S_VERSION#1.}; minor=${minor%%.*}
  # k8s.io/kubernetes points its staging modules at ./staging; use their published v0.<minor>.<patch>.
  {
    printf 'module pennant.local/kubernetes\n\ngo 1.25.0\n\nrequire k8s.io/kubernetes v%s\n\nreplace (\n' "$K8S_VERSION"
    awk -v v="v0.${K8S_VERSION#1.}" '$2 == "=>" && $3 ~ /^\.\/staging\// { print "\t" $1 " => " $1 " " v }' "$upstream"
    printf ')\n'
  } > go.mod
  cat > cmd/k8s/main.go <<'GO'
// Command k8s runs the Kubernetes component named by argv[0] (a symlink) or by its first argument.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"k8s.io/component-base/cli"
	kubectl "k8s.io/kubectl/pkg/cmd"
	kubectlutil "k8s.io/kubectl/pkg/cmd/util"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
)

func main() {
	name, args := filepath.Base(os.Args[0]), os.Args[1:]
	if name == "k8s" && len(args) > 0 {
		name, args = args[0], args[1:]
	}
	var cmd *cobra.Command
	switch name {
	case "kube-apiserver":
		cmd = apiserver.NewAPIServerCommand()
	case "kube-controller-manager":
		cmd = controllermanager.NewControllerManagerCommand()
	case "kube-scheduler":
		cmd = scheduler.NewSchedulerCommand()
	case "kubectl":
		cmd = kubectl.NewDefaultKubectlCommand()
		cmd.SetArgs(args)
		if err := cli.RunNoErrOutput(cmd); err != nil {
			kubectlutil.CheckErr(err)
		}
		return
	default:
		fmt.Fprintln(os.Stderr, "usage: k8s kube-apiserver|kube-controller-manager|kube-scheduler|kubectl ...")
		os.Exit(2)
	}
	cmd.SetArgs(args)
	os.Exit(cli.Run(cmd))
}
GO
  go mod tidy >/dev/null
  flags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags="$flags -X $pkg.gitVersion=v$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  done
  go build -trimpath -ldflags "$flags" -o "$BIN/k8s.partial" ./cmd/k8s
  mv "$BIN/k8s.partial" "$BIN/k8s"
}

compile_kwok() {
  cd "$BIN"
  GOBIN="$BIN/kwok.d" go install -trimpath -ldflags='-s -w' "sigs.k8s.io/kwok/cmd/kwok@v$KWOK_VERSION"
  mv "$BIN/kwok.d/kwok" "$BIN/kwok" && rmdir "$BIN/kwok.d"
}

write_kwok_stages() {
  local mod f
  mod=$(cd "$BIN" && go mod download -json "sigs.k8s.io/kwok@v$KWOK_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  # kwok itself ships no stages; these are the defaults kwokctl would apply (fast node and pod lifecycle).
  for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
    pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
    echo "---"
    cat "$mod/kustomize/stage/$f"
  done > "$BIN/kwok-stages.yaml.partial"
  mv "$BIN/kwok-stages.yaml.partial" "$BIN/kwok-stages.yaml"
}

# KWOK_GRACEFUL_DELETE=1 (make e2e, make demo): a deleted pod stays, terminating, until its grace
# period ends, as with a kubelet, instead of going at once; its IP is not given to a new pod while the
# process serving it (test/traffic) drains. That process's supervisor, like a kubelet, deletes the pod
# as soon as the process has exited.
write_graceful_stages() {
  awk 'BEGIN { RS = "---\n" } !/name: pod-delete/ { printf "---\n%s", $0 }' "$BIN/kwok-stages.yaml" > "$STATE/kwok-stages.yaml"
  cat >> "$STATE/kwok-stages.yaml" <<'EOF2'
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-delete
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'Exists'
  delay:
    durationMilliseconds: 0
    # a time: the delay lasts until then
    durationFrom:
      expressionFrom: '.metadata.deletionTimestamp'
  next:
    delete: true
EOF2
  echo "$STATE/kwok-stages.yaml"
}

build() {
  mkdir -p "$BIN"
  if [ ! -x "$BIN/etcd" ]; then
    say "compiling etcd v$ETCD_VERSION (once; cached in $BIN)"
    with_heartbeat etcd compile_etcd
  fi
  if [ ! -x "$BIN/k8s" ]; then
    say "compiling Kubernetes v$K8S_VERSION components (once, about 10 minutes on 2 cores; cached in $BIN)"
    with_heartbeat kubernetes compile_kubernetes
  fi
  local c
  for c in kube-apiserver kube-controller-manager kube-scheduler kubectl; do ln -sfn k8s "$BIN/$c"; done
  if [ ! -x "$BIN/kwok" ]; then
    say "compiling kwok v$KWOK_VERSION (once)"
    with_heartbeat kwok compile_kwok
  fi
  [ -s "$BIN/kwok-stages.yaml" ] || write_kwok_stages
}

make_pki() {
  [ -s "$PKI/admin.crt" ] && return
  mkdir -p "$PKI"
  local key="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
  (
    cd "$PKI"
    openssl req -x509 $key -keyout ca.key -out ca.crt -days 3650 -subj /CN=pennant-local-ca 2>/dev/null
    openssl req $key -keyout apiserver.key -out apiserver.csr -subj /CN=kube-apiserver 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' > apiserver.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile apiserver.ext -out apiserver.crt 2>/dev/null
    openssl req $key -keyout admin.key -out admin.csr -subj "/O=system:masters/CN=admin" 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\n' > admin.ext
    openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile admin.ext -out admin.crt 2>/dev/null
    openssl ecparam -name prime256v1 -genkey -noout -out sa.key
    openssl ec -in sa.key -pubout -out sa.pub 2>/dev/null
  )
  cat > "$KUBECONFIG_FILE" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: pennant-local
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority-data: $(base64 -w0 < "$PKI/ca.crt")
users:
- name: admin
  user:
    client-certificate-data: $(base64 -w0 < "$PKI/admin.crt")
    client-key-data: $(base64 -w0 < "$PKI/admin.key")
contexts:
- name: pennant-local
  context: {cluster: pennant-local, user: admin}
current-context: pennant-local
EOF
}

# PID 1 on these machines may not reap orphans: a zombie still answers `kill -0`, so read its state.
running() { local s; s=$(ps -o stat= -p "$1" 2>/dev/null) && [ "${s:0:1}" != Z ]; }

launch() {
  local name=$1; shift
  nohup "$@" > "$STATE/$name.log" 2>&1 < /dev/null &
  echo $! > "$STATE/$name.pid"
}

await() {
  local what=$1 i; shift
  for i in $(seq 300); do
    if "$@" > /dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  say "gave up waiting for $what; logs are in $STATE"
  return 1
}

kctl() { "$BIN/kubectl" --kubeconfig="$KUBECONFIG_FILE" "$@"; }

start_apiserver() {
  launch kube-apiserver "$BIN/kube-apiserver" --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$API_PORT" \
    --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
    --client-ca-file="$PKI/ca.crt" --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
    --service-cluster-ip-range=10.0.0.0/16 --authorization-mode=RBAC --endpoint-reconciler-type=none \
    --allow-privileged=true --cert-dir="$STATE/apiserver-certs"
  await kube-apiserver curl -sf --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
    "https://127.0.0.1:$API_PORT/readyz"
}

# Outage tests stop only the kube-apiserver (etcd and the rest stay up) and start it again.
stop_apiserver() {
  local pidfile=$STATE/kube-apiserver.pid pid i
  [ -f "$pidfile" ] || { say "no kube-apiserver is running in $STATE"; return 1; }
  pid=$(cat "$pidfile")
  kill "$pid" 2>/dev/null || true
  for i in $(seq 100); do running "$pid" || break; sleep 0.1; done
  if running "$pid"; then kill -9 "$pid" 2>/dev/null || true; fi
  rm -f "$pidfile"
  say "kube-apiserver stopped"
}

up() {
  build
  if [ -f "$STATE/kube-apiserver.pid" ] && running "$(cat "$STATE/kube-apiserver.pid")"; then
    say "already running"
    echo "$KUBECONFIG_FILE"
    return
  fi
  mkdir -p "$STATE"
  rm -rf "$STATE/etcd-data"
  make_pki
  launch etcd "$BIN/etcd" --data-dir "$STATE/etcd-data" --name pennant --unsafe-no-fsync \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
    --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
    --initial-cluster "pennant=http://127.0.0.1:$((ETCD_PORT + 1))"
  await etcd curl -sf "http://127.0.0.1:$ETCD_PORT/health"
  start_apiserver
  # Room for make bench's 1,000 canaries: a /16 of Service IPs, 10,000 pods on the fake node, a
  # controller-manager that keeps up with 1,000 Deployments and never marks the node (and so every
  # pod, which kwok would not make ready again) unready when a heartbeat comes late under load.
  launch kube-controller-manager "$BIN/kube-controller-manager" --kubeconfig="$KUBECONFIG_FILE" \
    --leader-elect=false --secure-port=0 --use-service-account-credentials=false \
    --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
    --node-monitor-grace-period=10m --kube-api-qps=500 --kube-api-burst=1000 \
    --concurrent-deployment-syncs=20 --concurrent-replicaset-syncs=20
  launch kube-scheduler "$BIN/kube-scheduler" --kubeconfig="$KUBECONFIG_FILE" --leader-elect=false --secure-port=0
  # The fake node's IP is loopback so that apiserver-to-kubelet traffic stays on this machine.
  # Service IPs are bookkeeping only; pod IPs (10.244.0.0/16) are served only by test/traffic's pods
  # supervisor, inside hack/netns.sh's network namespace.
  local stages=$BIN/kwok-stages.yaml
  if [ "${KWOK_GRACEFUL_DELETE:-}" = 1 ]; then stages=$(write_graceful_stages); fi
  launch kwok "$BIN/kwok" --kubeconfig="$KUBECONFIG_FILE" --config="$stages" \
    --manage-all-nodes=true --node-lease-duration-seconds=40 --node-ip=127.0.0.1 --node-port="$KWOK_PORT" \
    --server-address="127.0.0.1:$KWOK_PORT" --cidr=10.244.0.0/16
  kctl apply -f - > /dev/null <<'EOF'
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-0
  annotations: {kwok.x-k8s.io/node: fake, node.alpha.kubernetes.io/ttl: "0"}
  labels: {kubernetes.io/hostname: kwok-node-0, kubernetes.io/os: linux, kubernetes.io/arch: amd64, type: kwok}
status:
  allocatable: {cpu: "32", memory: 256Gi, pods: "10000"}
  capacity: {cpu: "32", memory: 256Gi, pods: "10000"}
EOF
  await "node kwok-node-0" kctl wait --for=condition=Ready node/kwok-node-0 --timeout=1s
  # Pods are refused until the controller-manager has created the namespace's default ServiceAccount.
  await "default service account" kctl get serviceaccount default -n default
  say "control plane up on https://127.0.0.1:$API_PORT"
  echo "$KUBECONFIG_FILE"
}

down() {
  local name pidfile pid i
  for name in kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do
    pidfile=$STATE/$name.pid
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    for i in $(seq 50); do running "$pid" || break; sleep 0.1; done
    if running "$pid"; then kill -9 "$pid" 2>/dev/null || true; fi
    rm -f "$pidfile"
  done
  say "control plane stopped"
}

case "${1:-up}" in
  build) build; say "binaries in $BIN" ;;
  up) up ;;
  down) down ;;
  env) echo "export KUBECONFIG=$KUBECONFIG_FILE KUBEBUILDER_ASSETS=$BIN" ;;
  assets) echo "$BIN" ;;
  stop-apiserver) stop_apiserver ;;
  start-apiserver) start_apiserver; say "kube-apiserver up on https://127.0.0.1:$API_PORT" ;;
  *) echo "usage: $0 build|up|down|env|assets|stop-apiserver|start-apiserver" >&2; exit 2 ;;
esac
