#!/usr/bin/env bash
# hack/traefik.sh: Traefik, the real proxy of Pennant's end-to-end tests and demo, compiled from its Go
# module once and cached beside the control plane (no image, no download but the Go module proxy).
#
#   hack/traefik.sh build   compile into the cache when missing (idempotent); prints the binary's path
#   hack/traefik.sh path    print the binary's path (built or not)
#   hack/traefik.sh crds    print the directory of Traefik's CRDs in its module (kubernetes-crd-definition-v1.yml)
#
# Traefik's go.mod has replace directives (forks of two dependencies, and a local `dynamic/ext` module
# in v3.7), which `go install pkg@version` refuses; a scratch module repeats them, as
# hack/local-cluster.sh does for Kubernetes' staging modules.
#
# Why v3.6 and not v3.7: v3.7's ACME DNS providers (lego v5) need a dozen cloud SDK versions that the
# module proxy reachable here does not serve; v3.6.12 resolves completely. Both read the same
# traefik.io/v1alpha1 TraefikService and Gateway API HTTPRoute objects that Pennant writes.
set -euo pipefail

TRAEFIK_VERSION=${TRAEFIK_VERSION:-3.6.12}
CACHE=${PENNANT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pennant}
BIN=$CACHE/traefik/v$TRAEFIK_VERSION
STARTED=$(date +%s)
say() { echo "[traefik $(( $(date +%s) - STARTED ))s] $*" >&2; }

module_file() { # $1: GoMod or Dir of Traefik's module
  (cd "$CACHE" && go mod download -json "github.com/traefik/traefik/v3@v$TRAEFIK_VERSION") |
    sed -n "s/.*\"$1\": \"\(.*\)\".*/\1/p"
}

compile() {
  local dir=$CACHE/src/traefik-$TRAEFIK_VERSION upstream
  rm -rf "$dir" && mkdir -p "$dir/ext" "$BIN"
  cd "$dir"
  upstream=$(module_file GoMod)
  # Traefik's own extension points, empty in its open-source build; its go.mod points them at a
  # directory that the published module zip leaves out (v3.7 and later).
  printf 'module github.com/traefik/traefik/dynamic/ext\n\ngo 1.24.0\n' > ext/go.mod
  cat > ext/ext.go <<'GO'
// Package ext holds the empty extension points of Traefik's dynamic configuration.
package ext

// HTTP extends the HTTP configuration.
type HTTP struct{}

// Router extends a router.
type Router struct{}

// RouterIng extends an ingress router's annotations.
type RouterIng struct{}

// ToRouter converts the ingress extension to a router's.
func (RouterIng) ToRouter() Router { return Router{} }
GO
  {
    printf 'module pennant.local/traefik\n\ngo 1.26.0\n\nrequire github.com/traefik/traefik/v3 v%s\n\n' "$TRAEFIK_VERSION"
    printf 'replace github.com/traefik/traefik/dynamic/ext => ./ext\n\n'
    # Traefik's own replace block (forks) and excludes, verbatim.
    awk '/^replace \($/ { p = 1 } p { print } p && /^\)$/ { p = 0 } /^exclude / { print }' "$upstream"
  } > go.mod
  printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/traefik/traefik/v3/cmd/traefik"\n' > tools.go
  go mod tidy > /dev/null 2>&1 || go mod tidy # again, loud, to show why
  go build -trimpath -ldflags "-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=$TRAEFIK_VERSION" \
    -o "$BIN/traefik.partial" github.com/traefik/traefik/v3/cmd/traefik
  mv "$BIN/traefik.partial" "$BIN/traefik"
}

build() {
  if [ ! -x "$BIN/traefik" ]; then
    say "compiling Traefik v$TRAEFIK_VERSION (once, a few minutes on 2 cores; cached in $BIN)"
    ( while sleep 30; do say "still building Traefik..."; done ) &
    local beat=$! rc=0
    ( compile ) || rc=$?
    kill "$beat" 2> /dev/null || true
    wait "$beat" 2> /dev/null || true
    [ "$rc" = 0 ] || { say "building Traefik failed"; exit "$rc"; }
  fi
  echo "$BIN/traefik"
}

case "${1:-build}" in
  build) build ;;
  path) echo "$BIN/traefik" ;;
  crds) echo "$(module_file Dir)/docs/content/reference/dynamic-configuration" ;;
  *) echo "usage: $0 build|path|crds" >&2; exit 2 ;;
esac
