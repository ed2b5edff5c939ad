SHELL := /usr/bin/env bash
GO ?= go
CONTROLLER_GEN := $(GO) tool controller-gen

.PHONY: all build image generate verify-generate fmt vet test test-unit test-integration demo bench e2e cluster-build cluster-up cluster-down clean

all: build

build:
	$(GO) build -o bin/pennant ./cmd/pennant
	$(GO) build -o bin/loadtester ./cmd/loadtester
	$(GO) build -o bin/kubectl-pennant ./cmd/kubectl-pennant

## image: OCI image archives bin/<name>-image.tar (linux/amd64 + linux/arm64) without a Docker daemon (hack/image).
## VERSION=v0.1.0 sets the version (default: git describe); IMAGE_FLAGS passes more, e.g. "-push -also-tag latest".
CA_BUNDLE := /etc/ssl/certs/ca-certificates.crt
image:
	@[ -f $(CA_BUNDLE) ] || { echo "installing Debian's ca-certificates for the images' CA bundle"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends ca-certificates >/dev/null; }
	$(GO) run ./hack/image -out bin $(if $(VERSION),-version=$(VERSION)) $(IMAGE_FLAGS)

## generate: deepcopy functions and CRD/RBAC manifests from the API types and markers (also into charts/pennant); Grafana dashboards and alert rules (hack/dashboards)
generate:
	$(CONTROLLER_GEN) object paths=./api/...
	$(CONTROLLER_GEN) crd:allowDangerousTypes=true paths=./api/... output:crd:artifacts:config=config/crd/bases
	$(CONTROLLER_GEN) rbac:roleName=pennant paths=./internal/... output:rbac:artifacts:config=config/rbac
	@# The Helm chart ships the same CRDs and ClusterRole rules (charts/pennant/templates/rbac.yaml reads them).
	rm -f charts/pennant/crds/*.yaml && cp config/crd/bases/*.yaml charts/pennant/crds/
	cp config/rbac/role.yaml charts/pennant/files/clusterrole.yaml
	cp charts/pennant/files/prometheus.yml config/prometheus/prometheus.yml
	$(GO) run ./hack/dashboards
	rm -rf charts/pennant/files/dashboards && mkdir -p charts/pennant/files/dashboards && cp config/dashboards/*.json charts/pennant/files/dashboards/

## verify-generate: fail when the generated files are stale (works on a dirty tree too)
verify-generate:
	@before=$$(mktemp -d) && cp -r api config charts "$$before"/ && \
	$(MAKE) --no-print-directory generate >/dev/null && \
	diff -r "$$before/api" api && diff -r "$$before/config" config && diff -r "$$before/charts" charts && rm -rf "$$before" || \
	{ echo "generated files were stale: 'make generate' has updated them, commit the result"; exit 1; }

fmt:
	gofmt -l -w $$(git ls-files '*.go')

vet:
	$(GO) vet ./...

cluster-build:
	hack/local-cluster.sh build

cluster-up:
	hack/local-cluster.sh up

cluster-down:
	hack/local-cluster.sh down

## test: everything CI runs: generated files, vet, unit tests and the controller tests on a real control plane
test: verify-generate vet
	hack/test.sh

## e2e: the crash campaign and outage tests (test/crash), and releases through a real proxy under real load with the traffic measured (test/traffic); hack/e2e.sh
e2e:
	hack/e2e.sh

## demo: releases of podinfo through Traefik under load on a local control plane: a canary, a rollback, an A/B test (hack/demo.sh)
demo:
	hack/demo.sh

bench:
	hack/bench.sh

clean:
	rm -rf bin
