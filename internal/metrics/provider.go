// Package metrics queries metric backends for canary analysis: one file per backend behind the
// small Provider interface.
package metrics

import (
	"context"
	"errors"
)

// Provider runs queries against one metric backend.
type Provider interface {
	// RunQuery returns the single value a query yields. It returns ErrNoValuesFound when the result
	// is empty or NaN, and ErrMultipleValuesReturned when it is not a single value.
	RunQuery(ctx context.Context, query string) (float64, error)
	// IsOnline checks that the backend answers (Prometheus: `vector(1)` must be 1).
	IsOnline(ctx context.Context) (bool, error)
}

var (
	// ErrNoValuesFound means the query matched nothing (often: the canary gets no traffic).
	ErrNoValuesFound = errors.New("no values found")
	// ErrMultipleValuesReturned means the query did not reduce to a single value.
	ErrMultipleValuesReturned = errors.New("multiple values returned")
)
