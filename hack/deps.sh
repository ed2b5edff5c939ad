#!/usr/bin/env bash
# hack/deps.sh: installs the Debian packages that the tests, `make e2e` and `make demo` use, when
# missing (as root; otherwise says which to install). Called by hack/test.sh, hack/e2e.sh and
# hack/demo.sh, before they enter hack/netns.sh's namespace (which reaches no package mirror).
set -euo pipefail
say() { echo "[deps] $*" >&2; }
missing_pkgs=()
need() { command -v "$1" > /dev/null 2>&1 || missing_pkgs+=("$2"); }
need openssl openssl         # local-cluster.sh: PKI
need curl curl               # local-cluster.sh: health checks
need prometheus prometheus   # internal/analysis, test/dashboards, test/traffic: a real Prometheus on loopback
need ip iproute2             # hack/netns.sh: the pods' network namespace
need unshare util-linux      # hack/netns.sh
[ -f /etc/ssl/certs/ca-certificates.crt ] || missing_pkgs+=(ca-certificates) # hack/image: the images' CA bundle

[ ${#missing_pkgs[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  say "missing Debian packages: ${missing_pkgs[*]}; install them as root (apt-get install ${missing_pkgs[*]})"
  exit 1
fi
say "installing Debian packages: ${missing_pkgs[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q > /dev/null
apt-get install -y -q --no-install-recommends "${missing_pkgs[@]}" > /dev/null
