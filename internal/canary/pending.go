package canary

import (
	"errors"
	"time"
)

// ErrPending is returned by Checks while a webhook or metric check is still running in the
// background; the machine then decides nothing and is called again when the result is in.
var ErrPending = errors.New("check in progress")

// HoldError holds the analysis without counting a failed check (e.g. a metric with no data and
// noDataPolicy wait). Its message becomes a warning event.
type HoldError struct{ Message string }

func (e *HoldError) Error() string { return e.Message }

// RollbackError is a failed check that rolls the release back at once, without waiting for the
// failed checks threshold: the comparative judge's fail, already at its false-rollback rate.
type RollbackError struct{ Message string }

func (e *RollbackError) Error() string { return e.Message }

// pendingRetry is the fallback recheck while a check runs; its completion normally wakes the canary first.
const pendingRetry = 5 * time.Second

// IsRevision reports whether s has the form of a Pennant revision (32 lowercase hex digits); Flagger's
// are shorter and drawn from another alphabet.
func IsRevision(s string) bool {
	if len(s) != 32 {
		return false
	}
	for _, r := range s {
		if (r < '0' || r > '9') && (r < 'a' || r > 'f') {
			return false
		}
	}
	return true
}
