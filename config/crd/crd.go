// Package crd embeds the CRDs that `make generate` writes to bases/, so that tools built from this
// repository (kubectl-pennant lint) check manifests against the very schema the cluster gets.
package crd

import _ "embed"

// Canaries is config/crd/bases/flagger.app_canaries.yaml.
//
//go:embed bases/flagger.app_canaries.yaml
var Canaries []byte
