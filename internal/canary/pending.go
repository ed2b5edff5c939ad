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

// pendingRetry is the fallback recheck while a check runs; its completion normally wakes the canary first.
const pendingRetry = 5 * time.Second
