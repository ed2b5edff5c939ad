// Package gates holds the load tester's manual gates (Flagger's /gate/* and /rollback/* endpoints)
// and decides who may change them.
//
// Semantics are Flagger's: a gate is keyed by the canary's name and namespace, it is closed until
// someone opens it (/gate/check and /rollback/check answer 403 until then), and once opened it stays
// open until someone closes it — it does not close by itself after the release it approved, so a
// gate left open approves the next release of the same canary too. Unlike Flagger's, whose gates
// live in a map in memory and are lost on every restart, ConfigMapStore keeps them in one ConfigMap
// in the cluster, shared by every replica of the load tester and kept across restarts.
package gates

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Kind tells the two families of gates apart: they are independent of each other.
type Kind string

const (
	// Gate is the confirm-rollout/confirm-promotion gate: /gate/check, /gate/open, /gate/close.
	Gate Kind = "gate"
	// Rollback is the rollback gate: /rollback/check, /rollback/open, /rollback/close.
	Rollback Kind = "rollback"
)

// Key names the canary a gate belongs to, as the webhook payload does ("name", "namespace").
type Key struct {
	Namespace, Name string
}

// String is Flagger's spelling of the key, name.namespace.
func (k Key) String() string { return k.Name + "." + k.Namespace }

// Store keeps the state of the gates. A gate never set is closed.
type Store interface {
	// IsOpen tells whether the gate of kind for k is open.
	IsOpen(ctx context.Context, kind Kind, k Key) (bool, error)
	// Set opens or closes the gate of kind for k. Setting a gate to the state it is in is a no-op.
	Set(ctx context.Context, kind Kind, k Key, open bool) error
}

// Errors returned by this package; HTTPStatus maps them to a response code.
var (
	// ErrInvalidKey: the payload's name or namespace cannot name a canary (or the kind is unknown).
	ErrInvalidKey = errors.New("invalid gate")
	// ErrFull: opening one more gate would make the store larger than its bound.
	ErrFull = errors.New("too many open gates")
	// ErrUnauthenticated: a gate change from outside the pod without a bearer token.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrForbidden: a gate change with a wrong token, or from outside the pod when no token is configured,
	// or a payload namespace that -namespace-regexp does not allow.
	ErrForbidden = errors.New("forbidden")
)

// HTTPStatus is the response code for an error of this package: 400 for an invalid gate, 401 and 403
// for authorization, 507 when the store is full, 500 for anything else (e.g. the API server).
func HTTPStatus(err error) int {
	switch {
	case err == nil:
		return http.StatusOK
	case errors.Is(err, ErrInvalidKey):
		return http.StatusBadRequest
	case errors.Is(err, ErrUnauthenticated):
		return http.StatusUnauthorized
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, ErrFull):
		return http.StatusInsufficientStorage
	default:
		return http.StatusInternalServerError
	}
}

// Validate checks that kind is known and k can name a canary: a namespace is a DNS label and a name a
// DNS subdomain. The payload is untrusted input, and only such names encode into a ConfigMap key.
func Validate(kind Kind, k Key) error {
	if kind != Gate && kind != Rollback {
		return fmt.Errorf("%w: unknown kind %q", ErrInvalidKey, kind)
	}
	if errs := validation.IsDNS1123Label(k.Namespace); len(errs) > 0 {
		return fmt.Errorf("%w: namespace %q: %s", ErrInvalidKey, k.Namespace, strings.Join(errs, "; "))
	}
	if errs := validation.IsDNS1123Subdomain(k.Name); len(errs) > 0 {
		return fmt.Errorf("%w: name %q: %s", ErrInvalidKey, k.Name, strings.Join(errs, "; "))
	}
	return nil
}

// dataKey is the ConfigMap data key of a gate: "<kind>_<name>.<namespace>", e.g. "gate_podinfo.test",
// readable with kubectl. ConfigMap keys allow [-._a-zA-Z0-9] and at most 253 characters; kinds, names
// and namespaces never contain "_", and a namespace never contains ".", so the key is unambiguous.
// A key longer than 253 characters (a very long canary name) becomes "<kind>_sha256_<hex>", which
// cannot be mistaken for a readable one: its part after the kind holds a second "_".
// k must have passed Validate.
func dataKey(kind Kind, k Key) string {
	readable := string(kind) + "_" + k.String()
	if len(readable) <= validation.DNS1123SubdomainMaxLength {
		return readable
	}
	sum := sha256.Sum256([]byte(k.String()))
	return string(kind) + "_sha256_" + hex.EncodeToString(sum[:])
}
