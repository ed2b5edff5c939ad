package workload

import (
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// PermanentError is an error that retrying cannot fix: the Canary or its target must change first
// (no selector label, unsupported kind, ...). The controller reports it as Stalled instead of retrying.
type PermanentError struct {
	Err error
}

func (e *PermanentError) Error() string { return e.Err.Error() }

func (e *PermanentError) Unwrap() error { return e.Err }

// IsPermanent reports whether err, or an error it wraps, is a PermanentError.
func IsPermanent(err error) bool {
	var permanent *PermanentError
	return errors.As(err, &permanent)
}

func permanentf(format string, args ...any) error {
	return &PermanentError{Err: fmt.Errorf(format, args...)}
}

// targetError is an error reading the canary's target; it wraps the API error.
type targetError struct {
	err error
}

func (e *targetError) Error() string { return e.err.Error() }

func (e *targetError) Unwrap() error { return e.err }

// IsTargetNotFound reports whether err says that the canary's target does not exist. Unlike
// apierrors.IsNotFound (which also holds), it is false when another object is missing, e.g. the primary.
func IsTargetNotFound(err error) bool {
	var target *targetError
	return errors.As(err, &target) && apierrors.IsNotFound(target.err)
}
