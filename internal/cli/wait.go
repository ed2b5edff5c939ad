package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// Exit codes of `wait`.
const (
	ExitReached = 0
	ExitFailed  = 1 // the release failed (or, for --for=failed, succeeded): the state will not come
	ExitTimeout = 2
)

// WaitTargets are the states `wait --for` accepts.
var WaitTargets = []string{"promoted", "succeeded", "failed"}

// ExitError carries a command's exit code to main.
type ExitError struct {
	Code int
	Msg  string
}

func (e *ExitError) Error() string { return e.Msg }

// waitVerdict says whether the canary is in the awaited state (ExitReached), in the opposite end
// state (ExitFailed), or neither yet (-1).
//
// promoted: the primary serves the canary's revision, its status describes the current spec
// (observedGeneration) and no release is in progress: Initialized or Succeeded.
// succeeded: a release of a new revision finished (Succeeded).
// failed: the release was rolled back (Failed).
// A status older than the spec counts as neither: right after `kubectl apply` the previous
// release's Succeeded must not end the wait.
func waitVerdict(cd *flaggerv1.Canary, target string) int {
	st := cd.Status
	if st.ObservedGeneration < cd.Generation {
		return -1
	}
	failed := st.Phase == flaggerv1.CanaryPhaseFailed
	switch target {
	case "promoted":
		promoted := (st.Phase == flaggerv1.CanaryPhaseSucceeded || st.Phase == flaggerv1.CanaryPhaseInitialized) &&
			st.LastPromotedSpec != "" && st.LastPromotedSpec == st.LastAppliedSpec
		if promoted {
			return ExitReached
		}
	case "succeeded":
		if st.Phase == flaggerv1.CanaryPhaseSucceeded {
			return ExitReached
		}
	case "failed":
		if failed {
			return ExitReached
		}
		if st.Phase == flaggerv1.CanaryPhaseSucceeded {
			return ExitFailed
		}
		return -1
	}
	if failed {
		return ExitFailed
	}
	return -1
}

// Wait watches canary name until it reaches target (promoted, succeeded or failed) and returns
// nil, or an *ExitError with ExitFailed when the release ended the other way, or ExitTimeout when
// timeout passed first (0: no timeout). It prints the phase changes as they come.
func (e *Env) Wait(ctx context.Context, name, target string, timeout time.Duration) error {
	valid := false
	for _, t := range WaitTargets {
		valid = valid || t == target
	}
	if !valid {
		return fmt.Errorf("--for=%q: want one of %v", target, WaitTargets)
	}
	if _, err := e.canary(ctx, name); err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("canary %s not found in namespace %s", name, e.Namespace)
		}
		return err
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	verdict, lastPhase, told := -1, flaggerv1.CanaryPhase("?"), false
	var last *flaggerv1.Canary
	err := e.watchCanaries(ctx, name, func(cd *flaggerv1.Canary, deleted bool) bool {
		if deleted {
			return false
		}
		last = cd
		if cd.Status.Phase != lastPhase {
			lastPhase = cd.Status.Phase
			fmt.Fprintf(e.ErrOut, "canary %s: %s (weight %d%%)\n", cd.Key(), phaseText(cd), cd.Status.CanaryWeight)
		}
		verdict = waitVerdict(cd, target)
		if verdict >= 0 {
			if changed := e.targetChangedAt(ctx, cd); changed.After(cd.Status.LastTransitionTime.Time) {
				// Right after `kubectl apply`/`set image`, before the controller saw the new revision:
				// the status is the previous release's, so it is no answer yet.
				if !told {
					fmt.Fprintf(e.ErrOut, "canary %s: its target changed at %s, after the canary's last transition: waiting for the release of the change\n",
						cd.Key(), changed.UTC().Format(time.RFC3339))
					told = true
				}
				verdict = -1
			}
		}
		return verdict >= 0
	})
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return &ExitError{Code: ExitTimeout, Msg: fmt.Sprintf("timed out after %s waiting for canary %s to be %s (phase %s)",
			timeout, name, target, lastPhase)}
	case err != nil:
		return err
	case verdict == ExitReached:
		fmt.Fprintf(e.Out, "canary %s %s\n", last.Key(), target)
		return nil
	}
	msg := fmt.Sprintf("canary %s ended %s, not %s", last.Key(), last.Status.Phase, target)
	if c := flaggerv1.FindCanaryCondition(last.Status.Conditions, flaggerv1.PromotedCondition); c != nil && c.Message != "" {
		msg += ": " + oneLine(c.Message)
	}
	return &ExitError{Code: ExitFailed, Msg: msg}
}

// controllerFieldOwner is the field manager of Pennant's writes (cmd/pennant's fieldOwner): its
// own changes to the target (scaling) are no new revision.
const controllerFieldOwner = "flagger"

// targetChangedAt is when the canary's target spec was last changed by someone else than the
// controller, from its managed fields (zero when unknown). Subresources (status, scale) do not count.
func (e *Env) targetChangedAt(ctx context.Context, cd *flaggerv1.Canary) time.Time {
	ref := cd.Spec.TargetRef
	obj := &metav1.PartialObjectMetadata{}
	obj.SetGroupVersionKind(schema.FromAPIVersionAndKind(ref.APIVersion, ref.Kind))
	if err := e.Client.Get(ctx, client.ObjectKey{Namespace: cd.Namespace, Name: ref.Name}, obj); err != nil {
		return time.Time{}
	}
	var latest time.Time
	for _, m := range obj.ManagedFields {
		if m.Subresource != "" || m.Manager == controllerFieldOwner || m.Time == nil || m.FieldsV1 == nil ||
			!bytes.Contains(m.FieldsV1.Raw, []byte(`"f:spec"`)) {
			continue
		}
		if m.Time.After(latest) {
			latest = m.Time.Time
		}
	}
	return latest
}
