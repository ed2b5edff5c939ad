package workload

import (
	"errors"
	"fmt"
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
